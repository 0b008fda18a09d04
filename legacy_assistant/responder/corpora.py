"""Dialogues from the corpus layouts the responder trains on.

* **cakechat** (``.jsonl``, ``.txt``): UTF-8 text, one dialogue per line (a line ends at
  ``\n``, ``\r\n`` or a lone ``\r``, as cakechat read it), each a JSON list of turns
  ``{"text": str, "condition": str}``, at least two turns; other keys are ignored. Blank lines
  are skipped. Every turn, the first too, names its condition: a missing or null one is a bad
  dialogue (cakechat took null and trained it as neutral or as a condition of its own).
* **Topical-Chat** (``.json``): one JSON object keyed by conversation id; each value's
  ``content`` lists the turns ``{"message", "sentiment", "agent", ...}``. The writer's own
  sentiment label becomes the turn's condition through :data:`TOPICAL_CHAT_CONDITIONS`
  (Happy -> joy, Sad -> sadness, Angry and Disgusted -> anger, Fearful -> fear); every other
  label (Neutral, Curious to dive deeper, Surprised) is neutral.
* **ChatterBot** YAML (``.yml``, ``.yaml``; a file or a folder of them): ``conversations``, a
  list of conversations, each a list of strings, each answering the one before it. There are no
  emotion labels: every turn is neutral.

Each reader checks the whole file before returning and raises :class:`DataError` listing every
problem with its line (cakechat, ChatterBot) or its conversation id and turn (Topical-Chat).
Conditions are stripped and lower-cased (``Joy`` is ``joy``); text holding a lone surrogate
escape (``"\\ud800"``, which no UTF-8 file can hold) is a bad dialogue. A file that is not
UTF-8 is named with the line of its first bad byte. :func:`read_corpora` refuses a file given
twice (:class:`RepeatedCorpusError`), and a corpus folder's broken or looping symbolic link is
an error naming it, not a file left out.
With ``strict=False`` a dialogue with a problem is skipped instead, each skip logged as a
warning with the same message: public corpora have the odd broken entry (the ChatterBot
corpus's ``trivia.yml`` has a question that is a string where a list was meant), and one should
not cost the rest. :func:`read_corpus` picks the reader from the path (see
:func:`detect_layout`) unless a layout is named.
"""

from __future__ import annotations

import bisect
import codecs
import errno
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from legacy_assistant.common.fields import json_kind
from legacy_assistant.common.input_files import (
    NOT_REGULAR_FILE,
    read_input_bytes,
    read_problem,
    wide_encoding_problem,
)
from legacy_assistant.common.jsonfile import DuplicateKeyError, loads_unique
from legacy_assistant.errors import DataError
from legacy_assistant.responder.modes import fold_condition
from legacy_assistant.text.processing import visible_text

log = logging.getLogger(__name__)

NEUTRAL = "neutral"
LAYOUTS = ("cakechat", "topical_chat", "chatterbot")
AUTO = "auto"
# Topical-Chat's sentiment labels (lower-cased) -> the five emotions of the cakechat API.
TOPICAL_CHAT_CONDITIONS: Mapping[str, str] = {
    "happy": "joy",
    "sad": "sadness",
    "angry": "anger",
    "disgusted": "anger",
    "fearful": "fear",
}
SUFFIXES = {
    "cakechat": (".jsonl", ".txt"),
    "topical_chat": (".json",),
    "chatterbot": (".yml", ".yaml"),
}
MIN_TURNS = 2


class RepeatedCorpusError(DataError):
    """A corpus file given twice (the same path, a link to it, or a file and its folder): its
    dialogues would be read, and trained on, twice. Skipping bad dialogues cannot help it."""


@dataclass(frozen=True)
class Turn:
    """One utterance and the emotion it was written with."""

    text: str
    condition: str = NEUTRAL


@dataclass(frozen=True)
class Dialogue:
    """Turns in the order they were said; ``source`` says where: ``file:line N`` or
    ``file#conversation-id``."""

    turns: tuple[Turn, ...]
    source: str


