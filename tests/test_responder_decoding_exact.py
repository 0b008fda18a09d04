"""Decoding checked exactly on a network small enough to enumerate every reply.

Three words (ids 4, 5, 6) carry all the probability: the output bias of every other word is
-1e4, so a reply holding one is less likely than any reply of the three words by thousands of
nats, and enumerating the replies of the three words up to ``max_length`` enumerates every
reply that can matter. The ground truth is the model's own teacher-forced ``score`` and the
numpy network of :mod:`compat.responder.reference`, which gives the next-token distribution
after any prefix; the search objective (penalties, bans, temperature, length normalisation) is
written out here from the decoding module's docstring.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from compat.responder import reference
from compat.responder.inputs import NEG
from compat.responder.spec import ALWAYS_BANNED, END, PAD, START, ResponderSpec

WORDS = (4, 5, 6)
SPEC = ResponderSpec(
    vocab_size=48,  # room for a beam as wide as every reply of up to 3 tokens (40 of them)
    n_conditions=2,
    embedding_size=8,
    encoder_units=8,
    context_units=8,
    decoder_units=8,
    condition_size=4,
    max_context_turns=2,
    max_turn_tokens=3,
    max_reply_tokens=5,
)
UNLIKELY = -1e4  # output bias of the words outside WORDS


def tiny_weights(seed: int) -> dict[str, np.ndarray]:
    from compat.responder.network import variable_shapes

    rng = np.random.RandomState(seed)
    weights = {name: rng.randn(*shape).astype(np.float32) for name, shape in variable_shapes(SPEC).items()}
    bias = weights["responder/output/bias"]
    bias[WORDS[-1] + 1 :] = UNLIKELY
    bias[list(ALWAYS_BANNED)] = UNLIKELY  # never produced: the replies of WORDS hold all the probability
    return weights


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """``(model, weights)``: the exported tiny network and its weights."""
    from compat.responder.saved_model import LoadedResponder, export_responder

    weights = tiny_weights(seed=0)
    path = tmp_path_factory.mktemp("responder-tiny") / "saved_model"
    export_responder(weights, SPEC, str(path))
    model = LoadedResponder(str(path))
    yield model, weights
    model.close()


def tiny_contexts(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    contexts = rng.choice(WORDS, size=(n, SPEC.max_context_turns, SPEC.max_turn_tokens)).astype(np.int32)
    contexts[rng.rand(*contexts.shape) < 0.3] = PAD
    return contexts, rng.randint(0, SPEC.n_conditions, size=n).astype(np.int32)


class Oracle:
    """The model's next-token log-probabilities after any prefix of one context, from the numpy
    network (float64 ``[V]``), cached by prefix; with ``strength`` above 0, the search starts
    from the guided ones (condition guidance) instead."""

    def __init__(
        self, weights: dict[str, np.ndarray], context: np.ndarray, condition: int, strength: float = 0.0
    ) -> None:
        self.weights = weights
        self.context = reference.encode_context(weights, context[None])
        self.condition = int(condition)
        self.strength = strength
        self.cache: dict[tuple[tuple[int, ...], int], np.ndarray] = {}

    def under(self, prefix: tuple[int, ...], condition: int) -> np.ndarray:
        """float64 ``[V]``: log p of the next token after ``prefix`` under ``condition``."""
        if (prefix, condition) not in self.cache:
            state = reference.initial_state(self.weights, self.context)
            previous = START
            for token in (*prefix, None):
                log_probs, state = reference.decoder_step(
                    self.weights, np.array([previous]), state, self.context, np.array([condition])
                )
                previous = token
            self.cache[prefix, condition] = log_probs[0].astype(np.float64)
        return self.cache[prefix, condition]

    def log_probs(self, prefix: tuple[int, ...]) -> np.ndarray:
        return self.under(prefix, self.condition)

    def guided(self, prefix: tuple[int, ...]) -> np.ndarray:
        """``log p(. | c) + s * (log p(. | c) - mean_k log p(. | k))``: float64 ``[V]``."""
        plain = self.log_probs(prefix)
        if self.strength == 0:
            return plain
        mean = np.mean([self.under(prefix, k) for k in range(SPEC.n_conditions)], axis=0)
        return plain + self.strength * (plain - mean)

    def reply_log_prob(self, reply: tuple[int, ...]) -> float:
        return float(sum(self.log_probs(reply[:i])[token] for i, token in enumerate(reply)))

    def search_scores(
        self,
        prefix: tuple[int, ...],
        banned: tuple[int, ...] = (),
        repetition_penalty: float = 1.0,
        unpenalized: tuple[int, ...] = (),
    ) -> np.ndarray:
        """float64 ``[V]``: ``log p + NEG * banned - log(repetition_penalty) * used * penalizable``
        (``log p`` guided where ``strength`` is above 0)."""
        scores = self.guided(prefix).copy()
        scores[list(ALWAYS_BANNED) + list(banned)] += NEG
        for token in set(prefix) - set(unpenalized):
            scores[token] -= math.log(repetition_penalty)
        return scores


def all_replies(max_length: int, words=WORDS) -> list[tuple[int, ...]]:
    """Every reply of ``words``: those ended by END within ``max_length``, and those of
    ``max_length`` words that reached it without END."""
    replies = []
    for length in range(max_length + 1):
        for body in itertools.product(words, repeat=length):
            if length < max_length:
                replies.append((*body, END))
            elif length > 0:
                replies.append(body)
    return replies


def as_rows(replies: list[tuple[int, ...]], width: int) -> np.ndarray:
    rows = np.zeros((len(replies), width), np.int32)
    for i, reply in enumerate(replies):
        rows[i, : len(reply)] = reply
    return rows


def candidates(result, row: int) -> list[tuple[int, ...]]:
    return [tuple(int(t) for t in ids[:length]) for ids, length in zip(result.ids[row], result.lengths[row])]


def scores_of(model, contexts, conditions, row: int, replies: list[tuple[int, ...]], width: int) -> np.ndarray:
    """The model's ``score`` summed over each reply, after context ``row``: float64 ``[len(replies)]``."""
    n = len(replies)
    token_log_probs = model.score(
        np.repeat(contexts[row : row + 1], n, 0), np.repeat(conditions[row : row + 1], n), as_rows(replies, width)
    )
    return token_log_probs.sum(axis=1).astype(np.float64)


