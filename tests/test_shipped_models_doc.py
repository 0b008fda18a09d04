"""What docs/CLASSIFIER.md and docs/RESPONDER.md say about the shipped data and models is what the
repository holds: the counts of the data files, the shipped intent model's figures on
`data/heldout.csv`, and the shipped responder's training figures and greedy replies (read from
its files)."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter

from tests.helpers import DEFAULT_MODEL, DEFAULT_RESPONDER, ROOT


def _doc(name: str) -> str:
    """The document with every run of whitespace (line breaks included) as one space."""
    return " ".join((ROOT / "docs" / name).read_text(encoding="utf-8").split())


def _thousands(n: int) -> str:
    return f"{n:,}"


def test_the_intents_file_is_counted_as_it_is():
    intents = json.loads((ROOT / "data" / "intents.json").read_text(encoding="utf-8"))["intents"]
    with_patterns = [i for i in intents if i["patterns"]]
    patterns = sum(len(i["patterns"]) for i in intents)
    oos = sum(len(i["patterns"]) for i in intents if i["tag"] == "oos")
    classes = json.loads((DEFAULT_MODEL / "assistant.json").read_text(encoding="utf-8"))["classes"]
    doc = _doc("CLASSIFIER.md")
    assert (
        f"a coffee-shop helper with {len(intents)} intents, {len(with_patterns)} of them with patterns "
        f"({patterns} patterns; the model's {len(classes)} classes), small talk, a fallback, {oos} out-of-scope"
    ) in doc
    assert f"`data/intents.json` ({patterns - oos} in-scope patterns in {len(with_patterns) - 1} intents," in doc


def test_the_held_out_sentences_are_counted_as_they_are():
    with open(ROOT / "data" / "heldout.csv", encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    in_scope = Counter(row["label"] for row in rows if row["label"] != "oos")
    doc = _doc("CLASSIFIER.md")
    assert f"`data/heldout.csv` holds {len(rows)} sentences" in doc
    per_intent = Counter(in_scope.values())  # "one to four an intent, two for most"
    assert (min(per_intent), max(per_intent), per_intent.most_common(1)[0][0]) == (1, 4, 2)
    assert (
        f"{sum(in_scope.values())} in-scope paraphrases (one to four an intent, two for most) and "
        f"{len(rows) - sum(in_scope.values())} off-topic messages"
    ) in doc


def test_the_held_out_figures_are_the_shipped_model_s(default_predictor):
    """The "with `oos`" column of the table on `data/heldout.csv`, to the digits shown, and the
    sentences quoted beside it with their intents and confidences."""
    from legacy_assistant.classifier.datasets import ALL, load_data
    from legacy_assistant.classifier.evaluation import evaluate_predictor

    examples = load_data(ROOT / "data" / "heldout.csv", held_out=True).splits[ALL]
    figures = evaluate_predictor(default_predictor, examples.texts, examples.labels)["at_threshold"]
    doc = _doc("CLASSIFIER.md")
    rows = {
        "in-scope accuracy at the threshold (answered with its own intent)": "in_scope_accuracy",
        "out-of-scope recall (sent to the fallback)": "oos_recall",
        "out-of-scope precision": "oos_precision",
        f"joint accuracy (all {len(examples.texts)})": "joint_accuracy",
    }
    for row, key in rows.items():
        shown = re.search(rf"\| {re.escape(row)} \| [0-9.]+ \| ([0-9.]+) \|", doc)
        assert shown, row
        half_a_digit = 0.5 * 10 ** -len(shown.group(1).split(".")[1])  # 52/64 = 0.8125 is shown 0.813
        assert abs(figures[key] - float(shown.group(1))) <= half_a_digit + 1e-9, (row, figures[key])
    quoted = re.findall(r'"([a-z ]+)"(?::)? \(?`(\w+)`(?:,| at) (0\.\d\d)\)?', doc[doc.index("One in-scope sentence"):])
    assert len(quoted) == 4
    for text, intent, confidence in quoted:
        [(top, probability)] = default_predictor.rank_one(text, top=1)
        assert (top, f"{probability:.2f}") == (intent, confidence), text


def test_the_shipped_responder_s_training_figures_are_its_own():
    summary = json.loads((DEFAULT_RESPONDER / "responder.json").read_text(encoding="utf-8"))["summary"]
    history = json.loads((DEFAULT_RESPONDER / "history.json").read_text(encoding="utf-8"))
    doc = _doc("RESPONDER.md")
    assert (
        f"| data | {_thousands(summary['train_dialogues'])} training dialogues, "
        f"{_thousands(summary['train_pairs'])} (context, reply) pairs:"
    ) in doc
    assert (
        f"held out: {_thousands(summary['held_out_dialogues'])} dialogues, "
        f"{_thousands(summary['held_out_pairs'])} pairs"
    ) in doc
    assert f"({_thousands(summary['steps'])} steps," in doc
    assert f"| validation perplexity | {summary['val_perplexity']:.2f} on `test_rare`" in doc
    by_epoch = ", ".join(f"{epoch['val_perplexity']:.1f}" for epoch in history)
    assert f"By epoch: {by_epoch}, and {summary['val_perplexity']:.2f} one batch into the" in doc


def test_the_greedy_replies_shown_are_the_golden_file_s():
    """The table of greedy replies to "Do you like movies?" is the shipped golden file's."""
    golden = json.loads((DEFAULT_RESPONDER / "golden.json").read_text(encoding="utf-8"))
    expected = {
        case["condition"]: case["reply"] for case in golden["cases"] if case["context"] == ["Do you like movies?"]
    }
    text = (ROOT / "docs" / "RESPONDER.md").read_text(encoding="utf-8")
    table = text.split("| condition | greedy reply |\n| --- | --- |\n", 1)[1].split("\n\n", 1)[0]
    shown = dict(re.fullmatch(r"\| (\w+) \| (.*) \|", row).groups() for row in table.splitlines())
    assert shown == expected
