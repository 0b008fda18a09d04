import json
import sys

import pytest

from legacy_assistant.errors import IntentsError
from legacy_assistant.classifier.intents import load_intents, parse_intents
from tests.helpers import SHIPPED_INTENTS

GOOD = {"tag": "greeting", "patterns": ["hi"], "responses": ["hello"]}


def write(tmp_path, data, name="intents.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def problems_of(tmp_path, data):
    with pytest.raises(IntentsError) as caught:
        load_intents(write(tmp_path, data))
    return caught.value


def test_classic_file_reads_unchanged(tmp_path):
    classic = {"intents": [
        {"tag": "greeting", "patterns": ["Hi", "Hello"], "responses": ["Hi!"], "context": [""]},
        {"tag": "search", "patterns": ["find a hospital"], "responses": ["Which type?"], "context": ["search_type"]},
        {"tag": "search_type", "patterns": [], "responses": ["Searching..."], "context": [""]},
    ]}
    intents = load_intents(write(tmp_path, classic))
    assert intents.tags == ["greeting", "search", "search_type"]
    assert intents["search"].next_tag == "search_type"
    assert intents["greeting"].next_tag is None
    assert [i.tag for i in intents.trainable] == ["greeting", "search"]
    assert intents.examples() == (["Hi", "Hello", "find a hospital"], ["greeting", "greeting", "search"])


def test_shipped_intents_meet_their_brief():
    intents = load_intents(SHIPPED_INTENTS)
    trainable = intents.trainable
    assert len(intents) >= 25
    assert all(len(i.patterns) >= 8 for i in trainable)
    assert "fallback" in intents and not intents["fallback"].patterns
    assert any(i.context_filter for i in intents.intents) and any(i.next_tag for i in intents.intents)


def test_invalid_json_names_line_and_column(tmp_path):
    error = problems_of(tmp_path, '{"intents": [\n  {"tag": "a",, }\n]}')
    assert "intents.json" in str(error)
    assert "line 2, column" in str(error)


@pytest.mark.parametrize("text, expected", [
    ('{"intents": [\n // greetings\n {"tag": "a"}]}', "line 2, column 2: Expecting value (JSON has no comments: remove them)"),
    ('{"intents": [{"tag": "a"}, # greetings\n]}', "line 1, column 28: Expecting value (JSON has no comments"),
    ('{"intents": [/* greetings */ {"tag": "a"}]}', "line 1, column 14: Expecting value (JSON has no comments"),
    ('{"intents": [\n {"tag": "a"},\n]}', "line 3, column 1: Expecting value (JSON allows no comma after the last item"),
    ('{"intents": [{"tag": "a",}]}', "double quotes (JSON allows no comma after the last item of a list or object)"),
    ("{'intents': []}", "line 1, column 2: Expecting property name enclosed in double quotes (JSON strings and keys"),
])
def test_what_hand_written_json_most_likely_got_wrong_is_said(tmp_path, text, expected):
    """Comments, trailing commas and single quotes: Python says only "Expecting value" (3.13 and
    later name a trailing comma themselves, at the comma, and get no hint)."""
    said = problems_of(tmp_path, text).problems[0]
    if "Illegal trailing comma" in said:
        assert sys.version_info >= (3, 13) and "(JSON allows no comma" not in said, said
    else:
        assert expected in said


@pytest.mark.parametrize("text", ['{"intents": []} \'x\'', '{"intents": ["x" \'y\']}'])
def test_a_single_quote_after_another_mistake_gets_no_hint_about_quotes(tmp_path, text):
    """Extra data, a missing comma: the quote is not what went wrong there."""
    assert "double quotes" not in problems_of(tmp_path, text).problems[0]


def test_a_key_given_twice_is_refused_naming_the_intent(tmp_path):
    # Python's decoder keeps the last value: the first responses would vanish without a word.
    error = problems_of(
        tmp_path,
        '{"intents": [\n  {"tag": "hi", "patterns": ["hi"], "responses": ["Hi"]},\n'
        '  {"tag": "greet", "patterns": ["hi"],\n   "responses": ["Hello"], "responses": ["Hey"]}]}',
    )
    assert "intents.json" in str(error)
    # where the object starts, and the tag it holds
    assert 'key "responses" appears twice in one object (the one at line 3, column 3, with "tag": "greet")' in str(
        error
    )
    assert '"tag": "greet"' in str(error)


@pytest.mark.parametrize(
    "entry, expected",
    [
        ({"patterns": ["x"], "responses": ["y"]}, "intent #1: field 'tag' is missing"),
        ({"tag": "b", "responses": ["y"]}, "intent #1 ('b'): field 'patterns' is missing"),
        ({"tag": "b", "patterns": ["x"]}, "intent #1 ('b'): field 'responses' is missing"),
        ({"tag": "b", "patterns": "x", "responses": ["y"]}, "field 'patterns': must be a list of strings, got a string"),
        ({"tag": "b", "patterns": ["x", 3], "responses": ["y"]}, "field 'patterns'[1]: must be a string, got a number"),
        ({"tag": "b", "patterns": ["x", "  "], "responses": ["y"]}, "field 'patterns'[1]: is empty"),
        ({"tag": "b", "patterns": ["x"], "responses": []}, "intent #1 ('b'): field 'responses': must not be empty"),
        ({"tag": "", "patterns": ["x"], "responses": ["y"]}, "field 'tag': must be a non-empty string"),
        ({"tag": 5, "patterns": ["x"], "responses": ["y"]}, "field 'tag': must be a non-empty string, got a number"),
        ({"tag": "greeting ", "patterns": ["x"], "responses": ["y"]}, "field 'tag': has spaces at its start or end"),
        ({"tag": "b", "patterns": ["x"], "responses": ["y"], "context_set": 1}, "field 'context_set': must be a string"),
        ({"tag": "b", "patterns": ["x"], "responses": ["y"], "context": ["nowhere"]},
         "intent #1 ('b'): field 'context': names tag 'nowhere', which no intent has"),
        ({"tag": "b", "patterns": ["x"], "responses": ["y"], "context": [5]},
         "intent #1 ('b'): field 'context': must be a list of strings, got a list holding a number"),
        ({"tag": "b", "patterns": ["x"], "responses": ["y"], "context": 5},
         "intent #1 ('b'): field 'context': must be a list of strings, got a number"),
        ({"tag": "b", "patterns": ["x"], "responses": ["y"], "context_filter": "never"},
         "intent #1 ('b'): field 'context_filter': 'never' is never set"),
        ({"tag": "greeting", "patterns": ["x"], "responses": ["y"]}, "intent #1 ('greeting'): field 'tag': duplicate of intent #0"),
        ("not an object", "intent #1: must be an object, got a string"),
    ],
)
def test_each_problem_names_file_intent_and_field(tmp_path, entry, expected):
    error = problems_of(tmp_path, {"intents": [GOOD, entry]})
    assert error.source.endswith("intents.json")
    assert str(error).startswith(str(tmp_path / "intents.json"))
    assert any(expected in problem for problem in error.problems), error.problems


def test_a_classic_follow_up_may_not_bypass_a_context_filter(tmp_path):
    opener = {"tag": "order", "patterns": ["I'd like tea"], "responses": ["Green or black?"], "context_set": "tea"}
    size = {"tag": "size", "patterns": ["large"], "responses": ["Large it is."], "context_filter": "tea"}
    # the follow-up is reached whatever is typed: only an intent that leaves "tea" set may name it
    ask = {"tag": "ask", "patterns": ["what size?"], "responses": ["Which size?"], "context": ["size"]}
    error = problems_of(tmp_path, {"intents": [GOOD, opener, size, ask]})
    assert any("intent #3 ('ask'): field 'context': names tag 'size', which has context_filter 'tea'" in problem
               for problem in error.problems), error.problems
    for fine in ({**ask, "context_set": "tea"}, {**ask, "context_filter": "tea"}):
        path = tmp_path / "ok.json"
        path.write_text(json.dumps({"intents": [GOOD, opener, size, fine]}), encoding="utf-8")
        assert load_intents(path)["ask"].next_tag == "size"


def test_a_context_filter_only_its_own_intent_sets_is_refused(tmp_path):
    """The intent answers only once its context is set, and only its own answer sets it."""
    loop = {"tag": "more", "patterns": ["more please"], "responses": ["More."], "context_set": "m",
            "context_filter": "m"}
    error = problems_of(tmp_path, {"intents": [GOOD, loop]})
    assert "intent #1 ('more'): field 'context_filter': 'm' is set only by this intent's own 'context_set', so it " \
           "can never answer; another intent must set it" in error.problems, error.problems
    opener = {"tag": "start", "patterns": ["start"], "responses": ["Started."], "context_set": "m"}
    path = tmp_path / "ok.json"
    path.write_text(json.dumps({"intents": [GOOD, loop, opener]}), encoding="utf-8")
    assert load_intents(path)["more"].context_filter == "m"  # another intent sets it: reachable


def test_all_problems_reported_at_once(tmp_path):
    error = problems_of(tmp_path, {"intents": [
        {"tag": "a", "patterns": ["x"]},
        {"tag": "b", "patterns": ["x"], "responses": []},
    ]})
    assert len(error.problems) == 2


def test_a_file_with_thousands_of_problems_lists_twenty_and_counts_the_rest(tmp_path):
    """A generated file with a fault in every entry gave a message of a line per problem (tens
    of thousands); the message lists the first 20 and how many more, the error keeps them all."""
    error = problems_of(tmp_path, {"intents": [{"tag": f"t{n}", "patterns": ["x"]} for n in range(500)]})
    assert len(error.problems) == 500
    message = str(error)
    assert message.count("\n  - ") == 21, message
    assert "intent #0 ('t0'): field 'responses' is missing" in message
    assert "t20'" not in message and message.endswith("\n  - ... and 480 more")


@pytest.mark.parametrize(
    "data, expected",
    [([], "top level must be an object"), ({}, "field 'intents' is missing"),
     ({"intents": {}}, "field 'intents' is an object, not a list"), ({"intents": []}, "empty list")],
)
def test_top_level_shape(data, expected):
    with pytest.raises(IntentsError) as caught:
        parse_intents(data, "mem.json")
    assert expected in str(caught.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(IntentsError, match="file not found"):
        load_intents(tmp_path / "nope.json")


def test_follow_up_only_intents_and_context_rules(tiny_intents):
    assert tiny_intents["book"].next_tag == "book_when"
    assert tiny_intents["book_when"].patterns == ()
    assert tiny_intents["tea_green"].context_filter == "tea_kind"
    assert tiny_intents["tea_green"].context_set == ""
    assert "book_when" not in {i.tag for i in tiny_intents.trainable}


def test_unknown_field_is_ignored_with_a_warning(tmp_path, caplog):
    intents = load_intents(write(tmp_path, {"intents": [dict(GOOD, respones=["typo"])]}))
    assert intents.tags == ["greeting"]
    assert "respones" in caplog.text


def test_an_unknown_top_level_field_is_warned_about_not_dropped_silently(tmp_path, caplog):
    """A second list beside 'intents' (a misspelt copy, a CLINC150 split) was dropped without a word."""
    path = write(tmp_path, {"intents": [GOOD], "Intents": [dict(GOOD, tag="bye")], "train": []})
    assert load_intents(path).tags == ["greeting"]
    assert f"{path}: ignoring unknown top-level field(s) 'Intents', 'train'" in caplog.text


def test_a_file_with_only_intents_gives_no_top_level_warning(tmp_path, caplog):
    load_intents(write(tmp_path, {"intents": [GOOD]}))
    assert "top-level" not in caplog.text


def test_unknown_field_warning_names_the_file_and_other_layouts_names_are_pointed_out(tmp_path, caplog):
    """train reads two intents files with --validation-data: the warning says which one. Kaggle's
    chatbot dataset calls the tag "intent" and the patterns "text": the missing field says so."""
    path = write(tmp_path, {"intents": [dict(GOOD, respones=["typo"]), {"intent": "bye", "text": ["bye"],
                                                                         "responses": ["see you"]}]})
    with pytest.raises(IntentsError) as caught:
        load_intents(path)
    assert f"{path}: intent #0 ('greeting'): ignoring unknown field(s) 'respones'" in caplog.text
    assert caught.value.problems == [
        "intent #1: field 'tag' is missing (it has 'intent': this format calls that field 'tag')",
        "intent #1: field 'patterns' is missing (it has 'text': this format calls that field 'patterns')",
    ]


OUT_OF_SCOPE = {"tag": "oos", "patterns": ["what is the capital of peru", "play some jazz"]}


def test_out_of_scope_intent_needs_no_responses_and_labels_its_patterns(tmp_path):
    intents = load_intents(write(tmp_path, {"intents": [GOOD, OUT_OF_SCOPE]}))
    assert intents["oos"].out_of_scope and not intents["greeting"].out_of_scope
    assert intents["oos"].responses == ()
    assert intents.examples()[1] == ["greeting", "oos", "oos"]
    assert [i.tag for i in intents.answering] == ["greeting"]


def test_out_of_scope_label_is_the_trainers(tmp_path):
    path = write(tmp_path, {"intents": [GOOD, dict(OUT_OF_SCOPE, tag="off_topic")]})
    assert load_intents(path, oos_label="off_topic")["off_topic"].out_of_scope
    with pytest.raises(IntentsError, match=r"intent #1 \('off_topic'\): field 'responses' is missing"):
        load_intents(path)  # under the default label it is an ordinary intent


def test_out_of_scope_responses_are_ignored_with_a_warning(tmp_path, caplog):
    path = write(tmp_path, {"intents": [GOOD, dict(OUT_OF_SCOPE, responses=["never said"])]})
    intents = load_intents(path)
    assert intents["oos"].out_of_scope
    # named with its file, as the other warnings (train may read two intents files)
    assert f"{path}: intent #1 ('oos'): the out-of-scope intent's responses are never used" in caplog.text


@pytest.mark.parametrize(
    "field, value",
    [("context", ["greeting"]), ("context_set", "x"), ("context_filter", "x"), ("free_text", True), ("interrupts", True)],
)
def test_out_of_scope_intent_takes_no_context_rules(tmp_path, field, value):
    error = problems_of(tmp_path, {"intents": [dict(GOOD, context_set="x"), dict(OUT_OF_SCOPE, **{field: value})]})
    assert any(
        f"intent #1 ('oos'): field '{field}': has no effect on the out-of-scope intent" in problem
        for problem in error.problems
    ), error.problems


def test_no_intent_may_hand_its_next_turn_to_the_out_of_scope_intent(tmp_path):
    error = problems_of(tmp_path, {"intents": [dict(GOOD, context=["oos"]), OUT_OF_SCOPE]})
    assert any(
        "intent #0 ('greeting'): field 'context': names the out-of-scope intent 'oos'" in p for p in error.problems
    ), error.problems


def test_a_pattern_two_intents_share_is_named_in_a_warning(tmp_path, caplog):
    other = {"tag": "hello_again", "patterns": ["Good  MORNING", "hey there"], "responses": ["Hi again"]}
    greeting = dict(GOOD, patterns=["good morning", "hi", "Good morning"])  # a repeat within one intent is no clash
    path = write(tmp_path, {"intents": [greeting, other]})
    intents = load_intents(path)
    assert intents.tags == ["greeting", "hello_again"]
    clashes = [r.getMessage() for r in caplog.records if "also a pattern" in r.getMessage()]
    assert len(clashes) == 1
    assert str(path) in clashes[0]
    assert "intent #1 ('hello_again')" in clashes[0] and "'good morning'" in clashes[0]
    assert "intent #0 ('greeting')" in clashes[0]


def test_patterns_that_differ_only_in_unicode_form_are_one_pattern(tmp_path, caplog):
    """A composed and a decomposed "café", or full-width letters, are one text to the classifier."""
    composed = {"tag": "order", "patterns": ["un caf\u00e9 por favor"], "responses": ["Marchando"]}
    decomposed = {"tag": "price", "patterns": ["un cafe\u0301 por favor", "\uff51\uff55\uff49\uff45\uff52\uff4f"],
                  "responses": ["Dos euros"]}
    wide = {"tag": "want", "patterns": ["quiero", "hola"], "responses": ["Vale"]}
    load_intents(write(tmp_path, {"intents": [composed, decomposed, wide]}))
    clashes = [r.getMessage() for r in caplog.records if "also a pattern" in r.getMessage()]
    assert len(clashes) == 2, clashes
    assert "intent #1 ('price')" in clashes[0] and "intent #0 ('order')" in clashes[0]
    assert "intent #2 ('want')" in clashes[1] and "'quiero'" in clashes[1]


@pytest.mark.parametrize("typed", ["don\u2019t go", "don\u00b4t go", "don`t go"])
def test_patterns_that_differ_only_in_the_apostrophe_typed_are_one_pattern(tmp_path, caplog, typed):
    """The classifier reads "don’t", "don´t" and "don`t" as "don't": one pattern to it."""
    stay = {"tag": "stay", "patterns": ["don't go"], "responses": ["I'll stay"]}
    leave = {"tag": "leave", "patterns": [typed, "bye"], "responses": ["Bye"]}
    load_intents(write(tmp_path, {"intents": [stay, leave]}))
    clashes = [r.getMessage() for r in caplog.records if "also a pattern" in r.getMessage()]
    assert len(clashes) == 1 and "intent #1 ('leave')" in clashes[0] and "intent #0 ('stay')" in clashes[0], clashes


def test_shared_patterns_of_many_intents_are_named_ten_at_most_then_counted(tmp_path, caplog):
    """As a CSV's shared texts are: a file of hundreds of intents that each hold "yes" gave a
    warning line for every one of them."""
    many = [{"tag": f"t{i}", "patterns": [f"word{i}", "yes", "help me"], "responses": ["ok"]} for i in range(40)]
    path = write(tmp_path, {"intents": many})
    load_intents(path)
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "also a pattern" in m]) == 10
    assert messages[-1] == f"{path}: 68 more patterns are also patterns of another intent (78 in all)"


