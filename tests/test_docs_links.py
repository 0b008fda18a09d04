"""Every relative link in the README and docs/ leads somewhere: the file exists and, where the
link names an anchor, the file has a heading of that anchor (GitHub's rule: lower case, spaces
to hyphens, punctuation dropped)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _outside_code(text: str) -> str:
    """``text`` without fenced blocks and inline code, where ``](...)`` is not a link."""
    kept, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            kept.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(kept)


def heading_anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the headings of the Markdown file at ``path`` (not those in code)."""
    found, fenced = set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        heading = None if fenced else re.match(r"^#{1,6} (.+)$", line)
        if heading:
            found.add(re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-"))
    return found


def test_heading_anchors_follow_githubs_rule(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# Health and readiness: point the load balancer at `/ready`\n"
        "## How the `ngrams` preset was chosen\n```sh\n# a comment, not a heading\n```\n",
        encoding="utf-8",
    )
    assert heading_anchors(page) == {
        "health-and-readiness-point-the-load-balancer-at-ready",
        "how-the-ngrams-preset-was-chosen",
    }


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(document: Path):
    broken = []
    for target in LINK.findall(_outside_code(document.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        linked = (document.parent / file_part).resolve() if file_part else document
        if not linked.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in heading_anchors(linked):
            broken.append(f"{target} (no heading with that anchor in {linked.relative_to(ROOT)})")
    assert not broken, f"{document.relative_to(ROOT)}: " + "; ".join(broken)


def test_every_document_is_linked_from_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    unlinked = [p.name for p in DOCUMENTS[1:] if f"](docs/{p.name}" not in readme]
    assert not unlinked, f"docs not linked from README.md: {unlinked}"