# -- the ground truth agrees with itself ---------------------------------------------------------


def test_the_numpy_network_scores_every_reply_as_the_graph_does(tiny):
    model, weights = tiny
    contexts, conditions = tiny_contexts(3, seed=1)
    replies = all_replies(3)
    for row in range(3):
        oracle = Oracle(weights, contexts[row], conditions[row])
        want = np.array([oracle.reply_log_prob(reply) for reply in replies])
        np.testing.assert_allclose(scores_of(model, contexts, conditions, row, replies, 3), want, atol=1e-4)
        # the other ids are out of reach, as the module docstring says
        assert np.exp(want).sum() == pytest.approx(1.0, abs=1e-6)


# -- greedy --------------------------------------------------------------------------------------

SEARCH_OPTIONS = [
    {},
    {"banned_ids": np.array([5])},
    {"repetition_penalty": 4.0},
    {"repetition_penalty": 4.0, "unpenalized_ids": np.array([4])},
    {"repetition_penalty": 0.25, "banned_ids": np.array([6])},
    {"banned_ids": np.array([END])},  # no reply ends: every one runs to max_length
    {"condition_strength": 2.0},
    {"condition_strength": 4.0, "repetition_penalty": 3.0, "banned_ids": np.array([4])},
]


def oracle_options(options: dict) -> dict:
    return {
        "banned": tuple(options.get("banned_ids", ())),
        "repetition_penalty": options.get("repetition_penalty", 1.0),
        "unpenalized": tuple(options.get("unpenalized_ids", ())),
    }


