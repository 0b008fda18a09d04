"""Golden replies: what a responder said, greedily, to fixed contexts under every condition, to
pin its behaviour.

``golden.json``::

    {"model": name, "mode": "greedy", "conditions": [...],
     "cases": [{"context": [turn, ...], "condition": str, "reply": str, "ids": [int, ...],
                "log_prob": float}, ...]}

``ids`` are the reply's token ids up to and including END; ``log_prob`` is their summed natural
log-probability under the model; ``reply`` is the text :meth:`Responder.respond` gives. A check
asks for the same ids and the same text for every case, and reports the largest difference of
``log_prob`` (float rounding between TensorFlow releases moves it in the last bits).

A contexts file is a JSON list of contexts, each a list of turns (strings, oldest first) or
one string for a one-turn context.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from legacy_assistant.common.fields import is_finite_number
from legacy_assistant.common.files import write_text_atomically
from legacy_assistant.common.jsonfile import read_json_file
from legacy_assistant.errors import ArtifactError, AssistantError, RequestError
from legacy_assistant.responder.batching import EncodedPair, pad_batch
from legacy_assistant.responder.responder import Responder
from legacy_assistant.responder.vocabulary import END

GOLDEN_FILE = "golden.json"
MODE = "greedy"
DEFAULT_TOLERANCE = 1e-4  # on a reply's summed log-probability (nats)


def golden_cases(responder: Responder, contexts: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    """Every context under every condition of ``responder``: the greedy reply's text, ids and
    log-probability, with the responder's decoding options. Replies are decoded in one batch
    for the ids (:meth:`Responder.decode_batch`), and through :meth:`Responder.respond_batch`
    for the text."""
    jobs = [(list(context), condition) for context in contexts for condition in responder.conditions]
    if not jobs:
        return []
    texts = responder.respond_batch([c for c, _ in jobs], [k for _, k in jobs], mode=MODE)
    ids, log_probs = _greedy_ids(responder, jobs)
    return [
        {"context": context, "condition": condition, "reply": text, "ids": reply_ids, "log_prob": log_prob}
        for (context, condition), text, reply_ids, log_prob in zip(jobs, texts, ids, log_probs)
    ]


def _greedy_ids(responder: Responder, jobs: list[tuple[list[str], str]]) -> tuple[list[list[int]], list[float]]:
    spec = responder.spec
    pairs = []
    for context, condition in jobs:
        encoded = responder.vocabulary.encode_asked_context(context, spec.max_context_turns, spec.max_turn_tokens)
        pairs.append(EncodedPair(tuple(tuple(t) for t in encoded), (END,), responder.conditions.index(condition)))
    batch = pad_batch(pairs, spec.max_context_turns)
    # with the responder's decoding options, as respond_batch decodes the text: a repetition
    # penalty or condition guidance changes the greedy reply, and the ids must spell the text
    result = responder.decode_batch(batch, MODE)
    ids = [[int(t) for t in result.ids[row, 0, : result.lengths[row, 0]]] for row in range(len(jobs))]
    return ids, [float(v) for v in np.asarray(result.log_probs)[:, 0]]


def write_golden(
    responder: Responder, contexts: Sequence[Sequence[str]], path: str | Path, before: Callable[[], None] | None = None
) -> Path:
    path = Path(path)
    head = {"model": responder.info.name, "mode": MODE, "conditions": list(responder.conditions)}
    # One case a line: the file reads (and diffs) case by case.
    cases = ",\n".join(json.dumps(case, ensure_ascii=False) for case in golden_cases(responder, contexts))
    text = json.dumps(head, ensure_ascii=False)[:-1] + f', "cases": [\n{cases}\n]}}\n'
    if before is not None:  # the last check before the file is written (it raises to write nothing)
        before()
    return write_text_atomically(path, text)


def compare_golden(responder: Responder, golden: dict[str, Any]) -> dict[str, Any]:
    """The stored cases against the model now: how many give the same ids and text, the
    mismatches (a case whose text is the same but whose token ids are not also has
    ``stored_ids`` and ``now_ids``), and the largest difference of ``log_prob``."""
    cases = golden["cases"]
    unknown = sorted({case["condition"] for case in cases} - set(responder.conditions))
    if unknown:
        raise ArtifactError(f"golden cases name condition(s) the model does not have: {', '.join(unknown)}")
    fresh = _cases_for(responder, cases)
    mismatches = []
    max_delta = 0.0
    largest: dict[str, Any] | None = None  # the case of the largest difference, which a failed check names
    for stored, now in zip(cases, fresh):
        delta = abs(stored["log_prob"] - now["log_prob"])
        if math.isfinite(delta) and (largest is None or delta > max_delta):
            largest = {"context": stored["context"], "condition": stored["condition"], "delta": delta}
        max_delta = max(max_delta, delta) if math.isfinite(delta) else math.inf  # a NaN is no match
        if stored["ids"] != now["ids"] or stored["reply"] != now["reply"]:
            mismatch = {
                "context": stored["context"],
                "condition": stored["condition"],
                "stored": stored["reply"],
                "now": now["reply"],
            }
            if stored["reply"] == now["reply"]:
                # the same words from other token ids (a model with another vocabulary): without
                # the ids, "stored" and "now" read alike and the mismatch named no difference
                mismatch.update(stored_ids=stored["ids"], now_ids=now["ids"])
            mismatches.append(mismatch)
    return {
        "cases": len(cases),
        "same_replies": len(cases) - len(mismatches),
        "max_abs_delta": max_delta,
        "largest_delta": largest,
        "mismatches": mismatches,
    }


def _cases_for(responder: Responder, cases: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    jobs = [(list(case["context"]), case["condition"]) for case in cases]
    if not jobs:
        return []
    texts = responder.respond_batch([c for c, _ in jobs], [k for _, k in jobs], mode=MODE)
    ids, log_probs = _greedy_ids(responder, jobs)
    return [{"reply": t, "ids": i, "log_prob": p} for t, i, p in zip(texts, ids, log_probs)]


def read_contexts(path: str | Path) -> list[list[str]]:
    """A contexts file (see the module docstring); a problem raises :class:`AssistantError`
    naming the file and the context's number."""
    data = read_json_file(path, lambda problem: AssistantError(f"{path}: {problem}"))
    if not isinstance(data, list) or not data:
        raise AssistantError(f"{path}: expected a non-empty JSON list of contexts")
    contexts = []
    for number, context in enumerate(data, 1):
        turns = [context] if isinstance(context, str) else context
        if not isinstance(turns, list) or not turns or not all(isinstance(t, str) and t.strip() for t in turns):
            raise AssistantError(
                f"{path}: context {number}: expected a list of non-empty strings (turns, oldest first)"
            )
        if not all(_valid_unicode(turn) for turn in turns):  # no UTF-8 golden file could hold it
            raise AssistantError(
                f"{path}: context {number}: a turn is not valid Unicode text (a lone surrogate escape)"
            )
        contexts.append(turns)
    return contexts


