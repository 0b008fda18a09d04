"""Intents files: read, validate, and hand out training examples and dialogue rules.

The classic format is read unchanged::

    {"intents": [{"tag": "greeting", "patterns": ["Hi"], "responses": ["Hello!"], "context": [""]}]}

* ``context``: classic follow-up, a list (``[""]``, ``["book_time"]``) or one string. The tag it
  names, when not empty (empty entries are ignored; two tags are refused), handles the
  conversation's *next* turn, whatever is typed (such tags often have no patterns).
* ``context_set``: after this intent answers, the conversation's context becomes this string
  (``""`` clears it).
* ``context_filter``: the intent can be chosen only while the conversation's context equals it.
* ``free_text`` (this project's, optional): on a follow-up tag, the next turn is free text (such
  as feedback) that no other intent may take over, however confident the classifier is.
* ``interrupts`` (this project's, optional): this intent may end any flow, a ``free_text``
  follow-up included (a "cancel" intent).

The intent tagged with the out-of-scope label (``oos`` unless the trainer is told another) holds
examples of messages the assistant should not try to answer (other topics, other shops'
business). Its patterns train the model's out-of-scope class; such messages get the fallback
(or a generated reply), so it needs no ``responses`` and takes no context rules.

The intent tagged ``fallback`` (exactly: a tag that differs from it only in case, width or
invisible characters is refused) supplies the fallback's answers. The dialogue's fallback keeps
the conversation's context and opens no follow-up, so this intent takes no ``context``,
``context_set`` or ``context_filter``.

Every problem found is reported at once, each naming the file, the intent (index and tag) and
the field. Text that is empty once spaces and invisible format characters (Unicode category Cf,
such as a zero-width space) are removed counts as empty. Warnings (logged, the file is still
used) name a pattern two intents share, a follow-up cycle (a flow that never closes), and an
intent without patterns that no follow-up leads to (it can never answer).
"""

from __future__ import annotations

import logging
import unicodedata
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from legacy_assistant.common.fields import json_kind, shown_text
from legacy_assistant.common.jsonfile import read_json_file
from legacy_assistant.errors import IntentsError
from legacy_assistant.text.processing import (
    drop_format_characters,
    emoji_kept_whole,
    folded,
    strip_format_characters,
    visible_text,
)

log = logging.getLogger(__name__)

REQUIRED_FIELDS = ("tag", "patterns", "responses")
OPTIONAL_FIELDS = ("context", "context_set", "context_filter", "free_text", "interrupts")
# What other tutorials' intents files call the required fields (Kaggle's chatbot dataset writes
# "intent" and "text"): a missing field's problem names the one the intent has instead.
OTHER_NAMES = {"tag": ("intent",), "patterns": ("text", "pattern"), "responses": ("response",)}
FALLBACK_TAG = "fallback"
DEFAULT_OOS_LABEL = "oos"
# Fields that mean nothing on the out-of-scope intent: its messages are answered by the fallback.
NOT_FOR_OUT_OF_SCOPE = ("context", "context_set", "context_filter", "free_text", "interrupts")
# Context rules the dialogue never applies when it falls back (it keeps the context, opens no follow-up).
NOT_FOR_FALLBACK = ("context", "context_set", "context_filter")
# Shared patterns (and a CSV's shared texts) named one by one, up to this many; the rest are
# counted: a file of hundreds of intents that each hold "yes" gave a warning line per intent.
SHARED_TEXT_WARNINGS = 10


@dataclass(frozen=True)
class Intent:
    tag: str
    patterns: tuple[str, ...]
    responses: tuple[str, ...]
    context_set: str | None = None
    context_filter: str | None = None
    next_tag: str | None = None  # classic ``context[0]``
    free_text: bool = False
    interrupts: bool = False
    out_of_scope: bool = False  # examples of the model's out-of-scope class, not an answer

    def rules(self) -> dict[str, Any]:
        """What the dialogue needs at serving time (patterns stay behind)."""
        rules: dict[str, Any] = {
            "tag": self.tag,
            "responses": list(self.responses),
            "context_set": self.context_set,
            "context_filter": self.context_filter,
            "next_tag": self.next_tag,
        }
        # written only when set, so models of intents files without them keep their manifests
        if self.free_text:
            rules["free_text"] = True
        if self.interrupts:
            rules["interrupts"] = True
        return rules


