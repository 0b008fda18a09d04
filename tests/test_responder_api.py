"""The exported responder: its directory and manifest, damage refused, and :class:`Responder`:
replies per condition and mode, seeded sampling, reranking, scores, errors, threads."""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from compat.responder.inputs import MAX_DECODE_LENGTH
from legacy_assistant.artifacts.directory import manifest_digest, sha256_file, write_json
from legacy_assistant.errors import ArtifactError, RequestError
from legacy_assistant.responder.artifact import FORMAT, MANIFEST, export_responder_artifact, verify_responder
from legacy_assistant.responder.config import ResponderTrainingConfig
from legacy_assistant.responder.responder import UNPENALIZED_TOKENS, DecodingOptions, Responder
from legacy_assistant.responder.training import train_responder
from legacy_assistant.responder.vocabulary import END, N_SPECIAL
from tests import mood_corpus
from tests.helpers import RecordingModel
from tests.mood_corpus import PROMPTS, REPLIES, write_corpus

ROOT = Path(__file__).resolve().parent.parent

CONFIG = ResponderTrainingConfig(
    embedding_size=24, encoder_units=24, context_units=48, decoder_units=48, condition_size=8, batch_size=8,
    epochs=30, learning_rate=0.01, held_out_fraction=0.0, min_count=1, patience=0, checkpoint_every=1000,
)


@pytest.fixture(scope="module")
def trained():
    return train_responder(mood_corpus.dialogues(), CONFIG)


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus") / "moods.jsonl")


@pytest.fixture(scope="module")
def model_dir(trained, corpus_file, tmp_path_factory) -> Path:
    """A pristine exported responder; copy it (``model_copy``) before damaging it."""
    return export_responder_artifact(trained, tmp_path_factory.mktemp("models") / "moods", sources=[corpus_file])


@pytest.fixture(scope="module")
def responder(model_dir):
    with Responder.load(model_dir) as loaded:
        yield loaded


