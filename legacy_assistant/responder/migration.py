"""Migrate a compat-mode responder (TF1 SavedModel) to a TF2-native one, and prove they agree.

:func:`migrate_responder` runs in a process on the TF2 runtime. It reads the TF1 variables with
``tf.train.load_checkpoint`` (no graph, no session), checks them against the manifest's spec,
writes them as a :class:`compat.tf2.responder.ResponderModule` SavedModel next to a copy of
``responder.json`` (same vocabulary, conditions and spec) marked ``"runtime": "tf2"``, and
checks the staged copy before it is renamed into place. The check decodes held-out contexts
(:data:`DEFAULT_CONTEXTS`, generated from a seed, or taken from a corpus) with both models:

* greedy (plain, and with a repetition penalty, exempt ids and a banned id), beam search,
  seeded sampling, and greedy and beam search under condition guidance (when the compat model
  has its guided signatures) must give identical ids and lengths for every context;
* the summed log-probabilities of those replies, and the token log-probabilities ``score``
  gives for the corpus's (or generated) replies, the greedy replies and every beam candidate,
  must differ by at most ``tolerance`` (1e-5 nats).

Otherwise nothing is written. One process cannot host both runtimes (:mod:`compat.selection`),
so the compat model answers in a child process on the compat runtime
(``launch.py legacy_assistant.responder.migration:_compat_main REQUEST.json ANSWERS.json``:
:mod:`legacy_assistant.common.launch`), started before
the export and run beside it and the copy's own decoding; both sides run
the same batches through the same :func:`answers` function, and the ids and float32 values
cross as JSON (exactly: a float32 is written as the double it equals).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from compat.responder.inputs import MAX_DECODE_LENGTH
from legacy_assistant.artifacts.directory import (
    SAVED_MODEL_DIR,
    check_destination,
    output_dir,
    overlaps,
    write_artifact,
)
from legacy_assistant.artifacts.migration import refuse_if_source_replaced, tf2_manifest
from legacy_assistant.common import launch
from legacy_assistant.common.terminal import visible
from legacy_assistant.errors import ArtifactError, AssistantError, DataError
from legacy_assistant.responder.artifact import (
    HISTORY_JSON,
    HISTORY_PNG,
    MANIFEST,
    ResponderInfo,
    verify_responder,
)
from legacy_assistant.responder.batching import Batch, EncodedPair, encode_pairs, pad_batch
from legacy_assistant.responder.responder import UNPENALIZED_TOKENS
from legacy_assistant.responder.vocabulary import END, N_SPECIAL, UNK

log = logging.getLogger(__name__)

DEFAULT_CONTEXTS = 200
DEFAULT_TOLERANCE = 1e-5  # nats, on a token's or a reply's log-probability
DEFAULT_SEED = 0
BATCH_SIZE = 50  # contexts per model call; both sides use the very same batches
GUIDED_CHECK_STRENGTH = 2.0  # the condition strength of the guided decodes compared
SCORED = ("given", "greedy", "beam")  # the replies scored: the contexts' own, greedy, every beam candidate
GOLDEN_FILE = "golden.json"  # copied when the source has one: the replies are the same


@dataclass
class ResponderMigrationReport:
    """What :func:`migrate_responder` wrote and how closely it agrees with its source."""

    source: Path
    target: Path
    variables: dict[str, list[int]]
    contexts: dict[str, Any]
    parity: dict[str, Any] = field(default_factory=dict)
    tolerance: float = DEFAULT_TOLERANCE
    seconds: float = 0.0
    tensorflow: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "responder",
            "source": str(self.source),
            "target": str(self.target),
            "tensorflow": self.tensorflow,
            "variables": self.variables,
            "contexts": self.contexts,
            "tolerance": self.tolerance,
            "parity": self.parity,
            "seconds": round(self.seconds, 3),
        }

    def lines(self) -> list[str]:
        """The report for a terminal."""
        out = [
            f"migrated responder {self.source} -> {self.target} (TF2 SavedModel, tensorflow {self.tensorflow}, "
            f"{self.seconds:.1f}s)",
            f"  {len(self.variables)} variables; {self.contexts['count']} held-out contexts ({self.contexts['from']})",
        ]
        for name, result in self.parity.get("decodes", {}).items():
            if result.get("missing"):
                out.append(f"  {name}: not answered by the migrated model")
                continue
            out.append(
                f"  {name}: ids identical for {result['contexts'] - result['contexts_differing']}/{result['contexts']} "
                f"contexts, max |Δ log p| {result['max_abs_log_prob_delta']:.3g}"
            )
        for name, result in self.parity.get("score", {}).items():
            out.append(
                f"  score of {result['replies']} {name} replies: max |Δ log p| per token {result['max_abs_delta']:.3g}"
            )
        if "decodes" in self.parity and "greedy_guided" not in self.parity["decodes"]:
            # the copy is built by this code, guided signatures included, but nothing checked them
            out.append(
                "  guided decodes (condition_strength above 0) not compared: the source has no condition "
                "guidance; the copy's is unchecked (legacy-assistant reexport-responder SOURCE, then migrate "
                "again, checks it)"
            )
        return out


def migrate_responder(
    source: str | Path,
    out_dir: str | Path,
    *,
    force: bool = False,
    contexts: int = DEFAULT_CONTEXTS,
    corpus: str | Path | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    seed: int = DEFAULT_SEED,
) -> ResponderMigrationReport:
    """Write the TF2-native twin of the compat responder ``source`` to ``out_dir``.

    ``contexts`` held-out contexts are checked: drawn from ``corpus`` (any layout
    :func:`~legacy_assistant.responder.corpora.read_corpus` reads; a seeded choice when it has
    more pairs) or generated from ``seed``.

    Raises:
        ArtifactError: the source is damaged or not a compat responder, its variables do not
            match its spec, or the migrated model disagrees with it.
        DataError: the corpus cannot be read or has no pair this model can take.
        compat.selection.RuntimeConflict: this process already runs the TF1 runtime.
    """
    from compat import selection

    started = time.perf_counter()
    if contexts < 1:
        raise ArtifactError(f"contexts must be at least 1, got {contexts}")
    if not tolerance >= 0:
        raise ArtifactError(f"tolerance must be >= 0, got {tolerance}")
    # what needs no TensorFlow is checked before its import (seconds), so a refusal is immediate
    info = verify_responder(source)
    runtime = info.manifest.get("runtime", "compat")
    if runtime != "compat":
        raise ArtifactError(f"{info.path}: already a {runtime!r} responder; only compat models are migrated")
    target = output_dir(out_dir)
    if overlaps(target, info.path):
        raise ArtifactError(f"{target}: the migrated model needs a directory of its own, outside {info.path}")
    check_destination(target, force, [info.path], writes=MANIFEST)  # before any work, not after the checks
    selection.select("tf2")
    from compat.interface import SavedModelError
    from compat.tf2.checkpoint import read_v1_weights
    from compat.tf2.responder import check_weights, export_tf2_responder
    from compat.tf2.runtime import versions

    try:
        weights = read_v1_weights(str(info.saved_model_dir))
        check_weights(info.spec, weights, str(info.saved_model_dir))
    except (SavedModelError, ValueError) as exc:
        raise ArtifactError(str(exc)) from None

    if corpus is not None:
        pairs = corpus_contexts(info, corpus, contexts, seed)
        described = {"count": len(pairs), "from": f"corpus {Path(corpus).name}, seed {seed}"}
    else:
        pairs = generated_contexts(info, contexts, seed)
        described = {"count": len(pairs), "from": f"generated, seed {seed}"}
    batches = [
        pad_batch(pairs[i : i + BATCH_SIZE], info.spec.max_context_turns) for i in range(0, len(pairs), BATCH_SIZE)
    ]
    decodes = decode_checks(info)
    report = ResponderMigrationReport(
        info.path, target, {k: list(v.shape) for k, v in sorted(weights.items())}, described, tolerance=tolerance
    )
    report.tensorflow = versions()["tensorflow"]

    def fill(staging: Path) -> dict[str, Any]:
        export_tf2_responder(info.spec, weights, str(staging / SAVED_MODEL_DIR))
        for name in (HISTORY_JSON, HISTORY_PNG):
            if (info.path / name).is_file():
                shutil.copy2(info.path / name, staging / name)
        return tf2_manifest(info.manifest, target.name, versions(), info.path)

    # The compat model answers in a child process while this one exports and decodes the copy:
    # on two cores that takes the migration from the sum of the two sides to about the longer.
    log.info("decoding %d contexts with the compat model (a child process, beside the export)", len(pairs))
    with _CompatAnswers(info.path, decodes, batches) as compat:

        def check(staging: Path) -> None:
            report.parity = _check_staged(staging, decodes, batches, compat.result, tolerance)
            # swapped in with the model, not copied after it: a stop in between left the new
            # model with no golden file, or half of one
            if (info.path / GOLDEN_FILE).is_file():
                shutil.copy2(info.path / GOLDEN_FILE, staging / GOLDEN_FILE)
            refuse_if_source_replaced(info.path, info.manifest, MANIFEST)  # last: after every read of it

        write_artifact(target, fill, manifest_name=MANIFEST, force=force, check=check)
    report.seconds = time.perf_counter() - started
    return report


# -- the contexts checked -----------------------------------------------------------------------


def generated_contexts(info: ResponderInfo, count: int, seed: int) -> list[EncodedPair]:
    """``count`` contexts of random words: 1..max_context_turns turns of 1..max_turn_tokens ids
    (one in twenty UNK), a random condition, and a random reply (words, then END) to score."""
    spec = info.spec
    rng = np.random.default_rng(seed)
    words = (N_SPECIAL, spec.vocab_size)

    def tokens(length: int) -> tuple[int, ...]:
        ids = rng.integers(*words, size=length)
        return tuple(int(t) for t in np.where(rng.random(length) < 0.05, UNK, ids))

    pairs = []
    for _ in range(count):
        turns = int(rng.integers(1, spec.max_context_turns + 1))
        context = tuple(tokens(int(rng.integers(1, spec.max_turn_tokens + 1))) for _ in range(turns))
        reply = tokens(int(rng.integers(0, spec.max_reply_tokens))) + (END,)
        pairs.append(EncodedPair(context, reply, int(rng.integers(0, spec.n_conditions))))
    return pairs


def corpus_contexts(info: ResponderInfo, corpus: str | Path, count: int, seed: int) -> list[EncodedPair]:
    """Up to ``count`` pairs of ``corpus`` (context turns, reply, condition) whose condition the
    model knows, encoded as in training; a seeded choice, in corpus order, when there are more."""
    from legacy_assistant.responder.corpora import read_corpus
    from legacy_assistant.responder.pairs import make_pairs

    spec = info.spec
    known = set(info.conditions)
    pairs = [pair for pair in make_pairs(read_corpus(corpus), spec.max_context_turns) if pair.condition in known]
    if not pairs:
        raise DataError(
            str(corpus), [f"no dialogue pair whose condition this model knows ({', '.join(info.conditions)})"]
        )
    if len(pairs) > count:
        chosen = np.sort(np.random.default_rng(seed).choice(len(pairs), size=count, replace=False))
        pairs = [pairs[int(i)] for i in chosen]
    elif len(pairs) < count:
        log.warning(
            "%s holds %d dialogue pair(s), fewer than the %d contexts asked for: all are checked",
            corpus,
            len(pairs),
            count,
        )
    return encode_pairs(
        pairs, info.vocabulary, info.conditions, spec.max_context_turns, spec.max_turn_tokens, spec.max_reply_tokens
    )


def decode_checks(info: ResponderInfo) -> dict[str, dict[str, Any]]:
    """The decodes compared, by name: options of ``decode`` (JSON-ready)."""
    spec, vocabulary = info.spec, info.vocabulary
    # as Responder decodes by default: a spec trained before training was held to what a decode
    # takes may allow more reply tokens than a decode may ask for (the check failed with a traceback)
    length = min(spec.max_reply_tokens, MAX_DECODE_LENGTH)
    unpenalized = sorted(vocabulary.token_id(t) for t in UNPENALIZED_TOKENS if t in vocabulary)
    return {
        "greedy": {"mode": "greedy", "max_length": length},
        "greedy_penalized": {
            "mode": "greedy",
            "max_length": length,
            "repetition_penalty": 1.5,
            "unpenalized_ids": unpenalized,
            "banned_ids": [N_SPECIAL],
        },
        "beam": {
            "mode": "beam",
            "max_length": length,
            "beam_width": min(5, spec.vocab_size - N_SPECIAL),
            "length_penalty": 1.0,
        },
        "sample": {"mode": "sample", "max_length": length, "n_samples": 2, "temperature": 0.7, "seed": 20240611},
        # answered only by a model with the guided signatures (see answers)
        "greedy_guided": {"mode": "greedy", "max_length": length, "condition_strength": GUIDED_CHECK_STRENGTH},
        "beam_guided": {
            "mode": "beam",
            "max_length": length,
            "beam_width": min(5, spec.vocab_size - N_SPECIAL),
            "length_penalty": 1.0,
            "condition_strength": GUIDED_CHECK_STRENGTH,
        },
    }


# -- both sides ---------------------------------------------------------------------------------


def answers(model: Any, batch: Batch, decodes: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """What ``model`` (a loaded responder of either runtime) answers for ``batch``, JSON-ready.

    ``{"decodes": {name: {"ids", "log_probs", "lengths"}}, "score": {"given", "greedy", "beam"}}``:
    every decode of ``decodes`` (those with a ``condition_strength`` only when the model is
    guided), then the token log-probabilities of the batch's own replies, of the greedy replies
    and of every beam candidate (its context repeated).
    """
    context, condition = batch.context_ids, batch.condition_ids
    decoded = {}
    for name, options in decodes.items():
        if "condition_strength" in options and not model.guided:
            continue  # a model exported before condition guidance
        kwargs = {k: np.asarray(v, np.int32) if k.endswith("_ids") else v for k, v in options.items()}
        result = model.decode(context, condition, **kwargs)
        decoded[name] = {"ids": result.ids, "log_probs": result.log_probs, "lengths": result.lengths}
    beam = decoded["beam"]["ids"]
    width = beam.shape[1]
    scores = {
        "given": model.score(context, condition, batch.reply_ids),
        "greedy": model.score(context, condition, decoded["greedy"]["ids"][:, 0]),
        "beam": model.score(
            np.repeat(context, width, axis=0), np.repeat(condition, width), beam.reshape(-1, beam.shape[2])
        ),
    }
    return {
        "decodes": {name: {k: v.tolist() for k, v in parts.items()} for name, parts in decoded.items()},
        "score": {name: value.tolist() for name, value in scores.items()},
    }


def _batch_to_json(batch: Batch) -> dict[str, Any]:
    return {
        "context_ids": batch.context_ids.tolist(),
        "condition_ids": batch.condition_ids.tolist(),
        "reply_ids": batch.reply_ids.tolist(),
    }


def _batch_from_json(data: Mapping[str, Any]) -> Batch:
    return Batch(*(np.asarray(data[key], np.int32) for key in ("context_ids", "condition_ids", "reply_ids")))


class _CompatAnswers:
    """The compat model's :func:`answers` for every batch, computed by a child process on the
    compat runtime (started at once; :meth:`result` waits for it). Leaving the ``with`` block
    stops a child still running and removes its files."""

    def __init__(self, source: Path, decodes: dict[str, Any], batches: Sequence[Batch]) -> None:
        env = dict(os.environ, LEGACY_ASSISTANT_RUNTIME="compat", **{PARENT_ENV: str(os.getpid())})
        self._source = source
        self._folder = tempfile.TemporaryDirectory(prefix="responder-migration-")
        folder = Path(self._folder.name)
        request, self._result_path, self._log_path = folder / "request.json", folder / "answers.json", folder / "log"
        request.write_text(
            json.dumps({"model": str(source), "decodes": decodes, "batches": [_batch_to_json(b) for b in batches]}),
            encoding="utf-8",
        )
        # its messages go to a file, not a pipe: nobody reads a pipe while this process works
        with open(self._log_path, "w", encoding="utf-8") as log_file:
            self._process = subprocess.Popen(
                # this copy of the package, not python -m: the working folder's modules stay out
                launch.command(f"{__name__}:_compat_main", str(request), str(self._result_path)),
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log_file,
            )

    def result(self) -> list[dict[str, Any]]:
        """The answers, once the child has finished; :class:`ArtifactError` if it failed."""
        returncode = self._process.wait()
        if returncode != 0 or not self._result_path.is_file():
            text = self._log_path.read_text(encoding="utf-8", errors="replace")
            lines = [line for line in text.strip().splitlines() if line.strip()]
            raise ArtifactError(
                f"{self._source}: the compat model could not answer the parity contexts "
                f"(exit status {returncode}): {lines[-1] if lines else 'no message'}"
            )
        return json.loads(self._result_path.read_text(encoding="utf-8"))["batches"]

    def __enter__(self) -> _CompatAnswers:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._folder.cleanup()


def _check_staged(
    staging: Path,
    decodes: dict[str, Any],
    batches: Sequence[Batch],
    expected: Callable[[], list[dict[str, Any]]],
    tolerance: float,
) -> dict[str, Any]:
    """Load the staged copy as the application will (verified directory, TF2 runtime, a
    :class:`Responder` around it), answer the same batches, then compare with what ``expected()``
    gives (the compat model's answers); ``ArtifactError`` unless equal. What the compat model
    could answer is what is compared: no guided decodes when it lacks their signatures."""
    from compat.interface import SavedModelError
    from compat.selection import load_responder
    from legacy_assistant.responder.responder import Responder

    info = verify_responder(staging)
    try:
        model = load_responder(str(info.saved_model_dir), "tf2")
    except SavedModelError as exc:
        raise ArtifactError(str(exc)) from None
    try:
        Responder(info, model)  # the shapes agree with the manifest
        got = [answers(model, batch, decodes) for batch in batches]
    finally:
        model.close()
    compat = expected()
    answered = set(compat[0]["decodes"]) if compat else set()
    got = [{**answer, "decodes": {k: v for k, v in answer["decodes"].items() if k in answered}} for answer in got]
    report = compare_answers(compat, got, tolerance)
    if not report["agree"]:
        raise ArtifactError(f"the migrated responder disagrees with its compat source: {json.dumps(report)}")
    return report


def compare_answers(
    expected: Sequence[Mapping[str, Any]], got: Sequence[Mapping[str, Any]], tolerance: float
) -> dict[str, Any]:
    """Per decode: contexts whose ids or lengths differ, and the largest ``log_probs`` difference;
    per scored kind: replies compared and the largest token difference. ``agree`` when every decode is
    identical and every difference is at most ``tolerance``."""

    def joined(answers: Sequence[Mapping[str, Any]], *path: str) -> np.ndarray:
        parts = []
        for answer in answers:
            value: Any = answer
            for key in path:
                value = value[key]
            parts.append(np.asarray(value))
        return np.concatenate(parts) if parts else np.zeros(0)

    report: dict[str, Any] = {"decodes": {}, "score": {}}
    agree = len(expected) == len(got)
    for name in expected[0]["decodes"] if expected else {}:
        if any(name not in answer["decodes"] for answer in got):
            report["decodes"][name] = {"contexts": 0, "contexts_differing": 0, "missing": True}
            agree = False
            continue
        ids_e, ids_g = joined(expected, "decodes", name, "ids"), joined(got, "decodes", name, "ids")
        len_e, len_g = joined(expected, "decodes", name, "lengths"), joined(got, "decodes", name, "lengths")
        if ids_e.shape != ids_g.shape or len_e.shape != len_g.shape:
            report["decodes"][name] = {
                "contexts": len(ids_e),
                "contexts_differing": len(ids_e),
                "max_abs_log_prob_delta": float("inf"),
                "shapes": [ids_e.shape, ids_g.shape],
            }
            agree = False
            continue
        differing = np.any(ids_e != ids_g, axis=(1, 2)) | np.any(len_e != len_g, axis=1)
        lp_e = joined(expected, "decodes", name, "log_probs").astype(np.float32)
        lp_g = joined(got, "decodes", name, "log_probs").astype(np.float32)
        delta = float(np.abs(lp_e - lp_g).max()) if lp_e.size else 0.0
        report["decodes"][name] = {
            "contexts": int(len(ids_e)),
            "contexts_differing": int(differing.sum()),
            "max_abs_log_prob_delta": delta,
        }
        agree = agree and not differing.any() and delta <= tolerance
    for name in SCORED:
        deltas, replies = [], 0
        for e, g in zip(expected, got):
            se, sg = np.asarray(e["score"][name], np.float32), np.asarray(g["score"][name], np.float32)
            if se.shape != sg.shape:
                deltas.append(float("inf"))
                continue
            deltas.append(float(np.abs(se - sg).max()) if se.size else 0.0)
            replies += int(se.shape[0])
        delta = float(np.max(deltas)) if deltas else 0.0  # a NaN anywhere stays NaN (Python's max may skip it)
        report["score"][name] = {"replies": replies, "max_abs_delta": delta}
        agree = agree and delta <= tolerance
    report["agree"] = bool(agree)
    return report


# -- the compat side, in its own process --------------------------------------------------------


PARENT_ENV = "LEGACY_ASSISTANT_MIGRATION_PARENT"


def _end_with_parent() -> None:
    """Be killed when the ``migrate`` that started this child dies (``kill -9``), rather than
    decode on for minutes under PID 1 (Linux; elsewhere the child finishes its work)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.environ.get(PARENT_ENV) not in (None, str(os.getppid())):
        sys.exit(1)  # it died before the line above: no signal will come


def _compat_main(argv: Sequence[str]) -> int:
    """``REQUEST.json ANSWERS.json``: the compat model's :func:`answers` for the request's batches."""
    from compat.interface import SavedModelError
    from compat.selection import load_responder

    request_path, answers_path = argv
    _end_with_parent()
    request = json.loads(Path(request_path).read_text(encoding="utf-8"))
    try:
        info = verify_responder(request["model"])
        model = load_responder(str(info.saved_model_dir), "compat")
    except (AssistantError, SavedModelError) as exc:
        print(visible(f"error: {exc}"), file=sys.stderr)
        return 1
    try:
        batches = [answers(model, _batch_from_json(b), request["decodes"]) for b in request["batches"]]
    finally:
        model.close()
    Path(answers_path).write_text(json.dumps({"batches": batches}), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(_compat_main(sys.argv[1:]))
