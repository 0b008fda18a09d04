"""The responder's tokens, vocabulary, encoding limits and detokenized text."""
from __future__ import annotations

import json

import pytest

from legacy_assistant.errors import ConfigError
from legacy_assistant.responder.vocabulary import (
    DEFAULT_CONDITIONS,
    END,
    PAD,
    SPECIAL_TOKENS,
    START,
    TEXT_CONFIG,
    UNK,
    Vocabulary,
    condition_list,
    detokenize,
    tokenize,
)

TEXTS = [
    "Hello there!",
    "Hello, how are you?",
    "I am fine, thank you.",
    "How is the weather?",
    "The weather is fine.",
    "Fine, fine.",
]


def test_special_ids_are_the_contracts():
    assert (PAD, UNK, START, END) == (0, 1, 2, 3)
    vocabulary = Vocabulary.from_texts(TEXTS, max_size=100)
    assert vocabulary.tokens[:4] == SPECIAL_TOKENS
    assert all(vocabulary.token_id(t) == i for i, t in enumerate(SPECIAL_TOKENS))


def test_tokens_are_lower_cased_unstemmed_and_keep_punctuation():
    expected = ["do", "n't", "worry", ",", "it", "'s", "running", "fine", "?"]
    assert tokenize("Don't worry, it's RUNNING fine?") == expected


def test_vocabulary_keeps_the_most_frequent_tokens_within_its_cap():
    vocabulary = Vocabulary.from_texts(TEXTS, max_size=7)
    assert len(vocabulary) == 7
    # "fine" (5), "," (3) and "." (3) are the most frequent; ties go by the token's text.
    assert vocabulary.tokens[4:] == ("fine", ",", ".")
    assert vocabulary.token_id("weather") == UNK
    assert vocabulary.ids(["fine", "zebra"]) == [4, UNK]


def test_min_count_drops_rare_tokens_and_order_does_not_matter():
    vocabulary = Vocabulary.from_texts(TEXTS, max_size=1000, min_count=2)
    assert "weather" in vocabulary and "thank" not in vocabulary
    assert Vocabulary.from_texts(list(reversed(TEXTS)), max_size=1000, min_count=2) == vocabulary
    with pytest.raises(ConfigError, match="vocab_size"):
        Vocabulary.from_texts(TEXTS, max_size=4)
    with pytest.raises(ConfigError, match="min_count"):
        Vocabulary.from_texts(TEXTS, max_size=10, min_count=0)


def test_special_token_text_never_becomes_a_word():
    vocabulary = Vocabulary.build([["<s>", "</s>", "<unk>", "word"]], max_size=100)
    assert vocabulary.tokens == SPECIAL_TOKENS + ("word",)


def test_a_long_turn_keeps_its_last_tokens_and_a_long_reply_its_first():
    vocabulary = Vocabulary.build([[str(n) for n in range(10)]], max_size=100)
    text = "0 1 2 3 4 5 6 7 8 9"
    assert vocabulary.decode_tokens(vocabulary.encode_turn(text, 3)) == ["7", "8", "9"]
    reply = vocabulary.encode_reply(text, 4)  # END counts within the limit
    assert reply[-1] == END and len(reply) == 4
    assert vocabulary.decode_tokens(reply) == ["0", "1", "2"]
    assert vocabulary.encode_reply("", 5) == [END]
    assert vocabulary.encode_reply(text, 1) == [END]
    with pytest.raises(ValueError, match="room for END"):
        vocabulary.encode_reply(text, 0)


def test_context_keeps_the_last_turns_oldest_first():
    vocabulary = Vocabulary.from_texts(["a b c d e"], max_size=100)
    encoded = vocabulary.encode_context(["a", "b", "c d", "e"], max_turns=3, max_tokens=1)
    assert [vocabulary.decode_tokens(turn) for turn in encoded] == [["b"], ["d"], ["e"]]


