"""Training the responder on tiny corpora written here: it learns them, it listens to the
condition, validation perplexity is what it says, early stopping, the time budget, and resuming
(in process and after ``kill -9``) ends with the weights of an uninterrupted run."""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from legacy_assistant.errors import ConfigError, TrainingError
from legacy_assistant.responder.batching import batch_of, sorted_batches
from legacy_assistant.responder.config import ResponderTrainingConfig
from legacy_assistant.responder.corpora import Dialogue, Turn, read_corpus
from legacy_assistant.responder.training import _files_with_number, prepare, train_responder
from tests import mood_corpus
from tests.mood_corpus import PROMPTS, REPLIES

ROOT = Path(__file__).resolve().parent.parent

TINY = ResponderTrainingConfig(
    embedding_size=24,
    encoder_units=24,
    context_units=48,
    decoder_units=48,
    condition_size=8,
    batch_size=8,
    epochs=40,
    learning_rate=0.01,
    held_out_fraction=0.0,
    min_count=1,
    patience=0,
    checkpoint_every=1000,
)

FRUITS = "apple banana cherry grape lemon mango olive peach pear plum".split()
COLOURS = "red blue green black white".split()


def fruit_dialogues() -> list[Dialogue]:
    """20 distinct dialogues; each reply follows from the context (the last one from a turn
    two turns back)."""
    dialogues = []
    for i in range(20):
        fruit, colour = FRUITS[i % 10], COLOURS[(i + i // 10) % 5]
        dialogues.append(Dialogue((
            Turn(f"do you like {colour} {fruit} ?"),
            Turn(f"i love {fruit} , it is {colour} .", "joy"),
            Turn(f"what about the {fruit} ?"),
            Turn(f"{colour} is fine .", "sadness"),
        ), f"fruit#{i}"))
    return dialogues


def _greedy(model, contexts, conditions):
    """Greedy replies with the trained weights (the trainer's in-graph decoding)."""
    from compat.responder.trainer import ResponderOptimizerSpec, ResponderTrainer
    from legacy_assistant.responder.batching import EncodedPair, pad_batch
    from legacy_assistant.responder.vocabulary import END

    spec = model.spec
    with ResponderTrainer(spec, ResponderOptimizerSpec(), seed=0) as trainer:
        trainer.set_weights(model.weights)
        pairs = [
            EncodedPair(
                tuple(map(tuple, model.vocabulary.encode_context(c, spec.max_context_turns, spec.max_turn_tokens))),
                (END,),
                model.conditions.index(k),
            )
            for c, k in zip(contexts, conditions)
        ]
        batch = pad_batch(pairs, spec.max_context_turns)
        result = trainer.decode(batch.context_ids, batch.condition_ids, mode="greedy", max_length=spec.max_reply_tokens)
    return [model.vocabulary.decode(ids[0]) for ids in result.ids]


def test_overfits_a_twenty_dialogue_corpus():
    """Learnt by heart. 80 epochs, not 60: at 60 the perplexity still wavered about 1.05-1.09 on
    one processor (1.0536 at the end) where another had it below 1.05; at 80 it is 1.0034 there."""
    dialogues = fruit_dialogues()
    model = train_responder(dialogues, TINY.with_overrides(epochs=80))
    assert model.history[-1]["perplexity"] < 1.05 < model.history[0]["perplexity"]
    assert model.summary["train_pairs"] == 60 and model.summary["stopped"] == "epochs"
    contexts = [[t.text for t in d.turns[:k]] for d in dialogues for k in (1, 3)]
    conditions = [d.turns[k].condition for d in dialogues for k in (1, 3)]
    expected = [d.turns[k].text for d in dialogues for k in (1, 3)]
    replies = _greedy(model, contexts, conditions)
    normalised = [" ".join(model.vocabulary.tokenize(r)) for r in replies]
    right = sum(r == " ".join(model.vocabulary.tokenize(e)) for r, e in zip(normalised, expected))
    assert right >= 0.95 * len(expected), list(zip(replies, expected))


def condition_dialogues() -> list[Dialogue]:
    """The same prompts, each answered once under every condition: only the condition decides."""
    return mood_corpus.dialogues(name="cond")


def test_the_condition_alone_decides_the_reply():
    model = train_responder(condition_dialogues(), TINY.with_overrides(epochs=30))
    unseen = "did you see the film yesterday ?"
    contexts = [[prompt] for prompt in PROMPTS + [unseen] for _ in REPLIES]
    conditions = [condition for _ in PROMPTS + [unseen] for condition in REPLIES]
    replies = _greedy(model, contexts, conditions)
    for condition, reply in zip(conditions, replies):
        assert model.vocabulary.tokenize(reply) == model.vocabulary.tokenize(REPLIES[condition])


def _random_dialogues(n: int, seed: int) -> list[Dialogue]:
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(40)]
    return [
        Dialogue(
            (Turn(" ".join(rng.choice(words, 4))), Turn(" ".join(rng.choice(words, 5)), "joy")),
            f"random#{seed}-{i}",
        )
        for i in range(n)
    ]


def test_validation_perplexity_early_stopping_and_best_weights():
    from compat.responder.trainer import ResponderOptimizerSpec, ResponderTrainer

    # Random replies: the held-out ones cannot be learnt, so validation gets worse while the
    # training side is memorised.
    dialogues = _random_dialogues(60, seed=1)
    config = TINY.with_overrides(held_out_fraction=0.25, patience=2, epochs=40, learning_rate=0.02)
    model = train_responder(dialogues, config)
    history = model.history
    assert model.summary["stopped"] == "early stopping"
    best = min(range(len(history)), key=lambda i: history[i]["val_loss"])
    assert model.summary["best_epoch"] == best + 1
    assert len(history) == best + 1 + config.patience
    for row in history:
        assert row["val_perplexity"] == pytest.approx(math.exp(row["val_loss"]))
        assert row["perplexity"] == pytest.approx(math.exp(row["loss"]))
    # The weights returned are the best epoch's: recompute its perplexity by hand.
    data = prepare(dialogues, config)
    assert model.summary["held_out_pairs"] == len(data.validation) == 15
    total, tokens = 0.0, 0
    with ResponderTrainer(model.spec, ResponderOptimizerSpec(), seed=0) as trainer:
        trainer.set_weights(model.weights)
        for indices in sorted_batches(data.validation, 4):
            batch = batch_of(data.validation, indices, config.max_context_turns)
            nll, count = trainer.evaluate(batch.context_ids, batch.condition_ids, batch.reply_ids)
            total, tokens = total + nll, tokens + count
    assert tokens == sum(len(pair.reply) for pair in data.validation)  # END counted, PAD not
    assert math.exp(total / tokens) == pytest.approx(history[best]["val_perplexity"], rel=1e-5)
    assert model.summary["val_perplexity"] == pytest.approx(history[best]["val_perplexity"])


def _assert_same_weights(first: dict, second: dict) -> None:
    assert sorted(first) == sorted(second)
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)


