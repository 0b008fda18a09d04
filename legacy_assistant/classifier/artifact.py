"""The intent classifier's model directory: its manifest, written and verified.

Layout of ``exported/<name>/``::

    saved_model/          SavedModel, signature "predict": TF1 (v1 builder) for runtime
                          "compat", TF2-native (tf.saved_model.save) for runtime "tf2"
    assistant.json        manifest: vocabulary, text settings, classes, dialogue rules,
                          training config, runtime, versions, sha256 of every file listed
    history.json          per-epoch loss/accuracy
    history.png           the same, plotted

Writing, checksums and the file checks are :mod:`legacy_assistant.artifacts.directory`'s, shared
with the responder; this module adds what the classifier's manifest holds and its consistency.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compat.classifier.schema import SIZES, NetworkSpec
from compat.selection import RUNTIMES
from legacy_assistant.artifacts.directory import (
    CLASSIFIER_MANIFEST,
    SAVED_MODEL_DIR,
    output_dir,
    verify_directory,
    write_artifact,
    write_json,
)
from legacy_assistant.artifacts.versions import recorded_environment, recorded_versions
from legacy_assistant.classifier.features import Featurizer
from legacy_assistant.classifier.intents import FALLBACK_TAG, IntentSet
from legacy_assistant.errors import ArtifactError

log = logging.getLogger(__name__)

WORDS_NAMED = 5  # a warning names this many words, then counts the rest

if TYPE_CHECKING:  # training imports the TF1 runtime; verifying and serving must not
    from legacy_assistant.classifier.training import TrainedModel

FORMAT = "legacy-assistant/1"
MANIFEST = CLASSIFIER_MANIFEST
HISTORY_JSON = "history.json"
HISTORY_PNG = "history.png"
DEFAULT_FALLBACK_RESPONSE = "Sorry, I didn't understand that. Could you rephrase it?"


def export_artifact(
    model: TrainedModel,
    intents: IntentSet,
    out_dir: str | Path,
    *,
    force: bool = False,
    plot: bool = True,
    source: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` (with ``intents``' dialogue rules) to ``out_dir``; returns its path.

    ``out_dir`` must not exist unless ``force``; with ``force`` the old directory is replaced
    only after the new one is complete.
    """
    from compat.classifier.saved_model import export_saved_model
    from compat.runtime import versions

    target = output_dir(out_dir)

    def fill(staging: Path) -> dict[str, Any]:
        export_saved_model(model.weights, model.spec, str(staging / SAVED_MODEL_DIR))
        write_json(staging / HISTORY_JSON, model.history)
        if plot and model.history:
            from legacy_assistant.common.plots import drawn, plot_history

            # a model is never lost for its figure: history.json holds the same numbers
            drawn(
                staging / HISTORY_PNG,
                lambda path: plot_history(model.history, path, title=f"{target.name}: training history"),
                "the model is written without it (history.json holds the same numbers)",
            )
        return _manifest(model, intents, target.name, versions(), source)

    return write_artifact(target, fill, manifest_name=MANIFEST, force=force)


def _manifest(
    model: TrainedModel, intents: IntentSet, name: str, library_versions: dict[str, str], source: dict[str, Any] | None
) -> dict[str, Any]:
    fallback = intents[FALLBACK_TAG] if FALLBACK_TAG in intents else None
    return {
        "format": FORMAT,
        "name": name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "classes": model.classes,
        "featurizer": model.featurizer.to_dict(),
        "network": model.spec.to_dict(),
        "threshold": model.threshold,
        "oos_label": model.oos_label,
        "fallback": {
            "tag": FALLBACK_TAG,
            "responses": list(fallback.responses) if fallback else [DEFAULT_FALLBACK_RESPONSE],
        },
        "intents": [intent.rules() for intent in intents.answering],
        "training": model.config.to_dict(),
        "summary": model.summary,
        "source": source or {"intents": Path(intents.source).name},
        "versions": recorded_versions(library_versions),
        "environment": recorded_environment(),
    }


