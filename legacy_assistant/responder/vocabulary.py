"""Words <-> token ids for the responder, and token lists back to readable text.

Tokens come from the project's text processing (:class:`TextProcessor`) with the settings in
:data:`TEXT_CONFIG`: NLTK's Treebank rules on Punkt-split sentences, lower-cased, *not* stemmed
and with punctuation kept, since the responder writes these tokens back out as its reply
("don't" is ``do`` + ``n't``, "it's?" is ``it`` + ``'s`` + ``?``). :func:`detokenize` undoes the
Treebank split with NLTK's ``TreebankWordDetokenizer`` (pure rules, no data) and restores
sentence capitals.

Ids 0-3 are the special tokens both sides of the model agree on (:data:`PAD`, :data:`UNK`,
:data:`START`, :data:`END`); words follow from id 4, most frequent first.

Limits (the spec's ``max_turn_tokens`` and ``max_reply_tokens``): a long context turn keeps its
*last* tokens, the ones nearest the reply; a long reply keeps its *first* tokens, then END, END
counted within the limit (as the decoder counts it).
"""

from __future__ import annotations

import contextlib
import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

import regex
from nltk.tokenize.treebank import TreebankWordDetokenizer

# The ids both sides of the model agree on; compat.responder.spec imports no TensorFlow.
from compat.responder.spec import END, N_SPECIAL, PAD, START, UNK  # noqa: F401 (re-exported)
from legacy_assistant.common.caching import ShortTextCache
from legacy_assistant.errors import ConfigError
from legacy_assistant.text.processing import (
    TextConfig,
    TextProcessor,
    emoji_kept_whole,
)

SPECIAL_TOKENS = ("<pad>", "<unk>", "<s>", "</s>")  # the text of ids PAD, UNK, START, END
# "classic" keeps every token the Treebank rules give, punctuation included; stemming off.
TEXT_CONFIG = TextConfig(tokenizer="classic", stemmer="none", lowercase=True)
# The five emotions of the cakechat API, in its order; a corpus may add conditions of its own.
DEFAULT_CONDITIONS = ("neutral", "anger", "joy", "fear", "sadness")

_SENTENCE_ENDS = frozenset({".", "!", "?", "!!", "??"})
# Greek's question mark (U+037E) is a semicolon once NFKC has read it: after a Greek word, ";"
# ends a sentence ("Τι κάνεις; Καλά.").
_GREEK = regex.compile(r"\p{Greek}")
_ABBREVIATION = re.compile(r"^(?:[^\W\d_]\.)+[^\W\d_]\.?$")  # u.s, e.g, a.m., not 2.0 or gmail.com
_SPACES = re.compile(r"\s+")
_UNSPACED_MARGIN = 16  # characters; see Vocabulary._unspaced_firm_tokens
_ELIDED_NUMBER = re.compile(r"^\d\d(?:s)?$")  # '90s, '99
_DETOKENIZER = TreebankWordDetokenizer()
# The detokenizer glues "..." to the next word or bracket ("well...maybe", "so...(well"); the
# source had a space there.
_ELLIPSIS_BEFORE_WORD = re.compile(r"\.\.\.(?=[\w(\[{])")
# It takes the space before "..." away only when a space follows, and never before ".." or
# "....": those and an ellipsis that ends the reply or comes before other punctuation stayed
# apart ("I don't know ...", "Wait ...?", "So .. what?").
_SPACE_BEFORE_ELLIPSIS = re.compile(r"(?<=\S) (?=\.\.)")
# Chinese and Japanese put no space after punctuation. NFKC writes their full-width "！", "？",
# "，", "：", "；" as ASCII marks, which the tokenizer splits off, and the detokenizer put a space
# after each: "你好！你今天怎么样？" came back as "你好! 你今天怎么样?". Between a Chinese or
# Japanese character (or a quotation of them) and the next one, the marks are glued again (a
# space typed between two words without a mark stays), and so are quotation marks between them
# ("他说“好”。" came back as "他说 “好” 。").
_CJK = r"\p{Han}\p{Hiragana}\p{Katakana}\u3000-\u303f\uff5f-\uff65"
_SPACE_AFTER_CJK_PUNCTUATION = regex.compile(
    rf"(?<=[{_CJK}][\u201d\u2019)]?[!?,.:;]+) (?=[{_CJK}\u201c\u2018])"
    rf"|(?<=[{_CJK}][\u201d\u2019]) (?=[{_CJK}])"
    rf"|(?<=[{_CJK}]) (?=[\u201c\u2018][{_CJK}])"
    # ASCII quotes and brackets (NFKC's reading of full-width "＂（）"): "他说"好"。" came back
    # as "他说" 好" 。" (the tokenizer reads both quotes as closing ones), "他说（好）然后" as
    # "他说 (好) 然后"
    rf'|(?<=[{_CJK}]["\)]) (?=[{_CJK}])'
    rf"|(?<=[{_CJK}]) (?=\([{_CJK}])"
)


