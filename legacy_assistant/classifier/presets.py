"""Named training recipes. ``legacy-assistant train --preset NAME``; ``--config`` overrides them.

* ``ngrams`` (the default): word unigrams and bigrams plus character 1-4-grams of every word,
  sublinear TF-IDF, words and character n-grams L2-normalised to equal weight; one ReLU layer of
  128 with dropout 0.5, plus a linear shortcut from the features straight to the logits (a
  wide-and-deep network: the linear part keeps what a linear model on n-grams sees, the hidden
  layer adds feature interactions); Adam with a linearly falling learning rate, label smoothing 0.1 and 30%
  of each sentence's features dropped at random while training; batches of 128 sentences of
  similar length, at least 1,500 optimizer steps; the first layer trained in its batched form
  (each distinct feature of a batch looked up once: about 1.5 times faster on CLINC150). The
  step budget and the falling learning rate take the place of early stopping (which would cut
  the schedule short; ``--patience`` still turns it on). When the validation data holds
  out-of-scope examples, the fallback threshold is tuned on them (see :mod:`legacy_assistant.classifier.thresholds`).
* ``classic``: the classic Keras chatbot recipe, exactly as :class:`TrainingConfig`'s defaults:
  binary bag of Lancaster-stemmed words, 128 ReLU -> dropout 0.5 -> 64 ReLU -> dropout 0.5,
  Keras SGD with Nesterov momentum 0.9 at 0.01 and its time decay 1e-6 (the rate of step t is
  0.01 / (1 + 1e-6 t)), 200 epochs of batch 5, threshold 0.25. The decay looks negligible but
  is not: without it the epoch loss turns upward after about ten epochs on CLINC150 full, in
  Keras as here (``benchmarks/classic_fidelity.py``).

Both build the same network (``compat.classifier.network.build_logits``); they differ in features,
widths and training only.
"""

from __future__ import annotations

from legacy_assistant.classifier.config import TrainingConfig
from legacy_assistant.classifier.features import FeatureConfig
from legacy_assistant.errors import ConfigError
from legacy_assistant.text.processing import TextConfig

DEFAULT_PRESET = "ngrams"

PRESETS: dict[str, TrainingConfig] = {
    "classic": TrainingConfig(),
    "ngrams": TrainingConfig(
        features=FeatureConfig(
            text=TextConfig(tokenizer="treebank", stemmer="none", lowercase=True),
            word_ngrams=(1, 2),
            char_ngrams=(1, 4),
            min_count=2,
            max_features=25_000,
            weighting="tfidf",
            normalize=True,
            balance_parts=True,
        ),
        hidden_units=(128,),
        dropout=0.5,
        linear_shortcut=True,
        feature_dropout=0.3,
        optimizer="adam",
        learning_rate=0.004,
        lr_schedule="linear",
        lr_decay=0.0,  # Adam: the linear schedule is the decay
        label_smoothing=0.1,
        batch_size=128,
        bucket_by_length=True,
        batch_rows=True,
        epochs=1,
        min_steps=1500,
    ),
}


def preset(name: str) -> TrainingConfig:
    """The named recipe; :class:`ConfigError` lists the known names for an unknown one."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(sorted(PRESETS))}") from None
