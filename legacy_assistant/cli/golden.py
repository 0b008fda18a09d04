"""``legacy-assistant golden MODEL``: write or check a model's golden predictions.

For an intent model (``assistant.json``) the cases are sentences (``--sentences``); for a
responder (``responder.json``) they are dialogue contexts (``--contexts``), each answered
greedily under every condition.
"""

from __future__ import annotations

import argparse
import json
import re
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from legacy_assistant.artifacts.directory import DIGEST_FIELD, MODEL_MANIFESTS, check_written_files, digest_on_disk
from legacy_assistant.cli.arguments import home_path, non_negative_number, report_path
from legacy_assistant.cli.model_kind import RESPONDER_MANIFEST, is_responder
from legacy_assistant.cli.runtime_option import add_runtime_option, apply_runtime
from legacy_assistant.common.files import names_standard_output, write_text_atomically
from legacy_assistant.common.input_files import absent_file_problem
from legacy_assistant.common.terminal import SaidBeforeWriting, json_visible, say
from legacy_assistant.errors import ArtifactError, AssistantError

DEFAULT_TOLERANCE = 1e-5

# A UTF-16 surrogate alone (a golden file's "\ud83d", of a text cut inside an emoji): no UTF-8
# holds it, so its JSON keeps it as the escape it was read from.
_SURROGATE = re.compile("[\ud800-\udfff]")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("golden", help="write or check golden predictions (or replies) of a model")
    parser.add_argument("model", help="model or responder directory")
    parser.add_argument(
        "--sentences", type=home_path, help="intent model: text file, one sentence per line (write mode)"
    )
    parser.add_argument(
        "--contexts", type=home_path, help="responder: JSON list of contexts, each a list of turns (write mode)"
    )
    parser.add_argument("--check", action="store_true", help="compare the model with its golden.json instead")
    parser.add_argument("--golden", type=home_path, help="golden file (default: MODEL/golden.json)")
    parser.add_argument(
        "--tolerance",
        type=non_negative_number,
        help=f"max |Δp| allowed by --check (default {DEFAULT_TOLERANCE}); for a responder, max "
        "|Δ log p| of a reply (default 1e-4), whose tokens must be the same",
    )
    parser.add_argument(
        "--report",
        type=_report_path,
        help="with --check: also write the comparison as JSON to this file (- is standard output: the report alone)",
    )
    add_runtime_option(parser)
    parser.set_defaults(run=run)


def _report_path(text: str) -> str:
    """``--report``: ``-`` is standard output, as evaluate's ``--out -`` (it wrote a file named
    ``-`` in the working folder); a blank one is refused by :func:`run`, as a blank ``--golden``."""
    return report_path(text) if text.strip() else text


def run(args: argparse.Namespace) -> int:
    written = "--sentences" if args.sentences else "--contexts" if args.contexts else None
    if args.check and written:
        raise AssistantError(f"{written} writes a golden file and --check compares with one: give one of them")
    if not args.check and args.report is not None:
        raise AssistantError("--report is the comparison --check writes: give --check too")
    if not args.check and args.tolerance is not None:
        raise AssistantError("--tolerance is what --check allows: give --check too")
    for flag, value in (("--golden", args.golden), ("--report", args.report)):
        if value is not None and not value.strip():  # Path("") is ".": the model's own folder
            raise AssistantError(f"{flag} is an empty path: name a file")
    if is_responder(args.model):
        return run_responder(args)
    if args.contexts:
        raise AssistantError(f"{args.model}: --contexts is for a responder directory (with {RESPONDER_MANIFEST})")
    if not args.check and not args.sentences:  # before the model loads, which takes seconds
        raise AssistantError("--sentences is required to write golden predictions")
    apply_runtime(args)
    from legacy_assistant.classifier.golden import (
        GOLDEN_FILE,
        compare_golden,
        read_golden,
        read_sentences,
        write_golden,
    )
    from legacy_assistant.classifier.predictor import Predictor

    golden_path = Path(args.golden if args.golden is not None else Path(args.model) / GOLDEN_FILE)
    tolerance = DEFAULT_TOLERANCE if args.tolerance is None else args.tolerance
    _check_outputs(args, golden_path, GOLDEN_FILE)
    if args.check:
        read = _golden_identity(golden_path)
        golden = read_golden(_existing(golden_path))  # before the model loads, which takes seconds
        predictor = Predictor.load(args.model)
        _refuse_if_golden_replaced(args.model, golden_path, read)
        return _check(lambda: compare_golden(predictor, golden, golden_path), tolerance, args.report)
    predictor = Predictor.load(args.model)
    sentences = read_sentences(args.sentences)
    golden_path.parent.mkdir(parents=True, exist_ok=True)
    write_golden(predictor, sentences, golden_path, before=lambda: _refuse_if_replaced(args.model, predictor.manifest))
    say(f"wrote {len(sentences)} golden cases to {golden_path}")
    return 0