@dataclass(frozen=True)
class IntentSet:
    intents: tuple[Intent, ...]
    source: str = "<memory>"
    _by_tag: dict[str, Intent] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_tag.update({intent.tag: intent for intent in self.intents})

    def __len__(self) -> int:
        return len(self.intents)

    def __getitem__(self, tag: str) -> Intent:
        return self._by_tag[tag]

    def __contains__(self, tag: object) -> bool:
        return tag in self._by_tag

    @property
    def tags(self) -> list[str]:
        return [intent.tag for intent in self.intents]

    @property
    def trainable(self) -> list[Intent]:
        """Intents a classifier can learn: those with at least one pattern."""
        return [intent for intent in self.intents if intent.patterns]

    @property
    def answering(self) -> list[Intent]:
        """Intents the dialogue can answer with: all but the out-of-scope examples."""
        return [intent for intent in self.intents if not intent.out_of_scope]

    def examples(self) -> tuple[list[str], list[str]]:
        """Parallel lists ``(texts, tags)`` of every pattern, in file order."""
        texts: list[str] = []
        tags: list[str] = []
        for intent in self.trainable:
            texts.extend(intent.patterns)
            tags.extend([intent.tag] * len(intent.patterns))
        return texts, tags


def load_intents(path: str | Path, oos_label: str = DEFAULT_OOS_LABEL, held_out: bool = False) -> IntentSet:
    """Read and validate an intents file; raises :class:`IntentsError` naming every problem.
    The intent tagged ``oos_label``, if any, holds out-of-scope examples. ``held_out``: the file
    is read for its sentences alone (as :func:`parse_intents` says)."""
    source = str(path)
    data = read_json_file(path, lambda problem: IntentsError(source, [problem]))
    return parse_intents(data, source, oos_label, held_out=held_out)


