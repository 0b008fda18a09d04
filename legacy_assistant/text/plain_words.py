"""The Treebank tokens of a plain lower-case sentence, without NLTK's 30-odd regular expressions.

NLTK's ``NLTKWordTokenizer`` runs every sentence through about thirty substitutions, most of
which can only change text holding quotes, brackets, symbols, colons, semicolons, inner periods
or digit groups. Most of what people type to a chatbot holds none of those: lower-case words,
spaces, hyphens, commas before a space, ``?`` and ``!``, closing periods, and the contractions
``'s 'm 'd 'll 're 've n't`` at the end of a word. For such a sentence the Treebank result is
known in closed form, and computing it directly costs about a twentieth of the
substitutions (13 against 248 µs a sentence on the patterns of ``data/intents.json``). Every
other sentence goes to NLTK: :func:`plain_words` answers ``None`` for it.

What the closed form relies on, rule by rule of ``NLTKWordTokenizer.tokenize``:

* ``?`` and ``!`` are always split off, so they separate words like a space;
* a comma followed by a space or the end is split off (one followed by anything else, say a
  digit in "1,000", is not, so such a sentence is not plain);
* a period is split off only at the end (``.{2,}`` anywhere, one period only last), so
  periods are allowed only in the closing run;
* ``'s 'm 'd`` and ``'ll 're 've n't`` are split from the word they end when a space follows,
  which the padding and the separators above guarantee;
* "cannot", "gimme", "gonna", "gotta", "lemme" and "wanna" are split in two by NLTK's
  contraction rules: a sentence holding one of them as a word (once contractions are split
  off: "cannotn't" is "cannot n't") is not plain;
* upper-case letters are not allowed, because the contraction rules spell out their cases
  (``'LL`` and ``'ll`` but not ``'Ll``); the tokenizer sees lower-cased text by default.

``tests/test_plain_words.py`` compares the two on generated sentences over exactly these
characters and the ones next to them.
"""

from __future__ import annotations

import re

# Words of lower-case letters, digits and single hyphens, optionally ending in a contraction;
# between them spaces, "?", "!", or a comma followed by a space or the end; then closing periods
# and spaces. Written so that a run of gaps can be matched one way only: with two quantifiers
# that could both take the same spaces, a text that fails at its end ("a", 1,000 spaces, "X")
# backtracked over every split of them, a second of CPU per request at the default text cap.
_WORD = r"[a-z0-9-]+(?:'(?:s|m|d|ll|re|ve)|n't)?"
_GAP = r"(?:[ ?!]|,(?= |$))"
_PLAIN = re.compile(rf"{_GAP}*(?:{_WORD}(?:{_GAP}+{_WORD})*{_GAP}*)?(?:\.+ *)?")
# The words NLTK's contraction rules split ("can not", "gon na", ...).
_SPLIT_WORDS = re.compile(r"\b(?:cannot|gimme|gonna|gotta|lemme|wanna)\b")
_SEPARATORS = str.maketrans("?!,", "   ")
_LETTER_OR_DIGIT = re.compile(r"[a-z0-9]")


def plain_words(text: str) -> list[str] | None:
    """``NLTKWordTokenizer().tokenize(text)`` without the tokens that hold no letter or digit,
    for a plain sentence (see the module's docstring); ``None`` for any other text.

    >>> plain_words("what's the time, please?")
    ['what', "'s", 'the', 'time', 'please']
    >>> plain_words("don't stop")
    ['do', "n't", 'stop']
    >>> plain_words("Hello") is None  # upper case: NLTK decides
    True
    """
    if not text.isascii() or "--" in text or not _PLAIN.fullmatch(text):
        return None
    tokens: list[str] = []
    for word in text.rstrip(" ").rstrip(".").translate(_SEPARATORS).split():
        if word.endswith("n't"):
            tokens += (word[:-3], "n't")
        elif "'" in word:
            cut = word.index("'")
            tokens += (word[:cut], word[cut:])
        else:
            tokens.append(word)
    if _SPLIT_WORDS.search(" ".join(tokens)):  # "cannot", also as "cannotn't" once split
        return None
    return [token for token in tokens if _LETTER_OR_DIGIT.search(token)]
