"""The per-step decoding loop (one ``Session.run`` per token, as cakechat decoded) gives exactly
the replies of the in-graph greedy decode, on tiny networks built here."""

from __future__ import annotations

import numpy as np
import pytest

from compat.interface import SavedModelError
from compat.responder.saved_model import LoadedResponder, export_responder
from compat.responder.spec import END, PAD, ResponderSpec
from compat.responder.stepwise import StepwiseDecoder, read_saved_model_weights
from compat.responder.trainer import ResponderOptimizerSpec, ResponderTrainer

SPEC = ResponderSpec(
    vocab_size=30,
    n_conditions=3,
    embedding_size=8,
    encoder_units=8,
    context_units=16,
    decoder_units=12,  # != context_units: the decoder's start goes through decoder_init
    condition_size=4,
    max_context_turns=3,
    max_turn_tokens=6,
    max_reply_tokens=10,
)
MAX_LENGTH = 10


def _contexts(rng: np.random.Generator, batch: int) -> tuple[np.ndarray, np.ndarray]:
    context = rng.integers(4, SPEC.vocab_size, size=(batch, SPEC.max_context_turns, 5)).astype(np.int32)
    context[:, 0, :] = PAD  # a missing earlier turn
    context[::2, 1, 3:] = PAD  # and turns of several lengths
    return context, rng.integers(0, SPEC.n_conditions, size=batch).astype(np.int32)


@pytest.fixture(scope="module")
def trainer():
    """A network trained a little on replies that depend on the condition: they end (END)
    before the length limit, at lengths that differ by row."""
    rng = np.random.default_rng(0)
    with ResponderTrainer(SPEC, ResponderOptimizerSpec(learning_rate=0.02), seed=3) as trainer:
        context, conditions = _contexts(rng, 24)
        replies = np.full((24, 6), PAD, np.int32)
        for row, condition in enumerate(conditions):
            words = [5 + condition, 9, 10 + condition][: 1 + condition] + [END]
            replies[row, : len(words)] = words
        for _ in range(80):
            trainer.train_batch(context, conditions, replies)
        yield trainer


def _same(a, b) -> None:
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.lengths, b.lengths)
    np.testing.assert_allclose(a.log_probs, b.log_probs, rtol=0, atol=1e-5)


def test_untrained_network_replies_match_to_the_length_limit():
    rng = np.random.default_rng(1)
    context, conditions = _contexts(rng, 6)
    with ResponderTrainer(SPEC, ResponderOptimizerSpec(), seed=11) as untrained:
        in_graph = untrained.decode(context, conditions, mode="greedy", max_length=MAX_LENGTH)
        with StepwiseDecoder(SPEC, untrained.get_weights(), 1, 1) as stepwise:
            step_by_step = stepwise.greedy(context, conditions, MAX_LENGTH)
    _same(in_graph, step_by_step)
    assert in_graph.lengths.max() > 3  # the loop really ran for several steps


def test_trained_network_replies_match_and_end_early(trainer):
    rng = np.random.default_rng(2)
    context, conditions = _contexts(rng, 9)
    in_graph = trainer.decode(context, conditions, mode="greedy", max_length=MAX_LENGTH)
    with StepwiseDecoder(SPEC, trainer.get_weights()) as stepwise:
        batched = stepwise.greedy(context, conditions, MAX_LENGTH)
        one_by_one = [stepwise.greedy(context[i : i + 1], conditions[i : i + 1], MAX_LENGTH) for i in range(9)]
    _same(in_graph, batched)
    for row, single in enumerate(one_by_one):
        np.testing.assert_array_equal(single.ids[0], in_graph.ids[row])
    ended = (in_graph.ids == END).any(axis=2)
    assert ended.all() and in_graph.lengths.max() < MAX_LENGTH
    assert len(set(in_graph.lengths.ravel().tolist())) > 1  # rows end at different steps


