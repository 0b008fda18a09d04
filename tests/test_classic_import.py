"""``import-classic``: a Keras chatbot (.h5 + words + classes + intents) becomes a model whose
predictions equal Keras's own and an independent numpy forward pass of the same weights.

The ``keras*_chatbot_model.h5`` fixtures were made once by ``scripts/make_classic_fixtures.py``
with real Keras 2 (TensorFlow 2.15) and Keras 3; the other layouts are written here with h5py.
"""
import json
import pickle
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from nltk.stem import LancasterStemmer
from nltk.tokenize import NLTKWordTokenizer
from nltk.tokenize.punkt import PunktSentenceTokenizer

from legacy_assistant.cli import main
from legacy_assistant.errors import ArtifactError
from legacy_assistant.classifier.classic.pickled_lists import UnsafePickle, decode_string_list
from legacy_assistant.classifier.predictor import Predictor
from tests.helpers import TEST_DATA

CLASSIC = TEST_DATA / "classic"
WORDS = json.loads((CLASSIC / "words.json").read_text())
CLASSES = (CLASSIC / "classes.txt").read_text().split()


def classic_bow(sentence: str) -> np.ndarray:
    """The classic recipe's bag of words, written out here independently of the featurizer."""
    stemmer, treebank = LancasterStemmer(), NLTKWordTokenizer()
    tokens = [t for s in PunktSentenceTokenizer().tokenize(sentence) for t in treebank.tokenize(s)]
    stems = {stemmer.stem(t.lower()) for t in tokens}
    return np.array([1.0 if w in stems else 0.0 for w in WORDS], np.float32)


