import json
import logging
import os
import shutil

import pytest

from legacy_assistant.classifier.artifact import MANIFEST, export_artifact, verify_artifact
from legacy_assistant.errors import ArtifactError
from legacy_assistant.classifier.predictor import Predictor
from tests.helpers import DEFAULT_RESPONDER, TEST_DATA


def refuse(path, match):
    with pytest.raises(ArtifactError, match=match):
        Predictor.load(path)


def test_manifest_holds_what_serving_needs(tiny_model_dir, tiny_trained):
    info = verify_artifact(tiny_model_dir)
    manifest = info.manifest
    assert manifest["classes"] == tiny_trained.classes
    assert manifest["featurizer"]["vocabulary"] == tiny_trained.featurizer.vocabulary
    assert manifest["featurizer"]["config"]["text"] == {"tokenizer": "treebank", "stemmer": "lancaster", "lowercase": True}
    assert {r["tag"] for r in manifest["intents"]} >= {"book_when", "fallback", "greeting"}
    assert manifest["fallback"]["responses"] == ["Sorry, say that again?"]
    assert manifest["training"]["seed"] == 7
    assert set(manifest["versions"]) >= {"tensorflow", "python", "numpy"}
    assert "saved_model/saved_model.pb" in manifest["files"]
    assert all(len(h) == 64 for h in manifest["files"].values())


def test_manifest_records_the_nltk_release_that_made_the_features(tiny_model_dir):
    import nltk

    # its tokenizer and stemmer made the vocabulary: a rerun on another release may not
    assert verify_artifact(tiny_model_dir).manifest["versions"]["nltk"] == nltk.__version__


def test_manifest_and_info_record_that_onednn_kernels_trained_the_model(tiny_trained, tiny_intents, tmp_path,
                                                                        monkeypatch, capsys):
    """Set beforehand, TF_ENABLE_ONEDNN_OPTS=1 trains with oneDNN's kernels: other last bits than
    the default's, so a rerun must know it."""
    from legacy_assistant.cli import main

    # as in a process started with it: TensorFlow reads it at its import
    monkeypatch.setattr("compat.environment._AT_IMPORT", {"TF_ENABLE_ONEDNN_OPTS": "1"})
    path = export_artifact(tiny_trained, tiny_intents, tmp_path / "onednn", plot=False)
    assert verify_artifact(path).manifest["environment"] == {"TF_ENABLE_ONEDNN_OPTS": "1"}
    assert main(["info", str(path), "--no-load"]) == 0
    assert "kernels    trained with TF_ENABLE_ONEDNN_OPTS=1 (oneDNN): a rerun needs it too" in capsys.readouterr().out


def test_manifest_records_the_kernels_tensorflow_read_at_import_not_a_later_setting(
    tiny_trained, tiny_intents, tmp_path, monkeypatch, capsys
):
    """TF_ENABLE_ONEDNN_OPTS set after TensorFlow's import changes the environment, not the kernels
    that trained the model: the manifest and info must not claim oneDNN's."""
    from legacy_assistant.cli import main

    at_import = os.environ.get("TF_ENABLE_ONEDNN_OPTS")  # tiny_trained's training imported TensorFlow
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0" if at_import == "1" else "1")
    path = export_artifact(tiny_trained, tiny_intents, tmp_path / "later", plot=False)
    assert verify_artifact(path).manifest["environment"] == {"TF_ENABLE_ONEDNN_OPTS": at_import}
    assert main(["info", str(path), "--no-load"]) == 0
    kernels = [line for line in capsys.readouterr().out.splitlines() if line.startswith("kernels")]
    assert bool(kernels) == (at_import not in (None, "0"))