@pytest.mark.parametrize("tail", [" " * 5000, "\u200b" * 5000, "\n\t " * 2000])
def test_an_asked_turn_long_only_in_what_the_tokenizer_drops_keeps_its_words(tail):
    """The cut to the last 4,000 characters came before the strip: a turn followed by thousands
    of spaces or zero-width characters was cut to nothing and skipped."""
    vocabulary = Vocabulary.from_texts(["a b c d e"], max_size=100)
    encoded = vocabulary.encode_asked_context(["a b", "c d" + tail], max_turns=3, max_tokens=5)
    assert [vocabulary.decode_tokens(turn) for turn in encoded] == [["a", "b"], ["c", "d"]]


@pytest.mark.parametrize("blob", ["x" * 3996, "x" * 5000, "y" * 20_000, ("z" * 900 + " ") * 20])
def test_an_asked_turn_of_long_words_keeps_its_last_tokens_as_training_does(blob):
    """Only the turn's last 4,000 characters were tokenized: the words before a long pasted
    blob were dropped (and the blob's cut end read as a word) though the turn held fewer tokens
    than it may keep."""
    vocabulary = Vocabulary.from_texts(["i hate horror movies ok"], max_size=100)
    turn = f"I hate horror movies {blob} ok"
    for max_tokens in (30, 3):
        asked = vocabulary.encode_asked_context([turn], max_turns=3, max_tokens=max_tokens)
        assert asked == vocabulary.encode_context([turn], max_turns=3, max_tokens=max_tokens)
    assert vocabulary.decode_tokens(vocabulary.encode_asked_context([turn], 3, 30)[0])[:4] == [
        "i", "hate", "horror", "movies"
    ]


def test_an_asked_turn_of_many_words_is_read_from_its_end_only(monkeypatch):
    """A long turn of ordinary words is still tokenized from its last 4,000 characters alone."""
    import legacy_assistant.responder.vocabulary as module

    vocabulary = Vocabulary.from_texts(["a b c d e"], max_size=100)
    read = []
    tokens = module._turn_tokens
    monkeypatch.setattr(module, "_turn_tokens", lambda config, text: read.append(len(text)) or tokens(config, text))
    turn = "a b c d e " * 10_000
    asked = vocabulary.encode_asked_context([turn], 3, 30)
    assert len(read) == 1 and read[0] <= module.MAX_TURN_CHARS  # once, its last 4,000 characters at most
    assert asked == vocabulary.encode_context([turn], 3, 30)[-1:]
    read.clear()  # a long turn of Chinese, no space in it: its last 4,000 characters, with and without the cut's edge
    vocabulary.encode_asked_context(["你好！今天天气很好。我们去公园吧？" * 10_000], 3, 30)
    assert read == [module.MAX_TURN_CHARS, module.MAX_TURN_CHARS - module._UNSPACED_MARGIN]
    read.clear()  # a turn of one word of millions of characters: read no further than MAX_TURN_READ
    vocabulary.encode_asked_context(["a " + "x" * 4_000_000], 3, 30)
    assert max(read) == module.MAX_TURN_READ


def test_an_asked_turn_with_nothing_to_encode_takes_no_place_in_the_window():
    """A blank turn, or one of only dropped characters, would push a turn with words out."""
    vocabulary = Vocabulary.from_texts(["a b c d e"], max_size=100)
    encoded = vocabulary.encode_asked_context(["a", "b", "\u200b", "   ", "\n"], max_turns=2, max_tokens=5)
    assert [vocabulary.decode_tokens(turn) for turn in encoded] == [["a"], ["b"]]
    assert vocabulary.encode_asked_context(["hi", "\u200b", "\u200b"], max_turns=3, max_tokens=5) == [
        vocabulary.encode_turn("hi", 5)
    ]


def test_an_asked_context_keeps_at_most_max_turns_turns_the_latest():
    """A request longer than the window keeps its last ``max_turns`` turns, not one more."""
    vocabulary = Vocabulary.from_texts(["a b c d e"], max_size=100)
    encoded = vocabulary.encode_asked_context(["a", "b", "c"], 2, 10)
    assert [vocabulary.decode_tokens(turn) for turn in encoded] == [["b"], ["c"]]
    assert vocabulary.encode_asked_context(["a", "b", "c"], 1, 10) == [vocabulary.encode_turn("c", 10)]