@pytest.fixture
def model_copy(model_dir, tmp_path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(model_dir, target)
    return target


def _words(text: str) -> list[str]:
    return text.lower().replace(".", " .").replace("!", " !").split()


# --- the directory ----------------------------------------------------------------------------


def test_manifest_describes_the_model(model_dir, trained, corpus_file):
    manifest = json.loads((model_dir / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["format"] == FORMAT == "legacy-assistant-responder/1"
    assert manifest["conditions"] == ["neutral", "anger", "joy", "fear", "sadness"]
    assert manifest["spec"] == trained.spec.to_dict()
    assert manifest["vocabulary"]["tokens"] == list(trained.vocabulary.tokens)
    assert manifest["training"] == CONFIG.to_dict()
    assert manifest["source"]["corpora"] == [{"name": "moods.jsonl", "sha256": sha256_file(corpus_file)}]
    assert {"tensorflow", "numpy", "python", "legacy_assistant"} <= set(manifest["versions"])
    history = json.loads((model_dir / "history.json").read_text(encoding="utf-8"))
    assert [row["epoch"] for row in history] == list(range(1, CONFIG.epochs + 1))
    assert (model_dir / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "saved_model/saved_model.pb" in manifest["files"]
    info = verify_responder(model_dir)
    assert info.conditions == tuple(manifest["conditions"]) and info.vocabulary == trained.vocabulary


def test_manifest_records_the_nltk_release_that_words_the_replies(model_dir):
    import nltk

    manifest = json.loads((model_dir / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["versions"]["nltk"] == nltk.__version__


def test_manifest_and_info_record_that_onednn_kernels_trained_the_responder(trained, tmp_path, monkeypatch, capsys):
    from legacy_assistant.cli import main

    # as in a process started with it: TensorFlow reads it at its import
    monkeypatch.setattr("compat.environment._AT_IMPORT", {"TF_ENABLE_ONEDNN_OPTS": "1"})
    path = export_responder_artifact(trained, tmp_path / "onednn", plot=False)
    assert verify_responder(path).manifest["environment"] == {"TF_ENABLE_ONEDNN_OPTS": "1"}
    assert main(["info", str(path), "--no-load"]) == 0
    assert "kernels    trained with TF_ENABLE_ONEDNN_OPTS=1 (oneDNN): a rerun needs it too" in capsys.readouterr().out


def test_verifying_imports_no_tensorflow(model_dir):
    code = (
        "import sys; from legacy_assistant.responder.artifact import verify_responder; "
        f"verify_responder({str(model_dir)!r}); print('tensorflow' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_export_refuses_to_overwrite_without_force(trained, model_copy):
    with pytest.raises(ArtifactError, match="already exists"):
        export_responder_artifact(trained, model_copy, plot=False)
    export_responder_artifact(trained, model_copy, plot=False, force=True)
    assert not (model_copy / "history.png").exists()
    verify_responder(model_copy)


def test_a_history_figure_that_cannot_be_drawn_loses_no_responder(trained, model_copy, monkeypatch, caplog):
    from legacy_assistant.common import plots

    def cannot_draw(*args, **kwargs):
        raise RuntimeError("Matplotlib requires access to a writable cache directory")

    monkeypatch.setattr(plots, "plot_history", cannot_draw)
    with caplog.at_level(logging.WARNING):
        export_responder_artifact(trained, model_copy, force=True)
    verify_responder(model_copy)
    assert not (model_copy / "history.png").exists() and (model_copy / "history.json").is_file()
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "history.png not drawn (RuntimeError: Matplotlib requires access to a writable cache directory); "
        "the model is written without it (history.json holds the same numbers)"
    ]


def _variables_file(root: Path) -> Path:
    return next((root / "saved_model" / "variables").glob("variables.data-*"))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-8])


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda root: _truncate(_variables_file(root)), "altered or truncated"),
        (lambda root: (root / "history.json").unlink(), "history.json: missing"),
        (lambda root: (root / "saved_model" / "extra.bin").write_bytes(b"x"), "unexpected file"),
        (lambda root: (root / MANIFEST).write_text("{", encoding="utf-8"), "not valid JSON"),
    ],
)
def test_damaged_directory_is_refused(model_copy, damage, message):
    damage(model_copy)
    with pytest.raises(ArtifactError, match=message):
        verify_responder(model_copy)
    with pytest.raises(ArtifactError, match=message):
        Responder.load(model_copy)


def _rewrite_manifest(root: Path, change) -> None:
    manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    change(manifest)
    manifest["manifest_sha256"] = manifest_digest(manifest)
    write_json(root / MANIFEST, manifest)


def test_altered_manifest_is_refused(model_copy):
    manifest = json.loads((model_copy / MANIFEST).read_text(encoding="utf-8"))
    manifest["conditions"][0] = "calm"
    write_json(model_copy / MANIFEST, manifest)  # digest left as it was
    with pytest.raises(ArtifactError, match="altered"):
        verify_responder(model_copy)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: m["vocabulary"]["tokens"].append("extra"), "vocab_size"),
        (lambda m: m["conditions"].pop(), "n_conditions"),
        (lambda m: m["conditions"].__setitem__(1, "neutral"), "distinct"),
        # requests ask for a condition stripped and lower-cased: they could not tell these apart
        (lambda m: m["conditions"].__setitem__(0, "Joy"), "conditions differ only in case or spaces"),
        (lambda m: m["conditions"].__setitem__(0, " joy"), "conditions differ only in case or spaces"),
        (lambda m: m["spec"].__setitem__("decoder_units", "wide"), "decoder_units"),
        (lambda m: m["vocabulary"]["tokens"].__setitem__(0, "<blank>"), "special tokens"),
        (lambda m: m.pop("spec"), "missing 'spec'"),
        (lambda m: m.__setitem__("runtime", "tf3"), "unknown runtime 'tf3'"),
    ],
)
def test_inconsistent_manifest_is_refused(model_copy, change, message):
    _rewrite_manifest(model_copy, change)
    with pytest.raises(ArtifactError, match=message):
        verify_responder(model_copy)


def test_a_manifest_spec_other_than_the_saved_models_is_refused_at_load(model_copy):
    """Its limits decide every request: a longer max_reply_tokens would ask the graph for more."""
    _rewrite_manifest(model_copy, lambda m: m["spec"].update(max_reply_tokens=3, decoder_units=9))
    verify_responder(model_copy)  # consistent in itself
    with pytest.raises(ArtifactError, match="spec differs from the SavedModel's in decoder_units, max_reply_tokens"):
        Responder.load(model_copy)


def test_a_manifest_without_the_saved_models_sample_draw_is_refused_naming_it(model_copy):
    """A spec without ``sample_draw`` is the old categorical draw; the SavedModel draws with
    ``gumbel``: the replies would not be the ones the manifest describes."""
    _rewrite_manifest(model_copy, lambda m: m["spec"].pop("sample_draw"))
    verify_responder(model_copy)
    with pytest.raises(ArtifactError, match="spec differs from the SavedModel's in sample_draw$"):
        Responder.load(model_copy)