def numpy_forward(layers, sentences):
    h = np.stack([classic_bow(s) for s in sentences])
    for i, (kernel, bias) in enumerate(layers):
        h = h @ kernel + bias
        if i < len(layers) - 1:
            h = np.maximum(h, 0)
    e = np.exp(h - h.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def import_cli(h5, out, words=CLASSIC / "words.json", classes=CLASSIC / "classes.txt", intents=CLASSIC / "intents.json"):
    return main(["-q", "import-classic", str(h5), "--words", str(words), "--classes", str(classes),
                 "--intents", str(intents), "--out", str(out)])


@pytest.mark.parametrize("major, weight_path", [(2, "{0}/{0}/{1}:0"), (3, "{0}/sequential/{0}/{1}")])
def test_real_keras_files_import_exactly(major, weight_path, tmp_path):
    h5 = CLASSIC / f"keras{major}_chatbot_model.h5"
    expected = json.loads((CLASSIC / f"keras{major}_expected.json").read_text())
    assert import_cli(h5, tmp_path / "bot") == 0
    predictor = Predictor.load(tmp_path / "bot")
    try:
        sentences = [case["text"] for case in expected["cases"]]
        got = predictor.predict_proba(sentences)
        assert predictor.classes == CLASSES
        assert predictor.manifest["featurizer"]["vocabulary"] == WORDS
    finally:
        predictor.close()
    keras_says = np.array([case["probabilities"] for case in expected["cases"]], np.float32)
    np.testing.assert_allclose(got, keras_says, atol=1e-5)
    assert (got.argmax(1) == keras_says.argmax(1)).all()
    with h5py.File(h5, "r") as f:  # the weights read here by their plain paths, not by the importer
        layers = [(f["model_weights"][weight_path.format(n, "kernel")][()], f["model_weights"][weight_path.format(n, "bias")][()])
                  for n in ("dense", "dense_1", "dense_2")]
    np.testing.assert_allclose(got, numpy_forward(layers, sentences), atol=1e-6)


def test_info_says_an_imported_model_was_imported_not_trained(tmp_path, capsys):
    assert import_cli(CLASSIC / "keras2_chatbot_model.h5", tmp_path / "bot") == 0
    capsys.readouterr()
    assert main(["info", str(tmp_path / "bot")]) == 0
    out = capsys.readouterr().out
    assert "imported   from a classic model (keras-h5, Keras 2." in out
    assert "epochs" not in out and "train accuracy" not in out  # it had "None epochs, None examples"


def write_weights_only_h5(path: Path, layers) -> None:
    """``model.save_weights('x.h5')`` layout of Keras 2: layer groups at the root, no model_config."""
    with h5py.File(path, "w") as f:
        names = ["dense", "dropout", "dense_1", "dropout_1", "dense_2"]
        f.attrs["layer_names"] = np.array([n.encode() for n in names])
        f.attrs["keras_version"] = b"2.15.0"
        dense = iter(layers)
        for name in names:
            group = f.create_group(name)
            if name.startswith("dropout"):
                group.attrs["weight_names"] = np.array([], dtype="S1")
                continue
            kernel, bias = next(dense)
            group.attrs["weight_names"] = np.array([f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()])
            group.create_dataset(f"{name}/kernel:0", data=kernel)
            group.create_dataset(f"{name}/bias:0", data=bias)


def random_layers(seed=0):
    rng = np.random.RandomState(seed)
    widths = [len(WORDS), 128, 64, len(CLASSES)]
    return [(rng.randn(a, b).astype(np.float32), rng.randn(b).astype(np.float32) * 0.1) for a, b in zip(widths, widths[1:])]


def test_weights_only_file_imports_and_matches_numpy(tmp_path):
    layers = random_layers()
    write_weights_only_h5(tmp_path / "weights.h5", layers)
    assert import_cli(tmp_path / "weights.h5", tmp_path / "bot") == 0
    sentences = ["Hi, can I order some tea?", "Hello. Bye!", "green tea please", "zzz", ""]
    predictor = Predictor.load(tmp_path / "bot")
    try:
        got = predictor.predict_proba(sentences)
        assert predictor.manifest["summary"]["architecture"] == "assumed (weights-only file)"
    finally:
        predictor.close()
    np.testing.assert_allclose(got, numpy_forward(layers, sentences), atol=1e-6)


def test_punctuation_counts_as_in_the_classic_bag(tmp_path):
    assert "," in WORDS  # the classic recipe ignores only "?" when it builds its words
    assert import_cli(CLASSIC / "keras2_chatbot_model.h5", tmp_path / "bot") == 0
    predictor = Predictor.load(tmp_path / "bot")
    try:
        assert predictor.features(["hi, there"]).ids[0].tolist().count(WORDS.index(",")) == 1
        np.testing.assert_array_equal(predictor.info.featurizer.transform(["Hello. I want tea, please"])[0],
                                      classic_bow("Hello. I want tea, please"))
    finally:
        predictor.close()


def test_words_the_classic_text_processing_never_produces_are_named_in_a_warning(tmp_path, caplog):
    """Upper case, a space, a non-NFKC accent: no message ever gives such a word, so its kernel row
    is dead. The import stays faithful (they are kept, in order) but says so."""
    odd = ["Hi", " bye", "cafe\u0301", "Tea", "Milk", "Oat milk", "\ufb01sh"]
    words = odd + WORDS[len(odd):]
    (tmp_path / "words.json").write_text(json.dumps(words))
    write_weights_only_h5(tmp_path / "weights.h5", random_layers())
    with caplog.at_level("WARNING", logger="legacy_assistant.classifier.classic.importer"):
        assert import_cli(tmp_path / "weights.h5", tmp_path / "bot", words=tmp_path / "words.json") == 0
    warnings = [r.getMessage() for r in caplog.records if "can never match" in r.getMessage()]
    assert warnings == [
        f"{tmp_path / 'words.json'}: 7 of {len(WORDS)} words can never match a message, so their kernel rows are "
        "never used (messages are NFKC-normalised, lower-cased and split at spaces): 'Hi' (upper case), "
        "' bye' (holds a space), 'cafe\\u0301' (not NFKC, which is 'caf\\xe9'), 'Tea' (upper case), "
        "'Milk' (upper case) and 2 more"
    ]
    predictor = Predictor.load(tmp_path / "bot")
    try:
        assert predictor.info.featurizer.vocabulary == words
    finally:
        predictor.close()
    caplog.clear()
    with caplog.at_level("WARNING", logger="legacy_assistant.classifier.classic.importer"):
        assert import_cli(CLASSIC / "keras2_chatbot_model.h5", tmp_path / "plain") == 0
    assert not [r for r in caplog.records if "can never match" in r.getMessage()]


def test_pickled_words_are_refused_with_the_way_out(tmp_path, capsys):
    pickled = tmp_path / "words.pkl"
    pickled.write_bytes(pickle.dumps(WORDS))
    assert import_cli(CLASSIC / "keras2_chatbot_model.h5", tmp_path / "bot", words=pickled) == 1
    err = capsys.readouterr().err
    assert "pickle" in err and "legacy_assistant.classifier.classic.pickled_lists" in err and not (tmp_path / "bot").exists()


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("kind", [list, tuple])
def test_a_pickle_under_any_name_is_refused_as_one(tmp_path, capsys, protocol, kind):
    """Not only the usual starts of a pickled list: a pickled tuple of protocol 0 or 1 (``(V``,
    ``(X``) in a .txt file was read as plain text, a words list of pickle opcodes."""
    pickled = tmp_path / "words.txt"
    pickled.write_bytes(pickle.dumps(kind(WORDS), protocol=protocol))
    assert import_cli(CLASSIC / "keras2_chatbot_model.h5", tmp_path / "bot", words=pickled) == 1
    assert f"{pickled}: looks like a pickle, which is never loaded" in capsys.readouterr().err


def test_a_plain_text_words_list_that_ends_in_a_full_stop_is_read(tmp_path):
    from legacy_assistant.classifier.classic.string_lists import read_string_list

    text = tmp_path / "words.txt"
    # no line break after the last word; the second one parses as pickle opcodes (GLOBAL, STOP)
    for words in ([b"(", b")", b"hello", b"."], [b"can", b"hello", b"."]):
        text.write_bytes(b"\n".join(words))
        assert read_string_list(text, "words") == [word.decode() for word in words]


def test_plain_text_whose_first_lines_parse_as_a_pickle_that_stops_early_is_read(tmp_path: Path) -> None:
    """Only a file that is one pickle to its last byte is refused as one: here the first lines
    parse as pickle opcodes (MARK, INST naming "ask", STOP) and words follow the stop."""
    from legacy_assistant.classifier.classic.string_lists import read_string_list

    text = tmp_path / "words.txt"
    words = [b"(i", b"ask", b".", b"hello", b"ok."]
    text.write_bytes(b"\n".join(words))
    assert read_string_list(text, "words") == [word.decode() for word in words]


@pytest.mark.parametrize("change, message", [
    ("words", "first layer takes 39 inputs but the words list {tmp}/words.json has 38"),
    ("classes", "no intent for class"),
    # its answers would read as "not understood", at full confidence
    ("fallback class", "{tmp}/classes.json: class 'fallback' is the reserved fallback tag"),
    ("fewer classes", "output layer has 6 units but the classes list {tmp}/classes.json has 5"),
    ("layer", "is a BatchNormalization"),
    # an Activation after a Dense that already has one: the reason, not "only ... Activation ... supported"
    ("activation", "Activation layer 'act_out' follows the Dense layer"),
])
def test_files_that_do_not_fit_are_refused(change, message, tmp_path, capsys):
    h5, words, classes = tmp_path / "m.h5", tmp_path / "words.json", tmp_path / "classes.json"
    shutil.copy(CLASSIC / "keras2_chatbot_model.h5", h5)
    words.write_text(json.dumps(WORDS[:-1] if change == "words" else WORDS))
    classes.write_text(json.dumps(
        CLASSES[:-1] + ["mystery"] if change == "classes" else CLASSES[:-1] + ["fallback"] if change == "fallback class"
        else CLASSES[:-1] if change == "fewer classes" else CLASSES))
    if change == "layer":
        with h5py.File(h5, "r+") as f:
            config = json.loads(f.attrs["model_config"])
            config["config"]["layers"].insert(2, {"class_name": "BatchNormalization", "config": {"name": "bn"}})
            f.attrs["model_config"] = json.dumps(config)
    if change == "activation":
        with h5py.File(h5, "r+") as f:
            config = json.loads(f.attrs["model_config"])
            config["config"]["layers"].append(
                {"class_name": "Activation", "config": {"name": "act_out", "activation": "softmax"}})
            f.attrs["model_config"] = json.dumps(config)
    assert import_cli(h5, tmp_path / "bot", words=words, classes=classes) == 1
    assert message.format(tmp=tmp_path) in capsys.readouterr().err


def test_pickled_lists_decode_without_unpickling(tmp_path):
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert decode_string_list(pickle.dumps(WORDS + ["é", WORDS[0]], protocol=protocol)) == WORDS + ["é", WORDS[0]]
    marker = tmp_path / "pwned"
    hostile = b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."  # what pickle.load would run
    with pytest.raises(UnsafePickle, match="opcode GLOBAL"):
        decode_string_list(hostile)
    with pytest.raises(UnsafePickle, match="opcode BININT1"):
        decode_string_list(pickle.dumps(["a", 1]))
    assert not marker.exists()


@pytest.mark.parametrize("data, name", [(None, "NoneType"), ("]q.", "str"), (["a"], "list")])
def test_decoding_what_is_not_bytes_names_the_argument(data, name):
    """len() or BytesIO raised a bare TypeError ("object of type 'NoneType' has no len()") that
    named neither the call nor its argument."""
    with pytest.raises(TypeError, match=f"^decode_string_list: data must be bytes, got {name}$"):
        decode_string_list(data)


def test_pickled_lists_decode_from_any_bytes_like_object():
    data = pickle.dumps(WORDS, protocol=4)
    assert decode_string_list(bytearray(data)) == decode_string_list(memoryview(data)) == WORDS


def test_pickled_lists_command_writes_json(tmp_path):
    from legacy_assistant.classifier.classic.pickled_lists import main as convert

    (tmp_path / "classes.pkl").write_bytes(pickle.dumps(CLASSES))
    assert convert([str(tmp_path / "classes.pkl"), "--out", str(tmp_path / "classes.json")]) == 0
    assert json.loads((tmp_path / "classes.json").read_text()) == CLASSES


def test_pickled_lone_surrogate_is_refused_by_item(tmp_path, capsys):
    """pickle stores "\\ud800" (surrogatepass); no JSON file can: one line naming the item, no traceback."""
    from legacy_assistant.classifier.classic.pickled_lists import main as convert

    data = pickle.dumps(["ok", "ab\ud800"], protocol=4)
    with pytest.raises(UnsafePickle, match=r"^item #1 \('ab\\ud800'\) holds a lone surrogate '\\ud800' at character 2"):
        decode_string_list(data)
    (tmp_path / "w.pkl").write_bytes(data)
    for out in ([], ["--out", str(tmp_path / "w.json")]):
        assert convert([str(tmp_path / "w.pkl"), *out]) == 1
        captured = capsys.readouterr()
        assert captured.err.startswith(f"error: {tmp_path / 'w.pkl'}: item #1 ") and captured.err.count("\n") == 1
        assert captured.out == ""
    assert not (tmp_path / "w.json").exists()


def test_pickled_lists_out_is_written_whole_or_refused_in_one_line(tmp_path, capsys, monkeypatch):
    import os

    from legacy_assistant.classifier.classic.pickled_lists import main as convert

    (tmp_path / "c.pkl").write_bytes(pickle.dumps(CLASSES))
    missing = tmp_path / "nodir" / "c.json"
    assert convert([str(tmp_path / "c.pkl"), "--out", str(missing)]) == 1
    assert capsys.readouterr().err == f"error: {missing}: folder {str(missing.parent)!r} does not exist\n"
    (tmp_path / "taken").mkdir()
    assert convert([str(tmp_path / "c.pkl"), "--out", str(tmp_path / "taken")]) == 1
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'taken'}: cannot write: ")
    # the file appears whole, through a temporary file in its folder that does not stay behind
    out = tmp_path / "c.json"
    out.write_text("old")
    assert convert([str(tmp_path / "c.pkl"), "--out", str(out)]) == 0
    assert json.loads(out.read_text()) == CLASSES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json", "c.pkl", "taken"]
    # a write that fails part way (a full disk, here at the flush to disk) leaves the old file as it was
    (tmp_path / "d.pkl").write_bytes(pickle.dumps(["other"]))

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    assert convert([str(tmp_path / "d.pkl"), "--out", str(out)]) == 1
    assert capsys.readouterr().err == f"error: {out}: cannot write: No space left on device\n"
    assert json.loads(out.read_text()) == CLASSES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json", "c.pkl", "d.pkl", "taken"]


