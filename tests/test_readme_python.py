"""The README's Python examples (the ``pycon`` block under "In Python"), and the examples that the
Predictor's and the Responder's docstrings are, run as written."""
import doctest
import re

from tests.helpers import DEFAULT_RESPONDER, ROOT
from tests.subprocesses import run_snippet

BLOCK = re.compile(r"^### In Python\n.*?^```pycon\n(.*?)^```\n", re.MULTILINE | re.DOTALL)


def test_the_python_examples_in_the_readme_give_what_they_show(monkeypatch):
    match = BLOCK.search((ROOT / "README.md").read_text(encoding="utf-8"))
    assert match, "the README has no pycon block under '### In Python'"
    examples = doctest.DocTestParser().get_doctest(match.group(1), {}, "README In Python", "README.md", 0)
    assert len(examples.examples) >= 10
    monkeypatch.chdir(ROOT)  # the examples name the shipped models relative to the checkout
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    results = runner.run(examples, out=report.append)
    assert results.failed == 0, "".join(report)


# The responder's examples, run in a process whose first TensorFlow session sized the intra-op
# thread pool at 4 threads.
MORE_CORES = """
import doctest, re, sys
from pathlib import Path
from legacy_assistant.responder.responder import Responder
Responder.load("exported/responder", intra_op_threads=4).close()
block = re.compile(PATTERN, re.MULTILINE | re.DOTALL).search(Path("README.md").read_text(encoding="utf-8")).group(1)
test = doctest.DocTestParser().get_doctest(block, {}, "README In Python", "README.md", 0)
test.examples = [
    e for e in test.examples if "responder" in e.source and "assistant" not in e.source.replace("legacy_assistant.", "")
]
report = []
results = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE).run(test, out=report.append)
print("".join(report))
print(results.attempted, results.failed)
"""


def test_the_responders_examples_give_what_they_show_on_a_machine_with_more_cores():
    """TensorFlow sizes the process's intra-op thread pool at its first session (one thread per
    usable CPU unless told): a seeded example must give the same reply whatever that size, here
    4 threads where the project's machine has 2."""
    result = run_snippet(MORE_CORES.replace("PATTERN", repr(BLOCK.pattern)), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    attempted, failed = map(int, result.stdout.split()[-2:])
    assert attempted >= 5 and failed == 0, result.stdout[-3000:]


def test_the_predictors_and_the_responders_docstring_examples_give_what_they_show(default_predictor):
    """Each class's docstring is a call and its result (``call -> result``): on the shipped models,
    loaded as the README's examples load them, the call gives that result."""
    from legacy_assistant.classifier.predictor import Predictor
    from legacy_assistant.responder.responder import Responder

    checker = doctest.OutputChecker()
    responder = Responder.load(DEFAULT_RESPONDER)
    try:
        for cls, model in ((Predictor, default_predictor), (Responder, responder)):
            call, shown = re.fullmatch(r"``(.+) -> (.+)``\.", cls.__doc__.splitlines()[0]).groups()
            got = repr(eval(f"model.{call}", {"model": model}))
            assert checker.check_output(shown + "\n", got + "\n", doctest.ELLIPSIS), (cls.__name__, shown, got)
    finally:
        responder.close()


def test_the_package_help_names_the_entry_points_and_each_exists():
    """help(legacy_assistant) says where to start, and every dotted name it gives imports."""
    import importlib

    import legacy_assistant

    named = re.findall(r"``(legacy_assistant(?:\.\w+)+)``", legacy_assistant.__doc__)
    for wanted in ("Predictor", "Responder", "Assistant", "open_store", "create_app", "errors"):
        assert any(name.endswith("." + wanted) for name in named), wanted
    for name in named:
        module, _, attribute = name.rpartition(".")
        assert hasattr(importlib.import_module(module), attribute), name