@pytest.mark.parametrize(
    "change",
    [
        lambda m: m.__setitem__("summary", []),
        lambda m: m["summary"].__setitem__("seconds", "long"),
        lambda m: m.__setitem__("versions", ["tf"]),
        lambda m: m.__setitem__("source", []),
    ],
)
def test_info_on_a_manifest_with_edited_descriptive_fields_is_one_error_line(model_copy, change, capsys):
    from legacy_assistant.cli import main

    _rewrite_manifest(model_copy, change)
    assert main(["info", str(model_copy), "--no-load"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {model_copy / MANIFEST}: a field does not hold"), err


@pytest.mark.parametrize("cases", [[], "nan"])
def test_a_golden_file_that_could_not_fail_is_refused(model_copy, cases, tmp_path):
    from legacy_assistant.responder.golden import read_golden

    golden = {"mode": "greedy", "cases": []}
    if cases == "nan":
        golden["cases"] = [{"context": ["hi"], "condition": "joy", "reply": "x", "ids": [5], "log_prob": float("nan")}]
    path = tmp_path / "golden.json"
    path.write_text(json.dumps(golden), encoding="utf-8")  # NaN as JSON's NaN extension
    with pytest.raises(ArtifactError, match="no golden cases" if cases == [] else "finite numeric 'log_prob'"):
        read_golden(path)


# --- replies ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["greedy", "beam", "sample_rerank"])
def test_the_condition_decides_the_reply_in_every_mode(responder, mode):
    for prompt in PROMPTS[:3] + ["did you see the film yesterday?"]:
        for condition, expected in REPLIES.items():
            reply = responder.respond([prompt], condition, mode=mode, seed=1)
            assert _words(reply) == _words(expected), (prompt, condition, mode, reply)


def test_replies_read_as_text(responder):
    assert responder.respond(["How do you feel about the news?"], "joy") == "I am so happy!"
    assert responder.respond(["what do you think of this ?"]) == "It is ok."  # neutral by default


def test_context_keeps_its_latest_turns(responder):
    long_history = ["hello"] * 10 + ["my team lost the game ."]
    assert responder.respond(long_history, "sadness") == "That makes me sad."


def test_turns_with_nothing_to_encode_do_not_push_words_out_of_the_context(responder):
    """Zero-width spaces hold no token: they are skipped like blank turns, not counted among the
    last turns the model reads (three in this spec), which would leave it nothing to answer."""
    assert responder.spec.max_context_turns == 3
    invisible = ["\u200b", "\ufeff", "\u200b"]
    for mode in ("greedy", "beam"):
        plain = responder.respond(["my team lost the game ."], "sadness", mode=mode)
        assert responder.respond(["my team lost the game ."] + invisible, "sadness", mode=mode) == plain
    assert responder.score(["hello"] + invisible, "hi") == responder.score(["hello"], "hi")
    with pytest.raises(RequestError, match="context is empty"):
        responder.respond(invisible)


def test_seeded_sampling_is_repeatable(model_dir, responder):
    hot = Responder.load(model_dir, options=DecodingOptions(temperature=3.0))
    try:
        context = ["tell me how you feel ."]
        first = [hot.respond(context, "fear", mode="sample", seed=seed) for seed in range(8)]
        assert first == [hot.respond(context, "fear", mode="sample", seed=seed) for seed in range(8)]
        assert len(set(first)) > 1  # at this temperature the seeds do draw different replies
        assert responder.respond(context, "fear", mode="sample", seed=5) == responder.respond(
            context, "fear", mode="sample", seed=5
        )
    finally:
        hot.close()


def test_sample_rerank_keeps_the_best_normalised_sample(model_dir):
    from compat.responder.saved_model import LoadedResponder

    options = DecodingOptions(temperature=3.0, n_samples=6)
    with Responder.load(model_dir, options=options) as hot, LoadedResponder(str(model_dir / "saved_model")) as raw:
        context = ["we are moving to a new city ."]
        for seed in range(5):
            reply = hot.respond(context, "anger", mode="sample_rerank", seed=seed)
            ids = np.array([hot.vocabulary.encode_context(context, 3, 30)], dtype=np.int32)
            result = raw.decode(ids, np.array([1], np.int32), mode="sample", n_samples=6, temperature=3.0,
                                seed=seed, max_length=hot.max_length)
            texts = [hot.vocabulary.decode(row) for row in result.ids[0]]
            normalised = result.log_probs[0] / result.lengths[0]
            best = max(range(6), key=lambda i: normalised[i])
            assert reply == texts[best]


def test_score_is_the_mean_log_probability_of_the_reply(responder):
    context = ["the weather changed today ."]
    right = responder.score(context, "I am scared of it.", "fear")
    wrong_condition = responder.score(context, "I am scared of it.", "joy")
    nonsense = responder.score(context, "outrageous happy sad", "fear")
    assert -0.5 < right <= 0.0
    assert wrong_condition < right - 0.3 and nonsense < right - 1.0
    # By hand: the mean of the token log-probabilities, END included.
    ids = responder.vocabulary.encode_reply("I am scared of it.", 30)
    context_ids = np.zeros((1, 3, 6), np.int32)
    turn = responder.vocabulary.encode_turn(context[0], 30)
    context_ids[0, 2, : len(turn)] = turn
    log_probs = responder._model.score(context_ids, np.array([3], np.int32), np.array([ids], np.int32))
    assert right == pytest.approx(float(log_probs.sum()) / len(ids), rel=1e-6)


def test_score_of_a_reply_with_a_long_word_counts_every_token_after_it(default_responder):
    """Only the reply's first 4,000 characters were tokenized: a reply holding a long pasted word
    lost the tokens after it, and its END came right after the cut."""
    context = ["Do you like movies?"]
    reply = "I do. " + "x" * 4000 + " I like the old ones."
    assert default_responder.score(context, reply) == pytest.approx(
        default_responder.score(context, "I do. xyzzy I like the old ones."), rel=1e-6
    )
    long_word = "y" * 20_000  # no more than the first max_reply_tokens - 1 tokens, then END
    words = " ".join(["yes"] * 40)
    assert default_responder.score(context, f"{words} {long_word}") == pytest.approx(
        default_responder.score(context, words), rel=1e-6
    )


def test_empty_reply_gives_empty_text(trained, tmp_path):
    weights = {name: value.copy() for name, value in trained.weights.items()}
    weights["responder/output/bias"][END] += 100.0  # END at once, whatever the context
    silent = export_responder_artifact(replace(trained, weights=weights), tmp_path / "silent", plot=False)
    with Responder.load(silent) as responder:
        for mode in ("greedy", "sample", "sample_rerank"):
            assert responder.respond(["hello"], mode=mode, seed=1) == ""
        # a beam keeps other candidates beside END; an empty best gives way to the next one
        context = np.array([responder.vocabulary.encode_context(["hello"], 3, 30)], dtype=np.int32)
        result = responder.model.decode(context, np.array([0], np.int32), mode="beam", beam_width=5,
                                        max_length=responder.max_length)
        assert responder.vocabulary.decode(result.ids[0, 0]) == ""
        assert responder.respond(["hello"], mode="beam") == responder.vocabulary.decode(result.ids[0, 1]) != ""


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda r: r.respond(["hi"], "sarcasm"), "unknown condition 'sarcasm'"),
        (lambda r: r.respond(["hi"], mode="nucleus"), "unknown mode 'nucleus'"),
        (lambda r: r.respond([]), "context is empty"),
        (lambda r: r.respond(["", "   "]), "context is empty"),
        (lambda r: r.respond("hello there"), "list of turns"),
        (lambda r: r.respond(["hi", 3]), "must be a string"),
        (lambda r: r.respond(["hi"], mode="sample", seed="7"), "seed"),
        (lambda r: r.respond(["hi"], mode="sample", seed=2**64), "seed"),
        (lambda r: r.score([], "hi"), "context is empty"),
        (lambda r: r.score(["hi"], None), "reply must be a string"),
        (lambda r: r.respond_batch([["hi"], ["yo"]], ["joy"]), "2 contexts but 1 conditions"),
    ],
)
def test_bad_requests_raise_clear_value_errors(responder, call, message):
    with pytest.raises(RequestError, match=message) as caught:
        call(responder)
    assert isinstance(caught.value, ValueError)