@pytest.mark.pinned_only
def test_time_budget_stops_and_resume_finishes_like_an_uninterrupted_run(tmp_path):
    dialogues = _random_dialogues(30, seed=2)
    # with a decaying learning rate (its schedule follows the restored global step) and a weight
    # average (checkpointed with the weights)
    config = TINY.with_overrides(
        epochs=3, held_out_fraction=0.2, checkpoint_every=4, decay_epochs=2, final_learning_rate=0.001,
        average_decay=0.9,
    )
    reference = train_responder(dialogues, config)
    assert reference.summary["learning_rate_at_end"] == pytest.approx(0.001)

    checkpoints = tmp_path / "checkpoints"
    stopped = train_responder(dialogues, config.with_overrides(max_minutes=1e-6), checkpoint_dir=checkpoints)
    assert stopped.summary["stopped"] == "time budget" and stopped.summary["steps"] == 1
    with pytest.raises(TrainingError, match="already holds a training run"):
        train_responder(dialogues, config, checkpoint_dir=checkpoints)
    steps = []
    resumed = train_responder(dialogues, config, checkpoint_dir=checkpoints, resume=True,
                              progress=lambda p: steps.append(p.step))
    assert steps[0] == 2  # went on from the checkpoint, not from scratch
    _assert_same_weights(resumed.weights, reference.weights)
    strip = [{k: v for k, v in row.items() if k != "seconds"} for row in resumed.history]
    assert strip == [{k: v for k, v in row.items() if k != "seconds"} for row in reference.history]
    # A finished run resumed again trains no more and gives the same model.
    calls = len(steps)
    again = train_responder(dialogues, config, checkpoint_dir=checkpoints, resume=True, progress=steps.append)
    assert len(steps) == calls  # not one batch more
    _assert_same_weights(again.weights, reference.weights)


@pytest.mark.parametrize("decay_epochs, expected", [(0, 0.01), (1, 0.002), (4, 0.006)])
def test_the_learning_rate_decays_over_decay_epochs_of_batches(decay_epochs, expected):
    """Two epochs of 12 pairs in batches of 8 are 4 steps: decayed over 1 epoch the rate ends at
    its floor, over 4 epochs half-way from 0.01 to 0.002."""
    config = TINY.with_overrides(epochs=2, decay_epochs=decay_epochs, final_learning_rate=0.002)
    model = train_responder(_random_dialogues(12, seed=5), config)
    assert model.summary["steps"] == 4
    assert model.summary["learning_rate_at_end"] == pytest.approx(expected)


@pytest.mark.pinned_only
def test_resume_refuses_other_settings_or_other_data(tmp_path):
    dialogues = _random_dialogues(12, seed=3)
    config = TINY.with_overrides(epochs=1)
    run = tmp_path / "run"
    train_responder(dialogues, config, checkpoint_dir=run)
    with pytest.raises(TrainingError, match=r"changed: learning_rate 0.01 -> 0.5"):
        train_responder(dialogues, config.with_overrides(learning_rate=0.5), checkpoint_dir=run, resume=True)
    with pytest.raises(TrainingError, match="training data differ"):
        train_responder(_random_dialogues(12, seed=4), config, checkpoint_dir=run, resume=True)
    more = train_responder(dialogues, config.with_overrides(epochs=2), checkpoint_dir=run, resume=True)
    assert [row["epoch"] for row in more.history] == [1, 2]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(TrainingError, match="not a responder checkpoint directory"):
        train_responder(dialogues, config, checkpoint_dir=tmp_path / "other")
    with pytest.raises(ConfigError, match="checkpoint directory"):
        train_responder(dialogues, config, resume=True)


@pytest.mark.pinned_only
def test_resume_refuses_a_corpus_that_would_give_another_vocabulary(tmp_path):
    """A change that touches only words the stored vocabulary lacks leaves the encoded pairs as
    they were, but a fresh run on that corpus would have another vocabulary."""
    def corpus(rare: tuple[str, str]) -> list[Dialogue]:
        dialogues = fruit_dialogues()
        extra = Dialogue((Turn(f"i saw a {rare[0]} ."), Turn(f"a {rare[1]} ?", "joy")), "extra#1")
        return [*dialogues, extra]

    config = TINY.with_overrides(epochs=1, min_count=2)
    run = tmp_path / "run"
    train_responder(corpus(("xylophone", "quokka")), config, checkpoint_dir=run)  # each word once: <unk>
    with pytest.raises(TrainingError, match="training data differ"):
        train_responder(corpus(("zebra", "zebra")), config, checkpoint_dir=run, resume=True)  # twice: a word


@pytest.mark.pinned_only
def test_resume_refuses_fewer_epochs_than_it_has_trained(tmp_path):
    dialogues = _random_dialogues(12, seed=3)
    run = tmp_path / "run"
    trained = train_responder(dialogues, TINY.with_overrides(epochs=3), checkpoint_dir=run)
    with pytest.raises(TrainingError, match="has trained 3 epochs already: --epochs 2 is fewer"):
        train_responder(dialogues, TINY.with_overrides(epochs=2), checkpoint_dir=run, resume=True)
    same = train_responder(dialogues, TINY.with_overrides(epochs=3), checkpoint_dir=run, resume=True)
    _assert_same_weights(same.weights, trained.weights)  # as many epochs: exported as it was


def test_resumed_runs_keep_only_the_last_checkpoints(tmp_path):
    from compat.responder.trainer import KEEP_CHECKPOINTS

    dialogues = _random_dialogues(12, seed=3)
    run = tmp_path / "run"
    config = TINY.with_overrides(epochs=1, checkpoint_every=1, batch_size=2)
    for epochs in (1, 2, 3):  # each resume saves several checkpoints of its own
        train_responder(dialogues, config.with_overrides(epochs=epochs), checkpoint_dir=run, resume=epochs > 1)
    saved = sorted(p.name for p in run.glob("responder-*.index"))
    assert len(saved) == KEEP_CHECKPOINTS, saved


