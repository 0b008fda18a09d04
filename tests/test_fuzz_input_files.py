"""Property: a file a person hands the project, however damaged — a valid file with a field of
the wrong type, a key removed or added, NaN, huge or deeply nested values, a lone surrogate
escape, bytes cut, inserted or changed — is read or refused with the project's own error naming
the file (and the line, dialogue or field), never a raw exception: intents, CSV and CLINC150
data files, the three corpus layouts, the classic recipe's word lists and both kinds of model
directory (their manifests edited and digested again, so the checksum does not catch it first).

Deterministic (``derandomize``) and small: a longer run is the same test with more examples."""
import copy
import json
import math
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from legacy_assistant.artifacts.directory import manifest_digest
from legacy_assistant.classifier.artifact import MANIFEST, verify_artifact
from legacy_assistant.classifier.classic.string_lists import read_string_list
from legacy_assistant.classifier.datasets import load_data
from legacy_assistant.errors import ArtifactError, DataError, IntentsError
from legacy_assistant.responder.artifact import MANIFEST as RESPONDER_MANIFEST
from legacy_assistant.responder.artifact import verify_responder
from legacy_assistant.responder.corpora import read_corpus
from legacy_assistant.serving.dialogue import DialoguePolicy
from tests.helpers import DEFAULT_MODEL, DEFAULT_RESPONDER, TEST_DATA

FUZZ = settings(max_examples=120, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
# Each example of these copies a model directory's manifest and hashes its files again.
FUZZ_MODELS = settings(FUZZ, max_examples=60)

ODD = [None, True, False, 0, -1, 1.5, 10**30, 1e308, math.nan, math.inf, -math.inf, "", " ", "\u200b", "\x00",
       "\ud800", "x" * 2000, [], {}, [[]], [None], [1], ["a", 1], [""], {"a": 1}, [[[[[[[[[["deep"]]]]]]]]]],
       "fallback", "oos", ["fallback"], "neutral"]
# What Python's readers and writers trip on, drawn as often as all the rest together. A drawn
# value is copied before it goes into a document: ODD's lists and dicts are shared by every example.
HARD = ["\ud800", "tea\udfff", 10**30, math.nan, math.inf, 1e308]
odd_values = st.sampled_from(HARD) | st.sampled_from(ODD) | st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
KEYS = ["tag", "patterns", "responses", "context", "context_set", "context_filter", "free_text", "interrupts",
        "intent", "text", "label", "condition", "message", "sentiment", "content", "extra", "runtime", "idf"]
HARD_BYTES = [b"[" * 3000, b'"\\ud800", ', b"1" * 5000 + b", ", b"\xff"]
SNIPPETS = [b'"', b",", b"\n", b"\r", b"\x00", b"\xff", b"\xef\xbb\xbf", b"\xc2\x85", b"\xe2\x80\xa8", b"[", b"]",
            b"{", b"}", b":", b"- ", b"&a ", b"*a", b"? ", b"---\n", b'"\\ud800"', b"NaN", b"1" * 5000,
            b"[" * 3000, b"\t", b"!!python/object ", b"<<: ", b"#", b"\\", b"\xff\xfe"]


def _places(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _places(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _places(item, prefix + (index,))


@st.composite
def mutated(draw, document, keep=(), thin=()):
    """``document`` with one to three edits: a value replaced by an odd one, a key or item removed,
    a key added. Paths under ``keep`` are left alone; under ``thin`` (long lists), only the first
    few items are candidates."""
    document = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 3))):
        places = [p for p in _places(document) if p and p[0] not in keep
                  and not any(isinstance(k, int) and k > 3 and p[i - 1] in thin for i, k in enumerate(p) if i)]
        if not places:  # every key removed already
            break
        place = draw(st.sampled_from(places))
        parent = document
        for key in place[:-1]:
            parent = parent[key]
        edit = draw(st.sampled_from(["replace", "replace", "remove", "add"]))
        if edit == "replace":
            parent[place[-1]] = copy.deepcopy(draw(odd_values))
        elif edit == "remove":
            del parent[place[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(KEYS))] = copy.deepcopy(draw(odd_values))
        else:
            parent.append(copy.deepcopy(draw(odd_values)))
    return document