def test_info_names_no_kernels_for_a_model_of_the_default_ones(tiny_trained, tiny_intents, tmp_path, monkeypatch,
                                                              capsys):
    from legacy_assistant.cli import main

    # as TensorFlow read it at import where nothing else set it (the runtimes' default), whatever
    # this test process read
    monkeypatch.setattr("compat.environment._AT_IMPORT", {"TF_ENABLE_ONEDNN_OPTS": "0"})
    path = export_artifact(tiny_trained, tiny_intents, tmp_path / "eigen", plot=False)
    assert verify_artifact(path).manifest["environment"] == {"TF_ENABLE_ONEDNN_OPTS": "0"}
    assert main(["info", str(path), "--no-load"]) == 0
    assert not [line for line in capsys.readouterr().out.splitlines() if line.startswith("kernels")]


def test_one_changed_byte_is_refused_naming_the_file(model_copy):
    data = next((model_copy / "saved_model" / "variables").glob("variables.data-*"))
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    data.write_bytes(bytes(raw))
    refuse(model_copy, rf"{data.name}: altered or truncated")


def test_truncated_file_is_refused(model_copy):
    pb = model_copy / "saved_model" / "saved_model.pb"
    pb.write_bytes(pb.read_bytes()[:100])
    refuse(model_copy, "saved_model.pb: altered or truncated")


def test_removed_file_is_refused(model_copy):
    (model_copy / "saved_model" / "variables" / "variables.index").unlink()
    refuse(model_copy, "variables.index: missing")


@pytest.mark.parametrize(
    ("put", "said"),
    [
        (lambda path: path.mkdir(), "is a folder, not a file"),
        (os.mkfifo, r"is not a regular file \(a device, pipe or socket\)"),
        (lambda path: path.symlink_to("gone.index"), "a symbolic link to gone.index, which is not there"),
    ],
    ids=["folder", "pipe", "broken link"],
)
def test_a_listed_file_replaced_by_no_file_is_refused_as_what_it_is(model_copy, put, said):
    """A folder, a pipe or a broken link where the manifest lists a file was called missing,
    which sent the reader looking for a file that is there by name."""
    index = model_copy / "saved_model" / "variables" / "variables.index"
    index.unlink()
    put(index)
    refuse(model_copy, rf"variables.index: damaged: {said}, where assistant.json lists a file$")


def test_edited_manifest_is_refused(model_copy):
    manifest_path = model_copy / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["intents"][0]["responses"] = ["something a tamperer wrote"]
    manifest_path.write_text(json.dumps(manifest))
    refuse(model_copy, "assistant.json: altered")


def test_broken_manifest_json_is_refused(model_copy):
    (model_copy / MANIFEST).write_text("{not json")
    refuse(model_copy, "assistant.json: damaged")


def test_missing_manifest_and_missing_dir(model_copy, tmp_path):
    refuse(tmp_path / "nothing-here", "model directory not found")
    (model_copy / MANIFEST).unlink()
    refuse(model_copy, "not a legacy-assistant model directory")


def test_a_responder_given_as_an_intent_model_is_named_as_one():
    from legacy_assistant.responder.responder import Responder
    from tests.helpers import DEFAULT_MODEL, DEFAULT_RESPONDER

    refuse(DEFAULT_RESPONDER, r"responder: a responder \(responder.json\), not an intent model \(no assistant.json\); "
                              r"load it as a responder \(--responder\)")
    with pytest.raises(ArtifactError, match=r"default: an intent model \(assistant.json\), not a responder "
                                            r"\(no responder.json\); load it as an intent model \(--model\)"):
        Responder.load(DEFAULT_MODEL)


