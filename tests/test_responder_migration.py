"""``migrate`` on a responder: a TF2-native copy whose greedy, beam and seeded-sample replies are
the compat model's, token for token, and whose log-probabilities differ by at most 1e-5; a
tampered migration is refused; the copy serves through :class:`Responder` on the TF2 runtime.

The test process runs the compat runtime, so everything on the TF2 side runs in a subprocess.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from legacy_assistant.errors import ArtifactError
from legacy_assistant.responder.artifact import export_responder_artifact, verify_responder
from legacy_assistant.responder.config import ResponderTrainingConfig
from legacy_assistant.responder.corpora import Dialogue, Turn
from legacy_assistant.responder.responder import Responder
from legacy_assistant.responder.training import train_responder
from tests.helpers import ROOT
from tests.subprocesses import FORK_PROBE, json_out, run_cli, run_snippet

TOLERANCE = 1e-5
SHIPPED_RESPONDER = ROOT / "exported" / "responder"
CONTEXTS = 200

REPLIES = {
    "neutral": "it is ok .",
    "joy": "i am so happy !",
    "sadness": "that makes me sad .",
    "anger": "this is outrageous !",
}
PROMPTS = [
    "how do you feel about the news ?",
    "what do you think of this ?",
    "tell me how you feel .",
    "the weather changed today .",
]
# context_units == decoder_units: the decoder starts from the context vector itself.
TINY = ResponderTrainingConfig(
    embedding_size=16, encoder_units=16, context_units=32, decoder_units=32, condition_size=8, batch_size=8,
    epochs=40, learning_rate=0.01, held_out_fraction=0.0, min_count=1, patience=0, checkpoint_every=1000,
    max_reply_tokens=12,
)
# context_units != decoder_units: the decoder_init layer, barely trained (near-uniform, near-tie
# distributions are the hard case for identical argmax and beam choices).
TINY_WITH_INIT = ResponderTrainingConfig(**{**TINY.to_dict(), "context_units": 24, "decoder_units": 20, "epochs": 1})


def _dialogues() -> list[Dialogue]:
    return [
        Dialogue((Turn(prompt), Turn(reply, condition)), f"t#{i}-{condition}")
        for i, prompt in enumerate(PROMPTS)
        for condition, reply in REPLIES.items()
    ]


@pytest.fixture(scope="module")
def trained():
    return train_responder(_dialogues(), TINY)


@pytest.fixture(scope="module")
def source(trained, tmp_path_factory) -> Path:
    return export_responder_artifact(trained, tmp_path_factory.mktemp("models") / "moods", plot=False)


@pytest.fixture(scope="module")
def migrated(source, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("tf2") / "moods-tf2"
    report = json_out(run_cli("migrate", str(source), "--out", str(out), "--json", timeout=600))
    return out, report


@pytest.fixture(scope="module")
def compat_responder(source):
    with Responder.load(source) as responder:
        yield responder


def test_migrate_reports_identical_decodes_on_200_contexts(migrated, source):
    out, report = migrated
    assert report["kind"] == "responder" and report["contexts"]["count"] == CONTEXTS
    decodes = report["parity"]["decodes"]
    assert set(decodes) == {"greedy", "greedy_penalized", "beam", "sample", "greedy_guided", "beam_guided"}
    for name, result in decodes.items():
        assert result["contexts"] == CONTEXTS and result["contexts_differing"] == 0, name
        assert result["max_abs_log_prob_delta"] <= TOLERANCE, name
    scores = report["parity"]["score"]
    assert scores["given"]["replies"] == scores["greedy"]["replies"] == CONTEXTS
    assert scores["beam"]["replies"] == 5 * CONTEXTS
    assert max(result["max_abs_delta"] for result in scores.values()) <= TOLERANCE
    assert report["parity"]["agree"] is True


def test_migrated_directory_keeps_the_contract(migrated, source):
    out, _ = migrated
    before, after = verify_responder(source), verify_responder(out)
    assert after.manifest["runtime"] == "tf2" and "runtime" not in before.manifest
    for key in ("format", "vocabulary", "conditions", "spec", "training"):
        assert after.manifest[key] == before.manifest[key], key
    assert after.manifest["migrated_from"]["manifest_sha256"] == before.manifest["manifest_sha256"]
    assert "saved_model/saved_model.pb" in after.manifest["files"]
    assert (out / "history.json").read_bytes() == (source / "history.json").read_bytes()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging debris


def test_compat_process_refuses_the_tf2_responder_clearly(migrated):
    with pytest.raises(ArtifactError, match="'tf2' runtime cannot be loaded with runtime 'compat'.*--runtime tf2"):
        Responder.load(migrated[0])


def test_a_process_running_compat_advises_a_process_of_its_own_for_a_tf2_responder(migrated, default_responder):
    # default_responder: this process runs the compat runtime, where runtime='tf2' is refused
    advice = "this process already runs runtime 'compat'.*process of its own with runtime='tf2'"
    with pytest.raises(ArtifactError, match=advice):
        Responder.load(migrated[0])


def test_info_reads_the_tf2_copy_and_evaluate_responder_says_why_it_will_not(migrated, tmp_path):
    out, _ = migrated
    info = run_cli("info", str(out))
    assert info.returncode == 0 and "SavedModel loads" in info.stdout, info.stderr[-2000:]
    assert "\nruntime    tf2\n" in info.stdout  # what loads it, as for an intent model
    evaluated = run_cli("evaluate-responder", str(out), str(tmp_path / "corpus.txt"))
    assert evaluated.returncode == 1
    assert "for the 'tf2' runtime" in evaluated.stderr and "evaluate the original" in evaluated.stderr
    assert "Traceback" not in evaluated.stderr


# What the TF2 copy answers through the public API, asked in one process of its own (on the TF2
# runtime): plain replies and scores, and replies under condition guidance.
ANSWER_JOBS = [
    (context, condition)
    for context in [[prompt] for prompt in PROMPTS] + [["hello there", "what do you think of this ?"], ["zebra ?"]]
    for condition in REPLIES
]
GUIDED_JOBS = [(context, condition) for context, condition in ANSWER_JOBS if context != ["zebra ?"]]
GUIDED_STRENGTH = 2.0


def _random_contexts(source: Path) -> tuple[np.ndarray, np.ndarray]:
    """Random token contexts ``[24, 2, 5]`` and conditions: where this small model is unsure,
    guidance changes replies."""
    rng = np.random.default_rng(0)
    with Responder.load(source) as plain:
        vocab, n_conditions = plain.spec.vocab_size, plain.spec.n_conditions
    ids = rng.integers(4, vocab, size=(24, 2, 5)).astype(np.int32)
    return ids, rng.integers(0, n_conditions, size=24).astype(np.int32)


@pytest.fixture(scope="module")
def tf2_answers(migrated, source) -> dict:
    ids, conditions = _random_contexts(source)
    result = run_snippet(
        FORK_PROBE + "import json, sys\n"
        "import numpy as np\n"
        "from compat.selection import select\n"
        "select('tf2')\n"
        "from legacy_assistant.errors import ArtifactError\n"
        "from legacy_assistant.responder.responder import DecodingOptions, Responder\n"
        "def replies(r, jobs):\n"
        "    out = {mode: r.respond_batch([c for c, _ in jobs], [k for _, k in jobs], mode=mode) for mode in ('greedy', 'beam')}\n"
        "    out['sample'] = [r.respond(c, k, mode='sample_rerank', seed=3) for c, k in jobs]\n"
        "    return out\n"
        f"jobs = {ANSWER_JOBS!r}\n"
        f"r = Responder.load({str(migrated[0])!r})\n"
        "plain = replies(r, jobs)\n"
        "plain['score'] = [r.score(c, reply, k) for c, k in jobs for reply in ('i am so happy !', 'it is ok .')]\n"
        "plain['modules'] = [m in sys.modules for m in ('compat.tf2.responder', 'compat.runtime')]\n"
        "try:\n"
        f"    Responder.load({str(source)!r})\n"
        "except ArtifactError as exc:\n"
        "    plain['refused'] = str(exc)\n"
        f"r = Responder.load({str(migrated[0])!r}, options=DecodingOptions(condition_strength={GUIDED_STRENGTH!r}))\n"
        f"guided = replies(r, {GUIDED_JOBS!r})\n"
        "guided['guided'] = r.model.guided\n"
        f"ids = np.array({ids.tolist()!r}, np.int32)\n"
        f"conditions = np.array({conditions.tolist()!r}, np.int32)\n"
        "for s in (0.0, 3.0):\n"
        "    guided[f'ids {s}'] = r.model.decode(ids, conditions, mode='greedy', max_length=8,\n"
        "                                        condition_strength=s).ids.tolist()\n"
        "forked = [in_child(lambda: r.respond(['hi'])), in_child(lambda: r.score(['hi'], 'yo'))]\n"
        "model = r.model\n"  # close() lets go of it: its own refusal is asked of it directly
        "r.close()\n"
        "closed = []\n"
        "for call in (lambda: r.respond(['hi']), lambda: r.respond(['hi'], mode='beam'), lambda: r.score(['hi'], 'yo'),\n"
        "             lambda: model.decode(ids, conditions, mode='greedy', max_length=8)):\n"
        "    try:\n"
        "        call()\n"
        "        closed.append('answered')\n"
        "    except Exception as exc:\n"
        "        closed.append(f'{type(exc).__name__}: {exc}')\n"
        # a close() from another thread that lands between the model's own check and its run
        "import compat.tf2.responder as tf2_responder\n"
        "cut_short = []\n"
        "for name, call in (('decode_call', lambda r: r.respond(['hi'])), ('check_context', lambda r: r.score(['hi'], 'yo'))):\n"
        f"    r = Responder.load({str(migrated[0])!r})\n"
        "    checked = getattr(tf2_responder, name)\n"
        "    def closing_check(*args, _checked=checked, _r=r, **kwargs):\n"
        "        _r.close()\n"
        "        return _checked(*args, **kwargs)\n"
        "    setattr(tf2_responder, name, closing_check)\n"
        "    try:\n"
        "        call(r)\n"
        "        cut_short.append('answered')\n"
        "    except Exception as exc:\n"
        "        cut_short.append(f'{type(exc).__name__}: {exc}')\n"
        "    setattr(tf2_responder, name, checked)\n"
        "print(json.dumps({'plain': plain, 'guided': guided, 'closed': closed, 'cut_short': cut_short,\n"
        "                  'forked': forked}))\n",
        timeout=300,
    )
    return json_out(result)


def test_a_tf2_responder_refuses_a_forked_child_instead_of_hanging(tf2_answers):
    for answer in tf2_answers["forked"]:
        assert answer.startswith("ForkedProcessError: this process ("), answer


def test_a_closed_tf2_responder_says_it_is_closed(tf2_answers):
    """As a closed compat session does: not a bare KeyError, nor a message sending the user to
    migrate a model that is fine."""
    *refused, model = tf2_answers["closed"]
    assert len(refused) == 3 and all(
        answer.startswith("ModelClosed: Responder ")
        and answer.endswith(": it is closed (close() was called); load it again to use it")
        for answer in refused
    ), refused  # as a closed compat responder refuses them
    assert model == "RuntimeError: Attempted to use a closed TF2 responder."


def test_a_tf2_responder_closed_while_its_call_runs_raises_model_closed(tf2_answers):
    """A close() in another thread between the TF2 model's check and its run: a decode was refused
    as a responder without guidance (a ValueError sending the user to migrate again), a score
    with a bare KeyError, where a compat session's run refuses both."""
    cut_short = tf2_answers["cut_short"]
    assert len(cut_short) == 2 and all(
        answer.startswith("ModelClosed: Responder ")
        and answer.endswith(": it is closed (close() was called); load it again to use it")
        for answer in cut_short
    ), cut_short


