"""The responder network: the graph against its numpy reference, padding, training, reproducibility."""
from __future__ import annotations

import re

import numpy as np
import pytest

from compat.responder import reference
from compat.responder.spec import END, PAD, ResponderSpec

TINY = ResponderSpec(
    vocab_size=24,
    n_conditions=3,
    embedding_size=8,
    encoder_units=6,
    context_units=10,
    decoder_units=12,
    condition_size=3,
    max_reply_tokens=8,
)


def reply_rows(replies: list[list[int]], width: int) -> np.ndarray:
    """int32 ``[len(replies), width]``: each reply's tokens, END, then PAD."""
    rows = np.zeros((len(replies), width), np.int32)
    for i, tokens in enumerate(replies):
        rows[i, : len(tokens) + 1] = list(tokens) + [END]
    return rows


# Four contexts (3 turns of up to 4 tokens, missing turns all PAD) and the replies to learn.
CONTEXTS = np.array(
    [
        [[0, 0, 0, 0], [4, 5, 6, 0], [7, 8, 0, 0]],
        [[0, 0, 0, 0], [0, 0, 0, 0], [9, 10, 11, 12]],
        [[13, 14, 0, 0], [15, 0, 0, 0], [16, 17, 0, 0]],
        [[0, 0, 0, 0], [4, 5, 0, 0], [18, 19, 0, 0]],
    ],
    np.int32,
)
REPLIES = reply_rows([[20, 21, 22], [23, 4, 5, 6], [7, 9, 11, 13, 15], [19]], 6)


def random_weights(spec: ResponderSpec, seed: int, scale: float = 0.5) -> dict[str, np.ndarray]:
    from compat.responder.network import variable_shapes

    rng = np.random.RandomState(seed)
    return {name: (rng.randn(*shape) * scale).astype(np.float32) for name, shape in variable_shapes(spec).items()}


# -- spec ------------------------------------------------------------------------------------


def test_spec_round_trips_and_names_bad_fields():
    spec = ResponderSpec(vocab_size=100, n_conditions=5, dropout=0.2, sampled_softmax=10)
    assert ResponderSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="colour"):
        ResponderSpec.from_dict({**spec.to_dict(), "colour": 1})
    with pytest.raises(ValueError, match="n_conditions"):
        ResponderSpec.from_dict({"vocab_size": 100})
    with pytest.raises(ValueError, match="decoder_units"):
        ResponderSpec.from_dict({**spec.to_dict(), "decoder_units": "256"})
    with pytest.raises(ValueError, match="vocab_size"):
        ResponderSpec(vocab_size=4, n_conditions=1)
    with pytest.raises(ValueError, match="sampled_softmax"):
        ResponderSpec(vocab_size=10, n_conditions=1, sampled_softmax=10)
    with pytest.raises(ValueError, match="dropout"):
        ResponderSpec(vocab_size=10, n_conditions=1, dropout=1.0)


def test_a_spec_without_sample_draw_is_a_responder_exported_before_the_gumbel_draw():
    """New specs draw with ``gumbel``; a stored spec without the field keeps the categorical
    draw its SavedModel holds, and such a spec is written back without the field."""
    spec = ResponderSpec(vocab_size=100, n_conditions=5)
    assert spec.sample_draw == "gumbel" and spec.to_dict()["sample_draw"] == "gumbel"
    old = {k: v for k, v in spec.to_dict().items() if k != "sample_draw"}
    assert ResponderSpec.from_dict(old).sample_draw == "categorical"
    assert ResponderSpec.from_dict(old).to_dict() == old
    assert ResponderSpec.from_dict({**old, "sample_draw": "gumbel"}) == spec
    with pytest.raises(ValueError, match="sample_draw"):
        ResponderSpec.from_dict({**old, "sample_draw": "uniform"})


# -- the graph against numpy -----------------------------------------------------------------