def read_corpus(path: str | Path, layout: str = AUTO, strict: bool = True) -> list[Dialogue]:
    """Every dialogue of a corpus file, or of each corpus file directly inside a folder (sorted
    by name; hidden files skipped). ``layout`` is one of :data:`LAYOUTS` or ``auto``, which
    detects it per file (:func:`detect_layout`); ``strict=False`` skips bad dialogues (logged)."""
    return read_corpora([path], layout, strict)


def read_corpora(paths: Iterable[str | Path], layout: str = AUTO, strict: bool = True) -> list[Dialogue]:
    """The dialogues of several corpora, in the order given. A file reached twice (the same
    path, two links to one file, a file and its folder) raises :class:`RepeatedCorpusError`."""
    files: list[Path] = []
    seen: dict[tuple[int, int], Path] = {}
    for path in paths:
        for file in _files_of(Path(path), layout):
            first = seen.setdefault(_identity(file), file)
            if first is not file:
                also = "" if str(first) == str(file) else f" (also as {first})"
                raise RepeatedCorpusError(
                    str(file), [f"given twice{also}: its dialogues would be read, and trained on, twice"]
                )
            files.append(file)
    dialogues: list[Dialogue] = []
    for file in files:
        dialogues.extend(_read_file(file, layout, strict))
    return dialogues


def corpus_files(folder: Path, layout: str = AUTO) -> list[Path]:
    """The entries directly inside ``folder`` whose suffix belongs to ``layout`` (any layout for
    ``auto``), sorted by name, but folders. A broken or looping symbolic link, a named pipe or a
    device is listed too, so that reading it names it: a corpus file left out without a word
    would go unnoticed."""
    wanted = SUFFIXES[layout] if layout != AUTO else tuple(s for v in SUFFIXES.values() for s in v)
    return sorted(
        p for p in folder.iterdir() if not p.is_dir() and not p.name.startswith(".") and p.suffix.lower() in wanted
    )


def _files_of(root: Path, layout: str) -> list[Path]:
    if layout != AUTO and layout not in LAYOUTS:
        raise DataError(str(root), [f"unknown corpus layout {layout!r}; expected one of {', '.join(LAYOUTS)} or auto"])
    if root.is_dir():
        files = corpus_files(root, layout)
        if not files:
            wanted = SUFFIXES[layout] if layout != AUTO else tuple(s for v in SUFFIXES.values() for s in v)
            raise DataError(str(root), [f"no corpus files in this folder (looked for {', '.join(wanted)})"])
        return files
    if not root.is_file():
        special = root.exists() and f"{NOT_REGULAR_FILE}: give a corpus file or folder"
        raise DataError(str(root), [_link_problem(root) or special or "file not found"])
    return [root]


def _identity(file: Path) -> tuple[int, int]:
    """Device and inode: equal for every path that reaches one file."""
    try:
        status = file.stat()
    except OSError as exc:
        raise DataError(str(file), [_link_problem(file) or f"cannot read file: {exc}"]) from None
    return status.st_dev, status.st_ino


def _link_problem(path: Path) -> str | None:
    """What is wrong with ``path`` when it is a symbolic link that reaches no file, else ``None``."""
    if not path.is_symlink():
        return None
    try:
        path.stat()
    except FileNotFoundError:
        return f"broken symbolic link: its target {os.readlink(path)} does not exist"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop: it never reaches a file"
        return f"cannot read file: {exc}"
    return None