def test_unreadable_h5_is_refused(tmp_path):
    from legacy_assistant.classifier.classic.keras_h5 import read_keras_dense_model

    (tmp_path / "x.h5").write_bytes(b"not hdf5")
    with pytest.raises(ArtifactError, match="x.h5: not a readable HDF5 file"):
        read_keras_dense_model(tmp_path / "x.h5")
    with pytest.raises(ArtifactError, match="absent.h5: file not found"):
        read_keras_dense_model(tmp_path / "absent.h5")
    with pytest.raises(ArtifactError, match=r"folder.h5: is a folder, not a file"):  # not "file not found"
        (tmp_path / "folder.h5").mkdir()
        read_keras_dense_model(tmp_path / "folder.h5")


@pytest.mark.parametrize("name", ["chatbot_model.pkl", "chatbot_model.h5"])
def test_a_pickled_model_is_refused_with_how_to_save_it_as_h5(tmp_path, capsys, name):
    """A pickled model offered as the model file: "not a readable HDF5 file (file signature not
    found)" did not say that pickles are never loaded, nor what to pass instead."""
    pickled = tmp_path / name
    pickled.write_bytes(pickle.dumps({"layers": [[0.5, 1.0]]}, protocol=4))
    assert import_cli(pickled, tmp_path / "bot") == 1
    err = capsys.readouterr().err
    assert f"{pickled}: looks like a pickle, which is never loaded" in err
    assert "model.save('chatbot_model.h5')" in err and "HDF5" not in err.split("never loaded")[0]
    assert not (tmp_path / "bot").exists()