@pytest.mark.pinned_only
@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda run, state: state.update(epoch="x"), "field 'epoch' holds 'x'"),
        (lambda run, state: state.update(best_loss=[1]), "field 'best_loss' holds"),
        (lambda run, state: run.update(conditions="neutral"), "'conditions' is not a list of names"),
        (lambda run, state: run.update(vocabulary="x"), r"run\.json: 'vocabulary' is not readable: vocabulary must"),
    ],
)
def test_resume_refuses_an_edited_state_or_run_file_in_one_line(tmp_path, damage, message):
    dialogues = _random_dialogues(12, seed=3)
    config = TINY.with_overrides(epochs=1)
    directory = tmp_path / "run"
    train_responder(dialogues, config, checkpoint_dir=directory)
    run_path = directory / "run.json"
    state_path = max(directory.glob("state-*.json"))
    run, state = json.loads(run_path.read_text()), json.loads(state_path.read_text())
    damage(run, state)
    run_path.write_text(json.dumps(run))
    state_path.write_text(json.dumps(state))
    with pytest.raises(TrainingError, match=message) as raised:
        train_responder(dialogues, config.with_overrides(epochs=2), checkpoint_dir=directory, resume=True)
    assert "\n" not in str(raised.value) and "checkpoint directory" in str(raised.value)


@pytest.mark.pinned_only
def test_a_run_killed_before_its_first_checkpoint_resumes_like_a_fresh_one(tmp_path):
    """Only run.json was written: the resumed run starts from the reply prior, as a fresh run does."""
    dialogues = _random_dialogues(12, seed=3)
    config = TINY.with_overrides(epochs=2)
    reference = train_responder(dialogues, config, checkpoint_dir=tmp_path / "whole")
    killed = tmp_path / "killed"
    killed.mkdir()
    shutil.copy(tmp_path / "whole" / "run.json", killed / "run.json")
    resumed = train_responder(dialogues, config, checkpoint_dir=killed, resume=True)
    _assert_same_weights(resumed.weights, reference.weights)

    # killed (or out of disk) between the first checkpoint's state and its weights: the same
    first_state = min(_files_with_number(tmp_path / "whole", "state-", ".json").items())[1]
    torn = tmp_path / "torn"
    torn.mkdir()
    shutil.copy(tmp_path / "whole" / "run.json", torn / "run.json")
    shutil.copy(first_state, torn / first_state.name)
    resumed = train_responder(dialogues, config, checkpoint_dir=torn, resume=True)
    _assert_same_weights(resumed.weights, reference.weights)



@pytest.mark.pinned_only
def test_resume_refuses_a_folder_that_holds_no_run(tmp_path):
    """A mistyped --checkpoint-dir would otherwise start the run over from scratch without a word."""
    dialogues = _random_dialogues(12, seed=3)
    typo = tmp_path / "typo"
    with pytest.raises(TrainingError) as raised:
        train_responder(dialogues, TINY, checkpoint_dir=typo, resume=True)
    assert str(raised.value) == (
        f"nothing to resume in {typo}: no such folder (to start a new run there, leave out --resume / resume=True)"
    )
    assert not typo.exists()
    typo.mkdir()
    with pytest.raises(TrainingError, match="nothing to resume in .*typo: it holds no run.json"):
        train_responder(dialogues, TINY, checkpoint_dir=typo, resume=True)
    assert list(typo.iterdir()) == []


def test_resume_refuses_a_pipe_in_the_place_of_the_run_file_rather_than_wait_on_it(tmp_path):
    """A named pipe where run.json (or a state file) should be: the read waited for a writer for
    ever, and --resume hung without a word."""
    directory = tmp_path / "run"
    directory.mkdir()
    os.mkfifo(directory / "run.json")
    with pytest.raises(TrainingError) as raised:
        train_responder(_random_dialogues(12, seed=3), TINY, checkpoint_dir=directory, resume=True)
    assert str(raised.value) == (
        f"{directory / 'run.json'}: cannot read the training state: is not a regular file (a device, pipe or socket)"
    )


@pytest.mark.pinned_only
def test_a_run_file_that_cannot_be_written_leaves_no_temporary_file(tmp_path):
    """A stray .run.json.tmp made the folder "not empty and holds no run.json" for every later run."""
    from legacy_assistant.responder.training import _write_json_atomically

    with pytest.raises(UnicodeEncodeError):
        _write_json_atomically(tmp_path / "run.json", {"tokens": ["\ud800"]})
    assert list(tmp_path.iterdir()) == []
    train_responder(_random_dialogues(12, seed=3), TINY.with_overrides(epochs=1), checkpoint_dir=tmp_path)

def test_a_damaged_checkpoint_directory_is_refused_clearly(tmp_path):
    dialogues = _random_dialogues(12, seed=3)
    config = TINY.with_overrides(epochs=1, checkpoint_every=2)
    run = tmp_path / "run"
    train_responder(dialogues, config, checkpoint_dir=run)
    more = config.with_overrides(epochs=2)

    index = (run / "checkpoint").read_bytes()
    (run / "checkpoint").write_text("garbage", encoding="utf-8")  # the index lost: not a silent restart
    with pytest.raises(TrainingError, match="no readable checkpoint index"):
        train_responder(dialogues, more, checkpoint_dir=run, resume=True)
    (run / "checkpoint").write_bytes(index)

    state = max(run.glob("state-*.json"), key=lambda path: int(path.stem.split("-")[1]))
    kept = state.read_bytes()
    state.write_text("5", encoding="utf-8")
    with pytest.raises(TrainingError, match="not a training state"):
        train_responder(dialogues, more, checkpoint_dir=run, resume=True)
    state.write_bytes(kept)

    data = next(run.glob(f"responder-{state.stem.split('-')[1]}.data-*"))
    data.write_bytes(data.read_bytes()[:10])
    with pytest.raises(TrainingError, match="cannot restore responder checkpoint") as torn:
        train_responder(dialogues, more, checkpoint_dir=run, resume=True)
    assert str(torn.value).count("\n") == 0 and "Read less bytes than requested" in str(torn.value)  # the cause

    settings = json.loads((run / "run.json").read_text(encoding="utf-8"))
    del settings["data_sha256"]
    (run / "run.json").write_text(json.dumps(settings), encoding="utf-8")
    with pytest.raises(TrainingError, match="lacks data_sha256"):
        train_responder(dialogues, more, checkpoint_dir=run, resume=True)

    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    with pytest.raises(TrainingError, match="not a directory"):
        train_responder(dialogues, config, checkpoint_dir=tmp_path / "a-file")


