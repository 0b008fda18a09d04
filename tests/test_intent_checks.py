"""Intents-file checks for rules the dialogue would silently not honour: the fallback intent's
context rules, follow-up cycles, intents that can never answer, the reserved fallback tag's
look-alikes, and text that is empty but for invisible format characters."""
import json
import logging
from pathlib import Path

import pytest

from legacy_assistant.classifier.intents import load_intents, looks_of
from legacy_assistant.errors import IntentsError

GOOD = {"tag": "greeting", "patterns": ["hi"], "responses": ["hello"]}
FALLBACK = {"tag": "fallback", "patterns": [], "responses": ["Sorry?"]}


def write(tmp_path, intents, name="intents.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"intents": intents}), encoding="utf-8")
    return path


def problems(tmp_path, intents):
    path = write(tmp_path, intents)
    with pytest.raises(IntentsError) as caught:
        load_intents(path)
    assert str(caught.value).startswith(f"{path}: ")
    return caught.value.problems


def warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


# --- the fallback intent takes no context rules: the dialogue's fallback keeps the context


@pytest.mark.parametrize("field, value", [("context_set", "confused"), ("context", ["next"]), ("context_filter", "x")])
def test_the_fallback_intent_takes_no_context_rules(tmp_path, field, value):
    nxt = {"tag": "next", "patterns": ["go on"], "responses": ["ok"]}
    setter = dict(GOOD, context_set="x")  # so that a context_filter 'x' is set somewhere
    found = problems(tmp_path, [setter, nxt, dict(FALLBACK, **{field: value})])
    assert any(
        f"intent #2 ('fallback'): field '{field}': has no effect on the fallback intent" in p for p in found
    ), found


def test_a_context_only_the_fallback_sets_counts_as_never_set(tmp_path):
    helper = {"tag": "help", "patterns": ["yes please help"], "responses": ["Here."], "context_filter": "confused"}
    found = problems(tmp_path, [GOOD, helper, dict(FALLBACK, context_set="confused")])
    assert any("intent #1 ('help'): field 'context_filter': 'confused' is never set" in p for p in found), found


@pytest.mark.parametrize(
    "field, value", [("context_set", ""), ("context", [""]), ("context", []), ("context_filter", None)]
)
def test_the_fallback_may_keep_the_classic_empty_context_fields(tmp_path, field, value):
    intents = load_intents(write(tmp_path, [GOOD, dict(FALLBACK, **{field: value})]))
    assert intents["fallback"].next_tag is None and intents["fallback"].context_filter is None


# --- follow-up cycles: warned about, not refused


def test_a_follow_up_that_leads_back_to_itself_is_warned_about(tmp_path, caplog):
    loop = {"tag": "loop", "patterns": ["quiz me"], "responses": ["Quiz question?"], "context": ["loop"]}
    path = write(tmp_path, [GOOD, loop])
    assert load_intents(path)["loop"].next_tag == "loop"  # classic tutorials had repeating follow-ups
    (message,) = [m for m in warnings(caplog) if "cycle" in m]
    assert message.startswith(f"{path}: intent #1 ('loop'): field 'context': follow-up cycle 'loop' -> 'loop'")
    assert "never closes" in message


def test_a_free_text_cycle_is_said_to_yield_to_no_confident_intent(tmp_path, caplog):
    """A free_text follow-up takes every message but an interrupting intent's: the warning said
    a confident intent would leave the cycle, which none did."""
    ask = {"tag": "feedback", "patterns": ["feedback please"], "responses": ["Tell me"], "context": ["text"]}
    text = {"tag": "text", "patterns": [], "responses": ["Noted, more?"], "context": ["text"], "free_text": True}
    load_intents(write(tmp_path, [GOOD, ask, text]))
    (message,) = [m for m in warnings(caplog) if "cycle" in m]
    assert "nothing leaves it: a free_text follow-up takes every message, and no intent interrupts" in message
    assert "sure of" not in message
    caplog.clear()
    stop = {"tag": "stop", "patterns": ["stop that"], "responses": ["Stopped."], "interrupts": True}
    load_intents(write(tmp_path, [GOOD, ask, text, stop]))
    (message,) = [m for m in warnings(caplog) if "cycle" in m]
    assert "only an interrupting intent leaves it (a free_text follow-up takes every other message)" in message
    caplog.clear()
    # an interrupting intent without patterns is never chosen: it leaves nothing
    load_intents(write(tmp_path, [GOOD, ask, text, dict(stop, patterns=[]), {**ask, "tag": "to_stop", "context": ["stop"],
                                                                              "patterns": ["end it"]}]))
    (message,) = [m for m in warnings(caplog) if "field 'context': follow-up cycle" in m]
    assert "nothing leaves it: a free_text follow-up takes every message, and no intent interrupts" in message


def test_a_longer_cycle_is_named_once_from_its_first_intent(tmp_path, caplog):
    ask = {"tag": "ask", "patterns": ["start"], "responses": ["A?"], "context": ["a"]}
    a = {"tag": "a", "patterns": [], "responses": ["B?"], "context": ["b"]}
    b = {"tag": "b", "patterns": [], "responses": ["A?"], "context": ["a"]}
    load_intents(write(tmp_path, [GOOD, ask, b, a]))
    cycles = [m for m in warnings(caplog) if "cycle" in m]
    assert len(cycles) == 1 and "intent #2 ('b'): field 'context': follow-up cycle 'b' -> 'a' -> 'b'" in cycles[0]


def test_a_chain_that_ends_gives_no_warning(tmp_path, caplog):
    book = {"tag": "book", "patterns": ["book a table"], "responses": ["When?"], "context": ["when"]}
    when = {"tag": "when", "patterns": [], "responses": ["How many?"], "context": ["size"]}
    size = {"tag": "size", "patterns": [], "responses": ["Booked."], "context": [""]}
    load_intents(write(tmp_path, [GOOD, book, when, size, FALLBACK]))
    assert warnings(caplog) == []


# --- intents that can never answer


FULL_WIDTH = "\uff46\uff41\uff4c\uff4c\uff42\uff41\uff43\uff4b"  # 'fallback' in full-width letters


@pytest.mark.parametrize("tag", ["Fallback", "FALLBACK", FULL_WIDTH, "fall\u200bback"])
def test_a_tag_that_only_looks_like_the_reserved_fallback_is_refused(tmp_path, tag):
    found = problems(tmp_path, [GOOD, dict(FALLBACK, tag=tag)])
    assert any(
        f"intent #1 ({tag!r}): field 'tag': {tag!r} looks like the reserved fallback tag; "
        "the fallback intent's tag is 'fallback'" in p
        for p in found
    ), found


def test_an_intent_without_patterns_that_no_follow_up_leads_to_is_warned_about(tmp_path, caplog):
    orphan = {"tag": "orphan", "patterns": [], "responses": ["never said"]}
    # reached only through another unreachable follow-up: just as unreachable
    lead = {"tag": "lead", "patterns": [], "responses": ["x"], "context": ["orphan"]}
    path = write(tmp_path, [GOOD, orphan, lead])
    assert load_intents(path).tags == ["greeting", "orphan", "lead"]
    found = [m for m in warnings(caplog) if "can never answer" in m]
    assert len(found) == 2
    assert found[0].startswith(f"{path}: intent #1 ('orphan'): field 'patterns': is empty and no follow-up")
    assert "intent #2 ('lead')" in found[1]
    assert "belong to the intent tagged 'fallback'" in found[0]  # no fallback intent: perhaps it was meant


def test_follow_up_targets_the_fallback_and_the_out_of_scope_intent_are_not_unreachable(tmp_path, caplog):
    book = {"tag": "book", "patterns": ["book a table"], "responses": ["When?"], "context": ["when"]}
    when = {"tag": "when", "patterns": [], "responses": ["Noted."]}
    oos = {"tag": "oos", "patterns": []}
    load_intents(write(tmp_path, [GOOD, book, when, FALLBACK, oos]))
    assert warnings(caplog) == []


# --- context rules the dialogue never acts on: warned about, not refused


def test_free_text_on_an_intent_no_context_names_is_warned_about(tmp_path, caplog):
    """Only a follow-up's next turn is read as free text: set on the intent that asks, the flag
    was ignored without a word, and a confident intent took the feedback over."""
    ask = {"tag": "feedback", "patterns": ["feedback please"], "responses": ["Tell me"], "context": ["text"],
           "free_text": True}
    text = {"tag": "text", "patterns": [], "responses": ["Noted."]}
    path = write(tmp_path, [GOOD, ask, text])
    load_intents(path)
    (message,) = [m for m in warnings(caplog) if "field 'free_text'" in m]
    assert message.startswith(f"{path}: intent #1 ('feedback'): field 'free_text': no intent's 'context' names")
    caplog.clear()
    load_intents(write(tmp_path, [GOOD, dict(ask, free_text=False), dict(text, free_text=True)]))
    assert warnings(caplog) == []


def test_a_context_set_that_no_context_filter_reads_is_warned_about(tmp_path, caplog):
    """A misspelt context_set whose right spelling another intent sets was taken without a word:
    the flow it was meant to open never opened."""
    order = {"tag": "order", "patterns": ["order tea"], "responses": ["Green or black?"], "context_set": "tea"}
    typo = {"tag": "order_more", "patterns": ["more tea"], "responses": ["Green or black?"], "context_set": "tae"}
    green = {"tag": "green", "patterns": ["green"], "responses": ["Green."], "context_filter": "tea", "context_set": ""}
    path = write(tmp_path, [GOOD, order, typo, green])
    load_intents(path)
    (message,) = [m for m in warnings(caplog) if "field 'context_set'" in m]
    assert message.startswith(f"{path}: intent #2 ('order_more'): field 'context_set': 'tae' is read by no intent's "
                              "'context_filter'")
    caplog.clear()
    load_intents(write(tmp_path, [GOOD, order, dict(typo, context_set="tea"), green]))
    assert warnings(caplog) == []


def test_interrupts_on_an_intent_without_patterns_is_warned_about(tmp_path, caplog):
    """Only an intent the classifier chooses can interrupt a flow: on a follow-up without
    patterns the flag was taken without a word and never acted on."""
    ask = {"tag": "feedback", "patterns": ["feedback please"], "responses": ["Tell me"], "context": ["text"]}
    text = {"tag": "text", "patterns": [], "responses": ["Noted."], "free_text": True, "interrupts": True}
    path = write(tmp_path, [GOOD, ask, text])
    load_intents(path)
    (message,) = [m for m in warnings(caplog) if "field 'interrupts'" in m]
    assert message.startswith(f"{path}: intent #2 ('text'): field 'interrupts': the intent has no patterns")
    caplog.clear()
    stop = {"tag": "stop", "patterns": ["stop that"], "responses": ["Stopped."], "interrupts": True}
    load_intents(write(tmp_path, [GOOD, ask, dict(text, interrupts=False), stop]))
    assert warnings(caplog) == []

# --- invisible format characters (Unicode category Cf)


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("patterns", ["hi", "\u200b"], "field 'patterns'[1]: is empty once invisible format characters"),
        ("patterns", [" \ufeff\u2060 "], "field 'patterns'[0]: is empty once invisible format characters"),
        ("responses", ["\u200b\u200d"], "field 'responses'[0]: is empty once invisible format characters"),
        ("tag", "\u200b", "field 'tag': must be a non-empty string, got only invisible format characters"),
    ],
)
def test_text_of_invisible_characters_only_is_empty(tmp_path, field, value, expected):
    found = problems(tmp_path, [GOOD, {"tag": "b", "patterns": ["x"], "responses": ["y"], field: value}])
    assert any(p.startswith("intent #1") and expected in p for p in found), found


