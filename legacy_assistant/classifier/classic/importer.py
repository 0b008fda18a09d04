"""Import a classic Keras chatbot (``chatbot_model.h5`` + words + classes + intents) as a model.

The classic recipe: a binary bag of Lancaster-stemmed, lower-cased ``nltk.word_tokenize`` tokens
over the sorted ``words`` list, into ``Dense(128, relu) -> Dropout(0.5) -> Dense(64, relu) ->
Dropout(0.5) -> Dense(len(classes), softmax)``. That is this project's network and featurizer
with the ``classic`` tokenizer, so the import is a change of container: the Keras weights become
``classifier/hidden_<i>/`` and ``classifier/output/`` variables, ``words`` becomes the
vocabulary (column order kept), ``classes`` the class list (output order kept), and the intents
file supplies responses and dialogue rules. The result is a compat-mode artifact like any
trained one (checksums, atomic write), which ``migrate`` can turn into a TF2 one.

Nothing is unpickled: the weights come from HDF5 via h5py (:mod:`legacy_assistant.classifier.classic.keras_h5`),
``words``/``classes`` from JSON or text (:mod:`legacy_assistant.classifier.classic.string_lists`).
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from compat.classifier.schema import NetworkSpec, bias_name, kernel_name
from legacy_assistant.artifacts.directory import file_record
from legacy_assistant.classifier.artifact import export_artifact
from legacy_assistant.classifier.classic.keras_h5 import KerasDenseModel, read_keras_dense_model
from legacy_assistant.classifier.classic.string_lists import read_string_list
from legacy_assistant.classifier.config import DEFAULT_THRESHOLD, TrainingConfig
from legacy_assistant.classifier.features import FeatureConfig, Featurizer
from legacy_assistant.classifier.intents import FALLBACK_TAG, IntentSet, load_intents
from legacy_assistant.errors import ArtifactError
from legacy_assistant.text.processing import TextConfig

log = logging.getLogger(__name__)

CLASSIC_TEXT = TextConfig(tokenizer="classic", stemmer="lancaster", lowercase=True)
MAX_WORDS_NAMED = 5  # a warning names this many unreachable words, then counts the rest


def classic_weights(model: KerasDenseModel, spec: NetworkSpec) -> dict[str, np.ndarray]:
    """The Dense chain as this project's variables, layer by layer in ``spec``'s order:
    ``classifier/hidden_<i>/...``, then ``classifier/output/...``."""
    weights: dict[str, np.ndarray] = {}
    for name, layer in zip(spec.layer_names, model.layers):
        weights[kernel_name(name)] = layer.kernel.astype(np.float32)
        weights[bias_name(name)] = layer.bias.astype(np.float32)
    return weights


def import_classic(
    model_h5: str | Path,
    words_path: str | Path,
    classes_path: str | Path,
    intents_path: str | Path,
    out_dir: str | Path,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    force: bool = False,
) -> Path:
    """Write the classic chatbot as a compat-mode model directory; returns its path.

    Raises:
        ArtifactError: unreadable or unsupported files, or files that do not fit together
            (vocabulary size vs. first kernel, classes vs. output layer and intents).
        IntentsError: the intents file is invalid.
    """
    from legacy_assistant.classifier.training import TrainedModel

    keras = read_keras_dense_model(model_h5)
    words = read_string_list(words_path, "words")
    classes = read_string_list(classes_path, "classes")
    intents = load_intents(intents_path)
    _check_fit(keras, words, classes, intents, Path(model_h5), Path(words_path), Path(classes_path))
    _check_stemmed(words, intents, Path(words_path))
    _warn_unreachable_words(words, words_path, CLASSIC_TEXT)

    hidden = tuple(int(layer.kernel.shape[1]) for layer in keras.layers[:-1])
    features = FeatureConfig(text=CLASSIC_TEXT, weighting="binary")
    config = TrainingConfig(features=features, hidden_units=hidden, dropout=keras.dropout, threshold=threshold)
    spec = NetworkSpec.from_options(len(words), len(classes), config)
    summary: dict[str, Any] = {
        "imported_from": "keras-h5",
        "architecture": keras.architecture_source,
        "keras_version": keras.keras_version,
        "features": len(words),
        "classes": len(classes),
    }
    # the intents file's out-of-scope intent, when the model has its class: as train records it
    oos_label = next((i.tag for i in intents.intents if i.out_of_scope and i.tag in classes), None)
    model = TrainedModel(
        Featurizer(features, words),
        list(classes),
        spec,
        classic_weights(keras, spec),
        config,
        [],
        summary,
        oos_label=oos_label,
    )
    source = {
        "keras_h5": file_record(model_h5),
        "words": file_record(words_path),
        "classes": file_record(classes_path),
        "intents": file_record(intents_path),
    }
    return export_artifact(model, intents, out_dir, force=force, plot=False, source=source)


def _check_fit(
    keras: KerasDenseModel,
    words: list[str],
    classes: list[str],
    intents: IntentSet,
    h5: Path,
    words_path: Path,
    classes_path: Path,
) -> None:
    # both files are named: either may be the one that does not belong (a words list of another run)
    n_in = keras.layers[0].kernel.shape[0]
    n_out = keras.layers[-1].kernel.shape[1]
    if n_in != len(words):
        raise ArtifactError(
            f"{h5}: the first layer takes {n_in} inputs but the words list {words_path} has {len(words)} entries"
        )
    if n_out != len(classes):
        raise ArtifactError(
            f"{h5}: the output layer has {n_out} units but the classes list {classes_path} has {len(classes)} entries"
        )
    if FALLBACK_TAG in classes:
        # the model's answers of that class would read as "not understood", at full confidence
        raise ArtifactError(
            f"{classes_path}: class {FALLBACK_TAG!r} is the reserved fallback tag (the intent holding the "
            "fallback's answers), not a class a model may predict: rename it, in the classes list and the "
            "intents file alike"
        )
    unknown = [tag for tag in classes if tag not in intents]
    if unknown:
        raise ArtifactError(f"{intents.source}: no intent for class(es) {', '.join(map(repr, unknown))}")
    if words != sorted(words):
        log.warning("words are not sorted: kept in the given order, which is the kernel's row order")
    if classes != sorted(classes):
        # the tutorial sorts its classes before it builds the one-hot targets: a list in another
        # order gives every output unit another intent's name
        log.warning(
            "classes are not sorted, as the classic tutorial's are: kept in the given order, which must be the "
            "output layer's unit order, or every answer goes to the wrong intent"
        )
    answering = [intent.tag for intent in intents.answering if intent.patterns and intent.tag not in classes]
    for tag in answering:
        log.warning(
            "%s: intent %r has patterns but is not one of the model's classes: the model can never predict it",
            intents.source,
            tag,
        )


def _check_stemmed(words: list[str], intents: IntentSet, words_path: Path) -> None:
    """Refuse a words list made with another stemmer than Lancaster's, or none (tutorials that
    lemmatize or use Porter's): messages are Lancaster-stemmed here, so a word such as
    ``morning`` (stemmed ``morn``) would never match and the model would answer otherwise than
    the classic one. Judged on the intents file's patterns: another stemming of their tokens
    (Porter, Snowball, none) gives more of the list's words than Lancaster's does."""
    from nltk.stem import LancasterStemmer, PorterStemmer, SnowballStemmer

    from legacy_assistant.text.processing import TextProcessor

    texts, _ = intents.examples()
    # the classic processing stems each lower-cased token on its own: one tokenizing pass serves all
    unstemmed_processor = TextProcessor(replace(CLASSIC_TEXT, stemmer="none"))
    tokens = sorted({token for text in texts for token in unstemmed_processor.tokens(text)})
    stemmers: dict[str, Callable[[str], str]] = {
        "Lancaster": LancasterStemmer().stem,
        "Porter": PorterStemmer().stem,
        "Snowball": SnowballStemmer("english").stem,
        "no": str,
    }
    made = {name: {token: stem(token) for token in tokens} for name, stem in stemmers.items()}
    present = set(words)
    found = {name: present & set(stems.values()) for name, stems in made.items()}
    best = max(found, key=lambda name: len(found[name]))
    if len(found[best]) <= len(found["Lancaster"]):
        return
    token_of = {stem: token for token, stem in made[best].items()}
    odd = [word for word in words if word in found[best] and word not in found["Lancaster"]]
    shown = ", ".join(
        f"{word!r} (Lancaster makes {made['Lancaster'][token_of[word]]!r} of {token_of[word]!r})"
        for word in odd[:MAX_WORDS_NAMED]
    )
    raise ArtifactError(
        f"{words_path}: the words were made with {best} stemming, not Lancaster's: {len(found[best])} of "
        f"{len(words)} are the intents' words so stemmed, {len(found['Lancaster'])} their Lancaster stems; "
        f"{shown}. This importer reproduces the classic recipe, which Lancaster-stems each word, so those "
        "words would never match a message; train a model on the intents file instead: "
        "legacy-assistant train --preset classic"
    )


def unreachable_words(words: list[str], text: TextConfig) -> list[tuple[str, str]]:
    """``(word, why)`` for each vocabulary word that ``text``'s processing can never produce from
    a message: it NFKC-normalises, lower-cases (when set) and splits at spaces, so a word that
    changes under the first two or holds a space matches nothing and its kernel row is dead."""
    found: list[tuple[str, str]] = []
    for word in words:
        normal = unicodedata.normalize("NFKC", word)
        if any(character.isspace() for character in word):
            found.append((word, "holds a space"))
        elif normal != word:
            found.append((word, f"not NFKC, which is {ascii(normal)}"))
        elif text.lowercase and word.lower() != word:
            found.append((word, "upper case"))
    return found


def _warn_unreachable_words(words: list[str], words_path: str | Path, text: TextConfig) -> None:
    """Warn, not refuse: the import stays faithful to the classic model, dead rows included."""
    found = unreachable_words(words, text)
    if not found:
        return
    shown = ", ".join(f"{ascii(word)} ({why})" for word, why in found[:MAX_WORDS_NAMED])
    more = f" and {len(found) - MAX_WORDS_NAMED} more" if len(found) > MAX_WORDS_NAMED else ""
    log.warning(
        "%s: %d of %d words can never match a message, so their kernel rows are never used "
        "(messages are NFKC-normalised, lower-cased and split at spaces): %s%s",
        words_path,
        len(found),
        len(words),
        shown,
        more,
    )