@pytest.mark.pinned_only
def test_a_lost_best_epoch_is_refused_when_the_run_resumes(tmp_path):
    """Not after training on (or never, when the last epoch is the best): the export needs them."""
    dialogues = _random_dialogues(24, seed=3)
    config = TINY.with_overrides(epochs=1, held_out_fraction=0.25)
    run = tmp_path / "run"
    train_responder(dialogues, config, checkpoint_dir=run)
    best = next(run.glob("best-*.npz"))  # the run validated: its best epoch's weights are kept for the export
    stored = best.read_bytes()
    flipped = bytearray(stored)
    flipped[len(stored) // 2] ^= 0xFF
    # lost, cut short, one byte changed inside: numpy raises other errors than OSError for the last two
    for damage in (best.unlink, lambda: best.write_bytes(stored[:100]), lambda: best.write_bytes(bytes(flipped))):
        best.unlink(missing_ok=True)
        best.write_bytes(stored)
        damage()
        files = sorted(run.iterdir())
        for epochs in (1, 3):  # nothing left to train, and more to train
            with pytest.raises(TrainingError, match=f"{best.name}: cannot read the best epoch's weights"):
                train_responder(dialogues, config.with_overrides(epochs=epochs), checkpoint_dir=run, resume=True)
            assert sorted(run.iterdir()) == files  # refused at the resume: nothing trained or written


def test_a_checkpoint_whose_index_is_gone_is_named_at_the_resume(tmp_path, caplog):
    dialogues = _random_dialogues(24, seed=3)
    config = TINY.with_overrides(epochs=1, held_out_fraction=0.25)
    run = tmp_path / "run"
    train_responder(dialogues, config, checkpoint_dir=run)
    latest = max(run.glob("responder-*.index"), key=lambda p: int(p.stem.split("-")[1]))
    latest.unlink()
    with pytest.raises(TrainingError, match=f"{latest.name} is missing: the 'checkpoint' file names a checkpoint"):
        train_responder(dialogues, config, checkpoint_dir=run, resume=True)
    assert "Couldn't match files" not in caplog.text


def test_a_state_naming_a_best_file_outside_its_directory_is_refused():
    from legacy_assistant.responder.training import _Run

    assert _Run.from_dict({"best_file": "best-3.npz"}).best_file == "best-3.npz"
    for name in ("../best-3.npz", "/tmp/best-3.npz", "sub/best-3.npz"):
        with pytest.raises(TrainingError, match="field 'best_file'"):
            _Run.from_dict({"best_file": name})


@pytest.mark.pinned_only
def test_resuming_a_finished_run_says_it_only_exports(tmp_path, caplog):
    dialogues = _random_dialogues(12, seed=3)
    config = TINY.with_overrides(epochs=1, checkpoint_every=2)
    train_responder(dialogues, config, checkpoint_dir=tmp_path / "run")
    caplog.set_level(logging.INFO, logger="legacy_assistant.responder.training")
    train_responder(dialogues, config, checkpoint_dir=tmp_path / "run", resume=True)
    said = [record.getMessage() for record in caplog.records]
    assert any("nothing left to train (stopped: epochs, after 1 epoch(s)" in line for line in said), said
    assert not any("resuming at epoch" in line for line in said), said
    caplog.clear()
    train_responder(dialogues, config.with_overrides(epochs=2), checkpoint_dir=tmp_path / "run", resume=True)
    assert any("resuming at epoch 2, batch 0" in record.getMessage() for record in caplog.records)


def test_a_corpus_without_pairs_is_refused():
    with pytest.raises(TrainingError, match="no training pairs"):
        train_responder([], TINY)


def test_training_dialogues_that_all_occur_in_the_validation_set_are_named_as_the_cause():
    """Not "the corpus needs dialogues of at least two turns": every one has two or more."""
    dialogues = _random_dialogues(12, seed=3)
    message = r"all 12 training dialogue\(s\) also occur in the held-out dialogues \(--validation\)"
    with pytest.raises(TrainingError, match=message):
        prepare(dialogues, TINY, held_out=dialogues)
    with pytest.raises(TrainingError, match=message):  # a validation set that merely covers them
        prepare(dialogues, TINY, held_out=[*_random_dialogues(5, seed=9), *reversed(dialogues)])


def test_a_held_out_share_that_gives_no_pair_is_warned(caplog):
    """One dialogue cannot be split: training goes on without validation, and says so."""
    one = _random_dialogues(1, seed=4)
    with caplog.at_level("WARNING", logger="legacy_assistant.responder.training"):
        data = prepare(one, TINY.with_overrides(held_out_fraction=0.2))
    assert data.counts["held_out_pairs"] == 0 and data.counts["train_pairs"] > 0
    assert "no pair could be held out for validation (1 dialogue(s), too few to split)" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="legacy_assistant.responder.training"):
        prepare(_random_dialogues(12, seed=3), TINY.with_overrides(held_out_fraction=0.2))
        prepare(one, TINY.with_overrides(held_out_fraction=0.0))  # none asked for: nothing to say
    assert "held out" not in caplog.text


def test_a_corpus_of_copies_of_one_dialogue_is_warned_of_as_copies_not_as_too_few(caplog):
    """Copies of a dialogue stay on one side of the split: 30 of them hold nothing out, and the
    warning says why, not that 30 dialogues are too few."""
    copies = _random_dialogues(1, seed=4) * 30
    with caplog.at_level("WARNING", logger="legacy_assistant.responder.training"):
        data = prepare(copies, TINY.with_overrides(held_out_fraction=0.2))
    assert data.counts["held_out_pairs"] == 0 and data.counts["train_dialogues"] == 30
    assert "no pair could be held out for validation (30 dialogues, all copies of one," in caplog.text
    assert "too few to split" not in caplog.text