def test_gru_step_and_unroll_equal_numpy():
    """One step, and an unroll with lengths (and every step's output)."""
    from compat.graph_session import GraphSession
    from compat.rnn import GRU, unroll
    from compat.runtime import tf

    rng = np.random.RandomState(0)
    batch, time, inputs, units = 3, 5, 4, 7
    x = rng.randn(batch, time, inputs).astype(np.float32)
    h = rng.randn(batch, units).astype(np.float32)
    lengths = np.array([5, 2, 0], np.int32)
    with GraphSession() as gs, gs.bound():
        cell = GRU(inputs, units, "cell", seed=1)
        x_in = tf.placeholder(tf.float32, [None, None, inputs])
        h_in = tf.placeholder(tf.float32, [None, units])
        len_in = tf.placeholder(tf.int32, [None])
        projected = cell.project(x_in)
        step = cell.step(projected[:, 0], h_in)
        outputs, final = unroll(cell, projected, lengths=len_in, initial_state=h_in, return_sequences=True)
        gs.run(tf.global_variables_initializer())
        variables = [cell.kernel, cell.recurrent_kernel, cell.bias, cell.recurrent_bias]
        weights = [(rng.randn(*v.shape.as_list()) * 0.5).astype(np.float32) for v in variables]
        for variable, value in zip(variables, weights):
            variable.load(value, gs.session)
        got_step, got_outputs, got_final = gs.run([step, outputs, final], {x_in: x, h_in: h, len_in: lengths})
    np.testing.assert_allclose(got_step, reference.gru_step(x[:, 0], h, *weights), atol=1e-5)
    for row, length in enumerate(lengths):
        state = h[row : row + 1]
        for t in range(time):
            if t < length:
                state = reference.gru_step(x[row : row + 1, t], state, *weights)
                np.testing.assert_allclose(got_outputs[row, t], state[0], atol=1e-5)
            else:
                np.testing.assert_array_equal(got_outputs[row, t], 0.0)
        np.testing.assert_allclose(got_final[row], state[0], atol=1e-5)
    np.testing.assert_array_equal(got_final[2], h[2])  # an empty row keeps its initial state


@pytest.mark.parametrize("decoder_units", [12, 10], ids=["projected-initial-state", "context-as-initial-state"])
def test_encoder_decoder_step_and_scores_equal_numpy(decoder_units):
    """Context vectors, the decoder's first state, one decoder step from an arbitrary state, and
    teacher-forced token log-probs all match the numpy reference reading the same weights."""
    from compat.graph_session import GraphSession
    from compat.responder.network import ResponderNetwork
    from compat.responder.trainer import load_weights
    from compat.runtime import tf

    spec = ResponderSpec(**{**TINY.to_dict(), "decoder_units": decoder_units})
    weights = random_weights(spec, seed=decoder_units)
    rng = np.random.RandomState(1)
    conditions = np.array([0, 2, 1, 1], np.int32)
    previous = np.array([2, 7, 3, 23], np.int32)
    state = rng.randn(4, decoder_units).astype(np.float32)
    with GraphSession() as gs, gs.bound():
        network = ResponderNetwork(spec, seed=0)
        context_in = tf.placeholder(tf.int32, [None, None, None])
        condition_in = tf.placeholder(tf.int32, [None])
        previous_in = tf.placeholder(tf.int32, [None])
        state_in = tf.placeholder(tf.float32, [None, decoder_units])
        reply_in = tf.placeholder(tf.int32, [None, None])
        context = network.encode(context_in)
        start = network.decoder_start(context, condition_in)
        step_state = network.decoder_step(previous_in, state_in, start.static)
        step_log_probs = tf.nn.log_softmax(network.logits(step_state))
        token_log_probs = network.token_log_probs(network.teacher_forced(start, reply_in), reply_in)
        gs.run(tf.global_variables_initializer())
        load_weights(gs, {v.name.split(":")[0]: v for v in network.variables()}, weights)
        got = gs.run(
            [context, start.state, step_log_probs, step_state, token_log_probs],
            {context_in: CONTEXTS, condition_in: conditions, previous_in: previous, state_in: state, reply_in: REPLIES},
        )
    want_context = reference.encode_context(weights, CONTEXTS)
    want_log_probs, want_state = reference.decoder_step(weights, previous, state, want_context, conditions)
    np.testing.assert_allclose(got[0], want_context, atol=1e-5)
    np.testing.assert_allclose(got[1], reference.initial_state(weights, want_context), atol=1e-5)
    np.testing.assert_allclose(got[2], want_log_probs, atol=1e-5)
    np.testing.assert_allclose(got[3], want_state, atol=1e-5)
    want_scores = reference.reply_log_probs(weights, CONTEXTS, conditions, REPLIES)
    np.testing.assert_allclose(got[4], want_scores, atol=1e-5)
    assert np.all(got[4][REPLIES == PAD] == 0.0) and np.all(got[4][REPLIES != PAD] < 0.0)
    assert np.abs(np.diff(got[0], axis=0)).sum() > 0.1  # the contexts were told apart


