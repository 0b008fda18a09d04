"""Model directories written by earlier releases load and answer as they did."""
import json
import shutil

import numpy as np
import pytest

from legacy_assistant.artifacts.directory import manifest_digest, sha256_file, write_json
from legacy_assistant.classifier.artifact import MANIFEST
from legacy_assistant.classifier.predictor import Predictor
from legacy_assistant.errors import ArtifactError
from tests.helpers import DEFAULT_MODEL

TEXTS = ["hello there", "what time do you open", "", "zzz qqq", "thanks a lot, bye"]


def _with_dense_saved_model(root, kernel, bias):
    """Replace ``root``'s SavedModel with the first releases' form: ``predict`` takes one dense
    float32 ``features`` [batch, n] and gives ``probabilities`` = softmax(features @ kernel + bias);
    the manifest's checksums follow."""
    from compat.runtime import tf

    shutil.rmtree(root / "saved_model")
    graph = tf.Graph()
    with graph.as_default(), tf.Session(graph=graph) as session:
        features = tf.placeholder(tf.float32, [None, kernel.shape[0]], name="features")
        logits = tf.matmul(features, tf.get_variable("kernel", initializer=kernel)) + tf.get_variable(
            "bias", initializer=bias
        )
        probabilities = tf.nn.softmax(logits, name="probabilities")
        session.run(tf.global_variables_initializer())
        builder = tf.saved_model.builder.SavedModelBuilder(str(root / "saved_model"))
        signature = tf.saved_model.signature_def_utils.predict_signature_def(
            {"features": features}, {"probabilities": probabilities, "logits": logits}
        )
        builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map={"predict": signature})
        builder.save()
    manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    manifest["files"] = {
        path.relative_to(root).as_posix(): sha256_file(path)
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    }
    manifest["manifest_sha256"] = manifest_digest(manifest)
    write_json(root / MANIFEST, manifest)


def _dense(predictor, texts):
    return predictor.features(texts).to_dense(predictor.info.featurizer.n_features).astype(np.float64)


def test_a_model_with_the_first_releases_dense_signature_answers_through_the_sparse_features(model_copy):
    with Predictor.load(model_copy) as current:
        n_features, n_classes = current.info.featurizer.n_features, len(current.classes)
        dense = _dense(current, TEXTS)
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(n_features, n_classes)).astype(np.float32)
    bias = rng.normal(size=n_classes).astype(np.float32)
    _with_dense_saved_model(model_copy, kernel, bias)

    logits = dense @ kernel.astype(np.float64) + bias
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    with Predictor.load(model_copy) as old:
        assert np.abs(old.predict_proba(TEXTS) - expected).max() < 1e-5
        assert old.rank_one(TEXTS[0])[0][0] == old.classes[int(np.argmax(expected[0]))]
        assert old.predict_proba(TEXTS, batch_size=2).shape == (len(TEXTS), n_classes)


def test_a_dense_model_whose_width_differs_from_its_manifest_is_refused(model_copy):
    with Predictor.load(model_copy) as current:
        n_features, n_classes = current.info.featurizer.n_features, len(current.classes)
    _with_dense_saved_model(model_copy, np.zeros((n_features + 1, n_classes), np.float32), np.zeros(n_classes, np.float32))
    with pytest.raises(ArtifactError, match=rf"\({n_features + 1} features, {n_classes} classes\) does not match"):
        Predictor.load(model_copy)


def _rename_vocabulary_words(root, renames):
    """Rewrite words of ``root``'s vocabulary (same places, so the same feature ids) as an earlier
    release's text processing produced them; the manifest's digest follows."""
    manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    vocabulary = manifest["featurizer"]["vocabulary"]
    for old, new in renames.items():
        vocabulary[vocabulary.index(old)] = new
    manifest["manifest_sha256"] = manifest_digest(manifest)
    write_json(root / MANIFEST, manifest)


