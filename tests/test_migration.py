"""``migrate``: a TF2-native model that answers what its compat source answers (same top-1,
max |Δp| <= 1e-5) on the golden set and on generated sentences, compared across processes."""
import json
import shutil

import numpy as np
import pytest

from compat import selection
from legacy_assistant.artifacts.directory import manifest_digest
from legacy_assistant.classifier.artifact import MANIFEST, verify_artifact
from legacy_assistant.errors import ArtifactError
from legacy_assistant.classifier.golden import GOLDEN_FILE, write_golden
from legacy_assistant.classifier.predictor import Predictor
from legacy_assistant.classifier.probes import probe_sentences
from legacy_assistant.serving.assistant import Assistant
from tests.helpers import DEFAULT_MODEL, SHIPPED_INTENTS
from tests.subprocesses import FORK_PROBE, json_out, run_cli, run_snippet

TOLERANCE = 1e-5
PROBES = 1000


@pytest.fixture(scope="session")
def migrated_default(tmp_path_factory):
    out = tmp_path_factory.mktemp("tf2") / "default-tf2"
    report = json_out(run_cli("migrate", str(DEFAULT_MODEL), "--out", str(out), "--json"))
    return out, report


@pytest.fixture(scope="session")
def migrated_tiny(tmp_path_factory, tiny_model_dir):
    out = tmp_path_factory.mktemp("tf2") / "tiny-tf2"
    json_out(run_cli("migrate", str(tiny_model_dir), "--out", str(out), "--json"))
    return out


def _parity(predictor, migrated, tmp_path, seed_texts):
    """Compat probabilities written here, checked by the TF2 runtime in another process."""
    sentences = list(seed_texts) + probe_sentences(seed_texts, predictor.info.featurizer.vocabulary, PROBES, seed=1)
    expected = tmp_path / "compat-answers.json"
    write_golden(predictor, sentences, expected)
    report_path = tmp_path / "report.json"
    result = run_cli("golden", str(migrated), "--runtime", "tf2", "--check", "--golden", str(expected),
                     "--report", str(report_path))
    report = json.loads(report_path.read_text())
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-2000:])
    return report, len(sentences)


def test_shipped_model_parity_on_golden_and_generated_sentences(default_predictor, migrated_default, golden, tmp_path):
    out, _ = migrated_default
    report, n = _parity(default_predictor, out, tmp_path, [case["text"] for case in golden["cases"]])
    assert report["cases"] == n >= PROBES
    assert report["mismatches"] == [] and report["top1_agreement"] == 1.0
    assert report["max_abs_delta"] <= TOLERANCE


@pytest.mark.pinned_only
def test_evaluate_and_info_read_a_migrated_model_without_a_runtime_flag(migrated_default, tmp_path):
    out, _ = migrated_default
    info = run_cli("info", str(out), "--json")
    assert info.returncode == 0 and json.loads(info.stdout)["runtime"] == "tf2", info.stderr[-2000:]
    assert json.loads(info.stdout)["kind"] == "intent"
    report = tmp_path / "eval.json"
    evaluated = run_cli("evaluate", str(out), str(SHIPPED_INTENTS), "--out", str(report))
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert json.loads(report.read_text())["accuracy"] > 0.5  # the shipped model on its own patterns


def test_model_trained_in_this_run_has_parity(tiny_predictor, migrated_tiny, tiny_intents, tmp_path):
    report, _ = _parity(tiny_predictor, migrated_tiny, tmp_path, tiny_intents.examples()[0])
    assert report["mismatches"] == [] and report["max_abs_delta"] <= TOLERANCE


def test_migrate_checks_itself_against_the_source_golden(migrated_default, golden):
    out, report = migrated_default
    assert report["kind"] == "intent"  # as info says; a responder's report says "responder"
    assert report["source_golden"]["cases"] == len(golden["cases"])
    assert report["source_golden"]["max_abs_delta"] <= TOLERANCE
    assert report["numpy_reference"]["top1_agreement"] == 1.0
    assert report["numpy_reference"]["max_abs_delta"] <= TOLERANCE
    assert (out / GOLDEN_FILE).read_bytes() == (DEFAULT_MODEL / GOLDEN_FILE).read_bytes()


