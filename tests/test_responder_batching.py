"""The responder's training settings and its batches: shapes, padding, alignment, bucketing."""
from __future__ import annotations

import json

import numpy as np
import pytest

from legacy_assistant.errors import ConfigError, DataError
from legacy_assistant.responder.batching import (
    EncodedPair,
    batches_per_epoch,
    encode_pairs,
    epoch_order,
    pad_batch,
    sorted_batches,
)
from legacy_assistant.responder.config import ResponderTrainingConfig, load_responder_config
from legacy_assistant.responder.pairs import TrainingPair
from legacy_assistant.responder.vocabulary import END, PAD, Vocabulary

# --- config -----------------------------------------------------------------------------------


def test_config_round_trips_through_json():
    config = ResponderTrainingConfig(batch_size=8, epochs=3, learning_rate=0.01, dropout=0.1, max_minutes=1.5)
    assert ResponderTrainingConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("batch_size", 0, "batch_size must be at least 1"),
        ("epochs", 2.5, "epochs must be an integer"),
        ("epochs", True, "epochs must be an integer"),
        ("learning_rate", 0, "learning_rate must be above 0"),
        ("learning_rate", "fast", "learning_rate must be a finite number"),
        ("dropout", 1.0, r"dropout must be in \[0, 1\)"),
        ("held_out_fraction", -0.1, "held_out_fraction"),
        ("max_reply_tokens", 1, "max_reply_tokens must be at least 2"),
        ("vocab_size", 4, "vocab_size must be above 4"),
        ("patience", -1, "patience"),
        ("max_minutes", float("nan"), "max_minutes must be a finite number"),
        ("max_minutes", 10**400, "max_minutes must be a finite number"),
        ("sampled_softmax", -3, "sampled_softmax"),
        ("decay_epochs", -1, "decay_epochs must be >= 0"),
        ("decay_epochs", 1.5, "decay_epochs must be an integer"),
        ("final_learning_rate", -1e-4, r"final_learning_rate must be in \[0, learning_rate = 0.001\]"),
        ("final_learning_rate", 0.5, r"final_learning_rate must be in \[0, learning_rate"),
        ("average_decay", 1.0, r"average_decay must be in \[0, 1\)"),
        ("average_decay", -0.5, r"average_decay must be in \[0, 1\)"),
        ("tied_output", 1, "tied_output must be true or false"),
    ],
)
def test_config_refuses_bad_values_naming_the_field(field, value, message):
    with pytest.raises(ConfigError, match=message):
        ResponderTrainingConfig.from_dict({field: value})


def test_config_that_is_no_object_is_named_in_json_words():
    with pytest.raises(ConfigError, match=r"^run.json: settings must be a JSON object, got null$"):
        ResponderTrainingConfig.from_dict(None, "run.json")