def test_keras_3_native_formats_are_refused_with_how_to_save_them_again(tmp_path):
    """Keras 3 writes layers/<name>/vars/<i> (no layer list) to .weights.h5, and a zip to .keras:
    "no 'layer_names' attribute" and "file signature not found" said nothing a user could act on."""
    import zipfile

    from legacy_assistant.classifier.classic.keras_h5 import read_keras_dense_model

    with h5py.File(tmp_path / "chatbot.weights.h5", "w") as f:
        for name, shape in (("dense", (4, 8)), ("dense_1", (8, 3))):
            f.create_dataset(f"layers/{name}/vars/0", data=np.zeros(shape, np.float32))
            f.create_dataset(f"layers/{name}/vars/1", data=np.zeros(shape[1], np.float32))
        f.create_group("vars")
    with zipfile.ZipFile(tmp_path / "chatbot_model.keras", "w") as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", b"")
    resave = r"save it again with model.save\('chatbot_model.h5'\)"
    with pytest.raises(ArtifactError, match=r"chatbot.weights.h5: Keras 3's own weights format .*" + resave):
        read_keras_dense_model(tmp_path / "chatbot.weights.h5")
    with pytest.raises(ArtifactError, match=r"chatbot_model.keras: a Keras 3 .keras archive; .*" + resave):
        read_keras_dense_model(tmp_path / "chatbot_model.keras")


def test_a_folder_given_as_a_word_list_is_named_as_one(tmp_path):
    from legacy_assistant.classifier.classic.string_lists import read_string_list

    with pytest.raises(ArtifactError, match=r": words is a folder, not a file"):
        read_string_list(tmp_path, "words")
    with pytest.raises(ArtifactError, match=r"none.json: words file not found"):
        read_string_list(tmp_path / "none.json", "words")


def test_a_json_object_given_as_a_word_list_is_refused_as_one(tmp_path):
    """Read one word per line it was a single "word", and the import failed later on a count."""
    from legacy_assistant.classifier.classic.string_lists import read_string_list

    words = tmp_path / "words.json"
    words.write_text('{"words": ["hello", "tea"]}')
    with pytest.raises(ArtifactError, match=r"words.json: words must be a JSON array .*got a JSON object"):
        read_string_list(words, "words")
    words.write_text('["hello", "tea"]')
    assert read_string_list(words, "words") == ["hello", "tea"]


@pytest.mark.parametrize("content, message", [
    ("[" * 100000 + "]" * 100000, r"words.json: invalid JSON: nested too deeply"),
    ("[" + "9" * 5000 + "]", r"words.json: invalid JSON: a number of 5000 digits at line 1, column 2 \(at most 4300\)"),
    # valid JSON, but no text: the model's manifest could not be written with it
    ('["hello", "tea\\ud800"]', r"words.json: words item #1 \('tea\\ud800'\) holds a lone surrogate escape '\\ud800'"),
])
def test_a_json_word_list_python_cannot_read_faithfully_is_one_error_line(content, message, tmp_path, capsys):
    """Each was a RecursionError, ValueError or UnicodeEncodeError traceback from import-classic."""
    from legacy_assistant.classifier.classic.string_lists import read_string_list

    words = tmp_path / "words.json"
    words.write_text(content, encoding="utf-8")
    with pytest.raises(ArtifactError, match=message):
        read_string_list(words, "words")
    assert import_cli(CLASSIC / "keras2_chatbot_model.h5", tmp_path / "bot", words=words) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(message, err[0]), err
    assert not (tmp_path / "bot").exists()


@pytest.mark.parametrize("first", ["[", "{", "[[", "{}"])
def test_a_plain_text_list_may_start_with_a_bracket_token(tmp_path, first):
    """The classic tokenizer keeps "[" and "{" as tokens; sorted, one may come first in a plain
    text list, which is still plain text, while JSON that is damaged is still named as JSON."""
    from legacy_assistant.classifier.classic.string_lists import read_string_list

    words = tmp_path / "words.txt"
    words.write_text(f"{first}\nhello\n]\ntea\n")
    assert read_string_list(words, "words") == [first, "hello", "]", "tea"]
    words.write_text('[\n"hello",\n"tea"\n')
    with pytest.raises(ArtifactError, match=r"words.txt: invalid JSON at line 4, column 1"):
        read_string_list(words, "words")