def detect_layout(path: str | Path) -> str:
    """The layout of a corpus file, from its name and first character.

    ``.yml``/``.yaml`` -> chatterbot; ``.jsonl``/``.txt`` -> cakechat; ``.json`` holding an
    object -> topical_chat (its reader then checks the ``content`` lists).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in SUFFIXES["chatterbot"]:
        return "chatterbot"
    if suffix in SUFFIXES["cakechat"]:
        return "cakechat"
    if suffix in SUFFIXES["topical_chat"]:
        head = _head(path)
        wide = wide_encoding_problem(head)
        if wide is not None:  # not misread as a cakechat file: its characters are fine, its encoding is not
            raise DataError(str(path), [wide])
        first = head.decode("utf-8-sig", errors="replace").lstrip()[:1]
        if first == "{":
            return "topical_chat"
        if not first and len(head) < 4096:  # "(it starts with '')" said nothing
            raise DataError(str(path), ["empty file: expected a Topical-Chat object of conversations"])
        raise DataError(
            str(path),
            [
                f"a .json corpus must be a Topical-Chat object of conversations (it starts with {first!r}); "
                "cakechat dialogues, one JSON list per line, go in a .jsonl or .txt file (or name the layout: cakechat)"
            ],
        )
    raise DataError(
        str(path),
        [
            f"cannot tell the corpus layout from the suffix {suffix or '(none)'!r}: expected .jsonl/.txt (cakechat), "
            ".json (topical_chat) or .yml/.yaml (chatterbot), or name the layout"
        ],
    )


def _read_file(path: Path, layout: str, strict: bool) -> list[Dialogue]:
    layout = detect_layout(path) if layout == AUTO else layout
    if layout == "cakechat":
        return read_cakechat(path, strict)
    if layout == "topical_chat":
        return read_topical_chat(path, strict=strict)
    return read_chatterbot(path, strict)


def _settle(source: str, problems: list[str], dialogues: list[Dialogue], strict: bool, empty: str) -> list[Dialogue]:
    """Raise for the problems found (or, not strict, log them as skipped); refuse a corpus
    left with no dialogue."""
    if problems and strict:
        raise DataError(source, problems)
    for problem in problems:
        log.warning("%s: skipped: %s", source, problem)
    if problems:
        log.warning("%s: %d problem(s), %d dialogue(s) kept", source, len(problems), len(dialogues))
    if not dialogues:
        raise DataError(source, problems or [empty])
    return dialogues


def _head(path: Path) -> bytes:
    if path.exists() and not path.is_file():  # opening a named pipe would wait for a writer for good
        raise DataError(str(path), [f"is {NOT_REGULAR_FILE}"])
    try:
        with open(path, "rb") as handle:
            return handle.read(4096)
    except OSError as exc:
        raise DataError(str(path), [_link_problem(path) or f"cannot read file: {exc}"]) from None


def _read_bytes(path: Path) -> bytes:
    try:
        return read_input_bytes(path)
    except OSError as exc:
        raise DataError(str(path), [_link_problem(path) or read_problem(path, exc)]) from None


def _read_text(path: Path) -> str:
    """The file as UTF-8 text (a byte order mark dropped); a byte that is not UTF-8 is named by
    its line, as the cakechat reader names it, and the byte's place in that line."""
    raw = _read_bytes(path)
    wide = wide_encoding_problem(raw)
    if wide is not None:
        raise DataError(str(path), [wide])
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - raw.rfind(b"\n", 0, exc.start)  # counted from 1, as lines are
        raise DataError(
            str(path), [f"line {line}: not UTF-8 text ({exc.reason} at byte {column} of the line)"]
        ) from None


