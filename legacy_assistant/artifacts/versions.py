"""The library versions a model directory's manifest records beside the runtime's own."""

from __future__ import annotations

from compat.environment import kernel_settings
from legacy_assistant import __version__


def recorded_versions(library_versions: dict[str, str]) -> dict[str, str]:
    """``library_versions`` (the runtime's: TensorFlow, Python, numpy) with NLTK's and this
    project's. NLTK tokenizes and stems every text a model reads, and detokenizes a responder's
    replies: another release of it may give the same sentence other features or the same reply
    other words, so a rerun that is to reproduce a model needs its version too."""
    import nltk

    return {**library_versions, "nltk": nltk.__version__, "legacy_assistant": __version__}


def recorded_environment() -> dict[str, str | None]:
    """The settings of the environment that change a trained model's last bits
    (:data:`compat.environment.KERNEL_SETTINGS`: ``TF_ENABLE_ONEDNN_OPTS``, whose 1 trains other
    weights than the runtimes' default 0) as TensorFlow read them when this process imported it
    (None: unset), for the manifest of a model it trained: a value set in the environment
    afterwards did not choose the kernels that trained it, and a program that imported TensorFlow
    itself before either runtime, with it unset, is recorded with what that TensorFlow chose."""
    return kernel_settings()