def test_padding_and_missing_turns_do_not_change_the_context_vector():
    """A turn padded with PAD (after or before its tokens), and extra all-PAD turns before the
    history, leave the context vector as it is without them."""
    from compat.graph_session import GraphSession
    from compat.responder.network import ResponderNetwork
    from compat.responder.trainer import load_weights
    from compat.runtime import tf

    weights = random_weights(TINY, seed=3)
    tight = np.array([[[4, 5, 6], [7, 8, 9]]], np.int32)
    right_padded = np.zeros((1, 2, 7), np.int32)
    right_padded[0, :, :3] = tight[0]
    left_padded = np.zeros((1, 2, 7), np.int32)
    left_padded[0, :, 4:] = tight[0]
    more_turns = np.zeros((1, 4, 7), np.int32)
    more_turns[0, 2:] = right_padded[0]
    with GraphSession() as gs, gs.bound():
        network = ResponderNetwork(TINY, seed=0)
        context_in = tf.placeholder(tf.int32, [None, None, None])
        context = network.encode(context_in)
        gs.run(tf.global_variables_initializer())
        load_weights(gs, {v.name.split(":")[0]: v for v in network.variables()}, weights)
        got = {name: gs.run(context, {context_in: ids}) for name, ids in
               (("tight", tight), ("right", right_padded), ("left", left_padded), ("turns", more_turns))}
        shorter = gs.run(context, {context_in: tight[:, :, :2]})
    for name in ("right", "left", "turns"):
        np.testing.assert_allclose(got[name], got["tight"], atol=1e-6, err_msg=name)
    assert np.abs(shorter - got["tight"]).max() > 1e-3  # a real token does change it


# -- training ----------------------------------------------------------------------------------


def make_trainer(spec: ResponderSpec = TINY, seed: int = 3, learning_rate: float = 0.01, decoding: bool = True):
    from compat.responder.trainer import ResponderOptimizerSpec, ResponderTrainer

    return ResponderTrainer(spec, ResponderOptimizerSpec(learning_rate=learning_rate), seed=seed, decoding=decoding)


def test_learning_rate_decays_linearly_by_global_step_then_stays():
    from compat.responder.trainer import ResponderOptimizerSpec, ResponderTrainer

    optimizer = ResponderOptimizerSpec(learning_rate=0.01, decay_steps=4, final_learning_rate=0.002)
    conditions = np.zeros(len(CONTEXTS), np.int32)
    rates = []
    with ResponderTrainer(TINY, optimizer, seed=3, decoding=False) as trainer:
        for _ in range(6):
            rates.append(trainer.learning_rate())
            trainer.train_batch(CONTEXTS, conditions, REPLIES)
    np.testing.assert_allclose(rates, [0.01, 0.008, 0.006, 0.004, 0.002, 0.002], rtol=1e-6)
    with make_trainer(learning_rate=0.01, decoding=False) as constant:
        constant.train_batch(CONTEXTS, conditions, REPLIES)
        assert constant.learning_rate() == pytest.approx(0.01)


@pytest.mark.parametrize(
    "changes, message",
    [({"decay_steps": -1}, "decay_steps must be >= 0"), ({"final_learning_rate": 0.5}, "final_learning_rate")],
)
def test_optimizer_spec_refuses_bad_decay(changes, message):
    from compat.responder.trainer import ResponderOptimizerSpec

    with pytest.raises(ValueError, match=message):
        ResponderOptimizerSpec(learning_rate=0.01, **changes)


