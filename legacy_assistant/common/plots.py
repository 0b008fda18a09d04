"""Figures as PNG (matplotlib, Agg backend): training history, an evaluation report's
confusion matrix and threshold curve, and a responder evaluation's figures."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from legacy_assistant.common.fields import threshold_text
from legacy_assistant.common.files import NotWritten, can_make_or_write_in, naming, write_atomically

logger = logging.getLogger(__name__)


def drawn(path: str | Path, draw: Callable[[Path], object], without: str, name: str | None = None) -> bool:
    """Draw a figure with ``draw(path)``; where matplotlib fails (no folder it can write its
    config in, a font it cannot read, a figure it cannot lay out), log one warning naming the
    figure (``name``, else ``path``'s), what went wrong and ``without`` (what is written all the
    same), and return False. A figure is never worth the report or the model it illustrates. Ctrl-C still stops."""
    try:
        draw(Path(path))
    except Exception as exc:  # noqa: BLE001 - any failure of the plot leaves out the plot only
        reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}" if str(exc).strip() else type(exc).__name__
        logger.warning("%s not drawn (%s); %s", name or Path(path).name, reason, without)
        return False
    return True


def figure_write(name: str | Path, draw: Callable[[Path], object]) -> Callable[[Path], object]:
    """A write for :func:`~legacy_assistant.common.files.write_together` that draws figure
    ``name`` and, where it cannot be drawn, warns (see :func:`drawn`) and leaves it out while the
    report beside it is written."""

    def draw_named(path: Path) -> object:
        with naming(name, instead_of=path):  # a full disk: the figure's name, not its temporary file's
            return draw(path)

    def write(path: Path) -> None:
        if not drawn(path, draw_named, "the report is written without it", name=Path(name).name):
            raise NotWritten(str(name))

    return write


def plot_history(
    history: Sequence[dict[str, Any]],
    path: str | Path,
    title: str = "training history",
    metrics: Sequence[str] = ("loss", "accuracy"),
) -> None:
    """Write one panel per metric (default: loss and accuracy) per epoch, validation
    (``val_<metric>``) dashed where present."""
    plt = _pyplot()
    epochs = [row["epoch"] for row in history]
    figure, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4), dpi=100, squeeze=False)
    for axis, key in zip(axes[0], metrics):
        axis.plot(epochs, [row[key] for row in history], label=f"train {key}")
        if history and f"val_{key}" in history[0]:
            axis.plot(epochs, [row[f"val_{key}"] for row in history], "--", label=f"validation {key}")
        axis.set_xlabel("epoch")
        axis.set_ylabel(key)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(_drawable(title))
    figure.tight_layout()
    # Fixed metadata keeps the file byte-identical for identical histories.
    _save(figure, path)
    plt.close(figure)


def use_writable_matplotlib_dir() -> None:
    """Call before matplotlib's first import: see :func:`_writable_matplotlib_dir`."""
    _writable_matplotlib_dir(os.environ)


def _pyplot():
    use_writable_matplotlib_dir()
    import matplotlib

    matplotlib.use("Agg", force=True)  # no display on servers and CI
    # Every text drawn is plain: tags and model names are the user's, and a pair of "$" in one
    # ("$\\foo$") was parsed as TeX math, which failed with a traceback after the report was written.
    matplotlib.rcParams["text.parse_math"] = False
    import matplotlib.pyplot as plt

    return plt


def _drawable(text: str) -> str:
    """``text`` with each character the figures' font cannot draw written as its escape
    (``\\u95ee``). matplotlib draws such a character as an empty box, so the tags of an intents
    file in Chinese all looked alike on the confusion matrix, and it warned on standard error,
    with a line of its source, for every character it lacked. Call it after :func:`_pyplot`."""
    import matplotlib
    from matplotlib.font_manager import FontProperties, findfont, get_font

    # matplotlib draws a character with the first font of rcParams["font.family"] that has it
    fonts = [get_font(findfont(FontProperties(family=[family]))) for family in matplotlib.rcParams["font.family"]]
    return "".join(
        char if char in " \n" or any(font.get_char_index(ord(char)) for font in fonts) else ascii(char)[1:-1]
        for char in text
    )