def _agreeing(tokens: Sequence[str], other: Sequence[str], last: bool) -> tuple[str, ...]:
    """The tokens at the uncut edge of ``tokens`` (its end, with ``last``, else its start) that
    ``other``, a read of less of the same text from that edge, gives too, up to the first that
    differs: those a cut nearer that edge did not change."""
    if last:
        tokens, other = tokens[::-1], other[::-1]
    agreed = 0
    for mine, theirs in zip(tokens, other):
        if mine != theirs:
            break
        agreed += 1
    kept = tuple(tokens[:agreed])
    return kept[::-1] if last else kept


@functools.lru_cache(maxsize=8)
def _processor(config: TextConfig) -> TextProcessor:
    return TextProcessor(config)


# Of a long context turn only the end is tokenized at first: its last these many characters,
# then four times as many, and so on, until the part read holds as many tokens as the turn may keep
# that tokenizing the whole turn gives too (not the word the cut split, nor a whole word next to
# the cut that reads otherwise at a text's edge; of text with no space to cut at, such as Chinese,
# those the part less its 16 characters next to the cut agrees on), or is the whole turn. A turn of long words (a
# pasted blob) keeps its last tokens as a short turn does, and of one of many words no more than
# its last MAX_TURN_CHARS characters are read.
# The part read stops growing at MAX_TURN_READ characters: tokens longer than 8,000 characters on
# average are no text, and reading millions of characters of one would take seconds.
MAX_TURN_CHARS = 4000
MAX_TURN_READ = 64 * MAX_TURN_CHARS

# A turn is read again as context of the next few turns of its conversation, so a cache of the
# latest 4,096 turns has what is asked again; of turns up to 256 characters, it holds at most
# 25 MiB (65,536 turns of 256 held 417).
CACHED_TURN_CHARS = 256
CACHED_TURNS = 4096


def _tokens(config: TextConfig, text: str) -> tuple[str, ...]:
    # The classic tokenizer keeps format characters and emoji on the words they touch (for the
    # classic recipe's fidelity); a reply's words should not, and each emoji comes back whole.
    return tuple(_processor(config).tokens(emoji_kept_whole(text, apart=True)))


# A turn is tokenized once as a response and up to three times as context.
_cached_tokens = ShortTextCache(_tokens, CACHED_TURNS, CACHED_TURN_CHARS)


class _KeptTokens:
    """Every text's tokens, each text tokenized once; a token's text is held once, however many
    turns have it."""

    def __init__(self) -> None:
        self.tokens: dict[tuple[TextConfig, str], tuple[str, ...]] = {}
        self.words: dict[str, str] = {}

    def __call__(self, config: TextConfig, text: str) -> tuple[str, ...]:
        tokens = self.tokens.get((config, text))
        if tokens is None:
            tokens = tuple(self.words.setdefault(word, word) for word in _tokens(config, text))
            self.tokens[(config, text)] = tokens
        return tokens


# Set within keep_tokens(): this thread's (context's) table; other threads keep using the cache.
_kept_tokens: ContextVar[_KeptTokens | None] = ContextVar("kept_tokens", default=None)