def test_a_long_shared_pattern_is_cut_in_its_warning(tmp_path, caplog):
    """A 10,000-character pattern two intents shared was quoted whole in the warning, a line
    of 10,000 characters for each intent that repeats it."""
    long = "x" * 10000
    intents = [{"tag": f"t{i}", "patterns": [long, f"word{i}"], "responses": ["ok"]} for i in range(3)]
    load_intents(write(tmp_path, {"intents": intents}))
    clashes = [r.getMessage() for r in caplog.records if "also a pattern" in r.getMessage()]
    assert len(clashes) == 2 and all(len(message) < 500 for message in clashes), [len(m) for m in clashes]
    assert "'" + "x" * 80 + "'... (10,000 characters) is also a pattern of intent #0 ('t0')" in clashes[0]


def test_distinct_patterns_give_no_clash_warning(tmp_path, caplog):
    load_intents(write(tmp_path, {"intents": [GOOD, {"tag": "bye", "patterns": ["bye"], "responses": ["Bye"]}]}))
    assert "also a pattern" not in caplog.text


@pytest.mark.parametrize("field, value", [("tag", "a\ud800"), ("patterns", ["hi \ud800x"]), ("responses", ["\udcff"])])
def test_a_lone_surrogate_escape_is_a_problem_naming_the_field(tmp_path, field, value):
    path = tmp_path / "intents.json"
    path.write_text(json.dumps({"intents": [dict(GOOD, **{field: value})]}), encoding="utf-8")  # escaped: valid JSON
    with pytest.raises(IntentsError, match=rf"intent #0.*: field '{field}': is not valid Unicode text"):
        load_intents(path)


