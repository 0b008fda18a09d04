"""The README's Python examples (the ``pycon`` block under "In Python") run as written."""
import doctest
import re

from tests.helpers import ROOT

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