def test_migrated_artifact_keeps_the_contract_and_the_discipline(migrated_default):
    out, _ = migrated_default
    source, target = verify_artifact(DEFAULT_MODEL), verify_artifact(out)
    assert target.runtime == "tf2" and source.runtime == "compat"
    for key in ("featurizer", "classes", "network", "threshold", "fallback", "intents"):
        assert target.manifest[key] == source.manifest[key], key
    assert target.manifest["migrated_from"]["manifest_sha256"] == source.manifest["manifest_sha256"]
    assert "saved_model/saved_model.pb" in target.manifest["files"]
    assert not [p for p in out.rglob("*") if p.suffix in (".pkl", ".pickle")]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging debris


def test_damaged_tf2_model_is_refused_naming_the_file(migrated_default, tmp_path):
    out, _ = migrated_default
    copy = tmp_path / "damaged-tf2"
    shutil.copytree(out, copy)
    data = next((copy / "saved_model" / "variables").glob("variables.data-*"))
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    data.write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match=f"{data.name}: altered or truncated"):
        verify_artifact(copy)
    result = run_cli("golden", str(copy), "--runtime", "tf2", "--check")
    assert result.returncode == 1 and "altered or truncated" in result.stderr and "Traceback" not in result.stderr


def test_compat_process_refuses_a_tf2_model_clearly(migrated_default):
    with pytest.raises(ArtifactError, match=r"'tf2' runtime .*runtime='tf2', or --runtime tf2 on the command line\)"):
        Predictor.load(migrated_default[0])


def test_a_process_running_compat_advises_a_process_of_its_own_for_a_tf2_model(migrated_tiny, tiny_predictor):
    # tiny_predictor: this process runs the compat runtime. The refusal told the caller to load the
    # model with runtime='tf2', which here only raises RuntimeConflict.
    with pytest.raises(ArtifactError) as refused:
        Predictor.load(migrated_tiny)
    message = str(refused.value)
    assert "'tf2' runtime cannot be loaded with runtime 'compat'" in message
    assert "this process already runs runtime 'compat'" in message
    assert "in a process of its own with runtime='tf2'" in message
    with pytest.raises(selection.RuntimeConflict):  # what the advice it gave before led to
        Predictor.load(migrated_tiny, runtime="tf2")


def test_a_process_running_tf2_advises_a_process_of_its_own_for_a_compat_model(migrated_tiny, tiny_model_dir):
    result = run_snippet(
        "from legacy_assistant.classifier.predictor import Predictor\n"
        "from legacy_assistant.errors import ArtifactError\n"
        f"Predictor.load({str(migrated_tiny)!r}, runtime='tf2').close()\n"
        "try:\n"
        f"    Predictor.load({str(tiny_model_dir)!r})\n"
        "except ArtifactError as exc:\n"
        "    print('refused:', exc)\n"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "'compat' runtime cannot be loaded with runtime 'tf2'" in result.stdout, result.stdout
    assert "this process already runs runtime 'tf2'" in result.stdout
    assert "in a process of its own with runtime='compat'" in result.stdout


def test_assistant_load_takes_the_runtime_its_message_names(migrated_default):
    # the refusal tells a caller to load with runtime='tf2': Assistant.load takes that argument
    with pytest.raises(ArtifactError, match=r"'compat' runtime cannot be loaded with runtime 'tf2'"):
        Assistant.load(DEFAULT_MODEL, runtime="tf2")  # refused before any TF2 code is imported
    out, _ = migrated_default
    result = run_snippet(
        "import json\n"
        "from legacy_assistant.serving.assistant import Assistant\n"
        f"with Assistant.load({str(out)!r}, runtime='tf2', seed=1) as assistant:\n"
        "    reply = assistant.chat('user-1', 'what time do you open?')\n"
        "print(json.dumps({'intent': reply.intent, 'confidence': reply.confidence}))\n"
    )
    answer = json_out(result)
    with Assistant.load(DEFAULT_MODEL, seed=1) as assistant:
        expected = assistant.chat("user-1", "what time do you open?")
    assert answer["intent"] == expected.intent
    assert abs(answer["confidence"] - expected.confidence) <= TOLERANCE


def test_unknown_network_option_fails_migration_clearly(model_copy, tmp_path):
    manifest_path = model_copy / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["network"]["activation"] = "gelu"
    manifest["manifest_sha256"] = manifest_digest(manifest)
    manifest_path.write_text(json.dumps(manifest))
    result = run_cli("migrate", str(model_copy), "--out", str(tmp_path / "never"))
    assert result.returncode == 1
    assert "'activation'" in result.stderr and "not understood" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "never").exists()