@pytest.mark.parametrize("validation", [False, True])
def test_preparation_tokenizes_each_distinct_turn_once(monkeypatch, validation):
    """The split, the vocabulary and the encoding all read every turn's tokens: each distinct
    text is tokenized once, however many turns there are (more than the token cache holds) and
    however long a turn is (longer than it caches)."""
    from legacy_assistant.responder import vocabulary

    processor = vocabulary._processor(vocabulary.TEXT_CONFIG)
    tokenized: list[str] = []

    def counting(text):
        tokenized.append(text)
        return type(processor).tokens(processor, text)

    monkeypatch.setattr(processor, "tokens", counting)
    long_tail = " ".join(f"long{i}" for i in range(vocabulary.CACHED_TURN_CHARS // 4))
    n = vocabulary.CACHED_TURNS // 3 + 10  # four distinct turns a dialogue: more turns than the cache holds
    dialogues = [
        Dialogue(
            (
                Turn(f"once {i} upon a time"),
                Turn(f"there was {i} of them", "joy"),
                Turn(f"and then {i} ?"),
                Turn(f"the end {i} {long_tail} ." if i % 50 == 0 else f"the end {i} ."),
                Turn("ok ."),  # the same text in every dialogue
            ),
            f"tale#{i}",
        )
        for i in range(n)
    ]
    held_out = dialogues[-5:] if validation else None
    data = prepare(dialogues[:-5] if validation else dialogues, TINY.with_overrides(held_out_fraction=0.2), held_out)
    assert data.counts["train_pairs"] > 0 and data.counts["held_out_pairs"] > 0
    assert len(tokenized) == len(set(tokenized))
    assert set(tokenized) <= {turn.text for dialogue in dialogues for turn in dialogue.turns}
    # and again, the same texts: no turn is remembered between preparations (nor after them)
    tokenized.clear()
    assert prepare(dialogues, TINY.with_overrides(held_out_fraction=0.2)).counts["train_pairs"] > 0
    assert len(tokenized) == len(set(tokenized))
    assert any(long_tail in text for text in tokenized)


CHILD = """
import sys, time
from legacy_assistant.responder.config import ResponderTrainingConfig
from legacy_assistant.responder.corpora import read_corpus
from legacy_assistant.responder.training import train_responder
config = ResponderTrainingConfig.from_dict(__import__("json").loads(sys.argv[2]))
# Slow each step down so the parent can kill the run in the middle, whatever the machine's speed.
train_responder(read_corpus(sys.argv[1]), config, checkpoint_dir=sys.argv[3], progress=lambda p: time.sleep(0.05))
"""


def test_resume_after_kill_ends_with_the_uninterrupted_weights(tmp_path):
    corpus = tmp_path / "dialogues.jsonl"
    lines = [
        json.dumps([{"text": t.text, "condition": t.condition} for t in d.turns])
        for d in fruit_dialogues() + _random_dialogues(20, seed=5)
    ]
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = TINY.with_overrides(epochs=6, held_out_fraction=0.2, checkpoint_every=5, patience=3)
    checkpoints = tmp_path / "checkpoints"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(corpus), json.dumps(config.to_dict()), str(checkpoints)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while not (checkpoints / "checkpoint").exists():
            assert child.poll() is None, child.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    states = sorted(int(p.stem.split("-")[1]) for p in checkpoints.glob("state-*.json"))
    latest = json.loads((checkpoints / f"state-{states[-1]}.json").read_text(encoding="utf-8"))
    assert latest["stopped"] is None  # killed in the middle, not after the end

    dialogues = read_corpus(corpus)
    steps = []
    resumed = train_responder(dialogues, config, checkpoint_dir=checkpoints, resume=True,
                              progress=lambda p: steps.append(p.step))
    assert steps[0] > 1
    reference = train_responder(dialogues, config)
    _assert_same_weights(resumed.weights, reference.weights)
    assert [row["val_loss"] for row in resumed.history] == [row["val_loss"] for row in reference.history]


@pytest.mark.pinned_only
@pytest.mark.parametrize(
    "average_decay, tied_output", [(0.0, False), (0.9, True)], ids=["weights", "weight-average-tied-output"]
)
def test_a_time_budget_that_ends_an_epoch_part_way_keeps_those_batches_if_better(
    tmp_path, average_decay, tied_output
):
    """The weights returned are the ones validated: with a weight average, the average; with a
    tied output, in the plain network's form."""
    from compat.responder.trainer import ResponderOptimizerSpec, ResponderTrainer

    dialogues = condition_dialogues()
    config = TINY.with_overrides(
        epochs=1, held_out_fraction=0.2, average_decay=average_decay, tied_output=tied_output
    )
    checkpoints = tmp_path / "run"
    first = train_responder(dialogues, config, checkpoint_dir=checkpoints)
    assert first.summary["weights"] == "best epoch" and "budget_end" not in first.summary
    # One more step, then the budget is used: the epoch in progress is validated as it stands.
    later = train_responder(dialogues, config.with_overrides(epochs=3, max_minutes=1e-6), checkpoint_dir=checkpoints,
                            resume=True)
    end = later.summary["budget_end"]
    assert later.summary["stopped"] == "time budget" and end["step"] == first.summary["steps"] + 1
    assert (end["epoch"], end["batches"]) == (2, 1)
    better = end["val_loss"] < first.history[0]["val_loss"]
    assert later.summary["weights"] == ("time budget end" if better else "best epoch")
    data = prepare(dialogues, config)
    total, tokens = 0.0, 0
    with ResponderTrainer(later.spec, ResponderOptimizerSpec(), seed=0) as trainer:
        trainer.set_weights(later.weights)  # the weights returned: their perplexity is the summary's
        for indices in sorted_batches(data.validation, 16):
            batch = batch_of(data.validation, indices, config.max_context_turns)
            nll, count = trainer.evaluate(batch.context_ids, batch.condition_ids, batch.reply_ids)
            total, tokens = total + nll, tokens + count
    assert math.exp(total / tokens) == pytest.approx(later.summary["val_perplexity"], rel=1e-5)
    assert later.history == first.history  # no row for the unfinished epoch


def test_reply_log_prior_is_the_smoothed_reply_frequency():
    from legacy_assistant.responder.batching import EncodedPair
    from legacy_assistant.responder.training import reply_log_prior

    pairs = [EncodedPair(((5,),), (4, 4, 3), 0), EncodedPair(((5,),), (6, 3), 0)]
    prior = reply_log_prior(pairs, 8)
    counts = np.array([1, 1, 1, 3, 3, 1, 2, 1], dtype=np.float64)  # add-one; id 5 is context only
    assert prior.dtype == np.float32 and prior.shape == (8,)
    np.testing.assert_allclose(prior, np.log(counts / counts.sum()), rtol=1e-6)


def test_a_fresh_run_starts_from_the_reply_prior():
    from legacy_assistant.responder.training import OUTPUT_BIAS_SUFFIX, reply_log_prior

    config = ResponderTrainingConfig(**{**TINY.to_dict(), "epochs": 1, "batch_size": 64, "learning_rate": 1e-4})
    trained = train_responder(fruit_dialogues(), config)
    assert trained.summary["steps"] == 1  # one batch holds every pair: one Adam step of 1e-4 at most
    data = prepare(fruit_dialogues(), config)
    (bias,) = [value for name, value in trained.weights.items() if name.endswith(OUTPUT_BIAS_SUFFIX)]
    prior = reply_log_prior(data.train, len(data.vocabulary))
    assert np.max(np.abs(bias - prior)) < 2e-4
    assert np.ptp(prior) > 1.0  # a zero start would be far from it


def test_a_full_disk_saving_the_best_weights_names_the_file_and_leaves_no_part(tmp_path, monkeypatch):
    """np.savez meets a full disk when it closes its zip file: the error said only "[Errno 28]
    No space left on device" and the partial temporary file stayed in the checkpoint folder."""
    from legacy_assistant.responder import training

    real_savez = np.savez

    def full_disk(path, **arrays):
        real_savez(path, **arrays)  # a part of the file is written, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(training.np, "savez", full_disk)
    with pytest.raises(OSError, match=r"No space left on device: '.*\.best-3\.npz\.tmp\.npz'"):
        training._save_best(tmp_path, 3, {"w": np.zeros(4, np.float32)})
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    assert training._save_best(tmp_path, 3, {"w": np.ones(4, np.float32)}) == "best-3.npz"
    assert [p.name for p in tmp_path.iterdir()] == ["best-3.npz"]


def test_a_state_file_is_kept_while_its_checkpoint_is(tmp_path):
    """The trainer keeps its last 3 checkpoints, and 5 state files stayed beside them."""
    run = tmp_path / "run"
    config = TINY.with_overrides(epochs=4, checkpoint_every=1)
    train_responder(_random_dialogues(12, seed=3), config, checkpoint_dir=run)
    states = _files_with_number(run, "state-", ".json")
    assert len(states) == 3 and set(states) == set(_files_with_number(run, "responder-", ".index"))


def test_a_failed_checkpoint_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    """TensorFlow writes the checkpoint index as checkpoint.tmp<hex> and renames it: a full disk
    left that file in the folder for good."""
    from compat.responder.trainer import ResponderTrainer

    def full_disk(self, directory, step):
        Path(directory, "checkpoint.tmp0123abcd").write_text("model_checkpoint_path", encoding="utf-8")
        Path(directory, f"responder-{step}.index.tempstate123").write_bytes(b"")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ResponderTrainer, "save_checkpoint", full_disk)
    run = tmp_path / "run"
    with pytest.raises(OSError, match="No space left on device"):
        train_responder(_random_dialogues(12, seed=3), TINY.with_overrides(epochs=1), checkpoint_dir=run)
    assert not list(run.glob("*tmp*")) and not list(run.glob("*tempstate*"))


def test_a_run_killed_as_it_wrote_a_file_leaves_a_folder_that_starts_and_resumes(tmp_path):
    """``kill -9`` during the write of run.json, a state file or the best epoch's weights leaves
    that write's temporary file: the folder was then refused, resumed or started afresh alike, as
    "not empty and holds no run.json", and a resumed run kept such a file for good."""
    dialogues = _random_dialogues(12, seed=3)
    config = TINY.with_overrides(epochs=1)
    killed = tmp_path / "killed"
    killed.mkdir()
    (killed / ".run.json.k3j2l1.tmp").write_text('{"format": "legacy-assistant-resp', encoding="utf-8")
    with pytest.raises(TrainingError, match="nothing to resume in .*killed: it holds no run.json"):
        train_responder(dialogues, config, checkpoint_dir=killed, resume=True)
    train_responder(dialogues, config, checkpoint_dir=killed)  # starts afresh
    (killed / ".state-9.json.p1fpmi4k.tmp").write_text('{"epoch": ', encoding="utf-8")
    (killed / ".best-1.npz.tmp.npz").write_bytes(b"PK")
    train_responder(dialogues, config.with_overrides(epochs=2), checkpoint_dir=killed, resume=True)
    assert sorted(p.name for p in killed.iterdir() if p.name.startswith(".")) == []


def test_a_signal_the_process_ignores_stays_ignored_during_training():
    """Started with SIGINT ignored (``cmd &`` from a script), a Ctrl-C to the group stopped the
    training but not the export after it: the training's handler must not take an ignored signal."""
    import signal

    from legacy_assistant.responder.training import _Interrupt

    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        with _Interrupt() as interrupt:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) == interrupt._handle
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