def test_tags_that_differ_only_by_invisible_characters_are_one_tag(tmp_path):
    assert looks_of("a\u200b") == looks_of("a") == looks_of("\u200dA")
    # inside a tag, where it is no problem of the tag's own
    found = problems(tmp_path, [dict(GOOD, tag="ab"), dict(GOOD, tag="a\u200bb", patterns=["yo"])])
    assert any(
        "intent #1 ('a\\u200bb'): field 'tag': looks the same as intent #0 ('ab')" in p for p in found
    ), found


def test_the_shipped_intents_raise_none_of_these_warnings(caplog):
    from tests.helpers import SHIPPED_INTENTS

    load_intents(SHIPPED_INTENTS)
    assert warnings(caplog) == []


# --- an intent refused for one field still counts in the checks across intents


def test_a_duplicate_tag_is_reported_beside_the_duplicates_other_problems(tmp_path):
    """Every problem at once: a tag that repeats (or looks like) another is named even when the
    same intent, or the first one, has a bad field of its own."""
    found = problems(tmp_path, [
        dict(GOOD, tag="a"),
        dict(GOOD, tag="a", patterns=["bye"], responses=[""]),
        dict(GOOD, tag="A", patterns=[""]),
        dict(GOOD, tag="b", responses=[""]),
        dict(GOOD, tag="b", patterns=["later"]),
    ])
    assert "intent #1 ('a'): field 'responses'[0]: is empty" in "\n".join(found), found
    assert any("intent #1 ('a'): field 'tag': duplicate of intent #0" in p for p in found), found
    assert any("intent #2 ('A'): field 'tag': looks the same as intent #0 ('a')" in p for p in found), found
    assert any("intent #4 ('b'): field 'tag': duplicate of intent #3" in p for p in found), found