BAD_REQUESTS = [
    ((["hi"], "sarcasm", "greedy", None), "unknown condition 'sarcasm'"),
    ((["hi"], None, "nucleus", None), "unknown mode 'nucleus'"),
    (([" "], None, "greedy", None), "context is empty"),
    (("hello there", None, "greedy", None), "list of turns"),
    ((["hi"], None, "sample", True), "seed"),
]


@pytest.mark.parametrize("arguments, message", BAD_REQUESTS)
def test_check_request_raises_what_respond_raises(responder, arguments, message):
    with pytest.raises(RequestError, match=message) as checked:
        responder.check_request(*arguments)
    with pytest.raises(RequestError) as responded:
        responder.respond(*arguments)
    assert str(checked.value) == str(responded.value)


def test_check_request_passes_a_good_request_without_decoding(responder, monkeypatch):
    monkeypatch.setattr(responder.model, "decode", lambda *a, **k: pytest.fail("check_request decoded"))
    assert responder.check_request(["hello there"], "joy", "sample", 7) is None


@pytest.mark.parametrize(
    "options, message",
    [
        ({"temperature": 0}, "temperature must be from 1e-06 to 100, got 0"),
        ({"temperature": 1e10}, "temperature must be from 1e-06 to 100"),
        ({"beam_width": 0}, "beam_width must be a whole number"),
        # refused here, not at the first request's decode
        ({"beam_width": 2.5}, "beam_width must be a whole number from 1 to 256, got 2.5"),
        ({"beam_width": 10**6}, "beam_width must be a whole number from 1 to 256, got 1000000"),  # ran for minutes
        ({"beam_width": "5"}, "beam_width must be a whole number"),
        ({"n_samples": True}, "n_samples must be a whole number"),
        ({"max_length": 10**12}, "max_length must be a whole number from 1 to 1000"),
        # the decode buffers are [n, max_length + 1]: 2**31 - 1 took 9 GB, then a raw TF error
        ({"max_length": 2**31 - 1}, "max_length must be a whole number from 1 to 1000, got 2147483647"),
        ({"max_length": 1001}, "max_length must be a whole number from 1 to 1000, got 1001"),
        # rounds to 0 as the graph's float32: refused here with its limits, not at each request
        ({"repetition_penalty": 1e-46}, r"repetition_penalty must be from 1\.2e-38 to 3\.4e\+38 .*float32.*1e-46"),
        ({"repetition_penalty": 0}, "repetition_penalty must be from 1.2e-38"),
        ({"temperature": "hot"}, "temperature must be a finite number, got 'hot'"),
        ({"length_penalty": float("nan")}, "length_penalty must be a finite number"),
        # became inf in the graph's float32, and every beam candidate ranked alike
        ({"length_penalty": 1e39}, "length_penalty must be from 0 to 10, got 1e"),
        ({"length_penalty": -0.5}, "length_penalty must be from 0 to 10, got -0.5"),
        ({"temperature": 10**400}, "temperature must be a finite number"),  # no float holds it
    ],
)
def test_bad_decoding_options_are_refused(options, message):
    with pytest.raises(RequestError, match=message):
        DecodingOptions(**options)