def test_a_vocabulary_that_leaves_most_reply_words_out_is_warned_about(caplog):
    """--vocab-size 5 trained a model of <unk> replies whose perplexity (2.04) looked excellent."""
    dialogues = _random_dialogues(30, seed=4)  # 40 words, about evenly spread
    with caplog.at_level("WARNING", logger="legacy_assistant.responder.training"):
        prepare(dialogues, TINY.with_overrides(vocab_size=8, held_out_fraction=0.0))
    warned = [r.getMessage() for r in caplog.records if "are <unk>" in r.getMessage()]
    assert len(warned) == 1 and "(vocab_size 8 and min_count 1 keep too few" in warned[0]
    caplog.clear()
    with caplog.at_level("WARNING", logger="legacy_assistant.responder.training"):
        prepare(dialogues, TINY.with_overrides(vocab_size=100, held_out_fraction=0.0))  # every word kept
    assert not [r for r in caplog.records if "are <unk>" in r.getMessage()]


def test_turns_in_a_script_written_without_spaces_are_warned_about(caplog):
    """A Chinese or Japanese corpus trained without a word: each sentence between two marks was
    one token, as `train` warns for the intent classifier."""
    dialogues = [
        Dialogue((Turn("你好！你今天怎么样？"), Turn("我很好，谢谢。", "joy")), "zh#1"),
        Dialogue((Turn("こんにちは。元気ですか？"), Turn("はい、元気です！", "joy")), "ja#1"),
        Dialogue((Turn("Привет! Как дела?"), Turn("Всё хорошо, спасибо.", "joy")), "ru#1"),
    ]
    with caplog.at_level("WARNING", logger="legacy_assistant.responder.training"):
        prepare(dialogues, TINY)
    warned = [r.getMessage() for r in caplog.records if "without spaces" in r.getMessage()]
    assert len(warned) == 1 and warned[0].startswith("4 of 6 training turns hold text"), warned
    assert '("你好")' in warned[0]
    caplog.clear()
    with caplog.at_level("WARNING", logger="legacy_assistant.responder.training"):
        prepare(dialogues[2:], TINY)  # Cyrillic has spaces
    assert not [r for r in caplog.records if "without spaces" in r.getMessage()]