def test_an_intent_refused_for_one_field_is_no_missing_tag_or_context_to_the_others(tmp_path):
    """What names a refused intent (its tag in 'context', its context_set in 'context_filter')
    is not reported as naming nothing: fixing the listed problems must not bring new ones."""
    order = {"tag": "order", "patterns": ["order food"], "responses": ["size?"], "context_set": " ordering ",
             "free_text": "no"}  # stripped, as an accepted intent's context_set is
    large = {"tag": "large", "patterns": ["large"], "responses": ["ok"], "context_filter": "ordering"}
    book = {"tag": "book", "patterns": ["book a table"], "responses": ["when?"], "context": ["book_time"]}
    book_time = {"tag": "book_time", "patterns": [], "responses": ["booked"], "interrupts": "yes"}
    found = problems(tmp_path, [GOOD, order, large, book, book_time])
    assert len(found) == 2, found
    assert "intent #1 ('order'): field 'free_text'" in found[0] and "intent #4 ('book_time'): field 'interrupts'" in found[1]
    # the out-of-scope intent's context_set is never applied either: a filter only it sets is named at once
    oos = {"tag": "oos", "patterns": ["weather"], "responses": [], "context_set": "ordering"}
    found = problems(tmp_path, [GOOD, oos, large])
    assert any("intent #1 ('oos'): field 'context_set': has no effect" in p for p in found), found
    assert any("intent #2 ('large'): field 'context_filter': 'ordering' is never set" in p for p in found), found


