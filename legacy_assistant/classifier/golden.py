"""Golden predictions: what a model answered for fixed sentences, to pin its behaviour.

``golden.json`` is ``{"model": name, "cases": [{"text", "intent", "probabilities": {tag: p}}]}``
where ``intent`` is the top of the raw ranking (as ``/api/v1/parse`` reports it).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from legacy_assistant.classifier.predictor import Predictor

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


def write_golden(predictor: Predictor, sentences: Sequence[str], path: str | Path) -> Path:
    path = Path(path)
    data = {"model": predictor.name, "cases": golden_cases(predictor, sentences)}
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def compare_golden(predictor: Predictor, golden: dict[str, Any]) -> dict[str, Any]:
    """Max absolute probability difference and top-1 agreement against stored cases."""
    cases = golden["cases"]
    fresh = golden_cases(predictor, [case["text"] for case in cases])
    max_delta = 0.0
    agree = 0
    mismatches = []
    for stored, now in zip(cases, fresh):
        if set(stored["probabilities"]) != set(now["probabilities"]):
            raise ValueError(f"golden case {stored['text']!r} names other intents than the model")
        delta = max(abs(stored["probabilities"][t] - now["probabilities"][t]) for t in stored["probabilities"])
        max_delta = max(max_delta, delta)
        if stored["intent"] == now["intent"]:
            agree += 1
        else:
            mismatches.append({"text": stored["text"], "stored": stored["intent"], "now": now["intent"]})
    return {"cases": len(cases), "max_abs_delta": max_delta, "top1_agreement": agree / max(len(cases), 1),
            "mismatches": mismatches}


def read_sentences(path: str | Path) -> list[str]:
    """One sentence per line; blank lines and ``#`` comments skipped."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def read_golden(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))