def test_decoding_options_take_numpy_numbers_as_the_python_numbers_they_hold():
    """np.int64(3) was refused as no "whole number from 1 to 256", np.float32(0.5) as no number."""
    options = DecodingOptions(
        temperature=np.float32(0.5), beam_width=np.int64(3), n_samples=np.int32(4), max_length=np.int64(20),
        repetition_penalty=np.float32(2.0), length_penalty=np.int64(1), condition_strength=np.float16(0),
    )
    assert options == DecodingOptions(temperature=0.5, beam_width=3, n_samples=4, max_length=20, repetition_penalty=2.0,
                                      length_penalty=1, condition_strength=0.0)
    assert (type(options.beam_width), type(options.temperature), type(options.length_penalty)) == (int, float, float)
    with pytest.raises(RequestError, match="^beam_width must be a whole number from 1 to 256, got 0$"):
        DecodingOptions(beam_width=np.int64(0))
    with pytest.raises(RequestError, match=r"^beam_width must be a whole number from 1 to 256, got (np\.True_|True)$"):
        DecodingOptions(beam_width=np.bool_(True))


def test_a_responder_cannot_be_pickled_and_says_how_to_share_it(responder):
    import pickle

    with pytest.raises(TypeError, match="a Responder cannot be pickled") as caught:
        pickle.dumps(responder)
    message = str(caught.value)
    assert "give the other process the responder directory and load it there with Responder.load" in message
    assert "classifier" not in message


def test_the_largest_max_length_decodes(responder):
    longest = Responder(responder.info, responder.model, DecodingOptions(max_length=1000))  # shares the model
    assert longest.max_length == 1000
    assert isinstance(longest.respond(["hello there"]), str)


def test_a_spec_allowing_longer_replies_than_a_decode_may_ask_for_decodes_at_most_1000_tokens(responder):
    """Training allows max_reply_tokens far past what a decode takes: the default is cut to 1,000."""
    for allowed, expected in ((MAX_DECODE_LENGTH * 5, MAX_DECODE_LENGTH), (7, 7)):
        spec = replace(responder.spec, max_reply_tokens=allowed)
        recording = RecordingModel(responder.model, spec=spec)  # shares the model, with a stand-in spec
        stand_in = Responder(replace(responder.info, spec=spec), recording)
        assert stand_in.max_length == expected
        assert isinstance(stand_in.respond(["hello there"]), str)
        assert recording.calls[-1]["max_length"] == expected


def test_a_beam_wider_than_the_vocabulary_is_narrowed_to_its_words(responder):
    """The decode refuses a beam wider than the tokens it may produce: the options' width is cut to them."""
    words = len(responder.vocabulary) - N_SPECIAL
    assert words < 256  # the widest beam the options take
    recording = RecordingModel(responder.model)
    wide = Responder(responder.info, recording, DecodingOptions(beam_width=256))
    assert wide.respond(["my team lost the game ."], "sadness", mode="beam")
    assert recording.calls[-1]["beam_width"] == words
    narrow = Responder(responder.info, recording, DecodingOptions(beam_width=3))
    narrow.respond(["my team lost the game ."], "sadness", mode="beam")
    assert recording.calls[-1]["beam_width"] == 3