@st.composite
def damaged_bytes(draw, raw):
    """``raw`` with one to four snippets inserted, bytes deleted, or its tail cut off."""
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(raw)))
        edit = draw(st.sampled_from(["insert", "insert", "delete", "cut"]))
        if edit == "insert":
            snippet = draw(st.sampled_from(HARD_BYTES) | st.sampled_from(SNIPPETS) | st.binary(max_size=4))
            raw = raw[:at] + snippet + raw[at:]
        elif edit == "delete":
            raw = raw[:at] + raw[at + draw(st.integers(1, 8)):]
        else:
            raw = raw[:at]
    return raw


def _dumped(document):
    return json.dumps(document, allow_nan=True).encode("utf-8")  # "\ud800" as its escape, as a file holds it


INTENTS = json.loads((TEST_DATA / "tiny_intents.json").read_text(encoding="utf-8"))
CLINC = json.loads((TEST_DATA / "tiny_clinc.json").read_text(encoding="utf-8"))
CSV = (TEST_DATA / "tiny.csv").read_bytes()


@FUZZ
@given(raw=st.one_of(mutated(INTENTS).map(_dumped), mutated(CLINC).map(_dumped),
                     damaged_bytes(_dumped(INTENTS))),
       fmt=st.sampled_from(["auto", "intents", "clinc"]))
def test_a_damaged_json_data_file_is_read_or_refused_naming_it(tmp_path, raw, fmt):
    path = tmp_path / "data.json"
    path.write_bytes(raw)
    try:
        load_data(path, fmt)
    except (DataError, IntentsError) as exc:
        assert exc.source == str(path) and exc.problems and all(exc.problems), exc


@FUZZ
@given(raw=damaged_bytes(CSV))
def test_a_damaged_csv_file_is_refused_naming_its_lines(tmp_path, raw):
    path = tmp_path / "data.csv"
    path.write_bytes(raw)
    try:
        load_data(path)
    except DataError as exc:
        file_level = ("not UTF-8 text", "empty file", "no examples")
        assert all(p.startswith(("line ", "lines ")) or p.startswith(file_level) for p in exc.problems), exc


CAKECHAT = [[{"text": "hi", "condition": "neutral"}, {"text": "hello", "condition": "joy"}],
            [{"text": "a b", "condition": "anger"}, {"text": "c", "condition": "fear"}, {"text": "d", "condition": "x"}]]
TOPICAL = {"t1": {"content": [{"message": "hi", "sentiment": "Happy", "agent": "agent_1"},
                              {"message": "yo", "sentiment": "Sad", "agent": "agent_2"}]},
           "t2": {"content": [{"message": "x", "sentiment": "Neutral"}, {"message": "y"}]}}
CHATTERBOT = b"categories:\n- greetings\nconversations:\n- - Hello\n  - Hi there\n- - How are you?\n  - Fine\n  - Good\n"


def _lines(dialogues):
    return b"\n".join(json.dumps(d, allow_nan=True).encode("utf-8") for d in dialogues)


corpora = st.one_of(
    st.tuples(st.just("dialogues.jsonl"), st.one_of(mutated(CAKECHAT).map(_lines), damaged_bytes(_lines(CAKECHAT)))),
    st.tuples(st.just("topical.json"), st.one_of(mutated(TOPICAL).map(_dumped), damaged_bytes(_dumped(TOPICAL)))),
    st.tuples(st.just("chatterbot.yml"), damaged_bytes(CHATTERBOT)),
)