def test_a_tag_refused_for_itself_is_not_compared_with_the_other_tags(tmp_path: Path) -> None:
    """A tag that is itself wrong (a control character in it) is named for that alone, once per
    intent: what it will be once fixed is unknown, so it is no duplicate of another's tag."""
    broken = {"tag": "greet\ning", "patterns": ["hey"], "responses": ["hey!"]}
    found = problems(tmp_path, [GOOD, broken, dict(broken, patterns=["yo"])])
    assert len(found) == 2, found
    for index, problem in enumerate(found, start=1):
        assert problem.startswith(f"intent #{index} ('greet\\ning'): field 'tag': holds a control character"), found
    assert not any("duplicate" in problem or "looks the same" in problem for problem in found), found


@pytest.mark.parametrize(
    "field, value",
    [("context", ["", ""]), ("context", " "), ("context", ["\u200b"]), ("context_set", " "),
     ("context_filter", "\u200b")],
)
def test_context_fields_that_are_empty_as_read_are_no_rule_on_the_fallback_or_out_of_scope_intent(
    tmp_path, field, value
):
    # read as no follow-up, no filter, or "" as on any other intent: nothing the fallback would skip
    out_of_scope = {"tag": "oos", "patterns": ["who won the match"], field: value}
    intents = load_intents(write(tmp_path, [GOOD, dict(FALLBACK, **{field: value}), out_of_scope]))
    assert intents["fallback"].next_tag is None and intents["oos"].next_tag is None


# --- a context or follow-up tag written in another Unicode form or case than the one it misses

NFC_CAFE, NFD_CAFE = "caf\u00e9", "cafe\u0301"  # print the same; macOS writes the second


