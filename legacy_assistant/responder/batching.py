"""Training pairs as token ids, grouped into batches of similar length and padded into the
arrays the network takes.

Shapes (see :mod:`compat.responder.spec`): ``context_ids`` int32 ``[batch, turns, turn_len]``
with ``turns = max_context_turns`` and the latest turn last (missing earlier turns all PAD),
``condition_ids`` int32 ``[batch]``, ``reply_ids`` int32 ``[batch, reply_len]`` (the reply's
tokens, END, then PAD). ``turn_len`` and ``reply_len`` are the longest in the batch, so batches
of similar lengths waste little work on padding.

An epoch's batches depend only on the data, the batch size, the seed and the epoch number, so
a resumed run meets exactly the batches the interrupted one would have.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from legacy_assistant.errors import DataError
from legacy_assistant.responder.pairs import TrainingPair
from legacy_assistant.responder.vocabulary import PAD, Vocabulary

# Pairs are sorted by length within pools of this many batches: similar lengths inside a batch,
# while the pools keep each epoch's order shuffled.
POOL_BATCHES = 50


@dataclass(frozen=True)
class EncodedPair:
    """A pair as ids: ``context`` turns oldest first (1..max_context_turns, each within
    max_turn_tokens), ``reply`` with END, ``condition`` an index into the condition list."""

    context: tuple[tuple[int, ...], ...]
    reply: tuple[int, ...]
    condition: int

    @property
    def length(self) -> tuple[int, int]:
        """The sort key of bucketing: reply length, then the longest context turn."""
        return len(self.reply), max((len(turn) for turn in self.context), default=0)


@dataclass(frozen=True)
class Batch:
    """Padded arrays of one batch (shapes in the module docstring)."""

    context_ids: np.ndarray
    condition_ids: np.ndarray
    reply_ids: np.ndarray

    def __len__(self) -> int:
        return int(self.condition_ids.shape[0])

    @property
    def reply_tokens(self) -> int:
        """Tokens the loss counts: every non-PAD reply id, END included."""
        return int(np.count_nonzero(self.reply_ids != PAD))


def encode_pairs(
    pairs: Sequence[TrainingPair],
    vocabulary: Vocabulary,
    conditions: Sequence[str],
    max_context_turns: int,
    max_turn_tokens: int,
    max_reply_tokens: int,
) -> list[EncodedPair]:
    """Each pair as ids within the limits (:meth:`Vocabulary.encode_context`,
    :meth:`Vocabulary.encode_reply`); a condition outside ``conditions`` is a :class:`DataError`."""
    index: Mapping[str, int] = {name: i for i, name in enumerate(conditions)}
    encoded: list[EncodedPair] = []
    unknown: set[str] = set()
    for pair in pairs:
        condition = index.get(pair.condition)
        if condition is None:
            unknown.add(pair.condition)
            continue
        context = vocabulary.encode_context(pair.context, max_context_turns, max_turn_tokens)
        reply = vocabulary.encode_reply(pair.response, max_reply_tokens)
        encoded.append(EncodedPair(tuple(tuple(turn) for turn in context), tuple(reply), condition))
    if unknown:
        known = list(conditions)
        raise DataError("training pairs", [f"condition {name!r} is not one of {known}" for name in sorted(unknown)])
    return encoded


def pad_batch(pairs: Sequence[EncodedPair], max_context_turns: int) -> Batch:
    """The padded arrays of ``pairs``: turns right-aligned in ``max_context_turns`` slots, tokens
    left-aligned in each turn, replies left-aligned; every gap PAD."""
    if not pairs:
        raise ValueError("a batch needs at least one pair")
    turn_len = max(1, max(len(turn) for pair in pairs for turn in pair.context))
    reply_len = max(len(pair.reply) for pair in pairs)
    context_ids = np.full((len(pairs), max_context_turns, turn_len), PAD, dtype=np.int32)
    reply_ids = np.full((len(pairs), reply_len), PAD, dtype=np.int32)
    condition_ids = np.empty(len(pairs), dtype=np.int32)
    for row, pair in enumerate(pairs):
        turns = pair.context[-max_context_turns:]
        offset = max_context_turns - len(turns)
        for slot, turn in enumerate(turns, start=offset):
            context_ids[row, slot, : len(turn)] = turn
        reply_ids[row, : len(pair.reply)] = pair.reply
        condition_ids[row] = pair.condition
    return Batch(context_ids, condition_ids, reply_ids)


def epoch_order(pairs: Sequence[EncodedPair], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The batches of epoch ``epoch`` as lists of indices into ``pairs``.

    Shuffle (seeded by ``seed`` and ``epoch``), sort each pool of ``POOL_BATCHES`` batches by
    length, cut the pools into batches, shuffle the batches. Deterministic for its arguments.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(pairs))
    pool = batch_size * POOL_BATCHES
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool].tolist(), key=lambda i: (pairs[i].length, i))
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    shuffled = rng.permutation(len(batches))
    return [batches[i] for i in shuffled]


def batches_per_epoch(n_pairs: int, batch_size: int) -> int:
    """How many batches :func:`epoch_order` cuts ``n_pairs`` pairs into (the same every epoch)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    pool = batch_size * POOL_BATCHES
    full, rest = divmod(n_pairs, pool)
    return full * POOL_BATCHES + -(-rest // batch_size)


def sorted_batches(pairs: Sequence[EncodedPair], batch_size: int) -> list[list[int]]:
    """Batches for evaluation: every pair once, sorted by length, no randomness."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    order = sorted(range(len(pairs)), key=lambda i: (pairs[i].length, i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def batch_of(pairs: Sequence[EncodedPair], indices: Sequence[int], max_context_turns: int) -> Batch:
    """:func:`pad_batch` of ``pairs[indices]``."""
    return pad_batch([pairs[i] for i in indices], max_context_turns)