@pytest.mark.parametrize("decay", [-0.1, 1.0])
def test_optimizer_spec_refuses_an_average_decay_outside_zero_to_one(decay):
    from compat.responder.trainer import ResponderOptimizerSpec

    with pytest.raises(ValueError, match=r"average_decay must be in \[0, 1\)"):
        ResponderOptimizerSpec(average_decay=decay)


def test_the_weight_average_follows_each_step_with_the_step_dependent_decay():
    """The average equals a numpy moving average of the weights after each step, with decay
    min(d, (1 + step) / (10 + step)); evaluating under it leaves the trained weights as they were."""
    from compat.responder.trainer import ResponderOptimizerSpec, ResponderTrainer

    decay = 0.5
    conditions = np.zeros(len(CONTEXTS), np.int32)
    optimizer = ResponderOptimizerSpec(learning_rate=0.01, average_decay=decay)
    with ResponderTrainer(TINY, optimizer, seed=3, decoding=False) as trainer:
        assert trainer.averaging
        expected = trainer.get_weights()
        for name, value in trainer.averaged_weights().items():  # the average starts at the weights
            np.testing.assert_array_equal(value, expected[name])
        for step in range(1, 5):
            trainer.train_batch(CONTEXTS, conditions, REPLIES)
            weights = trainer.get_weights()
            d = min(decay, (1 + step) / (10 + step))
            expected = {name: d * expected[name] + (1 - d) * weights[name] for name in weights}
        averaged = trainer.averaged_weights()
        assert set(averaged) == set(weights)
        for name in weights:
            np.testing.assert_allclose(averaged[name], expected[name], rtol=1e-5, atol=1e-6, err_msg=name)
        assert any(not np.allclose(averaged[n], weights[n]) for n in weights)  # it is not the weights
        trained_loss = trainer.evaluate(CONTEXTS, conditions, REPLIES)
        with trainer.using_averaged_weights():
            averaged_loss = trainer.evaluate(CONTEXTS, conditions, REPLIES)
        after = trainer.get_weights()
        for name in weights:  # bit for bit the trained weights again
            np.testing.assert_array_equal(after[name], weights[name])
        assert trainer.evaluate(CONTEXTS, conditions, REPLIES) == trained_loss
        trainer.set_weights(averaged)  # the average restarts from weights that are set
        for name, value in trainer.averaged_weights().items():
            np.testing.assert_array_equal(value, averaged[name])
    with make_trainer(decoding=False) as other:
        assert not other.averaging
        other.set_weights(averaged)
        assert other.evaluate(CONTEXTS, conditions, REPLIES) == pytest.approx(averaged_loss, rel=1e-6)
        with other.using_averaged_weights():  # nothing to swap in
            assert other.evaluate(CONTEXTS, conditions, REPLIES) == pytest.approx(averaged_loss, rel=1e-6)


def test_training_overfits_a_handful_of_pairs():
    spec = ResponderSpec(**{**TINY.to_dict(), "embedding_size": 16, "encoder_units": 16,
                            "context_units": 24, "decoder_units": 32})
    conditions = np.zeros(len(CONTEXTS), np.int32)
    with make_trainer(spec) as trainer:
        before, tokens = trainer.evaluate(CONTEXTS, conditions, REPLIES)
        assert tokens == int((REPLIES != PAD).sum())  # END counts, PAD does not
        losses = [trainer.train_batch(CONTEXTS, conditions, REPLIES) for _ in range(150)]
        after, _ = trainer.evaluate(CONTEXTS, conditions, REPLIES)
        decoded = trainer.decode(CONTEXTS, conditions, mode="greedy", max_length=8)
    assert losses[-1] < 0.1 * losses[0]
    assert after < 0.05 * before
    np.testing.assert_array_equal(decoded.ids[:, 0, : REPLIES.shape[1]], REPLIES)
    np.testing.assert_array_equal(decoded.ids[:, 0, REPLIES.shape[1]:], PAD)
    np.testing.assert_array_equal(decoded.lengths[:, 0], (REPLIES != PAD).sum(axis=1))


