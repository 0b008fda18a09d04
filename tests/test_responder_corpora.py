"""Corpus readers (cakechat lines, Topical-Chat, ChatterBot YAML), training pairs and the
held-out split, on small corpora written by the tests."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from legacy_assistant.errors import DataError
from legacy_assistant.responder.corpora import (
    Dialogue,
    Turn,
    detect_layout,
    read_cakechat,
    read_chatterbot,
    read_corpora,
    read_corpus,
    read_topical_chat,
)
from legacy_assistant.responder.pairs import (
    first_copies,
    TrainingPair,
    dialogue_key,
    dialogue_pairs,
    make_pairs,
    split_dialogues,
    without_overlap,
)


def _cakechat_line(*turns: tuple[str, str]) -> str:
    return json.dumps([{"text": text, "condition": condition} for text, condition in turns])


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- cakechat ---------------------------------------------------------------------------------


def test_cakechat_lines_become_dialogues_with_their_line(tmp_path):
    corpus = _write(
        tmp_path / "dialogues.jsonl",
        _cakechat_line(("Hello", "neutral"), ("Oh, hi! How are you?", "joy"), ("Doing good", "neutral"))
        + "\n\n"
        + _cakechat_line(("Bieber is the best", "neutral"), ("  Ok...  ", "sadness"))
        + "\n",
    )
    dialogues = read_cakechat(corpus)
    assert [len(d.turns) for d in dialogues] == [3, 2]
    assert dialogues[0].turns[1] == Turn("Oh, hi! How are you?", "joy")
    assert dialogues[1].turns[1] == Turn("Ok...", "sadness")  # stripped
    assert dialogues[0].source.endswith("dialogues.jsonl:1")
    assert dialogues[1].source.endswith("dialogues.jsonl:3")  # the blank line still counts


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
def test_cakechat_file_is_read_as_cakechat_read_it_whatever_its_line_endings(tmp_path, ending):
    """cakechat's layout as its own files write it (its five emotions, one dialogue a line), with
    what a hand-edited copy picks up: a byte order mark, blank lines, keys of its own, non-ASCII
    text, a long line and no newline at the end. cakechat read the file in text mode, where a
    lone \r ends a line as \n and \r\n do."""
    lines = [
        _cakechat_line(("Hello", "neutral"), ("Oh, hi! :) How are you, my friend?", "joy"), ("Doing good", "neutral")),
        "",
        json.dumps([{"text": "Star Wars?", "condition": "anger", "id": 7}, {"text": "Ok...", "condition": "sadness"}]),
        json.dumps([{"text": "Ça va? 日本語 😀", "condition": "neutral"}, {"text": "Боюсь", "condition": "fear"}]),
        _cakechat_line(*[("word " * 2000, "neutral")] * 4),
    ]
    corpus = tmp_path / "train_processed_dialogs.txt"
    corpus.write_bytes(b"\xef\xbb\xbf" + ending.join(lines).encode("utf-8"))
    dialogues = read_cakechat(corpus)
    assert [d.source.rsplit(":", 1)[1] for d in dialogues] == ["1", "3", "4", "5"]
    assert [[t.condition for t in d.turns] for d in dialogues] == [
        ["neutral", "joy", "neutral"],
        ["anger", "sadness"],
        ["neutral", "fear"],
        ["neutral"] * 4,
    ]
    assert dialogues[0].turns[1].text == "Oh, hi! :) How are you, my friend?"
    assert dialogues[2].turns == (Turn("Ça va? 日本語 😀", "neutral"), Turn("Боюсь", "fear"))
    assert dialogues[3].turns[0].text == ("word " * 2000).strip()


def test_cakechat_lone_carriage_returns_count_lines_in_problems(tmp_path):
    good = _cakechat_line(("hi", "neutral"), ("hello", "joy"))
    corpus = _write(tmp_path / "c.txt", "\r".join([good, "not json", good, "[]"]))
    with pytest.raises(DataError) as caught:
        read_cakechat(corpus)
    assert caught.value.problems == [
        "line 2: invalid JSON at column 1: Expecting value",
        "line 4: a dialogue needs at least 2 turns, got 0",
    ]


def test_cakechat_null_text_or_condition_is_named_null_not_missing(tmp_path):
    """cakechat's reader took "condition": null; here every turn needs a string, and the problem
    says what the line holds: the key is there, its value is null."""
    lines = [
        json.dumps([{"text": "hi", "condition": None}, {"text": "yo", "condition": "joy"}]),
        json.dumps([{"text": None, "condition": "neutral"}, {"text": "yo"}]),
    ]
    corpus = _write(tmp_path / "c.jsonl", "\n".join(lines) + "\n")
    with pytest.raises(DataError) as caught:
        read_cakechat(corpus)
    assert caught.value.problems == [
        """line 1, turn 1: 'condition' is null, not a string; write "neutral" for a turn without an emotion""",
        "line 2, turn 1: 'text' is null, not a string",
        "line 2, turn 2: 'condition' is missing",
    ]


def test_cakechat_bad_line_is_refused_with_its_line_number(tmp_path):
    good = _cakechat_line(("hi", "neutral"), ("hello", "joy"))
    corpus = _write(tmp_path / "c.txt", "\n".join([good, good, '[{"text": "hi", "condition": "neutral"}, ', good]))
    with pytest.raises(DataError) as caught:
        read_cakechat(corpus)
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith("line 3: invalid JSON")
    assert str(corpus) in str(caught.value)


def test_cakechat_turn_giving_a_key_twice_is_refused_with_its_line(tmp_path):
    good = _cakechat_line(("hi", "neutral"), ("hello", "joy"))
    twice = '[{"text": "hi", "condition": "joy", "text": "bye"}, {"text": "hey", "condition": "neutral"}]'
    corpus = _write(tmp_path / "c.txt", "\n".join([good, twice]))
    with pytest.raises(DataError) as caught:
        read_cakechat(corpus)
    assert caught.value.problems == ['line 2: key "text" appears twice in one object: only one value would be kept']


def test_topical_chat_conversation_given_twice_is_refused(tmp_path):
    turn = '{"message": "hi", "agent": "agent_1", "sentiment": "Happy"}'
    conversation = '{"content": [%s, %s]}' % (turn, turn)
    corpus = _write(tmp_path / "tc.json", '{"t1": %s, "t1": %s}' % (conversation, conversation))
    with pytest.raises(DataError, match='key "t1" appears twice'):
        read_corpus(corpus)


def test_cakechat_dialogue_of_one_turn_is_refused(tmp_path):
    good = _cakechat_line(("hi", "neutral"), ("hello", "joy"))
    corpus = _write(tmp_path / "c.jsonl", good + "\n" + _cakechat_line(("alone", "neutral")) + "\n")
    with pytest.raises(DataError) as caught:
        read_cakechat(corpus)
    assert caught.value.problems == ["line 2: a dialogue needs at least 2 turns, got 1"]


def test_cakechat_reports_every_bad_turn_by_line_and_turn(tmp_path):
    lines = [
        json.dumps([{"text": "hi", "condition": "neutral"}, {"text": "yo"}]),
        json.dumps([{"text": "", "condition": "joy"}, {"text": "x", "condition": "joy"}]),
        json.dumps([{"text": 3, "condition": "joy"}, "not a turn"]),
        json.dumps({"text": "hi", "condition": "joy"}),
    ]
    corpus = _write(tmp_path / "c.jsonl", "\n".join(lines))
    with pytest.raises(DataError) as caught:
        read_cakechat(corpus)
    problems = caught.value.problems
    assert "line 1, turn 2: 'condition' is missing" in problems
    assert "line 2, turn 1: 'text' is empty" in problems
    assert "line 3, turn 1: 'text' must be a string, got a number" in problems
    assert "line 3, turn 2: must be an object with 'text' and 'condition', got a string" in problems
    # the file's JSON names, not Python's types ("got dict", "got NoneType")
    assert "line 4: a dialogue must be a JSON list of turns, got an object" in problems


def test_cakechat_line_that_is_not_utf8_is_named(tmp_path):
    good = _cakechat_line(("hi", "neutral"), ("hello", "joy")).encode("utf-8")
    corpus = tmp_path / "c.jsonl"
    corpus.write_bytes(good + b"\n" + b'[{"text": "caf\xe9"}]\n' + good + b"\n")
    with pytest.raises(DataError) as caught:
        read_cakechat(corpus)
    # the \xe9 is the 15th byte of its line, counted from 1 as lines are
    assert caught.value.problems == ["line 2: not UTF-8 text (invalid continuation byte at byte 15 of the line)"]


def test_json_that_python_cannot_hold_is_a_problem_of_its_line_or_file(tmp_path):
    """Valid JSON syntax that json.loads still refuses: an integer of more than 4,300 digits, or
    nesting deeper than the recursion limit."""
    good = _cakechat_line(("hi", "neutral"), ("hello", "joy"))
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("\n".join([good, "[" + "9" * 5000 + "]", "[" * 100000 + "]" * 100000, good]) + "\n")
    with pytest.raises(DataError) as caught:
        read_cakechat(corpus)
    assert caught.value.problems[0].startswith("line 2: invalid JSON")
    assert caught.value.problems[1] == "line 3: invalid JSON: nested too deeply"
    topical = tmp_path / "t.json"
    topical.write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(DataError, match="nested too deeply"):
        read_topical_chat(topical)
    bot = tmp_path / "deep.yml"
    bot.write_text("conversations: " + "[" * 100000 + "]" * 100000)
    with pytest.raises(DataError, match="nested too deeply"):
        read_chatterbot(bot)


def test_not_strict_skips_bad_dialogues_and_keeps_the_rest(tmp_path, caplog):
    good = _cakechat_line(("hi", "neutral"), ("hello", "joy"))
    corpus = _write(tmp_path / "c.jsonl", "\n".join([good, "{broken", _cakechat_line(("one", "joy")), good]))
    dialogues = read_cakechat(corpus, strict=False)
    assert [d.source.rsplit(":", 1)[1] for d in dialogues] == ["1", "4"]
    assert "line 2: invalid JSON" in caplog.text and "line 3: a dialogue needs" in caplog.text


def test_empty_corpus_is_refused(tmp_path):
    with pytest.raises(DataError, match="no dialogues"):
        read_cakechat(_write(tmp_path / "c.jsonl", "\n\n"))
    with pytest.raises(DataError, match="file not found"):
        read_corpus(tmp_path / "missing.jsonl")
    with pytest.raises(DataError, match=r"not a regular file \(a device, pipe or socket\)"):
        read_corpus("/dev/null")  # there, but no file: "file not found" sent users looking for a typo


# --- Topical-Chat -----------------------------------------------------------------------------

SENTIMENTS = {
    "Happy": "joy",
    "Sad": "sadness",
    "Angry": "anger",
    "Disgusted": "anger",
    "Fearful": "fear",
    "Neutral": "neutral",
    "Curious to dive deeper": "neutral",
    "Surprised": "neutral",
}


def _topical_turn(message: str, sentiment: str, agent: str) -> dict:
    return {"message": message, "agent": agent, "sentiment": sentiment, "knowledge_source": ["FS1"],
            "turn_rating": "Good"}


def test_topical_chat_maps_every_sentiment(tmp_path):
    content = [
        _topical_turn(f"message {i} ({label})", label, f"agent_{i % 2 + 1}") for i, label in enumerate(SENTIMENTS)
    ]
    data = {
        "t_one": {"article_url": "https://example.org/a", "config": "A", "content": content},
        "t_two": {"config": "B", "content": content[:2]},
    }
    corpus = _write(tmp_path / "sample.json", json.dumps(data, indent=2))
    dialogues = read_topical_chat(corpus)
    assert [d.source.rsplit("#", 1)[1] for d in dialogues] == ["t_one", "t_two"]
    assert [turn.condition for turn in dialogues[0].turns] == list(SENTIMENTS.values())
    assert dialogues[0].turns[0].text == "message 0 (Happy)"


def test_topical_chat_problems_name_conversation_and_turn(tmp_path):
    data = {
        "t_ok": {"content": [_topical_turn("hi", "Happy", "agent_1"), _topical_turn("hey", "Sad", "agent_2")]},
        "t_short": {"content": [_topical_turn("hi", "Happy", "agent_1")]},
        "t_bad": {"content": [_topical_turn("hi", "Happy", "agent_1"), {"agent": "agent_2", "sentiment": "Sad"}]},
        "t_none": {"config": "A"},
    }
    corpus = _write(tmp_path / "bad.json", json.dumps(data))
    with pytest.raises(DataError) as caught:
        read_topical_chat(corpus)
    assert caught.value.problems == [
        "conversation 't_short': a dialogue needs at least 2 turns, got 1",
        "conversation 't_bad', turn 2: 'message' is missing",
        "conversation 't_none': must be an object with a 'content' list of turns",
    ]


def test_topical_chat_null_message_is_named_null_not_missing(tmp_path):
    data = {"t1": {"content": [_topical_turn("hi", "Happy", "agent_1"), {"message": None, "agent": "agent_2"}]}}
    corpus = _write(tmp_path / "tc.json", json.dumps(data))
    with pytest.raises(DataError) as caught:
        read_topical_chat(corpus)
    assert caught.value.problems == ["conversation 't1', turn 2: 'message' is null, not a string"]


@pytest.mark.parametrize("data, found", [([{"content": []}], "a list"), ("hi", "a string"), (None, "null")])
def test_topical_chat_that_is_no_object_of_conversations_is_refused(tmp_path, data, found):
    corpus = _write(tmp_path / "tc.json", json.dumps(data))
    with pytest.raises(DataError) as caught:
        read_topical_chat(corpus)
    assert caught.value.problems == [f"top level must be an object of conversations keyed by id, got {found}"]


def test_topical_chat_turns_of_the_wrong_shape_are_named_with_their_turn(tmp_path):
    turns = [_topical_turn("hi", "Happy", "agent_1"), "hey", ["x"], {"message": "yo", "sentiment": 3},
             {"message": "ok", "sentiment": None}]
    corpus = _write(tmp_path / "tc.json", json.dumps({"t1": {"content": turns}}))
    with pytest.raises(DataError) as caught:
        read_topical_chat(corpus)
    assert caught.value.problems == [
        "conversation 't1', turn 2: must be an object with a 'message', got a string",
        "conversation 't1', turn 3: must be an object with a 'message', got a list",
        "conversation 't1', turn 4: 'sentiment' must be a string, got a number",
    ]


def test_topical_chat_invalid_json_names_its_line(tmp_path):
    corpus = _write(tmp_path / "broken.json", '{\n  "t": {\n    "content": [,]\n  }\n}\n')
    with pytest.raises(DataError, match="line 3"):
        read_corpus(corpus)


# --- ChatterBot YAML --------------------------------------------------------------------------

CHATTERBOT = """\
categories:
- greetings
conversations:
- - Hello
  - Hi
