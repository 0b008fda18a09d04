"""Load an exported model once and rank intents for any number of texts, from any thread.

The predictor does not care which TensorFlow runtime computes the probabilities: it holds a
:class:`compat.interface.Classifier`. In compat mode (the default) that is
:class:`compat.classifier.saved_model.LoadedClassifier`: the SavedModel in its own graph and
session, the graph finalized, one session shared by every thread (``Session.run`` is
thread-safe, and nothing here builds an op after loading). A migrated model (``runtime: "tf2"``
in its manifest) is loaded by :class:`compat.tf2.saved_model.Tf2Classifier` in a process that
chose the TF2 runtime (:mod:`compat.selection`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from compat.classifier.schema import NetworkSpec
from compat.interface import Classifier
from compat.selection import selected, source_note
from legacy_assistant.artifacts.directory import check_load_arguments, load_consistently, runtime_mismatch
from legacy_assistant.classifier.artifact import MANIFEST, ArtifactInfo, verify_artifact
from legacy_assistant.classifier.features import SparseRows, length_sorted_batches
from legacy_assistant.common.closing import Closing
from legacy_assistant.common.fields import checked_strings, shown
from legacy_assistant.common.limits import tensorflow_thread_pools
from legacy_assistant.errors import ArtifactError, RequestError

Ranking = list[tuple[str, float]]
# what the text arguments take: a 1-D numpy array of strings is read as the list it holds
Texts = Sequence[str] | np.ndarray


def _checked_texts(texts: Texts) -> Sequence[str]:
    """``texts`` as a sequence of strings; :class:`RequestError` otherwise. A bare string would
    be ranked character by character, so it is refused; a numpy array of strings is taken as
    the list it holds."""
    return checked_strings(
        texts,
        "texts must be a list of strings, got {type} (for one text, pass [text])",
        "every text must be a string, got {type}",
    )


def _check_count(name: str, value: int | None) -> None:
    """:class:`RequestError` unless ``value`` is None or a whole number >= 1 (a negative
    ``batch_size`` would compute nothing and ``top=-1`` drop the last class, without a word)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
        raise RequestError(f"{name} must be a whole number >= 1 (or None), got {value!r}")


def _check_network(info: ArtifactInfo, variable_shapes: dict[str, tuple[int, ...]] | None) -> None:
    """Refuse a manifest whose ``network`` (hidden layers, shortcut) is not the SavedModel's, as
    far as the runtime tells its variables: the answers come from the SavedModel, but what the
    manifest says of the network (``info``, a migration) would be another network's."""
    if variable_shapes is None:
        return
    network = info.manifest["network"]
    expected = NetworkSpec.from_dict(network).variables()
    if variable_shapes == expected:
        return
    differing = sorted(
        name for name in set(expected) | set(variable_shapes) if expected.get(name) != variable_shapes.get(name)
    )
    shortcut = network.get("linear_shortcut", False)
    described = f"hidden_units {shown(network.get('hidden_units'))}, linear_shortcut {shown(shortcut)}"
    raise ArtifactError(
        f"{info.path / MANIFEST}: network ({described}) differs from the SavedModel's: "
        + ", ".join(
            f"{name} {_shape_text(expected.get(name))} by the manifest, {_shape_text(variable_shapes.get(name))} "
            "in the SavedModel"
            for name in differing
        )
    )


def _shape_text(shape: tuple[int, ...] | None) -> str:
    return "absent" if shape is None else str(list(shape))


@dataclass(frozen=True)
class Prediction:
    """One text's result.

    Attributes:
        ranking: ``(intent, confidence)`` pairs, most confident first.
        known_features: how many of the text's features the vocabulary knows; 0 means the
            model saw nothing it was trained on, and the ranking reflects biases only.
    """

    ranking: Ranking
    known_features: int


