"""Golden predictions: what a model answered for fixed sentences, to pin its behaviour.

``golden.json`` is ``{"model": name, "cases": [{"text", "intent", "probabilities": {tag: p}}]}``
where ``intent`` is the top of the raw ranking (as ``/api/v1/parse`` reports it).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from legacy_assistant.classifier.predictor import Predictor
from legacy_assistant.common.fields import is_finite_number
from legacy_assistant.common.files import write_text_atomically
from legacy_assistant.common.input_files import NotUtf8Error, input_text, read_input_bytes, read_problem
from legacy_assistant.common.jsonfile import read_json_file
from legacy_assistant.errors import ArtifactError, AssistantError

_LINE_END = re.compile(r"\r\n?|\n")

GOLDEN_FILE = "golden.json"


def golden_cases(predictor: Predictor, sentences: Sequence[str]) -> list[dict[str, Any]]:
    probabilities = predictor.predict_proba(list(sentences))
    return [
        {
            "text": text,
            "intent": predictor.classes[int(row.argmax())],
            "probabilities": {tag: float(p) for tag, p in zip(predictor.classes, row)},
        }
        for text, row in zip(sentences, probabilities)
    ]


def write_golden(
    predictor: Predictor, sentences: Sequence[str], path: str | Path, before: Callable[[], None] | None = None
) -> Path:
    path = Path(path)
    data = {"model": predictor.name, "cases": golden_cases(predictor, sentences)}
    if before is not None:  # the last check before the file is written (it raises to write nothing)
        before()
    return write_text_atomically(path, json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def compare_golden(predictor: Predictor, golden: dict[str, Any], source: str | Path = "golden file") -> dict[str, Any]:
    """Max absolute probability difference and top-1 agreement against stored cases; ``source``
    (the golden file's path) names where a case that does not fit the model is."""
    cases = golden["cases"]
    fresh = golden_cases(predictor, [case["text"] for case in cases])
    max_delta = 0.0
    largest: dict[str, Any] | None = None  # the case of the largest difference, which a failed check names
    agree = 0
    mismatches = []
    for number, (stored, now) in enumerate(zip(cases, fresh), 1):
        if set(stored["probabilities"]) != set(now["probabilities"]):
            unknown = sorted(set(stored["probabilities"]) - set(now["probabilities"]))
            missing = sorted(set(now["probabilities"]) - set(stored["probabilities"]))
            raise ArtifactError(
                f"{source}: case {number} ({stored['text'][:60]!r}): field 'probabilities' names other intents "
                f"than the model (not the model's: {', '.join(map(repr, unknown[:5])) or 'none'}; "
                f"missing: {', '.join(map(repr, missing[:5])) or 'none'})"
            )
        delta = max(abs(stored["probabilities"][t] - now["probabilities"][t]) for t in stored["probabilities"])
        if not math.isfinite(delta):  # a model that answers NaN matches nothing (max() would skip a NaN)
            max_delta = math.inf
            mismatches.append({"text": stored["text"], "stored": stored["intent"], "now": "non-finite probabilities"})
            continue
        if largest is None or delta > max_delta:
            largest = {"text": stored["text"], "delta": delta}
        max_delta = max(max_delta, delta)
        if stored["intent"] == now["intent"]:
            agree += 1
        else:
            mismatches.append({"text": stored["text"], "stored": stored["intent"], "now": now["intent"]})
    return {
        "cases": len(cases),
        "max_abs_delta": max_delta,
        "largest_delta": largest,
        "top1_agreement": agree / max(len(cases), 1),
        "mismatches": mismatches,
    }


def read_sentences(path: str | Path) -> list[str]:
    """One sentence per line; blank lines and ``#`` comments skipped. A line ends at ``\\n``,
    ``\\r\\n`` or a lone ``\\r`` only: a sentence may hold the other characters that
    ``str.splitlines`` breaks at (U+2028, U+0085, a form feed), which a model reads as spaces."""
    try:
        lines = _LINE_END.split(input_text(read_input_bytes(path)))
    except OSError as exc:
        problem = read_problem(path, exc)
        raise AssistantError(
            f"{path}: {'sentences file not found' if problem == 'file not found' else problem}"
        ) from None
    except NotUtf8Error as exc:
        raise AssistantError(f"{path}: {exc}") from None
    sentences = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not sentences:  # a golden file of no cases would pass every check
        raise AssistantError(f"{path}: no sentences (one a line; blank lines and # comments are skipped)")
    return sentences


def read_golden(path: str | Path) -> dict[str, Any]:
    """A golden file, checked case by case; any problem raises :class:`ArtifactError` naming it."""
    golden = read_json_file(path, lambda problem: ArtifactError(f"{path}: {problem}"))
    if not isinstance(golden, dict) or not isinstance(golden.get("cases"), list):
        raise ArtifactError(f"{path}: not a golden file: expected an object with a 'cases' list")
    if golden.get("mode") == "greedy":  # a responder's (legacy_assistant.responder.golden)
        raise ArtifactError(
            f"{path}: a responder's golden replies, not an intent model's golden predictions: "
            "check it against the responder it was written for"
        )
    for number, case in enumerate(golden["cases"], 1):
        probabilities = case.get("probabilities") if isinstance(case, dict) else None
        if (
            not isinstance(case, dict)
            or not isinstance(case.get("text"), str)
            or not isinstance(case.get("intent"), str)
            or not isinstance(probabilities, dict)
            or not all(is_finite_number(p) for p in probabilities.values())  # a NaN compares as no change
        ):
            raise ArtifactError(
                f"{path}: case {number}: expected 'text', 'intent' and 'probabilities' of finite numbers"
            )
    if not golden["cases"]:  # no case would pass every check
        raise ArtifactError(f"{path}: no golden cases: a check against it could not fail")
    return golden