def _rewrite(root, change):
    """Edit the manifest and digest it again: a change its checksum cannot catch."""
    from legacy_assistant.artifacts.directory import manifest_digest, write_json

    manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    change(manifest)
    manifest["manifest_sha256"] = manifest_digest(manifest)
    write_json(root / MANIFEST, manifest)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: m["featurizer"]["vocabulary"].__setitem__(0, 7), "vocabulary term #0 must be a non-empty string"),
        (lambda m: m["classes"].__setitem__(0, 3), "classes must be a list of non-empty names"),
        (lambda m: m["classes"].__setitem__(1, m["classes"][0]), "classes holds a name twice"),
        # the dialogue's fields: each used to load and then fail requests, or boot no worker
        (lambda m: m["intents"][0].__setitem__("responses", []),
         "intent 'greeting': responses must be a non-empty list of replies"),
        (lambda m: m["intents"][0].__setitem__("responses", 5), "intent 'greeting': responses must be a non-empty"),
        (lambda m: m["intents"][0].__setitem__("responses", ["ok", ""]), "responses must hold only non-empty texts"),
        (lambda m: m.pop("intents"), "intents must be a list of intent rules"),
        (lambda m: m["intents"].append(dict(m["intents"][0])), "intent 'greeting' has two rules"),
        (lambda m: m["intents"][0].__setitem__("context_set", 3), "intent 'greeting': context_set must be text"),
        (lambda m: m["intents"][0].__setitem__("free_text", "yes"), "free_text must be true or false"),
        (lambda m: m.pop("fallback"), "fallback must be an object with responses"),
        (lambda m: m.__setitem__("fallback", "sorry"), "fallback must be an object with responses"),
        (lambda m: m["fallback"].__setitem__("responses", []), "fallback.responses must be a non-empty list"),
        (lambda m: m.__setitem__("threshold", "0.25"), "threshold must be a number from 0 to 1, got '0.25'"),
        (lambda m: m.__setitem__("threshold", float("nan")), "threshold must be a number from 0 to 1, got nan"),
        (lambda m: m.__setitem__("oos_label", "nothing"), "oos_label 'nothing' is not one of the classes"),
        (lambda m: m["network"].__setitem__("hidden_units", "64"), "network.hidden_units must be a list of positive"),
        (lambda m: m["network"].__setitem__("hidden_units", None), "network.hidden_units must be a list of positive"),
        (lambda m: m["network"].__setitem__("hidden_units", [True]), "network.hidden_units must be a list of positive"),
        (lambda m: m["featurizer"].__setitem__("idf", [float("nan")] * len(m["featurizer"]["vocabulary"])),
         "idf values must be finite numbers of at least 0"),
        # the featurizer: each used to load into other features than trained on, or to say only
        # what Python said of a value of the wrong type
        (lambda m: m["featurizer"].__setitem__("config", {}), "featurizer.config is empty"),
        (lambda m: m["featurizer"].__setitem__("idf", [1.0] * len(m["featurizer"]["vocabulary"])),
         'featurizer.idf is recorded but featurizer.config.weighting is "binary"'),
        (lambda m: m["featurizer"].__setitem__("idf", "x"), "featurizer.idf must be a list of numbers or null"),
        (lambda m: m["featurizer"].__setitem__("stopwords", ["the"]), "featurizer: unknown field"),
        (lambda m: m.__setitem__("featurizer", None), "featurizer must be an object with config, vocabulary and idf"),
        (lambda m: m["featurizer"].pop("config"), "featurizer.config is missing"),
        (lambda m: m["featurizer"].__setitem__("vocabulary", None), "featurizer.vocabulary must be a list of terms"),
        (lambda m: m["featurizer"]["config"].__setitem__("weighting", "bm25"), "featurizer.config.weighting must be"),
        (lambda m: m.pop("classes"), "classes must be a list of non-empty names"),
        # the network: its options went unread at load (dropout is training's only, the shortcut
        # is the SavedModel's), and its sizes were compared with whatever they held
        (lambda m: m["network"].__setitem__("dropout", "0.5"), "network.dropout must be a number"),
        (lambda m: m["network"].__setitem__("dropout", 1.5), "network: dropout must be in "),
        (lambda m: m["network"].__setitem__("linear_shortcut", "yes"),
         "network: linear_shortcut must be true or false"),
        (lambda m: m["network"].__setitem__("activation", "gelu"), "'activation' not understood"),
        (lambda m: m.__setitem__("network", None), "network must be an object"),
        (lambda m: m["network"].pop("n_classes"), "network.n_classes must be a whole number, got None"),
        (lambda m: m["network"].__setitem__("n_features", float(m["network"]["n_features"])),
         "network.n_features must be a whole number"),
        (lambda m: m["intents"][0].__setitem__("next_tag", "nowhere"), "next_tag 'nowhere' names no intent rule"),
    ],
)
def test_manifest_fields_of_the_wrong_type_are_refused_in_one_line(model_copy, change, message, capsys):
    from legacy_assistant.cli import main

    _rewrite(model_copy, change)
    refuse(model_copy, message)
    for argv in (["info", str(model_copy)], ["info", str(model_copy), "--no-load"]):
        assert main(argv) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "inconsistent manifest" in err[0] and message in err[0], err