def test_decode_stops_at_end_and_skips_padding():
    vocabulary = Vocabulary.from_texts(TEXTS, max_size=100)
    ids = [START] + vocabulary.ids(["how", "are", "you", "?"]) + [END, 7, 8, PAD]
    assert vocabulary.decode_tokens(ids) == ["how", "are", "you", "?"]
    assert vocabulary.decode(ids) == "How are you?"
    assert vocabulary.decode([UNK, vocabulary.token_id("fine"), END]) == "Fine"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        vocabulary.decode_tokens([len(vocabulary)])


def test_encode_decode_round_trip():
    vocabulary = Vocabulary.from_texts(TEXTS, max_size=100)
    for text in TEXTS:
        assert vocabulary.decode(vocabulary.encode_reply(text, 30)) == text


def test_dict_round_trip_through_json():
    vocabulary = Vocabulary.from_texts(TEXTS, max_size=12)
    restored = Vocabulary.from_dict(json.loads(json.dumps(vocabulary.to_dict())))
    assert restored == vocabulary
    assert restored.encode_reply("How is the weather?", 30) == vocabulary.encode_reply("How is the weather?", 30)
    assert restored.text == vocabulary.text


@pytest.mark.parametrize(
    "data, field",
    [
        ({"tokens": ["<pad>", "<unk>", "<s>", "x"]}, "special tokens"),
        ({"tokens": list(SPECIAL_TOKENS) + ["a", "a"]}, r"tokens\[5\]"),
        ({"tokens": list(SPECIAL_TOKENS) + [7]}, r"tokens\[4\]"),
        ({"tokens": "abc"}, "vocabulary.tokens"),
        ({"tokens": list(SPECIAL_TOKENS), "text": {"tokenizer": "nope"}}, "tokenizer"),
        ({"tokens": list(SPECIAL_TOKENS), "text": {"colour": "blue"}}, "vocabulary.text"),
        ({"tokens": list(SPECIAL_TOKENS), "text": {"stemmer": 7}}, "vocabulary.text.stemmer must be a string"),
        ({"tokens": list(SPECIAL_TOKENS), "lowercase_special": True}, r"vocabulary: unknown field\(s\) 'lowercase_special'"),
    ],
)
def test_bad_dicts_are_refused_naming_the_field(data, field):
    with pytest.raises(ConfigError, match=field):
        Vocabulary.from_dict(data)


@pytest.mark.parametrize("text", [{}, {"stemmer": "none", "lowercase": True}, {"tokenizer": "classic"}])
def test_text_settings_left_out_are_the_responders_own(text):
    """Not the intent classifier's defaults (the treebank tokenizer, a stemmer), which would
    read every request into other tokens than the model was trained on."""
    assert Vocabulary.from_dict({"tokens": list(SPECIAL_TOKENS), "text": text}).text == TEXT_CONFIG


@pytest.mark.parametrize(
    "text",
    [
        "Don't worry, it's fine.",
        "What's your name?",
        "I can't, I'm busy!",
        'She said "hello" to me.',
        "Well... maybe. How about you?",
        "He said 'hi' to me.",
        "Have you seen 'the office'? It's great.",
        "I loved the '90s.",
        "It's the dogs' toys.",
        "James' car is 'great'.",
        "Rock 'n' roll!",
        "'Hello' is what I said.",
        # an elision before a decade or a year opens no quotation
        "I like the '80s and '90s music.",
        "Rock 'n' roll and the '90s.",
        "The '90s were great, and 'friends' was on.",
        "In '99 we won.",
        # an ellipsis that ends the reply or comes before other punctuation stays on its word
        "I don't know...",
        "Wait...?",
        "Really... (well...) ok.",
        "I know...!",
        "Ok.. so.. what?",
        "Hmm.... ok.",
    ],
)
def test_detokenized_text_reads_normally(text):
    assert detokenize(tokenize(text)) == text