@pytest.mark.parametrize("options", SEARCH_OPTIONS)
def test_greedy_takes_the_best_penalised_token_at_every_step(tiny, options):
    model, weights = tiny
    contexts, conditions = tiny_contexts(6, seed=2)
    max_length = 6
    result = model.decode(contexts, conditions, mode="greedy", max_length=max_length, **options)
    for row in range(len(contexts)):
        oracle = Oracle(weights, contexts[row], conditions[row], options.get("condition_strength", 0.0))
        reply: tuple[int, ...] = ()
        while len(reply) < max_length and END not in reply:
            scores = oracle.search_scores(reply, **oracle_options(options))
            best, runner_up = np.sort(scores)[::-1][:2]
            assert best - runner_up > 1e-3, "a near tie: float32 may pick either, choose other data"
            reply += (int(np.argmax(scores)),)
        assert candidates(result, row) == [reply]
        assert result.log_probs[row, 0] == pytest.approx(oracle.reply_log_prob(reply), abs=1e-4)


# -- beam search ---------------------------------------------------------------------------------


def normalised(log_probs: np.ndarray, lengths: np.ndarray, length_penalty: float) -> np.ndarray:
    return log_probs / lengths.astype(np.float64) ** length_penalty


@pytest.mark.parametrize("length_penalty", [0.0, 0.5, 1.0, 2.0])
@pytest.mark.parametrize("options", [{}, {"repetition_penalty": 5.0}, {"repetition_penalty": 0.2}])
def test_a_beam_as_wide_as_every_reply_returns_them_all_ranked(tiny, length_penalty, options):
    """Width 40 holds every partial reply of the three words at every depth up to 3 (3 words and
    END: 4, 13, then 40 replies), so the search is exhaustive: all 40 come back, ranked by
    ``log_prob / length ** length_penalty`` of the plain model whatever the penalty."""
    model, _ = tiny
    contexts, conditions = tiny_contexts(4, seed=3)
    replies = all_replies(3)
    assert len(replies) == 40
    result = model.decode(
        contexts, conditions, mode="beam", beam_width=40, max_length=3, length_penalty=length_penalty, **options
    )
    lengths = np.array([len(reply) for reply in replies])
    for row in range(len(contexts)):
        truth = scores_of(model, contexts, conditions, row, replies, 3)
        key = normalised(truth, lengths, length_penalty)
        order = np.argsort(-key, kind="stable")
        assert (np.diff(key[order])[:1] < -1e-4).all(), "the optimum is a near tie: choose other data"
        got = candidates(result, row)
        assert sorted(got) == sorted(replies)
        assert got[0] == replies[order[0]]  # the exhaustive optimum
        np.testing.assert_allclose(result.log_probs[row], truth[[replies.index(r) for r in got]], atol=1e-4)
        got_key = normalised(result.log_probs[row].astype(np.float64), result.lengths[row], length_penalty)
        assert (np.diff(got_key) <= 1e-5).all()  # best first
        # and that order is the enumeration's, wherever the enumeration has no near ties
        clear = np.concatenate([[True], np.diff(key[order]) < -1e-4]) & np.concatenate(
            [np.diff(key[order]) < -1e-4, [True]]
        )
        assert [got[i] for i in np.flatnonzero(clear)] == [replies[order[i]] for i in np.flatnonzero(clear)]


def test_an_exhaustive_beam_with_a_banned_word_returns_every_reply_without_it(tiny):
    """With 5 banned, words 4, 6 and END make 3, 7, then 15 partial replies: width 15 keeps them all."""
    model, _ = tiny
    contexts, conditions = tiny_contexts(3, seed=4)
    replies = all_replies(3, words=(4, 6))
    assert len(replies) == 15
    result = model.decode(
        contexts, conditions, mode="beam", beam_width=15, max_length=3, banned_ids=np.array([5]), length_penalty=1.0
    )
    for row in range(len(contexts)):
        got = candidates(result, row)
        assert sorted(got) == sorted(replies)
        truth = scores_of(model, contexts, conditions, row, replies, 3)
        best = max(replies, key=lambda r: truth[replies.index(r)] / len(r))
        assert got[0] == best


