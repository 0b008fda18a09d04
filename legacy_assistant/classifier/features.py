"""Tokens to feature vectors: a vocabulary fitted on training text, applied with numpy.

The classic recipe is a *binary bag of words*: one column per stemmed word seen in training,
1.0 where the sentence holds it. Word n-grams, character n-grams, TF-IDF weighting and L2
normalisation are options of the same featurizer. The vocabulary is stored as a JSON list, its
order giving the column index.

A sentence switches on a handful of the vocabulary's thousands of columns, so the network takes
its input sparse: the ids of the columns that are on and their weights (:class:`SparseRows`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from legacy_assistant.common.caching import ShortTextCache
from legacy_assistant.common.fields import MAX_COUNT, check_count_list, check_field_types, shown
from legacy_assistant.errors import ConfigError
from legacy_assistant.text.processing import (
    CACHED_WORD_CHARS,
    CACHED_WORDS,
    TextConfig,
    TextProcessor,
    lower_case,
    normalised_word,
)

CHAR_PREFIX = "#c:"  # keeps character n-grams apart from words in one vocabulary
# The character 1-gram of a word's padding alone: every word has it, in any script, so it says
# nothing about whether the vocabulary knows a text (see Featurizer.known_counts).
BLANK_TERM = CHAR_PREFIX + " "
WEIGHTINGS = ("binary", "count", "tfidf")
MAX_NGRAM = 32  # longest n-gram, in words or characters


class NoFeaturesError(ConfigError):
    """No term of the training texts is kept: every text would encode to nothing."""


@dataclass(frozen=True)
class FeatureConfig:
    """What counts as a feature and how it is weighted.

    Attributes:
        text: tokenizer, stemmer, case folding.
        word_ngrams: ``(min_n, max_n)`` over stemmed tokens; ``(1, 1)`` is the classic bag of words.
        char_ngrams: ``(min_n, max_n)`` over each token padded with spaces, or ``None``.
        min_count: drop terms seen in fewer training sentences than this.
        max_features: keep at most this many terms, those seen in the most training sentences
            (ties broken alphabetically); ``None`` keeps all. It bounds the first layer's kernel,
            ``[n_features, width]`` float32, and so the model's size.
        weighting: ``binary`` (presence), ``count``, or ``tfidf`` (sublinear tf times smoothed idf).
        normalize: scale each row to unit L2 norm.
        balance_parts: with ``normalize`` and character n-grams, scale a row's word features and
            its character n-grams to an L2 norm of ``1/sqrt(2)`` each (the row's norm stays 1),
            so a sentence's hundred-odd character n-grams do not drown its dozen words.
    """

    text: TextConfig = field(default_factory=TextConfig)
    word_ngrams: tuple[int, int] = (1, 1)
    char_ngrams: tuple[int, int] | None = None
    min_count: int = 1
    max_features: int | None = None
    weighting: str = "binary"
    normalize: bool = False
    balance_parts: bool = False

    def __post_init__(self) -> None:
        check_field_types(self)
        if not isinstance(self.text, TextConfig):
            raise ConfigError(f"text must be a text configuration, got {shown(self.text)}")
        spans = {"word_ngrams": self.word_ngrams}
        if self.char_ngrams is not None:
            spans["char_ngrams"] = self.char_ngrams
        for name, span in spans.items():
            check_count_list(name, span)
            if len(span) != 2 or not 1 <= span[0] <= span[1] <= MAX_NGRAM:
                raise ConfigError(f"{name} must be (min_n, max_n) with 1 <= min_n <= max_n <= {MAX_NGRAM}, got {span}")
        if self.min_count < 1:
            raise ConfigError(f"min_count must be at least 1, got {self.min_count}")
        if self.max_features is not None and (
            isinstance(self.max_features, bool)
            or not isinstance(self.max_features, int)
            or not 1 <= self.max_features <= MAX_COUNT
        ):
            raise ConfigError(
                f"max_features must be a whole number from 1 to {MAX_COUNT:,}, got {shown(self.max_features)}"
            )
        if self.weighting not in WEIGHTINGS:
            raise ConfigError(f"weighting must be one of {shown(WEIGHTINGS)}, got {shown(self.weighting)}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["word_ngrams"] = list(self.word_ngrams)
        data["char_ngrams"] = list(self.char_ngrams) if self.char_ngrams else None
        return data

    @classmethod
    def from_dict(cls, data: Any, where: str = "features") -> FeatureConfig:
        """Settings from a JSON object. ``where`` is the object's path in its file: every error
        names it and the setting (``features.word_ngrams must be ...``) in one line."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where} must be an object of feature settings, got {shown(data)}")
        data = dict(data)
        unknown = sorted(set(data) - {f for f in cls.__dataclass_fields__}, key=str)
        if unknown:
            kind = "setting" if len(unknown) == 1 else "settings"
            raise ConfigError(f"{where}: unknown {kind} {', '.join(map(repr, unknown))}")
        if "text" in data:
            data["text"] = TextConfig.from_dict(data["text"], f"{where}.text")
        for name in ("word_ngrams", "char_ngrams"):
            if name not in data or (name == "char_ngrams" and data[name] is None):
                continue  # the default, or no character n-grams
            span = data[name]
            # tuple() of a number, string or object fails or splits it: say what is expected
            if isinstance(span, (str, bytes)) or not isinstance(span, (list, tuple)):
                raise ConfigError(f"{where}.{name} must be a list of two whole numbers [min, max], got {shown(span)}")
            data[name] = tuple(span)
        try:
            return cls(**data)
        except ConfigError as exc:
            raise ConfigError(f"{where}.{exc}") from None