@pytest.mark.parametrize("first, second", [("greeting", "Greeting"), ("café", "cafe\u0301"),
                                           ("greet", "\uff47\uff52\uff45\uff45\uff54")])  # full-width
def test_tags_that_differ_only_in_case_or_unicode_form_are_refused(tmp_path, first, second):
    other = {"tag": second, "patterns": ["bye"], "responses": ["Bye"]}
    path = write(tmp_path, {"intents": [dict(GOOD, tag=first), other]})
    with pytest.raises(IntentsError, match=r"intent #1 .*field 'tag': looks the same as intent #0"):
        load_intents(path)


def test_the_fallback_needs_no_patterns_field(tmp_path):
    """Documented as needing no patterns: leaving the field out is the same as an empty list
    (it was refused, and a follow-up naming the fallback then named a missing tag)."""
    data = {"intents": [
        {"tag": "greet", "patterns": ["hi", "hello"], "responses": ["Hello"]},
        {"tag": "fallback", "responses": ["Sorry?"]},
    ]}
    intents = load_intents(write(tmp_path, data))
    assert intents["fallback"].patterns == () and intents["fallback"].responses == ("Sorry?",)
    data["intents"][0] = {"tag": "greet", "responses": ["Hello"]}  # any other intent still needs them
    assert "intent #0 ('greet'): field 'patterns' is missing" in str(problems_of(tmp_path, data))