def test_articles_and_punctuation_are_handed_to_the_decode_as_unpenalized(responder):
    """The repetition penalty exempts the vocabulary's ids of UNPENALIZED_TOKENS, and only those."""
    vocabulary = responder.vocabulary
    known = [token for token in UNPENALIZED_TOKENS if token in vocabulary]
    assert "." in known and "!" in known  # the mood corpus has both
    recording = RecordingModel(responder.model)
    Responder(responder.info, recording, DecodingOptions(repetition_penalty=10.0)).respond(["hello"])
    exempt = recording.calls[-1]["unpenalized_ids"]
    assert sorted(vocabulary.tokens[i] for i in exempt) == sorted(known)
    assert list(exempt) == sorted(vocabulary.token_id(token) for token in known)


def test_an_unseeded_sample_is_seeded_by_a_fresh_draw(responder, monkeypatch):
    """seed=None must draw a new seed for every call (from secrets), not sample with a fixed one."""
    import legacy_assistant.responder.responder as responder_module

    draws = iter([123456789, 987654321])
    asked = []
    monkeypatch.setattr(responder_module.secrets, "randbits", lambda bits: asked.append(bits) or next(draws))
    recording = RecordingModel(responder.model)
    sampler = Responder(responder.info, recording)
    sampler.respond(["hello"], mode="sample")
    sampler.respond(["hello"], mode="sample_rerank")
    sampler.respond(["hello"], mode="sample", seed=7)  # a given seed is used as it is
    assert [call["seed"] for call in recording.calls] == [123456789, 987654321, 7]
    assert asked == [63, 63]


@pytest.mark.parametrize(
    "contexts, conditions, message",
    [
        (None, None, "contexts must be a list"),
        ((c for c in [["hi"]]), None, "contexts must be a list"),
        ("hello", None, "contexts must be a list"),
        ([["hi"]], 5, "conditions must be a list"),
        ([["hi"]], "joy", "conditions must be a list"),  # not three conditions 'j', 'o', 'y'
        # bytes is a sequence of ints: not "unknown condition 106", nor "1 contexts but 3 conditions"
        ([["hi"], ["yo"]], b"jj", "conditions must be a list .* got bytes"),
        ([["hi"]], b"joy", "conditions must be a list .* got bytes"),
        ([["hi"], ["yo"]], bytearray(b"jj"), "conditions must be a list .* got bytearray"),
        ([["hi"], ["yo"]], memoryview(b"jj"), "conditions must be a list .* got memoryview"),
        ([["hi"]], {"joy": 1}, "conditions must be a list .* got dict"),
    ],
)
def test_respond_batch_refuses_arguments_of_the_wrong_kind(responder, contexts, conditions, message):
    with pytest.raises(RequestError, match=message):
        responder.respond_batch(contexts, conditions)


def test_a_numpy_array_of_turns_is_answered_as_its_list(responder):
    """The classifier ranks a numpy array of texts as its list; the responder refused one."""
    context = ["i feel happy today", "why ?"]
    expected = responder.respond(context, mode="beam")
    assert responder.respond(np.array(context), mode="beam") == expected
    assert responder.respond(tuple(context), mode="beam") == expected
    assert responder.respond_batch(np.array([context, context]), mode="beam") == [expected, expected]
    assert responder.score(np.array(context), expected) == responder.score(context, expected)


def test_a_numpy_array_of_contexts_of_different_lengths_is_answered_as_its_list(responder):
    """numpy holds contexts of different lengths as a 1-D array of objects; respond_batch, typed to
    take a numpy array of contexts, took only a 2-D one and refused this one as no list."""
    contexts = [["i feel happy today"], ["hello", "why ?"]]
    expected = responder.respond_batch(contexts, mode="beam")
    ragged = np.empty(2, dtype=object)
    ragged[:] = contexts
    assert responder.respond_batch(ragged, mode="beam") == expected
    ragged[:] = [np.array(context) for context in contexts]
    assert responder.respond_batch(ragged, mode="beam") == expected
    # a 1-D array of strings is a list of bare strings, not of contexts: still refused
    with pytest.raises(RequestError, match="context must be a list of turns .* got str"):
        responder.respond_batch(np.array(["hello", "why ?"]))


def test_respond_batch_names_the_context_or_condition_it_refuses(responder):
    """Of a batch of many contexts, "the context is empty" did not say which one; a single call
    (respond) keeps its message as it was."""
    fine = [PROMPTS[0]]
    with pytest.raises(RequestError, match=r"^contexts\[2\]: the context is empty: give at least one turn"):
        responder.respond_batch([fine, fine, ["\u200b"], fine])
    with pytest.raises(RequestError, match=r"^contexts\[1\]: every turn of the context must be a string, got int$"):
        responder.respond_batch([fine, [PROMPTS[1], 5]])
    with pytest.raises(RequestError, match=r"^conditions\[1\]: unknown condition 'happy'; this model knows "):
        responder.respond_batch([fine, fine], [None, "happy"])
    with pytest.raises(RequestError, match=r"^the context is empty: give at least one turn with text$"):
        responder.respond([" "])
    with pytest.raises(RequestError, match=r"^unknown condition 'happy'; this model knows "):
        responder.respond_batch([fine], ["happy"])