def test_tf2_copy_answers_through_responder_as_the_compat_model_does(tf2_answers, compat_responder):
    """Replies (text) and scores through the public API, TF2 in its own process, compat here."""
    jobs = ANSWER_JOBS
    got = tf2_answers["plain"]
    assert got["modules"] == [True, False]  # served by the TF2 module; the TF1 runtime never loaded
    expected = {
        mode: compat_responder.respond_batch([c for c, _ in jobs], [k for _, k in jobs], mode=mode)
        for mode in ("greedy", "beam")
    }
    assert got["greedy"] == expected["greedy"] and got["beam"] == expected["beam"]
    assert got["greedy"][: len(REPLIES)] == [reply.capitalize().replace(" .", ".").replace(" !", "!")
                                             for reply in REPLIES.values()]  # a trained model, not noise
    assert got["sample"] == [compat_responder.respond(c, k, mode="sample_rerank", seed=3) for c, k in jobs]
    scores = [compat_responder.score(c, reply, k) for c, k in jobs for reply in ("i am so happy !", "it is ok .")]
    assert np.max(np.abs(np.array(got["score"]) - np.array(scores))) <= TOLERANCE
    assert "'compat' runtime cannot be loaded with runtime 'tf2'" in got["refused"]


@pytest.mark.pinned_only
def test_tampered_migration_is_refused_and_leaves_nothing(source, tmp_path):
    """A weight changed on its way to the TF2 module (one entry of the decoder's recurrent
    kernel, off by 0.01) is caught by the parity check; an unknown layout is refused before
    anything is written."""
    result = run_snippet(
        "import json\n"
        "import compat.tf2.checkpoint as checkpoint\n"
        "from legacy_assistant.errors import ArtifactError\n"
        "from legacy_assistant.responder.migration import migrate_responder\n"
        "read = checkpoint.read_v1_weights\n"
        "tamperings = {\n"
        "    'one_recurrent_entry': lambda w: w['responder/decoder/recurrent_kernel'].__setitem__((0, 0), w['responder/decoder/recurrent_kernel'][0, 0] + 0.01),\n"
        "    'extra_variable': lambda w: w.__setitem__('responder/norm/gamma', w['responder/output/bias']),\n"
        "}\n"
        "out = {}\n"
        "for name, tamper in tamperings.items():\n"
        "    def tampered(directory, tamper=tamper):\n"
        "        weights = read(directory)\n"
        "        tamper(weights)\n"
        "        return weights\n"
        "    checkpoint.read_v1_weights = tampered\n"
        "    try:\n"
        f"        migrate_responder({str(source)!r}, {str(tmp_path / 'never')!r}, contexts=50)\n"
        "        out[name] = 'written'\n"
        "    except ArtifactError as exc:\n"
        "        out[name] = str(exc)\n"
        "print(json.dumps(out))\n",
        timeout=600,
    )
    refused = json_out(result)
    assert refused["one_recurrent_entry"].startswith("the migrated responder disagrees with its compat source"), refused
    report = json.loads(refused["one_recurrent_entry"].split(": ", 1)[1])
    assert report["agree"] is False
    assert "unexpected responder/norm/gamma" in refused["extra_variable"]
    assert list(tmp_path.iterdir()) == []  # neither the model nor a staging folder