def test_the_fallback_takes_no_patterns_and_is_no_follow_up(tmp_path):
    """Trained as a class, a fallback with patterns was answered as an ordinary intent (reason
    "intent", an open follow-up left behind); named as a follow-up, it answered the next message,
    whatever it said, at confidence 1.0."""
    data = {"intents": [
        {"tag": "greet", "patterns": ["hi", "hello"], "responses": ["Hello"], "context": ["fallback"]},
        {"tag": "fallback", "patterns": ["whatever", "i do not know"], "responses": ["Sorry?"]},
    ]}
    problems = str(problems_of(tmp_path, data))
    assert "intent #1 ('fallback'): field 'patterns': the fallback intent takes none" in problems
    assert "intent #0 ('greet'): field 'context': names the fallback intent 'fallback'" in problems


@pytest.mark.parametrize(
    "tag, expected",
    [
        ("a\nb", r"holds a control character ('\n'): a name is one line of text"),
        ("a\x00", r"holds a control character ('\x00')"),
        ("OOS", "'OOS' looks the same as the out-of-scope label 'oos'"),  # as a CSV label already was
        # full-width: trained as an ordinary class that answered "I understood this as 'ｏｏｓ'"
        ("\uff4f\uff4f\uff53", "'\uff4f\uff4f\uff53' looks the same as the out-of-scope label 'oos'"),
    ],
)
def test_tags_that_print_on_two_lines_or_read_as_the_out_of_scope_label_are_refused(tmp_path, tag, expected):
    data = {"intents": [{"tag": "greet", "patterns": ["hi"], "responses": ["Hello"]},
                        {"tag": tag, "patterns": ["x"], "responses": ["y"]}]}
    assert f"intent #1 ({tag!r}): field 'tag': {expected}" in str(problems_of(tmp_path, data))