@contextlib.contextmanager
def keep_tokens() -> Iterator[None]:
    """Within the block, this thread tokenizes each distinct text once and keeps its tokens
    until the block ends, whatever its length: for the passes of a training corpus's preparation
    (its split, vocabulary and encoding each read every turn), which the cache of the latest
    :data:`CACHED_TURNS` turns would have forgotten between passes. The tokens take about as
    much memory as the texts (10 MiB for the 4.9 million characters of 47,961 Topical-Chat and
    ChatterBot turns)."""
    reset = _kept_tokens.set(_KeptTokens()) if _kept_tokens.get() is None else None
    try:
        yield
    finally:
        if reset is not None:
            _kept_tokens.reset(reset)


def _turn_tokens(config: TextConfig, text: str) -> tuple[str, ...]:
    kept = _kept_tokens.get()
    return kept(config, text) if kept is not None else _cached_tokens(config, text)


def tokenize(text: str, config: TextConfig = TEXT_CONFIG) -> list[str]:
    """``"Don't worry, it's fine."`` -> ``["do", "n't", "worry", ",", "it", "'s", "fine", "."]``."""
    return list(_turn_tokens(config, text))


def detokenize(tokens: Sequence[str], sentence_case: bool = True) -> str:
    """Tokens back to text: ``["do", "n't", "worry", "?"]`` -> ``"Don't worry?"``.

    With ``sentence_case`` the first word of each sentence and the pronoun "i" get a capital
    (the tokens are lower-cased; a reply should not read as if it were).
    """
    words = list(tokens)
    if sentence_case:
        capital_next = True
        for index, word in enumerate(words):
            if word == "i":
                words[index] = "I"
            elif capital_next and any(c.isalpha() for c in word):
                words[index] = _capitalize(word)
            if any(c.isalnum() for c in word):
                capital_next = False
            # the "." after an abbreviation ("u.s", "e.g": single letters between dots) ends no
            # sentence; after "2.0" or "gmail.com" it does
            if word in _SENTENCE_ENDS and not (word == "." and index and _ABBREVIATION.match(words[index - 1])):
                capital_next = True
            elif word == ";" and index and _GREEK.search(words[index - 1]):
                capital_next = True
    words = _attach_typographic_marks(words)
    text = _SPACE_BEFORE_ELLIPSIS.sub("", _DETOKENIZER.detokenize(_attach_single_quotes(words)))
    text = _ELLIPSIS_BEFORE_WORD.sub("... ", text)
    if not text.isascii():  # after the ellipsis's space, which Chinese "嗯……好" has not
        text = _SPACE_AFTER_CJK_PUNCTUATION.sub("", text)
    return text.strip()


# What follows an apostrophe inside an English word ("don’t", "it’s", "we’re", "I’ve", "she’ll",
# "I’d", "I’m"): the tokenizer splits a typographic apostrophe off as a token of its own.
_CONTRACTION_TAILS = frozenset({"t", "s", "re", "ve", "ll", "d", "m"})
# What comes before an apostrophe that elides a vowel into the next word: French and Italian
# articles, pronouns and prepositions ("l’homme", "m’a", "j’ai", "qu’il", "jusqu’à", "dell’anno",
# "un’altra"), English "o’clock", and the French words that hold one inside ("aujourd’hui",
# "prud’homme"). A plural possessive ("the dogs’ toys") ends in none of them.
_ELIDING_WORD = re.compile(r"^(?:[^\W\d_]|\w*qu|\w*ll|un|quest|nessun|aujourd|prud)$", re.IGNORECASE)
# German, Czech and others open a quotation low and close it with what opens one in English:
# „so“, ‚so‘.
_LOW_OPENING_MARKS = {"\u201e": "\u201c", "\u201a": "\u2018"}  # „ closed by “, ‚ by ‘
# Polish, Hungarian, Romanian and others close the low mark with ” or ’ instead: that quotation
# is closed then, and a later “ opens an English one rather than closing it.
_LOW_CLOSED_BY = {"\u201c": "\u201d", "\u2018": "\u2019"}
_OPENING_MARKS = frozenset({"\u201c", "\u2018", *_LOW_OPENING_MARKS})  # “ ‘ „ ‚
# Guillemets: French sets them apart from the words they quote ("« bien »"), as the detokenizer
# leaves them; Russian, Greek, Arabic and others write them against the words ("«Привет»").
_NON_LATIN_LETTER = regex.compile(r"(?V1)[\p{L}--\p{Latin}]")
_CLOSING_MARKS = frozenset({"\u201d", "\u2019"})  # ” ’
_COMBINING_ACUTE = "\u0301"