def test_an_idf_value_beyond_float32_is_refused_without_a_warning(model_copy):
    """1e308 became infinity in float32 with numpy's RuntimeWarning on stderr before the error line."""
    import warnings

    _rewrite(model_copy, lambda m: m["featurizer"].__setitem__("idf", [1e308] * len(m["featurizer"]["vocabulary"])))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        refuse(model_copy, "inconsistent manifest: idf values must be finite numbers of at least 0")
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize(
    "edit, why",
    [
        (lambda text: text.replace('"threshold": ', '"threshold": 0.99, "threshold": ', 1), "threshold"),
        (lambda text: text.replace('"summary": {', '"summary": {"big": ' + "9" * 5000 + ", ", 1), "digits"),
        (lambda text: text.replace('"summary": {', '"summary": {"deep": ' + "[" * 100000 + "]" * 100000 + ", ", 1),
         "nested too deeply"),
    ],
)
def test_a_manifest_json_cannot_read_faithfully_is_damaged(model_copy, edit, why, capsys):
    """A key given twice (a reader sees 0.99, the loader took the last value), an integer of
    thousands of digits, nesting deeper than Python's JSON reader goes: one line, not a traceback."""
    from legacy_assistant.cli import main

    path = model_copy / MANIFEST
    path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    refuse(model_copy, f"assistant.json: damaged: not valid JSON .*{why}")
    # evaluate and chat with a responder read the manifest's runtime first: nesting was a RecursionError there
    data = TEST_DATA / "tiny.csv"
    for argv in (["info", str(model_copy), "--no-load"], ["evaluate", str(model_copy), str(data)],
                 ["chat", "--model", str(model_copy), "--responder", str(DEFAULT_RESPONDER)]):
        assert main(argv) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "damaged" in err[0], (argv, err)


@pytest.mark.parametrize("which", ["classifier", "responder"])
def test_a_manifest_holding_a_lone_surrogate_escape_is_damaged(which, tmp_path, capsys):
    """Valid JSON, but "\\ud800" is no Unicode text: the manifest's own checksum could not be
    computed, which was a UnicodeEncodeError traceback from every command."""
    from legacy_assistant.cli import main
    from legacy_assistant.responder.artifact import verify_responder
    from legacy_assistant.responder.responder import Responder
    from tests.helpers import DEFAULT_MODEL, DEFAULT_RESPONDER

    shipped, manifest, verify, load = {
        "classifier": (DEFAULT_MODEL, MANIFEST, verify_artifact, Predictor.load),
        "responder": (DEFAULT_RESPONDER, "responder.json", verify_responder, Responder.load),
    }[which]
    copy = tmp_path / which
    shutil.copytree(shipped, copy)
    path = copy / manifest
    path.write_text(path.read_text(encoding="utf-8").replace('"name": ', '"name": "\\ud800", "was": ', 1),
                    encoding="utf-8")
    message = rf"{manifest}: damaged: holds a lone surrogate escape \('\\ud800'\), which is not Unicode text"
    for check in (verify, load):
        with pytest.raises(ArtifactError, match=message):
            check(copy)
    flag = "--model" if which == "classifier" else "--responder"
    for argv in (["info", str(copy), "--no-load"], ["chat", flag, str(copy)]):
        assert main(argv) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "damaged: holds a lone surrogate escape" in err[0], (argv, err)


