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
neutral response that names it (see the README), and out-of-scope sentences are left to the
fallback.
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from legacy_assistant.classifier.intents import DEFAULT_OOS_LABEL, Intent, IntentSet, load_intents, looks_of
from legacy_assistant.common.jsonfile import absent_file_problem, read_json_file
from legacy_assistant.errors import DataError

FORMATS = ("intents", "csv", "clinc")
CLINC_SPLITS = ("train", "val", "test")
ALL = "all"  # the one split of an intents or CSV file


@dataclass(frozen=True)
class Examples:
    """Parallel ``texts`` and ``labels``."""

    texts: tuple[str, ...]
    labels: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.texts)

    def __add__(self, other: Examples) -> Examples:
        return Examples(self.texts + other.texts, self.labels + other.labels)


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
    data = _read_json(path)
    if isinstance(data, dict) and "intents" in data:
        return "intents"
    if isinstance(data, dict) and any(key in data for key in CLINC_SPLITS):
        return "clinc"
    raise DataError(
        str(path),
        [
            "unrecognised layout: expected an object with an 'intents' list, CLINC150 splits "
            "('train', 'val', 'test', 'oos_*'), or a .csv file with 'text' and 'label' columns"
        ],
    )


def load_data(path: str | Path, fmt: str = "auto", oos_label: str = DEFAULT_OOS_LABEL) -> DataFile:
    """Read ``path`` in ``fmt`` (one of :data:`FORMATS`, or ``auto`` to detect it)."""
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt == "intents":
        intents = load_intents(path, oos_label)
        texts, tags = intents.examples()
        return DataFile(str(path), fmt, {ALL: Examples(tuple(texts), tuple(tags))}, intents)
    if fmt == "csv":
        return DataFile(str(path), fmt, {ALL: load_csv(path)})
    if fmt == "clinc":
        return DataFile(str(path), fmt, load_clinc(path, oos_label))
    raise DataError(str(path), [f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)} or auto"])


def load_csv(path: str | Path) -> Examples:
    """Rows of a CSV file with ``text`` and ``label`` columns; every bad row is reported."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        raise DataError(source, [absent_file_problem(path)]) from None
    except OSError as exc:
        raise DataError(source, [f"cannot read file: {exc}"]) from None
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(source, [f"line {line}: not UTF-8 text ({exc.reason})"]) from None
    problems: list[str] = []
    texts: list[str] = []
    labels: list[str] = []
    looks: dict[str, tuple[str, str]] = {}  # label folded to its look -> (the label, where it came first)
    reader = csv.reader(io.StringIO(content, newline=""))
    start = 1  # the line the record being read starts on (a quoted field may span lines)
    try:
        header = next(reader, None)
        if header is None:
            raise DataError(source, ["empty file: expected a header row with 'text' and 'label'"])
        names = [name.strip().lower() for name in header]
        missing = [name for name in ("text", "label") if name not in names]
        if missing:
            raise DataError(
                source, [f"line 1: header {header!r} has no {' or '.join(repr(m) for m in missing)} column"]
            )
        twice = [name for name in ("text", "label") if names.count(name) > 1]
        if twice:
            raise DataError(
                source, [f"line 1: header {header!r} has more than one {' and '.join(map(repr, twice))} column"]
            )
        text_col, label_col = names.index("text"), names.index("label")
        while True:
            start = reader.line_num + 1
            row = next(reader, None)
            if row is None:
                break
            line = start
            if any("\n" in cell for cell in row) and _open_quote(content, start, reader.line_num):
                # the reader took every line left into this record, as Python's csv does
                raise DataError(source, [f"line {start}: a quote opened in this row is never closed"])
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                problems.append(f"line {line}: expected {len(header)} fields, got {len(row)}")
                continue
            text, label = row[text_col].strip(), row[label_col].strip()
            for name, value in (("text", text), ("label", label)):
                if not value:
                    problems.append(f"line {line}: field {name!r} is empty")
            if text and label:
                _check_look(label, f"line {line}", "field 'label'", looks, problems)
                texts.append(text)
                labels.append(label)
    except csv.Error as exc:
        raise DataError(source, [f"line {start}: {exc}"]) from None
    if problems:
        raise DataError(source, problems)
    if not texts:
        raise DataError(source, ["no examples after the header row"])
    return Examples(tuple(texts), tuple(labels))


def _open_quote(content: str, start: int, end: int) -> bool:
    """Whether lines ``start`` to ``end`` (1-based, a record's) hold an odd number of double
    quotes: asked of a record with a line break in a field (only a quoted field holds one), it
    tells a quote that was never closed, which Python's reader takes to the end of the file,
    from a quoted field that spans lines."""
    lines = content.split("\n")[start - 1 : end]
    return sum(line.count('"') for line in lines) % 2 == 1


def load_clinc(path: str | Path, oos_label: str = DEFAULT_OOS_LABEL) -> dict[str, Examples]:
    """Splits of a CLINC150-layout file, each with its ``oos_<split>`` list appended."""
    source = str(path)
    data = _read_json(path)
    if not isinstance(data, dict):
        raise DataError(source, ["top level must be an object of splits"])
    problems: list[str] = []
    splits: dict[str, Examples] = {}
    looks: dict[str, tuple[str, str]] = {}  # shared by every split: a label is one class in all of them
    for split in CLINC_SPLITS:
        parts = []
        for key, relabel in ((split, None), (f"oos_{split}", oos_label)):
            if key in data:
                parts.append(_pairs(data[key], key, relabel, problems, looks))
        if parts:
            examples = parts[0]
            for part in parts[1:]:
                examples = examples + part
            splits[split] = examples
    unknown = sorted(set(data) - set(CLINC_SPLITS) - {f"oos_{s}" for s in CLINC_SPLITS})
    if unknown:
        problems.append(f"unknown key(s) {', '.join(map(repr, unknown))}; expected {', '.join(CLINC_SPLITS)} and oos_*")
    if problems:
        raise DataError(source, problems)
    if not splits:
        raise DataError(source, ["no splits: expected 'train', 'val' or 'test'"])
    return splits


def _pairs(
    entries: Any, key: str, relabel: str | None, problems: list[str], looks: dict[str, tuple[str, str]]
) -> Examples:
    if not isinstance(entries, list):
        problems.append(f"{key!r}: must be a list of [text, label] pairs")
        return Examples((), ())
    texts: list[str] = []
    labels: list[str] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, list) or len(entry) != 2 or not all(isinstance(value, str) for value in entry):
            problems.append(f"{key!r}[{index}]: must be [text, label], two strings, got {json.dumps(entry)[:80]}")
            continue
        text, label = entry[0].strip(), entry[1].strip()
        if not text:
            problems.append(f"{key!r}[{index}]: text is empty")
            continue
        if not label and relabel is None:
            problems.append(f"{key!r}[{index}]: label is empty")
            continue
        label = relabel if relabel is not None else label
        what = "label" if relabel is None else "out-of-scope label"
        _check_look(label, f"{key!r}[{index}]", what, looks, problems)
        texts.append(text)
        labels.append(label)
    return Examples(tuple(texts), tuple(labels))


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