def parse_intents(
    data: Any, source: str = "<memory>", oos_label: str = DEFAULT_OOS_LABEL, *, held_out: bool = False
) -> IntentSet:
    """Validate already-decoded JSON; ``source`` names it in error messages.

    ``held_out``: the file gives held-out sentences (validation or evaluation data), whose tags
    and patterns are all that is read. Its responses may be left out, and its context rules,
    never applied, are checked intent by intent but not against each other: a file that holds
    some of a bot's intents, rules and all, was refused for a follow-up it leaves out."""
    if not isinstance(data, Mapping):
        raise IntentsError(source, [f"top level must be an object with an 'intents' list, got {json_kind(data)}"])
    entries = data.get("intents")
    if not isinstance(entries, list):
        what = "missing" if "intents" not in data else f"{json_kind(entries)}, not a list"
        raise IntentsError(source, [f"field 'intents' is {what}"])
    if not entries:
        raise IntentsError(source, ["field 'intents' is an empty list"])
    unknown = sorted(set(data) - {"intents"})
    if unknown:
        # as an intent's unknown fields are: a second list ("Intents", "train") is no intents of this file
        log.warning(
            "%s: ignoring unknown top-level field(s) %s (an intents file reads only 'intents')",
            source,
            ", ".join(map(repr, unknown)),
        )

    problems: list[str] = []
    intents: list[Intent] = []
    first_index: dict[str, int] = {}
    first_look: dict[str, str] = {}  # tag folded to its look -> the tag
    # An intent refused for a field of its own still counts in the checks across intents: its tag
    # may repeat another's, and what names its tag or its context_set names something that is
    # there. Else fixing the listed problems would only bring up new ones (or false ones).
    refused_contexts: defaultdict[str, set[str]] = defaultdict(set)  # context -> refused intents that set it
    for index, entry in enumerate(entries):
        before = len(problems)
        intent = _parse_intent(entry, index, problems, oos_label, source, held_out)
        tag = intent.tag if intent is not None else _tag_of_refused(entry, problems[before:])
        if tag is None:
            continue
        if tag in first_index:
            problems.append(f"{_where(index, tag)}: field 'tag': duplicate of intent #{first_index[tag]}")
            continue
        look = looks_of(tag)
        if look in first_look:
            other = first_look[look]
            problems.append(
                f"{_where(index, tag)}: field 'tag': looks the same as intent #{first_index[other]} "
                f"({other!r}); tags may not differ only in case, Unicode form or invisible characters"
            )
            continue
        first_index[tag] = index
        first_look[look] = tag
        if intent is not None:
            intents.append(intent)
            continue
        context = entry.get("context_set")
        # the fallback's and the out-of-scope intent's context_set is never applied (refused above)
        if isinstance(context, str) and context.strip() and tag not in (FALLBACK_TAG, oos_label):
            refused_contexts[context.strip()].add(tag)

    if held_out:
        if problems:
            raise IntentsError(source, problems)
        _warn_shared_patterns(intents, first_index, source)  # the rest warn of rules never applied here
        return IntentSet(tuple(intents), source)
    # the fallback's own context_set is refused above: it is never applied
    setters = refused_contexts  # from here on: context -> the tags of every intent that sets it
    for intent in intents:
        if intent.context_set and intent.tag != FALLBACK_TAG:
            setters[intent.context_set].add(intent.tag)
    by_tag = {i.tag: i for i in intents}
    set_looks = {looks_of(context): context for context in setters}
    for intent in intents:
        index = first_index[intent.tag]
        if intent.next_tag is not None and intent.next_tag not in first_index:
            like = _written_otherwise(intent.next_tag, first_look)
            problems.append(
                f"{_where(index, intent.tag)}: field 'context': names tag {intent.next_tag!r}, which no intent has"
                + ("" if like is None else _alike(f"intent #{first_index[like]}'s tag is", like, intent.next_tag))
            )
        elif intent.next_tag is not None and intent.next_tag == oos_label:
            problems.append(
                f"{_where(index, intent.tag)}: field 'context': names the out-of-scope intent {oos_label!r}, "
                "which has no answers (its messages get the fallback)"
            )
        elif intent.next_tag == FALLBACK_TAG:
            # the next message would get the fallback's answer as a follow-up, whatever it says
            problems.append(
                f"{_where(index, intent.tag)}: field 'context': names the fallback intent {FALLBACK_TAG!r}, which "
                "answers when no intent fits, never as a follow-up"
            )
        follow_up = by_tag.get(intent.next_tag) if intent.next_tag is not None else None
        needed = follow_up.context_filter if follow_up is not None else None
        keeps = intent.context_set == needed or (intent.context_set is None and intent.context_filter == needed)
        if needed and not keeps:
            # a classic follow-up answers whatever is typed: it would bypass the filter
            problems.append(
                f"{_where(index, intent.tag)}: field 'context': names tag {intent.next_tag!r}, which has "
                f"context_filter {needed!r}, but this intent does not leave that context set "
                f"(give it context_set {needed!r})"
            )
        if intent.context_filter and not setters.get(intent.context_filter):
            like = _written_otherwise(intent.context_filter, set_looks)
            problems.append(
                f"{_where(index, intent.tag)}: field 'context_filter': {intent.context_filter!r} "
                "is never set by any intent's 'context_set'"
                + ("" if like is None else _alike("a 'context_set' sets", like, intent.context_filter))
            )
        elif intent.context_filter and setters[intent.context_filter] == {intent.tag}:
            # it can answer only once its context is set, and only its own answer sets it
            problems.append(
                f"{_where(index, intent.tag)}: field 'context_filter': {intent.context_filter!r} "
                "is set only by this intent's own 'context_set', so it can never answer; another intent "
                "must set it"
            )
    if problems:
        raise IntentsError(source, problems)
    _warn_shared_patterns(intents, first_index, source)
    _warn_follow_up_cycles(intents, first_index, source)
    _warn_unreachable(intents, first_index, source)
    _warn_rules_without_effect(intents, first_index, source)
    return IntentSet(tuple(intents), source)


def _tag_of_refused(entry: Any, its_problems: Sequence[str]) -> str | None:
    """The tag of an intent refused for some field, when the tag itself is not what is wrong."""
    if not isinstance(entry, Mapping) or not isinstance(tag := entry.get("tag"), str):
        return None
    return None if any("field 'tag'" in problem for problem in its_problems) else tag


def looks_of(name: str) -> str:
    """What a tag or label looks like to a reader: two names with one look differ only in case,
    Unicode form (composed or not, full-width or not: NFKC, as the fallback's look-alikes are
    found) or invisible format characters, and may not name two classes."""
    # NFKC again after casefold, which can undo it ("ǰ")
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", drop_format_characters(name)).casefold())