def test_a_folder_with_neither_manifest_is_named_as_such_by_every_command(tmp_path, capsys):
    from legacy_assistant.cli import main

    empty = tmp_path / "empty"
    empty.mkdir()
    for argv in (["info", str(empty)], ["golden", str(empty), "--check"], ["migrate", str(empty), "--out", "x"]):
        assert main(argv) == 1
        err = capsys.readouterr().err.strip()
        assert "neither assistant.json (an intent model) nor responder.json (a responder)" in err, (argv, err)


@pytest.mark.parametrize("cases", [[], "nan"])
def test_a_classifier_golden_file_that_could_not_fail_is_refused(cases, tmp_path):
    from legacy_assistant.classifier.golden import read_golden

    golden = {"cases": []}
    if cases == "nan":
        golden["cases"] = [{"text": "hi", "intent": "greeting", "probabilities": {"greeting": float("nan")}}]
    path = tmp_path / "golden.json"
    path.write_text(json.dumps(golden), encoding="utf-8")
    with pytest.raises(ArtifactError, match="no golden cases" if cases == [] else "finite numbers"):
        read_golden(path)


def test_unlisted_file_in_saved_model_is_refused(model_copy):
    (model_copy / "saved_model" / "extra.pb").write_bytes(b"x")
    refuse(model_copy, "extra.pb: unexpected file")


@pytest.mark.parametrize("entry", ["linked folder", "pipe", "broken link"])
def test_unlisted_entry_that_is_no_file_in_saved_model_is_refused(model_copy, tmp_path, entry):
    # a linked folder's files were not seen at all; the others are nothing an export writes
    saved_model = model_copy / "saved_model"
    if entry == "linked folder":
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        (elsewhere / "evil.pb").write_bytes(b"x")
        (saved_model / "extra").symlink_to(elsewhere, target_is_directory=True)
        refuse(model_copy, r"saved_model/extra: unexpected link to a folder in the SavedModel")
    elif entry == "pipe":
        os.mkfifo(saved_model / "extra.pb")
        refuse(model_copy, r"extra.pb: unexpected entry \(no regular file\)")
    else:
        (saved_model / "extra.pb").symlink_to(tmp_path / "nothing")
        refuse(model_copy, r"extra.pb: unexpected entry \(no regular file\)")


def test_existing_directory_needs_force(tiny_trained, tiny_intents, tiny_model_dir):
    with pytest.raises(ArtifactError, match="already exists"):
        export_artifact(tiny_trained, tiny_intents, tiny_model_dir)


def test_failed_export_leaves_old_model_and_no_debris(tiny_trained, tiny_intents, model_copy, monkeypatch):
    import compat.classifier.saved_model

    before = {p.relative_to(model_copy): p.read_bytes() for p in model_copy.rglob("*") if p.is_file()}

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(compat.classifier.saved_model, "export_saved_model", crash)
    with pytest.raises(OSError, match="disk full"):
        export_artifact(tiny_trained, tiny_intents, model_copy, force=True)
    after = {p.relative_to(model_copy): p.read_bytes() for p in model_copy.rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in model_copy.parent.iterdir()] == [model_copy.name]


def test_force_replaces_atomically(tiny_trained, tiny_intents, model_copy):
    # inside the old model's SavedModel: the whole old directory goes (a file beside the model
    # is refused instead, tests/test_model_directory.py)
    (model_copy / "saved_model" / "stale.txt").write_text("old")
    export_artifact(tiny_trained, tiny_intents, model_copy, force=True, plot=True)
    assert not (model_copy / "saved_model" / "stale.txt").exists()
    assert (model_copy / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in model_copy.parent.iterdir()] == [model_copy.name]
    verify_artifact(model_copy)


