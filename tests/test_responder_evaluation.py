"""The responder's evaluation: the count-based baselines on data small enough to check by hand,
distinct-n on known strings, and ``evaluate-responder`` on a tiny model trained here (its
report's parts, the perplexity training measured, the condition classifier, the PNGs, and the
errors it gives for bad input)."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

from legacy_assistant.cli import main
from legacy_assistant.responder.baselines import BigramModel, UnigramModel, perplexity, predicted_ids
from legacy_assistant.responder.corpora import read_corpus
from legacy_assistant.responder.evaluation import (
    EvaluationSettings,
    capped_by_class,
    distinct_n,
    evaluated_dialogues,
    percentiles_ms,
    reply_figures,
)
from legacy_assistant.responder.vocabulary import END, PAD, START, UNK
from tests.helpers import ROOT, main_with_reader_gone
from tests.mood_corpus import HELD_OUT, PROMPTS, REPLIES, dialogue_line, write_corpus

# ids of a vocabulary of 6: the 4 special ones, then the words "a" (4) and "b" (5)
A, B, V = 4, 5, 6


# --- baselines ---------------------------------------------------------------------------------


def test_unigram_of_a_uniform_corpus_has_the_perplexity_of_its_outcomes():
    # UNK, END, a and b each counted 3 times: every outcome has p = 1/4 whatever k is
    model = UnigramModel.fit([[A, B, UNK, END]] * 3, V, k=0.5)
    probabilities = model.probabilities()
    np.testing.assert_allclose(probabilities[[UNK, END, A, B]], 0.25)
    assert probabilities[PAD] == probabilities[START] == 0.0
    held_out = [[B, B, END], [A, UNK, A, END]]
    total = sum(float(model.sequence_log_probs(s).sum()) for s in held_out)
    assert perplexity(total, 7) == pytest.approx(4.0)


def test_unigram_add_k_by_hand():
    model = UnigramModel.fit([[A, A, A, END]], V, k=1.0)  # N = 4, 4 outcomes
    expected = {A: Fraction(4, 8), END: Fraction(2, 8), UNK: Fraction(1, 8), B: Fraction(1, 8)}
    for token, p in expected.items():
        assert model.log_prob(token) == pytest.approx(math.log(p))
    assert model.tokens == 4


def test_bigram_witten_bell_by_hand():
    # unigram counts a 2, END 2, b 1 (N 5), add-1 over 4 outcomes: a 3/9, END 3/9, b 2/9, UNK 1/9
    model = BigramModel.fit([[A, END], [A, B, END]], V, k=1.0)
    uni = {A: Fraction(3, 9), END: Fraction(3, 9), B: Fraction(2, 9), UNK: Fraction(1, 9)}
    # after START: a twice, 1 distinct follower -> (c + T p_uni) / (2 + 1)
    assert model.log_prob(START, A) == pytest.approx(math.log((2 + uni[A]) / 3))
    assert model.log_prob(START, B) == pytest.approx(math.log(uni[B] / 3))
    # after a: END once, b once, 2 distinct
    assert model.log_prob(A, END) == pytest.approx(math.log((1 + 2 * uni[END]) / 4))
    assert model.log_prob(A, UNK) == pytest.approx(math.log(2 * uni[UNK] / 4))
    # END is never followed: the unigram
    assert model.log_prob(END, B) == pytest.approx(math.log(uni[B]))
    expected = [math.log((2 + uni[A]) / 3), math.log((1 + 2 * uni[B]) / 4), math.log((1 + uni[END]) / 2)]
    np.testing.assert_allclose(model.sequence_log_probs([A, B, END]), expected)


@pytest.mark.parametrize("previous", [START, A, B, END, UNK])
def test_bigram_sums_to_one_over_the_vocabulary(previous):
    rng = np.random.default_rng(previous)
    vocab = 40
    sequences = [list(rng.integers(4, vocab, size=rng.integers(1, 8))) + [END] for _ in range(30)]
    sequences += [[A, UNK, END], [B, A, END]]
    model = BigramModel.fit(sequences, vocab, k=0.1)
    probabilities = model.probabilities(previous)
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-12)
    assert probabilities[PAD] == probabilities[START] == 0.0
    assert (probabilities[predicted_ids(vocab)] > 0).all()
    for token in (A, B, UNK, END, 17):
        assert model.log_prob(previous, token) == pytest.approx(math.log(probabilities[token]))


def test_baselines_refuse_ids_that_are_never_reply_tokens():
    with pytest.raises(ValueError, match="cannot be a reply token"):
        UnigramModel.fit([[A, PAD, END]], V)
    with pytest.raises(ValueError, match="cannot be a reply token"):
        BigramModel.fit([[A, END]], V).sequence_log_probs([START, END])
    with pytest.raises(ValueError, match="k must be above 0"):
        UnigramModel.fit([[A, END]], V, k=0.0)
    with pytest.raises(ValueError, match="at least one token"):
        perplexity(0.0, 0)


# --- reply figures -----------------------------------------------------------------------------


def test_distinct_n_on_known_strings():
    replies = [["a", "b", "a", "b"], ["a", "b"]]
    assert distinct_n(replies, 1) == pytest.approx(2 / 6)
    assert distinct_n(replies, 2) == pytest.approx(2 / 4)  # (a b) three times, (b a) once
    assert distinct_n([["i", "am", "fine"], ["you", "are", "fine"]], 2) == 1.0
    assert distinct_n([["a"], ["b"]], 2) is None  # no bigram spans two replies: n/a, not "all repeated"
    assert distinct_n([], 1) is None
    assert reply_figures([[], []]) == {
        "replies": 2, "distinct_1": None, "distinct_2": None, "mean_length": 0.0, "empty": 2
    }
    assert reply_figures([])["mean_length"] is None
    figures = reply_figures([["a", "b"], [], ["a", "c", "d"]])
    assert figures == {
        "replies": 3,
        "distinct_1": pytest.approx(4 / 5),
        "distinct_2": 1.0,
        "mean_length": pytest.approx(5 / 3),
        "empty": 1,
    }


def test_perplexity_section_counts_end_and_unk_but_not_padding_in_all_three_models():
    """The model's and both baselines' perplexities on three held-out replies, worked out by hand:
    every reply token and its END count, <unk> too, the padding of a batch not."""
    from types import SimpleNamespace

    from legacy_assistant.responder import evaluation
    from legacy_assistant.responder.batching import EncodedPair

    # the stub model gives a token of id t the probability 1 / (t + 1), and 0 (log) at PAD
    def score(context_ids, condition_ids, reply_ids):
        return np.where(reply_ids == PAD, 0.0, -np.log(reply_ids + 1.0))

    responder = SimpleNamespace(
        spec=SimpleNamespace(max_context_turns=1), model=SimpleNamespace(score=score), vocabulary=[None] * V
    )
    replies = [(A, B, END), (UNK, END), (A, END)]  # 7 tokens, one <unk>; one batch, two rows padded
    data = evaluation.HeldOut([], [], [EncodedPair(((A,),), reply, 0) for reply in replies])
    train = [[A, A, END], [B, END]]
    section = evaluation.perplexity_section(responder, data, train, evaluation.EvaluationSettings(batch_size=3))
    assert (section["tokens"], section["replies"]) == (7, 3)
    assert section["unk_share"] == pytest.approx(1 / 7)

    def ppl(probabilities: list[Fraction]) -> float:
        return math.prod(probabilities) ** (-1 / len(probabilities))

    p = {A: Fraction(1, 5), B: Fraction(1, 6), END: Fraction(1, 4), UNK: Fraction(1, 2)}
    assert section["model"] == pytest.approx(ppl([p[t] for reply in replies for t in reply]))
    # add-one over the 4 ids a reply token can be (<unk>, END, a, b): counts 0, 2, 2, 1 of 5 tokens
    uni = {UNK: Fraction(1, 9), END: Fraction(3, 9), A: Fraction(3, 9), B: Fraction(2, 9)}
    assert section["unigram"] == pytest.approx(ppl([uni[t] for reply in replies for t in reply]))
    # Witten-Bell: START was followed by a and b (c 2, T 2), a by a and END (c 2, T 2), b by END
    # (c 1, T 1); <unk> was never a previous token, so after it the unigram alone
    after_start_a = (1 + 2 * uni[A]) / 4  # 5/12
    bigram = [
        after_start_a, (0 + 2 * uni[B]) / 4, (1 + 1 * uni[END]) / 2,  # a b END
        (0 + 2 * uni[UNK]) / 4, uni[END],  # <unk> END
        after_start_a, (1 + 2 * uni[END]) / 4,  # a END
    ]
    assert section["bigram"] == pytest.approx(ppl(bigram))
    assert section["baselines"]["fitted_on_replies"] == 2 and section["baselines"]["fitted_on_tokens"] == 5
    assert section["model_over_bigram"] == pytest.approx(ppl([p[t] for r in replies for t in r]) / ppl(bigram))


def test_percentiles_are_in_milliseconds():
    figures = percentiles_ms([0.001 * i for i in range(1, 101)])
    assert figures["p50_ms"] == pytest.approx(50.5)
    assert figures["p95_ms"] == pytest.approx(95.05)
    assert figures["mean_ms"] == pytest.approx(50.5)


def test_classifier_data_capped_at_the_second_most_frequent_label():
    labels = ["neutral"] * 10 + ["joy"] * 4 + ["sadness"] * 2
    texts = [f"{label} {i}" for i, label in enumerate(labels)]
    kept_texts, kept_labels = capped_by_class(texts, labels, seed=3)
    assert sorted(kept_labels) == ["joy"] * 4 + ["neutral"] * 4 + ["sadness"] * 2
    assert kept_texts == sorted(kept_texts, key=texts.index)  # the order kept
    assert all(text.split()[0] == label for text, label in zip(kept_texts, kept_labels))
    assert capped_by_class(texts, labels, seed=3) == (kept_texts, kept_labels)
    assert capped_by_class(texts, labels, seed=4) != (kept_texts, kept_labels)  # a seeded sample
    assert capped_by_class(["a", "b"], ["x", "x"], seed=1) == (["a", "b"], ["x", "x"])


# --- evaluate-responder on a tiny model ----------------------------------------------------------

TINY = {
    "embedding_size": 24,
    "encoder_units": 24,
    "context_units": 48,
    "decoder_units": 48,
    "condition_size": 8,
    "batch_size": 8,
    "learning_rate": 0.01,
    "min_count": 1,
    "patience": 0,
    "epochs": 30,
    "checkpoint_every": 1000,
}
SMALL = ["--samples", "12", "--latency-replies", "3", "--classifier-steps", "150"]





@pytest.fixture(scope="module")
def model(tmp_path_factory) -> dict:
    """A responder trained on ``moods.jsonl``, validated on ``held.jsonl``; exported with both
    recorded in its manifest."""
    from legacy_assistant.responder.artifact import export_responder_artifact
    from legacy_assistant.responder.config import ResponderTrainingConfig
    from legacy_assistant.responder.corpora import read_corpus
    from legacy_assistant.responder.training import train_responder

    folder = tmp_path_factory.mktemp("responder-evaluation")
    corpus = write_corpus(folder / "moods.jsonl", PROMPTS)
    held = write_corpus(folder / "held.jsonl", HELD_OUT)
    config = ResponderTrainingConfig(**TINY)
    trained = train_responder(read_corpus(corpus), config, held_out=read_corpus(held))
    out = folder / "moods"
    export_responder_artifact(trained, out, plot=False, sources=[corpus], held_out_sources=[held])
    return {"dir": out, "corpus": corpus, "held": held, "summary": trained.summary, "folder": folder}


def _run(argv: list[str]) -> tuple[int, str, str]:
    capture = pytest.MonkeyPatch()
    stdout, stderr = io.StringIO(), io.StringIO()
    capture.setattr(sys, "stdout", stdout)
    capture.setattr(sys, "stderr", stderr)
    try:
        status = main(["-q", *argv])
    finally:
        capture.undo()
    return status, stdout.getvalue(), stderr.getvalue()


@pytest.fixture(scope="module")
def evaluated(model) -> dict:
    """``evaluate-responder`` run once on the held-out corpus, the training files found from the manifest."""
    out = model["folder"] / "reports" / "held.json"
    status, printed, err = _run(
        ["evaluate-responder", str(model["dir"]), str(model["held"]), "--out", str(out), *SMALL]
    )
    assert status == 0, err[-2000:]
    return {"report": json.loads(out.read_text(encoding="utf-8")), "out": out, "printed": printed, "err": err}


def test_report_parts_keys_and_types(evaluated, model):
    report = evaluated["report"]
    assert set(report) >= {"model", "settings", "data", "perplexity", "replies", "conditions", "latency", "seconds"}
    assert report["model"] == "moods"
    data = report["data"]
    assert data["dialogues"] == len(HELD_OUT) * len(REPLIES) and data["pairs"] == data["dialogues"]
    assert data["contexts"] == 12
    assert data["training_files"] == [str(model["corpus"].resolve())]  # found by name and sha256
    assert data["training_files_missing"] == [] and data["is_training_data"] == []
    assert data["is_validation_data"] == [str(model["held"])]
    ppl = report["perplexity"]
    for key in ("model", "unigram", "bigram", "unk_share", "model_over_bigram"):
        assert isinstance(ppl[key], float) and math.isfinite(ppl[key]), key
    assert isinstance(ppl["tokens"], int) and ppl["tokens"] > ppl["replies"] == data["pairs"]
    modes = report["replies"]["modes"]
    assert list(modes) == ["human", "greedy", "beam", "sample", "sample_rerank"]
    for figures in modes.values():
        assert set(figures) == {"replies", "distinct_1", "distinct_2", "mean_length", "empty"}
        assert figures["replies"] == 12 and 0.0 <= figures["distinct_2"] <= 1.0
    assert report["replies"]["examples"][0]["human"] in REPLIES.values()
    latency = report["latency"]
    assert latency["batch"] == 1 and latency["calls"] == 3
    assert set(latency["modes"]) == {"greedy", "beam", "sample", "sample_rerank"}
    for figures in latency["modes"].values():
        assert 0 < figures["p50_ms"] <= figures["p95_ms"]
    assert "is the model's validation data" in evaluated["err"]


def test_perplexity_is_what_training_measured_on_the_same_dialogues(evaluated, model):
    # training's validation perplexity (trainer.evaluate, best epoch) against the SavedModel's score
    assert evaluated["report"]["perplexity"]["model"] == pytest.approx(model["summary"]["val_perplexity"], rel=1e-4)


def test_perplexity_is_the_public_score_over_every_reply_token_and_end(evaluated, model):
    """``Responder.score`` (the mean log-probability of a reply's tokens and END), summed over the
    held-out file's replies as read here, gives the report's perplexity and token count."""
    from legacy_assistant.responder.responder import Responder

    total, tokens = 0.0, 0
    with Responder.load(model["dir"]) as responder:
        for line in model["held"].read_text(encoding="utf-8").splitlines():
            prompt, reply = json.loads(line)
            counted = len(responder.vocabulary.tokenize(reply["text"])) + 1  # short replies: none is cut
            total += responder.score([prompt["text"]], reply["text"], reply["condition"]) * counted
            tokens += counted
    ppl = evaluated["report"]["perplexity"]
    assert ppl["tokens"] == tokens
    assert ppl["model"] == pytest.approx(math.exp(-total / tokens), rel=1e-5)


def test_baselines_count_the_same_tokens(evaluated):
    ppl = evaluated["report"]["perplexity"]
    # each held-out reply is one of the five training replies: the bigram knows them, the unigram less so
    assert ppl["bigram"] < ppl["unigram"]
    # tokens: every reply's tokens and END, as the model scores them
    from legacy_assistant.responder.vocabulary import tokenize

    assert ppl["tokens"] == sum(len(tokenize(r)) + 1 for r in REPLIES.values()) * len(HELD_OUT)
    assert ppl["baselines"]["fitted_on_replies"] == len(PROMPTS) * len(REPLIES)


def test_the_condition_steers_what_the_classifier_hears(evaluated):
    conditions = evaluated["report"]["conditions"]
    classifier = conditions["classifier"]
    assert classifier["classes"] == sorted(REPLIES)
    assert classifier["held_out_turns"] > 0 and classifier["balanced"] is True
    second = sorted(classifier["labelled_support"].values())[-2]
    assert classifier["train_support"]["neutral"] == second < classifier["labelled_support"]["neutral"]
    assert classifier["train_turns"] == sum(classifier["train_support"].values())
    for figures in classifier["per_class"].values():
        assert set(figures) == {"recall", "precision", "support"} and isinstance(figures["support"], int)
    assert conditions["requested"] == ["neutral", "anger", "joy", "fear", "sadness"]
    greedy = conditions["modes"]["greedy"]
    for condition in REPLIES:
        row = greedy["matrix"][condition]
        assert sum(row.values()) == pytest.approx(1.0)
        assert greedy["found"][condition] >= 0.75, (condition, row)
        assert greedy["when_neutral"][condition] == greedy["matrix"]["neutral"][condition]
    assert greedy["when_neutral"]["joy"] <= 0.25 and greedy["when_neutral"]["neutral"] == greedy["found"]["neutral"]
    assert set(conditions["modes"]) == {"greedy", "sample"}


def test_summary_and_pngs(evaluated):
    out = evaluated["out"]
    printed = evaluated["printed"]
    assert "perplexity   model" in printed and "latency      batch 1" in printed
    assert f"wrote held.json, held-quality.png, held-conditions.png in {out.parent}" in printed
    for name in ("held-quality.png", "held-conditions.png"):
        png = out.with_name(name)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_training_corpus_given_and_recognised(model):
    status, printed, err = _run(
        [
            "evaluate-responder",
            str(model["dir"]),
            str(model["corpus"]),
            "--train-corpus",
            str(model["corpus"]),
            "--samples",
            "5",
            "--latency-replies",
            "0",
            "--classifier-steps",
            "20",
            "--max-dialogues",
            "10",
            "--conditions",
            "JOY",  # named as everywhere else: stripped, in any case; each once
            " neutral",
            "joy",
        ]
    )
    assert status == 0, err[-2000:]
    assert "is the model's training data (same sha256)" in err
    assert "10 dialogues," in printed and "latency" not in printed
    # the baselines were fitted without the evaluated dialogues (they are the training ones)
    assert "labelled c when c / when neutral is asked: joy" in printed


def test_baselines_left_out_because_every_training_dialogue_is_evaluated_say_so(model, tmp_path):
    """Training corpora whose every dialogue is evaluated leave no reply to fit the baselines on:
    they were n/a without a word, beside a warning that they were fitted without those dialogues."""
    out = tmp_path / "report.json"
    status, printed, err = _run(
        ["evaluate-responder", str(model["dir"]), str(model["held"]), "--train-corpus", str(model["held"]),
         "--out", str(out), "--samples", "3", "--latency-replies", "0", "--classifier-steps", "20"]
    )
    assert status == 0, err[-2000:]
    ppl = json.loads(out.read_text(encoding="utf-8"))["perplexity"]
    assert ppl["unigram"] is None and ppl["bigram"] is None and "baselines" not in ppl
    reason = "every dialogue of the training corpora is among the evaluated ones: no reply is left to fit them on"
    assert ppl["baselines_skipped"] == reason
    assert f"             no baselines: {reason}" in printed.splitlines()


def test_evaluated_dialogues_shared_with_the_training_corpora_are_warned_of(model, tmp_path):
    """Not only a file with the training data's sha256: a copy with one dialogue more is as much
    training data, and the perplexity against the baselines (fitted without them) flatters.
    Counted over the dialogues --max-dialogues keeps (it said "12 of the 13 evaluated" where 5
    were evaluated)."""
    copy = tmp_path / "copy.jsonl"
    trained = model["corpus"].read_text(encoding="utf-8")
    new = dialogue_line("a dialogue the model never saw", "joy")
    copy.write_text(trained + new + "\n", encoding="utf-8")
    quick = ["--samples", "3", "--latency-replies", "0", "--classifier-steps", "10", "--max-dialogues", "5"]
    status, _, err = _run(["evaluate-responder", str(model["dir"]), str(copy), *quick])
    assert status == 0, err[-2000:]
    chosen = evaluated_dialogues(read_corpus(copy), EvaluationSettings(max_dialogues=5))
    shared = sum(1 for d in chosen if d.turns[0].text != "a dialogue the model never saw")
    assert len(chosen) == 5 and shared >= 4
    assert f"warning: {shared} of the 5 evaluated dialogue(s) also occur in the model's training" in err
    status, _, err = _run(["evaluate-responder", str(model["dir"]), str(model["held"]), *quick])
    assert status == 0 and "also occur in the model's training" not in err, err[-2000:]


def test_a_bad_corpus_is_refused_with_its_line(model, tmp_path, capsys):
    corpus = tmp_path / "broken.jsonl"
    lines = [dialogue_line(p, "joy") for p in HELD_OUT[:3]]
    lines.insert(1, '[{"text": "only one turn", "condition": "neutral"}]')
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    status, _, err = _run(["evaluate-responder", str(model["dir"]), str(corpus), *SMALL])
    assert status == 1
    error = [line for line in err.splitlines() if line.startswith("error: ")]
    assert error == [
        f"error: {corpus}: line 2: a dialogue needs at least 2 turns, got 1; "
        "--skip-bad-dialogues evaluates on the other dialogues"
    ]
    # a missing file gets no hint: skipping dialogues cannot help it
    status, _, err = _run(["evaluate-responder", str(model["dir"]), str(tmp_path / "absent.jsonl"), *SMALL])
    assert status == 1
    assert [line for line in err.splitlines() if line.startswith("error: ")] == [
        f"error: {tmp_path / 'absent.jsonl'}: file not found"
    ]


def test_a_responder_replaced_while_it_is_checked_is_checked_again_not_called_damaged(tmp_path, monkeypatch):
    """evaluate-responder while `train-responder --out DIR --force` swaps DIR: its first check
    of the model read the old manifest and then the new files, and refused the new, whole
    responder as "altered or truncated", where its load checks such a directory again."""
    import shutil

    from legacy_assistant.artifacts.directory import DIGEST_FIELD, manifest_digest
    from legacy_assistant.errors import ArtifactError
    from legacy_assistant.responder import artifact
    from tests.helpers import DEFAULT_RESPONDER

    folder, newer = tmp_path / "responder", tmp_path / "newer"
    shutil.copytree(DEFAULT_RESPONDER, folder)
    shutil.copytree(DEFAULT_RESPONDER, newer)
    manifest = json.loads((newer / "responder.json").read_text(encoding="utf-8"))
    manifest["name"] = "trained meanwhile"
    manifest[DIGEST_FIELD] = manifest_digest(manifest)
    (newer / "responder.json").write_text(json.dumps(manifest), encoding="utf-8")
    verify, calls = artifact.verify_responder, []

    def verify_while_replaced(path):
        calls.append(path)
        if len(calls) == 1:  # the old manifest read, then the swap, then the new model's files
            folder.rename(tmp_path / "retired")
            newer.rename(folder)
            raise ArtifactError(f"{folder}/saved_model/saved_model.pb: altered or truncated")
        return verify(path)

    monkeypatch.setattr(artifact, "verify_responder", verify_while_replaced)
    status, _, err = _run(["evaluate-responder", str(folder), str(tmp_path / "absent.jsonl"), *SMALL])
    assert status == 1
    assert [line for line in err.splitlines() if line.startswith("error: ")] == [
        f"error: {tmp_path / 'absent.jsonl'}: file not found"  # past the model's check, to the corpus
    ]


def test_a_training_corpus_of_a_layout_its_name_does_not_tell_is_read_with_train_format(model, tmp_path):
    """Trained with --format on a file named ``corpus.dat``: its layout is not in its name."""
    odd = tmp_path / "corpus.dat"
    odd.write_bytes(model["corpus"].read_bytes())
    quick = ["--samples", "3", "--latency-replies", "0", "--classifier-steps", "10", "--max-dialogues", "5"]
    status, _, err = _run(["evaluate-responder", str(model["dir"]), str(model["held"]), "--train-corpus", str(odd),
                           *quick])
    assert status == 1
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and len(err.strip().splitlines()) == 1, err  # one line, not a list of problems
    assert errors[0].startswith(f"error: training corpus {odd}: cannot tell the corpus layout from the suffix '.dat'")
    assert errors[0].endswith("(name the training corpora's layout with --train-format)")
    status, printed, err = _run(["evaluate-responder", str(model["dir"]), str(model["held"]), "--train-corpus",
                                 str(odd), "--train-format", "cakechat", *quick])
    assert status == 0, err[-2000:]
    assert "bigram" in printed  # the baselines were fitted on it
    status, _, err = _run(["evaluate-responder", str(model["dir"]), str(model["held"]), "--train-corpus",
                           str(tmp_path / "absent.jsonl"), *quick])
    assert status == 1 and err.strip().splitlines() == [
        f"error: training corpus {tmp_path / 'absent.jsonl'}: file not found"
    ]


def test_a_condition_the_model_does_not_know_is_one_line_naming_the_dialogue(model, tmp_path):
    corpus = tmp_path / "other.jsonl"
    surprised = json.dumps([{"text": HELD_OUT[1], "condition": "neutral"}, {"text": "wow", "condition": "surprise"}])
    corpus.write_text(dialogue_line(HELD_OUT[0], "joy") + "\n" + surprised + "\n", encoding="utf-8")
    status, _, err = _run(["evaluate-responder", str(model["dir"]), str(corpus), *SMALL])
    assert status == 1
    assert [line for line in err.splitlines() if line.startswith("error: ")] == [
        f"error: {corpus}:2: condition 'surprise' is not one of the model's: neutral, anger, joy, fear, sadness"
    ]


def test_too_few_dialogues_to_hold_any_out_leave_the_classifier_unmeasured(model, tmp_path):
    corpus = tmp_path / "one.jsonl"
    corpus.write_text(dialogue_line(HELD_OUT[0], "joy") + "\n", encoding="utf-8")
    report_path = tmp_path / "report.json"
    status, printed, err = _run(
        ["evaluate-responder", str(model["dir"]), str(corpus), *SMALL, "--train-corpus", str(model["corpus"]),
         "--out", str(report_path)]
    )
    assert status == 0, err[-2000:]
    assert "not measured (no dialogue could be held out for it)" in printed
    classifier = json.loads(report_path.read_text())["conditions"]["classifier"]
    assert classifier["accuracy"] is None and classifier["held_out_turns"] == 0


def test_a_report_without_conditions_removes_the_conditions_figure_of_an_earlier_report(model, tmp_path):
    corpus = tmp_path / "neutral.jsonl"  # one condition: no condition classifier, no conditions figure
    corpus.write_text("".join(dialogue_line(p, "neutral") + "\n" for p in HELD_OUT[:2]), encoding="utf-8")
    report_path = tmp_path / "report.json"
    stale = tmp_path / "report-conditions.png"
    stale.write_bytes(b"\x89PNG\r\n\x1a\n of another run")
    status, printed, err = _run(
        ["evaluate-responder", str(model["dir"]), str(corpus), *SMALL, "--train-corpus", str(model["corpus"]),
         "--out", str(report_path)]
    )
    assert status == 0, err[-2000:]
    assert "modes" not in json.loads(report_path.read_text())["conditions"]
    assert f"wrote report.json, report-quality.png in {tmp_path}" in printed
    assert not stale.exists()


def test_a_reader_that_goes_away_leaves_the_report_written(model, tmp_path):
    """``evaluate-responder --out R | head``: the summary met the closed pipe before the report
    was written, and the command ended without it."""
    report_path = tmp_path / "report.json"
    argv = ["-q", "evaluate-responder", str(model["dir"]), str(model["held"]), *SMALL, "--latency-replies", "0",
            "--out", str(report_path)]
    assert main_with_reader_gone(argv) == 141
    assert json.loads(report_path.read_text(encoding="utf-8"))["model"] == "moods"
    assert (tmp_path / "report-quality.png").is_file()


def test_unknown_conditions_are_refused_before_the_corpora_are_read(model, tmp_path):
    status, _, err = _run(["evaluate-responder", str(model["dir"]), str(tmp_path / "missing.jsonl"),
                           "--conditions", "Joy", "bored"])
    assert status == 1
    assert [line for line in err.splitlines() if line.startswith("error: ")] == [
        "error: --conditions: unknown bored; the model knows neutral, anger, joy, fear, sadness"
    ]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--conditions", "bored"], "--conditions: unknown bored; the model knows neutral, anger, joy, fear, sadness"),
    ],
)
def test_bad_options_are_one_error_line(model, extra, expected):
    status, _, err = _run(["evaluate-responder", str(model["dir"]), str(model["held"]), *extra])
    assert status == 1
    assert [line for line in err.splitlines() if line.startswith("error: ")] == [f"error: {expected}"]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--samples", "0"], "--samples: must be at least 1, got 0"),
        (["--max-dialogues", "0"], "--max-dialogues: must be at least 1, got 0"),
        (["--latency-replies", "-1"], "--latency-replies: must be at least 0, got -1"),
        (["--classifier-steps", "0"], "--classifier-steps: must be at least 1, got 0"),
        (["--seed", "-1"], "--seed: must be at least 0, got -1"),
        (["--seed", str(2**32 - 1)], f"--seed: must be at most {2**32 - 2}, got {2**32 - 1}"),
        (["--condition-strength", "11"], "--condition-strength: must be a number from 0 to 10, got 11"),
        (["--condition-strength", "nan"], "--condition-strength: must be a number from 0 to 10, got nan"),
        (["--out", ""], "--out: is an empty path"),  # the whole evaluation, and no report written
    ],
)
def test_numbers_out_of_range_are_usage_errors_naming_the_flag(capsys, extra, expected):
    """Refused as argparse refuses any bad flag (status 2), before anything is read."""
    with pytest.raises(SystemExit) as refused:
        main(["evaluate-responder", "no-model", "no-corpus.jsonl", *extra])
    assert refused.value.code == 2
    assert expected in capsys.readouterr().err


def test_parsing_the_command_imports_no_tensorflow():
    code = (
        "import sys\n"
        "from legacy_assistant.cli import build_parser\n"
        "args = build_parser().parse_args(['evaluate-responder', 'm', 'c.jsonl', '--samples', '3'])\n"
        "assert args.samples == 3 and args.corpora == ['c.jsonl']\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'tensorflow'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_condition_guidance_is_measured_when_asked(model, evaluated, tmp_path):
    out = tmp_path / "guided.json"
    status, printed, err = _run(
        ["evaluate-responder", str(model["dir"]), str(model["held"]), "--out", str(out), "--condition-strength", "2",
         *SMALL]
    )
    assert status == 0, err[-2000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["decoding"]["condition_strength"] == 2.0
    assert evaluated["report"]["decoding"]["condition_strength"] == 0.0
    assert "condition guidance, strength 2" in printed and "condition guidance" not in evaluated["printed"]


def test_model_and_human_replies_are_cut_alike(default_responder, monkeypatch):
    """A reply that reaches the decoding limit has no END and one token more than any reply that
    ends; lengths and distinct-n compare it cut as the human replies are."""
    from legacy_assistant.responder import evaluation
    from legacy_assistant.responder.corpora import Dialogue, Turn

    long_human = " ".join(["word"] * 60)
    dialogues = [Dialogue((Turn("hi there", "neutral"), Turn(long_human, "neutral")), f"d{i}") for i in range(3)]
    settings = evaluation.EvaluationSettings(samples=3, reply_modes=("greedy",))
    data = evaluation.held_out_data(default_responder, dialogues, settings)
    limit = default_responder.max_length
    word = default_responder.vocabulary.encode_reply("word", limit)[0]
    monkeypatch.setattr(evaluation, "decode_replies", lambda responder, pairs, *rest: [[word] * limit for _ in pairs])
    section, _ = evaluation.replies_section(default_responder, data, [0, 1, 2], settings)
    assert section["modes"]["greedy"]["mean_length"] == section["modes"]["human"]["mean_length"] == limit - 1


def test_empty_replies_are_left_out_of_the_condition_shares(monkeypatch):
    """An empty reply says no emotion: the classifier's label for "" (whatever it ranks first)
    must not count as hearing one. Shares are over the other replies, ``empty_replies`` says how
    many were left out, and a condition whose replies are all empty has no shares (n/a)."""
    from types import SimpleNamespace

    from legacy_assistant.responder import evaluation
    from legacy_assistant.responder.batching import EncodedPair

    conditions = ["neutral", "anger", "joy"]
    words = {"plain": 4, "happy": 5}
    by_condition = {  # the replies decoded for the 4 contexts under each requested condition
        "neutral": [[], [], [words["plain"]], [words["plain"]]],
        "joy": [[], [words["happy"]], [words["happy"]], [words["plain"]]],
        "anger": [[], [], [], []],
    }
    names = {v: k for k, v in words.items()}
    vocabulary = SimpleNamespace(decode=lambda ids: " ".join(names[i] for i in ids))
    responder = SimpleNamespace(
        conditions=conditions, trained_conditions=conditions, default_condition="neutral", vocabulary=vocabulary
    )
    monkeypatch.setattr(
        evaluation,
        "decode_replies",
        lambda responder, pairs, *rest: by_condition[conditions[pairs[0].condition]],
    )

    class Classifier:  # labels "" joy, as a classifier that ranks joy first for no features does
        classes = ["anger", "joy", "neutral"]

        @staticmethod
        def label(texts):
            return ["joy" if not text or "happy" in text else "neutral" for text in texts]

    data = SimpleNamespace(encoded=[EncodedPair(((6,),), (END,), 0) for _ in range(4)])
    settings = evaluation.EvaluationSettings(condition_modes=("greedy",))
    section = evaluation.condition_section(responder, data, [0, 1, 2, 3], Classifier(), {}, settings)
    greedy = section["modes"]["greedy"]
    assert greedy["empty_replies"] == {"neutral": 2, "anger": 4, "joy": 1}
    assert greedy["matrix"]["neutral"] == {"anger": 0.0, "joy": 0.0, "neutral": 1.0}
    assert greedy["matrix"]["joy"] == {"anger": 0.0, "joy": pytest.approx(2 / 3), "neutral": pytest.approx(1 / 3)}
    assert greedy["matrix"]["anger"] == {"anger": None, "joy": None, "neutral": None}
    assert greedy["found"] == {"neutral": 1.0, "anger": None, "joy": pytest.approx(2 / 3)}
    assert greedy["when_neutral"] == {"neutral": 1.0, "anger": 0.0, "joy": 0.0}
    assert greedy["vs_neutral"] == {"neutral": 1.0, "anger": None, "joy": None}
    json.dumps(section)  # None, not NaN: the report stays valid JSON

    report = {
        "data": {"dialogues": 4, "pairs": 4, "contexts": 4},
        "perplexity": {"model": 1.0, "unigram": 2.0, "bigram": 1.5, "tokens": 8, "unk_share": 0.0},
        "replies": {"modes": {}},
        "conditions": {**section, "classifier": {"preset": "ngrams", "accuracy": None}},
    }
    line = [x for x in evaluation.summary_lines(report) if x.startswith("conditions   greedy")][0]
    assert "neutral 1.00/1.00, anger n/a/0.00, joy 0.67/0.00" in line
    assert line.endswith("(7 empty replies left out)")


def test_a_model_with_conditions_not_in_lower_case_is_refused_clearly(model, tmp_path):
    """Trained before corpus conditions were read in lower case, a model may know 'Joy': its
    corpora's 'Joy' turns would now be scored as 'joy', silently another condition."""
    import shutil

    from legacy_assistant.artifacts.directory import manifest_digest, write_json

    copy = tmp_path / "cased"
    shutil.copytree(model["dir"], copy)
    manifest = json.loads((copy / "responder.json").read_text(encoding="utf-8"))
    manifest["conditions"] = [c.capitalize() if c == "joy" else c for c in manifest["conditions"]]
    manifest["manifest_sha256"] = manifest_digest(manifest)
    write_json(copy / "responder.json", manifest)
    status, _, err = _run(["evaluate-responder", str(copy), str(model["held"]), *SMALL])
    assert status == 1
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "condition(s) 'Joy' are not in lower case" in errors[0], err[-2000:]


def test_the_condition_classifier_says_nothing_of_patterns_and_intents_or_repeated_dialogues(caplog):
    """Its training data are corpus turns and conditions, some of them emoji, and an evaluated
    corpus may repeat a dialogue: the intent trainer's and the responder trainer's warnings
    would speak of things the user never wrote."""
    import logging

    from legacy_assistant.responder import evaluation
    from legacy_assistant.responder.corpora import Dialogue, Turn

    dialogues = [
        Dialogue((Turn(f"i am so happy today {i}", "joy"), Turn(":)", "joy"), Turn(f"that is sad {i}", "sadness")),
                 f"t#{i}")
        for i in range(12)
    ]
    dialogues += dialogues[:3]
    settings = evaluation.EvaluationSettings(classifier_steps=5)
    with caplog.at_level(logging.INFO):
        classifier, figures = evaluation.train_condition_classifier(dialogues, settings)
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [m for m in said if "holds no word" in m or "repeat another" in m], said
    assert set(classifier.classes) == {"joy", "sadness"}


def test_the_featureless_warnings_are_left_out_in_the_evaluating_thread_only(caplog):
    import logging
    import threading

    from legacy_assistant.classifier import training
    from legacy_assistant.responder import evaluation

    flagged = {training.FEATURELESS_FLAG: True}
    with caplog.at_level(logging.WARNING, logger=training.log.name):
        with evaluation._quiet_about_featureless_patterns():
            training.log.warning("here", extra=flagged)
            other = threading.Thread(target=lambda: training.log.warning("other thread", extra=flagged))
            other.start()
            other.join()
            training.log.warning("unflagged here")
        training.log.warning("after", extra=flagged)
    assert [r.getMessage() for r in caplog.records] == ["other thread", "unflagged here", "after"]
    assert not training.log.filters


def test_the_search_for_training_corpora_reads_only_regular_files(tmp_path):
    """A named pipe (or a link to /dev/zero) with a training corpus's name near the evaluated
    corpus blocked the search for good: it was read to hash it."""
    import hashlib
    import os
    import threading

    from legacy_assistant.responder.evaluation import find_training_corpora

    good = tmp_path / "data" / "train.jsonl"
    good.parent.mkdir()
    good.write_text("[]\n", encoding="utf-8")
    manifest = {"source": {"corpora": [{"name": "train.jsonl", "sha256": hashlib.sha256(b"[]\n").hexdigest()},
                                       {"name": "rare.jsonl", "sha256": "0" * 64}]}}
    os.mkfifo(tmp_path / "train.jsonl")
    (tmp_path / "rare.jsonl").symlink_to("/dev/zero")
    evaluated = tmp_path / "eval.jsonl"
    evaluated.write_text("[]\n", encoding="utf-8")
    result: list = []
    searching = threading.Thread(target=lambda: result.append(find_training_corpora(manifest, [evaluated])), daemon=True)
    searching.start()
    searching.join(30)
    assert result == [([good], ["rare.jsonl"])]


def test_the_baseline_is_decoded_when_only_other_conditions_are_requested(monkeypatch):
    """``--conditions joy`` still needs the replies under neutral for its ratio: they were not
    decoded, and every ratio came out empty."""
    from types import SimpleNamespace

    from legacy_assistant.responder import evaluation
    from legacy_assistant.responder.batching import EncodedPair

    conditions = ["neutral", "joy"]
    replies = {"neutral": [[4], [4], [4], [5]], "joy": [[5], [5], [4], [4]]}  # 5 is "happy"
    names = {4: "plain", 5: "happy"}
    decoded: list[str] = []

    def decode(responder, pairs, *rest):
        decoded.append(conditions[pairs[0].condition])
        return replies[decoded[-1]]

    monkeypatch.setattr(evaluation, "decode_replies", decode)
    vocabulary = SimpleNamespace(decode=lambda ids: " ".join(names[i] for i in ids))
    responder = SimpleNamespace(
        conditions=conditions, trained_conditions=conditions, default_condition="neutral", vocabulary=vocabulary
    )

    class Classifier:
        classes = ["joy", "neutral"]

        @staticmethod
        def label(texts):
            return ["joy" if "happy" in text else "neutral" for text in texts]

    data = SimpleNamespace(encoded=[EncodedPair(((6,),), (END,), 0) for _ in range(4)])
    settings = evaluation.EvaluationSettings(condition_modes=("greedy",), conditions=("joy",))
    section = evaluation.condition_section(responder, data, [0, 1, 2, 3], Classifier(), {}, settings)
    greedy = section["modes"]["greedy"]
    assert decoded == ["joy", "neutral"] and section["requested"] == ["joy"]
    assert greedy["found"] == {"joy": 0.5} and greedy["when_neutral"] == {"joy": 0.25}
    assert greedy["vs_neutral"] == {"joy": 2.0}


def test_the_condition_classifier_takes_a_seeded_sample_of_a_large_corpus():
    """Every turn of a 100,000-dialogue corpus trained it (past 8 GB), --max-dialogues or not."""
    from legacy_assistant.responder import evaluation
    from legacy_assistant.responder.corpora import Dialogue, Turn

    dialogues = [
        Dialogue((Turn(f"so happy {i}", "joy"), Turn(f"how sad {i}", "sadness"), Turn(f"fine {i}", "neutral")), f"d#{i}")
        for i in range(60)
    ]
    settings = evaluation.EvaluationSettings(classifier_steps=5, classifier_max_turns=40, classifier_balance=False)
    _, figures = evaluation.train_condition_classifier(dialogues, settings)
    assert figures["train_turns"] == 40 and sum(figures["train_support"].values()) == 40
    assert figures["held_out_turns"] == 10  # a quarter as many measure it
    again = evaluation.train_condition_classifier(dialogues, settings)[1]
    assert again["train_support"] == figures["train_support"]  # the same sample for the same seed
    whole = evaluation.EvaluationSettings(classifier_steps=5, classifier_balance=False)
    assert evaluation.train_condition_classifier(dialogues, whole)[1]["train_turns"] == 144  # 48 dialogues x 3
    from legacy_assistant.errors import ConfigError

    with pytest.raises(ConfigError, match="classifier_max_turns must be at least 4"):
        evaluation.EvaluationSettings(classifier_max_turns=3)


def test_held_out_and_training_replies_tokenize_each_distinct_turn_once(model, monkeypatch):
    """Both read each turn more than once (the overlap check, the pairs, the encoding): each
    distinct text is tokenized once, however many turns there are (more than the token cache
    holds), and none is remembered after."""
    from legacy_assistant.common.caching import ShortTextCache
    from legacy_assistant.responder import vocabulary
    from legacy_assistant.responder.corpora import Dialogue, Turn
    from legacy_assistant.responder.evaluation import EvaluationSettings, held_out_data, training_replies
    from legacy_assistant.responder.responder import Responder

    processor = vocabulary._processor(vocabulary.TEXT_CONFIG)
    tokenized: list[str] = []

    def counting(text):
        tokenized.append(text)
        return type(processor).tokens(processor, text)

    n = vocabulary.CACHED_TURNS // 3 + 10  # four distinct turns a dialogue: more turns than the cache holds
    train = [
        Dialogue(
            (Turn(f"once {i} upon a time"), Turn(f"there was {i} of them", "joy"), Turn(f"and then {i} ?"),
             Turn(f"the end {i} ."), Turn("ok .")),
            f"tale#{i}",
        )
        for i in range(n)
    ]
    held = [Dialogue((Turn(f"held {i} ?"), Turn(f"reply {i} .", "joy"), Turn(f"again {i} .")), f"held#{i}")
            for i in range(n)]
    responder = Responder.load(model["dir"])
    try:
        monkeypatch.setattr(processor, "tokens", counting)
        # a cache of its own: these thousands of turns would fill the process's, which other tests count
        monkeypatch.setattr(vocabulary, "_cached_tokens", ShortTextCache(
            vocabulary._tokens, vocabulary.CACHED_TURNS, vocabulary.CACHED_TURN_CHARS))
        for _ in range(2):  # and again, the same texts: nothing kept between calls
            tokenized.clear()
            data = held_out_data(responder, held, EvaluationSettings())
            assert len(data.pairs) == 2 * n
            assert len(tokenized) == len(set(tokenized)) == 3 * n
            tokenized.clear()
            assert len(training_replies(responder, train, held)) == 4 * n
            assert len(tokenized) == len(set(tokenized))  # the held-out turns too, for the overlap check
            assert set(tokenized) == {turn.text for dialogue in train + held for turn in dialogue.turns}
    finally:
        responder.close()


def test_a_corpus_under_one_condition_gets_no_classifier_in_the_corpus_words(monkeypatch):
    """ChatterBot's turns are all neutral: the skipped classifier was explained as "training
    needs at least 2 intents with patterns", words of the intent trainer, not of a corpus; and
    where the other conditions were all held out, "found 1" read as if the corpus had one."""
    from legacy_assistant.errors import TrainingError
    from legacy_assistant.responder import evaluation
    from legacy_assistant.responder.corpora import Dialogue, Turn

    neutral = [Dialogue((Turn(f"hello {i}"), Turn(f"hi there {i}")), f"c#{i}") for i in range(6)]
    settings = evaluation.EvaluationSettings(classifier_steps=5)
    with pytest.raises(TrainingError) as raised:
        evaluation.train_condition_classifier(neutral, settings)
    assert str(raised.value) == (
        "every turn of the corpus is under one condition ('neutral'): there is nothing to tell apart"
    )

    joyful = Dialogue((Turn("hello"), Turn("i am so happy", "joy")), "c#joy")
    monkeypatch.setattr(evaluation, "split_dialogues", lambda dialogues, *args, **kwargs: (neutral, [joyful]))
    with pytest.raises(TrainingError) as raised:
        evaluation.train_condition_classifier([*neutral, joyful], settings)
    assert str(raised.value) == (
        "the 6 dialogue(s) it trains on are all under one condition ('neutral'); the corpus's other condition(s), "
        "'joy', are only in the 1 held out to measure it"
    )


@pytest.mark.parametrize("drop", [False, True])
def test_the_baselines_see_the_repeated_dialogues_the_model_trained_on(drop):
    """A model trained with --drop-repeated-dialogues saw one copy of each: its baselines were
    fitted on every copy, weighing the repeated replies as the model never did."""
    from types import SimpleNamespace

    from legacy_assistant.responder.artifact import verify_responder
    from legacy_assistant.responder.corpora import Dialogue, Turn
    from legacy_assistant.responder.evaluation import training_replies
    from tests.helpers import DEFAULT_RESPONDER

    info = verify_responder(DEFAULT_RESPONDER)
    manifest = {**info.manifest, "training": {**info.manifest.get("training", {}), "drop_repeated_dialogues": drop}}
    responder = SimpleNamespace(info=SimpleNamespace(manifest=manifest), vocabulary=info.vocabulary, spec=info.spec)
    repeated = Dialogue((Turn("how are you ?"), Turn("fine , thanks .", "joy")), "a#1")
    other = Dialogue((Turn("and you ?"), Turn("good .")), "a#2")
    replies = training_replies(responder, [repeated, other, repeated, repeated], [])
    texts = ("fine , thanks .", "good .")
    expected = [info.vocabulary.encode_reply(text, info.spec.max_reply_tokens) for text in texts]
    assert replies == (expected if drop else [expected[0], expected[1], expected[0], expected[0]])