@dataclass(frozen=True)
class ArtifactInfo:
    """A verified manifest and the featurizer it describes."""

    path: Path
    manifest: dict[str, Any]
    featurizer: Featurizer

    @property
    def name(self) -> str:
        return self.manifest.get("name", self.path.name)

    @property
    def classes(self) -> list[str]:
        return list(self.manifest["classes"])

    @property
    def saved_model_dir(self) -> Path:
        return self.path / SAVED_MODEL_DIR

    @property
    def runtime(self) -> str:
        """Which TensorFlow runtime the SavedModel is for: ``compat`` (TF1) or ``tf2``."""
        return self.manifest.get("runtime", "compat")


def check_dialogue(manifest: dict[str, Any], classes: list[str]) -> None:
    """The dialogue's part of a manifest, as :class:`~legacy_assistant.serving.dialogue.DialoguePolicy`
    reads it: ``threshold``, ``oos_label``, ``fallback`` and the ``intents`` rules. Raises
    ValueError naming the field, so that a damaged or hand-edited manifest is refused at load
    rather than failing a request (an intent with no responses was a 500 on every message it
    matched) or booting no worker."""
    threshold = manifest.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be a number from 0 to 1, got {threshold!r}")
    oos_label = manifest.get("oos_label")
    if oos_label is not None and oos_label not in classes:
        raise ValueError(f"oos_label {oos_label!r} is not one of the classes")
    fallback = manifest.get("fallback")
    if not isinstance(fallback, dict):
        raise ValueError(f"fallback must be an object with responses, got {fallback!r:.60}")
    _check_responses(fallback.get("responses"), "fallback.responses")
    intents = manifest.get("intents")
    if not isinstance(intents, list):
        raise ValueError(f"intents must be a list of intent rules, got {intents!r:.60}")
    tags: set[str] = set()
    for number, rule in enumerate(intents):
        where = f"intents[{number}]"
        if not isinstance(rule, dict):
            raise ValueError(f"{where} must be an object, got {rule!r:.60}")
        tag = rule.get("tag")
        if not isinstance(tag, str) or not tag:
            raise ValueError(f"{where}.tag must be a non-empty name, got {tag!r:.60}")
        if tag in tags:
            raise ValueError(f"{where}: intent {tag!r} has two rules")
        tags.add(tag)
        _check_responses(rule.get("responses"), f"intent {tag!r}: responses")
        for name in ("context_set", "context_filter", "next_tag"):
            if rule.get(name) is not None and not isinstance(rule[name], str):
                raise ValueError(f"intent {tag!r}: {name} must be text or null, got {rule[name]!r:.60}")
        for name in ("free_text", "interrupts"):
            if not isinstance(rule.get(name, False), bool):
                raise ValueError(f"intent {tag!r}: {name} must be true or false, got {rule[name]!r:.60}")
    for rule in intents:
        # the dialogue follows a next_tag only to a rule it has: one naming none never asked its question
        if rule.get("next_tag") is not None and rule["next_tag"] not in tags:
            raise ValueError(f"intent {rule['tag']!r}: next_tag {rule['next_tag']!r:.60} names no intent rule")


def check_network(network: Any) -> None:
    """The manifest's ``network`` object, as :meth:`NetworkSpec.from_dict` reads it for a
    migration, and stricter: its sizes whole numbers and ``dropout`` a number, not text that
    happens to convert. Raises ValueError naming the field (``network.dropout``), so that an
    option this code does not build, or a bad value, is refused at load and not first at a
    migration."""
    if not isinstance(network, dict):
        raise ValueError(f"network must be an object, got {network!r:.60}")
    for name in SIZES:
        value = network.get(name)
        if type(value) is not int:
            raise ValueError(f"network.{name} must be a whole number, got {value!r:.60}")
    hidden = network.get("hidden_units")
    if not isinstance(hidden, list) or not all(type(units) is int and units > 0 for units in hidden):
        raise ValueError(f"network.hidden_units must be a list of positive whole numbers, got {hidden!r}")
    dropout = network.get("dropout", 0.0)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)):
        raise ValueError(f"network.dropout must be a number from 0 to below 1, got {dropout!r:.60}")
    NetworkSpec.from_dict(network)  # unknown options, the ranges, linear_shortcut