def test_a_history_figure_that_cannot_be_drawn_loses_no_model(tiny_trained, tiny_intents, model_copy, monkeypatch,
                                                               caplog):
    from legacy_assistant.common import plots

    def cannot_draw(*args, **kwargs):
        raise RuntimeError("Matplotlib requires access to a writable cache directory")

    monkeypatch.setattr(plots, "plot_history", cannot_draw)
    with caplog.at_level(logging.WARNING):
        export_artifact(tiny_trained, tiny_intents, model_copy, force=True, plot=True)
    verify_artifact(model_copy)
    assert not (model_copy / "history.png").exists()
    assert json.loads((model_copy / "history.json").read_text()) == tiny_trained.history
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "history.png not drawn (RuntimeError: Matplotlib requires access to a writable cache directory); "
        "the model is written without it (history.json holds the same numbers)"
    ]


def test_history_json_has_every_epoch(tiny_model_dir, tiny_config):
    history = json.loads((tiny_model_dir / "history.json").read_text())
    assert [row["epoch"] for row in history] == list(range(1, tiny_config.epochs + 1))
    assert {"loss", "accuracy"} <= set(history[0])


def test_a_model_refused_for_its_shape_is_closed(tiny_model_dir, monkeypatch):
    """A SavedModel whose shape disagrees with the manifest is refused, and its session freed."""
    import compat.selection

    real_load = compat.selection.load_classifier
    loaded = []

    class Narrower:
        """The real classifier, reporting one class fewer than the manifest lists."""

        def __init__(self, inner):
            self.inner, self.closed = inner, False
            self.n_features, self.n_classes = inner.n_features, inner.n_classes - 1

        def close(self):
            self.closed = True
            self.inner.close()

    def load_narrower(*args, **kwargs):
        loaded.append(Narrower(real_load(*args, **kwargs)))
        return loaded[-1]

    monkeypatch.setattr(compat.selection, "load_classifier", load_narrower)
    with pytest.raises(ArtifactError, match="does not match assistant.json"):
        Predictor.load(tiny_model_dir)
    assert len(loaded) == 1 and loaded[0].closed


@pytest.mark.parametrize(
    "network, differing",
    [
        ({"hidden_units": [128]}, "classifier/hidden_1/bias absent by the manifest, [64] in the SavedModel"),
        ({"hidden_units": [64, 128]}, "classifier/hidden_0/bias [64] by the manifest, [128] in the SavedModel"),
        ({"linear_shortcut": True}, "classifier/shortcut/kernel [%d, %d] by the manifest, absent in the SavedModel"),
    ],
)
def test_a_manifest_network_other_than_the_saved_models_is_refused_at_load(model_copy, network, differing):
    """The answers come from the SavedModel; a manifest describing another network (which info
    shows and a migration rebuilds) used to load without a word."""
    manifest = json.loads((model_copy / MANIFEST).read_text(encoding="utf-8"))
    if "%d" in differing:
        differing = differing % (manifest["network"]["n_features"], manifest["network"]["n_classes"])
    _rewrite(model_copy, lambda m: m["network"].update(network))
    verify_artifact(model_copy)  # consistent in itself
    with pytest.raises(ArtifactError) as refused:
        Predictor.load(model_copy)
    assert f"{model_copy / MANIFEST}: network (" in str(refused.value)
    assert "differs from the SavedModel's" in str(refused.value) and differing in str(refused.value)