class Featurizer:
    """Fitted vocabulary + weighting; :meth:`encode` gives the network's sparse input."""

    def __init__(self, config: FeatureConfig, vocabulary: Sequence[str], idf: Sequence[float] | None = None) -> None:
        self.config = config
        self.vocabulary = list(vocabulary)
        for number, term in enumerate(self.vocabulary):
            if not isinstance(term, str) or not term:
                raise ConfigError(f"vocabulary term #{number} must be a non-empty string, got {shown(term)}")
        self.index = {term: i for i, term in enumerate(self.vocabulary)}
        if len(self.index) != len(self.vocabulary):
            raise ConfigError("vocabulary holds duplicate terms")
        # a value beyond float32's range (1e308) becomes infinity, refused below: not a RuntimeWarning on stderr first
        with np.errstate(over="ignore"):
            self.idf = np.asarray(idf, dtype=np.float32) if idf is not None else None
        if config.weighting == "tfidf" and (self.idf is None or self.idf.shape != (len(self.vocabulary),)):
            raise ConfigError("tfidf weighting needs one idf value per vocabulary term")
        if self.idf is not None and not (np.isfinite(self.idf).all() and (self.idf >= 0).all()):
            # a NaN weight makes every probability NaN; an idf (log of a ratio >= 1) is never negative
            raise ConfigError("idf values must be finite numbers of at least 0")
        self.processor = TextProcessor(config.text)
        # bool [n_features]: which columns are character n-grams (see balance_parts)
        self._char_columns = np.fromiter(
            (term.startswith(CHAR_PREFIX) for term in self.vocabulary), dtype=bool, count=len(self.vocabulary)
        )
        self._blank_column = self.index.get(BLANK_TERM)
        # A word's character n-grams are the same every time it is seen: look them up once.
        self._cached_char_ids = ShortTextCache(self._token_char_ids, CACHED_WORDS, CACHED_WORD_CHARS)

    def __reduce__(self) -> tuple[type[Featurizer], tuple[FeatureConfig, list[str], list[float] | None]]:
        # made again from what defines it: its word cache (an lru_cache of a bound method) and
        # tokenizers cannot be pickled, and a PicklingError naming the cache hid that for a model's info
        return (Featurizer, (self.config, self.vocabulary, None if self.idf is None else self.idf.tolist()))

    @property
    def n_features(self) -> int:
        return len(self.vocabulary)

    def words_read_otherwise(self) -> list[str]:
        """The vocabulary's words (of its word terms) that today's text processing can no longer
        produce from a message, as it now writes them otherwise (emoji set apart, vowel marks,
        the tatweel and invisible characters dropped, typographic apostrophes written ``'``, and
        where the model lower-cases, case folded: "straße" is "strasse"): a
        model trained when they were produced reads the messages that hold them otherwise than
        in training. None for the classic recipe, whose text processing stays as it was."""
        if self.config.text.tokenizer == "classic":
            return []
        lowercase = self.config.text.lowercase
        found: dict[str, None] = {}
        for term in self.vocabulary:
            if term.startswith(CHAR_PREFIX):
                continue
            for word in term.split(" "):
                if not word or (word.isascii() and "`" not in word):
                    continue
                if normalised_word(word) != word or (lowercase and lower_case(word) != word):
                    found[word] = None
        return list(found)

    @classmethod
    def fit(cls, texts: Sequence[str], config: FeatureConfig | None = None) -> Featurizer:
        """Learn the vocabulary (sorted, so it does not depend on example order) and idf."""
        config = config or FeatureConfig()
        processor = TextProcessor(config.text)
        return cls._fit_terms([_terms(processor.tokens(text), config) for text in texts], config)

    @classmethod
    def fit_encode(cls, texts: Sequence[str], config: FeatureConfig | None = None) -> tuple[Featurizer, SparseRows]:
        """:meth:`fit` and :meth:`encode` of the same texts, tokenizing them once."""
        config = config or FeatureConfig()
        processor = TextProcessor(config.text)
        term_lists = [_terms(processor.tokens(text), config) for text in texts]
        featurizer = cls._fit_terms(term_lists, config)
        return featurizer, featurizer._encode_terms(term_lists)

    @classmethod
    def _fit_terms(cls, term_lists: Sequence[list[str]], config: FeatureConfig) -> Featurizer:
        document_frequency: Counter[str] = Counter()
        for terms in term_lists:
            document_frequency.update(set(terms))
        kept = [(df, t) for t, df in document_frequency.items() if df >= config.min_count]
        if config.max_features is not None and len(kept) > config.max_features:
            # the most frequent terms; among equally frequent ones, the alphabetically first
            kept = sorted(kept, key=lambda pair: (-pair[0], pair[1]))[: config.max_features]
        vocabulary = sorted(t for _, t in kept)
        if not vocabulary and document_frequency:
            raise NoFeaturesError(
                f"no features: no term occurs in min_count = {config.min_count} training texts "
                f"(the most frequent is in {max(document_frequency.values())})"
            )
        if not vocabulary:
            raise NoFeaturesError("no features: the training texts hold no words after tokenizing")
        idf = None
        if config.weighting == "tfidf":
            n = len(term_lists)
            idf = [math.log((1 + n) / (1 + document_frequency[t])) + 1.0 for t in vocabulary]
        return cls(config, vocabulary, idf)

    def encode(self, texts: Sequence[str]) -> SparseRows:
        """Weighted features of each text as sparse rows (see :class:`SparseRows`).

        Terms outside the vocabulary are ignored. Ids within a row are sorted, so sums over a
        row always run in the same order.
        """
        return self._encode_ids([self._known_ids(self.processor.tokens(text)) for text in texts])

    def _known_ids(self, tokens: list[str]) -> list[int]:
        """Columns of the text's terms that the vocabulary holds, repeats included (any order)."""
        lookup = self.index.get
        ids = []
        low, high = self.config.word_ngrams
        for n in range(low, high + 1):
            for i in range(len(tokens) - n + 1):
                col = lookup(" ".join(tokens[i : i + n]))
                if col is not None:
                    ids.append(col)
        if self.config.char_ngrams:
            char_ids = self._cached_char_ids
            for token in tokens:
                ids.extend(char_ids(token))
        return ids

    def _token_char_ids(self, token: str) -> tuple[int, ...]:
        lookup = self.index.get
        span = self.config.char_ngrams
        assert span is not None  # only called for a featurizer with character n-grams
        found = (lookup(term) for term in _char_terms(token, span))
        return tuple(col for col in found if col is not None)

    def _encode_terms(self, term_lists: Sequence[list[str]]) -> SparseRows:
        lookup = self.index.get
        return self._encode_ids([[col for col in map(lookup, terms) if col is not None] for terms in term_lists])

    def _encode_ids(self, id_lists: Sequence[list[int]]) -> SparseRows:
        if len(id_lists) == 1 and id_lists[0]:
            return self._encode_one(id_lists[0])
        rows = [Counter(ids) for ids in id_lists]
        lengths = np.fromiter((len(c) for c in rows), dtype=np.int32, count=len(rows))
        offsets = _offsets(lengths)
        ids = np.zeros(offsets[-1], dtype=np.int32)
        weights = np.zeros(offsets[-1], dtype=np.float32)
        for start, counts in zip(offsets.tolist(), rows):
            if counts:
                keys = sorted(counts)
                ids[start : start + len(keys)] = keys
                weights[start : start + len(keys)] = [counts[k] for k in keys]
        if self.config.weighting == "binary":
            weights[:] = 1.0
        elif self.config.weighting == "tfidf":
            assert self.idf is not None  # fitted with tfidf weighting, so the idf exists
            # sublinear term frequency (1 + log tf) times smoothed inverse document frequency
            weights = (1.0 + np.log(weights)) * self.idf[ids]
        # each row's norm summed over the row padded to the longest one, as it always was
        width = max(1, int(lengths.max(initial=0)))
        if self.config.normalize and self.config.balance_parts and self._char_columns.any():
            chars = self._char_columns[ids]
            for part in (chars, ~chars):
                values = np.where(part, weights, 0.0)
                norms = np.repeat(_padded_row_norms(values, lengths, width) * math.sqrt(2.0), lengths)
                np.divide(weights, norms, out=weights, where=part & (norms > 0))
        elif self.config.normalize:
            norms = np.repeat(_padded_row_norms(weights, lengths, width), lengths)
            np.divide(weights, norms, out=weights, where=norms > 0)
        return SparseRows(ids, weights, lengths)

    def _encode_one(self, id_list: list[int]) -> SparseRows:
        """:meth:`_encode_ids` of one non-empty row (a request's text), bit for bit, in fewer steps.

        A row alone has no padding, so every slot is present and the masks of the general path
        select everything; the same float32 operations run on the same ``[1, n]`` arrays.
        """
        counts = Counter(id_list)
        keys = sorted(counts)
        n = len(keys)
        ids = np.array([keys], dtype=np.int32)
        weights: np.ndarray  # float32 [1, n]
        if self.config.weighting == "binary":
            weights = np.ones((1, n), dtype=np.float32)
        else:
            weights = np.array([[counts[k] for k in keys]], dtype=np.float32)
            if self.config.weighting == "tfidf":
                assert self.idf is not None  # fitted with tfidf weighting, so the idf exists
                weights = (1.0 + np.log(weights)) * self.idf[ids]
        if self.config.normalize and self.config.balance_parts and self._char_columns.any():
            # both parts' norms from the original weights in one einsum (row 0: characters, row
            # 1: words), each row summed as the general path sums it; then one division
            chars = self._char_columns[ids[0]]
            parts = np.where(chars, weights, 0.0)
            parts = np.concatenate([parts, weights - parts])
            norms = np.sqrt(np.einsum("ij,ij->i", parts, parts)) * math.sqrt(2.0)
            divisors = np.where(chars, norms[0], norms[1])
            np.divide(weights, divisors, out=weights, where=divisors > 0)
        elif self.config.normalize:
            norms = np.sqrt(np.einsum("ij,ij->i", weights, weights))[:, None]
            np.divide(weights, norms, out=weights, where=norms > 0)
        return SparseRows(ids[0], weights[0], np.array([n], dtype=np.int32))

    def known_counts(self, rows: SparseRows) -> np.ndarray:
        """int32 ``[n]``: how many of each row's features the vocabulary knows that say something
        about its text: the row's terms, less the padding's character 1-gram, which every word
        switches on (a sentence in a script the model never saw had that one feature, and was
        "understood"). 0 means the text is not understood: it gets the fallback."""
        if self._blank_column is None or not len(rows):
            return rows.lengths
        if len(rows) == 1:  # a request's text: a list lookup, 3 µs against 10 for the array operations
            length = int(rows.lengths[0])
            blank_in_row = self._blank_column in rows.flat_ids.tolist()
            return np.array([length - blank_in_row], dtype=np.int32)
        # a row holds an id at most once: count the rows that hold the blank column
        slots = np.flatnonzero(rows.flat_ids == self._blank_column)
        blank = np.bincount(np.searchsorted(rows.offsets, slots, side="right") - 1, minlength=len(rows))
        return (rows.lengths - blank).astype(np.int32)

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """Dense float32 ``[len(texts), n_features]`` (for inspection and small data)."""
        return self.encode(texts).to_dense(self.n_features)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "vocabulary": self.vocabulary,
            "idf": None if self.idf is None else [float(x) for x in self.idf],
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "featurizer") -> Featurizer:
        """The featurizer :meth:`to_dict` stored; a bad field raises :class:`ConfigError` naming
        its path (``featurizer.config.weighting``). The settings must be recorded: an empty
        ``config`` would read as the defaults, features other than those the model was trained on."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where} must be an object with config, vocabulary and idf, got {shown(data)}")
        unknown = sorted(set(data) - {"config", "vocabulary", "idf"}, key=str)
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}")
        if "config" not in data:
            raise ConfigError(f"{where}.config is missing")
        if isinstance(data["config"], Mapping) and not data["config"]:
            raise ConfigError(f"{where}.config is empty: it must hold the feature settings the model was trained with")
        config = FeatureConfig.from_dict(data["config"], f"{where}.config")
        vocabulary = data.get("vocabulary")
        if not isinstance(vocabulary, list):
            raise ConfigError(f"{where}.vocabulary must be a list of terms, got {shown(vocabulary)}")
        idf = data.get("idf")
        if idf is not None and (
            not isinstance(idf, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in idf)
        ):
            raise ConfigError(f"{where}.idf must be a list of numbers or null, got {shown(idf)}")
        featurizer = cls(config, vocabulary, idf)
        if idf is not None and config.weighting != "tfidf":
            # only tfidf weighting is fitted with an idf: settings that lost their weighting
            raise ConfigError(
                f'{where}.idf is recorded but {where}.config.weighting is {shown(config.weighting)}, not "tfidf"'
            )
        return featurizer


def _terms(tokens: list[str], config: FeatureConfig) -> list[str]:
    terms: list[str] = []
    low, high = config.word_ngrams
    for n in range(low, high + 1):
        terms.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    if config.char_ngrams:
        for token in tokens:
            terms.extend(_char_terms(token, config.char_ngrams))
    return terms


def _char_terms(token: str, span: tuple[int, int]) -> list[str]:
    """Character n-grams of one token padded with spaces, e.g. ``#c: c``, ``#c:ca`` for "cat"."""
    padded = f" {token} "
    low, high = span
    return [CHAR_PREFIX + padded[i : i + n] for n in range(low, high + 1) for i in range(len(padded) - n + 1)]