@FUZZ
@given(corpus=corpora, strict=st.booleans())
def test_a_damaged_corpus_is_refused_naming_the_line_or_the_conversation(tmp_path, corpus, strict):
    name, raw = corpus
    path = tmp_path / name
    path.write_bytes(raw)
    try:
        read_corpus(path, strict=strict)
    except DataError as exc:
        assert exc.source == str(path) and exc.problems, exc
        # a Topical-Chat file is one JSON document: its dialogues are named by id, its bytes by line
        where = ("conversation ", "line ", "key ") if name.endswith(".json") else ("line ",)
        file_level = ("not UTF-8 text", "empty file", "no dialogues", "no conversations", "invalid JSON",
                      "invalid YAML", "top level", "a .json corpus must be")
        assert all(p.startswith(where + file_level) for p in exc.problems), exc.problems


WORDS = (TEST_DATA / "classic" / "words.json").read_bytes()


@FUZZ
@given(raw=st.one_of(damaged_bytes(WORDS), mutated(json.loads(WORDS), thin=()).map(_dumped)))
def test_a_damaged_word_list_is_read_or_refused_naming_it(tmp_path, raw):
    path = tmp_path / "words.json"
    path.write_bytes(raw)
    try:
        words = read_string_list(path, "words")
    except ArtifactError as exc:
        assert str(exc).startswith(f"{path}: ") and "\n" not in str(exc), exc
    else:
        assert all(isinstance(word, str) and word for word in words)
        json.dumps(words, ensure_ascii=False).encode("utf-8")  # what the model's manifest will hold


def _edited_model(root, manifest_name, document):
    """The manifest written as ``document``, its own digest computed as an export would (or left
    as it was where the document holds text no digest can be computed of)."""
    try:
        document["manifest_sha256"] = manifest_digest(document)
    except UnicodeEncodeError:
        pass
    (root / manifest_name).write_bytes(_dumped(document))


@pytest.fixture(scope="module")
def model_copies(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzzed-models")
    return shutil.copytree(DEFAULT_MODEL, root / "default"), shutil.copytree(DEFAULT_RESPONDER, root / "responder")


CLASSIFIER_DOC = json.loads((DEFAULT_MODEL / MANIFEST).read_text(encoding="utf-8"))
RESPONDER_DOC = json.loads((DEFAULT_RESPONDER / RESPONDER_MANIFEST).read_text(encoding="utf-8"))
NOT_EDITED = ("files", "manifest_sha256", "format")
LONG_LISTS = ("vocabulary", "idf", "tokens", "intents", "classes")


def _verified_or_refused(model, manifest_name, document, verify):
    """What ``verify`` reads of ``model`` once its manifest is ``document``, or None where it is
    refused, as it must be, in one line naming the model."""
    _edited_model(model, manifest_name, document)
    try:
        return verify(model)
    except ArtifactError as exc:
        assert str(exc).startswith(str(model)) and "\n" not in str(exc), exc
        return None


@FUZZ_MODELS
@given(document=mutated(CLASSIFIER_DOC, keep=NOT_EDITED, thin=LONG_LISTS))
def test_an_edited_classifier_manifest_is_loaded_or_refused_naming_it(model_copies, document):
    info = _verified_or_refused(model_copies[0], MANIFEST, document, verify_artifact)
    if info is not None:  # what a load does next without TensorFlow: the dialogue's rules and the features
        DialoguePolicy.from_manifest(info.manifest)
        info.featurizer.encode(["hello there", "a large coffee please"])


@FUZZ_MODELS
@given(document=mutated(RESPONDER_DOC, keep=NOT_EDITED, thin=LONG_LISTS))
def test_an_edited_responder_manifest_is_loaded_or_refused_naming_it(model_copies, document):
    info = _verified_or_refused(model_copies[1], RESPONDER_MANIFEST, document, verify_responder)
    if info is not None:
        info.vocabulary.encode_asked_context(["hello there"], info.spec.max_context_turns, info.spec.max_turn_tokens)