def test_weights_read_from_the_saved_model(trainer, tmp_path):
    export_dir = str(tmp_path / "saved_model")
    export_responder(trainer.get_weights(), SPEC, export_dir)
    weights = read_saved_model_weights(export_dir, SPEC)
    assert set(weights) == set(trainer.get_weights())
    rng = np.random.default_rng(3)
    context, conditions = _contexts(rng, 5)
    with LoadedResponder(export_dir) as loaded, StepwiseDecoder(SPEC, weights) as stepwise:
        _same(
            loaded.decode(context, conditions, mode="greedy", max_length=MAX_LENGTH),
            stepwise.greedy(context, conditions, MAX_LENGTH),
        )


def test_one_step_is_one_token_of_log_probabilities(trainer):
    rng = np.random.default_rng(4)
    context, conditions = _contexts(rng, 3)
    with StepwiseDecoder(SPEC, trainer.get_weights()) as stepwise:
        static, state = stepwise.encode(context, conditions)
        log_probs, new_state = stepwise.step(np.full(3, 2, np.int32), state, static)
    assert static.shape == (3, 3 * SPEC.decoder_units) and state.shape == (3, SPEC.decoder_units)
    assert log_probs.shape == (3, SPEC.vocab_size) and new_state.shape == state.shape
    np.testing.assert_allclose(np.exp(log_probs).sum(axis=1), 1.0, atol=1e-5)


def test_unreadable_saved_model_is_refused(tmp_path):
    with pytest.raises(SavedModelError, match="cannot read the responder variables"):
        read_saved_model_weights(str(tmp_path / "missing"), SPEC)


def test_bad_inputs_are_refused(trainer):
    with StepwiseDecoder(SPEC, trainer.get_weights()) as stepwise:
        with pytest.raises(ValueError, match="context_ids"):
            stepwise.greedy(np.full((1, 3, 2), SPEC.vocab_size, np.int32), np.zeros(1, np.int32), MAX_LENGTH)
        with pytest.raises(ValueError, match="max_length"):
            stepwise.greedy(np.full((1, 3, 2), 5, np.int32), np.zeros(1, np.int32), 0)


def test_the_compiled_loop_gives_the_same_replies_and_log_probabilities(trainer):
    rng = np.random.default_rng(5)
    context, conditions = _contexts(rng, 7)
    weights = trainer.get_weights()
    with StepwiseDecoder(SPEC, weights) as plain, StepwiseDecoder(SPEC, weights, compiled=True) as compiled:
        a = plain.greedy(context, conditions, MAX_LENGTH)
        b = compiled.greedy(context, conditions, MAX_LENGTH)
        static, state = compiled.encode(context, conditions)
        log_probs, _ = compiled.step(np.full(7, 2, np.int32), state, static)
        plain_static, plain_state = plain.encode(context, conditions)
        plain_log_probs, _ = plain.step(np.full(7, 2, np.int32), plain_state, plain_static)
        with pytest.raises(ValueError, match="previous"):
            compiled.step(np.full((7, 1), 2, np.int32), state, static)  # a wrong rank, refused before running
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.log_probs, b.log_probs)
    np.testing.assert_array_equal(static, plain_static)
    np.testing.assert_array_equal(log_probs, plain_log_probs)
    _same(trainer.decode(context, conditions, mode="greedy", max_length=MAX_LENGTH), b)


@pytest.mark.parametrize("compiled", [False, True])
def test_contexts_without_any_token_match_too(trainer, compiled):
    """All-PAD contexts (the zero context vector): the in-graph decode answers them, and so must
    the loop (both failed with ``InvalidArgumentError: Size should be >= 0``)."""
    context, conditions = np.zeros((3, SPEC.max_context_turns, 2), np.int32), np.array([0, 1, 2], np.int32)
    in_graph = trainer.decode(context, conditions, mode="greedy", max_length=MAX_LENGTH)
    with StepwiseDecoder(SPEC, trainer.get_weights(), compiled=compiled) as stepwise:
        _same(in_graph, stepwise.greedy(context, conditions, MAX_LENGTH))