@pytest.fixture(scope="module")
def tf2_process_answers(migrated_default, golden) -> dict:
    """What one TF2 process answers with the migrated shipped model: the web app's parse route
    (the first 8 golden texts), and the predictor called from 16 threads against one thread."""
    out, _ = migrated_default
    texts = [case["text"] for case in golden["cases"]]
    result = run_snippet(
        FORK_PROBE + "import json, threading\n"
        "from concurrent.futures import ThreadPoolExecutor\n"
        "from compat.selection import select\n"
        "select('tf2')\n"
        "from legacy_assistant.classifier.predictor import Predictor\n"
        "from legacy_assistant.web import create_app\n"
        f"texts = {texts!r}\n"
        # the shipped responder is a compat model: a tf2 process serves the migrated intent model alone
        f"app = create_app({{'TESTING': True, 'MODEL_DIR': {str(out)!r}, 'RESPONDER_DIR': None, 'STORE_URL': 'memory'}})\n"
        "client = app.test_client()\n"
        "answers = [client.post('/api/v1/parse', json={'text': t}).get_json() for t in texts[:8]]\n"
        f"p = Predictor.load({str(out)!r})\n"
        "sequential = [p.rank_one(t) for t in texts]\n"
        "barrier = threading.Barrier(16)\n"
        "def call(i):\n"
        "    if i < 16:\n        barrier.wait()\n"
        "    return p.rank_one(texts[i % len(texts)]) == sequential[i % len(texts)]\n"
        "with ThreadPoolExecutor(16) as pool:\n    same = list(pool.map(call, range(16 * 8)))\n"
        f"forked = [in_child(lambda: p.rank_one('hi')), in_child(lambda: Predictor.load({str(out)!r}))]\n"
        "model = p._classifier\n"  # close() lets go of it: its own refusal is asked of it directly
        "p.close()\n"
        "closed = []\n"
        "for call in (lambda: p.rank(['hi']), lambda: model.predict_proba([[1]], [[1.0]])):\n"
        "    try:\n        call()\n        closed.append('answered')\n"
        "    except Exception as exc:\n        closed.append(f'{type(exc).__name__}: {exc}')\n"
        # a close() from another thread that lands between the model's own check and its run
        "import compat.tf2.saved_model as tf2_model\n"
        f"p = Predictor.load({str(out)!r})\n"
        "checked = tf2_model.check_sparse\n"
        "def closing_check(*args):\n    p.close()\n    return checked(*args)\n"
        "tf2_model.check_sparse = closing_check\n"
        "try:\n    p.rank(['hi'])\n    cut_short = 'answered'\n"
        "except Exception as exc:\n    cut_short = f'{type(exc).__name__}: {exc}'\n"
        "tf2_model.check_sparse = checked\n"
        "print(json.dumps({'parse': answers, 'threads': {'calls': len(same), 'same': sum(same)}, 'closed': closed,\n"
        "                  'cut_short': cut_short, 'forked': forked}))\n"
    )
    return json_out(result)


def test_web_app_serves_the_tf2_model_like_the_compat_one(tf2_process_answers, default_predictor, golden):
    texts = [case["text"] for case in golden["cases"][:8]]
    answers = tf2_process_answers["parse"]
    assert len(answers) == len(texts)
    for text, answer in zip(texts, answers):
        expected = dict(default_predictor.rank_one(text))
        assert answer["intent"]["name"] == default_predictor.rank_one(text)[0][0]
        got = {item["name"]: item["confidence"] for item in answer["intent_ranking"]}
        assert max(abs(got[name] - expected[name]) for name in got) <= TOLERANCE


def test_a_closed_tf2_model_says_it_is_closed(tf2_process_answers):
    predictor, model = tf2_process_answers["closed"]
    assert predictor.startswith("ModelClosed: Predictor ") and predictor.endswith(
        ": it is closed (close() was called); load it again to use it"
    ), predictor  # as a closed compat predictor refuses it
    assert model == "RuntimeError: Attempted to use a closed TF2 model."  # not a TypeError


def test_a_tf2_model_closed_while_its_call_runs_raises_model_closed(tf2_process_answers):
    """A close() in another thread between the TF2 model's check and its run: the run met the
    function close() had taken away (a TypeError), where a compat session's run refuses it."""
    cut_short = tf2_process_answers["cut_short"]
    assert cut_short.startswith("ModelClosed: Predictor ") and cut_short.endswith(
        ": it is closed (close() was called); load it again to use it"
    ), cut_short