def _written_otherwise(name: str, by_look: Mapping[str, str]) -> str | None:
    """The name of ``by_look`` (names by :func:`looks_of`) that looks as ``name`` does but is
    written otherwise, or None. Contexts and the tags a ``context`` names match only as written:
    typed in another Unicode form (macOS writes "é" as "e" and a combining accent) or case, one
    prints as the name it misses, and the problem seemed to name what is there."""
    other = by_look.get(looks_of(name))
    return other if other is not None and other != name else None


def _alike(said: str, other: str, name: str) -> str:
    """What tells ``name`` from ``other``, its look-alike, in a problem: both escaped, so that
    the difference shows."""
    return (
        f"; {said} {ascii(other)}, and this is {ascii(name)}: they differ only in case, Unicode form or "
        "invisible characters, and match only as written"
    )


def control_character_problem(name: str) -> str | None:
    """What is wrong with a tag or label holding a control character (a line break, a NUL, a
    tab): every log line, ``info`` and ``chat --show-intent`` print a name on one line."""
    found = next((c for c in name if unicodedata.category(c) == "Cc"), None)
    return None if found is None else f"holds a control character ({ascii(found)}): a name is one line of text"


def format_character_problem(name: str) -> str | None:
    """What is wrong with a tag or label that starts or ends with an invisible format character
    (a zero-width space, a byte order mark, a bidi mark, a soft hyphen): it prints as the name
    without it but does not equal it, as a space at its end would. Joiners inside a name stay
    part of it: those inside an emoji ("\U0001f469\u200d\U0001f4bb", a subdivision flag, which
    ends with a tag character) and inside a word (a Persian or Indic ZWNJ or ZWJ)."""
    kept = strip_format_characters(name)
    if kept == name:
        return None
    found, end = (name[0], "start") if not name.startswith(kept) else (name[len(kept)], "end")
    return (
        f"{ascii(name)} has an invisible format character ({ascii(found)}) at its {end}: it prints as "
        f"{emoji_kept_whole(name).strip()!r} but does not equal it; remove the character"
    )


def _looks_like_fallback(tag: str) -> bool:
    """Whether ``tag`` is not the reserved fallback tag but differs from it only in case, width
    (NFKC) or invisible format characters (``Fallback``, ``ＦＡＬＬＢＡＣＫ``)."""
    return tag != FALLBACK_TAG and unicodedata.normalize("NFKC", visible_text(tag)).casefold() == FALLBACK_TAG


def _warn_follow_up_cycles(intents: Sequence[Intent], first_index: Mapping[str, int], source: str) -> None:
    """Log a warning for each cycle of classic follow-ups (``context`` leading back to an intent
    of the chain): once entered, the flow never closes by itself. Each intent names at most one
    follow-up, so following ``next_tag`` from every intent finds every cycle; each is named once,
    at its intent that comes first in the file."""
    next_of = {intent.tag: intent.next_tag for intent in intents}
    free_text = {intent.tag for intent in intents if intent.free_text}
    can_interrupt = any(intent.interrupts and intent.patterns for intent in intents)  # only a chosen one can
    done: set[str] = set()
    for intent in intents:
        path: dict[str, int] = {}  # tag -> its place on the path (a list's `in` made long chains quadratic)
        tag: str | None = intent.tag
        while tag is not None and tag not in done and tag not in path:
            path[tag] = len(path)
            tag = next_of.get(tag)
        done.update(path)
        if tag is None or tag not in path:
            continue  # the chain ends, or joins one already followed
        cycle = list(path)[path[tag] :]
        first = min(cycle, key=lambda t: first_index[t])
        start = cycle.index(first)
        ordered = cycle[start:] + cycle[:start]
        if free_text & set(cycle):  # a free_text follow-up takes any message but an interrupting intent's
            leaves = "only an interrupting intent leaves it (a free_text follow-up takes every other message)"
            if not can_interrupt:
                leaves = "nothing leaves it: a free_text follow-up takes every message, and no intent interrupts"
        else:
            leaves = (
                "only an interrupting intent, or (follow_ups 'yield') an intent the classifier is sure of, leaves it"
            )
        log.warning(
            "%s: %s: field 'context': follow-up cycle %s: once this flow is entered it never closes; %s, and with "
            "follow_ups 'classic' nothing does",
            source,
            _where(first_index[first], first),
            " -> ".join(map(repr, [*ordered, first])),
            leaves,
        )


