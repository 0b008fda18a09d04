"""Files a person names as input (data, intents, sentences, word lists, settings): a named pipe
or a device is refused at once instead of waited on, and a file in UTF-16 or with a number
Python will not convert is named for what it is."""

import json
import os
import threading

import pytest

from legacy_assistant.classifier.classic.string_lists import read_string_list
from legacy_assistant.classifier.datasets import detect_format, load_clinc, load_csv, load_data
from legacy_assistant.classifier.golden import read_sentences
from legacy_assistant.classifier.intents import load_intents
from legacy_assistant.cli import main
from legacy_assistant.common.input_files import NotRegularFileError, read_input_bytes
from legacy_assistant.common.jsonfile import read_json_file
from legacy_assistant.errors import AssistantError

WAIT_SECONDS = 20.0


def _returns(call):
    """What ``call()`` returns or raises, run in a thread: a call that blocks (on a pipe no
    process writes to) fails the test after :data:`WAIT_SECONDS` instead of hanging it."""
    outcome = {}

    def run():
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(WAIT_SECONDS)
    return thread.is_alive(), outcome


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "data.json"
    os.mkfifo(path)
    yield path
    # a call that blocked in open(): give it a writer, so that its thread ends
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


READERS = [
    ("read_input_bytes", read_input_bytes),
    ("read_json_file", lambda p: read_json_file(p, AssistantError)),
    ("load_intents", load_intents),
    ("load_data", load_data),
    ("detect_format", detect_format),
    ("load_csv", load_csv),
    ("load_clinc", load_clinc),
    ("read_sentences", read_sentences),
    ("read_string_list", lambda p: read_string_list(p, "words")),
]


@pytest.mark.parametrize("read", [reader for _, reader in READERS], ids=[name for name, _ in READERS])
def test_a_named_pipe_is_refused_at_once(fifo, read):
    blocked, outcome = _returns(lambda: read(fifo))
    assert not blocked, "the reader waited for a writer on the pipe"
    error = outcome.get("error")
    assert isinstance(error, (AssistantError, NotRegularFileError)), outcome
    assert "not a regular file (a device, pipe or socket)" in str(error)


def test_a_device_is_refused_not_read_for_ever(tmp_path):
    with pytest.raises(NotRegularFileError):
        read_input_bytes("/dev/zero")
    with pytest.raises(IsADirectoryError):
        read_input_bytes(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_input_bytes(tmp_path / "absent")
    (tmp_path / "plain").write_bytes(b"\x00text")
    assert read_input_bytes(tmp_path / "plain") == b"\x00text"


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "{fifo}", "--out", "{tmp}/model"],
        ["golden", "{model}", "--sentences", "{fifo}", "--golden", "{tmp}/g.json"],
        ["evaluate", "{model}", "{fifo}"],
    ],
    ids=["train", "golden", "evaluate"],
)
def test_commands_given_a_named_pipe_say_so(fifo, tmp_path, tiny_model_dir, capsys, argv):
    filled = [a.format(fifo=fifo, tmp=tmp_path, model=tiny_model_dir) for a in argv]
    blocked, outcome = _returns(lambda: main(filled))
    assert not blocked, "the command waited for a writer on the pipe"
    assert outcome.get("value", outcome.get("error")) not in (0, None), outcome
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[0].startswith(f"error: {fifo}") and "not a regular file" in "\n".join(err), err


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_an_intents_or_clinc_file_in_a_wide_encoding_is_named_as_such(tmp_path, encoding):
    intents = tmp_path / "intents.json"
    intents.write_text(json.dumps({"intents": [{"tag": "hi", "patterns": ["hello"], "responses": ["Hi"]}]}),
                       encoding=encoding)
    clinc = tmp_path / "clinc.json"
    clinc.write_text(json.dumps({"train": [["hello", "hi"]]}), encoding=encoding)
    sentences = tmp_path / "sentences.txt"
    sentences.write_text("hello\n", encoding=encoding)
    words = tmp_path / "words.json"
    words.write_text('["hello"]', encoding=encoding)
    table = tmp_path / "x.csv"
    table.write_text("text,label\nhello,hi\n", encoding=encoding)
    wanted = f"not UTF-8 text: it starts with a {encoding.upper()} byte order mark (save it as UTF-8)"
    for call in (lambda: load_intents(intents), lambda: load_data(clinc), lambda: read_sentences(sentences),
                 lambda: load_csv(table)):
        with pytest.raises(AssistantError) as caught:
            call()
        assert wanted in str(caught.value)
    with pytest.raises(AssistantError, match="neither JSON nor UTF-8 text|byte order mark"):
        read_string_list(words, "words")


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le"])
def test_a_words_file_or_corpus_in_a_wide_encoding_without_a_byte_order_mark_is_named_as_such(tmp_path, encoding):
    """Without its byte order mark, ASCII text in UTF-16 is valid UTF-8 holding NULs: a words
    file was read as words such as "h\\x00i\\x00", and a corpus's lines as broken JSON."""
    from legacy_assistant.responder.corpora import read_corpus

    words = tmp_path / "words.txt"
    words.write_text("hello\nthere\n", encoding=encoding)
    cakechat = tmp_path / "c.jsonl"
    cakechat.write_text('[{"text": "a", "condition": "neutral"}, {"text": "b", "condition": "neutral"}]\n',
                        encoding=encoding)
    chatterbot = tmp_path / "b.yml"
    chatterbot.write_text("conversations:\n- - hi\n  - hello\n", encoding=encoding)
    wanted = "not UTF-8 text: a NUL byte among its first characters, as UTF-16 or UTF-32 text saved"
    with pytest.raises(AssistantError, match=wanted):
        read_string_list(words, "words")
    for corpus in (cakechat, chatterbot):
        with pytest.raises(AssistantError) as caught:
            read_corpus(corpus)
        assert [problem[:len(wanted)] for problem in caught.value.problems] == [wanted], caught.value.problems


def test_a_number_too_long_for_python_is_named_with_its_line_and_column(tmp_path):
    path = tmp_path / "intents.json"
    path.write_text('{"intents": [\n  {"tag": "hi", "n": ' + "7" * 5000 + "}]}", encoding="utf-8")
    with pytest.raises(AssistantError) as caught:
        load_intents(path)
    message = str(caught.value)
    assert "a number of 5000 digits at line 2, column 22 (at most 4300)" in message, message
    assert "int_max_str_digits" not in message


@pytest.mark.parametrize(
    ("text", "where"),
    [
        # the outer object repeats a key; the objects inside it are sound
        ('{"a": {"b": 1},\n "c": [{"d": 2}], "a": 3}', '(the one at line 1, column 1)'),
        # the innermost object that repeats one is named, not the objects around it
        ('[1,\n  {"x": {"tag": "t", "y": 1, "y": 2}, "x": 0}]', '(the one at line 2, column 9, with "tag": "t")'),
    ],
)
def test_an_object_that_repeats_a_key_is_named_by_where_it_starts(tmp_path, text, where):
    path = tmp_path / "data.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AssistantError) as caught:
        read_json_file(path, AssistantError)
    assert f"appears twice in one object {where}: only one value would be kept" in str(caught.value)
