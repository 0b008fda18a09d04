"""Decoding in the graph (greedy, beam, sampling, scoring) and the exported SavedModel."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from compat.responder.spec import END, PAD, START, UNK, ResponderSpec

SPEC = ResponderSpec(
    vocab_size=24,
    n_conditions=3,
    embedding_size=16,
    encoder_units=16,
    context_units=24,
    decoder_units=32,
    condition_size=4,
    max_reply_tokens=8,
)
REPEATED = 20  # the token the last toy reply repeats


def reply_rows(replies: list[list[int]], width: int) -> np.ndarray:
    rows = np.zeros((len(replies), width), np.int32)
    for i, tokens in enumerate(replies):
        rows[i, : len(tokens) + 1] = list(tokens) + [END]
    return rows


CONTEXTS = np.array(
    [
        [[0, 0, 0, 0], [4, 5, 6, 0], [7, 8, 0, 0]],
        [[0, 0, 0, 0], [0, 0, 0, 0], [9, 10, 11, 12]],
        [[13, 14, 0, 0], [15, 0, 0, 0], [16, 17, 0, 0]],
        [[0, 0, 0, 0], [4, 5, 0, 0], [18, 19, 0, 0]],
        [[0, 0, 0, 0], [0, 0, 0, 0], [21, 22, 23, 0]],
    ],
    np.int32,
)
CONDITIONS = np.array([0, 1, 2, 0, 1], np.int32)
REPLIES = reply_rows([[20, 21, 22], [23, 4, 5, 6], [7, 9, 11, 13, 15], [19], [REPEATED] * 5], 7)


def random_weights(spec: ResponderSpec, seed: int, scale: float) -> dict[str, np.ndarray]:
    from compat.responder.network import variable_shapes

    rng = np.random.RandomState(seed)
    return {name: (rng.randn(*shape) * scale).astype(np.float32) for name, shape in variable_shapes(spec).items()}


@pytest.fixture(scope="module")
def trained():
    """A trainer that has learnt the toy replies (the last one repeats a token five times)."""
    from compat.responder.trainer import ResponderOptimizerSpec, ResponderTrainer

    trainer = ResponderTrainer(SPEC, ResponderOptimizerSpec(learning_rate=0.01), seed=11)
    for _ in range(150):
        trainer.train_batch(CONTEXTS, CONDITIONS, REPLIES)
    yield trainer
    trainer.close()


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    """The trained weights as a SavedModel directory."""
    from compat.responder.saved_model import export_responder

    path = tmp_path_factory.mktemp("responder") / "saved_model"
    export_responder(trained.get_weights(), SPEC, str(path))
    return path


@pytest.fixture(scope="module")
def loaded(exported):
    from compat.responder.saved_model import LoadedResponder

    responder = LoadedResponder(str(exported))
    yield responder
    responder.close()


@pytest.fixture(scope="module")
def random_model(tmp_path_factory):
    """An untrained model with large random weights: broad, varied next-token distributions."""
    from compat.responder.saved_model import LoadedResponder, export_responder

    path = tmp_path_factory.mktemp("responder-random") / "saved_model"
    export_responder(random_weights(SPEC, seed=2, scale=0.7), SPEC, str(path))
    responder = LoadedResponder(str(path))
    yield responder
    responder.close()


def random_contexts(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    contexts = rng.randint(4, SPEC.vocab_size, size=(n, 3, 4)).astype(np.int32)
    contexts[rng.rand(n, 3, 4) < 0.3] = PAD
    return contexts, rng.randint(0, SPEC.n_conditions, size=n).astype(np.int32)


def assert_well_formed(result, max_length: int) -> None:
    """END ends each reply, PAD follows it, lengths count up to END; no banned special inside."""
    ids, lengths = result.ids, result.lengths
    assert ids.shape[:2] == lengths.shape == result.log_probs.shape and ids.shape[2] == max_length
    assert ids.dtype == np.int32 and lengths.dtype == np.int32 and result.log_probs.dtype == np.float32
    for row, length in zip(ids.reshape(-1, max_length), lengths.reshape(-1)):
        assert 1 <= length <= max_length
        body = row[:length]
        assert not np.isin(body, [PAD, UNK, START]).any(), row
        assert (body[:-1] != END).all(), row
        if length < max_length:
            assert body[-1] == END, row
        assert (row[length:] == PAD).all(), row
    assert (result.log_probs <= 0).all()


def scored(model, contexts, conditions, result) -> np.ndarray:
    """``score`` summed over each candidate reply: ``[batch, candidates]``."""
    batch, candidates, length = result.ids.shape
    replies = result.ids.reshape(batch * candidates, length)
    repeated = np.repeat(contexts, candidates, axis=0), np.repeat(conditions, candidates)
    return model.score(*repeated, replies).sum(axis=1).reshape(batch, candidates)


# -- greedy, beam, sampling -------------------------------------------------------------------


def test_greedy_decodes_the_trained_replies_and_log_probs_match_score(trained, loaded):
    result = loaded.decode(CONTEXTS, CONDITIONS, mode="greedy", max_length=8)
    assert_well_formed(result, 8)
    np.testing.assert_array_equal(result.ids[:, 0, :7], REPLIES)
    np.testing.assert_allclose(result.log_probs, scored(loaded, CONTEXTS, CONDITIONS, result), atol=1e-5)
    np.testing.assert_allclose(loaded.score(CONTEXTS, CONDITIONS, REPLIES), trained.score(CONTEXTS, CONDITIONS, REPLIES), atol=1e-6)


@pytest.mark.parametrize("mode", ["greedy", "beam", "sample"])
def test_every_mode_is_well_formed_and_its_log_probs_are_the_models(random_model, mode):
    """``log_probs`` are the plain model's even when a penalty and a temperature steer the search."""
    contexts, conditions = random_contexts(6, seed=1)
    result = random_model.decode(
        contexts, conditions, mode=mode, max_length=9, beam_width=3, n_samples=4, seed=3,
        temperature=0.7, repetition_penalty=3.0,
    )
    assert result.ids.shape == (6, {"greedy": 1, "beam": 3, "sample": 4}[mode], 9)
    assert_well_formed(result, 9)
    np.testing.assert_allclose(result.log_probs, scored(random_model, contexts, conditions, result), atol=1e-4)


