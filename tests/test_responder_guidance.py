"""Condition guidance: the guided decodes choose what a numpy loop over every condition's
log-probabilities chooses, a vanishing strength changes nothing, an older SavedModel without
the guided signatures still serves unguided and says how to get them, and re-exporting it adds
them without changing a reply."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from legacy_assistant.errors import ArtifactError, RequestError
from tests.helpers import DEFAULT_MODEL, DEFAULT_RESPONDER

MAX_LENGTH = 20
CONTEXTS = [
    ["do you like football ?"],
    ["i watched a movie last night .", "which one ?"],
    ["hello !"],
    ["what music do you listen to ?"],
    ["i lost my job today ."],
    ["that is scary !", "why ?"],
]


@pytest.fixture(scope="module")
def shipped():
    """The shipped responder (no repetition penalty: the numpy loop below has none)."""
    from legacy_assistant.responder.responder import Responder

    with Responder.load(DEFAULT_RESPONDER, 1, -1) as responder:
        yield responder


def _batch(responder, condition_ids):
    from legacy_assistant.responder.batching import EncodedPair, pad_batch
    from legacy_assistant.responder.vocabulary import END

    pairs = [
        EncodedPair(responder._encode_context(context), (END,), int(condition))
        for context, condition in zip(CONTEXTS, condition_ids)
    ]
    return pad_batch(pairs, responder.spec.max_context_turns)


def _numpy_guided_greedy(responder, batch, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """Guided greedy decoding written out: every context decoded under all K conditions, one
    ``Session.run`` per token (:class:`StepwiseDecoder`), the guided scores and the choice in numpy."""
    from compat.responder.inputs import NEG
    from compat.responder.spec import ALWAYS_BANNED, END, PAD, START
    from compat.responder.stepwise import StepwiseDecoder, read_saved_model_weights

    spec = responder.spec
    k = spec.n_conditions
    n = len(batch.condition_ids)
    weights = read_saved_model_weights(str(responder.info.saved_model_dir), spec)
    ban = np.zeros(spec.vocab_size, np.float32)
    ban[list(ALWAYS_BANNED)] = NEG
    with StepwiseDecoder(spec, weights, 1, 1) as loop:
        static, state = loop.encode(
            np.repeat(batch.context_ids, k, axis=0), np.tile(np.arange(k, dtype=np.int32), n)
        )  # rows b * K + c
        ids = np.full((n, MAX_LENGTH), PAD, np.int32)
        total = np.zeros(n, np.float32)
        finished = np.zeros(n, bool)
        previous = np.full(n, START, np.int32)
        for t in range(MAX_LENGTH):
            if finished.all():
                break
            log_probs, state = loop.step(np.repeat(previous, k), state, static)
            every = log_probs.reshape(n, k, -1)
            mine = every[np.arange(n), batch.condition_ids]
            guided = mine + np.float32(strength) * (mine - every.mean(axis=1))
            token = np.argmax(guided + ban, axis=1).astype(np.int32)
            token[finished] = PAD
            total += np.where(finished, np.float32(0.0), mine[np.arange(n), token])
            ids[:, t] = token
            finished |= token == END
            previous = token
    return ids, total


@pytest.mark.parametrize("strength", [1.0, 3.0])
def test_guided_greedy_is_the_numpy_loop_over_every_condition(shipped, strength):
    conditions = np.arange(len(CONTEXTS)) % shipped.spec.n_conditions
    batch = _batch(shipped, conditions)
    result = shipped.model.decode(
        batch.context_ids, batch.condition_ids, mode="greedy", max_length=MAX_LENGTH, condition_strength=strength
    )
    ids, total = _numpy_guided_greedy(shipped, batch, strength)
    np.testing.assert_array_equal(result.ids[:, 0], ids)
    # log_probs stay the plain model's, under the requested condition
    np.testing.assert_allclose(result.log_probs[:, 0], total, atol=1e-4)
    plain = shipped.model.decode(batch.context_ids, batch.condition_ids, mode="greedy", max_length=MAX_LENGTH)
    assert not np.array_equal(plain.ids, result.ids)  # guidance changed some reply


def test_a_vanishing_strength_gives_the_unguided_replies(shipped):
    batch = _batch(shipped, np.arange(len(CONTEXTS)) % shipped.spec.n_conditions)
    for mode, extra in (("greedy", {}), ("beam", {"beam_width": 3}), ("sample", {"seed": 5, "n_samples": 3})):
        plain = shipped.model.decode(batch.context_ids, batch.condition_ids, mode=mode, max_length=MAX_LENGTH, **extra)
        faint = shipped.model.decode(
            batch.context_ids, batch.condition_ids, mode=mode, max_length=MAX_LENGTH, condition_strength=1e-9, **extra
        )
        np.testing.assert_array_equal(plain.ids, faint.ids)
        np.testing.assert_allclose(plain.log_probs, faint.log_probs, atol=1e-5)


def test_guided_beam_of_one_is_guided_greedy_and_guided_samples_repeat(shipped):
    batch = _batch(shipped, np.arange(len(CONTEXTS)) % shipped.spec.n_conditions)
    args = (batch.context_ids, batch.condition_ids)
    greedy = shipped.model.decode(*args, mode="greedy", max_length=MAX_LENGTH, condition_strength=2.0)
    beam = shipped.model.decode(*args, mode="beam", beam_width=1, max_length=MAX_LENGTH, condition_strength=2.0)
    np.testing.assert_array_equal(greedy.ids, beam.ids)
    wide = shipped.model.decode(*args, mode="beam", beam_width=4, max_length=MAX_LENGTH, condition_strength=2.0)
    assert wide.ids.shape == (len(CONTEXTS), 4, MAX_LENGTH)
    sample = dict(mode="sample", n_samples=2, seed=11, temperature=0.7, max_length=MAX_LENGTH)
    first = shipped.model.decode(*args, condition_strength=2.0, **sample)
    again = shipped.model.decode(*args, condition_strength=2.0, **sample)
    unguided = shipped.model.decode(*args, **sample)
    np.testing.assert_array_equal(first.ids, again.ids)
    assert not np.array_equal(first.ids, unguided.ids)


@pytest.mark.parametrize("strength", [-0.5, 10.5, float("nan"), True, "2"])
def test_a_bad_strength_is_refused_before_decoding(shipped, strength):
    from legacy_assistant.responder.responder import DecodingOptions

    batch = _batch(shipped, [0] * len(CONTEXTS))
    with pytest.raises(ValueError, match=r"condition_strength must be a number in \[0, 10\]"):
        shipped.model.decode(batch.context_ids, batch.condition_ids, mode="greedy", max_length=5,
                             condition_strength=strength)
    if isinstance(strength, float):
        with pytest.raises(RequestError, match="condition_strength must be (in|a finite number)"):
            DecodingOptions(condition_strength=strength)


@pytest.fixture(scope="module")
def unguided_copy(tmp_path_factory) -> Path:
    """The shipped responder as it was exported before guidance: no guided signatures."""
    import compat.responder.saved_model as saved_model
    from legacy_assistant.responder.artifact import reexport_responder_artifact

    copy = tmp_path_factory.mktemp("responders") / "old"
    shutil.copytree(DEFAULT_RESPONDER, copy)
    patch = pytest.MonkeyPatch()
    patch.setattr(saved_model, "GUIDED_SIGNATURE_INPUTS", {})
    try:
        reexport_responder_artifact(copy)
    finally:
        patch.undo()
    return copy


def test_a_responder_without_guidance_serves_unguided_and_says_how_to_get_it(unguided_copy, shipped):
    from legacy_assistant.responder.responder import DecodingOptions, Responder

    with Responder.load(unguided_copy) as old:
        assert not old.model.guided and shipped.model.guided
        assert old.respond_batch(CONTEXTS, ["joy"] * len(CONTEXTS)) == shipped.respond_batch(
            CONTEXTS, ["joy"] * len(CONTEXTS)
        )
        batch = _batch(old, [1] * len(CONTEXTS))
        with pytest.raises(ValueError, match="predates it.*legacy-assistant reexport-responder DIR"):
            old.model.decode(batch.context_ids, batch.condition_ids, mode="greedy", max_length=5, condition_strength=1)
        # a call of no contexts too (it returned no replies), as the migrated TF2 copy refuses it
        none = np.zeros((0,) + batch.context_ids.shape[1:], np.int32), np.zeros(0, np.int32)
        with pytest.raises(ValueError, match="predates it.*legacy-assistant reexport-responder DIR"):
            old.model.decode(*none, mode="greedy", max_length=5, condition_strength=1)
        assert old.model.decode(*none, mode="greedy", max_length=5).ids.shape[0] == 0  # unguided: no replies
    command = re.escape(f"'legacy-assistant reexport-responder {unguided_copy}'")  # the path, to copy and run
    with pytest.raises(ArtifactError, match=r"old: condition_strength 2 needs condition guidance.*" + command):
        Responder.load(unguided_copy, options=DecodingOptions(condition_strength=2.0))
    with Responder.load(unguided_copy) as old:  # and a call that asks for it is refused
        with pytest.raises(RequestError, match="condition_strength 2 needs condition guidance.*" + command):
            old.respond(["hello !"], "joy", condition_strength=2)
        with pytest.raises(RequestError, match="needs condition guidance"):
            old.check_request(["hello !"], "joy", condition_strength=0.5)
        assert old.respond(["hello !"], "joy", condition_strength=0) == shipped.respond(["hello !"], "joy")


def test_an_api_client_is_told_the_server_cannot_guide_not_that_its_request_is_malformed(unguided_copy, capsys):
    """The operator's remedy (a command with the model's path) is no business of a client's."""
    from legacy_assistant.cli import main
    from legacy_assistant.errors import GuidanceUnavailable
    from legacy_assistant.web import create_app

    app = create_app({"TESTING": True, "MODEL_DIR": str(DEFAULT_MODEL), "RESPONDER_DIR": str(unguided_copy),
                      "STORE_URL": "memory"})
    client = app.test_client()
    cakechat = client.post("/cakechat_api/v1/actions/get_response",
                           json={"context": ["hello"], "emotion": "joy", "condition_strength": 2})
    chat = client.post("/api/v1/chat", json={"sender": "s", "message": "hello", "condition_strength": 2})
    for response in (cakechat, chat):
        assert response.status_code == 400
        assert response.get_json()["error"] == {"code": "invalid_request", "message": GuidanceUnavailable.public_message}
    assert cakechat.get_json()["message"] == GuidanceUnavailable.public_message  # not "Malformed request: ..."
    assert client.post("/cakechat_api/v1/actions/get_response", json={"context": ["hello"]}).status_code == 200

    assert main(["info", str(unguided_copy)]) == 0
    assert f"guidance   none: it was exported before guidance existed: export its weights again with " \
           f"'legacy-assistant reexport-responder {unguided_copy}'" in capsys.readouterr().out
    assert main(["info", str(DEFAULT_RESPONDER), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["condition_guidance"] is True


def test_reexport_adds_guidance_and_keeps_replies_and_files(unguided_copy, tmp_path, shipped, capsys):
    from legacy_assistant.cli import main
    from legacy_assistant.responder.artifact import verify_responder
    from legacy_assistant.responder.responder import DecodingOptions, Responder

    copy = tmp_path / "old"
    shutil.copytree(unguided_copy, copy)
    golden = (copy / "golden.json").read_bytes()
    # a file of one's own beside the model (a golden check's report) is kept, as golden.json is;
    # it was refused, with advice naming a --force the command does not have
    (copy / "report.json").write_text('{"ok": true}\n', encoding="utf-8")
    (copy / "notes").mkdir()  # a folder of one's own too
    (copy / "notes" / "todo.txt").write_text("mine", encoding="utf-8")
    before = verify_responder(copy).manifest
    assert main(["reexport-responder", str(copy)]) == 0  # the command the load errors name
    assert capsys.readouterr().out.strip() == str(copy)
    after = verify_responder(copy).manifest  # checksums of the new files recorded
    assert (copy / "golden.json").read_bytes() == golden and "golden.json" not in after["files"]
    assert (copy / "report.json").read_text(encoding="utf-8") == '{"ok": true}\n' and "report.json" not in after["files"]
    assert (copy / "notes" / "todo.txt").read_text(encoding="utf-8") == "mine"
    assert not [name for name in after["files"] if name.startswith("notes")]
    assert after["vocabulary"] == before["vocabulary"] and after["summary"] == before["summary"]
    assert set(after["reexported"]) == {"at", "versions"}
    assert not list(copy.parent.glob(".old.tmp-*"))  # no staging left behind
    options = DecodingOptions(condition_strength=2.0)
    with Responder.load(copy) as plain, Responder.load(copy, options=options) as guided:
        assert plain.model.guided
        conditions = ["joy"] * len(CONTEXTS)
        assert plain.respond_batch(CONTEXTS, conditions) == shipped.respond_batch(CONTEXTS, conditions)
        steered = guided.respond_batch(CONTEXTS, conditions)
        assert steered != plain.respond_batch(CONTEXTS, conditions) and all(steered)


def test_reexport_refuses_what_it_cannot_export_again(tmp_path, capsys):
    from legacy_assistant.cli import main
    from legacy_assistant.responder.artifact import MANIFEST

    assert main(["reexport-responder", str(DEFAULT_RESPONDER.parent / "default")]) == 1
    assert "an intent model; only a responder's SavedModel is exported again" in capsys.readouterr().err
    tf2 = tmp_path / "tf2"
    shutil.copytree(DEFAULT_RESPONDER, tf2)
    manifest = json.loads((tf2 / MANIFEST).read_text())
    (tf2 / MANIFEST).write_text(json.dumps({**manifest, "runtime": "tf2"}))
    before = sorted((p.name, p.stat().st_mtime_ns) for p in tf2.rglob("*"))
    assert main(["reexport-responder", str(tf2)]) == 1
    assert "a TF2 copy: re-export the compat responder it was migrated from" in capsys.readouterr().err
    assert sorted((p.name, p.stat().st_mtime_ns) for p in tf2.rglob("*")) == before


def test_the_shipped_responder_has_guidance():
    """A responder exported without the guided signatures refuses a strength above 0 at load."""
    from legacy_assistant.responder.responder import DecodingOptions, Responder

    with Responder.load(DEFAULT_RESPONDER, options=DecodingOptions(condition_strength=2.0)) as responder:
        assert responder.respond(["do you like music ?"], "joy")


def test_the_server_decodes_with_its_condition_strength(shipped):
    from legacy_assistant.responder.responder import DecodingOptions, Responder
    from legacy_assistant.serving.assistant import SERVING_REPETITION_PENALTY
    from legacy_assistant.web import create_app

    config = {"TESTING": True, "STORE_URL": "memory", "BATCHING": False, "GENERATION_MODE": "greedy"}
    apps = {strength: create_app({**config, "CONDITION_STRENGTH": strength}) for strength in (0.0, 2.5)}
    try:
        replies = {}
        for strength, app in apps.items():
            assert app.extensions["legacy_assistant"].current.responder.options.condition_strength == strength
            client = app.test_client()
            replies[strength] = [
                client.post("/cakechat_api/v1/actions/get_response", json={"context": c, "emotion": "joy"}).get_json()[
                    "response"
                ]
                for c in CONTEXTS
            ]
    finally:
        for app in apps.values():
            app.extensions["legacy_assistant"].close()
    options = DecodingOptions(repetition_penalty=SERVING_REPETITION_PENALTY, condition_strength=2.5)
    with Responder.load(DEFAULT_RESPONDER, options=options) as guided:
        assert replies[2.5] == guided.respond_batch(CONTEXTS, ["joy"] * len(CONTEXTS))
    assert replies[2.5] != replies[0.0]


def test_chat_takes_a_condition_strength_for_the_responder(monkeypatch, capsys):
    import io

    from legacy_assistant.cli import main
    from legacy_assistant.responder.responder import DecodingOptions, Responder
    from legacy_assistant.serving.assistant import SERVING_REPETITION_PENALTY

    monkeypatch.setattr("sys.stdin", io.StringIO("do you like football ?\n"))
    argv = ["chat", "--responder", str(DEFAULT_RESPONDER), "--mode", "greedy", "--emotion", "joy"]
    assert main(argv + ["--condition-strength", "2.5"]) == 0
    printed = capsys.readouterr().out.strip()
    options = DecodingOptions(repetition_penalty=SERVING_REPETITION_PENALTY, condition_strength=2.5)
    with Responder.load(DEFAULT_RESPONDER, options=options) as guided:
        assert printed == "bot> " + guided.respond(["do you like football ?"], "joy")
    assert main(["chat", "--condition-strength", "2"]) == 1
    assert "--condition-strength is a responder option" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:  # out of range: a usage error naming the flag, before loading
        main(["chat", "--responder", "--condition-strength", "11"])
    assert refused.value.code == 2
    assert "--condition-strength: must be a number from 0 to 10, got 11" in capsys.readouterr().err


def test_a_call_may_ask_for_its_own_strength(shipped):
    """``condition_strength`` per call: the replies of a responder loaded with that strength, in
    every mode; None keeps the loaded one; a bad value is refused before anything decodes."""
    from legacy_assistant.responder.responder import DecodingOptions, Responder

    conditions = ["joy", "sadness", "neutral", "anger", "fear", "joy", "sadness"][: len(CONTEXTS)]
    with Responder.load(DEFAULT_RESPONDER, 1, -1, options=DecodingOptions(condition_strength=2.5)) as loaded:
        for mode in ("greedy", "beam", "sample_rerank"):
            seed = 5 if mode.startswith("sample") else None
            asked = shipped.respond_batch(CONTEXTS, conditions, mode, seed, condition_strength=2.5)
            assert asked == loaded.respond_batch(CONTEXTS, conditions, mode, seed), mode
            assert loaded.respond_batch(CONTEXTS, conditions, mode, seed, condition_strength=0) == (
                shipped.respond_batch(CONTEXTS, conditions, mode, seed)
            ), mode
    plain = shipped.respond_batch(CONTEXTS, ["joy"] * len(CONTEXTS))
    assert shipped.respond_batch(CONTEXTS, ["joy"] * len(CONTEXTS), condition_strength=None) == plain
    assert shipped.respond_batch(CONTEXTS, ["joy"] * len(CONTEXTS), condition_strength=4) != plain
    for bad in (-0.1, 10.5, float("nan"), float("inf"), True, "2", [2]):
        with pytest.raises(RequestError, match="condition_strength must be a number in"):
            shipped.respond(["hello !"], "joy", condition_strength=bad)


def test_batched_requests_of_different_strengths_each_get_their_own_reply(shipped):
    """Under concurrency, requests that ask for different strengths never share a decode."""
    import threading

    from legacy_assistant.serving.batching import BatchedResponder

    jobs = [(context, condition, strength) for context in CONTEXTS for condition in ("joy", "sadness")
            for strength in (None, 0.0, 1.5, 4.0)]
    expected = [shipped.respond(c, k, "greedy", None, s) for c, k, s in jobs]
    batched = BatchedResponder(shipped, max_batch_size=8, max_wait_s=0.005)
    sizes = []
    batched.batcher._on_batch = sizes.append
    got = [None] * len(jobs)
    start = threading.Barrier(len(jobs))

    def ask(i):
        c, k, s = jobs[i]
        start.wait()
        got[i] = batched.respond(c, k, "greedy", None, s)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batched.close()
    assert got == expected
    assert max(sizes) > 1  # they did meet in batches
    with pytest.raises(RequestError, match="condition_strength"):
        BatchedResponder(shipped).respond(["hello !"], "joy", "greedy", None, -1)


def test_reexport_never_swaps_the_old_model_over_one_written_meanwhile(tmp_path, monkeypatch):
    """reexport-responder DIR while `train-responder --out DIR --force` (or a migration) replaces
    DIR: the re-export, made from the model it read first, was swapped in over the new one, which
    was lost without a word. It is refused, and the new model stays."""
    import compat.responder.saved_model as saved_model
    from legacy_assistant.artifacts.directory import DIGEST_FIELD, manifest_digest, verify_directory
    from legacy_assistant.responder.artifact import MANIFEST, reexport_responder_artifact

    target, newer = tmp_path / "responder", tmp_path / "newer"
    shutil.copytree(DEFAULT_RESPONDER, target)
    shutil.copytree(DEFAULT_RESPONDER, newer)
    manifest = json.loads((newer / MANIFEST).read_text(encoding="utf-8"))
    manifest["name"] = "trained meanwhile"
    manifest[DIGEST_FIELD] = manifest_digest(manifest)
    (newer / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    export = saved_model.export_responder

    def export_while_another_command_replaces_the_directory(*args, **kwargs):
        export(*args, **kwargs)
        shutil.rmtree(target)
        shutil.copytree(newer, target)

    monkeypatch.setattr(saved_model, "export_responder", export_while_another_command_replaces_the_directory)
    with pytest.raises(ArtifactError) as raised:
        reexport_responder_artifact(target)
    assert str(raised.value) == (
        f"{target} was replaced by another model while it was being written again: nothing was replaced; "
        "run the command again to rewrite the model now there"
    )
    assert verify_directory(target, manifest_name=MANIFEST, formats=(manifest["format"],))["name"] == "trained meanwhile"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["newer", "responder"]  # no staging folder left
