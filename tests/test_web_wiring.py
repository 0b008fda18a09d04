"""How the web package is wired: its modules never take names from the package itself."""
import ast
from pathlib import Path

import legacy_assistant.web

WEB = Path(legacy_assistant.web.__file__).resolve().parent


def imports_of_the_package(path: Path) -> list[str]:
    """``import legacy_assistant.web`` and ``from legacy_assistant.web import X`` (or a relative
    ``from . import X``) in ``path``, as text."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name == "legacy_assistant.web"]
        elif isinstance(node, ast.ImportFrom):
            package = node.module == "legacy_assistant.web" and node.level == 0
            if package or (node.level == 1 and node.module is None):
                found.append(f"from {node.module or '.'} import {', '.join(a.name for a in node.names)}")
    return found


def test_no_module_of_the_web_package_imports_the_package():
    # the package's __init__ imports the factory, which imports every blueprint: a blueprint that
    # imported the package would import itself half-initialised
    offenders = {path.name: imports_of_the_package(path) for path in sorted(WEB.glob("*.py"))
                 if path.name != "__init__.py"}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_check_sees_such_an_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from legacy_assistant.web import leased\nfrom . import metrics\n", encoding="utf-8")
    assert imports_of_the_package(bad) == ["from legacy_assistant.web import leased", "from . import metrics"]


def test_create_app_is_still_importable_from_the_package():
    from legacy_assistant.web import create_app
    from legacy_assistant.web.app import create_app as factory

    assert create_app is factory