def _weights_only(path, layers, extra=None):
    """A weights-only Keras .h5 of Dense layers ``(name, kernel, bias)``; ``extra`` adds a
    weight name (with no dataset) to a layer."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([name.encode() for name, _, _ in layers])
        for name, kernel, bias in layers:
            group = f.create_group(name)
            group.create_dataset(f"{name}/kernel:0", data=kernel)
            group.create_dataset(f"{name}/bias:0", data=bias)
            names = [f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()]
            if extra and name in extra:
                names.append(extra[name].encode())
            group.attrs["weight_names"] = np.array(names)


@pytest.mark.parametrize("case", ["1-D kernel", "missing dataset", "missing group", "bad config", "list config", "NaN"])
def test_a_damaged_h5_is_one_artifact_error_naming_it(tmp_path, case):
    from legacy_assistant.classifier.classic.keras_h5 import read_keras_dense_model

    rng = np.random.RandomState(0)
    first = ("dense", rng.rand(5, 8).astype("f4"), rng.rand(8).astype("f4"))
    last = ("dense_1", rng.rand(8, 3).astype("f4"), rng.rand(3).astype("f4"))
    path = tmp_path / "model.h5"
    if case == "1-D kernel":
        _weights_only(path, [("dense", rng.rand(5).astype("f4"), rng.rand(8).astype("f4")), last])
    elif case == "missing dataset":
        _weights_only(path, [first, last], extra={"dense": "dense/gone/kernel:0"})
    elif case == "missing group":
        with h5py.File(path, "w") as f:
            f.attrs["layer_names"] = np.array([b"dense", b"ghost"])
            f.create_group("dense").attrs["weight_names"] = np.array([], dtype="S1")
    elif case == "NaN":
        _weights_only(path, [("dense", np.full((5, 8), np.nan, "f4"), first[2]), last])
    else:
        shutil.copy(CLASSIC / "keras2_chatbot_model.h5", path)
        with h5py.File(path, "r+") as f:
            f.attrs["model_config"] = "{not json" if case == "bad config" else json.dumps("a string")
    with pytest.raises(ArtifactError, match=r"model\.h5: "):
        read_keras_dense_model(path)


@pytest.mark.parametrize("rate", [10**400, float("nan"), -0.5, 1.5, "0.5"],
                         ids=["huge", "nan", "negative", "above 1", "string"])
def test_a_dropout_rate_that_is_no_rate_is_refused_naming_the_layer(tmp_path, rate, capsys):
    """An integer too large for a float was an OverflowError traceback; NaN or a negative rate was
    taken without a word, 1.5 refused without naming the file."""
    path = tmp_path / "model.h5"
    shutil.copy(CLASSIC / "keras2_chatbot_model.h5", path)
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        dropout = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Dropout")
        dropout["config"]["rate"] = rate
        f.attrs["model_config"] = json.dumps(config)
    assert import_cli(path, tmp_path / "bot") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"model.h5: Dropout layer {dropout['config']['name']!r} has rate" in err[0], err


def test_a_model_config_nested_too_deeply_is_one_error_line(tmp_path, capsys):
    """It was a RecursionError traceback from import-classic."""
    path = tmp_path / "model.h5"
    shutil.copy(CLASSIC / "keras2_chatbot_model.h5", path)
    with h5py.File(path, "r+") as f:
        f.attrs["model_config"] = '{"config": ' + "[" * 100000 + "]" * 100000 + "}"
    assert import_cli(path, tmp_path / "bot") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.h5: not a Keras Dense model this importer can read (RecursionError" in err[0], err


def test_classes_out_of_order_and_intents_no_class_holds_are_named_in_warnings(tmp_path, caplog):
    """The tutorial sorts its classes: a list in another order gives every output unit another
    intent's name. An intent with patterns that no class names can never be predicted."""
    swapped = [CLASSES[1], CLASSES[0], *CLASSES[2:]]
    (tmp_path / "classes.json").write_text(json.dumps(swapped))
    intents = json.loads((CLASSIC / "intents.json").read_text())
    intents["intents"].append({"tag": "opening_hours", "patterns": ["when do you open"], "responses": ["9 to 5"]})
    (tmp_path / "intents.json").write_text(json.dumps(intents))
    with caplog.at_level("WARNING", logger="legacy_assistant.classifier.classic.importer"):
        assert import_cli(CLASSIC / "keras2_chatbot_model.h5", tmp_path / "bot", classes=tmp_path / "classes.json",
                          intents=tmp_path / "intents.json") == 0
    messages = [r.getMessage() for r in caplog.records]
    assert any("classes are not sorted" in m for m in messages), messages
    assert any("intent 'opening_hours' has patterns but is not one of the model's classes" in m for m in messages)
    caplog.clear()
    with caplog.at_level("WARNING", logger="legacy_assistant.classifier.classic.importer"):
        assert import_cli(CLASSIC / "keras2_chatbot_model.h5", tmp_path / "plain") == 0
    assert not [r for r in caplog.records if "classes" in r.getMessage()]


@pytest.mark.parametrize("layout", ["json", "text"])
def test_a_byte_order_mark_is_no_part_of_the_first_word(tmp_path, layout):
    """Editors on Windows write one: it made a JSON list read as lines, and a first word that never matched."""
    from legacy_assistant.classifier.classic.string_lists import read_string_list

    words = ["'d", "book", "coffee"]
    path = tmp_path / f"words.{'json' if layout == 'json' else 'txt'}"
    text = json.dumps(words) if layout == "json" else "\n".join(words) + "\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert read_string_list(path, "words") == words


def test_the_intents_files_out_of_scope_class_is_the_models_out_of_scope_class(tmp_path):
    """A classic model trained with an "oos" intent (examples, no answers) keeps that class as
    the model's out-of-scope class, as ``train`` does: its messages fall back as out_of_scope,
    and ``evaluate`` counts them so."""
    intents = json.loads((CLASSIC / "intents.json").read_text())
    intents["intents"].append({"tag": "oos", "patterns": ["what is the weather", "play some music"],
                               "responses": []})
    (tmp_path / "intents.json").write_text(json.dumps(intents))
    (tmp_path / "classes.txt").write_text("\n".join([*CLASSES, "oos"]))
    from legacy_assistant.serving.assistant import Assistant

    layers = random_layers()
    kernel, bias = layers[-1]
    bias = np.append(bias, 100.0).astype(np.float32)  # every message: the out-of-scope class, surely
    layers[-1] = (np.hstack([kernel, np.zeros((kernel.shape[0], 1), np.float32)]), bias)
    write_weights_only_h5(tmp_path / "weights.h5", layers)
    assert import_cli(tmp_path / "weights.h5", tmp_path / "bot", classes=tmp_path / "classes.txt",
                      intents=tmp_path / "intents.json") == 0
    assistant = Assistant.load(tmp_path / "bot", seed=0)
    try:
        assert assistant.predictor.manifest["oos_label"] == "oos"
        reply = assistant.chat("u", "what is the weather")
        assert (reply.intent, reply.reason, reply.confidence) == ("fallback", "out_of_scope", pytest.approx(1.0))
    finally:
        assistant.close()


