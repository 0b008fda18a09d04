"""Training configuration: one JSON-serialisable object, stored in every artifact.

The defaults are the classic recipe (binary bag of Lancaster-stemmed words, 128-64 ReLU with
dropout 0.5, SGD with Nesterov momentum 0.9 at lr 0.01, 200 epochs of batch 5).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from legacy_assistant.errors import ConfigError
from legacy_assistant.features import FeatureConfig

DEFAULT_THRESHOLD = 0.25


@dataclass(frozen=True)
class TrainingConfig:
    features: FeatureConfig = field(default_factory=FeatureConfig)
    hidden_units: tuple[int, ...] = (128, 64)
    dropout: float = 0.5
    optimizer: str = "sgd"
    learning_rate: float = 0.01
    momentum: float = 0.9
    nesterov: bool = True
    label_smoothing: float = 0.0
    weight_decay: float = 0.0
    sparse_updates: bool = False  # see compat.classifier.OptimizerSpec
    epochs: int = 200
    batch_size: int = 5
    validation_split: float = 0.0
    early_stopping_patience: int = 0  # epochs without val-loss improvement; 0 = off
    seed: int = 1
    threshold: float = DEFAULT_THRESHOLD  # below this confidence the dialogue falls back

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")
        if not 0.0 <= self.validation_split < 1.0:
            raise ConfigError(f"validation_split must be in [0, 1), got {self.validation_split}")
        if self.early_stopping_patience < 0:
            raise ConfigError("early_stopping_patience must be >= 0")
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"threshold must be in [0, 1], got {self.threshold}")
        if not self.hidden_units or any(int(u) < 1 for u in self.hidden_units):
            raise ConfigError(f"hidden_units must be a non-empty list of positive widths, got {self.hidden_units}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["features"] = self.features.to_dict()
        data["hidden_units"] = list(self.hidden_units)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainingConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown training setting(s): {', '.join(unknown)}")
        data = dict(data)
        if "features" in data:
            data["features"] = FeatureConfig.from_dict(data["features"])
        if "hidden_units" in data:
            data["hidden_units"] = tuple(int(u) for u in data["hidden_units"])
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(str(exc)) from None

    def with_overrides(self, **changes: Any) -> "TrainingConfig":
        """A copy with the non-``None`` values of ``changes`` applied."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def load_config(path: str | Path) -> TrainingConfig:
    """Read a JSON training config; unknown keys and bad values raise :class:`ConfigError`."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a JSON object")
    try:
        return TrainingConfig.from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