@pytest.mark.pinned_only
def test_a_source_replaced_while_it_is_migrated_is_not_copied(source, tmp_path):
    """`migrate DIR` while `train-responder --out DIR --force` replaces DIR: the copy paired the
    manifest it verified first with what it read of the new model after it (the compat answers,
    the history, the golden file), and was written as a sound model."""
    import shutil

    from legacy_assistant.artifacts.directory import DIGEST_FIELD, manifest_digest

    folder, newer, out = tmp_path / "moods", tmp_path / "newer", tmp_path / "tf2"
    shutil.copytree(source, folder)
    shutil.copytree(source, newer)
    manifest = json.loads((newer / "responder.json").read_text(encoding="utf-8"))
    manifest["name"] = "trained meanwhile"
    manifest[DIGEST_FIELD] = manifest_digest(manifest)
    (newer / "responder.json").write_text(json.dumps(manifest), encoding="utf-8")
    result = run_snippet(
        "import os\n"
        "import legacy_assistant.responder.migration as migration\n"
        "from legacy_assistant.errors import ArtifactError\n"
        "contexts = migration.generated_contexts\n"
        "def contexts_while_the_source_is_replaced(*args, **kwargs):\n"
        f"    os.rename({str(folder)!r}, {str(tmp_path / 'retired')!r})\n"
        f"    os.rename({str(newer)!r}, {str(folder)!r})\n"
        "    return contexts(*args, **kwargs)\n"
        "migration.generated_contexts = contexts_while_the_source_is_replaced\n"
        "try:\n"
        f"    migration.migrate_responder({str(folder)!r}, {str(out)!r}, contexts=4)\n"
        "    print('written')\n"
        "except ArtifactError as exc:\n"
        "    print(exc)\n",
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == (f"{folder} was replaced by another model while it was migrated: nothing was "
                                     "written; run migrate again for the model now there"), result.stdout
    assert not out.exists()


def test_already_migrated_responder_is_refused(migrated, tmp_path):
    result = run_cli("migrate", str(migrated[0]), "--out", str(tmp_path / "again"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "already a 'tf2' responder" in result.stderr
    assert not (tmp_path / "again").exists()


def test_decoder_init_layer_migrates_with_corpus_contexts(tmp_path):
    """The other network shape (context and decoder widths differ), nearly untrained, checked on
    contexts taken from a corpus file."""
    model = export_responder_artifact(train_responder(_dialogues(), TINY_WITH_INIT), tmp_path / "init", plot=False)
    assert "responder/decoder_init/kernel" in _saved_variables(model)
    corpus = tmp_path / "held_out.jsonl"
    lines = [json.dumps([{"text": f"{prompt} {extra}", "condition": "neutral"}, {"text": reply, "condition": condition}])
             for prompt in PROMPTS for extra in ("really", "today", "now") for condition, reply in REPLIES.items()]
    lines.append(json.dumps([{"text": "hi", "condition": "neutral"}, {"text": "boo", "condition": "surprise"}]))
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = json_out(run_cli("migrate", str(model), "--out", str(tmp_path / "init-tf2"), "--corpus", str(corpus),
                              "--contexts", "40", "--json", timeout=600))
    assert report["contexts"] == {"count": 40, "from": "corpus held_out.jsonl, seed 0"}
    assert all(r["contexts_differing"] == 0 for r in report["parity"]["decodes"].values())
    assert max(r["max_abs_delta"] for r in report["parity"]["score"].values()) <= TOLERANCE
    assert verify_responder(tmp_path / "init-tf2").manifest["runtime"] == "tf2"


def _saved_variables(model: Path) -> set[str]:
    from compat.runtime import tf

    return {name for name, _ in tf.train.list_variables(str(model / "saved_model" / "variables" / "variables"))}


def test_tf2_layout_is_the_compat_network_s():
    from compat.responder.network import variable_shapes
    from compat.responder.spec import ResponderSpec

    specs = [ResponderSpec(vocab_size=30, n_conditions=3, context_units=c, decoder_units=h) for c, h in ((8, 8), (8, 6))]
    result = run_snippet(
        "import json\n"
        "from compat.responder.spec import ResponderSpec\n"
        "from compat.tf2.responder import variable_shapes\n"
        f"specs = {[s.to_dict() for s in specs]!r}\n"
        "print(json.dumps([{k: list(v) for k, v in variable_shapes(ResponderSpec.from_dict(s)).items()} for s in specs]))\n"
    )
    assert json_out(result) == [{k: list(v) for k, v in variable_shapes(s).items()} for s in specs]


def test_migration_modules_import_no_tensorflow():
    result = run_snippet(
        "import sys\n"
        "import legacy_assistant.responder.migration, legacy_assistant.cli.migrate, compat.selection\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'tensorflow' or m in ('compat.runtime', 'compat.tf2.runtime')))\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_tf2_copy_decodes_with_condition_guidance_as_the_compat_model_does(tf2_answers, source):
    """Guided greedy, beam and sample-reranked replies: TF2 in its own process, compat here."""
    from legacy_assistant.responder.responder import DecodingOptions

    jobs = GUIDED_JOBS
    ids, conditions = _random_contexts(source)
    got = tf2_answers["guided"]
    assert got["guided"] is True
    with Responder.load(source, options=DecodingOptions(condition_strength=GUIDED_STRENGTH)) as guided:
        for mode in ("greedy", "beam"):
            expected = guided.respond_batch([c for c, _ in jobs], [k for _, k in jobs], mode=mode)
            assert got[mode] == expected
        assert got["sample"] == [guided.respond(c, k, mode="sample_rerank", seed=3) for c, k in jobs]
        for strength in (0.0, 3.0):
            compat_ids = guided.model.decode(ids, conditions, mode="greedy", max_length=8, condition_strength=strength)
            assert got[f"ids {strength}"] == compat_ids.ids.tolist()
    assert got["ids 3.0"] != got["ids 0.0"]  # the guidance changed some reply


class _Unguided:
    """A loaded compat model seen as one exported before condition guidance."""

    guided = False

    def __init__(self, model):
        self._model = model

    def decode(self, *args, **kwargs):
        assert "condition_strength" not in kwargs, "a guided decode asked of an unguided model"
        return self._model.decode(*args, **kwargs)

    def score(self, *args, **kwargs):
        return self._model.score(*args, **kwargs)


def test_a_nan_score_in_any_batch_is_a_disagreement():
    from legacy_assistant.responder.migration import compare_answers

    def batch(score):
        decoded = {"ids": [[[4, 2]]], "lengths": [[2]], "log_probs": [[-1.0]]}
        return {"decodes": {"greedy": decoded}, "score": {"given": [[score]], "greedy": [[-1.0]], "beam": [[-1.0]]}}

    expected = [batch(-1.0), batch(-1.0)]
    for got in ([batch(float("nan")), batch(-1.0)], [batch(-1.0), batch(float("nan"))]):
        assert compare_answers(expected, got, TOLERANCE)["agree"] is False
    assert compare_answers(expected, [batch(-1.0), batch(-1.0)], TOLERANCE)["agree"] is True


def test_guided_decodes_are_compared_only_where_the_source_has_them(compat_responder):
    from legacy_assistant.responder.batching import pad_batch
    from legacy_assistant.responder.migration import answers, compare_answers, decode_checks, generated_contexts

    info = compat_responder.info
    batch = pad_batch(generated_contexts(info, 6, 0), info.spec.max_context_turns)
    checks = decode_checks(info)
    guided = answers(compat_responder.model, batch, checks)
    unguided = answers(_Unguided(compat_responder.model), batch, checks)
    assert {"greedy_guided", "beam_guided"} <= set(guided["decodes"])
    assert set(unguided["decodes"]) == set(guided["decodes"]) - {"greedy_guided", "beam_guided"}
    assert unguided["decodes"]["beam"] == guided["decodes"]["beam"]
    assert compare_answers([guided], [guided], TOLERANCE)["agree"] is True
    # a migrated model that cannot answer what its source answered disagrees
    report = compare_answers([guided], [unguided], TOLERANCE)
    assert report["agree"] is False and report["decodes"]["beam_guided"]["missing"] is True


def test_the_compat_side_s_failure_is_one_line_and_its_files_go(tmp_path):
    from legacy_assistant.responder.migration import _CompatAnswers

    missing = tmp_path / "no-such-model"
    with _CompatAnswers(missing, {}, []) as compat:
        folder = Path(compat._folder.name)
        with pytest.raises(ArtifactError, match=r"could not answer the parity contexts \(exit status 1\): error: "):
            compat.result()
    assert not folder.exists()


def test_leaving_early_stops_the_compat_child_and_removes_its_files(source):
    """An export that fails while the compat model is still answering leaves no process behind."""
    from legacy_assistant.responder.batching import pad_batch
    from legacy_assistant.responder.migration import _CompatAnswers, decode_checks, generated_contexts

    info = verify_responder(source)
    batches = [pad_batch(generated_contexts(info, 50, 0), info.spec.max_context_turns)]
    with pytest.raises(RuntimeError, match="export failed"):
        with _CompatAnswers(source, decode_checks(info), batches) as compat:
            process, folder = compat._process, Path(compat._folder.name)
            raise RuntimeError("export failed")
    assert process.returncode is not None and process.returncode < 0  # killed, not finished
    assert not folder.exists()


@pytest.mark.pinned_only
def test_a_corpus_that_cannot_be_used_is_one_error_line(tmp_path):
    """As train-responder and evaluate-responder say it: the file and its problem, one line."""
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    for corpus, problem in ((tmp_path / "nosuch.jsonl", "file not found"), (empty, "no dialogues")):
        result = run_cli("migrate", str(SHIPPED_RESPONDER), "--out", str(tmp_path / "out"), "--corpus", str(corpus))
        assert result.returncode == 1, result.stderr[-2000:]
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and errors[0].startswith(f"error: {corpus}: {problem}"), result.stderr[-2000:]
        assert "problem(s) in data file" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_corpus_with_fewer_pairs_than_asked_says_so(tmp_path, caplog):
    from legacy_assistant.responder.migration import corpus_contexts

    corpus = tmp_path / "small.jsonl"
    corpus.write_text(json.dumps([{"text": "hello there", "condition": "neutral"},
                                  {"text": "hi, how are you?", "condition": "joy"}]) + "\n", encoding="utf-8")
    info = verify_responder(SHIPPED_RESPONDER)
    with caplog.at_level("WARNING", logger="legacy_assistant.responder.migration"):
        pairs = corpus_contexts(info, corpus, 500, seed=0)
    assert len(pairs) == 1
    assert "holds 1 dialogue pair(s), fewer than the 500 contexts asked for" in caplog.text


@pytest.mark.pinned_only
def test_the_compat_child_ends_when_migrate_is_killed(source):
    """`kill -9` of migrate left its compat child decoding for minutes under PID 1."""
    import os
    import signal
    import subprocess
    import sys
    import time

    snippet = f"""
import sys, time
from legacy_assistant.responder.artifact import verify_responder
from legacy_assistant.responder.batching import pad_batch
from legacy_assistant.responder.migration import _CompatAnswers, decode_checks, generated_contexts
info = verify_responder({str(source)!r})
batches = [pad_batch(generated_contexts(info, 200, seed), info.spec.max_context_turns) for seed in range(200)]
compat = _CompatAnswers(info.path, decode_checks(info), batches)
print(compat._process.pid, flush=True)
time.sleep(600)
"""
    parent = subprocess.Popen([sys.executable, "-c", snippet], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        child = int(parent.stdout.readline())
        time.sleep(1.0)  # the child is on its way (it sets its parent-death signal first thing)
        os.kill(child, 0)  # running
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 30
        while Path(f"/proc/{child}").exists() and Path(f"/proc/{child}/stat").read_text().split()[2] != "Z":
            assert time.monotonic() < deadline, "the compat child outlived migrate"
            time.sleep(0.1)
    finally:
        parent.kill()


def test_the_report_says_when_guided_decodes_were_not_compared():
    """A source exported before guidance is checked without guided decodes, while its TF2 copy,
    built by this code, has them: the report says they are unchecked."""
    from pathlib import Path

    from legacy_assistant.responder.migration import ResponderMigrationReport

    decode = {"contexts": 3, "contexts_differing": 0, "max_abs_log_prob_delta": 0.0}
    plain = {"decodes": {"greedy": decode, "beam": decode}, "score": {}}
    report = ResponderMigrationReport(Path("r"), Path("t"), {}, {"count": 3, "from": "generated"}, plain)
    assert report.lines()[-1].startswith("  guided decodes (condition_strength above 0) not compared")
    guided = {"decodes": {**plain["decodes"], "greedy_guided": decode, "beam_guided": decode}, "score": {}}
    report = ResponderMigrationReport(Path("r"), Path("t"), {}, {"count": 3, "from": "generated"}, guided)
    assert not any("not compared" in line for line in report.lines())


def test_the_decodes_compared_stay_within_what_a_decode_takes():
    """A spec from before training was held to 1,000 reply tokens may allow more: the checks
    decode at most 1,000, as Responder does (migrate failed with a traceback of decode's
    ``max_length must be an integer in [1, 1000], got 1500``)."""
    from dataclasses import replace

    from compat.responder.inputs import MAX_DECODE_LENGTH, decode_call
    from legacy_assistant.responder.migration import decode_checks

    info = verify_responder(SHIPPED_RESPONDER)
    for allowed, expected in ((1500, MAX_DECODE_LENGTH), (info.spec.max_reply_tokens, info.spec.max_reply_tokens)):
        long = replace(info, spec=replace(info.spec, max_reply_tokens=allowed))
        for name, options in decode_checks(long).items():
            assert options["max_length"] == expected, name
            kwargs = {k: np.asarray(v, np.int32) if k.endswith("_ids") else v for k, v in options.items()}
            decode_call(np.full((1, 1, 1), 5), np.zeros(1, np.int32), info.spec.vocab_size, info.spec.n_conditions, **kwargs)


def test_a_responder_exported_before_the_gumbel_draw_migrates_with_its_own_draw(trained, source, tmp_path):
    """Its spec has no ``sample_draw``: its SavedModel draws with ``stateless_categorical``, and
    the TF2 copy must draw the same way (seeded samples compared by migrate's parity), while a
    new export's samples come from the Gumbel draw, seed for seed other replies."""
    old_spec = replace(trained.spec, sample_draw="categorical")
    old = export_responder_artifact(replace(trained, spec=old_spec), tmp_path / "old", plot=False)
    assert "sample_draw" not in json.loads((old / "responder.json").read_text())["spec"]
    assert verify_responder(source).manifest["spec"]["sample_draw"] == "gumbel"
    report = json_out(run_cli("migrate", str(old), "--out", str(tmp_path / "old-tf2"), "--json", timeout=600))
    sample = report["parity"]["decodes"]["sample"]
    assert sample["contexts"] == CONTEXTS and sample["contexts_differing"] == 0
    assert report["parity"]["agree"] is True
    assert verify_responder(tmp_path / "old-tf2").spec.sample_draw == "categorical"
    ids, conditions = _random_contexts(source)
    with Responder.load(old) as before, Responder.load(source) as after:
        assert before.spec.sample_draw == "categorical" and after.spec.sample_draw == "gumbel"
        assert before.model.decode(ids, conditions, mode="greedy", max_length=8).ids.tolist() == after.model.decode(
            ids, conditions, mode="greedy", max_length=8).ids.tolist()
        sampled = [r.model.decode(ids, conditions, mode="sample", max_length=8, n_samples=3, seed=5,
                                   temperature=1.5).ids
                   for r in (before, after)]
        assert not np.array_equal(*sampled)


def test_reexport_gives_a_responder_exported_before_the_gumbel_draw_the_new_draw(trained, source, tmp_path):
    """``reexport-responder`` writes the graph again from the same weights: the manifest's and
    the SavedModel's spec now say ``gumbel``, the variables files stay byte for byte, greedy
    replies stay, and seeded samples are the new export's."""
    from legacy_assistant.responder.artifact import reexport_responder_artifact

    old = export_responder_artifact(replace(trained, spec=replace(trained.spec, sample_draw="categorical")),
                                    tmp_path / "old", plot=False)
    variables = {p.name: p.read_bytes() for p in (old / "saved_model" / "variables").iterdir()}
    ids, conditions = _random_contexts(source)
    call = dict(max_length=8, n_samples=3, seed=5, temperature=1.5)
    with Responder.load(old) as before:
        greedy_before = before.model.decode(ids, conditions, mode="greedy", max_length=8).ids
        sampled_before = before.model.decode(ids, conditions, mode="sample", **call).ids
    reexport_responder_artifact(old)
    info = verify_responder(old)
    assert info.manifest["spec"]["sample_draw"] == "gumbel" and "reexported" in info.manifest
    assert {p.name: p.read_bytes() for p in (old / "saved_model" / "variables").iterdir()} == variables
    with Responder.load(old) as after, Responder.load(source) as new:
        assert after.model.spec.sample_draw == "gumbel"
        np.testing.assert_array_equal(after.model.decode(ids, conditions, mode="greedy", max_length=8).ids,
                                      greedy_before)
        sampled = after.model.decode(ids, conditions, mode="sample", **call).ids
        np.testing.assert_array_equal(sampled, new.model.decode(ids, conditions, mode="sample", **call).ids)
        assert not np.array_equal(sampled, sampled_before)
