"""What both sides of the responder agree on, without TensorFlow: token ids, the network's
shape (:class:`ResponderSpec`) and what a decode returns (:class:`DecodeResult`).

The application imports this module to write and read ``responder.json`` and to type its
calls; importing it costs no TensorFlow start-up.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

# Fixed token ids. Vocabulary ids from 4 on are words.
PAD = 0  # padding; never predicted, never counted
UNK = 1  # out-of-vocabulary word; never produced by a decode
START = 2  # first decoder input; never produced by a decode
END = 3  # ends a reply; counted as a token of the reply
N_SPECIAL = 4
ALWAYS_BANNED = (PAD, UNK, START)

# How the ``sample`` computations draw a token from ``softmax(score / temperature)``
# (:mod:`compat.responder.sampling`). A spec without the field is a responder exported before it
# existed, whose SavedModel draws with ``tf.random.stateless_categorical``.
CATEGORICAL_DRAW = "categorical"
GUMBEL_DRAW = "gumbel"
SAMPLE_DRAWS = (CATEGORICAL_DRAW, GUMBEL_DRAW)


@dataclass(frozen=True)
class ResponderSpec:
    """Shape of the HRED responder network (sizes are widths of float32 vectors).

    Attributes:
        vocab_size: number of token ids, the 4 special ids included.
        n_conditions: rows of the condition embedding (``condition_ids`` lie in ``[0, n_conditions)``).
        embedding_size: token embedding width, shared by the utterance encoder and the decoder.
        encoder_units: state width of each direction of the bidirectional utterance encoder; a
            turn is encoded as ``2 * encoder_units`` numbers.
        context_units: state width of the context GRU over the encoded turns (the context vector).
        decoder_units: state width of the decoder GRU.
        condition_size: width of the learned condition embedding fed to the decoder at every step.
        max_context_turns: turns of history the application feeds (``context_ids``' second axis).
        max_turn_tokens: most tokens per turn the application feeds.
        max_reply_tokens: most reply tokens (END included) trained on and decoded by default.
        dropout: rate on the token embeddings and the decoder outputs while training (0: none).
        sampled_softmax: 0 trains with the full softmax; otherwise the number of classes sampled
            per batch for ``tf.nn.sampled_softmax_loss``. Evaluation always uses the full softmax.
        sample_draw: how sampling draws a token: ``gumbel`` (the Gumbel-max trick on
            ``tf.random.stateless_uniform``: a seed gives the same replies whatever TensorFlow's
            thread pool) or ``categorical`` (``tf.random.stateless_categorical``, whose draws
            depend on the intra-op thread count; what responders exported before this field
            draw with, so :meth:`from_dict` reads a spec without it as ``categorical``, and
            :meth:`to_dict` leaves it out for them).
    """

    vocab_size: int
    n_conditions: int
    embedding_size: int = 128
    encoder_units: int = 128
    context_units: int = 256
    decoder_units: int = 256
    condition_size: int = 32
    max_context_turns: int = 3
    max_turn_tokens: int = 30
    max_reply_tokens: int = 30
    dropout: float = 0.0
    sampled_softmax: int = 0
    sample_draw: str = GUMBEL_DRAW

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.type == "str":
                if value not in SAMPLE_DRAWS:
                    raise ValueError(f"ResponderSpec.{field.name} must be one of {SAMPLE_DRAWS}, got {value!r}")
            elif field.type == "int":
                if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                    raise ValueError(f"ResponderSpec.{field.name} must be an integer, got {value!r}")
            elif isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
                raise ValueError(f"ResponderSpec.{field.name} must be a number, got {value!r}")
        if self.vocab_size <= N_SPECIAL:
            raise ValueError(f"ResponderSpec.vocab_size must exceed the {N_SPECIAL} special ids, got {self.vocab_size}")
        positive = (
            "n_conditions",
            "embedding_size",
            "encoder_units",
            "context_units",
            "decoder_units",
            "condition_size",
            "max_context_turns",
            "max_turn_tokens",
            "max_reply_tokens",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"ResponderSpec.{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ResponderSpec.dropout must be in [0, 1), got {self.dropout}")
        if not 0 <= self.sampled_softmax < self.vocab_size:
            raise ValueError(
                f"ResponderSpec.sampled_softmax must be 0 (full softmax) or below vocab_size "
                f"{self.vocab_size}, got {self.sampled_softmax}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of every field (Python ints, floats and the draw's name); a
        ``categorical`` draw is left out, as responders exported before the field wrote it."""
        data: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type == "str":
                if value != CATEGORICAL_DRAW:
                    data[f.name] = value
            else:
                data[f.name] = int(value) if f.type == "int" else float(value)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResponderSpec:
        """The spec stored by :meth:`to_dict`; ``ValueError`` naming the field that is wrong."""
        if not isinstance(data, Mapping):
            raise ValueError(f"ResponderSpec: expected a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"ResponderSpec: unknown field(s) {', '.join(unknown)}")
        for required in ("vocab_size", "n_conditions"):
            if required not in data:
                raise ValueError(f"ResponderSpec.{required} is missing")
        return cls(**{"sample_draw": CATEGORICAL_DRAW, **data})


@dataclass
class DecodeResult:
    """Replies decoded for a batch of contexts.

    Attributes:
        ids: int32 ``[batch, candidates, max_length]``: each reply's tokens, END, then PAD. A reply
            that reached ``max_length`` without END has no END.
        log_probs: float32 ``[batch, candidates]``: sum of the model's natural-log token
            probabilities over the reply, END included, without temperature, repetition penalty
            or banning (what :meth:`score` gives for the same ids).
        lengths: int32 ``[batch, candidates]``: tokens of each reply, END included.
    """

    ids: np.ndarray
    log_probs: np.ndarray
    lengths: np.ndarray