def run_responder(args: argparse.Namespace) -> int:
    """Golden greedy replies of a responder (a migrated one with ``--runtime tf2``)."""
    if args.sentences:
        raise AssistantError(f"{args.model} is a responder: give --contexts, not --sentences")
    apply_runtime(args)
    from legacy_assistant.responder.golden import (
        DEFAULT_TOLERANCE as RESPONDER_TOLERANCE,
    )
    from legacy_assistant.responder.golden import (
        GOLDEN_FILE,
        check_case_conditions,
        check_contexts,
        compare_golden,
        read_contexts,
        read_golden,
        write_golden,
    )
    from legacy_assistant.responder.responder import Responder

    golden_path = Path(args.golden if args.golden is not None else Path(args.model) / GOLDEN_FILE)
    tolerance = RESPONDER_TOLERANCE if args.tolerance is None else args.tolerance
    _check_outputs(args, golden_path, GOLDEN_FILE)
    if args.check:
        read = _golden_identity(golden_path)
        golden = read_golden(_existing(golden_path))

        def compare() -> dict:
            with Responder.load(args.model) as responder:
                _refuse_if_golden_replaced(args.model, golden_path, read)
                check_contexts(responder, [case["context"] for case in golden["cases"]], golden_path, "case")
                check_case_conditions(responder, golden["cases"], golden_path)
                return compare_golden(responder, golden)

        return _check(compare, tolerance, args.report)
    if not args.contexts:
        raise AssistantError("--contexts is required to write a responder's golden replies")
    contexts = read_contexts(args.contexts)
    with Responder.load(args.model) as responder:
        check_contexts(responder, contexts, args.contexts, "context")
        golden_path.parent.mkdir(parents=True, exist_ok=True)
        write_golden(
            responder, contexts, golden_path, before=lambda: _refuse_if_replaced(args.model, responder.info.manifest)
        )
        cases = len(contexts) * len(responder.conditions)
    say(f"wrote {cases} golden replies ({len(contexts)} contexts x every condition) to {golden_path}")
    return 0


def _refuse_if_replaced(model: str, loaded: dict[str, Any]) -> None:
    """Refuse to write golden replies of ``loaded`` once ``model`` holds another model (replaced
    by ``train --force`` or a migration while they were computed): in its folder they would be
    the new model's golden file, and its ``--check`` would fail for nothing."""
    folder, digest = Path(model), loaded.get(DIGEST_FIELD)
    if any((folder / name).is_file() and digest_on_disk(folder, name) == digest for name in MODEL_MANIFESTS):
        return
    raise AssistantError(
        f"{model} was replaced by another model while its golden replies were computed: nothing was written; "
        "run golden again for the model now there"
    )


def _golden_identity(golden_path: Path) -> tuple[int, int, int, int] | None:
    """The golden file as it is now (device, inode, size, modification time; None: no file), to
    tell afterwards whether it was replaced or rewritten without reading it again."""
    try:
        found = golden_path.stat()
    except OSError:
        return None
    if not stat.S_ISREG(found.st_mode):
        return None
    return found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns


def _refuse_if_golden_replaced(model: str, golden_path: Path, read: tuple[int, int, int, int] | None) -> None:
    """Refuse a check whose golden file lies in ``model``'s folder and is no longer the one read
    before the model was loaded (``read``: its :func:`_golden_identity` then): ``train --force``
    (or a migration) replaced the model meanwhile, and the model loaded is the new one, which the
    old model's golden cases do not describe (its check failed, or passed, for nothing)."""
    if Path(model).resolve() not in golden_path.resolve().parents or _golden_identity(golden_path) == read:
        return
    raise AssistantError(
        f"{model} was replaced by another model while it was checked against {golden_path}: nothing was "
        "compared; run golden --check again for the model now there"
    )


