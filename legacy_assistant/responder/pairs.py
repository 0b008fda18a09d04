"""Training pairs from dialogues, and a held-out split that never divides a dialogue.

Every turn after the first is a response: its context is the (at most ``max_context_turns``)
turns before it, its condition the response's own (the emotion the reply was written with,
which is what the responder is asked to produce), as cakechat trains.

The split is by dialogue, decided by a hash of the seed and the dialogue's content, so it does
not depend on the corpus's order, and a dialogue that occurs twice (cakechat's sample corpus
repeats some) lands twice on the same side.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from legacy_assistant.errors import ConfigError
from legacy_assistant.responder.corpora import Dialogue
from legacy_assistant.responder.vocabulary import tokenize

log = logging.getLogger(__name__)

MAX_CONTEXT_TURNS = 3


@dataclass(frozen=True)
class TrainingPair:
    """``context`` (oldest first, 1..max_context_turns texts) -> ``response``, said with ``condition``."""

    context: tuple[str, ...]
    response: str
    condition: str


def dialogue_pairs(dialogue: Dialogue, max_context_turns: int = MAX_CONTEXT_TURNS) -> list[TrainingPair]:
    """One pair per turn after the first: a dialogue of n turns gives n - 1 pairs."""
    if max_context_turns < 1:
        raise ConfigError(f"max_context_turns must be at least 1, got {max_context_turns}")
    turns = dialogue.turns
    return [
        TrainingPair(
            context=tuple(turn.text for turn in turns[max(0, i - max_context_turns) : i]),
            response=turns[i].text,
            condition=turns[i].condition,
        )
        for i in range(1, len(turns))
    ]


def make_pairs(dialogues: Iterable[Dialogue], max_context_turns: int = MAX_CONTEXT_TURNS) -> list[TrainingPair]:
    """The pairs of every dialogue, dialogue by dialogue in the order given."""
    return [pair for dialogue in dialogues for pair in dialogue_pairs(dialogue, max_context_turns)]


def dialogue_key(dialogue: Dialogue) -> str:
    """The dialogue as the model reads it (each turn's tokens, lower-cased as the vocabulary
    tokenizes them, and its condition, but the first turn's, which is only ever context and never
    read; not its source) as canonical JSON: two copies that differ only in case or spacing, or
    in the first turn's condition, give the same training pairs: they are one dialogue, and must
    stay on one side of a split."""
    return json.dumps(
        [[tokenize(turn.text), turn.condition if number else None] for number, turn in enumerate(dialogue.turns)],
        ensure_ascii=False,
    )


def _text_key(dialogue: Dialogue) -> str:
    """The dialogue's texts and conditions as written, canonical JSON: what orders the split."""
    return json.dumps([[turn.text, turn.condition] for turn in dialogue.turns], ensure_ascii=False)


def split_dialogues(
    dialogues: Sequence[Dialogue],
    held_out_fraction: float,
    seed: int,
    warn_copies: bool = True,
    drop_repeats: bool = False,
) -> tuple[list[Dialogue], list[Dialogue]]:
    """``(train, held_out)``: about ``held_out_fraction`` of the distinct dialogues held out.

    Distinct dialogues (:func:`dialogue_key`) are ordered by ``sha256(seed, text)`` of their
    text as written (the smallest, for copies written differently) and the first
    ``round(fraction * n)`` are held out (at least one when the fraction is above 0, never all);
    copies of a dialogue follow it. Each side keeps the corpus's order. ``warn_copies``: log
    how many dialogues repeat another (training data; other uses pass ``False``). With
    ``drop_repeats``, only the first of each dialogue's copies is kept (and logged), which holds
    out the same distinct dialogues.
    """
    if not 0.0 <= held_out_fraction < 1.0:
        raise ConfigError(f"held_out_fraction must be in [0, 1), got {held_out_fraction}")
    keys = [dialogue_key(d) for d in dialogues]
    if drop_repeats:
        dialogues, keys = _first_copies(dialogues, keys, "")
    elif warn_copies:
        _warn_about_copies(keys)
    rank: dict[str, str] = {}
    for key, dialogue in zip(keys, dialogues):
        digest = hashlib.sha256(f"{seed}\n{_text_key(dialogue)}".encode()).hexdigest()
        rank[key] = min(rank.get(key, digest), digest)
    distinct = sorted(rank, key=rank.__getitem__)
    n_held = 0
    if held_out_fraction > 0.0 and len(distinct) >= 2:
        n_held = min(len(distinct) - 1, max(1, round(held_out_fraction * len(distinct))))
    held_keys = set(distinct[:n_held])
    train = [d for d, key in zip(dialogues, keys) if key not in held_keys]
    held_out = [d for d, key in zip(dialogues, keys) if key in held_keys]
    return train, held_out


def first_copies(dialogues: Sequence[Dialogue], which: str = "") -> list[Dialogue]:
    """``dialogues`` with only the first of each one's copies (:func:`dialogue_key`), in order;
    logs how many went, calling them ``which`` dialogues ("held-out ", say)."""
    return _first_copies(dialogues, [dialogue_key(d) for d in dialogues], which)[0]


def _first_copies(dialogues: Sequence[Dialogue], keys: Sequence[str], which: str) -> tuple[list[Dialogue], list[str]]:
    first: dict[str, Dialogue] = {}  # in the order of first appearance
    for dialogue, key in zip(dialogues, keys):
        first.setdefault(key, dialogue)
    if len(first) != len(keys):
        log.info(
            "dropped %d of the %d %sdialogues: each repeats an earlier one (the same turns, and conditions but "
            "the first turn's)",
            len(keys) - len(first),
            len(keys),
            which,
        )
    return list(first.values()), list(first)


def _warn_about_copies(keys: Sequence[str]) -> None:
    """Say how many dialogues repeat another (:func:`dialogue_key`): a corpus given twice, or
    folded together from overlapping sources, is trained on as often as it is repeated, and a
    word in repeated dialogues passes ``min_count`` however rare it is."""
    copies = len(keys) - len(set(keys))
    if copies:
        log.warning(
            "%d of the %d dialogues repeat another one (the same turns, and conditions but the first turn's); "
            "every copy is used "
            "(trained on, or validated on when held out), and the trained ones count towards min_count "
            "(drop_repeated_dialogues, train-responder's --drop-repeated-dialogues, keeps one of each)",
            copies,
            len(keys),
        )


def without_overlap(
    train: Sequence[Dialogue], held_out: Sequence[Dialogue], warn_copies: bool = True, drop_repeats: bool = False
) -> list[Dialogue]:
    """``train`` less any dialogue whose content also occurs in ``held_out`` (for a held-out
    set read from its own files, such as Topical-Chat's ``test_rare``); logs how many went (and,
    with ``warn_copies``, how many training dialogues repeat another). With ``drop_repeats``,
    only the first of each training dialogue's copies is kept (and logged)."""
    held_keys = {dialogue_key(d) for d in held_out}
    keys = [dialogue_key(d) for d in train]
    if drop_repeats:
        train, keys = _first_copies(train, keys, "training ")
    elif warn_copies:
        _warn_about_copies(keys)
    kept = [d for d, key in zip(train, keys) if key not in held_keys]
    if len(kept) != len(train):
        log.warning("dropped %d training dialogue(s) that also occur in the held-out set", len(train) - len(kept))
    return kept