@pytest.mark.parametrize("temperature", [1e-39, 1e-7, 101.0, 1e10])
def test_a_temperature_that_would_break_the_ban_or_overflow_is_refused(random_model, temperature):
    # 1e10 shrank the ban on PAD/UNK/START to a tenth of a nat (START was drawn mid-reply);
    # 1e-39 made every score -inf (an id past the vocabulary was drawn)
    contexts, conditions = random_contexts(2, seed=1)
    with pytest.raises(ValueError, match="temperature must be from 1e-06 to 100"):
        random_model.decode(contexts, conditions, mode="sample", max_length=9, seed=1, temperature=temperature)


def test_the_temperature_bounds_decode_without_special_tokens(random_model):
    contexts, conditions = random_contexts(6, seed=1)
    for temperature in (1e-6, 100.0):
        result = random_model.decode(
            contexts, conditions, mode="sample", max_length=9, n_samples=4, seed=5, temperature=temperature
        )
        assert_well_formed(result, 9)


def test_beam_width_one_is_greedy(random_model):
    contexts, conditions = random_contexts(8, seed=2)
    for options in ({}, {"length_penalty": 0.0}, {"repetition_penalty": 2.0, "banned_ids": np.array([5, 6])}):
        greedy = random_model.decode(contexts, conditions, mode="greedy", max_length=10, **options)
        beam = random_model.decode(contexts, conditions, mode="beam", beam_width=1, max_length=10, **options)
        np.testing.assert_array_equal(beam.ids, greedy.ids)
        np.testing.assert_array_equal(beam.lengths, greedy.lengths)
        np.testing.assert_allclose(beam.log_probs, greedy.log_probs, atol=1e-6)


