"""Count-based language models over reply tokens: the baselines a responder's perplexity is
read against.

Both models predict the same outcomes as the responder's softmax does in practice: every
token id except :data:`PAD` and :data:`START` (which never occur as targets), so :data:`UNK`
and :data:`END` are predicted like words. They are fitted on reply id sequences encoded
exactly as the responder's training replies are (:meth:`Vocabulary.encode_reply`: the same
<unk> mapping, the same truncation, END last), and they score the same held-out sequences as
the responder's ``score`` does, so the three perplexities count the very same tokens.

* :class:`UnigramModel`: add-k, ``p(w) = (c(w) + k) / (N + k |V'|)`` with ``V'`` the predicted
  ids; with ``k > 0`` no token gets probability 0.
* :class:`BigramModel`: the previous token (START before the first) interpolated with the
  unigram by Witten-Bell: ``p(w | v) = (c(v, w) + T(v) p_uni(w)) / (c(v) + T(v))``, where
  ``T(v)`` counts the distinct tokens seen after ``v``. A context never seen gives the unigram.
  No parameter to tune, and each distribution sums to 1 over ``V'`` because the unigram does.
  Neither model sees the dialogue's context turns: they measure what the reply alone predicts.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

import numpy as np

from legacy_assistant.responder.vocabulary import N_SPECIAL, PAD, START


def predicted_ids(vocab_size: int) -> np.ndarray:
    """bool ``[vocab_size]``: the ids a reply token can be (all but PAD and START)."""
    if vocab_size <= N_SPECIAL:
        raise ValueError(f"vocab_size must exceed the {N_SPECIAL} special ids, got {vocab_size}")
    mask = np.ones(vocab_size, dtype=bool)
    mask[[PAD, START]] = False
    return mask


def _check_ids(sequence: Sequence[int], vocab_size: int) -> None:
    for token in sequence:
        if not 0 <= token < vocab_size or token in (PAD, START):
            raise ValueError(
                f"token id {token} cannot be a reply token (vocabulary of {vocab_size}; PAD and START never are)"
            )


class UnigramModel:
    """Add-k unigram probabilities over the predicted ids.

    Attributes:
        vocab_size: ``V``, the special ids included.
        k: the count added to every predicted id.
        tokens: tokens counted when fitting (END included).
    """

    def __init__(self, counts: np.ndarray, k: float = 1.0) -> None:
        counts = np.asarray(counts, dtype=np.float64)
        if counts.ndim != 1:
            raise ValueError(f"counts must be a vector [vocab_size], got shape {counts.shape}")
        if not k > 0:
            raise ValueError(f"k must be above 0 (no token may have probability 0), got {k}")
        mask = predicted_ids(len(counts))
        if counts[~mask].any():
            raise ValueError("PAD and START cannot have counts: they are never reply tokens")
        self.vocab_size = len(counts)
        self.k = float(k)
        self.tokens = int(counts.sum())
        probabilities = np.where(mask, counts + self.k, 0.0)
        self._probabilities = probabilities / probabilities.sum()
        self._log = np.log(np.where(mask, self._probabilities, 1.0))

    @classmethod
    def fit(cls, sequences: Iterable[Sequence[int]], vocab_size: int, k: float = 1.0) -> UnigramModel:
        """Count the ids of ``sequences`` (replies as ids, END included)."""
        counts = np.zeros(vocab_size, dtype=np.int64)
        for sequence in sequences:
            _check_ids(sequence, vocab_size)
            np.add.at(counts, np.asarray(sequence, dtype=np.int64), 1)
        return cls(counts, k)

    def probabilities(self) -> np.ndarray:
        """float64 ``[V]``: ``p(w)``, 0 at PAD and START."""
        return self._probabilities.copy()

    def log_prob(self, token: int) -> float:
        """Natural log of ``p(token)``."""
        return float(self._log[token])

    def sequence_log_probs(self, sequence: Sequence[int]) -> np.ndarray:
        """float64 ``[len(sequence)]``: ``log p`` of each token."""
        _check_ids(sequence, self.vocab_size)
        return self._log[np.asarray(sequence, dtype=np.int64)]


class BigramModel:
    """Witten-Bell interpolation of bigram counts with a :class:`UnigramModel`.

    Attributes:
        unigram: the lower order.
        contexts: previous tokens seen when fitting (START among them).
    """

    def __init__(self, unigram: UnigramModel, pairs: Counter[tuple[int, int]]) -> None:
        self.unigram = unigram
        self.vocab_size = unigram.vocab_size
        self._followers: dict[int, dict[int, int]] = defaultdict(dict)
        for (previous, token), count in pairs.items():
            self._followers[previous][token] = count
        self._totals = {previous: sum(follow.values()) for previous, follow in self._followers.items()}

    @classmethod
    def fit(cls, sequences: Iterable[Sequence[int]], vocab_size: int, k: float = 1.0) -> BigramModel:
        """Count unigrams and bigrams (START before each sequence's first token) of ``sequences``."""
        counts = np.zeros(vocab_size, dtype=np.int64)
        pairs: Counter[tuple[int, int]] = Counter()
        for sequence in sequences:
            _check_ids(sequence, vocab_size)
            np.add.at(counts, np.asarray(sequence, dtype=np.int64), 1)
            pairs.update(zip([START, *sequence[:-1]], sequence))
        return cls(UnigramModel(counts, k), pairs)

    def _weights(self, previous: int) -> tuple[dict[int, int], float, float]:
        """``(followers, c(v), T(v))`` of ``previous``."""
        followers = self._followers.get(previous, {})
        return followers, float(self._totals.get(previous, 0)), float(len(followers))

    def probabilities(self, previous: int) -> np.ndarray:
        """float64 ``[V]``: ``p(w | previous)`` for every id, 0 at PAD and START."""
        followers, total, distinct = self._weights(previous)
        uniform = self.unigram.probabilities()
        if total == 0:
            return uniform
        out = distinct * uniform
        for token, count in followers.items():
            out[token] += count
        return out / (total + distinct)

    def log_prob(self, previous: int, token: int) -> float:
        """Natural log of ``p(token | previous)``."""
        followers, total, distinct = self._weights(previous)
        lower = math.exp(self.unigram.log_prob(token))
        if total == 0:
            return math.log(lower)
        return math.log((followers.get(token, 0) + distinct * lower) / (total + distinct))

    def sequence_log_probs(self, sequence: Sequence[int]) -> np.ndarray:
        """float64 ``[len(sequence)]``: ``log p`` of each token given the one before (START first)."""
        _check_ids(sequence, self.vocab_size)
        return np.array([self.log_prob(p, t) for p, t in zip([START, *sequence[:-1]], sequence)], dtype=np.float64)


def perplexity(log_prob_sum: float, tokens: int) -> float:
    """``exp(-log_prob_sum / tokens)``: the perplexity of ``tokens`` tokens whose natural-log
    probabilities sum to ``log_prob_sum``."""
    if tokens <= 0:
        raise ValueError("perplexity needs at least one token")
    return math.exp(min(-log_prob_sum / tokens, 700.0))  # exp overflows past ~709