@pytest.mark.parametrize("sampled, warned", [(500, True), (8, False)])
def test_a_sampled_softmax_as_large_as_the_vocabulary_is_dropped_with_a_warning(caplog, sampled, warned):
    """--sampled-softmax 512 on a corpus of a few hundred words trained with the full softmax
    without a word: the run's settings said otherwise than what ran."""
    with caplog.at_level("WARNING", logger="legacy_assistant.responder.training"):
        model = train_responder(fruit_dialogues(), TINY.with_overrides(epochs=1, sampled_softmax=sampled))
    assert model.spec.sampled_softmax == (0 if warned else sampled)
    messages = [r.getMessage() for r in caplog.records if "sampled softmax" in r.getMessage()]
    expected = [f"sampled softmax over 500 classes asked for, but the vocabulary has {model.spec.vocab_size} ids: "
                "training with the full softmax"]
    assert messages == (expected if warned else [])


def test_a_min_count_that_leaves_most_reply_words_out_is_named_in_the_warning(caplog):
    """A vocabulary with room for every word, and a min_count above every word's count: the
    warning names min_count, not only the vocab_size that was not the cause."""
    dialogues = _random_dialogues(30, seed=4)
    with caplog.at_level("WARNING", logger="legacy_assistant.responder.training"):
        prepare(dialogues, TINY.with_overrides(vocab_size=100, min_count=10, held_out_fraction=0.0))
    warned = [r.getMessage() for r in caplog.records if "are <unk>" in r.getMessage()]
    assert len(warned) == 1 and "min_count 10 keep too few" in warned[0], warned


# A process that holds a checkpoint directory as a training run does, until its stdin closes.
_HOLDER = """
import sys
from legacy_assistant.responder.checkpoint_lock import hold_checkpoint_dir
with hold_checkpoint_dir(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()
"""


def _hold_in_another_process(directory: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(directory)],
        cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    line = child.stdout.readline()  # the child holds the folder once it has said so
    assert line == "held\n", child.stderr.read()[-2000:]
    return child


def test_a_second_run_in_a_checkpoint_directory_is_refused_and_a_killed_holder_blocks_nothing(tmp_path):
    """Two runs in one folder (two terminals, overlapping cron jobs) wrote the same checkpoint
    names and one `checkpoint` index over each other: the second is refused by name, and a run
    killed with kill -9 leaves the folder free to resume without cleaning up."""
    from legacy_assistant.responder.checkpoint_lock import hold_checkpoint_dir

    dialogues = _random_dialogues(12, seed=3)
    directory = tmp_path / "ck"
    child = _hold_in_another_process(directory)
    try:
        for resume in (False, True):
            with pytest.raises(TrainingError) as raised:
                train_responder(dialogues, TINY, checkpoint_dir=directory, resume=resume)
            assert str(raised.value) == (
                f"{directory}: another training run is using this checkpoint directory (process {child.pid}); "
                "wait for it to end (or stop it), or choose another checkpoint directory"
            )
        assert sorted(path.name for path in directory.iterdir()) == [".holder"]  # nothing written by the refused
    finally:
        child.kill()  # SIGKILL: no cleanup of its own
        child.communicate()
    assert child.returncode == -signal.SIGKILL
    with hold_checkpoint_dir(directory), hold_checkpoint_dir(directory):  # free at once; nested in one process
        assert (directory / ".holder").read_text(encoding="utf-8").split()[0] == str(os.getpid())
    assert not (directory / ".holder").exists()


def test_a_folder_left_with_only_the_holder_note_takes_a_new_run(tmp_path):
    """A run killed before its first file leaves its note: the folder is no foreign one."""
    from legacy_assistant.responder.training import check_checkpoint_dir

    directory = tmp_path / "ck"
    directory.mkdir()
    (directory / ".holder").write_text("999999 elsewhere\n", encoding="utf-8")
    check_checkpoint_dir(directory, TINY, resume=False)
    with pytest.raises(TrainingError, match="nothing to resume in .*ck: it holds no run.json"):
        check_checkpoint_dir(directory, TINY, resume=True)


def test_a_folder_the_hold_made_is_removed_when_no_run_was_written(tmp_path):
    from legacy_assistant.responder.checkpoint_lock import hold_checkpoint_dir

    made = tmp_path / "new" / "ck"
    with hold_checkpoint_dir(made):
        assert made.is_dir()
    assert not made.exists()
    with hold_checkpoint_dir(made):
        (made / "run.json").write_text("{}", encoding="utf-8")
    assert sorted(path.name for path in made.iterdir()) == ["run.json"]


