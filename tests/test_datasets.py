"""Reading CSV and CLINC150-layout files, and telling the layouts apart."""
import json

import pytest

from legacy_assistant.classifier.datasets import (
    detect_format,
    load_clinc,
    load_csv,
    load_data,
    neutral_response,
    synthesized_intents,
)
from legacy_assistant.errors import DataError, IntentsError
from tests.helpers import TEST_DATA, TINY_INTENTS


def test_csv_reads_text_and_label_columns_in_any_order():
    examples = load_csv(TEST_DATA / "tiny.csv")
    assert len(examples) == 28
    assert examples.texts[5] == "Hello, anyone around?" and examples.labels[5] == "greeting"
    swapped = load_csv(TEST_DATA / "tiny_val.csv")  # header is "label,text"
    assert (swapped.texts[0], swapped.labels[0]) == ("hello there", "greeting")


def test_csv_with_byte_order_mark_and_blank_lines(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufefftext,label\n\nhi,greeting\n\nbye,goodbye\n".encode("utf-8"))
    examples = load_csv(path)
    assert examples.texts == ("hi", "bye") and examples.labels == ("greeting", "goodbye")


def test_a_csv_text_under_two_labels_is_warned_about_with_both_lines(tmp_path, caplog):
    path = tmp_path / "shared.csv"
    path.write_text("text,label\nHi there,greeting\nbye,goodbye\nhi  THERE,smalltalk\nbye,goodbye\n", encoding="utf-8")
    with caplog.at_level("WARNING", logger="legacy_assistant.classifier.datasets"):
        examples = load_csv(path)
    assert len(examples) == 4  # a warning, not a refusal: every row is kept
    warnings = [record.getMessage() for record in caplog.records]
    assert warnings == [
        f"{path}: line 4: text 'hi  THERE' (label 'smalltalk') is also the text of line 2 (label 'greeting'); "
        "the classifier cannot tell them apart"
    ]  # "bye" twice under one label is no conflict


def test_a_long_csv_text_under_two_labels_is_cut_in_its_warning(tmp_path, caplog):
    """A 10,000-character text given under two labels was quoted whole in the warning."""
    path = tmp_path / "long.csv"
    path.write_text(f"text,label\n{'y' * 10000},a\n{'y' * 10000},b\n", encoding="utf-8")
    with caplog.at_level("WARNING", logger="legacy_assistant.classifier.datasets"):
        load_csv(path)
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1 and len(warnings[0]) < 500, [len(w) for w in warnings]
    cut = "'" + "y" * 80 + "'... (10,000 characters)"
    assert f"line 3: text {cut} (label 'b') is also the text of line 2" in warnings[0]


def test_many_shared_csv_texts_are_warned_about_ten_times_then_counted(tmp_path, caplog):
    rows = "".join(f"text {i},a\ntext {i},b\n" for i in range(13))
    path = tmp_path / "many.csv"
    path.write_text("text,label\n" + rows, encoding="utf-8")
    with caplog.at_level("WARNING", logger="legacy_assistant.classifier.datasets"):
        load_csv(path)
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 11 and "line 21: text 'text 9' (label 'b') is also the text of line 20" in warnings[-2]
    assert warnings[-1] == f"{path}: 3 more texts are given under a second label (13 in all)"


def test_bad_csv_rows_are_all_reported_with_file_and_line():
    with pytest.raises(DataError) as caught:
        load_csv(TEST_DATA / "bad.csv")
    message = str(caught.value)
    assert message.startswith(str(TEST_DATA / "bad.csv"))
    assert caught.value.problems == [
        "line 3: expected 2 fields, got 3",
        "line 4: field 'text' is empty",
        "line 5: field 'label' is empty",
    ]


@pytest.mark.parametrize(
    "content, expected",
    [
        ("", "empty file"),
        ("sentence,intent\nhi,greeting\n", "line 1: header ['sentence', 'intent'] has no 'text' or 'label' column"),
        ("text,label\n", "no examples after the header row"),
        # the second column's values would be ignored without a word
        ("text,label,Text\nhi,greet,hello\n", "line 1: header ['text', 'label', 'Text'] has more than one 'text' column"),
        ('text,label\n"unterminated,greeting\n', "line 2: a quote opened in this row is never closed"),
        # a quote left open no longer swallows the rest of the file into one label
        ('text,label\nhi there,greet\nhello,"greet\nbye,bye\nsee you,bye\n', "line 3: a quote opened in this row is never closed"),
        # a record spanning lines is named by the line it starts on
        ('text,label\nhello,greet\n"a\nb\nc",\nbye,bye\n', "line 3: field 'label' is empty"),
        # a field over the csv module's limit is one problem of its line, and the rows after it are read
        ("text,label" + "x" * 140_000 + "\nhi,greet\n", "line 1: field larger than field limit"),
        ("text,label\nhi,greet\n" + "x" * 140_000 + ",greet\nbye,\n",
         "line 3: field larger than field limit (131072)\n  - line 4: field 'label' is empty"),
        # one that spans lines is named once, with its lines, and reading goes on after its last one
        ('text,label\nhi,greet\n"' + "x" * 70_000 + "\n" + "x" * 70_000 + '",greet\nbye,\n',
         "- lines 3-4: field larger than field limit (131072)\n  - line 5: field 'label' is empty"),
        # one whose first line alone is over the limit is named too, not a crash
        ('text,label\nhi,greet\n"' + "x" * 140_000 + '\nmore\nend",greet\nbye,\n',
         "- lines 3-5: field larger than field limit (131072)\n  - line 6: field 'label' is empty"),
        # one whose quote never closes is named as such, and the lines after it are read
        ('text,label\nhi,greet\n"' + "x" * 140_000 + ",greet\nbye,\n",
         "- line 3: a quote opened in this row is never closed\n  - line 4: field 'label' is empty"),
    ],
)
def test_csv_structural_errors(tmp_path, content, expected):
    path = tmp_path / "x.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match="x.csv") as caught:
        load_csv(path)
    assert expected in str(caught.value)


@pytest.mark.parametrize("delimiter", ["\t", ";"])
def test_a_csv_separated_by_tabs_or_semicolons_is_told_its_columns_are_separated_by_commas(tmp_path, delimiter):
    """A tab-separated file, or a spreadsheet's export where the list separator is ';', was told
    only that its header has no 'text' or 'label' column, though it names both."""
    path = tmp_path / "x.csv"
    path.write_text(f"text{delimiter}label\nhi{delimiter}greet\n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        load_csv(path)
    assert caught.value.problems == [
        f"line 1: header {[f'text{delimiter}label']!r} has no 'text' or 'label' column "
        f"(its names are separated by {delimiter!r}: columns are separated by commas)"
    ]


@pytest.mark.parametrize("delimiter", ["\t", ";"])
def test_a_quoted_header_separated_by_tabs_or_semicolons_gets_the_separator_hint(tmp_path, delimiter):
    """A file whose every field is quoted (R's write.table, a spreadsheet export quoting text)
    reads as one column ``text<delimiter>"label"``: its quoted name was not seen, nor the hint given."""
    path = tmp_path / "x.csv"
    path.write_text(f'"text"{delimiter}"label"\n"hi"{delimiter}"greet"\n', encoding="utf-8")
    header = [f'text{delimiter}"label"']  # the csv reader keeps the quotes after the first field's
    with pytest.raises(DataError) as caught:
        load_csv(path)
    assert caught.value.problems == [
        f"line 1: header {header!r} has no 'text' or 'label' column "
        f"(its names are separated by {delimiter!r}: columns are separated by commas)"
    ]


def test_a_header_without_text_and_label_gets_no_separator_hint(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("sentence;intent\nhi;greet\n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        load_csv(path)
    assert caught.value.problems == ["line 1: header ['sentence;intent'] has no 'text' or 'label' column"]


def test_a_long_header_row_is_shown_cut_short(tmp_path):
    """An intents file read with --format csv put its whole first line (all of a minified file)
    into the one problem line."""
    path = tmp_path / "intents.json"
    path.write_text(json.dumps(json.loads(TINY_INTENTS.read_text(encoding="utf-8"))), encoding="utf-8")
    with pytest.raises(DataError) as caught:
        load_data(path, "csv")
    [problem] = caught.value.problems
    assert problem.startswith("line 1: header ['{\"intents\": [{\"tag\"") and problem.endswith(
        "characters) has no 'text' or 'label' column"), problem
    assert len(problem) < 300, problem


def test_csv_quirks_python_reads_still_read(tmp_path):
    """Spacing after a closing quote, doubled quotes, a bare quote in an unquoted field and a
    quoted field across lines: none of them is an open quote."""
    path = tmp_path / "ok.csv"
    path.write_text('text,label\n"hello" ,greet\n"a 5"" screen",tv\n"two\nlines", bye\nmy 5" screen,tv\n',
                    encoding="utf-8")
    examples = load_csv(path)
    assert examples.texts == ("hello", 'a 5" screen', "two\nlines", 'my 5" screen')
    assert examples.labels == ("greet", "tv", "bye", "tv")


class _CountedLines(list):
    """A file's lines that count how many of them are read by index or copied by a slice."""

    read = 0

    def __getitem__(self, key):
        got = super().__getitem__(key)
        type(self).read += len(got) if isinstance(key, slice) else 1
        return got


def test_a_csv_with_a_stray_quote_on_every_row_is_read_again_without_copying_the_rest(tmp_path, monkeypatch):
    """After each stray quote the reader starts again on the next line; it reads on from there
    instead of copying every line after it, so such a file costs each line a few reads, not
    one per stray quote before it."""
    from legacy_assistant.classifier import datasets

    rows = 2000
    path = tmp_path / "quotes.csv"
    path.write_text("text,label\n" + "".join(f'"hi {i},greet\n' for i in range(rows)), encoding="utf-8")
    _CountedLines.read = 0
    real = datasets._physical_lines
    monkeypatch.setattr(datasets, "_physical_lines", lambda content: _CountedLines(real(content)))
    with pytest.raises(DataError) as caught:
        load_csv(path)
    problems = caught.value.problems
    assert len(problems) == rows  # every stray quote is still named, each at its own line
    assert problems[0].startswith("line 2: a quote opened in this row is closed on line 3 by")
    assert problems[-1] == f"line {rows + 1}: a quote opened in this row is never closed"
    assert _CountedLines.read <= 5 * rows


def test_csv_that_is_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(b"text,label\nhi,greeting\ncaf\xe9,order\n")
    with pytest.raises(DataError) as caught:
        load_csv(path)
    assert caught.value.source.endswith("latin.csv")
    assert caught.value.problems[0].startswith("line 3: not UTF-8 text")


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_a_csv_or_intents_file_in_utf16_or_utf32_without_byte_order_mark_is_told_it_is_not_utf8(tmp_path, encoding):
    """ASCII text in UTF-16 or UTF-32 decodes as UTF-8 with NULs between its characters: the CSV's
    header was "['t\\x00e\\x00x\\x00t\\x00...'] has no 'text' column", the intents file's JSON
    "Expecting property name enclosed in double quotes" at column 2."""
    wanted = "not UTF-8 text: a NUL byte among its first characters, as UTF-16 or UTF-32 text"
    csv_file = tmp_path / "wide.csv"
    csv_file.write_bytes("text,label\nhi,greeting\n".encode(encoding))
    intents_file = tmp_path / "wide.json"
    intents_file.write_bytes(json.dumps(json.loads(TINY_INTENTS.read_text(encoding="utf-8"))).encode(encoding))
    for path in (csv_file, intents_file):
        with pytest.raises((DataError, IntentsError)) as caught:
            load_data(path, "csv" if path.suffix == ".csv" else "intents")
        assert caught.value.source == str(path)
        assert len(caught.value.problems) == 1 and caught.value.problems[0].startswith(wanted), caught.value.problems


def test_clinc_splits_include_their_out_of_scope_lists():
    splits = load_clinc(TEST_DATA / "tiny_clinc.json", oos_label="out")
    assert set(splits) == {"train", "val", "test"}
    assert len(splits["train"]) == 24 + 4 and splits["train"].labels[-4:] == ("out",) * 4
    assert len(splits["test"]) == 8 + 3 and splits["test"].labels.count("out") == 3
    assert "oos" not in splits["val"].labels


def test_bad_clinc_entries_name_split_and_index(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({
        "train": [["hi", "greeting"], ["no label"], ["", "greeting"], ["bye", 3]],
        "oos_test": "nope",
        "extra": [],
    }))
    with pytest.raises(DataError) as caught:
        load_clinc(path)
    problems = caught.value.problems
    assert problems[0].startswith("'train'[1]: must be [text, label]")
    assert problems[1] == "'train'[2]: text is empty"
    assert problems[2].startswith("'train'[3]: must be [text, label]")
    assert problems[3] == "'oos_test': must be a list of [text, label] pairs"
    assert "unknown key(s) 'extra'" in problems[4]


@pytest.mark.parametrize("data, problem", [
    ([["hi", "greet"]], "top level must be an object of splits"),
    ({}, "no splits: expected 'train', 'val' or 'test'"),
    ({"train": [["hi", " "]]}, "'train'[0]: label is empty"),
])
def test_a_clinc_file_without_splits_or_labels_is_refused(tmp_path, data, problem):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError) as caught:
        load_clinc(path)
    assert caught.value.problems == [problem]


def test_format_detection(tmp_path):
    assert detect_format(TEST_DATA / "tiny.csv") == "csv"
    assert detect_format(TEST_DATA / "tiny_clinc.json") == "clinc"
    assert detect_format(TINY_INTENTS) == "intents"
    other = tmp_path / "other.json"
    other.write_text('{"rows": []}')
    with pytest.raises(DataError, match="unrecognised layout") as refused:
        detect_format(other)
    assert "a list of intents" not in str(refused.value)
    listed = tmp_path / "listed.json"  # the intents list without its object
    listed.write_text('[{"tag": "greeting", "patterns": ["hi"], "responses": ["hello"]}]')
    with pytest.raises(DataError, match=r'a list of intents goes in an object: \{"intents": \[\.\.\.\]\}'):
        detect_format(listed)
    broken = tmp_path / "broken.json"
    broken.write_text('{"train": [}')
    with pytest.raises(DataError, match="invalid JSON at line 1"):
        detect_format(broken)
    tabs = tmp_path / "sentences.tsv"  # not "invalid JSON": it never claimed to be JSON
    tabs.write_text("text\tlabel\nhi\tgreet\n")
    with pytest.raises(DataError, match="not JSON, and a '.tsv' file is no layout this reads: give a .csv file"):
        detect_format(tabs)


def test_a_repeated_key_is_refused_by_the_reader_of_the_recognised_layout(tmp_path):
    # detection may not hide what kind of file it was: an intents file's error says so
    intents = tmp_path / "intents.json"
    intents.write_text('{"intents": [{"tag": "a", "tag": "b", "patterns": ["hi"], "responses": ["x"]}]}')
    with pytest.raises(IntentsError, match='problem\\(s\\) in intents file:\n.*key "tag" appears twice'):
        load_data(intents)
    clinc = tmp_path / "clinc.json"
    clinc.write_text('{"train": [["hi", "greet"]], "train": []}')
    with pytest.raises(DataError, match='problem\\(s\\) in data file:\n.*key "train" appears twice'):
        load_data(clinc)


def test_load_data_splits_by_format():
    intents = load_data(TINY_INTENTS)
    assert intents.format == "intents" and intents.intents is not None
    assert intents.split("test") == intents.split("train")  # one split: every pattern
    clinc = load_data(TEST_DATA / "tiny_clinc.json")
    assert clinc.intents is None
    with pytest.raises(DataError, match="no split 'dev'"):
        clinc.split("dev")


def test_synthesized_intents_leave_out_of_scope_to_the_fallback():
    intents = synthesized_intents(["b", "a", "oos", "a"], "oos", "x.csv")
    assert intents.tags == ["a", "b"]
    assert intents["a"].responses == (neutral_response("a"),)
    assert "'a'" in neutral_response("a")


def test_csv_labels_that_differ_only_in_case_or_unicode_form_are_refused(tmp_path):
    """'Bye'/'bye' and NFC/NFD 'café' would each train two classes, one of them never predicted."""
    path = tmp_path / "v.csv"
    nfc, nfd = "caf\u00e9", "cafe\u0301"
    path.write_text(f"text,label\nhi,{nfd}\nhello,{nfc}\nbye,bye\nsee you,Bye\nlater,bye\n", encoding="utf-8")
    with pytest.raises(DataError, match="v.csv") as caught:
        load_csv(path)
    assert caught.value.problems == [
        "line 3: field 'label' 'caf\\xe9' looks the same as 'cafe\\u0301' (line 2); "
        "labels may not differ only in case, Unicode form or invisible format characters",
        "line 5: field 'label' 'Bye' looks the same as 'bye' (line 4); "
        "labels may not differ only in case, Unicode form or invisible format characters",
    ]


def test_clinc_labels_that_differ_only_in_case_or_unicode_form_are_refused(tmp_path):
    """The rule holds across splits, and the out-of-scope lists join under the out-of-scope label."""
    path = tmp_path / "c.json"
    path.write_text(json.dumps({
        "train": [["hi", "greet"], ["bye", "bye"], ["what", "OOS"]],
        "oos_train": [["weather?", "x"]],
        "test": [["hello", "Greet"], ["ciao", "bye"]],
    }))
    with pytest.raises(DataError) as caught:
        load_clinc(path, oos_label="oos")
    assert caught.value.problems == [
        "'oos_train'[0]: out-of-scope label 'oos' looks the same as 'OOS' ('train'[2]); "
        "labels may not differ only in case, Unicode form or invisible format characters",
        "'test'[0]: label 'Greet' looks the same as 'greet' ('train'[0]); "
        "labels may not differ only in case, Unicode form or invisible format characters",
    ]
    # the same labels, spelt alike everywhere, still load
    path.write_text(json.dumps({"train": [["hi", "greet"]], "test": [["hello", "greet"]]}))
    assert load_clinc(path)["test"].labels == ("greet",)


def test_a_label_with_a_control_character_is_refused_as_a_tag_would_be():
    from legacy_assistant.classifier.datasets import label_problem

    assert label_problem("a\nb") == r"holds a control character ('\n'): a name is one line of text"
    assert label_problem("a b") is None


@pytest.mark.parametrize("label", ["greet\u200b", "\ufeffgreet", "greet\u200e", "greet \u2060", "greet\u00ad"])
def test_a_label_with_an_invisible_format_character_at_an_end_is_refused_and_shown_escaped(tmp_path, label):
    """As a tag would be: it printed as the label without it, and did not equal it."""
    from legacy_assistant.classifier.datasets import label_problem

    problem = label_problem(label)
    assert problem is not None and problem.startswith(f"{ascii(label)} ") and "invisible format character" in problem
    csv_path = tmp_path / "d.csv"
    csv_path.write_text(f"text,label\nhello,greet\nhi,{label}\n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        load_csv(csv_path)
    assert str(caught.value).startswith(str(csv_path))
    assert caught.value.problems == [f"line 3: field 'label': {problem}"]
    clinc_path = tmp_path / "c.json"
    clinc_path.write_text(json.dumps({"train": [["hello", "greet"], ["hi", label]]}), encoding="utf-8")
    with pytest.raises(DataError) as caught:
        load_clinc(clinc_path)
    assert caught.value.problems == [f"'train'[1]: label: {problem}"]


def test_a_label_of_invisible_characters_only_is_shown_escaped():
    from legacy_assistant.classifier.datasets import label_problem

    assert "'\\u200b\\u2060'" in label_problem("\u200b\u2060")


@pytest.mark.parametrize(
    "label",
    [
        "\U0001f469\u200d\U0001f4bb",  # joiners inside an emoji
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # a ZWNJ inside a Persian word
        "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",  # Scotland: ends with a tag
    ],
)
def test_joiners_inside_a_label_are_part_of_it(tmp_path, label):
    path = tmp_path / "d.csv"
    path.write_text(f"text,label\nhello,greet\nhi,{label}\n", encoding="utf-8")
    assert load_csv(path).labels == ("greet", label)


def test_a_label_that_two_classes_print_as_is_not_given_to_either():
    """A model of "greet\\u200b" and "greet\\u2060" (both print as "greet"): data labelled "greet"
    was scored as whichever came last, silently; it is left as it is, for evaluate to refuse as
    a look-alike of both."""
    from legacy_assistant.classifier.datasets import Examples, as_printed_classes, lookalike_label_problems

    examples = Examples(texts=("hi", "bye"), labels=("greet", "bye"), places=(None, None))
    classes = ["greet\u200b", "greet\u2060", "bye"]
    assert as_printed_classes(examples, classes).labels == ("greet", "bye")
    assert lookalike_label_problems(as_printed_classes(examples, classes), classes, "oos", "model")
    assert as_printed_classes(examples, ["greet\u200b", "bye"]).labels == ("greet\u200b", "bye")