def test_pickled_lists_given_a_json_list_says_it_is_one_already(tmp_path, capsys):
    """"malformed pickle: at position 0, opcode b'[' unknown" (or, for plain text, "byte 0: memo
    key 101 used before it is set") did not say that the file needs no conversion; a damaged
    pickle is still named as one."""
    from legacy_assistant.classifier.classic.pickled_lists import main as convert

    (tmp_path / "words.json").write_text(json.dumps(WORDS))
    assert convert([str(tmp_path / "words.json"), "--out", str(tmp_path / "out.json")]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'words.json'}: not a pickle but a JSON list of {len(WORDS)} strings already" in err
    assert "import-classic" in err and not (tmp_path / "out.json").exists()
    (tmp_path / "words.txt").write_text("hello\nworld\n")
    assert convert([str(tmp_path / "words.txt")]) == 1
    assert "words.txt: not a pickle: import-classic reads a words or classes file" in capsys.readouterr().err
    (tmp_path / "words.pkl").write_bytes(pickle.dumps(WORDS, protocol=4)[:-7])
    assert convert([str(tmp_path / "words.pkl")]) == 1
    err = capsys.readouterr().err
    assert "words.pkl: " in err and "not a pickle" not in err


@pytest.mark.parametrize("stemmer, named, example", [
    ("none", "no stemming", "'goodbye' (Lancaster makes 'goodby' of 'goodbye')"),
    ("porter", "Porter stemming", "'later' (Lancaster makes 'lat' of 'later')"),
])
def test_a_words_list_stemmed_otherwise_is_refused_before_anything_is_written(tmp_path, capsys, stemmer, named,
                                                                             example):
    # words.json of a recipe that keeps the lower-cased words ("morning", not "morn") or stems
    # with Porter ("later"): messages, Lancaster-stemmed here, would never match them
    from legacy_assistant.classifier.intents import load_intents
    from legacy_assistant.text.processing import TextConfig, TextProcessor

    texts, _ = load_intents(CLASSIC / "intents.json").examples()
    processor = TextProcessor(TextConfig(tokenizer="classic", stemmer=stemmer))
    words = sorted({token for text in texts for token in processor.tokens(text) if token != "?"})
    assert words != WORDS
    (tmp_path / "words.json").write_text(json.dumps(words))
    rng = np.random.RandomState(0)
    widths = [len(words), 16, 8, len(CLASSES)]
    write_weights_only_h5(tmp_path / "weights.h5", [(rng.randn(a, b).astype(np.float32), np.zeros(b, np.float32))
                                                    for a, b in zip(widths, widths[1:])])
    assert import_cli(tmp_path / "weights.h5", tmp_path / "bot", words=tmp_path / "words.json") == 1
    err = capsys.readouterr().err
    assert f"words.json: the words were made with {named}, not Lancaster's: {len(words)} of {len(words)}" in err
    assert example in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.h5", "words.json"]


def test_a_savedmodel_folder_is_refused_with_how_to_save_it_as_h5(tmp_path, capsys):
    """Keras 2's model.save('chatbot_model') writes a SavedModel folder: "is a folder, not a file"
    did not say what the folder is or what to pass instead."""
    saved = tmp_path / "chatbot_model"
    (saved / "variables").mkdir(parents=True)
    (saved / "saved_model.pb").write_bytes(b"\x08\x01")
    (saved / "keras_metadata.pb").write_bytes(b"")
    assert import_cli(saved, tmp_path / "bot") == 1
    err = capsys.readouterr().err
    assert f"{saved}: a TensorFlow SavedModel folder, not a Keras .h5 file" in err
    assert "model.save('chatbot_model.h5')" in err
    assert not (tmp_path / "bot").exists()


def test_a_python_2_pickle_of_utf_8_words_decodes_to_those_words():
    """Python 2 pickles a str as its bytes (UTF-8 in a classic script); pickletools hands them
    over decoded as Latin-1, and "café" came out as "cafÃ©", a word no message holds."""
    python2 = b"\x80\x02]q\x00(U\x05caf\xc3\xa9q\x01U\x02hiq\x02T\x06\x00\x00\x00gr\xc3\xbc\xc3\x9fq\x03e."
    assert decode_string_list(python2) == ["café", "hi", "grüß"]
    with pytest.raises(UnsafePickle, match=r"Python 2 string b'caf\\xe9' that is not UTF-8 text"):
        decode_string_list(b"\x80\x02]q\x00U\x04caf\xe9q\x01a.")  # Latin-1 bytes: refused, not guessed at


def test_a_one_line_words_file_of_bare_words_in_brackets_is_not_parsed_as_python(tmp_path, monkeypatch):
    """A line such as ``[hi, hello]`` holds no string, so no printed Python list: it was parsed
    into a syntax tree all the same, seconds and over a gigabyte for a line of a few megabytes."""
    import ast

    from legacy_assistant.classifier.classic.string_lists import read_string_list

    def parse(text):
        raise AssertionError("parsed as Python")

    monkeypatch.setattr(ast, "literal_eval", parse)
    path = tmp_path / "words.txt"
    path.write_text("[" + ", ".join(f"w{i}" for i in range(1000)) + "]\n", encoding="utf-8")
    assert read_string_list(path, "words") == [path.read_text(encoding="utf-8").strip()]


def test_a_one_line_words_file_of_bare_words_with_an_apostrophe_is_not_parsed_as_python(tmp_path, monkeypatch):
    """Classic tokens such as ``'s`` and ``n't`` hold a quote that begins no string: a line of
    bare words in brackets holding one was parsed into a syntax tree all the same."""
    import ast

    from legacy_assistant.classifier.classic.string_lists import read_string_list

    def parse(text):
        raise AssertionError("parsed as Python")

    monkeypatch.setattr(ast, "literal_eval", parse)
    path = tmp_path / "words.txt"
    path.write_text("[" + ", ".join(f"w{i}" for i in range(1000)) + ", 's, n't]\n", encoding="utf-8")
    assert read_string_list(path, "words") == [path.read_text(encoding="utf-8").strip()]


def test_a_python_2_protocol_0_pickle_of_utf_8_words_decodes_to_those_words():
    """Protocol 0, Python 2's default, writes a str as its repr (``S'caf\\xc3\\xa9'``);
    pickletools decodes those bytes as ASCII, and the file was refused as a malformed pickle."""
    python2 = b"(lp0\nS'caf\\xc3\\xa9'\np1\naS\"it's\"\np2\naS'hi'\np3\na."
    assert decode_string_list(python2) == ["caf\u00e9", "it's", "hi"]
    with pytest.raises(UnsafePickle, match=r"Python 2 string b'caf\\xe9' that is not UTF-8 text"):
        decode_string_list(b"(lp0\nS'caf\\xe9'\np1\na.")