@pytest.mark.parametrize(
    "text, expected",
    [
        # a phone's typographic apostrophes and quotes, which the Treebank detokenizer leaves apart
        ("I don\u2019t know, it\u2019s \u201cgreat\u201d.", "I don\u2019t know, it\u2019s \u201cgreat\u201d."),
        ("We\u2019re here and I\u2019ve seen it, she\u2019ll say I\u2019m late.",
         "We\u2019re here and I\u2019ve seen it, she\u2019ll say I\u2019m late."),
        ("She said \u2018hi\u2019 to me.", "She said \u2018hi\u2019 to me."),
        # an acute accent typed for an apostrophe (NFKC makes it a combining accent on the next token)
        ("I don\u00b4t know.", "I don't know."),
    ],
)
def test_typographic_apostrophes_and_quotes_are_glued_back(text, expected):
    assert detokenize(tokenize(text)) == expected


def test_detokenize_restores_sentence_capitals():
    assert detokenize(["i", "think", "so", ".", "do", "n't", "you", "?"]) == "I think so. Don't you?"
    assert detokenize(["it", "'s", "ok"], sentence_case=False) == "it's ok"
    # the dot after an abbreviation ends no sentence; a dot after a plain word does
    assert detokenize(tokenize("the u.s. is big. e.g. this one")) == "The u.s. is big. E.g. this one"
    # a number or a domain with a dot is no abbreviation: the sentence after it starts with a capital
    assert detokenize(["i", "saw", "it", "in", "2.0", ".", "did", "you", "?"]) == "I saw it in 2.0. Did you?"
    assert detokenize(["i", "use", "gmail.com", ".", "it", "is", "free", "."]) == "I use gmail.com. It is free."


@pytest.mark.parametrize("invisible", ["\u200b", "\u200d", "\ufeff", "\u00ad", "\u2060", "\u200e"])
def test_invisible_format_characters_do_not_make_a_word_unknown(invisible):
    plain = tokenize("Do you like movies?")
    assert tokenize(f"{invisible}Do you like mov{invisible}ies{invisible}?") == plain


def test_an_emoji_typed_against_a_word_is_a_token_of_its_own():
    """"thanks\U0001f44d" was one token, unknown to any vocabulary that has "thanks"."""
    assert tokenize("Thanks\U0001f44d\U0001f3fd, see you\U0001f600!") == [
        "thanks", "\U0001f44d\U0001f3fd", ",", "see", "you", "\U0001f600", "!",
    ]
    assert detokenize(tokenize("Thanks \U0001f44d\U0001f3fd, see you \U0001f600!")) == "Thanks \U0001f44d\U0001f3fd, see you \U0001f600!"


def test_a_skin_tone_without_its_emoji_is_a_token_of_its_own():
    """A skin tone swatch sent alone, against a word ("thanks\U0001f3fd"), made that word unknown."""
    assert tokenize("Thanks\U0001f3fd see\U0001f44d\U0001f3ff") == ["thanks", "\U0001f3fd", "see", "\U0001f44d\U0001f3ff"]
    vocabulary = Vocabulary.from_texts(["thanks a lot"], max_size=10)
    assert vocabulary.encode_asked_context(["thanks\U0001f3fd"], 3, 10)[0][0] == vocabulary.token_id("thanks") != UNK