def _writable_matplotlib_dir(environ: MutableMapping[str, str]) -> None:
    """Where matplotlib cannot write its config and font cache (no home folder, or a read-only
    one, as in a container run as an arbitrary user), point ``MPLCONFIGDIR`` at a folder of this
    user's in the temporary folder. matplotlib would otherwise warn twice and build its font
    cache again in every run, in a new temporary folder each time."""
    if environ.get("MPLCONFIGDIR"):
        return
    try:
        home = environ.get("HOME") or str(Path.home())
    except RuntimeError:  # no HOME and no passwd entry
        home = None
    # its config folder and its font cache's, as matplotlib finds them without MPLCONFIGDIR
    wanted = [
        environ.get(variable) or (os.path.join(home, fallback) if home else None)
        for variable, fallback in (("XDG_CONFIG_HOME", ".config"), ("XDG_CACHE_HOME", ".cache"))
    ]
    if all(base and can_make_or_write_in(Path(base) / "matplotlib") for base in wanted):
        return
    # Windows has no user ids, and its temporary folder is the user's own: no name or owner to check
    user = os.getuid() if hasattr(os, "getuid") else None
    try:
        folder = Path(tempfile.gettempdir()) / f"legacy-assistant-matplotlib{'' if user is None else f'-{user}'}"
        folder.mkdir(mode=0o700, exist_ok=True)
    except OSError:
        return  # matplotlib then makes its own temporary one, and says so
    if folder.is_dir() and not folder.is_symlink() and (user is None or folder.stat().st_uid == user):
        environ["MPLCONFIGDIR"] = str(folder)


def confusion_shares(report: dict[str, Any], max_intents: int = 25) -> tuple[list[str], np.ndarray]:
    """The intents :func:`plot_confusions` draws and its matrix, float ``[n, n]``.

    The intents are those of the most frequent confusions first (at most ``max_intents``),
    else the report's first intents. Row ``i`` is the sentences *labelled* ``tags[i]``, column
    ``j`` those *predicted* ``tags[j]`` (the raw top intent), each cell the share of the row's
    sentences (its ``support``); a row of a class no sentence is labelled with (the model's
    out-of-scope class, an intent only predicted) is all 0.
    """
    chosen: list[str] = []
    for pair in report["confusions"]:
        for tag in (pair["label"], pair["predicted"]):
            if tag not in chosen and len(chosen) < max_intents:
                chosen.append(tag)
    if not chosen:
        chosen = list(report["per_intent"])[:max_intents]
    index = {tag: i for i, tag in enumerate(chosen)}
    counts = np.zeros((len(chosen), len(chosen)))
    for tag in chosen:
        metrics = report["per_intent"].get(tag)
        if metrics:  # the diagonal: sentences of the label answered with it
            counts[index[tag], index[tag]] = round(metrics["recall"] * metrics["support"])
    for pair in report["confusions"]:
        if pair["label"] in index and pair["predicted"] in index:
            counts[index[pair["label"]], index[pair["predicted"]]] = pair["count"]
    support = np.array([report["per_intent"].get(tag, {}).get("support", 0) for tag in chosen], dtype=float)
    shares = np.divide(counts, support[:, None], out=np.zeros_like(counts), where=support[:, None] > 0)
    return chosen, shares


