"""Labelled sentences from the three file layouts that ``train`` and ``evaluate`` read.

* **intents** JSON (``{"intents": [...]}``, see :mod:`legacy_assistant.classifier.intents`): every pattern
  is an example of its intent's tag; the file also brings the dialogue rules.
* **CSV** with a header row naming a ``text`` and a ``label`` column (other columns are
  ignored), one example per row. A bad row is reported with its line number.
* **CLINC150** JSON: an object whose keys are splits, ``train``, ``val``, ``test`` and the
  out-of-scope lists ``oos_train``, ``oos_val``, ``oos_test``, each a list of ``[text, label]``.
  The out-of-scope lists join their split with the out-of-scope label. A bad entry is reported
  with its split and index.

CSV and CLINC150 files bring no responses: :func:`synthesized_intents` gives each label one
neutral response that names it (see docs/CLASSIFIER.md), and out-of-scope sentences are left to the
fallback.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from legacy_assistant.classifier.intents import (
    DEFAULT_OOS_LABEL,
    FALLBACK_TAG,
    SHARED_TEXT_WARNINGS,
    Intent,
    IntentSet,
    _has_lone_surrogate,
    _looks_like_fallback,
    control_character_problem,
    format_character_problem,
    load_intents,
    looks_of,
)
from legacy_assistant.common.fields import shown_text
from legacy_assistant.common.input_files import NotUtf8Error, input_text, read_input_bytes, read_problem
from legacy_assistant.common.jsonfile import read_json_file
from legacy_assistant.errors import DataError
from legacy_assistant.text.processing import folded, strip_format_characters, visible_text

log = logging.getLogger(__name__)

FORMATS = ("intents", "csv", "clinc")
CLINC_SPLITS = ("train", "val", "test")
ALL = "all"  # the one split of an intents or CSV file
HEADER_SHOWN = 200  # characters of a CSV header row a problem shows


@dataclass(frozen=True)
class Examples:
    """Parallel ``texts`` and ``labels``; ``places`` (when known) says where each came from in
    its file (``line 4``, ``'val'[12]``, ``intent #2 ('greeting')``), for messages."""

    texts: tuple[str, ...]
    labels: tuple[str, ...]
    places: tuple[str, ...] = field(default=(), compare=False)

    def __len__(self) -> int:
        return len(self.texts)

    def __add__(self, other: Examples) -> Examples:
        places = self.places + other.places if self.places and other.places else ()
        return Examples(self.texts + other.texts, self.labels + other.labels, places)

    def place(self, index: int) -> str:
        """Where example ``index`` came from, or its position when not known."""
        return self.places[index] if index < len(self.places) else f"example #{index}"


@dataclass(frozen=True)
class DataFile:
    """A loaded data file.

    Attributes:
        path: where it came from.
        format: one of :data:`FORMATS`.
        splits: ``{"all": ...}`` for intents and CSV files; ``train``/``val``/``test`` (those
            present) for CLINC150 files, out-of-scope sentences included under the OOS label.
        intents: the intents file's dialogue rules (``None`` for CSV and CLINC150).
    """

    path: str
    format: str
    splits: dict[str, Examples]
    intents: IntentSet | None = None

    def split(self, name: str) -> Examples:
        """Examples of split ``name``; intents and CSV files have only ``all``, which any name
        selects (their examples are all held out or all for training, as the caller decides)."""
        if self.format != "clinc":
            return self.splits[ALL]
        if name not in self.splits:
            known = ", ".join(self.splits) or "none"
            raise DataError(self.path, [f"no split {name!r} in this file (it has: {known})"])
        return self.splits[name]


def detect_format(path: str | Path) -> str:
    """``csv`` for a ``.csv`` name, otherwise look inside the JSON for ``intents`` or splits."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return "csv"
    try:
        data = _read_json(path)
    except DataError:
        # A file that only repeats a key is still recognisable: its own reader then refuses it
        # in its own words (an intents file's problems are named as such).
        data = _json_ignoring_repeats(path)
        if data is None and path.suffix.lower() not in ("", ".json") and path.is_file():
            # a .tsv or .txt read as JSON would be "invalid JSON at line 1": say what is read
            raise DataError(
                str(path),
                [
                    f"not JSON, and a {path.suffix!r} file is no layout this reads: give a .csv file "
                    "('text' and 'label' columns) or a JSON file (an intents file or the CLINC150 layout), "
                    "or name the layout with --format"
                ],
            ) from None
        if data is None:
            raise
    if isinstance(data, dict) and "intents" in data:
        return "intents"
    if isinstance(data, dict) and any(key in data for key in (*CLINC_SPLITS, *(f"oos_{s}" for s in CLINC_SPLITS))):
        return "clinc"
    # a list of intents, as some tutorials' files hold: say how the format wants it
    wrapped = ' (a list of intents goes in an object: {"intents": [...]})' if _looks_like_intents(data) else ""
    raise DataError(
        str(path),
        [
            "unrecognised layout: expected an object with an 'intents' list, CLINC150 splits "
            f"('train', 'val', 'test', 'oos_*'), or a .csv file with 'text' and 'label' columns{wrapped}"
        ],
    )


def _looks_like_intents(data: Any) -> bool:
    """Whether ``data`` is a non-empty list whose first item is an object with a tag."""
    return (
        isinstance(data, list)
        and bool(data)
        and isinstance(data[0], dict)
        and ("tag" in data[0] or "intent" in data[0])
    )


def load_data(
    path: str | Path, fmt: str = "auto", oos_label: str = DEFAULT_OOS_LABEL, held_out: bool = False
) -> DataFile:
    """Read ``path`` in ``fmt`` (one of :data:`FORMATS`, or ``auto`` to detect it). ``held_out``:
    validation or evaluation data, read for its sentences alone (an intents file's answers and
    rules are not needed: :func:`~legacy_assistant.classifier.intents.parse_intents`)."""
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt == "intents":
        intents = load_intents(path, oos_label, held_out=held_out)
        texts, tags = intents.examples()
        places = tuple(
            f"intent #{index} ({intent.tag!r}) field 'patterns'[{position}]"
            for index, intent in enumerate(intents.intents)
            for position in range(len(intent.patterns))
        )
        return DataFile(str(path), fmt, {ALL: Examples(tuple(texts), tuple(tags), places)}, intents)
    if fmt == "csv":
        return DataFile(str(path), fmt, {ALL: load_csv(path, oos_label)})
    if fmt == "clinc":
        return DataFile(str(path), fmt, load_clinc(path, oos_label))
    raise DataError(str(path), [f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)} or auto"])


def load_csv(path: str | Path, oos_label: str = DEFAULT_OOS_LABEL) -> Examples:
    """Rows of a CSV file with ``text`` and ``label`` columns; every bad row is reported.

    Rows are read by Python's csv reader. A quoted field that spans lines is checked for a
    stray quote that swallowed the rows after it: a quote never closed, one closed by a ``"``
    that a delimiter or line end does not follow (``"hi,greet`` ... ``my 15" tv,support``),
    or one whose every line but the last reads as a whole row of its own. Each is reported at
    the line it opens on, and reading goes on from the next line, so the rows it took in are
    checked too."""
    source = str(path)
    try:
        content = input_text(read_input_bytes(path))
    except OSError as exc:
        raise DataError(source, [read_problem(path, exc)]) from None
    except NotUtf8Error as exc:
        raise DataError(source, [str(exc)]) from None
    problems: list[str] = []
    texts: list[str] = []
    labels: list[str] = []
    places: list[str] = []
    looks: dict[str, tuple[str, str]] = {}  # label folded to its look -> (the label, where it came first)
    lines = _physical_lines(content)
    reader = csv.reader(iter(lines))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise DataError(source, [f"line 1: {exc}"]) from None
    if header is None:
        raise DataError(source, ["empty file: expected a header row with 'text' and 'label'"])
    names = [name.strip().lower() for name in header]
    missing = [name for name in ("text", "label") if name not in names]
    if missing:
        raise DataError(
            source,
            [
                f"line 1: header {_shown_header(header)} has no {' or '.join(repr(m) for m in missing)} column"
                f"{_delimiter_hint(header)}"
            ],
        )
    twice = [name for name in ("text", "label") if names.count(name) > 1]
    if twice:
        raise DataError(
            source,
            [f"line 1: header {_shown_header(header)} has more than one {' and '.join(map(repr, twice))} column"],
        )
    text_col, label_col = names.index("text"), names.index("label")
    offset = 0  # lines before the ones the reader was given (it restarts after a stray quote)
    while True:
        start = offset + reader.line_num + 1  # the line the record being read starts on
        try:
            row = next(reader, None)
        except csv.Error as exc:  # a field over the csv module's size limit
            # The reader stopped inside the record: read on after its last line, or its other
            # lines are read as rows and the record named again. A quote that never closes, or
            # closes wrongly, is told as such, and reading goes on from the next line.
            span = _record_lines(lines, start - 1)
            stray = _stray_quote(lines[start - 1 : start - 1 + span], start, len(header), label_col) if span else None
            if span is None:
                problems.append(f"line {start}: a quote opened in this row is never closed")
            elif stray:
                problems.append(f"line {start}: {stray}")
            else:
                where = f"line {start}" if span == 1 else f"lines {start}-{start + span - 1}"
                problems.append(f"{where}: {exc}")
            offset = start if span is None or stray else start - 1 + span
            reader = csv.reader(_lines_from(lines, offset))
            continue
        if row is None:
            break
        end = offset + reader.line_num
        stray = _stray_quote(lines[start - 1 : end], start, len(header), label_col)
        if stray:
            problems.append(f"line {start}: {stray}")
            offset = start  # read on from the next line: the rows the quote took in are checked too
            reader = csv.reader(_lines_from(lines, offset))
            continue
        if not row or all(not cell.strip() for cell in row):
            continue
        where = f"line {start}"
        if len(row) != len(header):
            problems.append(f"{where}: expected {len(header)} fields, got {len(row)}")
            continue
        text, label = row[text_col].strip(), row[label_col].strip()
        before = len(problems)
        if not text:
            problems.append(f"{where}: field 'text' is empty")
        else:
            _check_text(text, where, "field 'text'", problems)
        if not label:
            problems.append(f"{where}: field 'label' is empty")
        else:
            _check_label(label, where, "field 'label'", oos_label, looks, problems)
        if len(problems) == before:
            texts.append(text)
            labels.append(label)
            places.append(where)
    if problems:
        raise DataError(source, problems)
    if not texts:
        raise DataError(source, ["no examples after the header row"])
    _warn_shared_texts(texts, labels, places, source)
    return Examples(tuple(texts), tuple(labels), tuple(places))


def _shown_header(header: Sequence[str]) -> str:
    """The header row as a problem shows it: a JSON file read with ``--format csv`` (or a file of
    one long line) put all of its first line, tens of kilobytes, into the one problem line."""
    shown = repr(list(header))
    if len(shown) <= HEADER_SHOWN:
        return shown
    return f"{shown[:HEADER_SHOWN]}... ({len(header)} fields, {sum(map(len, header))} characters)"


def _delimiter_hint(header: Sequence[str]) -> str:
    """What to add when the header names 'text' and 'label' apart by a tab or a semicolon (a
    tab-separated file, or a spreadsheet's export in a locale whose list separator is ';'): read
    as one comma-separated column, it was told it had neither. Names may be quoted (every field
    quoted, as R's write.table writes them): the csv reader, splitting at commas, kept the quotes."""
    for delimiter in ("\t", ";", "|"):
        names = [name.strip().strip('"').strip().lower() for cell in header for name in cell.split(delimiter)]
        if any(delimiter in cell for cell in header) and "text" in names and "label" in names:
            return f" (its names are separated by {delimiter!r}: columns are separated by commas)"
    return ""


def _physical_lines(content: str) -> list[str]:
    """The file's physical lines, ends kept, as the csv reader sees them."""
    return list(io.StringIO(content, newline=""))


def _lines_from(lines: Sequence[str], first: int) -> Iterator[str]:
    """``lines[first:]`` one by one, without copying them. The reader starts again after every
    stray quote: copying the rest of the file each time made a file with a stray quote on each
    row take time quadratic in its rows."""
    return map(lines.__getitem__, range(first, len(lines)))


def _warn_shared_texts(texts: Sequence[str], labels: Sequence[str], places: Sequence[str], source: str) -> None:
    """Log a warning for each text given under a second label (compared case-, space- and
    Unicode-form-insensitively, as intents files' shared patterns are): the classifier is taught two
    answers for one text, and neither wins. The same text twice under one label is no conflict."""
    first: dict[str, int] = {}  # folded text -> the example that gave it first
    warned = 0
    for index, (text, label) in enumerate(zip(texts, labels)):
        earlier = first.setdefault(folded(text), index)
        if labels[earlier] == label:
            continue
        warned += 1
        if warned <= SHARED_TEXT_WARNINGS:
            log.warning(
                "%s: %s: text %s (label %r) is also the text of %s (label %r); the classifier cannot tell them apart",
                source,
                places[index],
                shown_text(text),
                label,
                places[earlier],
                labels[earlier],
            )
    if warned > SHARED_TEXT_WARNINGS:
        log.warning(
            "%s: %d more texts are given under a second label (%d in all)",
            source,
            warned - SHARED_TEXT_WARNINGS,
            warned,
        )


def _stray_quote(lines: Sequence[str], start: int, columns: int, label_col: int) -> str | None:
    """What is wrong with a record's quoting (its physical ``lines``, the first being line
    ``start``), or ``None``. Quotes are followed as Python's csv reader follows them: only a
    quote that starts a field opens one (``my 15" tv`` holds a plain character), ``""`` inside
    a quoted field is a quote. A quoted field on one line is left alone whatever follows its
    closing quote (``"hello" ,greet`` reads as ``hello ``); one that spans lines is refused
    when its quote is never closed, when its closing quote is followed by neither a delimiter
    nor a line end, or when every line of it but the last reads as a whole row (as many
    fields as the header, a label without spaces): a real text almost never does either."""
    state = "start"
    opened, column = 0, 0  # where the quoted field being read opened: line (in ``lines``) and character
    for number, line in enumerate(lines):
        for position, char in enumerate(line):
            if state == "quoted":
                if char == '"':
                    state = "quote"
                continue
            if state == "quote":  # a quote seen in a quoted field: doubled, or its end
                if char == '"':
                    state = "quoted"
                    continue
                if number > opened:
                    if char not in ",\r\n":
                        return (
                            f"a quote opened in this row is closed on line {start + number} by a '\"' followed by "
                            f"{char!r}, not by ',' or the line end: it took lines {start}-{start + number} into one "
                            "field (a quote inside a text is doubled in a quoted field, left as it is in an "
                            "unquoted one)"
                        )
                    swallowed = _swallowed_rows(lines, (opened, column), (number, position), columns, label_col)
                    if swallowed:
                        return f"a quote opened in this row runs to line {start + number}, {swallowed}"
                state = "start" if char in ",\r\n" else "field"
            elif state == "start":
                if char == '"':
                    state, opened, column = "quoted", number, position
                elif char not in ",\r\n":
                    state = "field"
            elif char in ",\r\n":  # in an unquoted field
                state = "start"
    if state == "quoted":
        return "a quote opened in this row is never closed"
    if state == "quote" and len(lines) - 1 > opened:  # closed by the file's last character
        swallowed = _swallowed_rows(lines, (opened, column), (len(lines) - 1, len(lines[-1])), columns, label_col)
        if swallowed:
            return f"a quote opened in this row runs to line {start + len(lines) - 1}, {swallowed}"
    return None


def _record_lines(lines: Sequence[str], first: int) -> int | None:
    """How many of ``lines`` the record that starts at ``lines[first]`` spans, its quotes followed
    as Python's csv reader follows them (see :func:`_stray_quote`); ``None`` when a quote it opens
    is never closed."""
    state = "start"
    for count, line in enumerate(_lines_from(lines, first), start=1):
        for char in line:
            if state == "quoted":
                if char == '"':
                    state = "quote"
            elif state == "quote":  # doubled, or the end of the quoted field
                state = "quoted" if char == '"' else "start" if char in ",\r\n" else "field"
            elif state == "start":
                if char == '"':
                    state = "quoted"
                elif char not in ",\r\n":
                    state = "field"
            elif char in ",\r\n":  # in an unquoted field
                state = "start"
        if state != "quoted":
            return count
    return None


def _swallowed_rows(
    lines: Sequence[str], opened: tuple[int, int], closed: tuple[int, int], columns: int, label_col: int
) -> str | None:
    """What is wrong, said after where the field ends, when the quoted field from ``opened`` to just
    before ``closed`` (each a line of ``lines`` and a character: the opening quote, the one
    after the closing quote) spans lines every one of which but the last reads as a row of
    ``columns`` fields whose label holds one word: a row-merging stray quote, as a real text
    almost never looks like that. ``None`` otherwise."""
    (first, column), (last, position) = opened, closed
    text = lines[first][column + 1 :] + "".join(lines[first + 1 : last]) + lines[last][: position - 1]
    parts = text.splitlines()
    whole = parts[:-1]
    if not whole:
        return None
    for part in whole:
        try:
            cells = next(csv.reader([part]), [])
        except csv.Error:  # a line holding a field over the csv module's size limit: no row
            return None
        if len(cells) != columns or len(cells[label_col].split()) != 1 or not "".join(cells).strip():
            return None
    return (
        "taking in lines that read as rows of their own "
        f"(such as {whole[0]!r}): a quote left open by mistake? (a quote inside a text is doubled in a quoted "
        "field, left as it is in an unquoted one)"
    )


def load_clinc(path: str | Path, oos_label: str = DEFAULT_OOS_LABEL) -> dict[str, Examples]:
    """Splits of a CLINC150-layout file, each with its ``oos_<split>`` list appended."""
    source = str(path)
    data = _read_json(path)
    if not isinstance(data, dict):
        raise DataError(source, ["top level must be an object of splits"])
    problems: list[str] = []
    splits: dict[str, Examples] = {}
    looks: dict[str, tuple[str, str]] = {}  # shared by every split: a label is one class in all of them
    # with out-of-scope lists, the look-alike check across splits names a look-alike of their label
    has_oos = any(f"oos_{split}" in data for split in CLINC_SPLITS)
    for split in CLINC_SPLITS:
        parts = []
        for key, relabel in ((split, None), (f"oos_{split}", oos_label)):
            if key in data:
                parts.append(_pairs(data[key], key, relabel, None if has_oos else oos_label, problems, looks))
        if parts:
            examples = parts[0]
            for part in parts[1:]:
                examples = examples + part
            splits[split] = examples
    _check_oos_collision(data, oos_label, problems)
    unknown = sorted(set(data) - set(CLINC_SPLITS) - {f"oos_{s}" for s in CLINC_SPLITS})
    if unknown:
        problems.append(f"unknown key(s) {', '.join(map(repr, unknown))}; expected {', '.join(CLINC_SPLITS)} and oos_*")
    if problems:
        raise DataError(source, problems)
    if not splits:
        raise DataError(source, ["no splits: expected 'train', 'val' or 'test'"])
    return splits


def _check_oos_collision(data: dict, oos_label: str, problems: list[str]) -> None:
    """Refuse an out-of-scope label that is also an in-scope label of the file when the
    ``oos_*`` lists do not carry it themselves (``--oos-label alarm``): the lists would join
    that intent and its sentences would count as out of scope. The first in-scope entry
    carrying it is named."""
    oos_lists = [data[f"oos_{s}"] for s in CLINC_SPLITS if isinstance(data.get(f"oos_{s}"), list)]
    if not any(oos_lists):
        return  # no out-of-scope lists: the label names which in-scope entries are out of scope
    own = {entry[1].strip() for entries in oos_lists for entry in entries if _is_pair(entry)}
    if oos_label in own:
        return  # the file's own out-of-scope label: entries carrying it agree with the lists
    for split in CLINC_SPLITS:
        entries = data.get(split)
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            if _is_pair(entry) and entry[1].strip() == oos_label:
                shown = ", ".join(map(repr, sorted(own))) or "none"
                problems.append(
                    f"{split!r}[{index}]: label {oos_label!r} is an in-scope intent of this file, yet it is the "
                    f"out-of-scope label (--oos-label): the 'oos_*' lists (labelled {shown}) would join it and its "
                    "sentences would count as out of scope; give another --oos-label"
                )
                return


def _is_pair(entry: Any) -> bool:
    return isinstance(entry, list) and len(entry) == 2 and all(isinstance(value, str) for value in entry)


def _pairs(
    entries: Any,
    key: str,
    relabel: str | None,
    oos_label: str | None,
    problems: list[str],
    looks: dict[str, tuple[str, str]],
) -> Examples:
    if not isinstance(entries, list):
        problems.append(f"{key!r}: must be a list of [text, label] pairs")
        return Examples((), ())
    texts: list[str] = []
    labels: list[str] = []
    places: list[str] = []
    for index, entry in enumerate(entries):
        where = f"{key!r}[{index}]"
        if not _is_pair(entry):
            problems.append(f"{where}: must be [text, label], two strings, got {json.dumps(entry)[:80]}")
            continue
        text, label = entry[0].strip(), entry[1].strip()
        if not text:
            problems.append(f"{where}: text is empty")
            continue
        if not label and relabel is None:
            problems.append(f"{where}: label is empty")
            continue
        before = len(problems)
        _check_text(text, where, "text", problems)
        if relabel is None:
            _check_label(label, where, "label", oos_label, looks, problems)
        else:
            label = relabel
            _check_look(label, where, "out-of-scope label", looks, problems)
        if len(problems) == before:
            texts.append(text)
            labels.append(label)
            places.append(where)
    return Examples(tuple(texts), tuple(labels), tuple(places))


def _check_text(text: str, where: str, what: str, problems: list[str]) -> None:
    """The rules intents files apply to patterns: valid Unicode, not only invisible characters."""
    if _has_lone_surrogate(text):
        problems.append(f"{where}: {what}: is not valid Unicode text (a lone surrogate escape)")
    elif not visible_text(text):
        problems.append(
            f"{where}: {what}: is empty once invisible format characters (such as a zero-width space) are removed"
        )


def _check_label(
    label: str, where: str, what: str, oos_label: str | None, looks: dict[str, tuple[str, str]], problems: list[str]
) -> None:
    """The rules intents files apply to tags, then the look-alike check (:func:`_check_look`)."""
    problem = label_problem(label, oos_label)
    if problem:
        problems.append(f"{where}: {what}: {problem}")
    else:
        _check_look(label, where, what, looks, problems)


def label_problem(label: str, oos_label: str | None = None) -> str | None:
    """What keeps ``label`` (of a CSV or CLINC150 file) from naming a class, by the rules
    intents files apply to tags, or ``None``: a lone surrogate escape, only invisible format
    characters, the reserved fallback tag or a look-alike of it (the label's neutral answer
    would replace the fallback's), or a look-alike of the out-of-scope label ``oos_label``."""
    if _has_lone_surrogate(label):
        return "is not valid Unicode text (a lone surrogate escape)"
    if not visible_text(label):
        return f"is empty once invisible format characters (such as a zero-width space) are removed: {ascii(label)}"
    if control := control_character_problem(label):
        return control
    if invisible := format_character_problem(label):
        return invisible
    if label == FALLBACK_TAG:
        return (
            f"{label!r} is the reserved fallback tag (in an intents file, the intent holding the fallback's "
            "answers); a CSV or CLINC150 label may not take it, or its neutral answer would replace the fallback's"
        )
    if _looks_like_fallback(label):
        return f"{label!r} looks like the reserved fallback tag {FALLBACK_TAG!r}; give the label another name"
    if oos_label is not None and label != oos_label and looks_of(label) == looks_of(oos_label):
        return (
            f"{label!r} looks the same as the out-of-scope label {oos_label!r} (--oos-label); labels may not differ "
            "only in case, Unicode form or invisible format characters"
        )
    return None


def oos_label_problem(oos_label: str) -> str | None:
    """What is wrong with an ``--oos-label`` value, or ``None``: it names a class of the model,
    so it follows the rules of labels; empty, or with spaces at its ends, no model could hold it."""
    if not oos_label.strip():
        return f"--oos-label {oos_label!r} is empty: name the out-of-scope label (default {DEFAULT_OOS_LABEL!r})"
    if oos_label != oos_label.strip():
        return f"--oos-label {oos_label!r} has spaces at its start or end"
    problem = label_problem(oos_label)
    return f"--oos-label {oos_label!r}: {problem}" if problem else None


def _foreign_labels(
    examples: Examples, known: Sequence[str], oos_label: str | None
) -> Iterator[tuple[int, str, str | None]]:
    """``(index, label, like)`` for each label of ``examples`` not in ``known`` (the out-of-scope
    label aside), at its first example: ``like`` is the known label it looks the same as (case,
    Unicode form, invisible format characters), else None."""
    look_of_known = {looks_of(label): label for label in known}
    known_set = set(known)
    seen: set[str] = set()
    for index, label in enumerate(examples.labels):
        if label in known_set or label == oos_label or label in seen:
            continue
        seen.add(label)
        yield index, label, look_of_known.get(looks_of(label))


def unseen_label_problems(
    validation: Examples, known: Sequence[str], oos_label: str | None, training: str
) -> list[str]:
    """One problem per validation label that no training example has (the out-of-scope label
    aside), at its first example, saying which training label it looks like, if any."""
    problems: list[str] = []
    for index, label, like in _foreign_labels(validation, known, oos_label):
        hint = (
            f"; it looks the same as training label {like!r} (labels may not differ only in case, Unicode form "
            "or invisible format characters)"
            if like is not None
            else ""
        )
        problems.append(
            f"{validation.place(index)}: label {label!r} is not a label of the training data ({training}){hint}"
        )
    return problems


def lookalike_label_problems(
    examples: Examples, classes: Sequence[str], oos_label: str | None, model: str
) -> list[str]:
    """One problem per label of ``examples`` that is not one of a model's ``classes`` but looks
    the same as one (differs only in case, Unicode form or invisible format characters), at its
    first example: scored as a label the model lacks, each of its sentences would count as wrong
    however right the model's answer. A label unlike every class is no problem here (it is
    reported as unknown); the out-of-scope label is left to the out-of-scope rules."""
    problems: list[str] = []
    for index, label, like in _foreign_labels(examples, classes, oos_label):
        if like is None:
            continue
        same_case = unicodedata.normalize("NFC", like) == unicodedata.normalize("NFC", label)
        shown, other = (ascii(label), ascii(like)) if same_case else (repr(label), repr(like))
        problems.append(
            f"{examples.place(index)}: label {shown} is not a class of {model}, but looks the same as its class "
            f"{other} (labels may not differ only in case, Unicode form or invisible format characters)"
        )
    return problems


def as_printed_classes(examples: Examples, classes: Sequence[str]) -> Examples:
    """``examples`` with each label that names a class of ``classes`` as it prints, without the
    invisible format characters at its ends (``"greet"`` for ``"greet\u200b"``), given as that
    class. A model trained before such names were refused could not be evaluated: its data may
    no longer name the class so, and the name as it prints was refused as a look-alike."""
    printed: dict[str, str | None] = {}
    for name in classes:
        # a name two classes print as is neither's: evaluate refuses it as a look-alike of both
        shown = strip_format_characters(name)
        printed[shown] = None if shown in printed else name
    known = set(classes)
    labels = tuple(label if label in known else printed.get(label) or label for label in examples.labels)
    return examples if labels == examples.labels else replace(examples, labels=labels)


def _check_look(label: str, where: str, what: str, looks: dict[str, tuple[str, str]], problems: list[str]) -> None:
    """Refuse ``label`` when it differs from a label met before only in case, Unicode form or
    invisible format characters: it would silently train a class of its own (the rule intents
    files apply to their tags)."""
    look = looks_of(label)
    first, first_where = looks.setdefault(look, (label, where))
    if first != label:
        # two Unicode forms print alike; escapes show which code points differ
        same_case = unicodedata.normalize("NFC", first) == unicodedata.normalize("NFC", label)
        shown, other = (ascii(label), ascii(first)) if same_case else (repr(label), repr(first))
        problems.append(
            f"{where}: {what} {shown} looks the same as {other} ({first_where}); "
            "labels may not differ only in case, Unicode form or invisible format characters"
        )


def _json_ignoring_repeats(path: Path) -> Any:
    """The decoded JSON of ``path`` keeping a repeated key's last value; ``None`` if unreadable or invalid."""
    try:
        return json.loads(read_input_bytes(path).decode("utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None


def _read_json(path: str | Path) -> Any:
    source = str(path)
    return read_json_file(path, lambda problem: DataError(source, [problem]))


def neutral_response(tag: str) -> str:
    """The one response a label from a CSV or CLINC150 file gets."""
    return f"I understood this as '{tag}'."


def synthesized_intents(labels: Sequence[str], oos_label: str | None, source: str) -> IntentSet:
    """Dialogue rules for data without responses: one intent per label (out-of-scope label
    excluded) with :func:`neutral_response`, no context rules, no patterns (they stay in the
    training data)."""
    tags = sorted(set(labels) - {oos_label})
    return IntentSet(tuple(Intent(tag, (), (neutral_response(tag),)) for tag in tags), source)