def _attach_typographic_marks(words: list[str]) -> list[str]:
    """Glue the typographic apostrophes and quotes the Treebank detokenizer leaves apart (it
    knows ASCII ones only): ``["don", "’", "t"]`` -> ``["don’t"]``, ``["l", "’", "homme"]`` ->
    ``["l’homme"]``, ``["“", "great", "”"]`` -> ``["“great”"]``, ``["„", "gut", "“"]`` ->
    ``["„gut“"]``, ``["«", "да", "»"]`` -> ``["«да»"]`` (outside Latin script); and an acute
    accent typed for an apostrophe, which NFKC left as a combining accent at the start of the
    next token (``["don", "́t"]``), as ``'`` (``["don't"]``)."""
    if all(word.isascii() for word in words):
        return words
    out: list[str] = []
    opening = ""  # an opening mark, for the word after it
    # the marks that close the quotations open, innermost last: a low mark's or a guillemet's
    # (Russian nests „…“ in «…»)
    closing: list[str] = []
    # a ‘ quotation is open: a ’ after a word closes it rather than eliding a vowel ("‘I will’
    # and" is no "will’and", "‘plan B’ then" no "b’then")
    quoting = False
    index = 0
    while index < len(words):
        prefixed, word = bool(opening), opening + words[index]
        opening = ""
        following = words[index + 1] if index + 1 < len(words) else None
        previous_is_word = bool(out) and out[-1][-1:].isalnum()
        if word[:1] in _LOW_OPENING_MARKS and not prefixed:  # opened once, not again with its word
            closing.append(_LOW_OPENING_MARKS[word[0]])
        if closing and word == closing[-1] and out:
            out[-1] += word
            closing.pop()
        elif word == "\u2019" and previous_is_word and following in _CONTRACTION_TAILS:
            out[-1] += word + following
            index += 1
        elif (
            word == "\u2019"
            and previous_is_word
            and following is not None
            and following[:1].isalpha()
            and _ELIDING_WORD.match(out[-1])
            and not quoting
        ):
            out[-1] += word + following
            index += 1
        elif word.startswith(_COMBINING_ACUTE) and len(word) > 1 and previous_is_word:
            out[-1] += "'" + word[1:]
        elif word in _OPENING_MARKS and following is not None and any(c.isalnum() for c in following):
            opening = word
            quoting = quoting or word == "\u2018"
        elif word == "\u00ab" and following is not None and _first_letter_is_not_latin(following):
            opening = word
            closing.append("\u00bb")
        elif word in _CLOSING_MARKS and out:
            out[-1] += word
            if word == "\u2019":
                quoting = False
            if closing and _LOW_CLOSED_BY.get(closing[-1]) == word:  # „…” (Polish, Hungarian, Romanian), ‚…’
                closing.pop()
        else:
            out.append(word)
        index += 1
    return out


def _first_letter_is_not_latin(word: str) -> bool:
    letter = next((c for c in word if c.isalpha()), "")
    return bool(letter) and _NON_LATIN_LETTER.match(letter) is not None