def _check_responses(responses: Any, where: str) -> None:
    if not isinstance(responses, list) or not responses:
        raise ValueError(f"{where} must be a non-empty list of replies, got {responses!r:.60}")
    if not all(isinstance(text, str) and text.strip() for text in responses):
        raise ValueError(f"{where} must hold only non-empty texts")


def verify_artifact(path: str | Path, *, name_old_words: bool = True) -> ArtifactInfo:
    """Check that ``path`` is a complete, unaltered artifact; raise :class:`ArtifactError` if not.
    It warns of the words of its vocabulary that this release's text processing no longer
    produces; ``name_old_words=False`` for a check that a load of the model follows, which warns
    of them itself (``info``, ``serve --dev``, a reload's look at the directory)."""
    root = Path(path)
    manifest = verify_directory(root, manifest_name=MANIFEST, formats=(FORMAT,))
    manifest_path = root / MANIFEST
    try:
        if "featurizer" not in manifest:
            raise ValueError("featurizer is missing")
        featurizer = Featurizer.from_dict(manifest["featurizer"])
        classes = manifest.get("classes")
        if not isinstance(classes, list) or not all(isinstance(c, str) and c for c in classes):
            raise ValueError("classes must be a list of non-empty names")
        if len(set(classes)) != len(classes):
            raise ValueError("classes holds a name twice")
        check_network(manifest.get("network"))
        if (
            len(classes) != manifest["network"]["n_classes"]
            or featurizer.n_features != manifest["network"]["n_features"]
        ):
            raise ValueError("classes or vocabulary do not match the network's shape")
        check_dialogue(manifest, classes)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ArtifactError(f"{manifest_path}: inconsistent manifest: {exc}") from None
    if manifest.get("runtime", "compat") not in RUNTIMES:
        raise ArtifactError(f"{manifest_path}: unknown runtime {manifest.get('runtime')!r}, expected one of {RUNTIMES}")
    if name_old_words:
        _warn_words_read_otherwise(root, featurizer)
    return ArtifactInfo(root, manifest, featurizer)


def _warn_words_read_otherwise(root: Path, featurizer: Featurizer) -> None:
    """Warn when the model was trained with words that today's text processing no longer
    produces: its answers to messages holding them changed since it was trained."""
    words = featurizer.words_read_otherwise()
    if not words:
        return
    # repr, not ascii: letters of any script stay readable ("straße", not "stra\xdfe"), and what
    # no one sees (a zero-width space, a bidi mark) is still written as an escape
    shown = ", ".join(repr(word) for word in words[:WORDS_NAMED])
    more = f" and {len(words) - WORDS_NAMED} more" if len(words) > WORDS_NAMED else ""
    log.warning(
        "%s: %d %s of the model's vocabulary (%d terms) can no longer come out of this release's "
        "text processing (it sets emoji apart from words, drops Arabic and Hebrew vowel marks, the "
        "tatweel and invisible format characters, writes typographic apostrophes and hyphens as "
        "typed ones, Hebrew's geresh and gershayim typed as quotes as those marks and the Arabic "
        "alef with a hamza or madda and the alef maksura as a bare alef and a yeh, and folds the "
        "case of German sharp s, Greek final sigma and accents and Turkish dotless i): %s%s. "
        "Messages holding them are read otherwise than in training, so their "
        "answers may differ from the model's own; retrain it with 'legacy-assistant train' from its "
        "data to read them as it answers now",
        root,
        len(words),
        "word" if len(words) == 1 else "words",
        featurizer.n_features,
        shown,
        more,
    )