def test_the_condition_alone_can_decide_the_reply():
    contexts = np.repeat(CONTEXTS[:1], 3, axis=0)  # the same context three times
    conditions = np.array([0, 1, 2], np.int32)
    replies = reply_rows([[20, 21], [22], [23, 23, 4]], 4)
    with make_trainer() as trainer:
        for _ in range(150):
            trainer.train_batch(contexts, conditions, replies)
        decoded = trainer.decode(contexts, conditions, mode="greedy", max_length=6)
    np.testing.assert_array_equal(decoded.ids[:, 0, :4], replies)


RANDOM_SPEC = ResponderSpec(**{**TINY.to_dict(), "dropout": 0.2, "sampled_softmax": 6})


def test_same_seed_is_bit_identical_and_a_checkpoint_resumes_exactly(tmp_path):
    """With dropout and sampled softmax (both random): two runs with one seed give the same
    losses and weights bit for bit, and a third run restored from the first one's checkpoint at
    step 5 continues with the same losses and weights as the uninterrupted run."""
    from compat.graph_session import GraphSession
    from compat.responder.network import ResponderNetwork
    from compat.runtime import tf

    conditions = np.array([0, 1, 2, 0], np.int32)
    with make_trainer(RANDOM_SPEC, seed=5, decoding=False) as first:
        assert first.restore_latest(str(tmp_path)) is None
        losses = []
        for step in range(1, 21):
            losses.append(first.train_batch(CONTEXTS, conditions, REPLIES))
            if step <= 5:
                first.save_checkpoint(str(tmp_path), step)
        final = first.get_weights()
        evaluated, tokens = first.evaluate(CONTEXTS, conditions, REPLIES)
    assert len(list(tmp_path.glob("responder-*.index"))) == 3  # the last few are kept
    with make_trainer(RANDOM_SPEC, seed=5, decoding=False) as second:
        assert [second.train_batch(CONTEXTS, conditions, REPLIES) for _ in range(20)] == losses
        again = second.get_weights()
    with make_trainer(RANDOM_SPEC, seed=5, decoding=False) as resumed:
        assert resumed.restore_latest(str(tmp_path)) == 5
        assert resumed.global_step == 5
        assert [resumed.train_batch(CONTEXTS, conditions, REPLIES) for _ in range(15)] == losses[5:]
        restarted = resumed.get_weights()
    assert set(final) == set(again) == set(restarted)
    for name in final:
        np.testing.assert_array_equal(again[name], final[name], err_msg=name)
        np.testing.assert_array_equal(restarted[name], final[name], err_msg=name)
    # Another seed starts from other weights (so the equalities above could fail).
    with GraphSession() as gs, gs.bound():
        network = ResponderNetwork(RANDOM_SPEC, seed=6)
        gs.run(tf.global_variables_initializer())
        other = dict(zip([v.name.split(":")[0] for v in network.variables()], gs.run(network.variables())))
    assert not np.array_equal(other["responder/embedding"], final["responder/embedding"])
    # Sampled softmax and dropout still learn; evaluation reports the full softmax.
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    assert evaluated / tokens < np.log(TINY.vocab_size)