def test_a_tf2_model_refuses_a_forked_child_instead_of_hanging(tf2_process_answers):
    """Eager TensorFlow's thread pools do not survive fork() either: a call, or a load, in a child
    forked after the parent loaded a model would wait forever."""
    for answer in tf2_process_answers["forked"]:
        assert answer.startswith("ForkedProcessError: this process ("), answer


def test_tf2_model_from_16_threads_matches_sequential(tf2_process_answers):
    """No graph to bind per thread in TF2: the restored function is called from any thread."""
    assert tf2_process_answers["threads"] == {"calls": 128, "same": 128}


def test_already_migrated_model_is_refused(migrated_default, tmp_path):
    out, _ = migrated_default
    result = run_cli("migrate", str(out), "--out", str(tmp_path / "again"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"error: {out}: already a 'tf2' model; only compat models are migrated" in result.stderr
    assert not (tmp_path / "again").exists()


@pytest.mark.parametrize("model", ["default", "responder"])
def test_migrate_refuses_a_destination_inside_its_source(model, tmp_path):
    source = tmp_path / model
    shutil.copytree(DEFAULT_MODEL.parent / model, source)
    result = run_cli("migrate", str(source), "--out", str(source / "tf2"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "needs a directory of its own, outside" in result.stderr
    assert sorted(p.name for p in source.iterdir()) == sorted(p.name for p in (DEFAULT_MODEL.parent / model).iterdir())


@pytest.mark.pinned_only
def test_a_source_replaced_while_it_is_migrated_is_not_copied_half_old_half_new(tmp_path):
    """`migrate DIR` while `train --out DIR --force` replaces DIR: the copy took the manifest (and
    migrated_from) of the model it verified first and the weights of the one read after it, and
    was written as a sound model."""
    source, newer, out = tmp_path / "model", tmp_path / "newer", tmp_path / "tf2"
    shutil.copytree(DEFAULT_MODEL, source)
    shutil.copytree(DEFAULT_MODEL, newer)
    manifest = json.loads((newer / MANIFEST).read_text())
    manifest["name"] = "trained meanwhile"
    manifest["manifest_sha256"] = manifest_digest(manifest)
    (newer / MANIFEST).write_text(json.dumps(manifest))
    code = f"""
import os, sys
import legacy_assistant.classifier.migration as migration
probes = migration.probe_sentences
def probes_while_the_source_is_replaced(*args, **kwargs):
    os.rename({str(source)!r}, {str(tmp_path / "retired")!r})
    os.rename({str(newer)!r}, {str(source)!r})
    return probes(*args, **kwargs)
migration.probe_sentences = probes_while_the_source_is_replaced
from legacy_assistant.cli import main
sys.exit(main(["migrate", {str(source)!r}, "--out", {str(out)!r}, "--probes", "10"]))
"""
    result = run_snippet(code)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert (f"error: {source} was replaced by another model while it was migrated: nothing was written; "
            "run migrate again for the model now there") in result.stderr, result.stderr[-2000:]
    assert not out.exists()


@pytest.mark.pinned_only
def test_a_stale_golden_file_is_named_as_the_sources_not_the_copys(tmp_path):
    """The migrated model was blamed ("does not reproduce the source's golden.json") for a golden
    file the source's own weights do not reproduce either."""
    source = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL, source)
    golden = json.loads((source / GOLDEN_FILE).read_text())
    case = golden["cases"][0]
    other = next(tag for tag in case["probabilities"] if tag != case["intent"])
    case["probabilities"][other] += 0.01
    (source / GOLDEN_FILE).write_text(json.dumps(golden))
    result = run_cli("migrate", str(source), "--out", str(tmp_path / "tf2"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "the source's golden.json does not match the source's own weights (a numpy forward pass of them differs from it by up to 0.01)" in result.stderr, result.stderr
    assert not (tmp_path / "tf2").exists()


@pytest.mark.pinned_only
def test_a_golden_file_naming_other_intents_is_named_by_its_path(tmp_path):
    source = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL, source)
    golden = json.loads((source / GOLDEN_FILE).read_text())
    golden["cases"][1]["probabilities"]["no_such_intent"] = 0.0
    (source / GOLDEN_FILE).write_text(json.dumps(golden))
    result = run_cli("migrate", str(source), "--out", str(tmp_path / "tf2"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{source / GOLDEN_FILE}: case 2 (" in result.stderr, result.stderr
    assert "not the model's: 'no_such_intent'" in result.stderr
    assert not (tmp_path / "tf2").exists()


def test_migrate_refuses_to_check_against_nothing(tmp_path):
    """No golden file and --probes 0: the check compared no sentence, and passed ("top-1
    agreement 100%" over 0 sentences)."""
    source = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL, source)
    (source / GOLDEN_FILE).unlink()  # a companion, not a listed file: the model stays sound
    result = run_cli("migrate", str(source), "--out", str(tmp_path / "tf2"), "--probes", "0")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "nothing to check the migrated model on: the source has no golden.json" in result.stderr
    assert not (tmp_path / "tf2").exists()


@pytest.mark.pinned_only
def test_chat_with_a_tf2_model_and_a_compat_responder_says_what_to_do(migrated_default):
    """No --runtime loads both: the advice names the responder and a migration, not a runtime
    that would then refuse the intent model."""
    out, _ = migrated_default
    for runtime in ("tf2", "compat"):
        result = run_cli("chat", "--model", str(out), "--responder", "--runtime", runtime)
        assert result.returncode == 1
        assert "an intent model for the 'tf2' runtime" in result.stderr
        assert "a responder for the 'compat' runtime" in result.stderr
        assert f"migrate the responder too (legacy-assistant migrate {DEFAULT_MODEL.parent / 'responder'}" in result.stderr


def test_chat_with_a_compat_model_and_a_tf2_responder_says_what_can_be_done(monkeypatch):
    """It advised "a responder migrated for 'compat'", which migrate cannot make."""
    import argparse

    from legacy_assistant.cli import chat, model_kind

    monkeypatch.setattr(model_kind, "written_for", lambda path, role="model": "tf2" if path == "r-tf2" else "compat")
    from legacy_assistant.errors import AssistantError

    with pytest.raises(AssistantError) as caught:
        chat._run_behind_model(argparse.Namespace(model="m", responder="r-tf2"))
    message = str(caught.value)
    assert "give a 'compat' responder with --responder DIR (the one the copy was migrated from)" in message
    assert "or migrate the intent model too (legacy-assistant migrate m --out DIR)" in message
    assert "migrated for 'compat'" not in message


def test_a_tf2_copy_whose_manifest_names_the_compat_runtime_is_named_with_a_hint(migrated_default, tmp_path):
    import shutil

    from legacy_assistant.artifacts.directory import manifest_digest

    copy = tmp_path / "said-compat"
    shutil.copytree(migrated_default[0], copy)
    manifest_path = copy / "assistant.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["runtime"] = "compat"  # edited by hand, the digest made again
    manifest["manifest_sha256"] = manifest_digest(manifest)
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"said-compat/saved_model: holds no compat classifier's kernel .*'tf2'"):
        Predictor.load(copy)



def _marked_tf2(source, out, manifest_name):
    """A copy of a shipped model whose manifest names the tf2 runtime: what loading reads of it
    before TensorFlow (its checksums hold; the runtime is refused before the SavedModel is read)."""
    shutil.copytree(source, out)
    manifest = json.loads((out / manifest_name).read_text())
    manifest["runtime"] = "tf2"
    manifest["manifest_sha256"] = manifest_digest(manifest)
    (out / manifest_name).write_text(json.dumps(manifest))
    return out


def test_playground_with_models_of_two_runtimes_says_what_to_do(tmp_path, capsys):
    """The loader's advice was the --runtime of the model it refused, which would then refuse the
    other one; refused before gradio or TensorFlow loads, naming a migration or --no-responder."""
    from legacy_assistant.cli import main

    shipped_responder = DEFAULT_MODEL.parent / "responder"
    tf2_model = _marked_tf2(DEFAULT_MODEL, tmp_path / "model-tf2", MANIFEST)
    tf2_responder = _marked_tf2(shipped_responder, tmp_path / "responder-tf2", "responder.json")
    for argv, advice in (
        (["--model", str(tf2_model)], f"migrate the responder too (legacy-assistant migrate {shipped_responder}"),
        (["--responder", str(tf2_responder)],
         f"or migrate the intent model too (legacy-assistant migrate {DEFAULT_MODEL}"),
    ):
        assert main(["playground", "--port", "53105", *argv]) == 1
        err = capsys.readouterr().err
        assert "one playground runs one runtime" in err, err
        assert advice in err and "--no-responder" in err
        assert "--runtime" not in err