def _valid_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_contexts(responder: Responder, contexts: Sequence[Sequence[str]], path: str | Path, what: str) -> None:
    """Refuse, naming ``path`` and the ``what`` number (``context``, ``case``), a context the
    responder cannot answer (one whose turns hold no token it can read, say)."""
    for number, context in enumerate(contexts, 1):
        try:
            responder.check_request(context)
        except RequestError as exc:
            raise AssistantError(f"{path}: {what} {number}: {exc}") from None


def check_case_conditions(responder: Responder, cases: Sequence[dict[str, Any]], path: str | Path) -> None:
    """Refuse, naming ``path`` and the case's number, a case whose condition the responder lacks."""
    for number, case in enumerate(cases, 1):
        if case["condition"] not in responder.conditions:
            raise AssistantError(
                f"{path}: case {number}: condition {case['condition']!r} is not one of the model's "
                f"({', '.join(responder.conditions)})"
            )


def read_golden(path: str | Path) -> dict[str, Any]:
    """A responder golden file, checked case by case; any problem raises :class:`ArtifactError` naming it."""
    golden = read_json_file(path, lambda problem: ArtifactError(f"{path}: {problem}"))
    cases = golden.get("cases") if isinstance(golden, dict) else None
    first = cases[0] if isinstance(cases, list) and cases else None
    if isinstance(first, dict) and "intent" in first and "mode" not in golden:  # the classifier's layout
        raise ArtifactError(
            f"{path}: an intent model's golden predictions, not a responder's golden replies: "
            "check it against the intent model it was written for"
        )
    if not isinstance(golden, dict) or not isinstance(golden.get("cases"), list) or golden.get("mode") != MODE:
        raise ArtifactError(
            f"{path}: not a responder golden file: expected an object with mode 'greedy' and a 'cases' list"
        )
    for number, case in enumerate(golden["cases"], 1):
        if (
            not isinstance(case, dict)
            or not isinstance(case.get("context"), list)
            or not all(isinstance(t, str) for t in case["context"])
            or not isinstance(case.get("condition"), str)
            or not isinstance(case.get("reply"), str)
            or not isinstance(case.get("ids"), list)
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in case["ids"])
            or not is_finite_number(case.get("log_prob"))  # a NaN would compare as no difference at all
        ):
            raise ArtifactError(
                f"{path}: case {number}: expected 'context' (list of strings), 'condition', 'reply', "
                "'ids' (list of integers) and a finite numeric 'log_prob'"
            )
    if not golden["cases"]:  # no case would pass every check
        raise ArtifactError(f"{path}: no golden cases: a check against it could not fail")
    return golden