@pytest.mark.parametrize(
    "emoji",
    [
        "\U0001f1e9\U0001f1ea",  # a flag: two regional indicators
        "\U0001f468\u200d\U0001f469\u200d\U0001f467",  # a family, joined by zero-width joiners
        "\U0001f3f3\ufe0f\u200d\U0001f308",  # the rainbow flag
        "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",  # England's flag: tags
    ],
)
def test_an_emoji_of_several_code_points_is_one_token_and_comes_back_whole(emoji):
    """A flag came back as two letters in boxes, a family as three people, England's flag as a
    black one: each code point was a token, the joiners and tags dropped."""
    assert tokenize(f"Go{emoji}team {emoji}{emoji}") == ["go", emoji, "team", emoji, emoji]
    assert detokenize(tokenize(f"Go {emoji} team!")) == f"Go {emoji} team!"
    vocabulary = Vocabulary.from_texts([f"go {emoji}"], max_size=10)
    assert UNK not in vocabulary.encode_asked_context([f"\u200bgo {emoji}\u200b"], 3, 10)[0]


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ("你好！你今天怎么样？我很好，谢谢。", "你好!你今天怎么样?我很好,谢谢。"),
        ("こんにちは。元気ですか？はい、元気です！", "こんにちは。元気ですか?はい、元気です!"),
        ("“你好”，他说。", "“你好”,他说。"),
        # a quotation between their characters, and their ellipsis (NFKC's "......")
        ("他说“好”。然后走了", "他说“好”。然后走了"),
        ("嗯……好吧", "嗯......好吧"),
        # ASCII quotes and brackets between them (NFKC writes full-width "＂（）" so)
        ('他说"好"。然后走了', '他说"好"。然后走了'),
        ("他说＂好＂。", '他说"好"。'),
        ("他说（好）然后", "他说(好)然后"),
        # a space typed between two words, and one before a word of another script, stays
        ("我 很好。你好? Hello! 世界", "我 很好。你好? Hello! 世界"),
    ],
)
def test_chinese_and_japanese_replies_have_no_space_after_punctuation(text, reply):
    """NFKC writes full-width "！？，" as ASCII marks, and the detokenizer put a space after each:
    "你好! 你今天怎么样? 我很好, 谢谢。"."""
    assert detokenize(tokenize(text)) == reply


def test_german_quotation_marks_close_on_the_quoted_words():
    """„ opens a German quotation and “ closes it: the reply read "„ Hallo “sagte er"."""
    assert detokenize(tokenize("„Hallo“ sagte er.")) == "„Hallo“ sagte er."
    assert detokenize(tokenize("Er sagte: „Wie geht's?“ Ich: ‚Gut‘.")) == "Er sagte: „wie geht's?“ Ich: ‚gut‘."
    # the English pair is as before
    assert detokenize(tokenize("“Great” he said")) == "“Great” he said"


@pytest.mark.parametrize(
    "text",
    ["C’est l’homme d’affaires.", "Il m’a dit qu’il est là, jusqu’à demain.", "Un’altra volta dell’anno.",
     "It’s five o’clock.", "Aujourd’hui le prud’homme est là."],
)
def test_a_typographic_apostrophe_that_elides_a_vowel_stays_inside_the_word(text):
    """Phones type "’" for the apostrophe: French and Italian replies read "C’ est l’ homme d’ affaires"."""
    assert detokenize(tokenize(text)) == text
    # a plural possessive and a quotation are as before
    assert detokenize(tokenize("The dogs’ toys, ‘a’ not ‘b’.")) == "The dogs’ toys, ‘a’ not ‘b’."


@pytest.mark.parametrize(
    "text",
    ["She said ‘I will’ and left.", "We want ‘plan c’ then.", "They sang ‘it’s all’ again.", "Say ‘l’ now."],
)
def test_a_single_quotation_that_ends_on_a_short_word_closes_before_the_next(text):
    """The ’ closing a quotation after "will", "all" or one letter was read as an elided vowel:
    the reply read "‘I will’and left"."""
    assert detokenize(tokenize(text)) == text


def test_a_low_quotation_closed_by_a_right_mark_leaves_the_next_one_open():
    """Polish and Hungarian close „ with ”: the quotation after it read "„tak” a“ yes”"."""
    text = "Mówi „tak” a “yes” też."
    assert detokenize(tokenize(text)) == text