def _lone_surrogate(text: str) -> str | None:
    """The problem of text holding a lone surrogate escape (``"\\ud800"`` in JSON or YAML): no
    UTF-8 file can hold it, so the pairs' digests and the checkpoint's run.json could not be
    written. ``None`` for valid text."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"is not valid Unicode text (a lone surrogate escape, {ascii(text[exc.start])})"
    return None


# --- cakechat -------------------------------------------------------------------------------


def read_cakechat(path: str | Path, strict: bool = True) -> list[Dialogue]:
    """One dialogue per non-blank line: a JSON list of ``{"text", "condition"}`` turns. Texts
    and conditions are stripped, conditions lower-cased; a corpus may name conditions of its own."""
    source = str(path)
    raw = _read_bytes(Path(path))
    wide = wide_encoding_problem(raw)
    if wide is not None:  # every line would be a problem of its own
        raise DataError(source, [wide])
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    problems: list[str] = []
    dialogues: list[Dialogue] = []
    # Lines end at \n, \r\n or a lone \r, as cakechat's reader (a file in text mode) and editors
    # count them: a file saved with lone \r endings is one dialogue a line, not one long bad line.
    for number, line_bytes in enumerate(raw.splitlines(), start=1):
        try:
            line = line_bytes.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            problems.append(f"line {number}: not UTF-8 text ({exc.reason} at byte {exc.start + 1} of the line)")
            continue
        if not line:
            continue
        where = f"line {number}"
        try:
            entry = loads_unique(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: invalid JSON at column {exc.colno}: {exc.msg}")
            continue
        except DuplicateKeyError as exc:
            problems.append(f"{where}: {exc}")
            continue
        except RecursionError:
            problems.append(f"{where}: invalid JSON: nested too deeply")
            continue
        except ValueError as exc:  # valid syntax Python refuses: an integer of more than 4,300 digits
            problems.append(f"{where}: invalid JSON: {exc}")
            continue
        turns = _cakechat_turns(entry, where, problems)
        if turns is not None:
            dialogues.append(Dialogue(turns, f"{source}:{number}"))
    empty = 'no dialogues: expected one JSON list of {"text", "condition"} turns per line'
    return _settle(source, problems, dialogues, strict, empty)


def _cakechat_turns(entry: Any, where: str, problems: list[str]) -> tuple[Turn, ...] | None:
    if not isinstance(entry, list):
        problems.append(f"{where}: a dialogue must be a JSON list of turns, got {json_kind(entry)}")
        return None
    if len(entry) < MIN_TURNS:
        problems.append(f"{where}: a dialogue needs at least {MIN_TURNS} turns, got {len(entry)}")
        return None
    turns: list[Turn] = []
    before = len(problems)
    for index, turn in enumerate(entry, start=1):
        at = f"{where}, turn {index}"
        if not isinstance(turn, dict):
            problems.append(f"{at}: must be an object with 'text' and 'condition', got {json_kind(turn)}")
            continue
        text = _nonempty_string(turn.get("text", _ABSENT), f"{at}: 'text'", problems)
        condition = _nonempty_string(turn.get("condition", _ABSENT), f"{at}: 'condition'", problems, _NULL_CONDITION)
        if text is not None and condition is not None:
            # "Joy" and "joy" are one condition: not two embeddings each trained on part of the data
            turns.append(Turn(text, fold_condition(condition)))
    return tuple(turns) if len(problems) == before else None


# A turn of only format characters (U+200B, U+200E, a soft hyphen, a byte order mark) is no
# empty string, but has no token: a training batch of such contexts failed inside TensorFlow.
_INVISIBLE = "holds only invisible characters (format characters such as U+200B), no word"


# A key the turn lacks, told apart from one written as null: "is missing" sent the reader of a
# corpus that has the key (cakechat's reader took "condition": null) looking for the wrong thing.
_ABSENT = object()
_NULL_CONDITION = '; write "neutral" for a turn without an emotion'


def _nonempty_string(value: Any, what: str, problems: list[str], null_hint: str = "") -> str | None:
    if value is None or value is _ABSENT:
        problems.append(f"{what} is missing" if value is _ABSENT else f"{what} is null, not a string{null_hint}")
        return None
    if not isinstance(value, str):
        problems.append(f"{what} must be a string, got {json_kind(value)}")
        return None
    value = value.strip()
    if not value:
        problems.append(f"{what} is empty")
        return None
    if not visible_text(value):
        problems.append(f"{what} {_INVISIBLE}")
        return None
    surrogate = _lone_surrogate(value)
    if surrogate is not None:
        problems.append(f"{what} {surrogate}")
        return None
    return value


# --- Topical-Chat ---------------------------------------------------------------------------


def read_topical_chat(
    path: str | Path, conditions: Mapping[str, str] = TOPICAL_CHAT_CONDITIONS, strict: bool = True
) -> list[Dialogue]:
    """The conversations of a Topical-Chat file, in file order; ``conditions`` maps a
    lower-cased sentiment label to a condition (lower-cased too), any other label is neutral."""
    source = str(path)
    document = _read_text(Path(path))
    try:
        data = loads_unique(document)
    except json.JSONDecodeError as exc:
        raise DataError(source, [f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"]) from None
    except DuplicateKeyError as exc:
        raise DataError(source, [str(exc)]) from None
    except RecursionError:
        raise DataError(source, ["invalid JSON: nested too deeply"]) from None
    except ValueError as exc:  # valid syntax Python refuses: an integer of more than 4,300 digits
        raise DataError(source, [f"invalid JSON: {exc}"]) from None
    if not isinstance(data, dict):
        raise DataError(source, [f"top level must be an object of conversations keyed by id, got {json_kind(data)}"])
    problems: list[str] = []
    dialogues: list[Dialogue] = []
    for conversation_id, conversation in data.items():
        where = f"conversation {conversation_id!r}"
        surrogate = _lone_surrogate(conversation_id)
        if surrogate is not None:  # the id becomes the dialogue's source, which reports write out
            problems.append(f"{where}: the id {surrogate}")
            continue
        content = conversation.get("content") if isinstance(conversation, dict) else None
        if not isinstance(content, list):
            problems.append(f"{where}: must be an object with a 'content' list of turns")
            continue
        if len(content) < MIN_TURNS:
            problems.append(f"{where}: a dialogue needs at least {MIN_TURNS} turns, got {len(content)}")
            continue
        turns: list[Turn] = []
        before = len(problems)
        for index, turn in enumerate(content, start=1):
            at = f"{where}, turn {index}"
            if not isinstance(turn, dict):
                problems.append(f"{at}: must be an object with a 'message', got {json_kind(turn)}")
                continue
            text = _nonempty_string(turn.get("message", _ABSENT), f"{at}: 'message'", problems)
            sentiment = turn.get("sentiment")
            if sentiment is not None and not isinstance(sentiment, str):
                problems.append(f"{at}: 'sentiment' must be a string, got {json_kind(sentiment)}")
                continue
            if text is not None:
                label = (sentiment or "").strip().lower()
                turns.append(Turn(text, fold_condition(conditions.get(label, NEUTRAL))))
        if len(problems) == before:
            dialogues.append(Dialogue(tuple(turns), f"{source}#{conversation_id}"))
    return _settle(source, problems, dialogues, strict, "no conversations")


# --- ChatterBot YAML ------------------------------------------------------------------------


def read_chatterbot(path: str | Path, strict: bool = True) -> list[Dialogue]:
    """The conversations of a ChatterBot YAML file, or of every ``.yml``/``.yaml`` file in a
    folder (sorted by name). Every turn is neutral."""
    root = Path(path)
    if root.is_dir():
        files = corpus_files(root, "chatterbot")
        if not files:
            raise DataError(str(root), ["no .yml or .yaml files in this folder"])
        return [dialogue for file in files for dialogue in _read_chatterbot_file(file, strict)]
    return _read_chatterbot_file(root, strict)


def _read_chatterbot_file(path: Path, strict: bool) -> list[Dialogue]:
    # Composed with PyYAML's SafeLoader (what safe_load uses) but not constructed: the nodes
    # keep each conversation's line for the messages, and a scalar stays the text as written
    # ("yes" or "42" are answers, not a boolean or a number). No tag is ever executed.
    import yaml

    source = str(path)
    text = _read_text(path)
    line_of = _line_counter(text)
    loader = None
    try:
        loader = yaml.SafeLoader(text)  # checks the characters: a NUL is refused here already
        root = loader.get_single_node()
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        raise DataError(source, [f"line {line}: invalid YAML: unacceptable character #x{exc.character:04x}"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {line_of(mark)}: " if mark is not None else ""
        problem = getattr(exc, "problem", None)
        context = getattr(exc, "context", None)  # "expected a single document in the stream"
        said = f"{context}, {problem}" if problem and context else problem or exc
        raise DataError(source, [f"{where}invalid YAML: {said}"]) from None
    except RecursionError:
        raise DataError(source, ["invalid YAML: nested too deeply"]) from None
    finally:
        if loader is not None:
            loader.dispose()
    if root is None:
        raise DataError(source, ["empty file: expected a 'conversations' list"])
    repeated = _repeated_key(root) if isinstance(root, yaml.MappingNode) else None
    if repeated is not None:  # PyYAML keeps the last value, this reader read the first: refused, as in JSON
        raise DataError(
            source,
            [
                f"line {line_of(repeated)}: key {json.dumps(repeated.value)} appears twice in one mapping: "
                "only one value would be kept"
            ],
        )
    conversations = _mapping_value(root, "conversations") if isinstance(root, yaml.MappingNode) else None
    if not isinstance(conversations, yaml.SequenceNode):
        line = line_of(conversations if conversations is not None else root)
        raise DataError(source, [f"line {line}: expected a mapping with a 'conversations' list of conversations"])
    problems: list[str] = []
    dialogues: list[Dialogue] = []
    seen: set[int] = set()  # an alias is its anchor's node again
    for index, conversation in enumerate(conversations.value, start=1):
        where = f"line {line_of(conversation)}, conversation {index}"
        nodes = [conversation, *(conversation.value if isinstance(conversation, yaml.SequenceNode) else ())]
        if any(id(node) in seen for node in nodes) or len({id(node) for node in nodes}) < len(nodes):
            # a few lines of anchors and aliases can stand for millions of turns
            problems.append(f"{where}: uses a YAML alias (*name); a corpus must write its turns out")
            continue
        seen.update(id(node) for node in nodes)
        if not isinstance(conversation, yaml.SequenceNode):
            problems.append(f"{where}: must be a list of strings")
            continue
        if len(conversation.value) < MIN_TURNS:
            problems.append(f"{where}: a dialogue needs at least {MIN_TURNS} turns, got {len(conversation.value)}")
            continue
        turns: list[Turn] = []
        for turn in conversation.value:
            turn_text = _scalar_text(turn)
            if turn_text is None:
                problems.append(f"line {line_of(turn)}, conversation {index}: a turn must be a non-empty string")
                continue
            if not visible_text(turn_text):
                problems.append(f"line {line_of(turn)}, conversation {index}: a turn {_INVISIBLE}")
                continue
            surrogate = _lone_surrogate(turn_text)
            if surrogate is not None:
                problems.append(f"line {line_of(turn)}, conversation {index}: a turn {surrogate}")
                continue
            turns.append(Turn(turn_text))
        if len(turns) == len(conversation.value):
            dialogues.append(Dialogue(tuple(turns), f"{source}:{line_of(conversation)}"))
    return _settle(source, problems, dialogues, strict, "no conversations")


def _repeated_key(node: Any) -> Any:
    """The first key node of a mapping node that repeats an earlier scalar key, or ``None``."""
    import yaml

    seen: set[tuple[str, str]] = set()
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode):
            key = (key_node.tag, key_node.value)
            if key in seen:
                return key_node
            seen.add(key)
    return None


def _mapping_value(node: Any, key: str) -> Any:
    for key_node, value_node in node.value:
        if getattr(key_node, "value", None) == key:
            return value_node
    return None


def _scalar_text(node: Any) -> str | None:
    import yaml

    if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:null":
        return None
    text = str(node.value).strip()
    return text or None


def _line_counter(text: str) -> Callable[[Any], int]:
    """A node's (or a mark's) line in ``text``, counted as an editor counts them: at ``\n``,
    ``\r\n`` and a lone ``\r``. PyYAML's own count also breaks lines at U+0085, U+2028 and
    U+2029, which shifted every line after one of them (a 4-line file had a problem on "line 5")."""
    breaks = [
        index
        for index, character in enumerate(text)
        if character == "\n" or (character == "\r" and text[index + 1 : index + 2] != "\n")
    ]

    def line_of(where: Any) -> int:
        mark = getattr(where, "start_mark", where)
        return bisect.bisect_left(breaks, mark.index) + 1

    return line_of