def plot_confusions(report: dict[str, Any], path: str | Path, max_intents: int = 25) -> None:
    """The confusion matrix of the most confused intents of an evaluation report.

    Rows are true labels, columns predicted ones, among the (at most ``max_intents``) intents
    that take part in the most confusions; each cell is the share of the row's sentences
    (:func:`confusion_shares`).
    """
    plt = _pyplot()
    chosen, shares = confusion_shares(report, max_intents)
    if not chosen:  # out-of-scope sentences only: no intent to draw (an empty image would warn)
        figure, axis = plt.subplots(figsize=(6, 2), dpi=100)
        axis.axis("off")
        axis.text(0.5, 0.5, "no in-scope sentences: no confusions to show", ha="center", va="center")
        axis.set_title(_drawable(f"{report.get('model', 'model')}: most confused intents"))
        _save(figure, path)
        plt.close(figure)
        return
    size = max(5.0, 0.32 * len(chosen) + 2.5)
    figure, axis = plt.subplots(figsize=(size + 1.5, size), dpi=100)
    image = axis.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    shown = [_drawable(tag) for tag in chosen]
    axis.set_xticks(range(len(chosen)), shown, rotation=90, fontsize=7)
    axis.set_yticks(range(len(chosen)), shown, fontsize=7)
    axis.set_xlabel("predicted (top intent)")
    axis.set_ylabel("label")
    # two lines: on one, a figure of a few intents cut the end of the title (what a cell measures)
    title = f"{report.get('model', 'model')}: most confused intents\n(share of each label's sentences)"
    axis.set_title(_drawable(title))
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
    figure.tight_layout()
    _save(figure, path)
    plt.close(figure)


def threshold_series(report: dict[str, Any]) -> dict[str, list[float | None]]:
    """The lines :func:`plot_threshold_curve` draws, by legend label, one value per threshold of
    the report's curve: the in-scope ones with in-scope sentences, the out-of-scope ones with
    out-of-scope sentences (a line of no sentence would be all ``None``: not drawn, yet named in
    the legend)."""
    curve = report["threshold_curve"]
    keys: list[tuple[str, str]] = []
    if report["in_scope_examples"]:
        keys += [("in-scope accuracy", "in_scope_accuracy"), ("in-scope fallback rate", "in_scope_rejected")]
    if report["oos_examples"]:
        keys += [("out-of-scope recall", "oos_recall"), ("joint accuracy", "joint_accuracy")]
    return {label: [point[key] for point in curve] for label, key in keys}


def plot_threshold_curve(report: dict[str, Any], path: str | Path) -> None:
    """In-scope accuracy, in-scope fallback rate and (with out-of-scope data) out-of-scope
    recall and joint accuracy against the threshold; the model's threshold dashed."""
    plt = _pyplot()
    x = [p["threshold"] for p in report["threshold_curve"]]
    figure, axis = plt.subplots(figsize=(7, 4.5), dpi=100)
    for label, values in threshold_series(report).items():
        axis.plot(x, values, label=label)
    axis.axvline(
        report["threshold"], color="grey", linestyle="--", label=f"threshold {threshold_text(report['threshold'])}"
    )
    axis.set_xlabel("threshold (fall back below this top confidence)")
    axis.set_ylim(0.0, 1.02)
    axis.grid(alpha=0.3)
    axis.legend(loc="lower left", fontsize=8)
    axis.set_title(_drawable(f"{report.get('model', 'model')}: outcomes by threshold"))
    figure.tight_layout()
    _save(figure, path)
    plt.close(figure)