def test_a_length_penalty_past_float32s_range_is_refused_and_the_largest_one_ranks_distinct_replies(tiny):
    from compat.responder.inputs import MAX_DECODE_LENGTH

    largest = 10.0  # the bound the responder's options have always had
    model, _ = tiny
    contexts, conditions = tiny_contexts(3, seed=5)
    beam = dict(mode="beam", beam_width=3)
    # 20 ** 30 is inf in float32: every candidate of 20 tokens scored -0, and the beam returned
    # one finished reply three times
    for penalty in (30.0, 1e3, float("inf")):
        with pytest.raises(ValueError, match="length_penalty must be at most 10"):
            model.decode(contexts, conditions, max_length=30, length_penalty=penalty, **beam)
    for max_length in (30, MAX_DECODE_LENGTH):
        result = model.decode(contexts, conditions, max_length=max_length, length_penalty=largest, **beam)
        for row in range(len(contexts)):
            got = candidates(result, row)
            assert len(set(got)) == len(got), got
            assert all(len(reply) == max_length or reply[-1] == END for reply in got)
            key = normalised(result.log_probs[row].astype(np.float64), result.lengths[row], largest)
            assert (np.diff(key) <= np.abs(key[:-1]) * 1e-5).all()  # best first


def simulated_beam(
    oracle: Oracle,
    width: int,
    max_length: int,
    length_penalty: float,
    banned: tuple[int, ...] = (),
    repetition_penalty: float = 1.0,
    unpenalized: tuple[int, ...] = (),
) -> list[tuple[tuple[int, ...], float]]:
    """Beam search as the module docstring describes it: ``(reply, log_prob)`` best first.

    An entry is ``(tokens, search score, log_prob)``; one that holds END is finished and
    competes as it stands (one free extension, its length kept). Entries are compared by
    ``search / length ** length_penalty`` and returned by ``log_prob / length **
    length_penalty``. The words outside WORDS cannot be among the best and are left out.
    """
    allowed = [t for t in (END, *WORDS) if t not in banned]
    beam: list[tuple[tuple[int, ...], float, float]] = [((), 0.0, 0.0)]
    for _ in range(max_length):
        if all(END in tokens for tokens, _, _ in beam):
            break
        extensions = []
        for tokens, search, log_prob in beam:
            if END in tokens:
                extensions.append((tokens, search, log_prob))
                continue
            scores = oracle.search_scores(tokens, banned, repetition_penalty, unpenalized)
            plain = oracle.log_probs(tokens)
            for token in allowed:
                extensions.append(((*tokens, token), search + scores[token], log_prob + plain[token]))
        keys = np.array([search / len(tokens) ** length_penalty for tokens, search, _ in extensions])
        order = np.argsort(-keys, kind="stable")
        if len(order) > width:
            assert keys[order[width - 1]] - keys[order[width]] > 1e-3, "a near tie at the cut: choose other data"
        beam = [extensions[i] for i in order[:width]]
    ranked = sorted(beam, key=lambda entry: -entry[2] / len(entry[0]) ** length_penalty)
    return [(tokens, log_prob) for tokens, _, log_prob in ranked]


@pytest.mark.parametrize(
    ("width", "length_penalty", "options"),
    [
        (2, 1.0, {}),
        (3, 0.0, {}),
        (2, 0.7, {"repetition_penalty": 3.0}),
        (3, 1.0, {"repetition_penalty": 3.0, "unpenalized_ids": np.array([5])}),
        (2, 1.0, {"repetition_penalty": 0.3, "banned_ids": np.array([4])}),
        (3, 2.0, {"banned_ids": np.array([6])}),
        (3, 1.0, {"banned_ids": np.array([END]), "repetition_penalty": 2.0}),
        (3, 1.0, {"condition_strength": 2.0}),
        (2, 0.5, {"condition_strength": 3.0, "repetition_penalty": 2.0, "banned_ids": np.array([6])}),
        (2, 1.0, {"repetition_penalty": 1e-3}),  # repeats gain 6.9 nats: search scores above 0
    ],
)
def test_a_narrow_beam_follows_the_documented_search(tiny, width, length_penalty, options):
    model, weights = tiny
    contexts, conditions = tiny_contexts(6, seed=5)
    max_length = 5
    result = model.decode(
        contexts, conditions, mode="beam", beam_width=width, max_length=max_length, length_penalty=length_penalty,
        **options,
    )
    for row in range(len(contexts)):
        oracle = Oracle(weights, contexts[row], conditions[row], options.get("condition_strength", 0.0))
        want = simulated_beam(oracle, width, max_length, length_penalty, **oracle_options(options))
        assert candidates(result, row) == [tokens for tokens, _ in want]
        np.testing.assert_allclose(result.log_probs[row], [log_prob for _, log_prob in want], atol=1e-4)