def _existing(golden_path: Path) -> Path:
    if golden_path.is_dir():
        raise AssistantError(f"{golden_path}: a folder, not a golden file: name the file")
    if golden_path.exists() and not golden_path.is_file():  # a pipe (--golden <(...)), /dev/null
        raise AssistantError(f"{golden_path}: not a golden file: {absent_file_problem(golden_path)}")
    if not golden_path.is_file():
        raise AssistantError(f"{golden_path}: golden file not found")
    return golden_path


def _check(compare: Callable[[], dict], tolerance: float, report_path: str | None) -> int:
    """Print the comparison ``compare()`` makes and its verdict; 0 when it is within ``tolerance``.
    A report written to standard output (``--report -``) is alone there, as evaluate's is (``| jq``):
    the comparison is not printed before it a second time, and the verdict goes to standard error."""
    report = compare()
    to_standard_output = report_path is not None and names_standard_output(report_path)
    said_to = sys.stderr if to_standard_output else None
    printed = SaidBeforeWriting()  # a reader that goes away (`... | head`) does not take --report with it
    if not to_standard_output:
        # texts as written (a Hebrew or Chinese case was a row of \u escapes), as evaluate's report
        # has them; a control or bidi character still printed as its escape
        printed.say(json_visible(_json_as_written(report, indent=2)))
    ok = report["max_abs_delta"] <= tolerance and not report["mismatches"]
    if report_path:
        Path(report_path).parent.mkdir(parents=True, exist_ok=True)  # as evaluate's --out does
        write_text_atomically(report_path, _json_as_written({**report, "ok": ok}, indent=2) + "\n")
    printed.raise_if_gone()
    verdict = "golden: OK" if ok else f"golden: FAILED (tolerance {tolerance}){_why(report, tolerance)}"
    say(verdict, file=said_to)
    return 0 if ok else 1


def _json_as_written(value: Any, indent: int | None = None) -> str:
    """``value`` as JSON with its texts as written (``ensure_ascii=False``), except a lone
    surrogate, which stays a ``\\u`` escape: the report written with it failed with a traceback
    (UTF-8 cannot encode it), and the printed one showed it as "?"."""
    return _SURROGATE.sub(
        lambda found: f"\\u{ord(found.group()):04x}", json.dumps(value, indent=indent, ensure_ascii=False)
    )


def _why(report: dict[str, Any], tolerance: float) -> str:
    """What failed, for the verdict's line: the changed answers, and the case of the largest
    difference when it is past the tolerance (``mismatches`` lists only changed answers, so an
    empty list beside FAILED read as a contradiction)."""
    reasons = []
    if report["mismatches"]:
        reasons.append(f"{len(report['mismatches'])} case(s) answer otherwise (mismatches)")
        same_text = sum(1 for mismatch in report["mismatches"] if "now_ids" in mismatch)
        if same_text:
            # a retrained model with another vocabulary says the same words with other ids
            reasons[-1] += f", {same_text} of them the same text from other token ids (stored_ids, now_ids)"
    largest = report.get("largest_delta")
    if report["max_abs_delta"] > tolerance:
        if largest is not None and largest["delta"] == report["max_abs_delta"]:
            case = _json_as_written(largest["text"] if "text" in largest else largest["context"])
            case = case if len(case) <= 200 else case[:197] + "..."  # a context's turns may be long
            under = f" under {largest['condition']!r}" if "condition" in largest else ""
            reasons.append(f"the largest difference, {largest['delta']:.3g}, is on {case}{under}")
        else:
            reasons.append(f"the largest difference is {report['max_abs_delta']:.3g}")
    return ": " + "; ".join(reasons) if reasons else ""


def _check_outputs(args: argparse.Namespace, golden_path: Path, golden_name: str) -> None:
    """Before any work: no file this run writes (the golden file, or --check's report) replaces
    a file of the model other than its golden file, or a file it reads."""
    if args.check:  # reads the golden file, may write a report
        written, inputs = ([args.report] if args.report is not None else []), [golden_path]
    else:  # reads sentences or contexts, writes the golden file
        written, inputs = [golden_path], [p for p in (args.sentences, args.contexts) if p]
    try:
        check_written_files(written, args.model, inputs, allowed=[golden_name])
    except ArtifactError as exc:
        if args.check or args.golden is not None:
            raise
        # the default is beside the model: in an install (the shipped models) this user may not write there
        raise ArtifactError(f"{exc}; write it elsewhere with --golden PATH (and --check with the same one)") from None