@pytest.mark.parametrize("field", ["patterns", "responses", "context"])
def test_lists_nested_hundreds_deep_in_a_field_are_a_problem_not_a_crash(tmp_path, field):
    """Valid JSON (the decoder takes some 990 levels) that the field checks followed list by list
    until the stack ran out: a RecursionError traceback instead of the field's problem."""
    nested = "[" * 600 + "]" * 600
    text = json.dumps({"intents": [dict(GOOD, **{field: ["PLACEHOLDER"]})]}).replace('"PLACEHOLDER"', nested)
    with pytest.raises(IntentsError, match=rf"intent #0 \('greeting'\): field '{field}'(\[0\])?: must be a .*list"):
        load_intents(write(tmp_path, text))


@pytest.mark.parametrize("tag, got", [("", "an empty string"), ("   ", "only spaces"), ("\t", "only spaces"),
                                      ("\u3000", "only spaces")])
def test_an_empty_or_blank_tag_is_told_what_it_holds(tmp_path, tag, got):
    """It was "must be a non-empty string, got a string": a string is what the writer gave."""
    problems = problems_of(tmp_path, {"intents": [dict(GOOD, tag=tag)]}).problems
    assert len(problems) == 1 and problems[0].endswith(f"field 'tag': must be a non-empty string, got {got}"), problems


