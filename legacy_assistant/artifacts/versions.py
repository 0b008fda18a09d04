"""The library versions a model directory's manifest records beside the runtime's own."""

from __future__ import annotations

from legacy_assistant import __version__


def recorded_versions(library_versions: dict[str, str]) -> dict[str, str]:
    """``library_versions`` (the runtime's: TensorFlow, Python, numpy) with NLTK's and this
    project's. NLTK tokenizes and stems every text a model reads, and detokenizes a responder's
    replies: another release of it may give the same sentence other features or the same reply
    other words, so a rerun that is to reproduce a model needs its version too."""
    import nltk

    return {**library_versions, "nltk": nltk.__version__, "legacy_assistant": __version__}