def test_a_manifest_listing_files_outside_the_directory_is_refused(model_copy, tmp_path):
    """A re-digested manifest must not make the loader read (or hash) files elsewhere."""
    from legacy_assistant.artifacts.directory import sha256_file

    outside = tmp_path / "outside.txt"
    outside.write_text("elsewhere", encoding="utf-8")
    digest = sha256_file(outside)
    for listed in (str(outside), "../outside.txt", "saved_model/../../outside.txt"):
        _rewrite(model_copy, lambda m, listed=listed: m["files"].__setitem__(listed, digest))
        refuse(model_copy, "a file outside the model directory")
        _rewrite(model_copy, lambda m, listed=listed: m["files"].pop(listed))
    (model_copy / "linked.txt").symlink_to(outside)
    _rewrite(model_copy, lambda m: m["files"].__setitem__("linked.txt", digest))
    refuse(model_copy, "linked.txt: a link to a file outside the model directory")


def test_a_manifest_that_is_not_a_file_of_the_directory_is_refused(model_copy, tmp_path):
    """The manifest vouches for every other file, so it must be the directory's own: a link to
    one elsewhere is refused like any listed file that links out; a folder or a pipe in its
    place is named as such, not as a missing manifest."""
    manifest = model_copy / "assistant.json"
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_bytes(manifest.read_bytes())
    manifest.unlink()
    manifest.symlink_to(elsewhere)
    refuse(model_copy, "assistant.json: a link to a file outside the model directory")
    manifest.unlink()
    manifest.mkdir()
    refuse(model_copy, "assistant.json: damaged: is a folder, not a file")
    manifest.rmdir()
    os.mkfifo(manifest)
    refuse(model_copy, r"assistant.json: damaged: is not a regular file \(a device, pipe or socket\)")
    from legacy_assistant.cli.model_kind import written_for

    assert written_for(model_copy) == "compat"  # read without waiting on the pipe; loading says what is wrong
    manifest.unlink()
    from legacy_assistant.cli.model_kind import is_responder

    manifest.write_bytes(elsewhere.read_bytes())
    (model_copy / "responder.json").symlink_to(tmp_path / "nothing")  # a stray broken link
    assert not is_responder(model_copy)  # the manifest that is a file decides
    (model_copy / "responder.json").unlink()
    manifest.unlink()
    (model_copy / "inside.json").write_bytes(elsewhere.read_bytes())
    manifest.symlink_to("inside.json")  # a link that stays inside is still the directory's file
    Predictor.load(model_copy).close()


def test_a_model_answering_nan_fails_its_golden_check(monkeypatch):
    from legacy_assistant.classifier import golden

    stored = {"cases": [{"text": "hi", "intent": "greeting", "probabilities": {"greeting": 0.9, "bye": 0.1}}]}
    nan = [{"text": "hi", "intent": "greeting", "probabilities": {"greeting": float("nan"), "bye": float("nan")}}]
    monkeypatch.setattr(golden, "golden_cases", lambda predictor, texts: nan)
    report = golden.compare_golden(None, stored)
    assert report["max_abs_delta"] == float("inf") and report["mismatches"][0]["now"] == "non-finite probabilities"


def test_info_passes_a_loaders_own_error_through_unrelabelled(model_copy, monkeypatch, capsys):
    from legacy_assistant.classifier import artifact
    from legacy_assistant.cli import main
    from legacy_assistant.errors import ConfigError

    def refuse_config(path, **options):
        raise ConfigError("a setting this model cannot take")  # a ValueError too

    monkeypatch.setattr(artifact, "verify_artifact", refuse_config)
    assert main(["info", str(model_copy), "--no-load"]) == 1
    assert capsys.readouterr().err.strip() == "error: a setting this model cannot take"


@pytest.mark.parametrize("field, value", [("versions", "x"), ("summary", "x")])
def test_info_shows_no_half_report_for_a_descriptive_field_of_the_wrong_type(model_copy, field, value, capsys):
    """The checksum holds but ``versions`` or ``summary`` was edited into a string: one error
    line, and none of the report that came before the field that failed."""
    from legacy_assistant.cli import main

    _rewrite(model_copy, lambda m: m.__setitem__(field, value))
    assert main(["info", str(model_copy), "--no-load"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "a field does not hold what it should" in err[0], err