- - How are you doing?
  - I am doing well, how about you?
  - I am also good.
  - That's good to hear.
- - What year was it?
  - 1984
- - Is it?
  - yes
"""


def test_chatterbot_multi_turn_conversations_are_neutral(tmp_path):
    corpus = _write(tmp_path / "greetings.yml", CHATTERBOT)
    dialogues = read_chatterbot(corpus)
    assert [len(d.turns) for d in dialogues] == [2, 4, 2, 2]
    assert dialogues[1].turns[2] == Turn("I am also good.", "neutral")
    assert {turn.condition for d in dialogues for turn in d.turns} == {"neutral"}
    # Scalars stay the text as written, not YAML's number or boolean.
    assert dialogues[2].turns[1].text == "1984" and dialogues[3].turns[1].text == "yes"
    assert dialogues[1].source.endswith("greetings.yml:6")


def test_chatterbot_folder_without_yaml_files_is_refused(tmp_path):
    folder = tmp_path / "chatterbot"
    folder.mkdir()
    _write(folder / "notes.txt", "- - Hello\n  - Hi\n")
    with pytest.raises(DataError) as caught:
        read_chatterbot(folder)
    assert caught.value.problems == ["no .yml or .yaml files in this folder"]


def test_chatterbot_folder_reads_every_yaml_file_in_name_order(tmp_path):
    folder = tmp_path / "english"
    folder.mkdir()
    _write(folder / "b.yaml", "conversations:\n- - Bye\n  - See you\n")
    _write(folder / "a.yml", CHATTERBOT)
    _write(folder / "notes.md", "not a corpus")
    dialogues = read_corpus(folder)
    assert len(dialogues) == 5
    assert dialogues[-1].turns[1].text == "See you"


def test_a_corpus_folder_skips_hidden_files_and_matches_suffixes_in_any_case(tmp_path):
    """As read_corpus says: hidden files (an editor's backup) are skipped, and B.JSONL is a corpus file too."""
    folder = tmp_path / "corpora"
    folder.mkdir()
    _write(folder / ".hidden.jsonl", "not a corpus line\n")  # would be refused if it were read
    _write(folder / "a.jsonl", _cakechat_line(("hi", "neutral"), ("hello", "joy")))
    _write(folder / "B.JSONL", _cakechat_line(("bye", "neutral"), ("see you", "sadness")))
    dialogues = read_corpus(folder)
    assert sorted(d.turns[1].text for d in dialogues) == ["hello", "see you"]
    assert {Path(d.source.rsplit(":", 1)[0]).name for d in dialogues} == {"a.jsonl", "B.JSONL"}


def test_chatterbot_problems_name_their_line(tmp_path):
    text = (
        "conversations:\n"
        "- - Hello\n"
        "  - Hi\n"
        "- Just a string where a conversation was meant\n"
        "- - Only one turn\n"
        "- - Hi\n"
        "  - - nested\n"
        "    - list\n"
        "- - Hi\n"
        "  -\n"
    )
    corpus = _write(tmp_path / "bad.yml", text)
    with pytest.raises(DataError) as caught:
        read_chatterbot(corpus)
    assert caught.value.problems == [
        "line 4, conversation 2: must be a list of strings",
        "line 5, conversation 3: a dialogue needs at least 2 turns, got 1",
        "line 7, conversation 4: a turn must be a non-empty string",
        "line 10, conversation 5: a turn must be a non-empty string",
    ]
    assert [len(d.turns) for d in read_chatterbot(corpus, strict=False)] == [2]


def test_chatterbot_invalid_yaml_and_wrong_shape(tmp_path):
    with pytest.raises(DataError, match="line 3: invalid YAML"):
        read_chatterbot(_write(tmp_path / "a.yml", "conversations:\n- - Hello\n  - Hi: there: you\n- - Bye\n  - Bye\n"))
    with pytest.raises(DataError, match="'conversations' list"):
        read_chatterbot(_write(tmp_path / "b.yml", "categories:\n- x\n"))
    with pytest.raises(DataError, match="empty file"):
        read_chatterbot(_write(tmp_path / "c.yml", ""))


def test_chatterbot_never_constructs_tagged_objects(tmp_path):
    marker = tmp_path / "constructed"
    corpus = _write(
        tmp_path / "evil.yml",
        f"conversations:\n- - !!python/object/apply:os.system ['touch {marker}']\n  - ok\n"
        "- - !shout hello\n  - hi\n",
    )
    with pytest.raises(DataError, match="line 2, conversation 1: a turn must be a non-empty string"):
        read_chatterbot(corpus)
    assert not marker.exists()
    dialogues = read_chatterbot(corpus, strict=False)
    assert dialogues[0].turns[0].text == "hello"  # a tagged scalar is only its text


def test_chatterbot_character_yaml_refuses_is_one_problem_with_its_line(tmp_path):
    corpus = tmp_path / "nul.yml"
    corpus.write_bytes(b"conversations:\n- - hi\n  - hel\x00lo\n")
    with pytest.raises(DataError) as raised:
        read_chatterbot(corpus, strict=False)  # the file as a whole cannot be read: no skipping helps
    assert raised.value.problems == ["line 3: invalid YAML: unacceptable character #x0000"]


def test_chatterbot_aliases_are_refused_so_a_small_file_cannot_stand_for_millions_of_turns(tmp_path):
    turns = "\n".join(f"  - &t{i} turn {i}" for i in range(2))
    bomb = "conversations:\n- &c\n" + turns + "\n" + "".join("- *c\n" for _ in range(3))
    bomb += "- - *t0\n  - fine\n- - one\n  - two\n"
    corpus = _write(tmp_path / "bomb.yml", bomb)
    with pytest.raises(DataError) as raised:
        read_chatterbot(corpus)
    assert len(raised.value.problems) == 4 and all("uses a YAML alias" in p for p in raised.value.problems)
    kept = read_chatterbot(corpus, strict=False)
    assert [[t.text for t in d.turns] for d in kept] == [["turn 0", "turn 1"], ["one", "two"]]


def test_topical_chat_file_with_a_byte_order_mark_is_read(tmp_path):
    data = {"t_one": {"content": [_topical_turn("hi", "Happy", "agent_1"), _topical_turn("hey", "Sad", "agent_2")]}}
    corpus = tmp_path / "bom.json"
    corpus.write_bytes(b"\xef\xbb\xbf" + json.dumps(data).encode("utf-8"))
    assert [t.text for t in read_corpus(corpus)[0].turns] == ["hi", "hey"]


# --- layout detection -------------------------------------------------------------------------


def test_layout_is_detected_from_the_path(tmp_path):
    lines = _write(tmp_path / "d.jsonl", _cakechat_line(("a", "joy"), ("b", "anger")))
    text = _write(tmp_path / "d.txt", _cakechat_line(("a", "joy"), ("b", "anger")))
    topical = _write(tmp_path / "t.json", json.dumps({"x": {"content": [_topical_turn("a", "Sad", "agent_1")] * 2}}))
    yaml_file = _write(tmp_path / "c.yaml", CHATTERBOT)
    assert [detect_layout(p) for p in (lines, text, topical, yaml_file)] == [
        "cakechat", "cakechat", "topical_chat", "chatterbot"
    ]
    assert read_corpus(topical)[0].turns[0].condition == "sadness"
    assert read_corpus(lines)[0].turns[1].condition == "anger"
    assert len(read_corpora([lines, topical, yaml_file])) == 1 + 1 + 4


def test_layout_can_be_named_and_unknown_ones_are_refused(tmp_path):
    odd = _write(tmp_path / "dialogues.json", _cakechat_line(("a", "joy"), ("b", "fear")) + "\n")
    with pytest.raises(DataError, match="cakechat"):
        read_corpus(odd)  # a .json list is not Topical-Chat: the message says what to do
    assert read_corpus(odd, layout="cakechat")[0].turns[1] == Turn("b", "fear")
    with pytest.raises(DataError, match="unknown corpus layout"):
        read_corpus(odd, layout="csv")
    with pytest.raises(DataError, match="cannot tell the corpus layout"):
        read_corpus(_write(tmp_path / "notes.md", "hello"))
    empty_folder = tmp_path / "empty"
    empty_folder.mkdir()
    with pytest.raises(DataError, match="no corpus files"):
        read_corpus(empty_folder)


# --- text no UTF-8 file can hold, case, links and files given twice ---------------------------


def test_a_lone_surrogate_escape_is_a_bad_dialogue_in_every_layout(tmp_path, caplog):
    """"\\ud800" is valid JSON and YAML but no UTF-8 text: the reader refuses the dialogue (else
    the split's digest and the checkpoint's run.json fail with a traceback); not strict, it is
    skipped and the rest kept."""
    good = _cakechat_line(("hi", "neutral"), ("hello", "joy"))
    cakechat = _write(
        tmp_path / "c.jsonl",
        "\n".join([good, r'[{"text": "a \ud800 b", "condition": "joy"}, {"text": "ok", "condition": "joy"}]',
                   r'[{"text": "hi", "condition": "j\udc00y"}, {"text": "ok", "condition": "joy"}]', good]),
    )
    with pytest.raises(DataError) as caught:
        read_corpus(cakechat)
    assert caught.value.problems == [
        r"line 2, turn 1: 'text' is not valid Unicode text (a lone surrogate escape, '\ud800')",
        r"line 3, turn 1: 'condition' is not valid Unicode text (a lone surrogate escape, '\udc00')",
    ]
    assert [d.source.rsplit(":", 1)[1] for d in read_corpus(cakechat, strict=False)] == ["1", "4"]

    turn = '{"message": "fine"}'
    topical = _write(
        tmp_path / "t.json",
        '{"bad": {"content": [{"message": "a \\ud800"}, %s]}, "\\ud801": {"content": [%s, %s]}, '
        '"good": {"content": [%s, %s]}}' % (turn, turn, turn, turn, turn),
    )
    with pytest.raises(DataError) as caught:
        read_corpus(topical)
    assert caught.value.problems == [
        r"conversation 'bad', turn 1: 'message' is not valid Unicode text (a lone surrogate escape, '\ud800')",
        r"conversation '\ud801': the id is not valid Unicode text (a lone surrogate escape, '\ud801')",
    ]
    assert [d.source.rsplit("#", 1)[1] for d in read_corpus(topical, strict=False)] == ["good"]

    bot = _write(tmp_path / "b.yml", 'conversations:\n- - "a \\ud800"\n  - b\n- - c\n  - d\n')
    with pytest.raises(DataError) as caught:
        read_corpus(bot)
    assert caught.value.problems == [
        r"line 2, conversation 1: a turn is not valid Unicode text (a lone surrogate escape, '\ud800')"
    ]
    assert [[t.text for t in d.turns] for d in read_corpus(bot, strict=False)] == [["c", "d"]]


def test_conditions_that_differ_only_in_case_or_spaces_are_one_condition(tmp_path):
    corpus = _write(
        tmp_path / "c.jsonl",
        _cakechat_line(("hi", "Joy"), ("hello", "ANGER "), ("hey", " Sadness")) + "\n"
        + _cakechat_line(("hi", "joy"), ("hello", "MyMood")) + "\n",
    )
    conditions = [[t.condition for t in d.turns] for d in read_corpus(corpus)]
    assert conditions == [["joy", "anger", "sadness"], ["joy", "mymood"]]
    topical = _write(tmp_path / "t.json", json.dumps({"x": {"content": [_topical_turn("a", "Happy", "agent_1")] * 2}}))
    assert {t.condition for t in read_topical_chat(topical, {"happy": " Joy "})[0].turns} == {"joy"}


def test_a_condition_written_composed_or_decomposed_is_one_condition(tmp_path):
    """"colère" with a precomposed è and with e and a combining grave accent were two conditions,
    each trained on part of the replies, and a request typed the other way was unknown."""
    from legacy_assistant.responder.modes import known_condition

    composed, decomposed = "Col\u00e8re", "Cole\u0300re"
    corpus = _write(
        tmp_path / "c.jsonl",
        _cakechat_line(("salut", "neutral"), ("non", composed)) + "\n"
        + _cakechat_line(("salut", "neutral"), ("non !", decomposed)) + "\n",
    )
    assert {d.turns[1].condition for d in read_corpus(corpus)} == {"col\u00e8re"}
    assert known_condition(decomposed, ("neutral", "col\u00e8re")) == "col\u00e8re"
    assert known_condition(composed, ("neutral", "cole\u0300re")) == "cole\u0300re"


def test_chatterbot_key_given_twice_is_refused_with_the_line_of_the_second(tmp_path):
    """PyYAML would keep the later block; reading the first dropped it without a word."""
    corpus = _write(tmp_path / "dup.yml", "conversations:\n- - a\n  - b\ncategories: [x]\nconversations:\n- - c\n  - d\n")
    with pytest.raises(DataError) as caught:
        read_corpus(corpus, strict=False)  # the file as a whole is ambiguous: no skipping helps
    assert caught.value.problems == [
        'line 5: key "conversations" appears twice in one mapping: only one value would be kept'
    ]


def test_a_broken_or_looping_link_in_a_corpus_folder_is_named_not_left_out(tmp_path):
    folder = tmp_path / "corpora"
    folder.mkdir()
    _write(folder / "a.jsonl", _cakechat_line(("hi", "neutral"), ("hello", "joy")))
    (folder / "b.jsonl").symlink_to(tmp_path / "moved_away.jsonl")
    with pytest.raises(DataError) as caught:
        read_corpus(folder, strict=False)
    assert caught.value.source == str(folder / "b.jsonl")
    assert caught.value.problems == [f"broken symbolic link: its target {tmp_path / 'moved_away.jsonl'} does not exist"]
    (folder / "b.jsonl").unlink()
    (folder / "loop.yml").symlink_to("loop.yml")
    for path in (folder, folder / "loop.yml"):
        with pytest.raises(DataError) as caught:
            read_corpus(path)
        assert caught.value.source == str(folder / "loop.yml")
        assert caught.value.problems == ["symbolic link loop: it never reaches a file"]
    bots = tmp_path / "bots"
    bots.mkdir()
    (bots / "gone.yml").symlink_to(tmp_path / "gone.yml")
    with pytest.raises(DataError, match="broken symbolic link"):
        read_chatterbot(bots)


def test_a_corpus_file_given_twice_is_refused_naming_it(tmp_path):
    from legacy_assistant.responder.corpora import RepeatedCorpusError

    folder = tmp_path / "corpora"
    folder.mkdir()
    corpus = _write(folder / "a.jsonl", _cakechat_line(("hi", "neutral"), ("hello", "joy")))
    other = _write(tmp_path / "b.jsonl", _cakechat_line(("yes", "neutral"), ("no", "anger")))
    with pytest.raises(RepeatedCorpusError) as caught:
        read_corpora([corpus, other, corpus])
    assert caught.value.source == str(corpus)
    assert caught.value.problems == ["given twice: its dialogues would be read, and trained on, twice"]
    with pytest.raises(RepeatedCorpusError, match="given twice"):
        read_corpora([corpus, folder])  # a file and its folder
    with pytest.raises(RepeatedCorpusError, match=r"given twice \(also as .*a\.jsonl\)"):
        read_corpora([corpus, tmp_path / "corpora" / ".." / "corpora" / "a.jsonl"])  # another path to it
    (folder / "link.jsonl").symlink_to(corpus)
    with pytest.raises(RepeatedCorpusError) as caught:
        read_corpus(folder)  # two names in one folder for one file
    assert caught.value.source == str(folder / "link.jsonl")
    assert len(read_corpora([folder / "a.jsonl", other])) == 2


def test_a_file_that_is_not_utf8_is_named_with_its_line(tmp_path):
    bot = tmp_path / "bad.yml"
    bot.write_bytes(b"conversations:\n- - caf\xe9\n  - hi\n")
    with pytest.raises(DataError) as caught:
        read_corpus(bot, strict=False)
    assert caught.value.problems == ["line 2: not UTF-8 text (invalid continuation byte at byte 8 of the line)"]
    topical = tmp_path / "bad.json"
    topical.write_bytes(b'\xef\xbb\xbf{"c1": {"content": [{"message": "a"},\n{"message": "caf\xe9"}]}}')
    with pytest.raises(DataError) as caught:
        read_corpus(topical)
    assert caught.value.problems == ["line 2: not UTF-8 text (invalid continuation byte at byte 17 of the line)"]


@pytest.mark.parametrize(("name", "encoding"), [("t.json", "utf-16"), ("t.json", "utf-32"), ("c.jsonl", "utf-16"),
                                                ("b.yml", "utf-16")])
def test_a_utf16_or_utf32_corpus_is_named_not_utf8(tmp_path, name, encoding):
    """Not the advice to use .jsonl that a .json file not starting with "{" gets."""
    corpus = tmp_path / name
    corpus.write_text('{"x": {"content": [{"message": "a"}, {"message": "b"}]}}', encoding=encoding)
    with pytest.raises(DataError) as caught:
        read_corpus(corpus)
    wide = encoding.upper().replace("UTF", "UTF-").replace("--", "-")
    assert caught.value.problems == [f"not UTF-8 text: it starts with a {wide} byte order mark (save it as UTF-8)"]


# --- pairs and the split ----------------------------------------------------------------------


def _dialogue(n_turns: int, tag: str) -> Dialogue:
    conditions = ("neutral", "joy", "anger", "sadness", "fear")
    return Dialogue(tuple(Turn(f"{tag} turn {i}", conditions[i % 5]) for i in range(n_turns)), f"test#{tag}")


def test_pairs_take_up_to_three_turns_of_context_and_the_response_condition():
    pairs = dialogue_pairs(_dialogue(6, "d"))
    assert len(pairs) == 5
    assert pairs[0] == TrainingPair(("d turn 0",), "d turn 1", "joy")
    assert pairs[2].context == ("d turn 0", "d turn 1", "d turn 2")
    assert pairs[4] == TrainingPair(("d turn 2", "d turn 3", "d turn 4"), "d turn 5", "neutral")
    assert [p.context for p in dialogue_pairs(_dialogue(3, "e"), max_context_turns=1)] == [("e turn 0",), ("e turn 1",)]
    assert len(make_pairs([_dialogue(2, "a"), _dialogue(4, "b")])) == 1 + 3


def test_split_never_puts_one_dialogue_on_both_sides():
    dialogues = [_dialogue(2 + i % 4, f"d{i}") for i in range(60)]
    dialogues += dialogues[:10]  # copies, from other lines of the corpus
    train, held = split_dialogues(dialogues, 0.2, seed=3)
    assert len(train) + len(held) == len(dialogues)
    assert not {dialogue_key(d) for d in train} & {dialogue_key(d) for d in held}
    assert 10 <= len({dialogue_key(d) for d in held}) <= 14  # 20% of 60 distinct dialogues
    # Pairs follow their dialogue: no held-out response is trained on.
    trained = {(p.context, p.response) for p in make_pairs(train)}
    assert not trained & {(p.context, p.response) for p in make_pairs(held)}


def test_dialogues_that_differ_only_in_the_first_turns_condition_are_one_dialogue():
    """The first turn is only ever context: its condition reaches no training pair, so two such
    dialogues give the same pairs, and were split across the sides, kept beside a held-out copy,
    and not dropped as repeats."""
    first = Dialogue((Turn("Hi there", "joy"), Turn("Hello!", "neutral")), "a")
    second = Dialogue((Turn("hi  there", "anger"), Turn("Hello!", "neutral")), "b")
    assert make_pairs([first]) == [TrainingPair(("Hi there",), "Hello!", "neutral")]
    assert dialogue_key(first) == dialogue_key(second)
    assert without_overlap([second], [first]) == []
    assert dialogue_key(first) != dialogue_key(Dialogue((first.turns[0], Turn("Hello!", "joy")), "c"))
    dialogues = [_dialogue(3, f"d{i}") for i in range(20)]
    recoloured = [Dialogue((Turn(d.turns[0].text, "fear"), *d.turns[1:]), d.source + "#copy") for d in dialogues]
    train, held = split_dialogues(dialogues + recoloured, 0.2, seed=4)
    assert {d.source.removesuffix("#copy") for d in train}.isdisjoint(d.source.removesuffix("#copy") for d in held)


def test_copies_of_dialogues_are_counted_in_a_warning(caplog):
    dialogues = [_dialogue(3, f"d{i}") for i in range(20)]
    with caplog.at_level(logging.WARNING):
        split_dialogues(dialogues, 0.2, seed=1)
        without_overlap(dialogues, dialogues[:1])
    assert not [r for r in caplog.records if "repeat another" in r.getMessage()]
    with caplog.at_level(logging.WARNING):
        split_dialogues(dialogues + dialogues[:5] + dialogues[:1], 0.2, seed=1)
        without_overlap(dialogues + dialogues[3:5], dialogues[:1])
    assert [r.getMessage().split(";")[0] for r in caplog.records if "repeat another" in r.getMessage()] == [
        "6 of the 26 dialogues repeat another one (the same turns, and conditions but the first turn's)",
        "2 of the 22 dialogues repeat another one (the same turns, and conditions but the first turn's)",
    ]


def test_dropping_repeats_keeps_the_first_copy_of_each_dialogue_and_holds_out_the_same_ones(caplog):
    dialogues = [_dialogue(3, f"d{i}") for i in range(20)]
    copies = [Dialogue(d.turns, d.source + "#copy") for d in dialogues[:5] + dialogues[:1]]
    corpus = dialogues[:10] + copies + dialogues[10:]
    with caplog.at_level(logging.INFO):
        train, held = split_dialogues(corpus, 0.2, seed=1, drop_repeats=True)
        kept = without_overlap(corpus, dialogues[:1], drop_repeats=True)
    said = [r.getMessage() for r in caplog.records]
    assert train + held != [] and not [d for d in train + held if d.source.endswith("#copy")]
    assert sorted(d.source for d in train + held) == sorted(d.source for d in dialogues)
    every_copy = split_dialogues(corpus, 0.2, seed=1)
    assert held == [d for d in every_copy[1] if not d.source.endswith("#copy")]  # the same dialogues held out
    assert [d.source for d in kept] == [d.source for d in dialogues[1:]]  # order kept, the held-out one gone
    assert said.count("dropped 6 of the 26 dialogues: each repeats an earlier one (the same turns, and conditions but the first turn's)") == 1
    assert "dropped 6 of the 26 training dialogues: each repeats an earlier one (the same turns, and conditions but the first turn's)" in said
    assert not [m for m in said if "repeat another" in m]  # no warning about copies that are gone
    assert first_copies(dialogues + dialogues[2:4], "held-out ") == dialogues


def test_copies_that_read_the_same_to_the_model_stay_on_one_side():
    """The model reads lower-cased tokens: a copy in capitals or with other spacing is the same
    dialogue, and must not be held out while its twin is trained on."""
    dialogues = [_dialogue(3, str(i)) for i in range(30)]
    shouted = [
        Dialogue(tuple(Turn("  ".join(t.text.upper().split()), t.condition) for t in d.turns), d.source + "!")
        for d in dialogues
    ]
    train, held = split_dialogues(dialogues + shouted, 0.2, seed=1)
    assert held and {d.source.rstrip("!") for d in train}.isdisjoint({d.source.rstrip("!") for d in held})
    assert [d.source for d in without_overlap(shouted, dialogues[:2])] == [d.source for d in shouted[2:]]


def test_split_is_deterministic_for_a_seed_and_independent_of_order():
    dialogues = [_dialogue(3, f"d{i}") for i in range(40)]
    first = split_dialogues(dialogues, 0.25, seed=1)
    again = split_dialogues(list(reversed(dialogues)), 0.25, seed=1)
    other = split_dialogues(dialogues, 0.25, seed=2)
    assert {d.source for d in first[1]} == {d.source for d in again[1]}
    assert {d.source for d in first[1]} != {d.source for d in other[1]}
    assert split_dialogues(dialogues, 0.0, seed=1) == (dialogues, [])


def test_split_holds_out_at_least_one_and_never_all():
    two = [_dialogue(2, "a"), _dialogue(2, "b")]
    train, held = split_dialogues(two, 0.01, seed=0)
    assert len(train) == 1 and len(held) == 1
    train, held = split_dialogues(two, 0.99, seed=0)
    assert len(train) == 1 and len(held) == 1


def test_without_overlap_drops_training_copies_of_held_out_dialogues():
    held = [_dialogue(3, "x")]
    train = [_dialogue(3, "a"), Dialogue(held[0].turns, "other-file:7"), _dialogue(2, "b")]
    assert [d.source for d in without_overlap(train, held)] == ["test#a", "test#b"]


@pytest.mark.parametrize("invisible", ["\u200b", "\u200e \u00ad", "\ufeff", "\u2060\u200b"])
def test_a_turn_of_only_invisible_characters_is_refused_in_every_layout(tmp_path, invisible):
    """Not empty to str.strip(), but without a token: a training batch of such contexts
    failed inside TensorFlow ("Size should be >= 0") with a traceback."""
    cakechat = _write(tmp_path / "c.jsonl", json.dumps([{"text": invisible, "condition": "neutral"},
                                                        {"text": "fine, good", "condition": "joy"}]))
    with pytest.raises(DataError) as caught:
        read_cakechat(cakechat)
    assert caught.value.problems == [
        "line 1, turn 1: 'text' holds only invisible characters (format characters such as U+200B), no word"
    ]
    bot = _write(tmp_path / "bot.yml", f'conversations:\n- - "hello"\n  - "{invisible}"\n')
    with pytest.raises(DataError) as caught:
        read_chatterbot(bot)
    assert caught.value.problems == [
        "line 3, conversation 1: a turn holds only invisible characters (format characters such as U+200B), no word"
    ]
    # a word among them is a turn
    read_cakechat(_write(tmp_path / "ok.jsonl", json.dumps([{"text": f"hi{invisible}", "condition": "neutral"},
                                                             {"text": "fine", "condition": "joy"}])))


@pytest.mark.timeout(30)
def test_a_named_pipe_with_a_corpus_name_in_a_folder_is_named_not_skipped(tmp_path):
    """A corpus folder's files left out without a word would go unnoticed: a named pipe was."""
    import os

    _write(tmp_path / "a.jsonl", _cakechat_line(("hi there", "neutral"), ("fine, good", "joy")))
    os.mkfifo(tmp_path / "b.jsonl")
    (tmp_path / "c.jsonl").mkdir()  # a folder is no corpus file
    with pytest.raises(DataError) as caught:
        read_corpus(tmp_path)
    assert caught.value.source == str(tmp_path / "b.jsonl")
    assert caught.value.problems == ["is not a regular file (a device, pipe or socket)"]
    # a .json one too, whose layout is told from its first bytes: opening it waited for good
    os.unlink(tmp_path / "b.jsonl")
    os.mkfifo(tmp_path / "b.json")
    with pytest.raises(DataError) as caught:
        read_corpus(tmp_path)
    assert (caught.value.source, caught.value.problems) == (
        str(tmp_path / "b.json"), ["is not a regular file (a device, pipe or socket)"])


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", b" \n\n"])
def test_an_empty_json_corpus_is_named_empty(tmp_path, content):
    corpus = tmp_path / "chat.json"
    corpus.write_bytes(content)
    with pytest.raises(DataError) as caught:
        read_corpus(corpus)
    assert caught.value.problems == ["empty file: expected a Topical-Chat object of conversations"]


def test_chatterbot_lines_are_counted_as_an_editor_counts_them(tmp_path):
    """PyYAML also breaks lines at U+0085, U+2028 and U+2029: every line after one was named
    one too far on, and a file's second document's problem lost its context."""
    bot = _write(tmp_path / "bot.yml", 'conversations:\n- - "hi\u2028there\u0085you"\n  - "hello"\n- - 3\n')
    with pytest.raises(DataError) as caught:
        read_chatterbot(bot, strict=True)
    assert caught.value.problems == ["line 4, conversation 2: a dialogue needs at least 2 turns, got 1"]
    for newline in ("\r\n", "\r"):  # Windows' and old Macs' line ends
        _write(bot, newline.join(["conversations:", '- - "hi"', '  - "hello"', "- - 3", ""]))
        with pytest.raises(DataError) as caught:
            read_chatterbot(bot)
        assert caught.value.problems == ["line 4, conversation 2: a dialogue needs at least 2 turns, got 1"]
    two = _write(tmp_path / "two.yml", "conversations:\n- - a\n  - b\n---\nconversations: []\n")
    with pytest.raises(DataError) as caught:
        read_chatterbot(two)
    assert caught.value.problems == [
        "line 4: invalid YAML: expected a single document in the stream, but found another document"
    ]


def test_a_condition_with_an_invisible_character_at_an_end_is_the_condition_without_it(tmp_path):
    """"joy\\u200b" (a zero-width space or byte order mark pasted with the name) trained a
    condition of its own that printed as "joy", and a request for it typed "joy" was unknown;
    it is one condition, as one with spaces at its ends is. Joiners inside an emoji stay."""
    from legacy_assistant.responder.modes import known_condition

    technologist = "\U0001f469\u200d\U0001f4bb"
    corpus = _write(
        tmp_path / "c.jsonl",
        _cakechat_line(("hi", "neutral"), ("yay", "joy\u200b")) + "\n"
        + _cakechat_line(("hi", "neutral"), ("great", "\ufeffJoy \u2060")) + "\n"
        + _cakechat_line(("hi", "neutral"), ("code", technologist + "\u200b")) + "\n",
    )
    assert {d.turns[1].condition for d in read_corpus(corpus)} == {"joy", technologist}
    assert known_condition("joy\u200e", ("neutral", "joy")) == "joy"
    assert known_condition("joy", ("neutral", "joy\u200b")) == "joy\u200b"  # a model trained before


def test_spaces_and_invisible_characters_mixed_at_a_condition_end_are_all_stripped(tmp_path):
    """"joy \\u200b \\u200b" (spaces and zero-width spaces one after another) kept "joy \\u200b",
    which printed as "joy" but trained a condition of its own and was not "joy" in a request."""
    from legacy_assistant.responder.modes import fold_condition, known_condition

    corpus = _write(
        tmp_path / "c.jsonl",
        _cakechat_line(("hi", "neutral"), ("yay", "joy \u200b \u200b")) + "\n"
        + _cakechat_line(("hi", "neutral"), ("great", "\u200b \ufeff Joy")) + "\n",
    )
    assert {d.turns[1].condition for d in read_corpus(corpus)} == {"joy"}
    assert known_condition("joy \u200b \u200b", ("neutral", "joy")) == "joy"
    flag = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"
    assert fold_condition(flag + "\u200b \u200b") == flag  # the flag's tag characters stay
    assert fold_condition(" \u200b ") == ""