def test_beam_finds_replies_at_least_as_likely_as_greedy_and_ranks_them(random_model):
    contexts, conditions = random_contexts(12, seed=3)
    greedy = random_model.decode(contexts, conditions, mode="greedy", max_length=10)
    raw = random_model.decode(contexts, conditions, mode="beam", beam_width=4, max_length=10, length_penalty=0.0)
    assert (raw.log_probs[:, 0] >= greedy.log_probs[:, 0] - 1e-5).all()
    assert (raw.log_probs[:, 0] > greedy.log_probs[:, 0] + 1e-3).any()  # the search does more than greedy
    normalised = random_model.decode(contexts, conditions, mode="beam", beam_width=4, max_length=10, length_penalty=1.0)
    for result, penalty in ((raw, 0.0), (normalised, 1.0)):
        assert_well_formed(result, 10)
        ranking = result.log_probs / result.lengths.astype(np.float32) ** penalty
        assert (np.diff(ranking, axis=1) <= 1e-6).all()  # best first
        for row in result.ids:
            assert len({tuple(candidate) for candidate in row}) == len(row)  # distinct candidates


def test_seeded_sampling_repeats_and_different_seeds_differ(random_model):
    contexts, conditions = random_contexts(4, seed=4)
    options = dict(mode="sample", max_length=8, n_samples=5, temperature=1.0)
    first = random_model.decode(contexts, conditions, seed=7, **options)
    again = random_model.decode(contexts, conditions, seed=7, **options)
    other = random_model.decode(contexts, conditions, seed=8, **options)
    np.testing.assert_array_equal(first.ids, again.ids)
    np.testing.assert_array_equal(first.log_probs, again.log_probs)
    assert not np.array_equal(first.ids, other.ids)
    assert len({tuple(c) for c in first.ids[0]}) > 1  # the samples of one context differ too


def test_sampling_approaches_greedy_as_the_temperature_falls(random_model):
    contexts, conditions = random_contexts(6, seed=5)
    greedy = random_model.decode(contexts, conditions, mode="greedy", max_length=8)
    cold = random_model.decode(contexts, conditions, mode="sample", max_length=8, n_samples=3, temperature=1e-4, seed=1)
    hot = random_model.decode(contexts, conditions, mode="sample", max_length=8, n_samples=3, temperature=1.0, seed=1)
    np.testing.assert_array_equal(cold.ids, np.repeat(greedy.ids, 3, axis=1))
    assert not np.array_equal(hot.ids, np.repeat(greedy.ids, 3, axis=1))


