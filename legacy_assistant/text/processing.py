"""Text to tokens: NLTK tokenization and stemming that need no NLTK data.

``nltk.word_tokenize`` needs the ``punkt_tab`` models for sentence splitting, which many
machines do not have and cannot download. The tokenizers used here are pure rules: the
Treebank-style ``NLTKWordTokenizer`` (what ``word_tokenize`` applies to each sentence) and
``ToktokTokenizer``. Lancaster, Porter and Snowball stemmers are pure rules too.

The ``classic`` tokenizer reproduces the classic chatbot recipe's ``nltk.word_tokenize`` for
models imported from it: sentences split by NLTK's Punkt algorithm *without* its trained English
parameters (which live in the ``punkt_tab`` data), each sentence Treebank-tokenized, every token
kept (punctuation too: the classic bag of words looks every token up), lower-cased after
tokenizing. It differs from ``word_tokenize`` only where the trained parameters matter:
abbreviations such as "Mr." or "e.g." end a sentence here, so their period becomes a token of
its own.

The ``unicode`` tokenizer is Treebank's for languages other than English: punctuation outside
ASCII ("¿", "«", "؟", "。") stands apart, and so does each Chinese or Japanese character.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import regex
from nltk.stem import LancasterStemmer, PorterStemmer, SnowballStemmer
from nltk.tokenize import NLTKWordTokenizer, ToktokTokenizer
from nltk.tokenize.punkt import PunktSentenceTokenizer

from legacy_assistant.common.caching import ShortTextCache
from legacy_assistant.common.fields import check_field_types, shown
from legacy_assistant.errors import ConfigError
from legacy_assistant.text.nltk_patterns import hold_gil_while_matching
from legacy_assistant.text.plain_words import plain_words

TOKENIZERS = ("treebank", "toktok", "whitespace", "classic", "unicode")
STEMMERS = ("lancaster", "snowball", "porter", "none")

# A token is kept only if it holds a letter or digit: "?", "...", "--" are dropped, "'s" is kept.
_HAS_WORD_CHAR = re.compile(r"\w", re.UNICODE)
# The unicode tokenizer's: punctuation outside ASCII ("¿", "¡", "«", "،", "؟", "。", "、", "！"),
# which Treebank's rules leave on the word ("¿qué"), and each character of the scripts written
# without spaces between words (Chinese, Japanese), where a sentence was one token; word bigrams
# then are character bigrams, the usual bag of words for those scripts. Marks that join letters
# inside a word stay there: Catalan's middle dot ("col·lecció"), Hebrew's geresh and gershayim
# ("צה״ל", vowel points before them included), Armenian's apostrophe; and the Arabic decimal
# and thousands separators inside a number ("٣٫٥", "١٬٠٠٠"), as "3.5" and "1,000" stay whole.
_IN_WORD_MARKS = "\u00b7\u05f3\u05f4\u055a"
_IN_NUMBER_MARKS = "\u066b\u066c"
_STANDS_APART = regex.compile(
    rf"(?V1)([\p{{P}}--[\x00-\x7f]--[{_IN_WORD_MARKS}{_IN_NUMBER_MARKS}]]"
    rf"|(?<![\p{{L}}\p{{M}}])[{_IN_WORD_MARKS}]|[{_IN_WORD_MARKS}](?!\p{{L}})"
    rf"|(?<!\p{{Nd}})[{_IN_NUMBER_MARKS}]|[{_IN_NUMBER_MARKS}](?!\p{{Nd}})"
    r"|[\p{Han}\p{Hiragana}\p{Katakana}])"
)
# Invisible format characters (zero-width space and joiner, byte order mark, bidi marks, soft
# hyphen): inside a word they made it unknown ("movies\u200b" is not "movies").
_FORMAT_CHARACTERS = regex.compile(r"\p{Cf}+")
# format characters that print: a sign spanning the digits after it (U+0600 ARABIC NUMBER SIGN)
_PRINTED_FORMAT = regex.compile(r"\p{Prepended_Concatenation_Mark}")
# Marks that Arabic and Hebrew writers mostly leave out: Arabic short vowels, tanween, shadda and
# sukun (U+064B-U+065F) and the dagger alif (U+0670), Hebrew vowel points and cantillation
# (U+0591-U+05C7, but the maqaf, paseq, sof pasuq and nun hafukha, which are punctuation), and the
# tatweel (U+0640), which only stretches a word. "مَرْحَبًا" was another word than "مرحبا"
# (and went to another intent), "مــرحــبا" too.
_OPTIONAL_MARKS = regex.compile(r"[\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7\u0640\u064b-\u065f\u0670]+")
# Emoji (a skin tone or variation selector with them; a flag is two regional
# indicators), which chat text glues to words: "thanks\U0001f44d" was one unknown word. Once the
# joiners between them are dropped, each stands apart, and is then dropped as no word. Only the
# pictographs that are emoji (or not yet assigned): older regex releases count 700 more
# symbols Extended_Pictographic ("\u2605", "\u2610"), and a model trained with one release would
# read "5\u2605" otherwise served with another. A skin tone with no emoji before it (a swatch sent
# alone, or left when its emoji was deleted) stands apart too: "thanks\U0001f3fd" was one word.
_PICTOGRAPH = r"[\p{Extended_Pictographic}&&[\p{Emoji}\p{Cn}]]"
_EMOJI_MARKS = r"\p{Emoji_Modifier}\p{Mn}\p{Me}"
_PICTOGRAPHS = regex.compile(rf"(?V1)[{_PICTOGRAPH}\p{{Regional_Indicator}}\p{{Emoji_Modifier}}][{_EMOJI_MARKS}]*")
# An emoji as a reader sees one, whole: a flag (two regional indicators), or pictographs with
# their marks and tags (a subdivision flag), joined by zero-width joiners (a family, a rainbow
# flag), or a skin tone without an emoji before it. _PICTOGRAPHS parts each pictograph and
# regional indicator, and dropping format characters takes the joiners and tags away: a family
# became three people.
_WHOLE_PICTOGRAPH = rf"{_PICTOGRAPH}[{_EMOJI_MARKS}\U000e0020-\U000e007f]*"
_WHOLE_EMOJI = regex.compile(
    rf"(?V1)\p{{Regional_Indicator}}{{1,2}}|{_WHOLE_PICTOGRAPH}(?:\u200d{_WHOLE_PICTOGRAPH})*"
    rf"|\p{{Emoji_Modifier}}[{_EMOJI_MARKS}]*"
)
# Apostrophes and hyphens that phones and word processors type, which NFKC leaves as they are:
# "don’t" split as "don", "t" where "don't" gives "do", "n't", and the same sentence got another
# intent. U+2018 stays: it opens a quotation more often than it elides.
_TYPOGRAPHIC = str.maketrans({"\u2019": "'", "\u02bc": "'", "\u2010": "-", "\u2011": "-"})
# Keyboards of many European layouts type an apostrophe as the acute accent (U+00B4) or, inside
# a word, the grave (U+0060). NFKC turns the acute into a space and a combining accent, so
# "don´t" became "don", "\u0301t", and the cancel intent's 0.49 for "I don't want it" fell to
# 0.20: both are read as "'" (the acute before NFKC), and so is the space and combining acute
# that NFKC and NFKD write for the acute, in text normalised so before it came here (data
# prepared with NFKC read "don", "\u0301t" where the same sentence typed is "do", "n't").
_ACUTE_OR_GRAVE_APOSTROPHE = regex.compile(r"\u00b4| \u0301|(?<=\w)`(?=\w)")


# Arabic letters that writers type for one another, as Arabic search engines read them: the alef
# with a hamza above or below, with a madda, or with a wasla is a bare alef, which informal text
# mostly writes ("اهلا" for "أهلا", "الى" for "إلى"); the alef maksura is a yeh, which Egyptian
# writing puts for it at a word's end ("على", "علي"). Each pair was two words.
_ARABIC_LETTER_FORMS = str.maketrans(
    {"\u0623": "\u0627", "\u0625": "\u0627", "\u0622": "\u0627", "\u0671": "\u0627", "\u0649": "\u064a"}
)
# Quotes that keyboards type for Hebrew's gershayim (an abbreviation's mark: "ארה"ב", "צה"ל") and
# geresh (a borrowed sound: "צ'יפס"), between two Hebrew letters.
_HEBREW_GERSHAYIM = regex.compile(r'(?<=\p{Hebrew})["\u201c\u201d](?=\p{Hebrew})')
_HEBREW_GERESH = regex.compile(r"(?<=\p{Hebrew})'(?=\p{Hebrew})")
# Greek accents (oxia/tonos, varia, perispomeni) and breathings on a Greek letter, once
# decomposed: capitals are written without them, and so is much chat text. The diaeresis stays.
# A letter and the marks on it are read once (time linear in the text, however many marks).
_GREEK_LETTER = regex.compile(r"\p{Greek}")
_GREEK_MARKED = regex.compile(r"(?<=\p{Greek})\p{Mn}+")
_GREEK_ACCENTS = str.maketrans("", "", "\u0300\u0301\u0313\u0314\u0342")


@dataclass(frozen=True)
class TextConfig:
    """How text becomes tokens; stored in every artifact so serving matches training."""

    tokenizer: str = "treebank"
    stemmer: str = "lancaster"
    lowercase: bool = True

    def __post_init__(self) -> None:
        check_field_types(self)
        if self.tokenizer not in TOKENIZERS:
            raise ConfigError(f"tokenizer must be one of {shown(TOKENIZERS)}, got {shown(self.tokenizer)}")
        if self.stemmer not in STEMMERS:
            raise ConfigError(f"stemmer must be one of {shown(STEMMERS)}, got {shown(self.stemmer)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> TextConfig:
        """Settings from a JSON object. ``where`` is the object's path in its file
        (``features.text``): every error names it, and the setting, in one line."""
        if not isinstance(data, Mapping):
            raise SettingsShapeError(f"{where or 'text'} must be an object of text settings, got {shown(data)}")
        unknown = sorted(set(data) - {f.name for f in fields(cls)}, key=str)
        if unknown:
            listed = ", ".join(map(repr, unknown))
            kind = "setting" if len(unknown) == 1 else "settings"
            raise SettingsShapeError(f"{where}: unknown {kind} {listed}" if where else f"unknown text {kind} {listed}")
        try:
            return cls(**data)
        except ConfigError as exc:
            raise ConfigError(f"{where}.{exc}" if where else str(exc)) from None


class SettingsShapeError(ConfigError, TypeError):
    """Text settings that are not an object, or name a setting there is none of. Also a
    ``TypeError``: what ``TextConfig(**data)`` raised for these, which callers still catch."""


class TextProcessor:
    """``tokens("What's on the menu?") -> ["what", "'s", "on", "the", "menu"]`` (then stemmed)."""

    def __init__(self, config: TextConfig | None = None) -> None:
        self.config = config or TextConfig()
        self._split = _tokenizer(self.config.tokenizer)
        stem = _stemmer(self.config.stemmer)
        # Stemming dominates the cost of featurising; words repeat, so cache per word, but not a
        # word longer than any real one, which would only fill the cache with megabytes.
        self._stem = ShortTextCache(stem, CACHED_WORDS, CACHED_WORD_CHARS) if stem else None

    def tokens(self, text: str) -> list[str]:
        """Normalised (NFKC, invisible format characters, Arabic and Hebrew vowel marks and the
        Arabic tatweel dropped and typographic apostrophes
        and hyphens, and an acute accent or a grave inside a word typed for an apostrophe, written
        as ``'`` and ``-``, quotes typed for Hebrew's geresh and gershayim written as those marks,
        Arabic letters typed for one another written as one, emoji set apart from the words they
        touch, except for the classic recipe, kept as it was),
        optionally lower-cased, punctuation-free, stemmed tokens."""
        if self.config.tokenizer == "classic":
            words = self._split(unicodedata.normalize("NFKC", text))
            if self.config.lowercase:
                words = [w.lower() for w in words]
            return [self._stem(w) for w in words] if self._stem is not None else words
        text = set_emoji_apart(normalised(text))
        if self.config.lowercase:
            text = lower_case(text)
        words = [w for w in self._split(text) if _HAS_WORD_CHAR.search(w)]
        if self._stem is None:
            return words
        return [self._stem(w) for w in words]


# What a per-word cache keeps (stems here, character n-gram ids in classifier/features.py): the
# latest CACHED_WORDS words of at most CACHED_WORD_CHARS characters, as long as a real word is.
CACHED_WORD_CHARS = 24
CACHED_WORDS = 16384


def folded(text: str) -> str:
    """``text`` as the classifier cannot tell it from others: in NFKC (a composed "é" and an "e"
    with a combining accent, full-width letters), without invisible format characters and the
    marks :func:`drop_optional_marks` drops, with
    typographic apostrophes and hyphens (and an acute or in-word grave typed for an apostrophe)
    as :meth:`TextProcessor.tokens` writes them, lower-cased, its spaces collapsed. What
    duplicate-pattern warnings compare."""
    return " ".join(lower_case(normalised(text)).split())


def normalised(text: str) -> str:
    """``text`` as :meth:`TextProcessor.tokens` normalises it before setting emoji apart (every
    tokenizer but classic): an acute accent or an in-word grave typed for an apostrophe written
    ``'``, NFKC, invisible format characters and the marks :func:`drop_optional_marks` drops
    dropped, typographic apostrophes and hyphens written ``'`` and ``-``, the quotes that
    keyboards type for Hebrew's geresh and gershayim written as those marks, and the Arabic
    letters that writers often type for one another written as one. One function, so
    that what duplicate-pattern warnings compare and what a loaded model's vocabulary is checked
    against are what the tokenizer reads."""
    if "\u00b4" in text or "`" in text or " \u0301" in text:
        text = _ACUTE_OR_GRAVE_APOSTROPHE.sub("'", text)
    text = drop_optional_marks(drop_format_characters(unicodedata.normalize("NFKC", text))).translate(_TYPOGRAPHIC)
    return text if text.isascii() else hebrew_marks_as_written(text).translate(_ARABIC_LETTER_FORMS)


def hebrew_marks_as_written(text: str) -> str:
    """``text`` with a double quote between two Hebrew letters written as the gershayim (U+05F4)
    and an apostrophe between two as the geresh (U+05F3): Hebrew keyboards have neither mark, so
    "ארה"ב" and "צ'יפס" are typed with quotes, and Treebank's rules split a word at a ``"``
    ("ארה", "ב") where "ארה״ב", as a pattern spells it, is one word."""
    return _HEBREW_GERESH.sub("\u05f3", _HEBREW_GERSHAYIM.sub("\u05f4", text))


def normalised_word(word: str) -> str:
    """``word`` as :meth:`TextProcessor.tokens` normalises a message before splitting it (every
    tokenizer but classic; case aside), its spaces collapsed: a word of a model's vocabulary that
    this changes can no longer come out of the text processing, e.g. ``"thanks\U0001f44d"``
    (emoji are set apart) or a word with an Arabic vowel mark (dropped). The word is read after
    a space, as it stands in a message: ``"\u0301t"``, which text normalised with NFKC before
    holds for the acute of "don´t" ("don", ``"\u0301t"``), is read as ``"'t"`` there."""
    # a space before the word changes nothing else: it is dropped again with the others
    return " ".join(set_emoji_apart(normalised(" " + word)).split())


def lower_case(text: str) -> str:
    """``text`` case-folded so that the spellings of a word in either case are one word.

    ASCII text is ``text.lower()``. Other text is ``str.casefold`` (then NFKC again, as a fold
    can decompose a letter: Greek "ΐ"), which ``str.lower`` is not for every language: the
    German "ß" and "ẞ" are "ss" ("STRASSE", "Strasse" and "Straße" were three words), and the
    Greek final sigma "ς" is "σ" (a word typed with "σ" last was another word). The Turkish and
    Azerbaijani capital dotted "İ" and dotless "ı" both become a plain "i", as "I" does: ``str.lower`` writes "İ" as "i"
    and a combining dot, which no keyboard types, and lowers "IŞIK" to "işik" but "ışık" stays,
    so a word capitalized at the start of a sentence ("Işık") was another word than in it. The
    "i" and combining dot that ``str.lower`` (and JavaScript's ``toLowerCase``) already wrote
    for an "İ" is a plain "i" too: a pattern of data lower-cased that way ("i̇stanbul") was
    another word than the "İstanbul" and "istanbul" typed to the model. Locale-free folding
    cannot tell a Turkish "I" (lower "ı") from an English one (lower "i"), so both are "i"; the
    few Turkish words that differ only in the dot are one word. Greek letters lose their accents
    and breathings (the diaeresis stays): Greek capitals are written without them, and chat text
    often is, so "ΚΑΛΗΜΕΡΑ" and "καλημερα" were other words than "Καλημέρα"."""
    if text.isascii():
        return text.lower()
    folded_text = text.replace("\u0130", "i").casefold().replace("\u0131", "i").replace("i\u0307", "i")
    if _GREEK_LETTER.search(folded_text):
        decomposed = unicodedata.normalize("NFD", folded_text)
        folded_text = _GREEK_MARKED.sub(lambda marks: marks.group().translate(_GREEK_ACCENTS), decomposed)
    return unicodedata.normalize("NFKC", folded_text)


def visible_text(text: str) -> str:
    """What a reader sees of ``text``: without invisible format characters and outer spaces
    (empty for a text of only those)."""
    return drop_format_characters(text).strip()


def set_emoji_apart(text: str) -> str:
    """``text`` with spaces around each emoji (with its skin tone or variation selector; a
    keycap, whose base is a digit, stays as typed) and each skin tone without one, which would
    make a word it touches unknown ("thanks\U0001f44d", "thanks\U0001f3fd")."""
    return text if text.isascii() else _PICTOGRAPHS.sub(r" \g<0> ", text)


def drop_optional_marks(text: str) -> str:
    """``text`` without the Arabic and Hebrew vowel marks that writers mostly leave out, and
    without the Arabic tatweel, which only stretches a word: "مَرْحَبًا" and "مــرحــبا" are "مرحبا"."""
    return text if text.isascii() else _OPTIONAL_MARKS.sub("", text)


def drop_format_characters(text: str) -> str:
    """``text`` without invisible format characters (Unicode category Cf: zero-width space and
    joiner, byte order mark, bidi marks, soft hyphen), which would make a word they touch unknown."""
    return text if text.isascii() else _FORMAT_CHARACTERS.sub("", text)


def strip_format_characters(text: str) -> str:
    """``text`` without the invisible format characters at its start and end (a zero-width space
    or byte order mark pasted with a name), which print as nothing; those inside it stay, and so
    do the tag characters that end a subdivision flag, which are part of the emoji."""
    if text.isascii():
        return text
    start = 0
    while start < len(text) and _prints_as_nothing(text[start]):  # no emoji starts with one
        start += 1
    end = len(text)
    while end > start and _prints_as_nothing(text[end - 1]):
        end -= 1
    # the first characters of that run that an emoji keeps stay: read once, not once a character
    # (a name ending in many zero-width spaces took seconds); none after a format character
    # that prints, which ends any emoji
    kept = 0
    if start < end < len(text) and unicodedata.category(text[end - 1]) != "Cf":
        kept = len(_format_run_of(emoji_kept_whole(text[start:])))
    return text[start : min(end + kept, len(text))]


def _prints_as_nothing(char: str) -> bool:
    """Whether ``char`` is an invisible format character: of category Cf but no prepended
    concatenation mark (U+0600 ARABIC NUMBER SIGN and its kind, which print)."""
    return unicodedata.category(char) == "Cf" and _PRINTED_FORMAT.match(char) is None


def _format_run_of(text: str) -> str:
    """The format characters (Unicode category Cf) that end ``text``, as one string."""
    index = len(text)
    while index and unicodedata.category(text[index - 1]) == "Cf":
        index -= 1
    return text[index:]


def emoji_kept_whole(text: str, apart: bool = False) -> str:
    """``text`` without invisible format characters but those inside an emoji (its joiners and
    tags), each emoji whole; with ``apart``, each between spaces, as a token of its own."""
    if text.isascii():
        return text
    parts: list[str] = []
    start = 0
    for match in _WHOLE_EMOJI.finditer(text):
        parts.append(drop_format_characters(text[start : match.start()]))
        parts.append(f" {match.group()} " if apart else match.group())
        start = match.end()
    parts.append(drop_format_characters(text[start:]))
    return "".join(parts)


class _ToktokWithoutEntities(ToktokTokenizer):
    """Toktok writes "|", "&" and a tab as HTML entities ("&#124;", "&amp;", "&#9;"), which
    hold letters or digits and so became word features: its tokens are read back unescaped."""

    def tokenize(self, text: str, return_str: bool = False) -> list[str]:
        return [html.unescape(token) for token in super().tokenize(text, return_str=False)]


def _tokenizer(name: str) -> Callable[[str], list[str]]:
    # Request threads tokenize at once; see legacy_assistant/text/nltk_patterns.py.
    if name == "treebank":
        return _treebank_words
    if name == "toktok":
        return hold_gil_while_matching(_ToktokWithoutEntities()).tokenize
    if name == "classic":
        return _classic_word_tokenize
    if name == "unicode":
        return _unicode_words
    return str.split


_SENTENCES = PunktSentenceTokenizer()  # untrained: no data file needed
_TREEBANK = hold_gil_while_matching(NLTKWordTokenizer())


def _treebank_words(text: str) -> list[str]:
    """Treebank tokens, those without a letter or digit possibly left out (the caller drops
    them): a plain sentence's in closed form, any other's from NLTK (see plain_words.py)."""
    words = plain_words(text)
    return words if words is not None else _TREEBANK.tokenize(text)


def _unicode_words(text: str) -> list[str]:
    """Treebank tokens, with non-ASCII punctuation and each Chinese or Japanese character apart."""
    return _treebank_words(text if text.isascii() else _STANDS_APART.sub(r" \1 ", text))


def _classic_word_tokenize(text: str) -> list[str]:
    """``nltk.word_tokenize`` without the ``punkt_tab`` data: Punkt's untrained sentence split,
    then Treebank tokens of each sentence, punctuation included."""
    return [token for sentence in _SENTENCES.tokenize(text) for token in _TREEBANK.tokenize(sentence)]


def _stemmer(name: str) -> Callable[[str], str] | None:
    if name == "lancaster":
        stemmer = LancasterStemmer()
        # NLTK builds its rule table in place on the first stem(): a thread stemming meanwhile
        # finds it half built, stems with part of the rules, and the cache keeps that stem for
        # good (7 of 40 fresh servers without warm-up and batching answered a parse wrongly from
        # then on). Built here, before any thread can call it.
        stemmer.stem("a")
        return stemmer.stem
    if name == "snowball":
        return SnowballStemmer("english").stem
    if name == "porter":
        return PorterStemmer().stem
    return None