def test_a_tied_output_computes_what_the_exported_plain_network_computes():
    """Tied: ``output/projection`` instead of ``output/kernel``. Its exported weights, loaded into
    the plain network, give the same full-softmax loss and greedy replies, and the same sampled
    loss (dropout and sampled classes keyed alike), which the tied network computes factored."""
    from compat.responder.network import SCOPE, variable_shapes
    from compat.responder.trainer import ResponderOptimizerSpec, ResponderTrainer

    conditions = np.array([0, 1, 2, 0], np.int32)
    optimizer = ResponderOptimizerSpec(learning_rate=0.01)
    with ResponderTrainer(RANDOM_SPEC, optimizer, seed=5, tied_output=True) as tied:
        weights = tied.get_weights()
        assert {n: w.shape for n, w in weights.items()} == variable_shapes(RANDOM_SPEC, tied_output=True)
        assert f"{SCOPE}/output/kernel" not in weights
        for _ in range(3):  # away from the initial weights
            tied.train_batch(CONTEXTS, conditions, REPLIES)
        exported = tied.exported_weights()
        weights = tied.get_weights()
        assert {n: w.shape for n, w in exported.items()} == variable_shapes(RANDOM_SPEC)
        np.testing.assert_allclose(
            exported[f"{SCOPE}/output/kernel"],
            weights[f"{SCOPE}/output/projection"] @ weights[f"{SCOPE}/embedding"].T,
            rtol=1e-5,
            atol=1e-6,
        )
        tied_eval = tied.evaluate(CONTEXTS, conditions, REPLIES)
        tied_greedy = tied.decode(CONTEXTS, conditions, mode="greedy", max_length=6)
        tied_step = tied.train_batch(CONTEXTS, conditions, REPLIES)  # sampled softmax, step 4
    with ResponderTrainer(RANDOM_SPEC, optimizer, seed=5) as plain:
        plain.set_weights(exported)
        for _ in range(3):  # the same global step: the same dropout masks and sampled classes
            plain.train_batch(CONTEXTS, conditions, REPLIES)
        plain.set_weights(exported)
        plain_eval = plain.evaluate(CONTEXTS, conditions, REPLIES)
        plain_greedy = plain.decode(CONTEXTS, conditions, mode="greedy", max_length=6)
        plain_step = plain.train_batch(CONTEXTS, conditions, REPLIES)
    assert plain_eval[1] == tied_eval[1]
    assert plain_eval[0] == pytest.approx(tied_eval[0], rel=1e-5)
    np.testing.assert_array_equal(plain_greedy.ids, tied_greedy.ids)
    assert plain_step == pytest.approx(tied_step, rel=1e-5)


def test_set_weights_round_trips_and_refuses_a_mismatch():
    weights = random_weights(TINY, seed=4)
    with make_trainer(decoding=False) as trainer:
        trainer.set_weights(weights)
        for name, value in trainer.get_weights().items():
            np.testing.assert_array_equal(value, weights[name], err_msg=name)
        with pytest.raises(ValueError, match="missing"):
            trainer.set_weights({k: v for k, v in weights.items() if not k.endswith("output/bias")})
        with pytest.raises(ValueError, match="output/bias"):
            trainer.set_weights({**weights, "responder/output/bias": np.zeros(3, np.float32)})
        with pytest.raises(ValueError, match="reply_ids must lie in"):
            trainer.train_batch(CONTEXTS, np.zeros(4, np.int32), REPLIES + 100)
        with pytest.raises(ValueError, match="condition_ids"):
            trainer.train_batch(CONTEXTS, np.full(4, 3, np.int32), REPLIES)
        with pytest.raises(RuntimeError, match="decoding=False"):
            trainer.decode(CONTEXTS, np.zeros(4, np.int32), mode="greedy", max_length=3)


def test_a_checkpoint_of_another_network_is_refused_clearly(tmp_path):
    from compat.responder.trainer import CheckpointError

    wider = ResponderSpec(**{**TINY.to_dict(), "decoder_units": 14})
    with make_trainer(wider, decoding=False) as trainer:
        trainer.save_checkpoint(str(tmp_path), 1)
    with make_trainer(decoding=False) as trainer:
        with pytest.raises(CheckpointError, match="responder-1"):
            trainer.restore_latest(str(tmp_path))


@pytest.mark.parametrize(
    ("context_shape", "reply_shape"), [((2, 0, 4), (2, 0)), ((0, 3, 0), (0, 5)), ((2, 3, 4), (2, 0))]
)
def test_an_empty_batch_is_refused_naming_the_shapes_given(context_shape, reply_shape):
    """A context of no turns or no columns is read as one PAD cell; the refusal of an empty
    batch still names the context's shape as the caller gave it, not (batch, 1, 1)."""
    with make_trainer(decoding=False) as trainer:
        for method in (trainer.train_batch, trainer.evaluate):
            expected = f"the batch is empty (context shape {context_shape}, reply shape {reply_shape})"
            with pytest.raises(ValueError, match=re.escape(expected)):
                method(np.zeros(context_shape, np.int32), np.zeros(context_shape[0], np.int32),
                       np.zeros(reply_shape, np.int32))