def test_a_model_trained_on_words_todays_text_processing_no_longer_produces_is_named_at_load(model_copy, caplog):
    from legacy_assistant.classifier.artifact import verify_artifact

    with Predictor.load(model_copy) as current:
        words = [term for term in current.info.featurizer.vocabulary if " " not in term and term.isalpha()][:2]
    # an earlier release kept an emoji on the word it touched and an Arabic vowel mark in its word
    _rename_vocabulary_words(model_copy, {words[0]: words[0] + "\U0001f44b", words[1]: words[1] + "\u064e"})
    with caplog.at_level("WARNING", logger="legacy_assistant.classifier.artifact"):
        verify_artifact(model_copy)
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert len(warnings) == 1, warnings
    assert str(model_copy) in warnings[0]
    assert repr(words[0] + "\U0001f44b") in warnings[0] and repr(words[1] + "\u064e") in warnings[0]
    assert "2 words of the model's vocabulary" in warnings[0] and "legacy-assistant train" in warnings[0]


def test_the_words_read_otherwise_are_named_as_written_in_their_script(model_copy, caplog):
    """The warning wrote each word as Python's ascii() does: "straße" was 'stra\\xdfe' and a Greek
    word a row of escapes. Letters stay as written; an invisible character is still escaped."""
    from legacy_assistant.classifier.artifact import verify_artifact

    with Predictor.load(model_copy) as current:
        words = [term for term in current.info.featurizer.vocabulary if " " not in term and term.isalpha()][:3]
    # an earlier release lower-cased "ß" and "ς" as they are, and kept a zero-width space
    _rename_vocabulary_words(model_copy, {words[0]: "straße", words[1]: "οδος", words[2]: words[2] + "\u200b"})
    with caplog.at_level("WARNING", logger="legacy_assistant.classifier.artifact"):
        verify_artifact(model_copy)
    [warning] = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert "'straße'" in warning and "'οδος'" in warning and "\\xdf" not in warning
    assert f"'{words[2]}\\u200b'" in warning  # escaped: seen bare, it would read as words[2]


def test_models_trained_with_todays_text_processing_load_without_that_warning(tiny_model_dir, caplog):
    from legacy_assistant.classifier.artifact import verify_artifact

    with caplog.at_level("WARNING", logger="legacy_assistant.classifier.artifact"):
        verify_artifact(tiny_model_dir)
        verify_artifact(DEFAULT_MODEL)
    assert not [record for record in caplog.records if record.levelname == "WARNING"]


def test_info_names_the_words_read_otherwise_once(model_copy, caplog, capsys):
    """`info` verifies a model, then loads it, which verifies it again: the warning came twice."""
    from legacy_assistant.cli import main

    with Predictor.load(model_copy) as current:
        word = next(term for term in current.info.featurizer.vocabulary if " " not in term and term.isalpha())
    _rename_vocabulary_words(model_copy, {word: word + "\u064e"})
    with caplog.at_level("WARNING", logger="legacy_assistant.classifier.artifact"):
        assert main(["info", str(model_copy)]) == 0
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert len(warnings) == 1 and repr(word + "\u064e") in warnings[0], warnings


def test_a_served_model_names_the_words_read_otherwise_at_its_load_and_not_at_each_reload(model_copy, caplog):
    """A SIGHUP reaches every worker: each looks at the directory, and one serving what is there
    loads nothing. That look named the words again at every reload; they are named as the model
    loads, and as a reload loads another model with such words."""
    from legacy_assistant.web import create_app

    with Predictor.load(model_copy) as current:
        words = [term for term in current.info.featurizer.vocabulary if " " not in term and term.isalpha()][:2]
    _rename_vocabulary_words(model_copy, {words[0]: words[0] + "\u064e"})
    with caplog.at_level("WARNING", logger="legacy_assistant.classifier.artifact"):
        app = create_app({"MODEL_DIR": str(model_copy), "RESPONDER_DIR": None, "STORE_URL": "memory"})
        slot = app.extensions["legacy_assistant"]
        try:
            assert slot.reload().changed is False
            assert slot.reload().changed is False
            named = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
            assert len(named) == 1 and repr(words[0] + "\u064e") in named[0], named
            _rename_vocabulary_words(model_copy, {words[1]: words[1] + "\u064e"})
            assert slot.reload().changed is True
        finally:
            slot.close()
    named = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert len(named) == 2 and "2 words of the model's vocabulary" in named[1], named