@dataclass(frozen=True)
class SparseRows:
    """Feature vectors of texts, stored unpadded (compressed sparse rows): their memory grows with
    the number of features, not with the number of rows times the longest row.

    Attributes:
        flat_ids: int32 ``[total]`` vocabulary indices of every row, one row after another,
            sorted within a row; ``total = lengths.sum()``.
        flat_weights: float32 ``[total]`` their feature values.
        lengths: int32 ``[n]`` number of features of each row.

    :attr:`ids` and :attr:`weights` are the padded form the network takes, made at each access:
    use them on a batch (:meth:`take`, :func:`length_sorted_batches`), not on a large data set.
    """

    flat_ids: np.ndarray
    flat_weights: np.ndarray
    lengths: np.ndarray

    def __len__(self) -> int:
        return len(self.lengths)

    @cached_property
    def offsets(self) -> np.ndarray:
        """int64 ``[n + 1]``: row ``r`` is ``flat_ids[offsets[r]:offsets[r + 1]]``."""
        return _offsets(self.lengths)

    @property
    def ids(self) -> np.ndarray:
        """int32 ``[n, width]`` vocabulary indices, ``width`` the longest row's length (at least
        1); padding slots hold 0."""
        return self._padded(self.flat_ids)

    @property
    def weights(self) -> np.ndarray:
        """float32 ``[n, width]`` feature values of :attr:`ids`; padding slots hold 0.0, so they
        add nothing to ``sum(weights * kernel[ids])``."""
        return self._padded(self.flat_weights)

    def _padded(self, flat: np.ndarray) -> np.ndarray:
        if len(self.lengths) == 1 and len(flat):  # one row (a request's text): nothing to pad
            return flat[None]
        return _pad(flat, self.lengths, max(1, int(self.lengths.max(initial=0))))

    def take(self, rows: np.ndarray) -> SparseRows:
        """The given rows (int ``[b]`` positions, or a bool ``[n]`` mask), in that order."""
        lengths = self.lengths[rows]
        offsets = _offsets(lengths)
        # each slot's position in the flat arrays: its row's start there plus its place in the row
        positions = np.repeat(self.offsets[:-1][rows] - offsets[:-1], lengths) + np.arange(offsets[-1])
        return SparseRows(self.flat_ids[positions], self.flat_weights[positions], lengths)

    def to_dense(self, n_features: int) -> np.ndarray:
        """float32 ``[n, n_features]``."""
        dense = np.zeros((len(self.lengths), n_features), dtype=np.float32)
        dense[np.repeat(np.arange(len(self.lengths)), self.lengths), self.flat_ids] = self.flat_weights
        return dense