def test_a_numpy_array_of_conditions_is_taken_as_its_list(responder):
    """respond_batch took a numpy array of contexts but refused one of their conditions."""
    contexts = [[prompt] for prompt in PROMPTS[:2]]
    conditions = list(REPLIES)[:2]
    expected = responder.respond_batch(contexts, conditions, mode="beam")
    assert responder.respond_batch(np.array(contexts), np.array(conditions), mode="beam") == expected
    assert responder.respond_batch(contexts, np.array(conditions, dtype=object), mode="beam") == expected


@pytest.mark.parametrize(
    "context, kind",
    [((turn for turn in ["hi"]), "generator"), ({"hi"}, "set"), ("hi", "str"), (np.array([["hi"]]), "ndarray")],
)
def test_a_context_that_is_no_sequence_of_turns_is_refused_naming_its_type(responder, context, kind):
    with pytest.raises(RequestError, match=f"^context must be a list of turns \\(strings\\), oldest first, got {kind}$"):
        responder.respond(context)
    with pytest.raises(RequestError, match="^every turn of the context must be a string, got int$"):
        responder.respond(["hi", 5])


def test_many_threads_share_one_responder(responder):
    requests = [([prompt], condition) for prompt in PROMPTS for condition in REPLIES] * 3
    expected = [responder.respond(context, condition, mode="beam") for context, condition in requests]
    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(lambda request: responder.respond(request[0], request[1], mode="beam"), requests))
    assert replies == expected
    batched = responder.respond_batch([c for c, _ in requests], [k for _, k in requests], mode="beam")
    assert batched == expected


def test_options_that_are_not_decoding_options_are_refused_before_loading():
    from legacy_assistant.errors import RequestError
    from legacy_assistant.responder.responder import Responder
    from tests.helpers import DEFAULT_RESPONDER

    with pytest.raises(RequestError, match="options must be DecodingOptions \\(or None\\), got dict"):
        Responder.load(DEFAULT_RESPONDER, options={"temperature": 1})  # was an AttributeError


def test_predictor_and_assistant_close_as_context_managers(tmp_path):
    """As a Responder does: ``with Predictor.load(...) as p:`` closes its session at the end."""
    from legacy_assistant.classifier.predictor import Predictor
    from legacy_assistant.serving.assistant import Assistant
    from tests.helpers import DEFAULT_MODEL

    with Predictor.load(DEFAULT_MODEL) as predictor:
        assert predictor.rank_one("hello there")
    with pytest.raises(RuntimeError, match="closed"):
        predictor.rank_one("hello there")
    with Assistant.load(DEFAULT_MODEL) as assistant:
        assert assistant.parse("hello there")
    with pytest.raises(RuntimeError, match="closed"):
        assistant.parse("hello there")


def test_a_missing_responder_directory_is_named_as_one(tmp_path):
    """Not "model directory not found", which reads as the intent model's (a reload names both)."""
    with pytest.raises(ArtifactError, match=f"^responder directory not found: {re.escape(str(tmp_path / 'gone'))}$"):
        verify_responder(tmp_path / "gone")


@pytest.mark.parametrize("load", ["classifier", "responder"])
def test_an_unknown_runtime_argument_is_named_as_one(load):
    """It was reported as a mismatch with the model ("cannot be loaded with runtime 'foo'")."""
    from compat.selection import UnknownRuntime
    from legacy_assistant.classifier.predictor import Predictor
    from tests.helpers import DEFAULT_MODEL, DEFAULT_RESPONDER

    loader, path = (Predictor.load, DEFAULT_MODEL) if load == "classifier" else (Responder.load, DEFAULT_RESPONDER)
    with pytest.raises(UnknownRuntime, match="^unknown runtime 'foo': choose one of compat, tf2$") as caught:
        loader(path, runtime="foo")
    assert isinstance(caught.value, RequestError)  # a bad argument, as documented: not a bare ValueError


@pytest.mark.parametrize("load", ["classifier", "responder"])
@pytest.mark.parametrize("path", [None, 5, ["exported/default"]])
def test_a_model_path_of_the_wrong_type_is_a_request_error(load, path):
    """It was Python's TypeError from deep inside pathlib, which no caller of the library expects."""
    from legacy_assistant.classifier.predictor import Predictor

    loader = Predictor.load if load == "classifier" else Responder.load
    with pytest.raises(RequestError, match=f"^path must be a string or an os.PathLike, got {type(path).__name__}$"):
        loader(path)


