"""The curl examples of docs/API.md and the README, sent as written to the app over the shipped model: the
answers they show must be the ones the model gives (the classification; a canned reply is
picked at random and a generated one is sampled, so their text is not compared)."""
import json
import re
import shlex

import pytest

from tests.helpers import ROOT

DOCUMENTS = ["README.md", "docs/API.md"]

SH_BLOCK = re.compile(r"^```sh\n(.*?)^```\n", re.MULTILINE | re.DOTALL)
NUMBER = re.compile(r'"(confidence|probability)":\s*"?([0-9.]+)')


def documented_examples(document: str) -> list[tuple[str, dict, list[str]]]:
    """Each curl line with a JSON body, and the JSON answers the comments after it show (as written)."""
    text = (ROOT / document).read_text(encoding="utf-8")
    examples: list[tuple[str, dict, list[str]]] = []
    for block in SH_BLOCK.findall(text):
        lines = block.replace("\\\n", " ").splitlines()
        for index, line in enumerate(lines):
            words = shlex.split(line, comments=True)
            if not words or words[0] != "curl" or "-d" not in words:
                continue
            path = "/" + words[2].split("/", 1)[1]
            answers, pending = [], ""
            for comment in lines[index + 1:]:
                if not comment.startswith("#"):
                    break
                piece = comment[1:].strip()
                if piece.startswith(("{", "[")) or pending:
                    pending += piece.split(" (", 1)[0] if piece.endswith(")") else piece
                    try:
                        json.loads(pending)
                    except json.JSONDecodeError:
                        continue
                    answers.append(pending)
                    pending = ""
            examples.append((path, json.loads(words[words.index("-d") + 1]), answers))
    return examples


@pytest.mark.parametrize("document", DOCUMENTS)
def test_the_curl_examples_are_found(document):
    shown = [path for path, _, answers in documented_examples(document) if answers]
    assert shown.count("/api/v1/chat") >= 2 and "/katana-ml/api/v1.0/assistant" in shown


def same_to_the_digits_shown(got: float, written: str) -> bool:
    decimals = min(len(written.split(".", 1)[1]) if "." in written else 0, 6)
    return round(got, decimals) == round(float(written), decimals)


@pytest.mark.parametrize("document", DOCUMENTS)
def test_the_curl_examples_classify_as_the_document_shows(client, document):
    """Sent in the document's order (a conversation's context carries over), each example's
    answer has the intent, reason and confidence shown, to the digits shown; an example shown
    with two answers (a message sent again) is sent twice."""
    checked = 0
    for path, body, answers in documented_examples(document):
        for written in answers or [None]:
            response = client.post(path, json=body)
            assert response.status_code == 200, (body, response.get_json())
            if written is None or path.startswith("/webhooks/"):
                continue
            got, shown = response.get_json(), json.loads(written)
            if isinstance(shown, list):  # the classic route
                assert [a["intent"] for a in got] == [a["intent"] for a in shown], body
                numbers = [float(a["probability"]) for a in got]
            else:
                for key in ("sender", "intent", "reason", "replayed"):
                    assert got[key] == shown[key], (body, key, got[key], shown[key])
                numbers = [got["confidence"]]
            written_numbers = [m.group(2) for m in NUMBER.finditer(written)]
            assert len(written_numbers) == len(numbers), written
            for number, text in zip(numbers, written_numbers):
                assert same_to_the_digits_shown(number, text), (body, number, text)
            checked += 1
    assert checked >= 3
