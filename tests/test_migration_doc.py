"""docs/MIGRATION.md points at real code: every ``path::name`` and every file path it cites exists."""
import ast
import re
from pathlib import Path

from tests.helpers import ROOT

DOC = ROOT / "docs" / "MIGRATION.md"
# A repository path (it has a folder part), optionally ``::name`` or ``::Class.member``.
POINTER = re.compile(r"`([\w.-]+/[\w./-]+\.(?:py|md|txt|json|h5))(?:::([\w.]+))?`")
CONSTRUCTS = ("placeholder", "get_variable", "Session", "SavedModelBuilder", "Saver", "saved_model.loader.load",
              "disable_v2_behavior", "finalize", "seed", "as_default", "Keras 3")


def defined_names(path: Path) -> set[str]:
    """Top-level functions, classes and assignments, and ``Class.member`` for class bodies."""
    names: set[str] = set()

    def visit(body, prefix):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(prefix + node.name)
                if isinstance(node, ast.ClassDef):
                    visit(node.body, prefix + node.name + ".")
            elif isinstance(node, ast.Assign):
                names.update(prefix + t.id for t in node.targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(prefix + node.target.id)

    visit(ast.parse(path.read_text(encoding="utf-8")).body, "")
    return names


def test_every_code_pointer_exists():
    text = DOC.read_text(encoding="utf-8")
    pointers = POINTER.findall(text)
    assert len(pointers) >= 40
    missing = []
    for path, name in pointers:
        file = ROOT / path
        if not file.is_file():
            missing.append(f"{path} (no such file)")
        elif name and name not in defined_names(file):
            missing.append(f"{path}::{name} (not defined there)")
    assert not missing, "MIGRATION.md points at code that does not exist:\n" + "\n".join(missing)


def test_every_construct_the_project_uses_is_covered():
    text = DOC.read_text(encoding="utf-8")
    assert [c for c in CONSTRUCTS if c not in text] == []
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| ") and line.count("|") == 5]
    rows = [cells for cells in rows if cells[0].strip() not in ("compat.v1 construct", "---")]
    assert len(rows) >= 12
    one_sided = [cells[0].strip() for cells in rows if "::" not in cells[1] or "::" not in cells[3]]
    assert one_sided == [], "rows without a pointer to our code on both sides"


def test_pointer_check_catches_a_wrong_pointer(tmp_path):
    assert "Tf2Classifier.predict_proba" in defined_names(ROOT / "compat" / "tf2" / "saved_model.py")
    assert "Tf2Classifier.no_such_method" not in defined_names(ROOT / "compat" / "tf2" / "saved_model.py")


def test_the_sampling_row_names_the_draw_a_new_responder_makes():
    """The table's sampling row describes the draw exported today (the spec's default), and the
    draw of older responders only as theirs."""
    import dataclasses

    from compat.responder.spec import GUMBEL_DRAW, ResponderSpec

    default = next(f.default for f in dataclasses.fields(ResponderSpec) if f.name == "sample_draw")
    assert default == GUMBEL_DRAW
    lines = DOC.read_text(encoding="utf-8").splitlines()
    row = next(line for line in lines if line.startswith("| `SampleEmbeddingHelper"))
    ours = row.split("|")[2]
    assert "Gumbel-max" in ours and "compat/responder/sampling.py::draw_tokens" in ours
    assert ours.index("Gumbel-max") < ours.index("stateless_categorical"), "the old draw is named first, as if current"