class _SilentFirst(RecordingModel):
    """The real model, except that chosen candidates of the first decode are END at once."""

    def __init__(self, model, silent):
        super().__init__(model)
        self.silent = silent  # candidate indices made empty in the first decode

    def decode(self, context_ids, condition_ids, **options):
        result = super().decode(context_ids, condition_ids, **options)
        if len(self.decodes) == 1:
            ids = result.ids.copy()
            for candidate in self.silent:
                ids[:, candidate] = 0
                ids[:, candidate, 0] = END
            log_probs, lengths = result.log_probs.copy(), result.lengths.copy()
            log_probs[:, list(self.silent)], lengths[:, list(self.silent)] = 0.0, 1  # ranked first
            result = replace(result, ids=ids, log_probs=log_probs, lengths=lengths)
        return result


def test_a_sample_that_says_nothing_is_drawn_again(responder):
    """cakechat's API drew again (up to 10 times) when a sample was empty; so does ``sample``."""
    context = [["tell me how you feel ."], ["we are moving to a new city ."]]
    model = _SilentFirst(responder.model, silent=[0])
    silent_first = Responder(responder.info, model)
    replies = silent_first.respond_batch(context, ["fear", "joy"], mode="sample", seed=7)
    assert all(re.search(r"\w", reply) for reply in replies)
    assert [mode for mode, _, _ in model.decodes] == ["sample", "sample"]
    assert model.calls[1]["seed"] != model.calls[0]["seed"] and model.decodes[1][2] == 2
    # seeded: the redraw repeats too
    again = Responder(responder.info, _SilentFirst(responder.model, silent=[0]))
    assert again.respond_batch(context, ["fear", "joy"], mode="sample", seed=7) == replies


@pytest.mark.parametrize("mode", ["beam", "sample_rerank"])
def test_a_candidate_that_says_nothing_is_passed_over(responder, mode):
    """cakechat's API dropped empty candidates before choosing; the best one with a word is kept."""
    context = ["tell me how you feel ."]
    model = _SilentFirst(responder.model, silent=[0])
    reply = Responder(responder.info, model).respond(context, "fear", mode=mode, seed=3)
    assert re.search(r"\w", reply)
    assert len(model.decodes) == 1  # no second decode: another candidate had words


class _SilentDraws(RecordingModel):
    """The real model, except that its first ``draws`` decodes end every candidate at once."""

    def __init__(self, model: object, draws: int) -> None:
        super().__init__(model)
        self.draws = draws

    def decode(self, context_ids: np.ndarray, condition_ids: np.ndarray, **options: object) -> object:
        result = super().decode(context_ids, condition_ids, **options)
        if len(self.decodes) > self.draws:
            return result
        ids = np.zeros_like(result.ids)
        ids[:, :, 0] = END
        return replace(result, ids=ids, lengths=np.ones_like(result.lengths))


@pytest.mark.parametrize("silent_draws", [9, 10])
def test_a_sample_is_drawn_at_most_ten_times(responder: Responder, silent_draws: int) -> None:
    """As cakechat's API (10 sampling attempts): a reply silent in its first 9 draws is the 10th
    draw's; one silent in all 10 is given up on, empty, without an 11th decode."""
    model = _SilentDraws(responder.model, draws=silent_draws)
    reply = Responder(responder.info, model).respond(["tell me how you feel ."], "fear", mode="sample", seed=7)
    assert len(model.decodes) == 10
    if silent_draws < 10:
        assert re.search(r"\w", reply), reply
    else:
        assert reply == ""


# A process whose first TensorFlow session sizes the intra-op thread pool at THREADS, then the
# shipped responder's seeded sampled replies: one context at a time and a batch of several.
SEEDED_IN_A_POOL = """
import json
from legacy_assistant.responder.responder import Responder
contexts = [["Do you like movies?"], ["Tell me a joke."], ["I failed my exam today."],
            ["Hi!", "Hello, how are you?", "I'm fine. Do you like movies?"]]
with Responder.load("exported/responder", intra_op_threads=THREADS) as responder:
    one = [responder.respond(c, "sadness", mode="sample_rerank", seed=seed) for c in contexts for seed in (1, 2)]
    batch = responder.respond_batch(contexts, mode="sample_rerank", seed=1)
    sampled = responder.respond_batch(contexts, ["joy"] * 4, mode="sample", seed=3)
print(json.dumps({"one": one, "batch": batch, "sampled": sampled}))
"""


def test_seeded_samples_are_the_same_whatever_the_intra_op_thread_count():
    """TensorFlow sizes a process's intra-op pool at its first session (the server: 1 thread; a
    library process: one per CPU); a seeded reply must not depend on that size."""
    from tests.subprocesses import json_out, run_snippet

    replies = [json_out(run_snippet(SEEDED_IN_A_POOL.replace("THREADS", str(n)), timeout=300)) for n in (1, 4)]
    assert replies[0] == replies[1]
    assert len(set(replies[0]["one"])) > 2 and all(replies[0]["batch"])  # real, varied replies