def test_config_file_unknown_keys_and_bad_json_name_the_file(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text('{"epochs": 4, "learning_rat": 0.1}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"settings.json: unknown setting\(s\): learning_rat"):
        load_responder_config(path)
    path.write_text('{"epochs": 4,\n "batch_size": }', encoding="utf-8")
    with pytest.raises(ConfigError, match="line 2"):
        load_responder_config(path)
    path.write_text('{"epochs": 4, "batch_size": 0}', encoding="utf-8")
    with pytest.raises(ConfigError, match="settings.json: batch_size must be at least 1"):
        load_responder_config(path)
    path.write_text("[4]", encoding="utf-8")  # named as JSON names it, not "got list"
    with pytest.raises(ConfigError, match=r"settings.json: a config must be a JSON object, got a list$"):
        load_responder_config(path)
    path.write_text('{"epochs": 4}', encoding="utf-8")
    assert load_responder_config(path, ResponderTrainingConfig(batch_size=3)) == ResponderTrainingConfig(
        epochs=4, batch_size=3
    )


def test_config_spec_takes_sizes_from_the_data():
    config = ResponderTrainingConfig(embedding_size=16, decoder_units=24, sampled_softmax=64)
    spec = config.spec(vocab_size=500, n_conditions=5)
    assert (spec.vocab_size, spec.n_conditions, spec.embedding_size, spec.decoder_units) == (500, 5, 16, 24)
    assert spec.sampled_softmax == 64
    assert config.spec(vocab_size=40, n_conditions=5).sampled_softmax == 0  # would sample everything
    assert config.differences(config.with_overrides(epochs=99, seed=None)) == ["epochs"]


# --- batches ----------------------------------------------------------------------------------

VOCABULARY = Vocabulary.from_texts(["a b c d e f g h i j k l"], max_size=100)
CONDITIONS = ("neutral", "anger", "joy", "fear", "sadness")


def _encode(pairs, turns=3, turn_tokens=4, reply_tokens=5):
    return encode_pairs(pairs, VOCABULARY, CONDITIONS, turns, turn_tokens, reply_tokens)


def test_padded_batch_has_the_contracts_shapes_and_alignment():
    pairs = _encode([
        TrainingPair(("a b", "c"), "d e", "joy"),
        TrainingPair(("a", "b c d e f g", "h", "i"), "j k l a b c d", "fear"),
    ])
    batch = pad_batch(pairs, max_context_turns=3)
    ids = VOCABULARY.token_id
    assert batch.context_ids.dtype == np.int32 and batch.reply_ids.dtype == np.int32
    assert batch.context_ids.shape == (2, 3, 4)  # the longest turn, truncated to 4 tokens
    assert batch.reply_ids.shape == (2, 5)  # four tokens and END
    # Turns are right-aligned: the first pair's two turns fill the last two slots.
    assert batch.context_ids[0].tolist() == [[PAD] * 4, [ids("a"), ids("b"), PAD, PAD], [ids("c"), PAD, PAD, PAD]]
    # A long turn keeps its last tokens; only the last three turns are kept.
    assert batch.context_ids[1, 0].tolist() == [ids("d"), ids("e"), ids("f"), ids("g")]
    assert batch.context_ids[1, 2].tolist() == [ids("i"), PAD, PAD, PAD]
    assert batch.reply_ids.tolist() == [
        [ids("d"), ids("e"), END, PAD, PAD],
        [ids("j"), ids("k"), ids("l"), ids("a"), END],
    ]
    assert batch.condition_ids.tolist() == [2, 3]
    assert batch.reply_tokens == 3 + 5


def test_unknown_condition_is_refused():
    with pytest.raises(DataError, match="condition 'sarcasm'"):
        _encode([TrainingPair(("a",), "b", "sarcasm")])


def _pairs_of_lengths(n: int, seed: int = 0) -> list[EncodedPair]:
    rng = np.random.default_rng(seed)
    return [
        EncodedPair(((4,) * int(rng.integers(1, 30)),), (5,) * int(rng.integers(1, 30)) + (END,), 0) for _ in range(n)
    ]


def test_epoch_order_covers_every_pair_once_and_buckets_by_length():
    pairs = _pairs_of_lengths(1000)
    batches = epoch_order(pairs, batch_size=10, seed=1, epoch=0)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(1000))

    def spread(groups) -> float:  # mean range of reply lengths within a batch
        return float(np.mean([np.ptp([len(pairs[i].reply) for i in group]) for group in groups]))

    shuffled = np.random.default_rng(5).permutation(1000).reshape(100, 10)
    assert spread(batches) < spread(shuffled) / 5


@pytest.mark.parametrize("n_pairs, batch_size", [(0, 4), (1, 4), (7, 3), (64, 8), (1000, 7), (2049, 64)])
def test_batches_per_epoch_counts_what_epoch_order_cuts(n_pairs, batch_size):
    pairs = [EncodedPair(((5,) * (1 + i % 4),), (6,) * (1 + i % 9) + (END,), 0) for i in range(n_pairs)]
    counts = {len(epoch_order(pairs, batch_size, seed=3, epoch=epoch)) for epoch in range(3)}
    assert counts == {batches_per_epoch(n_pairs, batch_size)}


def test_epoch_order_is_deterministic_for_seed_and_epoch():
    pairs = _pairs_of_lengths(300)
    first = epoch_order(pairs, 16, seed=3, epoch=2)
    assert first == epoch_order(pairs, 16, seed=3, epoch=2)
    assert first != epoch_order(pairs, 16, seed=3, epoch=3)
    assert first != epoch_order(pairs, 16, seed=4, epoch=2)


def test_sorted_batches_for_evaluation_cover_every_pair_in_length_order():
    pairs = _pairs_of_lengths(95)
    batches = sorted_batches(pairs, 10)
    assert [len(b) for b in batches] == [10] * 9 + [5]
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(95))
    assert [pairs[i].length for i in flat] == sorted(pairs[i].length for i in flat)