def _attach_single_quotes(words: list[str]) -> list[str]:
    """Glue each lone ``'`` token to the word it belongs to.

    The Treebank detokenizer glues every ``'`` to the word before it, which is right for a
    closing quote and a plural possessive ("the dogs' toys") but reads "he said' hi' to me" for
    an opening one. Quotes are paired left to right: an unpaired ``'`` after a word ending in
    "s" (or a contraction such as "'n") while an odd number of them remain is a possessive or a
    closing quote; otherwise, before a word, it opens a quotation ("'hi'", "the '90s").
    """
    if "'" not in words:
        return words
    out: list[str] = []
    # an elision before a decade or a year ("the '90s", "in '99") is no quotation mark: it pairs with nothing
    elided = {i for i, w in enumerate(words[:-1]) if w == "'" and _ELIDED_NUMBER.match(words[i + 1])}
    remaining = words.count("'") - len(elided)
    quoting = False
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word != "'":
            out.append(word)
            continue
        if index - 1 in elided:
            out.append(word + words[index])
            index += 1
            continue
        previous = out[-1] if out else None
        following = words[index] if index < len(words) else None
        before_a_word = following is not None and any(c.isalnum() for c in following)
        possessive = previous is not None and (previous.endswith("s") or previous.startswith("'"))
        closes = quoting or (previous is not None and ((possessive and remaining % 2 == 1) or not before_a_word))
        if closes and previous is not None:  # (quoting implies a word before)
            quoting = False
            out[-1] = previous + word
        elif before_a_word:
            quoting = True
            out.append(word + words[index])
            index += 1
        else:
            out.append(word)
        remaining -= 1
    return out


def _capitalize(word: str) -> str:
    for position, char in enumerate(word):
        if char.isalpha():
            return word[:position] + char.upper() + word[position + 1 :]
    return word


def condition_list(found: Iterable[str]) -> tuple[str, ...]:
    """:data:`DEFAULT_CONDITIONS` followed by any other condition in ``found``, sorted: the
    five emotions are always there, so a model trained without some still accepts them."""
    extra = sorted(set(found) - set(DEFAULT_CONDITIONS))
    return DEFAULT_CONDITIONS + tuple(extra)