def test_a_greek_question_mark_ends_a_sentence():
    """NFKC reads the Greek question mark as ";": the next sentence lost its capital ("Τι κάνεις; καλά.")."""
    assert detokenize(tokenize("Τι κάνεις; Καλά, ευχαριστώ. Εσύ;")) == "Τι κάνεις; Καλά, ευχαριστώ. Εσύ;"
    assert detokenize(tokenize("Τι κάνεις\u037e Καλά.")) == "Τι κάνεις; Καλά."
    # an English semicolon ends no sentence
    assert detokenize(tokenize("I came; i saw.")) == "I came; I saw."
    assert detokenize(tokenize("we came; they saw.")) == "We came; they saw."


@pytest.mark.parametrize(
    "text", ["«Привет», — сказал он.", "Он сказал: «всё хорошо!»", "Είπε «γειά» και έφυγε.", "قال «مرحبا» ثم ذهب"]
)
def test_guillemets_stay_against_the_words_they_quote_outside_latin_script(text):
    """Russian, Greek and Arabic replies read "« Привет », — сказал он."."""
    assert detokenize(tokenize(text)) == text


@pytest.mark.parametrize("text", ["«Он сказал „привет“», — ответила она.", "Он: «всё ‚ок‘ тут»."])
def test_a_quotation_inside_guillemets_leaves_them_to_close_on_their_words(text):
    """Russian nests „…“ in «…»: the inner quotation took the place of the outer one's closing
    mark, and the reply read "«Он сказал „привет“ », — ответила она."."""
    assert detokenize(tokenize(text)) == text


def test_french_guillemets_keep_their_spaces():
    assert detokenize(tokenize("Je suis là « bien » et toi.")) == "Je suis là « bien » et toi."


def test_condition_list_starts_with_the_five_emotions():
    assert condition_list(["joy", "neutral"]) == DEFAULT_CONDITIONS
    assert condition_list(["sarcasm", "joy", "awe"]) == DEFAULT_CONDITIONS + ("awe", "sarcasm")



_WORDS = " ".join(["w" * 199] * 19)  # 3,799 characters


@pytest.mark.parametrize(
    ("text", "last"),
    [
        # the first 4,000 characters end in "3." or "U.S.": read alone, its period ends a sentence
        (f"{_WORDS} {'c' * 197} 3.14 and more", False),
        (f"{_WORDS} {'c' * 195} U.S.A. and more", False),
        # the last 4,000 characters start with "'90s" or "'can't": read alone, more tokens
        (f"more i'90s {'c' * 195} {_WORDS}", True),
        (f"more wo'can't {'c' * 193} {_WORDS}", True),
    ],
)
def test_edge_tokens_of_a_long_text_are_those_of_the_whole_text(text, last):
    """A long text is tokenized from the part of it next to the edge asked for: the word the cut
    split, read alone, could be more than one token, or end a sentence, and then more than one
    token of the part was not a token of the text."""
    assert len(text) > 4000
    vocabulary = Vocabulary.from_texts(["a"], max_size=10)
    tokens = tokenize(text)
    for count in range(17, 24):
        expected = tuple(tokens[-count:] if last else tokens[:count])
        assert vocabulary.edge_tokens(text, count, last=last) == expected


@pytest.mark.parametrize(
    ("text", "last"),
    [
        # one word of 10,000 characters, its first 4,000 ending in "3.": read alone, "...3" and "."
        ("a" * 3998 + "3.14" + "b" * 6000, False),
        # its last 4,000 characters start with "'90s" or "'can't": read alone, "'" and the rest
        ("w" * 6000 + "i'90s" + "b" * 3996, True),
        ("w" * 6000 + "wo'can't" + "b" * 3994, True),
    ],
)
def test_edge_tokens_of_a_long_text_without_spaces_are_those_of_the_whole_text(text, last):
    """With no space to cut at, the word the cut split could read as more than one token, and
    dropping only one of them kept a token that tokenizing the whole text does not give."""
    vocabulary = Vocabulary.from_texts(["a"], max_size=10)
    tokens = tokenize(text)
    for count in (1, 2):
        expected = tuple(tokens[-count:] if last else tokens[:count])
        assert vocabulary.edge_tokens(text, count, last=last) == expected