# -- sampling ------------------------------------------------------------------------------------

# A correct sampler fails a configuration's check with probability below this (union bound
# over the replies of Bernstein's inequality for each reply's count; see count_bound).
FALSE_ALARM = 1e-7


def count_bound(draws: int, probability: float, categories: int) -> float:
    """How far a binomial(``draws``, ``probability``) count strays from its mean with probability
    at most ``FALSE_ALARM / categories``: Bernstein's inequality ``P(|X - np| >= t) <= 2 exp(-t**2
    / (2 (np(1 - p) + t / 3)))`` solved for ``t``."""
    c = math.log(2 * categories / FALSE_ALARM)
    variance = draws * probability * (1 - probability)
    return c / 3 + math.sqrt(c * c / 9 + 2 * c * variance)


def reply_distribution(oracle: Oracle, max_length: int, temperature: float, **penalties) -> dict:
    """``{reply: probability}`` of sampling: each token drawn from ``softmax(search scores /
    temperature)`` after its prefix."""
    distribution = {}
    for reply in all_replies(max_length):
        probability = 1.0
        for i, token in enumerate(reply):
            scaled = oracle.search_scores(reply[:i], **penalties) / temperature
            probability *= math.exp(scaled[token] - np.logaddexp.reduce(scaled))
        distribution[reply] = probability
    return distribution


@pytest.mark.parametrize(
    ("temperature", "options"),
    [
        (1.0, {}),
        (0.6, {"repetition_penalty": 3.0, "unpenalized_ids": np.array([4])}),
        (1.8, {"repetition_penalty": 0.4, "banned_ids": np.array([5])}),
        (0.8, {"condition_strength": 2.0, "repetition_penalty": 2.0}),
    ],
)
def test_sampled_replies_follow_the_penalised_tempered_distribution(tiny, temperature, options):
    """15,000 replies of up to 3 tokens for each of 3 contexts (1,000 samples each under 15
    seeds: rows and seeds draw independently), counted against the 40 replies' probabilities."""
    model, weights = tiny
    contexts, conditions = tiny_contexts(3, seed=6)
    n_samples, seeds, max_length = 1000, 15, 3
    replies = all_replies(max_length)
    index = {reply: i for i, reply in enumerate(replies)}
    counts = np.zeros((len(contexts), len(replies)), np.int64)
    call = dict(mode="sample", max_length=max_length, n_samples=n_samples, temperature=temperature, **options)
    truth = [scores_of(model, contexts, conditions, row, replies, max_length) for row in range(len(contexts))]
    for seed in range(seeds):
        result = model.decode(contexts, conditions, seed=seed, **call)
        for row in range(len(contexts)):
            # a KeyError: a reply of another word, or one that stopped short without END
            drawn = np.array([index[reply] for reply in candidates(result, row)])
            np.add.at(counts[row], drawn, 1)
            np.testing.assert_allclose(result.log_probs[row], truth[row][drawn], atol=1e-4)
    draws = n_samples * seeds
    for row in range(len(contexts)):
        oracle = Oracle(weights, contexts[row], conditions[row], options.get("condition_strength", 0.0))
        want = reply_distribution(oracle, max_length, temperature, **oracle_options(options))
        assert sum(want.values()) == pytest.approx(1.0, abs=1e-9)
        for reply, probability in want.items():
            count = counts[row, index[reply]]
            if any(token in reply for token in options.get("banned_ids", ())):
                assert count == 0, reply
            bound = count_bound(draws, probability, counts.size)
            assert abs(count - draws * probability) < bound, (row, reply, count, draws * probability, bound)