def _warn_unreachable(intents: Sequence[Intent], first_index: Mapping[str, int], source: str) -> None:
    """Log a warning for each answering intent without patterns (the fallback aside) that no
    follow-up chain from an intent the classifier can choose leads to: it can never answer."""
    next_of = {intent.tag: intent.next_tag for intent in intents}
    reached: set[str] = set()
    for intent in intents:
        tag: str | None = intent.tag if intent.patterns else None
        while tag is not None and tag not in reached:
            reached.add(tag)
            tag = next_of.get(tag)
    hint = ""
    if not any(intent.tag == FALLBACK_TAG for intent in intents):
        hint = f" (answers for messages no intent fits belong to the intent tagged {FALLBACK_TAG!r})"
    for intent in intents:
        if intent.tag in reached or intent.tag == FALLBACK_TAG or intent.out_of_scope:
            continue
        log.warning(
            "%s: %s: field 'patterns': is empty and no follow-up ('context') of an intent with patterns leads "
            "to it: it can never answer%s",
            source,
            _where(first_index[intent.tag], intent.tag),
            hint,
        )


def _warn_rules_without_effect(intents: Sequence[Intent], first_index: Mapping[str, int], source: str) -> None:
    """Log a warning for each context rule the dialogue never acts on: ``free_text`` on an intent
    that no intent's ``context`` names (only a follow-up's next turn is read as free text: set on
    the intent that asks, it is ignored), and a ``context_set`` value that no intent's
    ``context_filter`` reads (a misspelt context: it only ends the context flow that is open, as
    ``""`` would), and ``interrupts`` on an intent without patterns (the classifier never chooses
    it, so it never interrupts)."""
    followed = {intent.next_tag for intent in intents if intent.next_tag is not None}
    filters = {intent.context_filter for intent in intents if intent.context_filter}
    filter_looks = {looks_of(context): context for context in filters}
    for intent in intents:
        where = _where(first_index[intent.tag], intent.tag)
        if intent.free_text and intent.tag not in followed:
            log.warning(
                "%s: %s: field 'free_text': no intent's 'context' names this intent, so it is never a follow-up "
                "and free_text has no effect (it belongs on the follow-up that 'context' names)",
                source,
                where,
            )
        if intent.interrupts and not intent.patterns:
            log.warning(
                "%s: %s: field 'interrupts': the intent has no patterns, so the classifier never chooses it and "
                "it never interrupts a flow (it belongs on an intent with patterns, such as 'cancel')",
                source,
                where,
            )
        if intent.context_set and intent.context_set not in filters and intent.tag != FALLBACK_TAG:
            like = _written_otherwise(intent.context_set, filter_looks)
            log.warning(
                "%s: %s: field 'context_set': %r is read by no intent's 'context_filter': it only ends the "
                'context that is set, as "" would%s',
                source,
                where,
                intent.context_set,
                "" if like is None else _alike("a 'context_filter' reads", like, intent.context_set),
            )


def _warn_shared_patterns(intents: Sequence[Intent], first_index: Mapping[str, int], source: str) -> None:
    """Log a warning for each pattern that two intents share (compared as the classifier reads
    them: case, spaces and Unicode forms aside): the classifier is taught two answers for one
    text, and neither wins. The first :data:`SHARED_TEXT_WARNINGS` are named, the rest counted."""
    owner: dict[str, str] = {}
    warned = 0
    for intent in intents:
        for pattern in dict.fromkeys(folded(p) for p in intent.patterns):
            first = owner.setdefault(pattern, intent.tag)
            if first == intent.tag:
                continue
            warned += 1
            if warned <= SHARED_TEXT_WARNINGS:
                log.warning(
                    "%s: %s: pattern %s is also a pattern of intent #%d (%r); the classifier cannot tell them apart",
                    source,
                    _where(first_index[intent.tag], intent.tag),
                    shown_text(pattern),
                    first_index[first],
                    first,
                )
    if warned > SHARED_TEXT_WARNINGS:
        log.warning(
            "%s: %d more patterns are also patterns of another intent (%d in all)",
            source,
            warned - SHARED_TEXT_WARNINGS,
            warned,
        )