@pytest.mark.parametrize("set_as, filtered_as", [(NFC_CAFE, NFD_CAFE), ("Coffee", "coffee"), ("tea", "t\u200bea")])
def test_a_context_filter_that_differs_from_a_set_context_only_in_form_says_how(tmp_path, set_as, filtered_as):
    """The filter matches only as written; the problem said it was never set while printing the
    very name the file sets, and a reader could not see what to fix."""
    order = {"tag": "order", "patterns": ["a coffee"], "responses": ["Which size?"], "context_set": set_as}
    size = {"tag": "size", "patterns": ["large"], "responses": ["Large."], "context_filter": filtered_as}
    (problem,) = problems(tmp_path, [GOOD, order, size])
    assert problem.startswith(f"intent #2 ('size'): field 'context_filter': {filtered_as!r} is never set"), problem
    assert f"a 'context_set' sets {ascii(set_as)}, and this is {ascii(filtered_as)}" in problem, problem
    assert "differ only in case, Unicode form or invisible characters" in problem, problem


def test_a_context_filter_never_set_at_all_gets_no_look_alike_note(tmp_path):
    order = {"tag": "order", "patterns": ["a coffee"], "responses": ["Which size?"], "context_set": "coffee"}
    size = {"tag": "size", "patterns": ["large"], "responses": ["Large."], "context_filter": "tea"}
    (problem,) = problems(tmp_path, [GOOD, order, size])
    assert problem == "intent #2 ('size'): field 'context_filter': 'tea' is never set by any intent's 'context_set'"


def test_a_follow_up_tag_that_differs_from_a_tag_only_in_form_says_which(tmp_path):
    ask = {"tag": "ask", "patterns": ["a coffee"], "responses": ["Which size?"], "context": [NFD_CAFE]}
    cafe = {"tag": NFC_CAFE, "patterns": ["large"], "responses": ["Large."]}
    found = problems(tmp_path, [GOOD, ask, cafe])
    (problem,) = [p for p in found if "field 'context'" in p]
    assert problem.startswith(f"intent #1 ('ask'): field 'context': names tag {NFD_CAFE!r}, which no intent has; "
                              f"intent #2's tag is {ascii(NFC_CAFE)}, and this is {ascii(NFD_CAFE)}"), problem


def test_a_context_set_that_a_filter_reads_only_in_another_form_is_warned_about_saying_so(tmp_path, caplog):
    order = {"tag": "order", "patterns": ["a coffee"], "responses": ["Which size?"], "context_set": NFD_CAFE}
    size = {"tag": "size", "patterns": ["large"], "responses": ["Large."], "context_filter": NFC_CAFE,
            "context_set": ""}
    other = {"tag": "other", "patterns": ["a cake"], "responses": ["Which one?"], "context_set": NFC_CAFE}
    path = write(tmp_path, [GOOD, order, size, other])
    load_intents(path)
    (message,) = [m for m in warnings(caplog) if "field 'context_set'" in m]
    assert message.startswith(f"{path}: intent #1 ('order'): field 'context_set': {NFD_CAFE!r} is read by no "), message
    assert f"a 'context_filter' reads {ascii(NFC_CAFE)}, and this is {ascii(NFD_CAFE)}" in message, message


# --- a tag may not start or end with an invisible format character


@pytest.mark.parametrize(
    "tag",
    ["greet\u200b", "\ufeffgreet", "greet\u200e", "\u2060greet", "greet\u00ad", "greet \u200b", "\U0001f469\u200d"],
)
def test_a_tag_with_an_invisible_format_character_at_an_end_is_refused_and_shown_escaped(tmp_path, tag):
    """It printed as the tag without it, and the API answered a name that did not equal it."""
    found = problems(tmp_path, [GOOD, dict(GOOD, tag=tag, patterns=["yo"])])
    assert any(
        p.startswith("intent #1 (") and f"): field 'tag': {ascii(tag)} has an invisible format character" in p
        for p in found
    ), found


def test_a_tag_of_invisible_characters_only_is_shown_escaped(tmp_path):
    found = problems(tmp_path, [GOOD, dict(GOOD, tag="\u200b\ufeff", patterns=["yo"])])
    assert any("got only invisible format characters ('\\u200b\\ufeff')" in p for p in found), found


@pytest.mark.parametrize(
    "tag",
    [
        "\U0001f469\u200d\U0001f4bb",  # woman technologist: joiners inside an emoji
        "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",  # England: ends with a tag
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian with a ZWNJ inside
        "\u0915\u094d\u200d\u0937",  # Devanagari with a ZWJ inside
    ],
)
def test_joiners_inside_a_tag_are_part_of_it(tmp_path, tag):
    intents = load_intents(write(tmp_path, [GOOD, dict(GOOD, tag=tag, patterns=["yo"])]))
    assert tag in intents