def test_a_seed_repeats_its_draw_and_another_seed_draws_anew(tiny):
    model, _ = tiny
    contexts, conditions = tiny_contexts(4, seed=7)
    call = dict(mode="sample", max_length=5, n_samples=8, temperature=1.0, repetition_penalty=2.0)
    first = model.decode(contexts, conditions, seed=11, **call)
    again = model.decode(contexts, conditions, seed=11, **call)
    other = model.decode(contexts, conditions, seed=12, **call)
    np.testing.assert_array_equal(first.ids, again.ids)
    np.testing.assert_array_equal(first.log_probs, again.log_probs)
    assert not np.array_equal(first.ids, other.ids)


# -- sample_rerank -------------------------------------------------------------------------------


def test_sample_rerank_keeps_the_sample_with_the_best_score_per_token(tiny, tmp_path):
    """The responder's ``sample_rerank`` reply (and evaluation's) is, of the ``n_samples`` replies
    the model samples, the one whose teacher-forced ``score`` per token (END counted) is best."""
    from legacy_assistant.responder.artifact import ResponderInfo
    from legacy_assistant.responder.batching import EncodedPair, pad_batch
    from legacy_assistant.responder.evaluation import decode_replies
    from legacy_assistant.responder.responder import DecodingOptions, Responder
    from legacy_assistant.responder.vocabulary import SPECIAL_TOKENS, Vocabulary

    model, _ = tiny
    words = ("ha", "ho", "hi") + tuple(f"w{i}" for i in range(len(WORDS) + 4, SPEC.vocab_size))
    vocabulary = Vocabulary(SPECIAL_TOKENS + words)
    info = ResponderInfo(tmp_path, {}, vocabulary, ("neutral", "joy"), SPEC)
    n_samples, temperature = 12, 1.5
    responder = Responder(info, model, DecodingOptions(temperature=temperature, n_samples=n_samples))
    contexts = [["ha ho", "hi ha hi"], ["ho"], ["hi hi", "ha"]]
    conditions = ["joy", "neutral", "joy"]
    pairs = [
        EncodedPair(responder._encode_context(context), (END,), responder._condition_id(condition))
        for context, condition in zip(contexts, conditions)
    ]
    batch = pad_batch(pairs, SPEC.max_context_turns)
    picked_late = picked_longer = 0
    for seed in range(8):
        sampled = model.decode(
            batch.context_ids, batch.condition_ids, mode="sample", n_samples=n_samples, temperature=temperature,
            seed=seed, max_length=responder.max_length,
        )
        want = []
        for row in range(len(contexts)):
            replies = candidates(sampled, row)
            truth = scores_of(model, batch.context_ids, batch.condition_ids, row, replies, responder.max_length)
            per_token = truth / np.array([len(reply) for reply in replies])
            best = int(np.argmax(per_token))
            others = [value for reply, value in zip(replies, per_token) if reply != replies[best]]
            assert per_token[best] - max(others, default=-np.inf) > 1e-4, "a near tie: choose other data"
            want.append(replies[best])
            picked_late += best > 0
            picked_longer += len(replies[best]) > len(replies[int(np.argmax(truth))])
        got = responder.respond_batch(contexts, conditions, mode="sample_rerank", seed=seed)
        assert got == [vocabulary.decode(reply) for reply in want]
        if seed == 0:  # evaluation seeds its first batch with its seed * 1_000_003 + 0
            evaluated = decode_replies(responder, pairs, "sample_rerank", seed=0, batch_size=len(pairs))
            assert evaluated == [[t for t in reply if t != END] for reply in want]
    assert picked_late and picked_longer  # the rerank did choose, and per token rather than in sum