def _offsets(lengths: np.ndarray) -> np.ndarray:
    """int64 ``[n + 1]``: the start of each row in flat arrays of rows ``lengths`` (int ``[n]``)
    long, then their total."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def _pad(flat: np.ndarray, lengths: np.ndarray, width: int) -> np.ndarray:
    """``[n, width]``: the rows of ``flat`` (``[lengths.sum()]``), each padded with zeros."""
    padded = np.zeros((len(lengths), width), dtype=flat.dtype)
    padded[np.arange(width, dtype=lengths.dtype) < lengths[:, None]] = flat
    return padded


PADDED_BLOCK = 1 << 20  # slots of padded rows that _padded_row_norms holds at a time


def _padded_row_norms(values: np.ndarray, lengths: np.ndarray, width: int) -> np.ndarray:
    """float32 ``[n]``: the L2 norm of each row of ``values`` (float32 ``[lengths.sum()]``), its
    squares summed by ``np.einsum`` over the row padded with zeros to ``width`` slots.

    A vectorised sum groups its terms by their slots, so the zeros behind a row can move its sum
    by an ulp. The rows of a set were normalised padded to its longest row when they were stored
    so; summing them padded the same way, a block of rows at a time, keeps every feature value
    bit for bit. A block holds two rows or more (unless the set holds one): einsum sums a row of
    over 8,192 slots alone in another order than the same row among others.
    """
    offsets = _offsets(lengths)
    sums = np.empty(len(lengths), dtype=np.float32)
    step = max(2, PADDED_BLOCK // width)
    starts = list(range(0, len(lengths), step))
    if len(starts) > 1 and len(lengths) - starts[-1] == 1:  # the last row would be alone: join the block before
        starts.pop()
    for first, last in zip(starts, [*starts[1:], len(lengths)]):
        block = _pad(values[offsets[first] : offsets[last]], lengths[first:last], width)
        sums[first:last] = np.einsum("ij,ij->i", block, block)
    return np.sqrt(sums)


def length_sorted_batches(rows: SparseRows, batch_size: int) -> Iterator[tuple[np.ndarray, SparseRows]]:
    """``rows`` in batches of at most ``batch_size`` rows of similar length, shortest first.

    Yields ``(indices, batch)``: int ``[b]`` positions of the batch's rows in ``rows``, and those
    rows (:meth:`SparseRows.take`), whose ``ids`` and ``weights`` are ``[b, width]`` padded to
    the longest of them. Every row comes exactly once; rows of equal length keep their order.
    Evaluating a large set this way spends little time and memory on padding, which the
    network's first layer pays for.
    """
    order = np.argsort(rows.lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        yield indices, rows.take(indices)