def test_context_fields_of_only_invisible_characters_count_as_empty(tmp_path):
    # a pasted zero-width space: "" (clear), no filter and no follow-up, as an empty text is
    data = {"intents": [
        dict(GOOD, context_set="\u200b", context=["\u200b"]),
        dict(GOOD, tag="other", patterns=["yo"], context_filter="\u200b \u2060"),
    ]}
    intents = load_intents(write(tmp_path, data))
    assert intents["greeting"].context_set == ""
    assert intents["greeting"].next_tag is None
    assert intents["other"].context_filter is None


HELD_OUT_PART = {"intents": [
    {"tag": "order_tea", "patterns": ["tea for me"], "responses": ["Green or black?"], "context_set": "tea_kind"},
    {"tag": "tea_green", "patterns": ["the green one"], "context_filter": "tea_kind", "context_set": ""},
    {"tag": "book", "patterns": ["I need a table"], "responses": ["For when?"], "context": ["book_when"]},
]}


def test_held_out_sentences_need_no_answers_nor_the_intents_their_rules_name():
    """A held-out file made of some of a bot's intents, rules and all, was refused for the
    follow-up it leaves out ('book_when') and for answers it never gives; only its tags and
    patterns are read. The same file is still refused as a bot's intents file."""
    with pytest.raises(IntentsError, match="names tag 'book_when', which no intent has"):
        parse_intents(HELD_OUT_PART, "part.json")
    held = parse_intents(HELD_OUT_PART, "part.json", held_out=True)
    assert held.examples() == (["tea for me", "the green one", "I need a table"], ["order_tea", "tea_green", "book"])
    with pytest.raises(IntentsError, match="field 'patterns': must be a list of strings"):  # still checked
        parse_intents({"intents": [{"tag": "book", "patterns": "I need a table"}]}, "part.json", held_out=True)