def _parse_intent(
    entry: Any, index: int, problems: list[str], oos_label: str, source: str, held_out: bool = False
) -> Intent | None:
    if not isinstance(entry, Mapping):
        problems.append(f"{_where(index, None)}: must be an object, got {json_kind(entry)}")
        return None
    tag = entry.get("tag")
    where = _where(index, tag if isinstance(tag, str) else None)
    before = len(problems)
    out_of_scope = tag == oos_label
    # the out-of-scope intent needs no responses (its messages get the fallback's), and the
    # fallback no patterns (it is chosen when no intent fits, never by its own)
    optional_here = {"responses"} if out_of_scope else {"patterns"} if tag == FALLBACK_TAG else set()
    if held_out:  # held-out sentences: no answer is read
        optional_here.add("responses")
    for name in REQUIRED_FIELDS:
        if name not in entry and name not in optional_here:
            instead = next((other for other in OTHER_NAMES[name] if other in entry), None)
            hint = f" (it has {instead!r}: this format calls that field {name!r})" if instead else ""
            problems.append(f"{where}: field {name!r} is missing{hint}")
    unknown = sorted(set(entry) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
    if unknown:
        # named with its file, as every other problem: train reads two intents files with --validation-data
        log.warning("%s: %s: ignoring unknown field(s) %s", source, where, ", ".join(map(repr, unknown)))
    for name in (*REQUIRED_FIELDS, *OPTIONAL_FIELDS):
        if name in entry and _has_lone_surrogate(entry[name]):
            # JSON may escape one ("\ud800"); no model file or answer could hold it as UTF-8
            problems.append(f"{where}: field {name!r}: is not valid Unicode text (a lone surrogate escape)")
    if "tag" in entry and (not isinstance(tag, str) or not visible_text(tag)):
        # "got a string" for "" read as no problem at all: say what the string holds
        got = f"only invisible format characters ({ascii(tag)})"
        if not isinstance(tag, str):
            got = json_kind(tag)
        elif not tag:
            got = "an empty string"
        elif not tag.strip():
            got = "only spaces"
        problems.append(f"{where}: field 'tag': must be a non-empty string, got {got}")
    elif isinstance(tag, str) and tag != tag.strip():
        # "a " and "a" would be two intents that look alike in every answer and log
        problems.append(f"{where}: field 'tag': has spaces at its start or end")
    elif isinstance(tag, str) and (control := control_character_problem(tag)):
        problems.append(f"{where}: field 'tag': {control}")
    elif isinstance(tag, str) and (invisible := format_character_problem(tag)):
        problems.append(f"{where}: field 'tag': {invisible}")
    elif isinstance(tag, str) and tag != oos_label and looks_of(tag) == looks_of(oos_label):
        # an in-scope intent, beside the out-of-scope class it reads as
        problems.append(
            f"{where}: field 'tag': {tag!r} looks the same as the out-of-scope label {oos_label!r}; tags may "
            "not differ from it only in case, Unicode form or invisible format characters"
        )
    elif isinstance(tag, str) and _looks_like_fallback(tag):
        # an ordinary intent, never chosen, while the fallback would use the default answer
        problems.append(
            f"{where}: field 'tag': {tag!r} looks like the reserved fallback tag; "
            f"the fallback intent's tag is {FALLBACK_TAG!r}"
        )
    patterns = _string_list(entry, "patterns", where, problems, allow_empty_list=True)
    responses = _string_list(entry, "responses", where, problems, allow_empty_list=out_of_scope)
    if out_of_scope:
        _check_out_of_scope(entry, source, where, problems)
    elif tag == FALLBACK_TAG:
        _check_fallback(entry, where, problems)
    context_set = _optional_string(entry, "context_set", where, problems)
    context_filter = _optional_string(entry, "context_filter", where, problems)
    next_tag = _classic_context(entry, where, problems)
    free_text = _optional_flag(entry, "free_text", where, problems)
    interrupts = _optional_flag(entry, "interrupts", where, problems)
    if len(problems) > before:
        return None
    return Intent(
        tag=str(tag),  # checked above: a non-empty string, else a problem was recorded
        patterns=tuple(p.strip() for p in patterns),
        responses=tuple(responses),
        context_set=context_set,
        context_filter=context_filter or None,
        next_tag=next_tag,
        free_text=free_text,
        interrupts=interrupts,
        out_of_scope=out_of_scope,
    )


def _has_lone_surrogate(value: Any) -> bool:
    """Whether a string, or a string in a list, holds a code point UTF-8 cannot encode. Only one
    level of list is looked into (a list inside it is refused as no string by the field's own
    check): following lists nested hundreds deep, which JSON allows, ran out of stack."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False


def _check_out_of_scope(entry: Mapping, source: str, where: str, problems: list[str]) -> None:
    for name in NOT_FOR_OUT_OF_SCOPE:
        if not _is_no_rule(entry.get(name)):
            problems.append(
                f"{where}: field {name!r}: has no effect on the out-of-scope intent (its messages get the fallback)"
            )
    if entry.get("responses"):
        # named with its file, as the other warnings: train reads two intents files with --validation-data
        log.warning(
            "%s: %s: the out-of-scope intent's responses are never used: its messages get the fallback's", source, where
        )


def _check_fallback(entry: Mapping, where: str, problems: list[str]) -> None:
    if entry.get("patterns") not in (None, []):
        # trained as a class, it was answered as an ordinary intent (reason "intent"), and left
        # an open follow-up when its patterns matched
        problems.append(
            f"{where}: field 'patterns': the fallback intent takes none: it answers when no intent fits; "
            "examples of messages that should get it belong to the out-of-scope intent"
        )
    for name in NOT_FOR_FALLBACK:
        if not _is_no_rule(entry.get(name)):
            problems.append(
                f"{where}: field {name!r}: has no effect on the fallback intent (the fallback keeps the "
                "conversation's context and opens no follow-up)"
            )


def _is_no_rule(value: Any) -> bool:
    """Whether a context field's value, as the fields are read, sets no rule: absent, false, or
    text empty once spaces and invisible characters are removed (``"  "``, ``["", ""]``, as
    ``""`` and ``[""]`` are), which no intent acts on either."""
    if isinstance(value, str):
        return not visible_text(value)
    if isinstance(value, list):
        return all(isinstance(item, str) and not visible_text(item) for item in value)
    return value in (None, False)


def _string_list(entry: Mapping, name: str, where: str, problems: list[str], allow_empty_list: bool) -> Sequence[str]:
    if name not in entry:
        return ()
    value = entry[name]
    if not isinstance(value, list):
        problems.append(f"{where}: field {name!r}: must be a list of strings, got {json_kind(value)}")
        return ()
    if not value and not allow_empty_list:
        problems.append(f"{where}: field {name!r}: must not be empty")
    for position, item in enumerate(value):
        if not isinstance(item, str):
            problems.append(f"{where}: field {name!r}[{position}]: must be a string, got {json_kind(item)}")
        elif not item.strip():
            problems.append(f"{where}: field {name!r}[{position}]: is empty")
        elif not visible_text(item):
            problems.append(
                f"{where}: field {name!r}[{position}]: is empty once invisible format characters "
                "(such as a zero-width space) are removed"
            )
    return value


def _optional_string(entry: Mapping, name: str, where: str, problems: list[str]) -> str | None:
    if name not in entry or entry[name] is None:
        return None
    value = entry[name]
    if not isinstance(value, str):
        problems.append(f"{where}: field {name!r}: must be a string, got {json_kind(value)}")
        return None
    # a context of only invisible characters is empty, as other text is: "" clears, no filter
    return value.strip() if visible_text(value) else ""


def _optional_flag(entry: Mapping, name: str, where: str, problems: list[str]) -> bool:
    value = entry.get(name, False)
    if not isinstance(value, bool):
        problems.append(f"{where}: field {name!r}: must be true or false, got {json_kind(value)}")
        return False
    return value


def _classic_context(entry: Mapping, where: str, problems: list[str]) -> str | None:
    if "context" not in entry or entry["context"] is None:
        return None
    value = entry["context"]
    if isinstance(value, str):  # seen in the wild: "context": "tag"
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        odd = next((v for v in value if not isinstance(v, str)), None) if isinstance(value, list) else None
        got = f"a list holding {json_kind(odd)}" if isinstance(value, list) else json_kind(value)
        problems.append(f"{where}: field 'context': must be a list of strings, got {got}")
        return None
    named = [v.strip() for v in value if visible_text(v)]
    if len(named) > 1:
        problems.append(f"{where}: field 'context': names {len(named)} tags, only one can handle the next turn")
        return None
    return named[0] if named else None


def _where(index: int, tag: str | None) -> str:
    return f"intent #{index} ({tag!r})" if tag else f"intent #{index}"