def test_a_folder_removed_and_made_again_while_it_is_locked_is_the_one_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run that held a folder removes it when it wrote nothing there; a folder made again at
    that path in the moment between opening and locking is the one this run holds, not the
    removed one (two runs would then train in the new folder at once)."""
    import fcntl

    from legacy_assistant.responder import checkpoint_lock

    directory = tmp_path / "ck"
    lock = fcntl.flock
    replaced: list[bool] = []

    def flock_once_the_folder_is_made_again(descriptor: int, operation: int) -> None:
        if not replaced:  # the holder ends and removes its empty folder; another run makes it again
            directory.rmdir()
            directory.mkdir()
            replaced.append(True)
        lock(descriptor, operation)

    monkeypatch.setattr(checkpoint_lock.fcntl, "flock", flock_once_the_folder_is_made_again)
    with checkpoint_lock.hold_checkpoint_dir(directory):
        assert replaced
        other = os.open(directory, os.O_RDONLY)  # another process's hold of the folder now at the path
        try:
            with pytest.raises(BlockingIOError):
                lock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(other)


def test_a_killed_run_s_temporary_folder_is_removed_but_not_another_machine_s_nor_another_user_s(
    tmp_path, monkeypatch, caplog
):
    """A temporary folder shared between machines (TMPDIR on a cluster's scratch file system)
    may lock a folder only for the machine that took the lock: another machine's run went on
    training in a folder the next run here found unlocked, and removed it. Nor is another
    user's folder removed (one run as root)."""
    import socket

    from legacy_assistant.responder.checkpoint_lock import remove_abandoned

    def left(name: str, host: str) -> Path:
        folder = tmp_path / f"legacy-assistant-responder-{name}"
        folder.mkdir()
        (folder / "run.json").write_text("{}", encoding="utf-8")
        (folder / ".holder").write_text(f"4242 {host}\n", encoding="utf-8")
        (folder / ".temporary").write_bytes(b"")
        an_hour_ago = time.time() - 3600
        os.utime(folder, (an_hour_ago, an_hour_ago))
        return folder

    killed = left("killed", socket.gethostname())
    elsewhere = left("elsewhere", f"not-{socket.gethostname()}")
    with caplog.at_level(logging.WARNING, logger="legacy_assistant.responder.checkpoint_lock"):
        remove_abandoned(tmp_path, "legacy-assistant-responder-")
    assert not killed.exists()
    assert (elsewhere / "run.json").is_file()
    assert f"removed {killed}, " in caplog.text and str(elsewhere) not in caplog.text

    theirs = left("theirs", socket.gethostname())
    monkeypatch.setattr(os, "getuid", lambda: os.stat(theirs).st_uid + 1)
    remove_abandoned(tmp_path, "legacy-assistant-responder-")
    assert (theirs / "run.json").is_file()


def test_a_second_thread_of_one_process_is_refused_the_checkpoint_directory(tmp_path):
    """The hold nests only in the thread that holds it: two library calls of train_responder
    from two threads of one process would otherwise both train in one folder."""
    import threading

    from legacy_assistant.responder.checkpoint_lock import hold_checkpoint_dir

    directory = tmp_path / "ck"
    held, done = threading.Event(), threading.Event()

    def first() -> None:
        with hold_checkpoint_dir(directory):
            held.set()
            done.wait(60)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert held.wait(60)
        with pytest.raises(TrainingError, match="another training run in this process"):
            with hold_checkpoint_dir(directory):
                pass
        with pytest.raises(TrainingError, match="another training run in this process"):
            train_responder(_random_dialogues(12, seed=3), TINY, checkpoint_dir=directory)
        assert directory.is_dir()  # the refused thread removed nothing of the holder's
    finally:
        done.set()
        thread.join()
    assert not directory.exists()  # the holder made it and wrote no run: removed when it ended
    with hold_checkpoint_dir(directory), hold_checkpoint_dir(directory):  # free again; nested in one thread
        assert directory.is_dir()


def test_a_stop_signal_saves_a_checkpoint_after_the_batch_and_a_second_one_stops_at_once(tmp_path, caplog):
    """Ctrl-C or SIGTERM: the batch in flight ends, a checkpoint of it is saved and the run stops
    with the signal's number (the command prints how to resume); a second one stops at once. The
    training's handler is called as the signal would call it: a signal sent to the test process
    could be taken by a thread another test left."""
    from legacy_assistant.responder.training import _Interrupt

    dialogues = _random_dialogues(30, seed=2)
    before = signal.getsignal(signal.SIGTERM)

    def stop_at(step, times):
        def progress(p):
            if p.step == step:
                handler = signal.getsignal(signal.SIGTERM)
                assert isinstance(getattr(handler, "__self__", None), _Interrupt)
                for _ in range(times):
                    handler(signal.SIGTERM, None)
        return progress

    first = tmp_path / "first"
    with caplog.at_level("WARNING", logger="legacy_assistant.responder.training"):
        with pytest.raises(KeyboardInterrupt) as stopped:
            train_responder(dialogues, TINY.with_overrides(epochs=3), checkpoint_dir=first, progress=stop_at(2, 1))
    assert stopped.value.signum == signal.SIGTERM and str(stopped.value) == (
        "training interrupted at step 2; resume to continue")
    assert "SIGTERM: stopping after the current batch and saving a checkpoint (Ctrl-C again to abort)" in caplog.text
    assert sorted(p.name for p in first.glob("state-*.json")) == ["state-2.json"]
    assert json.loads((first / "state-2.json").read_text(encoding="utf-8"))["step"] == 2

    again = tmp_path / "again"
    with pytest.raises(KeyboardInterrupt) as stopped:
        train_responder(dialogues, TINY.with_overrides(epochs=3), checkpoint_dir=again, progress=stop_at(2, 2))
    assert not hasattr(stopped.value, "signum") and list(again.glob("state-*.json")) == []
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_batch_whose_contexts_hold_no_token_trains_and_validates():
    """A context turn the tokenizer leaves nothing of (a zero-width space, which the corpus
    readers refuse but dialogues given to ``train_responder`` may hold) is a context of no
    token: bucketing puts such pairs together, and a batch of only them failed in the encoder
    (``InvalidArgumentError: Size should be >= 0``) in training and in validation."""
    dialogues = [
        Dialogue((Turn("\u200b"), Turn("yes", "joy")), "empty#0"),
        Dialogue((Turn("\u200b \u200b"), Turn("no", "joy")), "empty#1"),
        Dialogue((Turn("hello"), Turn("maybe", "joy")), "words#0"),
    ]
    config = TINY.with_overrides(
        embedding_size=2, encoder_units=1, context_units=1, decoder_units=1, condition_size=1, batch_size=1, epochs=2
    )
    held_out = [Dialogue((Turn("\u200b"), Turn("yes no", "joy")), "empty#2")]
    trained = train_responder(dialogues, config, held_out=held_out)
    assert len(trained.history) == 2
    assert all(math.isfinite(epoch["perplexity"]) for epoch in trained.history)


def test_checkpoints_a_killed_run_left_behind_are_removed_by_the_next_checkpoint(tmp_path):
    """``kill -9`` as TensorFlow wrote a checkpoint left its weights file without an index, and
    one as it recorded a checkpoint left a fourth one the 'checkpoint' file no longer named:
    resumed runs kept both for good, a model's size more at every such kill."""
    dialogues = _random_dialogues(12, seed=3)
    config = TINY.with_overrides(epochs=1, checkpoint_every=1, batch_size=2)
    directory = tmp_path / "checkpoints"
    train_responder(dialogues, config, checkpoint_dir=directory)
    kept = sorted(_files_with_number(directory, "responder-", ".index"))
    assert len(kept) == 3
    oldest = kept[0]
    # a checkpoint recorded, then dropped from the 'checkpoint' file, its files not yet deleted
    for source in directory.glob(f"responder-{oldest}.*"):
        shutil.copy(source, directory / source.name.replace(f"-{oldest}.", f"-{oldest - 2}."))
    shutil.copy(directory / f"state-{oldest}.json", directory / f"state-{oldest - 2}.json")
    # a checkpoint whose weights were written, the run killed before its index
    shutil.copy(
        directory / f"responder-{oldest}.data-00000-of-00001", directory / f"responder-{oldest - 1}.data-00000-of-00001"
    )
    train_responder(dialogues, config.with_overrides(epochs=2), checkpoint_dir=directory, resume=True)
    steps = sorted(_files_with_number(directory, "responder-", ".index"))
    assert len(steps) == 3 and steps[0] > oldest
    left = sorted(p.name for p in directory.iterdir() if p.name.startswith(("responder-", "state-")))
    expected = [f"responder-{s}.{part}" for s in steps for part in ("data-00000-of-00001", "index")]
    assert left == sorted(expected + [f"state-{s}.json" for s in steps])