class Vocabulary:
    """The token list, id = position; ids 0-3 are :data:`SPECIAL_TOKENS`.

    ``Vocabulary.build(token_lists, max_size=8000)`` counts tokens; ``encode_turn``,
    ``encode_reply`` and ``encode_context`` map text to ids within the spec's limits;
    ``decode`` maps ids back to text.
    """

    def __init__(self, tokens: Sequence[str], text: TextConfig = TEXT_CONFIG) -> None:
        tokens = tuple(tokens)
        if tokens[: len(SPECIAL_TOKENS)] != SPECIAL_TOKENS:
            raise ConfigError(f"vocabulary.tokens must start with the special tokens {list(SPECIAL_TOKENS)}")
        seen: set[str] = set()
        for index, token in enumerate(tokens):
            if not isinstance(token, str) or not token:
                raise ConfigError(f"vocabulary.tokens[{index}] must be a non-empty string, got {token!r}")
            if token in seen:
                raise ConfigError(f"vocabulary.tokens[{index}]: {token!r} occurs twice")
            seen.add(token)
        self.tokens = tokens
        self.text = text
        self._ids = {token: index for index, token in enumerate(tokens)}

    @classmethod
    def build(
        cls,
        token_lists: Iterable[Sequence[str]],
        max_size: int,
        min_count: int = 1,
        text: TextConfig = TEXT_CONFIG,
    ) -> Vocabulary:
        """The ``max_size - 4`` most frequent tokens seen at least ``min_count`` times (ties
        by the token's text, so the result does not depend on the order of the lists)."""
        if max_size <= N_SPECIAL:
            raise ConfigError(f"vocab_size must be above {N_SPECIAL} (the special tokens), got {max_size}")
        if min_count < 1:
            raise ConfigError(f"min_count must be at least 1, got {min_count}")
        counts: Counter[str] = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        for special in SPECIAL_TOKENS:
            counts.pop(special, None)
        ranked = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
        return cls(SPECIAL_TOKENS + tuple(ranked[: max_size - N_SPECIAL]), text)

    @classmethod
    def from_texts(
        cls, texts: Iterable[str], max_size: int, min_count: int = 1, text: TextConfig = TEXT_CONFIG
    ) -> Vocabulary:
        """:meth:`build` over the tokens of ``texts``."""
        return cls.build((_turn_tokens(text, t) for t in texts), max_size, min_count, text)

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._ids

    def token_id(self, token: str) -> int:
        """The token's id; :data:`UNK` if it is not in the vocabulary."""
        return self._ids.get(token, UNK)

    def ids(self, tokens: Iterable[str]) -> list[int]:
        return [self._ids.get(token, UNK) for token in tokens]

    def tokenize(self, text: str) -> list[str]:
        """``text``'s tokens under this vocabulary's text settings."""
        return list(_turn_tokens(self.text, text))

    def encode_turn(self, text: str, max_tokens: int) -> list[int]:
        """A context turn's ids: its *last* ``max_tokens`` tokens (the end of a long turn is
        what the reply answers). No END."""
        tokens = _turn_tokens(self.text, text)
        return self.ids(tokens[-max_tokens:] if max_tokens > 0 else ())

    def edge_tokens(self, text: str, count: int, last: bool) -> tuple[str, ...]:
        """The last (or, with ``last`` false, the first) ``count`` tokens of ``text``, as
        tokenizing all of it gives them, tokenizing no more of it than they need, and at most
        :data:`MAX_TURN_READ` characters (see :data:`MAX_TURN_CHARS`)."""
        if count <= 0:
            return ()
        window = MAX_TURN_CHARS
        while True:
            if window >= len(text):
                tokens = _turn_tokens(self.text, text)
                return tuple(tokens[-count:] if last else tokens[:count])
            part = text[-window:] if last else text[:window]
            firm = self._firm_tokens(part, last, count)
            if firm is None:  # no space to cut at (Chinese, Japanese): see _unspaced_firm_tokens
                firm = self._unspaced_firm_tokens(part, last, count)
            if len(firm) >= count:
                return firm[-count:] if last else firm[:count]
            if window >= MAX_TURN_READ:  # no text: its cut end is read as it is
                tokens = _turn_tokens(self.text, part)
                return tuple(tokens[-count:] if last else tokens[:count])
            window *= 4

    def _unspaced_firm_tokens(self, part: str, last: bool, count: int) -> tuple[str, ...]:
        """The tokens of ``part``, a cut end (with ``last``) or start of a text with no space in
        it, that tokenizing the whole text gives too: those that the part read without its
        :data:`_UNSPACED_MARGIN` characters next to the cut agrees on, less its token next to that
        cut. The word the cut split can read as more than one token ("x3." is "x3" and ".",
        "x'90s" read from "'90s" is "'" and "90s"), and dropping only one of them kept another."""
        tokens = _turn_tokens(self.text, part)
        if len(tokens) <= count:  # too few even with the token next to the cut: read more, not again
            return tuple(tokens[1:] if last else tokens[:-1])
        shorter = _turn_tokens(self.text, part[_UNSPACED_MARGIN:] if last else part[:-_UNSPACED_MARGIN])
        # less the shorter read's own token at its cut
        return _agreeing(tokens, shorter[1:] if last else shorter[:-1], last)

    def _firm_tokens(self, part: str, last: bool, count: int) -> tuple[str, ...] | None:
        """The tokens of ``part``, a cut end (with ``last``) or start of a text, that tokenizing
        the whole text gives too. The word the cut split goes ("'90s" of "i'90s" is two tokens,
        "i'90s" one), and so does the whole word next to the cut where it reads otherwise at an
        edge ("3." ending a text is "3" and ".", followed by "b" one token): of the tokens of the
        part without the split word, those the part without the next word too agrees on. None
        for a part without a space."""
        spaces = list(_SPACES.finditer(part))
        if not spaces:
            return None
        if last:
            whole = part[spaces[0].end() :]
            rest = part[spaces[1].end() :] if len(spaces) > 1 else ""
        else:
            whole = part[: spaces[-1].start()]
            rest = part[: spaces[-2].start()] if len(spaces) > 1 else ""
        kept = _turn_tokens(self.text, whole)
        # no more tokens than characters come of the word next to the cut: where the part holds
        # more than enough, those it could change are not among the ``count`` asked for
        edge = len(unicodedata.normalize("NFKC", whole[: len(whole) - len(rest)] if last else whole[len(rest) :]))
        if len(kept) >= count + edge:
            return tuple(kept[edge:] if last else kept[: len(kept) - edge])
        return _agreeing(kept, _turn_tokens(self.text, rest), last)

    def encode_context(self, turns: Sequence[str], max_turns: int, max_tokens: int) -> list[list[int]]:
        """The last ``max_turns`` turns (oldest first), each by :meth:`encode_turn`."""
        recent = list(turns)[-max_turns:] if max_turns > 0 else []
        return [self.encode_turn(turn, max_tokens) for turn in recent]

    def encode_asked_context(self, turns: Sequence[str], max_turns: int, max_tokens: int) -> list[list[int]]:
        """A request's context: the last ``max_turns`` turns that hold a token (oldest first),
        each its last ``max_tokens`` tokens (after dropping surrounding spaces and format
        characters), read from no more of its end than they need (:data:`MAX_TURN_CHARS`). A turn with
        nothing to encode (blank, or only characters the tokenizer drops, such as U+200B) is
        skipped, not counted: it would otherwise push a turn with words out of the window."""
        recent: list[list[int]] = []
        for turn in reversed(turns):
            if len(recent) >= max_turns:
                break
            # what the tokenizer drops goes before the cut: 4,000 trailing spaces (or zero-width
            # characters) would otherwise be all that is left of a turn, and it would be skipped
            text = emoji_kept_whole(turn).strip()
            ids = self.ids(self.edge_tokens(text, max_tokens, last=True)) if text else []
            if ids:
                recent.append(ids)
        return recent[::-1]

    def encode_reply(self, text: str, max_length: int) -> list[int]:
        """A reply's ids, at most ``max_length`` of them, :data:`END` included: its *first*
        ``max_length - 1`` tokens, then END."""
        if max_length < 1:
            raise ValueError(f"max_length must be at least 1 (room for END), got {max_length}")
        tokens = _turn_tokens(self.text, text)
        return self.ids(tokens[: max_length - 1]) + [END]

    def decode_tokens(self, ids: Iterable[int]) -> list[str]:
        """Ids -> tokens, up to the first :data:`END`; PAD and START are skipped, UNK is
        ``"<unk>"``, an id outside the vocabulary raises ``ValueError``."""
        tokens: list[str] = []
        for raw in ids:
            index = int(raw)
            if index == END:
                break
            if index in (PAD, START):
                continue
            if not 0 <= index < len(self.tokens):
                raise ValueError(f"token id {index} is outside the vocabulary (size {len(self.tokens)})")
            tokens.append(self.tokens[index])
        return tokens

    def decode(self, ids: Iterable[int], sentence_case: bool = True) -> str:
        """Ids -> readable text (:func:`detokenize`); UNK tokens are left out."""
        return detokenize([t for t in self.decode_tokens(ids) if t != SPECIAL_TOKENS[UNK]], sentence_case)

    def to_dict(self) -> dict[str, Any]:
        return {"tokens": list(self.tokens), "text": self.text.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Vocabulary:
        """The inverse of :meth:`to_dict`; a bad field raises :class:`ConfigError` naming it."""
        if not isinstance(data, Mapping):
            raise ConfigError("vocabulary must be an object with 'tokens' and 'text'")
        unknown = sorted(set(data) - {"tokens", "text"}, key=str)
        if unknown:  # a setting of a newer version, which this one would not apply
            raise ConfigError(f"vocabulary: unknown field(s) {', '.join(map(repr, unknown))}")
        tokens = data.get("tokens")
        if not isinstance(tokens, list):
            raise ConfigError("vocabulary.tokens must be a list of strings")
        text_settings = data.get("text", TEXT_CONFIG.to_dict())
        if not isinstance(text_settings, Mapping):
            raise ConfigError("vocabulary.text must be an object of text settings")
        # a setting left out is the responder's own (as a whole "text" left out is), never the
        # intent classifier's defaults that TextConfig has (a stemmer, another tokenizer)
        text = TextConfig.from_dict({**TEXT_CONFIG.to_dict(), **text_settings}, "vocabulary.text")
        return cls(tokens, text)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.tokens == other.tokens and self.text == other.text

    def __repr__(self) -> str:
        return f"Vocabulary({len(self.tokens)} tokens)"
