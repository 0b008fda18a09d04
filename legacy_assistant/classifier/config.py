"""Training configuration: one JSON-serialisable object, stored in every artifact.

The field defaults are the classic recipe (binary bag of Lancaster-stemmed words, 128-64 ReLU
with dropout 0.5, Keras SGD with Nesterov momentum 0.9 at lr 0.01 and decay 1e-6, 200 epochs of
batch 5); named
recipes live in :mod:`legacy_assistant.classifier.presets`, and a JSON file of settings overrides them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from legacy_assistant.classifier.features import FeatureConfig
from legacy_assistant.common.fields import check_count_list, check_field_types, shown
from legacy_assistant.common.jsonfile import read_json_file
from legacy_assistant.errors import ConfigError

DEFAULT_THRESHOLD = 0.25
EARLY_STOPPING_METRICS = ("val_loss", "val_accuracy")
# How the fallback threshold is chosen (training.threshold_plan): "auto" picks the first that
# applies of out-of-scope validation tuning, in-scope calibration and the fixed ``threshold``.
THRESHOLD_FROM = ("auto", "oos_validation", "in_scope", "fixed")
LR_SCHEDULES = ("constant", "linear")
OPTIMIZERS = ("sgd", "adam")
MAX_WIDTH = 65_536  # widest hidden layer: its kernel is [features, width] float32
MAX_SEED = 2**32 - 2  # the largest seed numpy's RandomState takes, less the one added for feature dropout


@dataclass(frozen=True)
class TrainingConfig:
    """Every training setting. The field defaults are the classic recipe (preset ``classic``);
    :mod:`legacy_assistant.classifier.presets` names this and the other recipes."""

    features: FeatureConfig = field(default_factory=FeatureConfig)
    # the network options (compat.classifier.schema.NETWORK_OPTIONS, read by name into its NetworkSpec)
    hidden_units: tuple[int, ...] = (128, 64)
    dropout: float = 0.5
    linear_shortcut: bool = False  # a linear path from the features to the logits
    optimizer: str = "sgd"
    learning_rate: float = 0.01
    momentum: float = 0.9
    nesterov: bool = True
    lr_schedule: str = "constant"  # or "linear": falls to ~0 by the last step (training.learning_rate_schedule)
    # Keras SGD's ``decay`` (optimizer "sgd" only; Adam ignores it): step t (0-based) uses
    # learning_rate / (1 + lr_decay * t), the update Keras SGD makes (compat.classifier.trainer)
    lr_decay: float = 1e-6
    label_smoothing: float = 0.0
    weight_decay: float = 0.0
    sparse_updates: bool = False  # see compat.classifier.trainer.OptimizerSpec
    batch_rows: bool = False  # train the first layer in its batched form (compat.layers.sparse_dense)
    epochs: int = 200
    min_steps: int = 0  # raise epochs until training takes at least this many optimizer steps
    batch_size: int = 5
    bucket_by_length: bool = False  # batch sentences of similar length together (training.epoch_batches)
    feature_dropout: float = 0.0  # training only: drop each feature of a sentence with this probability
    validation_split: float = 0.0
    early_stopping_patience: int = 0  # epochs without improvement of the metric below; 0 = off
    early_stopping_metric: str = "val_loss"  # or "val_accuracy"; the best epoch's weights are kept
    seed: int = 1
    threshold: float = DEFAULT_THRESHOLD  # below this confidence the dialogue falls back
    oos_class: bool = True  # learn out-of-scope training examples as a class of their own
    tune_threshold: bool = True  # off: the threshold is always the fixed one (as threshold_from="fixed")
    threshold_oos_share: float = 0.2  # share of out-of-scope messages the tuned threshold expects (thresholds.py)
    threshold_from: str = "auto"  # one of THRESHOLD_FROM; an explicit threshold in a config file sets "fixed"
    # in-scope calibration (thresholds.in_scope_threshold): at most this share of in-scope
    # sentences falls back, measured on in-scope validation sentences or on a stratified hold-out
    # of this share of the training data (a model trained on the rest; the final model is then
    # trained on everything); "auto" needs at least threshold_min_sentences of them
    threshold_fallback_rate: float = 0.01
    threshold_holdout: float = 0.2
    threshold_min_sentences: int = 200

    def __post_init__(self) -> None:
        check_field_types(self, unbounded=("seed",))
        if not self.hidden_units:
            raise ConfigError("hidden_units must be a non-empty list of positive widths, got []")
        check_count_list("hidden_units", self.hidden_units, high=MAX_WIDTH)
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer must be one of {shown(OPTIMIZERS)}, got {shown(self.optimizer)}")
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate must be above 0, got {self.learning_rate}")
        for name in ("dropout", "label_smoothing", "momentum"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay}")
        # numpy's RandomState takes seeds below 2**32, and feature dropout draws from seed + 1
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"seed must be a whole number from 0 to {MAX_SEED}, got {shown(self.seed)}")
        if self.epochs < 1:
            raise ConfigError(f"epochs must be at least 1, got {self.epochs}")
        if self.min_steps < 0:
            raise ConfigError(f"min_steps must be >= 0, got {self.min_steps}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")
        if not 0.0 <= self.validation_split < 1.0:
            raise ConfigError(f"validation_split must be in [0, 1), got {self.validation_split}")
        if self.early_stopping_patience < 0:
            raise ConfigError(f"early_stopping_patience must be >= 0, got {self.early_stopping_patience}")
        if self.early_stopping_metric not in EARLY_STOPPING_METRICS:
            raise ConfigError(
                f"early_stopping_metric must be one of {shown(EARLY_STOPPING_METRICS)}, "
                f"got {shown(self.early_stopping_metric)}"
            )
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"lr_schedule must be one of {shown(LR_SCHEDULES)}, got {shown(self.lr_schedule)}")
        if self.lr_decay < 0:
            raise ConfigError(f"lr_decay must be >= 0, got {self.lr_decay}")
        if self.lr_decay and self.optimizer == "sgd" and self.sparse_updates:
            raise ConfigError("lr_decay needs dense updates: set sparse_updates false or lr_decay 0")
        if not 0.0 <= self.feature_dropout < 1.0:
            raise ConfigError(f"feature_dropout must be in [0, 1), got {self.feature_dropout}")
        if not 0.0 < self.threshold_oos_share < 1.0:
            raise ConfigError(f"threshold_oos_share must be in (0, 1), got {self.threshold_oos_share}")
        if self.threshold_from not in THRESHOLD_FROM:
            raise ConfigError(
                f"threshold_from must be one of {shown(THRESHOLD_FROM)}, got {shown(self.threshold_from)}"
            )
        if not 0.0 <= self.threshold_fallback_rate < 1.0:
            raise ConfigError(f"threshold_fallback_rate must be in [0, 1), got {self.threshold_fallback_rate}")
        if not 0.0 < self.threshold_holdout < 1.0:
            raise ConfigError(f"threshold_holdout must be in (0, 1), got {self.threshold_holdout}")
        if self.threshold_min_sentences < 1:
            raise ConfigError(f"threshold_min_sentences must be at least 1, got {self.threshold_min_sentences}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"threshold must be in [0, 1], got {self.threshold}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["features"] = self.features.to_dict()
        data["hidden_units"] = list(self.hidden_units)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> TrainingConfig:
        """Settings from a JSON object (as :meth:`to_dict` gives); a bad one raises
        :class:`ConfigError` naming its path (``features.text.stemmer``)."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"training settings must be an object, got {shown(data)}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown training setting(s): {', '.join(unknown)}")
        data = dict(data)
        if "features" in data:
            data["features"] = FeatureConfig.from_dict(data["features"], "features")
        if "hidden_units" in data:
            data["hidden_units"] = check_count_list("hidden_units", data["hidden_units"], high=MAX_WIDTH)
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(str(exc)) from None

    def with_overrides(self, **changes: Any) -> TrainingConfig:
        """A copy with the non-``None`` values of ``changes`` applied."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def merge_settings(base: TrainingConfig, overrides: dict[str, Any], source: str = "config") -> TrainingConfig:
    """``base`` with the settings in ``overrides`` (keys as in :meth:`TrainingConfig.to_dict`)
    applied; ``features`` and its ``text`` are merged key by key, not replaced whole.

    A ``threshold`` given without ``threshold_from`` is an explicit choice: it sets
    ``threshold_from`` to ``"fixed"``, so no tuning or calibration replaces it."""
    if not isinstance(overrides, dict):
        raise ConfigError(f"{source}: settings must be a JSON object")
    merged = base.to_dict()
    if "threshold" in overrides and "threshold_from" not in overrides:
        merged["threshold_from"] = "fixed"
    for key, value in overrides.items():
        if key == "features" and isinstance(value, dict):
            features = dict(merged["features"])
            for feature_key, feature_value in value.items():
                if feature_key == "text" and isinstance(feature_value, dict):
                    features["text"] = {**features["text"], **feature_value}
                else:
                    features[feature_key] = feature_value
            merged["features"] = features
        else:
            merged[key] = value
    try:
        return TrainingConfig.from_dict(merged)
    except (TypeError, ValueError) as exc:  # ConfigError is a ValueError
        raise ConfigError(f"{source}: {exc}") from None


def load_config(path: str | Path, base: TrainingConfig | None = None) -> TrainingConfig:
    """Read a JSON file of training settings and apply them over ``base`` (default: the
    classic recipe). Unknown keys and bad values raise :class:`ConfigError` naming the file."""
    data = read_json_file(path, lambda problem: ConfigError(f"{path}: {problem}"))
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a JSON object")
    return merge_settings(base or TrainingConfig(), data, str(path))