def test_an_activation_given_as_a_function_imports_as_keras_wrote_it(tmp_path):
    """Keras 3 writes ``activation=tf.nn.softmax`` as a description of the function
    (``softmax_v2``), not a name: the import stopped at "AttributeError: 'str' object has no
    attribute 'get'"."""
    h5 = tmp_path / "m.h5"
    shutil.copy(CLASSIC / "keras3_chatbot_model.h5", h5)
    with h5py.File(h5, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        dense = [layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense"]
        for layer, name in zip(dense, ["relu", "relu", "softmax_v2"]):
            layer["config"]["activation"] = {"module": "builtins", "class_name": "function", "config": name,
                                             "registered_name": "function"}
        f.attrs["model_config"] = json.dumps(config)
    assert import_cli(h5, tmp_path / "bot") == 0
    expected = json.loads((CLASSIC / "keras3_expected.json").read_text())
    predictor = Predictor.load(tmp_path / "bot")
    try:
        got = predictor.predict_proba([case["text"] for case in expected["cases"]])
    finally:
        predictor.close()
    np.testing.assert_allclose(got, [case["probabilities"] for case in expected["cases"]], atol=1e-5)


def test_a_json_list_under_a_pickles_name_is_told_to_be_renamed(tmp_path, capsys):
    """import-classic refuses words.pkl by its name; the converter, finding JSON in it, said
    "pass it to import-classic as it is", which import-classic refuses again."""
    from legacy_assistant.classifier.classic.pickled_lists import main as convert

    (tmp_path / "words.pkl").write_text(json.dumps(WORDS))
    assert import_cli(CLASSIC / "keras2_chatbot_model.h5", tmp_path / "bot", words=tmp_path / "words.pkl") == 1
    assert "looks like a pickle" in capsys.readouterr().err
    assert convert([str(tmp_path / "words.pkl"), "--out", str(tmp_path / "words.json")]) == 1
    err = capsys.readouterr().err
    assert f"a JSON list of {len(WORDS)} strings already, under a pickle's name" in err
    assert f"rename it to {tmp_path / 'words.json'}" in err and "as it is" not in err


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_a_utf_16_word_list_is_named_as_one(tmp_path, capsys, encoding):
    """"words file is neither JSON nor UTF-8 text" did not say what the file is nor how to fix it."""
    (tmp_path / "words.txt").write_bytes("\n".join(WORDS).encode(encoding))
    assert import_cli(CLASSIC / "keras2_chatbot_model.h5", tmp_path / "bot", words=tmp_path / "words.txt") == 1
    err = capsys.readouterr().err
    assert f"words.txt: words file is not UTF-8 text: it starts with a {encoding.upper()}" in err
    assert "save it as UTF-8" in err and not (tmp_path / "bot").exists()


@pytest.mark.parametrize("words", [WORDS, [word for word in WORDS if "'" not in word]], ids=["with 'd", "without"])
def test_a_python_list_printed_to_a_file_is_named_as_one(tmp_path, capsys, words):
    """print(words) > words.txt: with "'d" (which Python quotes with ") it was "invalid JSON at
    line 1, column 8", without it one plain-text "word" and a count that did not fit."""
    (tmp_path / "words.txt").write_text(str(words) + "\n")
    assert import_cli(CLASSIC / "keras2_chatbot_model.h5", tmp_path / "bot", words=tmp_path / "words.txt") == 1
    err = capsys.readouterr().err
    assert "words.txt: words is a Python list as print() or str() writes it" in err
    assert "json.dump(words, file)" in err and not (tmp_path / "bot").exists()


def test_a_python_3_list_of_bytes_printed_to_a_file_is_named_as_one(tmp_path, capsys):
    """A Python 2 pickle loaded with encoding="bytes" holds bytes; print(words) > words.txt wrote
    "[b'hi', ...]": invalid JSON at line 1, column 2, or (no "'d" in it) one plain-text "word"."""
    (tmp_path / "words.txt").write_text(str([word.encode("utf-8") for word in WORDS]) + "\n")
    assert import_cli(CLASSIC / "keras2_chatbot_model.h5", tmp_path / "bot", words=tmp_path / "words.txt") == 1
    err = capsys.readouterr().err
    assert "words.txt: words is a Python list of bytes as print() or str() writes it" in err, err
    assert "w.decode('utf-8') for w in words" in err and not (tmp_path / "bot").exists()


def write_keras1_h5(path: Path, layers, weight_name="{0}_W:0") -> None:
    """``model.save('chatbot_model.h5')`` of Keras 1: a Sequential config that is a bare list,
    Dense ``output_dim``, Dropout ``p``, and weights named ``dense_1_W:0``/``dense_1_b:0``
    (``dense_1_W``/``dense_1_b`` under Theano)."""
    names = ["dense_1", "dropout_1", "dense_2", "dropout_2", "dense_3"]
    config = []
    dense = iter(layers)
    with h5py.File(path, "w") as f:
        root = f.create_group("model_weights")
        root.attrs["layer_names"] = np.array([n.encode() for n in names])
        for index, name in enumerate(names):
            group = root.create_group(name)
            if name.startswith("dropout"):
                config.append({"class_name": "Dropout", "config": {"name": name, "trainable": True, "p": 0.5}})
                group.attrs["weight_names"] = np.array([], dtype="S1")
                continue
            kernel, bias = next(dense)
            activation = "softmax" if index == len(names) - 1 else "relu"
            config.append({"class_name": "Dense", "config": {
                "name": name, "output_dim": kernel.shape[1], "activation": activation, "bias": True}})
            w, b = weight_name.format(name), weight_name.format(name).replace("_W", "_b")
            group.attrs["weight_names"] = np.array([w.encode(), b.encode()])
            group.create_dataset(w, data=kernel)
            group.create_dataset(b, data=bias)
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": config}).encode()
        f.attrs["keras_version"] = b"1.2.2"


@pytest.mark.parametrize("weight_name", ["{0}_W:0", "{0}_W"])
def test_a_keras_1_model_imports_and_matches_numpy(weight_name, tmp_path):
    layers = random_layers(3)
    write_keras1_h5(tmp_path / "chatbot_model.h5", layers, weight_name)
    assert import_cli(tmp_path / "chatbot_model.h5", tmp_path / "bot") == 0
    sentences = ["Hi, can I order some tea?", "Hello. Bye!", "green tea please", "zzz"]
    predictor = Predictor.load(tmp_path / "bot")
    try:
        got = predictor.predict_proba(sentences)
        assert predictor.manifest["summary"]["keras_version"] == "1.2.2"
        assert predictor.manifest["training"]["dropout"] == 0.5
    finally:
        predictor.close()
    np.testing.assert_allclose(got, numpy_forward(layers, sentences), atol=1e-6)


def test_a_keras_1_weights_only_layer_with_no_bias_is_refused_not_read_as_dense(tmp_path, capsys):
    """Without a model_config, Keras 1's "<layer>_W" of an Embedding looked like a Dense kernel:
    an Embedding then a Dense layer imported as two Dense layers, with no error."""
    rng = np.random.RandomState(0)
    with h5py.File(tmp_path / "weights.h5", "w") as f:
        f.attrs["layer_names"] = np.array([b"embedding_1", b"globalaveragepooling1d_1", b"dense_1"])
        for name, weights in (
            ("embedding_1", {"embedding_1_W": (len(WORDS), 8)}),
            ("globalaveragepooling1d_1", {}),
            ("dense_1", {"dense_1_W": (8, len(CLASSES)), "dense_1_b": (len(CLASSES),)}),
        ):
            group = f.create_group(name)
            group.attrs["weight_names"] = np.array([w.encode() for w in weights], dtype="S32")
            for weight, shape in weights.items():
                group.create_dataset(weight, data=rng.rand(*shape).astype("f4"))
    assert import_cli(tmp_path / "weights.h5", tmp_path / "bot") == 1
    err = capsys.readouterr().err
    assert "layer 'embedding_1' holds a Keras 1 weight matrix and no bias" in err, err
    assert not (tmp_path / "bot").exists()


def _declared_only(path, shapes):
    """A weights-only .h5 of a few kilobytes whose datasets declare ``shapes`` (kernel, bias) and
    hold nothing: reading one gives its fill value, as large as the shape says."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([name.encode() for name in shapes])
        for name, (kernel, bias) in shapes.items():
            group = f.create_group(name)
            group.attrs["weight_names"] = np.array([f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()])
            group.create_dataset(f"{name}/kernel:0", shape=kernel, dtype="f4", chunks=True, compression="gzip")
            group.create_dataset(f"{name}/bias:0", shape=bias, dtype="f4")


@pytest.mark.parametrize("kernel, message", [
    ((39, 200_000), r"layer 'dense' weight 'dense/kernel:0' has shape \(39, 200000\): 200,000 units, more than"),
    ((39, 2**20, 2**20), r"layer 'dense' weight 'dense/kernel:0' has shape \(39, 1048576, 1048576\): .* is 2-D"),
])
def test_a_layer_wider_than_the_network_takes_is_refused_naming_it_before_it_is_read(kernel, message, tmp_path, capsys):
    """A layer of 200,000 units was read whole, then refused as 'hidden_units must hold whole
    numbers...', naming neither the file nor the layer; a 3-D kernel was read (terabytes) first."""
    _declared_only(tmp_path / "model.h5", {"dense": (kernel, (kernel[-1],)), "dense_1": ((kernel[-1], 6), (6,))})
    assert import_cli(tmp_path / "model.h5", tmp_path / "bot") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search("model.h5: " + message, err[0]), err


def test_a_weight_too_large_for_memory_is_one_error_naming_it():
    """The read's MemoryError (a small file may declare a dataset of terabytes) was a traceback."""
    from legacy_assistant.classifier.classic.keras_h5 import _read_weight

    class Huge:
        shape = (3_900_000, 60_000)

        def __getitem__(self, key):
            raise MemoryError("Unable to allocate 872. GiB")

    with pytest.raises(ArtifactError, match=r"^m\.h5: layer 'dense' has shape \(3900000, 60000\), too large to read"):
        _read_weight(Huge(), "kernel", "layer 'dense'", Path("m.h5"))


def test_a_nested_model_is_refused_not_read_as_its_last_layer(tmp_path, capsys):
    """The weights of ``Sequential([Sequential([Dense, Dense]), Dense])`` (save_weights) list both
    inner layers under one group: its last kernel alone was taken as that layer's, so square
    inner layers imported as a different network without a word."""
    rng = np.random.RandomState(4)
    inner = [(f"dense_{i}", rng.randn(len(WORDS), len(WORDS)).astype("f4"), np.zeros(len(WORDS), "f4")) for i in (0, 1)]
    with h5py.File(tmp_path / "model.h5", "w") as f:
        f.attrs["layer_names"] = np.array([b"sequential", b"dense_2"])
        group = f.create_group("sequential")
        names = []
        for name, kernel, bias in inner:
            for leaf, value in (("kernel", kernel), ("bias", bias)):
                names.append(f"{name}/{leaf}:0".encode())
                group.create_dataset(f"{name}/{leaf}:0", data=value)
        group.attrs["weight_names"] = np.array(names)
        out = f.create_group("dense_2")
        out.attrs["weight_names"] = np.array([b"dense_2/kernel:0", b"dense_2/bias:0"])
        out.create_dataset("dense_2/kernel:0", data=rng.randn(len(WORDS), len(CLASSES)).astype("f4"))
        out.create_dataset("dense_2/bias:0", data=np.zeros(len(CLASSES), "f4"))
    assert import_cli(tmp_path / "model.h5", tmp_path / "bot") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "model.h5: layer 'sequential' holds more than one kernel ('dense_1/kernel:0'" in err[0]
    assert not (tmp_path / "bot").exists()