def test_banned_ids_never_appear(random_model):
    contexts, conditions = random_contexts(6, seed=6)
    greedy = random_model.decode(contexts, conditions, mode="greedy", max_length=8)
    produced = np.unique(greedy.ids[greedy.ids > END])
    banned = produced[: max(1, len(produced) // 2)].astype(np.int32)
    for mode in ("greedy", "beam", "sample"):
        result = random_model.decode(
            contexts, conditions, mode=mode, max_length=8, banned_ids=banned, beam_width=4, n_samples=4, seed=2
        )
        assert_well_formed(result, 8)
        assert not np.isin(result.ids, banned).any(), mode


def test_beam_search_with_just_enough_allowed_tokens_produces_none_banned(random_model):
    contexts, conditions = random_contexts(4, seed=9)
    allowed = [END, 7, 11]  # exactly beam_width tokens left
    banned = np.setdiff1d(np.arange(SPEC.vocab_size), allowed).astype(np.int32)
    for mode, extra in (("beam", dict(beam_width=3)), ("greedy", {}), ("sample", dict(n_samples=3, seed=4))):
        result = random_model.decode(contexts, conditions, mode=mode, max_length=8, banned_ids=banned, **extra)
        assert_well_formed(result, 8)
        assert np.isin(result.ids, allowed + [PAD]).all(), (mode, result.ids)


def test_the_longest_max_length_decodes(random_model):
    from compat.responder.inputs import MAX_DECODE_LENGTH

    contexts, conditions = random_contexts(2, seed=10)
    result = random_model.decode(contexts, conditions, mode="greedy", max_length=MAX_DECODE_LENGTH)
    assert_well_formed(result, MAX_DECODE_LENGTH)


def count_repeats(ids: np.ndarray) -> int:
    """Tokens (END and PAD aside) that already occurred earlier in their reply, over all replies."""
    repeats = 0
    for row in ids.reshape(-1, ids.shape[-1]):
        words = [t for t in row if t > END]
        repeats += len(words) - len(set(words))
    return repeats


def test_repetition_penalty_reduces_repeats(loaded):
    repeating = CONTEXTS[-1:], CONDITIONS[-1:]
    for mode in ("greedy", "beam"):
        plain = loaded.decode(*repeating, mode=mode, max_length=8, beam_width=3)
        assert count_repeats(plain.ids[:, :1]) >= 4, plain.ids  # the model learnt to repeat
        penalised = loaded.decode(*repeating, mode=mode, max_length=8, beam_width=3, repetition_penalty=1e4)
        assert count_repeats(penalised.ids[:, :1]) < count_repeats(plain.ids[:, :1]), penalised.ids
        exempt = loaded.decode(
            *repeating, mode=mode, max_length=8, beam_width=3, repetition_penalty=1e4,
            unpenalized_ids=np.array([REPEATED]),
        )
        np.testing.assert_array_equal(exempt.ids, plain.ids)


# -- the SavedModel ---------------------------------------------------------------------------


def test_the_saved_model_decodes_as_the_trainer_does(trained, loaded):
    assert loaded.graph_session.finalized
    assert loaded.spec == SPEC
    contexts, conditions = random_contexts(5, seed=7)
    contexts = np.concatenate([CONTEXTS, contexts])
    conditions = np.concatenate([CONDITIONS, conditions])
    for mode in ("greedy", "beam", "sample"):
        options = dict(mode=mode, max_length=8, beam_width=3, n_samples=2, seed=5, repetition_penalty=1.5)
        want = trained.decode(contexts, conditions, **options)
        got = loaded.decode(contexts, conditions, **options)
        np.testing.assert_array_equal(got.ids, want.ids, err_msg=mode)
        np.testing.assert_array_equal(got.lengths, want.lengths, err_msg=mode)
        np.testing.assert_allclose(got.log_probs, want.log_probs, atol=1e-6, err_msg=mode)
    with pytest.raises(RuntimeError):  # finalized: no op can be added by mistake
        with loaded.graph_session.bound():
            from compat.runtime import tf

            tf.constant(1)


def test_eight_threads_get_what_one_thread_gets(random_model):
    jobs = []
    for i in range(8):
        contexts, conditions = random_contexts(2 + i % 3, seed=20 + i)
        mode = ("greedy", "beam", "sample")[i % 3]
        jobs.append((contexts, conditions, dict(mode=mode, max_length=8, beam_width=3, n_samples=3, seed=i)))
    alone = [random_model.decode(c, k, **o) for c, k, o in jobs]
    together: list = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            contexts, conditions, options = jobs[index]
            barrier.wait()
            results = [random_model.decode(contexts, conditions, **options) for _ in range(5)]
            together[index] = results
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    for want, results in zip(alone, together):
        for got in results:
            np.testing.assert_array_equal(got.ids, want.ids)
            np.testing.assert_array_equal(got.log_probs, want.log_probs)


def test_a_damaged_or_missing_saved_model_is_refused(exported, tmp_path):
    import shutil

    from compat.interface import SavedModelError
    from compat.responder.saved_model import LoadedResponder, export_responder

    with pytest.raises(SavedModelError, match="no SavedModel directory"):
        LoadedResponder(str(tmp_path / "absent"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SavedModelError, match="empty"):
        LoadedResponder(str(tmp_path / "empty"))
    garbled = tmp_path / "garbled"
    shutil.copytree(exported, garbled)
    (garbled / "saved_model.pb").write_bytes(b"\x08\x01 this is not a protocol buffer \xff\xfe")
    with pytest.raises(SavedModelError, match="garbled"):
        LoadedResponder(str(garbled))
    no_weights = tmp_path / "no_weights"
    shutil.copytree(exported, no_weights)
    for data in (no_weights / "variables").glob("variables.data-*"):
        data.write_bytes(b"")
    with pytest.raises(SavedModelError, match="no_weights"):
        LoadedResponder(str(no_weights))
    with pytest.raises(FileExistsError):
        export_responder({}, SPEC, str(exported))


def test_the_same_weights_export_to_the_same_bytes_in_every_process(tmp_path):
    """The graph's while-loop contexts used to be written in an order that changed from process to
    process: saved_model.pb (and its checksum in a manifest) differed between two exports."""
    from tests.subprocesses import run_snippet

    snippet = """
import sys
from tests.test_responder_decoding import SPEC, random_weights
from compat.responder.saved_model import export_responder
export_responder(random_weights(SPEC, seed=2, scale=0.7), SPEC, sys.argv[1])
"""
    exports = []
    for name in ("first", "second", "third"):
        result = run_snippet(snippet.replace("sys.argv[1]", repr(str(tmp_path / name))))
        assert result.returncode == 0, result.stderr[-3000:]
        exports.append(tmp_path / name)
    files = sorted(p.relative_to(exports[0]) for p in exports[0].rglob("*") if p.is_file())
    assert "saved_model.pb" in {str(f) for f in files}
    for other in exports[1:]:
        assert sorted(p.relative_to(other) for p in other.rglob("*") if p.is_file()) == files
        for name in files:
            assert (other / name).read_bytes() == (exports[0] / name).read_bytes(), name


def test_bad_decode_arguments_are_refused_before_running(random_model):
    contexts, conditions = random_contexts(2, seed=8)
    bad = [
        (dict(mode="nucleus"), "mode"),
        (dict(max_length=0), "max_length"),
        (dict(mode="beam", beam_width=SPEC.vocab_size), "beam_width"),
        (dict(mode="sample", temperature=0.0), "temperature"),
        (dict(mode="sample", n_samples=0), "n_samples"),
        (dict(banned_ids=np.array([SPEC.vocab_size])), "banned_ids"),
        (dict(repetition_penalty=0.0), "repetition_penalty"),
        # values the graph's int32 and float32 inputs cannot hold: wrapped, or rounded to 0
        (dict(max_length=2**31), "max_length"),
        (dict(max_length=2**32 + 3), "max_length"),
        (dict(mode="sample", n_samples=2**32 + 2), "n_samples"),
        (dict(mode="sample", temperature=1e-46), "temperature"),
        (dict(repetition_penalty=1e-50), "repetition_penalty"),
        (dict(repetition_penalty=float("nan")), "repetition_penalty"),
        (dict(repetition_penalty=1e39), "repetition_penalty"),  # inf as float32: NaN at exempt ids
        # the loops' buffers are [n, max_length + 1], made up front and copied every step
        (dict(max_length=1001), "max_length"),
        (dict(max_length=2**31 - 1), "max_length"),
        # no token left to produce: greedy gave PAD, sampling banned words
        (dict(banned_ids=np.arange(SPEC.vocab_size)), "banned_ids"),
        (dict(mode="sample", banned_ids=np.arange(END, SPEC.vocab_size)), "banned_ids"),
        # fewer allowed tokens (END only) than beam entries: <unk> </s> ranked first
        (dict(mode="beam", beam_width=3, banned_ids=np.arange(END + 1, SPEC.vocab_size)), "banned_ids"),
    ]
    for changes, field in bad:
        options = {"mode": "greedy", "max_length": 5, **changes}
        with pytest.raises(ValueError, match=field):
            random_model.decode(contexts, conditions, **options)
    with pytest.raises(ValueError, match="context_ids"):
        random_model.decode(contexts + SPEC.vocab_size, conditions, mode="greedy", max_length=5)
    with pytest.raises(ValueError, match="condition_ids"):
        random_model.decode(contexts, conditions[:1], mode="greedy", max_length=5)
    with pytest.raises(ValueError, match="reply_ids"):
        random_model.score(contexts, conditions, np.full((2, 3), -1))
    empty = random_model.decode(contexts[:0], conditions[:0], mode="beam", beam_width=2, max_length=5)
    assert empty.ids.shape == (0, 2, 5)


def test_beam_ranks_candidates_of_different_lengths_by_their_normalised_score(tmp_path):
    """On the random model every candidate runs to max_length, so a ranking by the raw
    log-probability passed as well: the shipped model's candidates end at different lengths.
    Its weights are exported again, so that the graph tested is this code's."""
    import json
    import shutil

    from legacy_assistant.responder.artifact import reexport_responder_artifact
    from legacy_assistant.responder.batching import EncodedPair, pad_batch
    from legacy_assistant.responder.responder import Responder
    from tests.helpers import DEFAULT_RESPONDER, ROOT

    shutil.copytree(DEFAULT_RESPONDER, tmp_path / "responder")
    responder = Responder.load(reexport_responder_artifact(tmp_path / "responder"))
    try:
        contexts = json.loads((ROOT / "data" / "responder_contexts.json").read_text(encoding="utf-8"))
        pairs = [EncodedPair(responder._encode_context(c), (END,), responder._condition_id(None)) for c in contexts]
        batch = pad_batch(pairs, responder.spec.max_context_turns)
        result = responder._model.decode(batch.context_ids, batch.condition_ids, mode="beam", beam_width=5,
                                         max_length=30, length_penalty=1.0)
        lengths = result.lengths.astype(np.float32)
        assert (lengths.min(axis=1) < lengths.max(axis=1)).any()  # else the test could not fail
        normalised = result.log_probs / lengths
        assert (np.diff(normalised, axis=1) <= 1e-6).all()  # best first, by the normalised score
        # and that is another order than the raw log-probabilities' somewhere
        assert (np.diff(result.log_probs, axis=1) > 1e-6).any()
    finally:
        responder.close()


def test_contexts_without_any_token_decode_as_they_do_beside_one_with_words(random_model):
    """A row whose turns are all PAD gets the zero context vector. A batch of only such rows
    (or of no turns, or no token columns) failed in the encoder with ``InvalidArgumentError:
    Size should be >= 0``; it must answer each row as that row is answered beside a row that
    holds words (the TF2 copy did)."""
    words = np.array([[[0, 0, 0, 0], [0, 0, 0, 0], [9, 10, 11, 12]]], np.int32)
    conditions = np.array([2, 0], np.int32)
    options = dict(max_length=6, beam_width=3, n_samples=3, seed=4, temperature=1.0)
    reply = np.array([[20, 21, END], [7, END, PAD]], np.int32)
    for empty in (np.zeros((2, 3, 4), np.int32), np.zeros((2, 3, 0), np.int32), np.zeros((2, 0, 4), np.int32)):
        beside = np.concatenate([np.zeros((2, 3, 4), np.int32), words])
        for mode in ("greedy", "beam", "sample"):
            alone = random_model.decode(empty, conditions, mode=mode, **options)
            expected = random_model.decode(beside, np.append(conditions, 1), mode=mode, **options)
            assert_well_formed(alone, 6)
            np.testing.assert_array_equal(alone.ids, expected.ids[:2])
            np.testing.assert_array_equal(alone.lengths, expected.lengths[:2])
            np.testing.assert_allclose(alone.log_probs, expected.log_probs[:2], atol=1e-6)
        scores = random_model.score(empty, conditions, reply)
        expected_scores = random_model.score(beside, np.append(conditions, 1), np.concatenate([reply, reply[:1]]))
        np.testing.assert_allclose(scores, expected_scores[:2], atol=1e-6)


# -- the sampling draw ------------------------------------------------------------------------


def _first_step_scores(model, context: np.ndarray, condition: int) -> np.ndarray:
    """The first reply token's search scores for one context: ``log p`` and ``NEG`` at the
    always-banned ids (``score`` of every one-token reply)."""
    from compat.responder.inputs import NEG

    vocab = SPEC.vocab_size
    replies = np.stack([np.arange(vocab, dtype=np.int32), np.full(vocab, END, np.int32)], axis=1)
    log_p = model.score(np.repeat(context[None], vocab, 0), np.full(vocab, condition, np.int32), replies)[:, 0]
    return (log_p + NEG * np.isin(np.arange(vocab), [PAD, UNK, START])).astype(np.float32)


def _run(build):
    from compat.runtime import tf

    with tf.Graph().as_default(), tf.Session() as session:
        return session.run(build(tf))


@pytest.mark.parametrize("draw", ["gumbel", "categorical"])
def test_sampling_draws_the_first_token_as_its_spec_says(tmp_path, draw):
    """A spec's ``sample_draw`` decides the graph's draw: ``gumbel``, the argmax of the scores
    plus ``-log(-log(u))`` over ``stateless_uniform`` numbers keyed by ``(seed, 0)``, or, for a
    responder exported before the field (its spec has none), ``stateless_categorical``."""
    import json
    from dataclasses import replace

    from compat.responder.saved_model import SPEC_TENSOR, LoadedResponder, export_responder
    from compat.responder.sampling import TINY

    spec = replace(SPEC, sample_draw=draw)
    export_responder(random_weights(spec, seed=2, scale=0.7), spec, str(tmp_path / "saved_model"))
    with LoadedResponder(str(tmp_path / "saved_model")) as model:
        assert model.spec == spec
        stored = json.loads(model._gs.run(model._gs.tensor(SPEC_TENSOR + ":0")).decode("utf-8"))
        assert stored.get("sample_draw") == (None if draw == "categorical" else "gumbel")
        scores = _first_step_scores(model, CONTEXTS[2], 2)
        drawn = set()
        for temperature in (1.0, 4.0):
            seeds = range(12)
            got = [model.decode(CONTEXTS[2:3], CONDITIONS[2:3], mode="sample", max_length=1, seed=seed,
                                temperature=temperature).ids[0, 0, 0] for seed in seeds]
            if draw == "gumbel":
                uniforms = _run(lambda tf: [tf.random.stateless_uniform([1, SPEC.vocab_size], seed=[seed, 0],
                                                                        minval=TINY, maxval=1.0) for seed in seeds])
                expected = [int(np.argmax(scores / temperature - np.log(-np.log(u[0])))) for u in uniforms]
            else:
                expected = _run(lambda tf: [tf.random.stateless_categorical(scores[None] / temperature, 1,
                                                                            seed=[seed, 0])[0, 0] for seed in seeds])
            assert got == list(expected)
            drawn.update(got)
        assert len(drawn) > 2  # varied draws, not one token


def test_the_gumbel_draw_follows_the_softmax_and_never_draws_a_banned_token():
    """20,000 rows of one distribution (half its tokens banned), each at three temperatures:
    the counts match ``softmax(scores / temperature)`` (chi-square, 4 degrees of freedom, below
    its 0.1% point 18.5; the draw is seeded, so the check is exact on every run)."""
    from compat.responder.inputs import NEG
    from compat.responder.sampling import draw_tokens

    scores = np.array([NEG, NEG, NEG, -0.5, -1.2, -2.3, -3.0, -0.9, NEG], np.float32)
    allowed = scores > NEG / 2
    rows = np.repeat(scores[None], 20_000, 0)
    for temperature in (0.5, 1.0, 2.0):
        ids = _run(lambda tf: draw_tokens(tf, "gumbel", tf.constant(rows), tf.constant(temperature),
                                          tf.constant([7, 3], tf.int64)))
        counts = np.bincount(ids, minlength=len(scores))
        assert counts[~allowed].sum() == 0
        p = np.exp(scores[allowed] / temperature - np.logaddexp.reduce(scores[allowed] / temperature))
        expected = len(rows) * p
        assert ((counts[allowed] - expected) ** 2 / expected).sum() < 18.5, (counts, expected)