def plot_responder_quality(report: dict[str, Any], path: str | Path) -> None:
    """A responder evaluation's figures in panels: perplexity of the model and its baselines,
    distinct-1/2 and mean length of the human and generated replies, and (when measured)
    latency p50/p95 per mode."""
    plt = _pyplot()
    latency = report.get("latency")
    panels = 4 if latency else 3
    figure, axes = plt.subplots(1, panels, figsize=(4.5 * panels, 4), dpi=100)
    ppl = report["perplexity"]
    names = [n for n in ("model", "bigram", "unigram") if ppl.get(n) is not None]
    bars = axes[0].bar(names, [ppl[n] for n in names], color=["C0", "C1", "C2"][: len(names)])
    axes[0].bar_label(bars, fmt="%.1f")
    axes[0].set_ylim(0.0, 1.15 * max([ppl[n] for n in names]))
    axes[0].set_title(f"held-out perplexity ({ppl['tokens']} tokens)")
    modes = report["replies"]["modes"]
    sources = list(modes)
    x = np.arange(len(sources))
    for offset, key in ((-0.2, "distinct_1"), (0.2, "distinct_2")):
        # n/a (no n-gram) is drawn as no bar, not as a bar at 0
        heights = [np.nan if modes[s][key] is None else modes[s][key] for s in sources]
        axes[1].bar(x + offset, heights, width=0.4, label=key.replace("_", "-"))
    axes[1].set_xticks(x, sources, rotation=30)
    axes[1].set_ylim(0.0, 1.0)
    axes[1].legend()
    axes[1].set_title("diversity of the replies")
    axes[2].bar(
        sources, [np.nan if modes[s]["mean_length"] is None else modes[s]["mean_length"] for s in sources], color="C4"
    )
    axes[2].tick_params(axis="x", rotation=30)
    axes[2].set_title("mean reply length (tokens)")
    if latency:
        timed = list(latency["modes"])
        x = np.arange(len(timed))
        for offset, key in ((-0.2, "p50_ms"), (0.2, "p95_ms")):
            axes[3].bar(x + offset, [latency["modes"][m][key] for m in timed], width=0.4, label=key[:3])
        axes[3].set_xticks(x, timed, rotation=30)
        axes[3].set_ylabel("ms")
        axes[3].legend()
        axes[3].set_title("latency at batch 1")
    for axis in axes:
        axis.grid(alpha=0.3, axis="y")
    figure.suptitle(_drawable(f"{report.get('model', 'responder')}: held-out evaluation"))
    figure.tight_layout()
    _save(figure, path)
    plt.close(figure)


def plot_responder_conditions(report: dict[str, Any], path: str | Path) -> None:
    """For each labelled decoding mode, the share of replies the condition classifier gives
    each label (columns) when each condition is requested (rows)."""
    plt = _pyplot()
    section = report["conditions"]
    modes = section["modes"]
    requested = section["requested"]
    classes = section["classifier"]["classes"]
    labels = [c for c in requested if c in classes] + [c for c in classes if c not in requested]
    figure, axes = plt.subplots(1, len(modes), figsize=(5.5 * len(modes), 4.5), dpi=100, squeeze=False)
    for axis, (mode, figures) in zip(axes[0], modes.items()):
        # a share is null where no reply was labelled (every reply of that row came out empty)
        matrix = figures["matrix"]
        shares = np.array(
            [[np.nan if matrix[r][c] is None else matrix[r][c] for c in labels] for r in requested], dtype=float
        )
        image = axis.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
        for (row, column), share in np.ndenumerate(shares):
            color = "white" if share > 0.6 else "black"
            text = "n/a" if np.isnan(share) else f"{share:.2f}"
            axis.text(column, row, text, ha="center", va="center", fontsize=8, color=color)
        axis.set_xticks(range(len(labels)), [_drawable(label) for label in labels], rotation=45)
        axis.set_yticks(range(len(requested)), [_drawable(condition) for condition in requested])
        axis.set_xlabel("labelled by the classifier")
        axis.set_ylabel("requested")
        axis.set_title(f"{mode} ({section['contexts']} contexts)")
    figure.colorbar(image, ax=axes[0].tolist(), fraction=0.03, pad=0.02)
    figure.suptitle(_drawable(f"{report.get('model', 'responder')}: replies by requested condition"))
    _save(figure, path, bbox_inches="tight")
    plt.close(figure)


def _save(figure: Any, path: str | Path, **options: Any) -> None:
    """Write ``figure`` as a PNG at ``path`` (without matplotlib's version in it, so that the
    same figure is the same bytes), whole or not at all: a reader, or another command writing the
    same figure at once, never finds half a PNG. An error of the disk names the file."""
    options = {"format": "png", "metadata": {"Software": None}, **options}
    if os.path.exists(path) and not os.path.isfile(path):  # a device or a pipe: written, not replaced
        with naming(path):
            figure.savefig(path, **options)
        return
    write_atomically(path, lambda stream: figure.savefig(stream, **options))