class Predictor:
    """``rank(["hello there"], top=2) -> [[('greeting', 0.90...), ('location', 0.006...)]]``."""

    def __init__(self, info: ArtifactInfo, classifier: Classifier) -> None:
        self.info = info
        self._classifier = classifier
        self._closing = Closing(f"Predictor {info.path}")
        self.classes = info.classes
        self._class_array = np.asarray(self.classes, dtype=object)
        if classifier.n_features != info.featurizer.n_features or classifier.n_classes != len(self.classes):
            raise ArtifactError(
                f"{info.path}: the SavedModel's shape ({classifier.n_features} features, {classifier.n_classes} "
                f"classes) does not match assistant.json ({info.featurizer.n_features}, {len(self.classes)})"
            )
        _check_network(info, getattr(classifier, "variable_shapes", None))

    @classmethod
    def load(
        cls, path: str | Path, intra_op_threads: int = 0, inter_op_threads: int = 0, runtime: str | None = None
    ) -> Predictor:
        """Verify checksums, then load the SavedModel; raises :class:`ArtifactError` on any damage.

        ``intra_op_threads`` and ``inter_op_threads`` size TensorFlow's thread pools: 0 lets
        TensorFlow choose, narrowed to a container's CPU limit, which TensorFlow does not see
        (:func:`legacy_assistant.common.limits.tensorflow_threads`). ``runtime`` (``compat`` or
        ``tf2``) defaults to the process's choice (:func:`compat.selection.selected`); it must
        be the one the model was written for.
        """
        check_load_arguments(path, runtime)
        intra, inter = tensorflow_thread_pools(intra_op_threads, inter_op_threads, runtime or selected())
        return load_consistently(
            path,
            lambda: cls._load_once(path, intra, inter, runtime),
            manifest_name=MANIFEST,
            discard=lambda predictor: predictor.close(),
        )

    @classmethod
    def _load_once(
        cls, path: str | Path, intra_op_threads: int, inter_op_threads: int, runtime: str | None
    ) -> Predictor:
        from compat.interface import SavedModelError
        from compat.selection import load_classifier

        info = verify_artifact(path)
        source = source_note(runtime)
        runtime = runtime or selected()
        if info.runtime != runtime:
            raise runtime_mismatch(info.path, info.runtime, runtime, source)
        try:
            classifier = load_classifier(str(info.saved_model_dir), runtime, intra_op_threads, inter_op_threads)
        except SavedModelError as exc:
            raise ArtifactError(str(exc)) from None
        try:
            return cls(info, classifier)
        except BaseException:
            classifier.close()  # refused (its shape does not match the manifest): free its graph and session
            raise

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def manifest(self) -> dict[str, Any]:
        return self.info.manifest

    def features(self, texts: Texts) -> SparseRows:
        """The texts' features as the model was trained on (sparse rows); raises
        :class:`RequestError` for ``texts`` that are not a list of strings (and
        :class:`~legacy_assistant.errors.ModelClosed` after :meth:`close`, as every call)."""
        self._closing.check()
        return self.info.featurizer.encode(_checked_texts(texts))

    def known_features(self, texts: Texts) -> np.ndarray:
        """int32 ``[len(texts)]``: :attr:`Prediction.known_features` of each text (0: not understood)."""
        return self.info.featurizer.known_counts(self.features(texts))

    def predict_proba(self, texts: Texts, batch_size: int | None = None) -> np.ndarray:
        """float32 ``[len(texts), n_classes]``; columns follow :attr:`classes`.

        With ``batch_size``, the texts go through in batches of that many texts of similar
        length (the same results up to float rounding, with far less padding and memory for
        large evaluation sets).
        """
        self._closing.check()
        texts = _checked_texts(texts)
        _check_count("batch_size", batch_size)
        if not texts:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        features = self.features(texts)
        with self._closing.call():
            if batch_size is None or len(texts) <= batch_size:
                return self._classifier.predict_proba(features.ids, features.weights)
            out = np.zeros((len(texts), len(self.classes)), dtype=np.float32)
            for rows, batch in length_sorted_batches(features, batch_size):
                out[rows] = self._classifier.predict_proba(batch.ids, batch.weights)
            return out

    def predict(self, texts: Texts, top: int | None = None) -> list[Prediction]:
        """Rankings (optionally cut to ``top``) and vocabulary coverage for each text; raises
        :class:`RequestError` for ``texts`` that are not a list of strings or a ``top`` below 1."""
        self._closing.check()
        texts = _checked_texts(texts)
        _check_count("top", top)
        if not texts:
            return []
        features = self.features(texts)
        with self._closing.call():
            probabilities = self._classifier.predict_proba(features.ids, features.weights)
        known = self.info.featurizer.known_counts(features)
        order = np.argsort(-probabilities, axis=1, kind="stable")
        if top is not None:
            order = order[:, :top]
        return [
            Prediction(
                list(zip(self._class_array[row_order].tolist(), row[row_order].astype(float).tolist())),
                int(n_known),
            )
            for row, row_order, n_known in zip(probabilities, order, known)
        ]

    def rank(self, texts: Texts, top: int | None = None) -> list[Ranking]:
        """For each text, ``(intent, confidence)`` pairs sorted by falling confidence."""
        return [prediction.ranking for prediction in self.predict(texts, top)]

    def rank_one(self, text: str, top: int | None = None) -> Ranking:
        self._closing.check()
        if not isinstance(text, str):
            raise RequestError(f"text must be a string, got {type(text).__name__}")
        return self.rank([text], top)[0]

    def __reduce__(self) -> Any:
        # Its cached featurizer would fail first, with a PicklingError that names a cache and not
        # the real obstacle (the graph and session behind it): say what to do instead.
        # copy.copy and copy.deepcopy come here too, and would share or fail on the same session.
        raise TypeError(
            "a Predictor cannot be pickled or copied (it holds a loaded TensorFlow model): "
            "give the other process the model directory and load it there with Predictor.load; "
            "in this process, share this one (its methods may be called from many threads at once)"
        )

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called: every call then raises :class:`~legacy_assistant.errors.ModelClosed`."""
        return self._closing.closed

    def close(self) -> None:
        """Close the model's session; calls made after this (or cut short by it in another thread)
        raise :class:`~legacy_assistant.errors.ModelClosed`. Closing again does nothing."""
        self._closing.closed = True  # first: a call this cuts short sees it
        # let go of the graph and session, so that they are freed while this object is still
        # referenced (a ``with`` block's name, a list of models)
        classifier, self._classifier = self._classifier, self._closing.released()
        classifier.close()

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
