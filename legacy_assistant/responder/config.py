"""The responder's training settings: one JSON-serialisable object, stored in its checkpoints
and in the exported model.

Network sizes default to :class:`compat.responder.spec.ResponderSpec`'s; the vocabulary size
and the number of conditions come from the data (:meth:`ResponderTrainingConfig.spec`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compat.responder.inputs import MAX_DECODE_LENGTH
from legacy_assistant.common.fields import MAX_COUNT, is_finite_number, json_kind, shown
from legacy_assistant.common.jsonfile import read_json_file
from legacy_assistant.errors import ConfigError

if TYPE_CHECKING:  # spec.py imports no TensorFlow, but keep this module free of compat entirely
    from compat.responder.spec import ResponderSpec

# Settings a resumed run may change: they decide when training stops, not what it computes.
RESUMABLE_CHANGES = frozenset({"epochs", "patience", "max_minutes", "checkpoint_every"})

# Upper bounds: beyond them a setting is a typo, and TensorFlow or numpy would fail deep inside.
MAX_WIDTH = 65_536  # embedding, GRU and condition sizes
MAX_TOKENS = 100_000  # turns of context, tokens of a turn or a reply
WIDTHS = ("embedding_size", "encoder_units", "context_units", "decoder_units", "condition_size")
LENGTHS = ("max_context_turns", "max_turn_tokens", "max_reply_tokens")


@dataclass(frozen=True)
class ResponderTrainingConfig:
    """Every setting of a responder training run.

    Network (see :class:`compat.responder.spec.ResponderSpec`): ``embedding_size``,
    ``encoder_units`` (per direction), ``context_units``, ``decoder_units``, ``condition_size``,
    the input limits ``max_context_turns``, ``max_turn_tokens``, ``max_reply_tokens`` (END
    included), ``dropout`` and ``sampled_softmax`` (0: full softmax; else the classes sampled
    per batch, used only while it is below the vocabulary's size). ``tied_output`` trains the
    output kernel as ``projection @ embedding^T`` (input and output embeddings tied; the model
    is exported with that product as its output kernel, an ordinary network).

    Vocabulary: at most ``vocab_size`` ids (the 4 special ids included) of tokens seen at least
    ``min_count`` times in the training dialogues.

    Training: Adam at ``learning_rate`` with gradients clipped to global norm ``clip_norm``
    (with ``decay_epochs`` above 0 the rate falls linearly, step by step, to
    ``final_learning_rate`` at the end of that many epochs, and stays there), ``batch_size``
    pairs a step, at most ``epochs`` epochs; with ``average_decay`` above 0 (for example 0.999)
    an exponential moving average of the weights is kept beside them, and validation, the
    choice of the best epoch and the exported model use the average; ``held_out_fraction`` of the
    dialogues are held out for validation perplexity unless a held-out corpus is given;
    ``drop_repeated_dialogues`` keeps only the first copy of a dialogue that occurs more than
    once (the same turns, and conditions but the first turn's), on either side, instead of training on every copy;
    training stops after ``patience`` epochs without a better validation perplexity (0: never)
    and after ``max_minutes`` of wall time in one run (0: no limit); a checkpoint is written
    every ``checkpoint_every`` steps and at each epoch's end.
    """

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
    tied_output: bool = False
    vocab_size: int = 20000
    min_count: int = 2
    batch_size: int = 64
    epochs: int = 10
    learning_rate: float = 1e-3
    decay_epochs: int = 0
    final_learning_rate: float = 0.0
    average_decay: float = 0.0
    clip_norm: float = 5.0
    patience: int = 3
    held_out_fraction: float = 0.05
    drop_repeated_dialogues: bool = False
    seed: int = 1
    max_minutes: float = 0.0
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if field.type == "bool":
                if not isinstance(value, bool):
                    raise ConfigError(f"{field.name} must be true or false, got {shown(value)}")
            elif field.type == "int":
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ConfigError(f"{field.name} must be an integer, got {shown(value)}")
                high = MAX_WIDTH if field.name in WIDTHS else MAX_TOKENS if field.name in LENGTHS else MAX_COUNT
                if field.name == "max_reply_tokens":
                    high = MAX_DECODE_LENGTH  # the longest reply a decode may ask for
                if field.name != "seed" and value > high:
                    raise ConfigError(f"{field.name} must be at most {high:,}, got {value}")
            elif not is_finite_number(value):
                raise ConfigError(f"{field.name} must be a finite number, got {shown(value)}")
        for name in (
            "embedding_size",
            "encoder_units",
            "context_units",
            "decoder_units",
            "condition_size",
            "max_context_turns",
            "max_turn_tokens",
            "batch_size",
            "epochs",
            "min_count",
            "checkpoint_every",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.seed < 2**63:  # numpy's generators take no negative seed; TensorFlow's are int64
            raise ConfigError(f"seed must be a whole number from 0 to {2**63 - 1}, got {self.seed}")
        if self.max_reply_tokens < 2:
            raise ConfigError(f"max_reply_tokens must be at least 2 (a token and END), got {self.max_reply_tokens}")
        if self.vocab_size <= 4:
            raise ConfigError(f"vocab_size must be above 4 (the special ids), got {self.vocab_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.sampled_softmax < 0:
            raise ConfigError(
                f"sampled_softmax must be 0 (full softmax) or a number of classes, got {self.sampled_softmax}"
            )
        if self.learning_rate <= 0.0:
            raise ConfigError(f"learning_rate must be above 0, got {self.learning_rate}")
        if self.decay_epochs < 0:
            raise ConfigError(f"decay_epochs must be >= 0 (0: a constant learning rate), got {self.decay_epochs}")
        if not 0.0 <= self.final_learning_rate <= self.learning_rate:
            raise ConfigError(
                f"final_learning_rate must be in [0, learning_rate = {self.learning_rate:g}], "
                f"got {self.final_learning_rate}"
            )
        if not 0.0 <= self.average_decay < 1.0:
            raise ConfigError(f"average_decay must be in [0, 1) (0: no weight average), got {self.average_decay}")
        if self.clip_norm <= 0.0:
            raise ConfigError(f"clip_norm must be above 0, got {self.clip_norm}")
        if self.patience < 0:
            raise ConfigError(f"patience must be >= 0 (0: no early stopping), got {self.patience}")
        if not 0.0 <= self.held_out_fraction < 1.0:
            raise ConfigError(f"held_out_fraction must be in [0, 1), got {self.held_out_fraction}")
        if self.max_minutes < 0.0:
            raise ConfigError(f"max_minutes must be >= 0 (0: no limit), got {self.max_minutes}")

    def spec(self, vocab_size: int, n_conditions: int) -> ResponderSpec:
        """The network for a vocabulary of ``vocab_size`` ids and ``n_conditions`` conditions.
        Sampled softmax is dropped when it would sample the whole (small) vocabulary."""
        from compat.responder.spec import ResponderSpec

        sampled = self.sampled_softmax if self.sampled_softmax < vocab_size else 0
        return ResponderSpec(
            vocab_size=vocab_size,
            n_conditions=n_conditions,
            embedding_size=self.embedding_size,
            encoder_units=self.encoder_units,
            context_units=self.context_units,
            decoder_units=self.decoder_units,
            condition_size=self.condition_size,
            max_context_turns=self.max_context_turns,
            max_turn_tokens=self.max_turn_tokens,
            max_reply_tokens=self.max_reply_tokens,
            dropout=self.dropout,
            sampled_softmax=sampled,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, source: str = "responder training config") -> ResponderTrainingConfig:
        """The inverse of :meth:`to_dict` (missing keys take their defaults); an unknown key or
        a bad value raises :class:`ConfigError` naming ``source`` and the field."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: settings must be a JSON object, got {json_kind(data)}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown setting(s): {', '.join(unknown)}")
        try:
            return cls(**data)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    def with_overrides(self, **changes: Any) -> ResponderTrainingConfig:
        """A copy with the non-``None`` values of ``changes`` applied (validated again)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def differences(self, other: ResponderTrainingConfig) -> list[str]:
        """Names of the fields whose values differ, in field order."""
        return [f.name for f in fields(self) if getattr(self, f.name) != getattr(other, f.name)]


def load_responder_config(path: str | Path, base: ResponderTrainingConfig | None = None) -> ResponderTrainingConfig:
    """Settings from a JSON file applied over ``base`` (default: the defaults)."""
    data = read_json_file(path, lambda problem: ConfigError(f"{path}: {problem}"))
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a JSON object, got {json_kind(data)}")
    merged = {**(base or ResponderTrainingConfig()).to_dict(), **data}
    return ResponderTrainingConfig.from_dict(merged, str(path))
