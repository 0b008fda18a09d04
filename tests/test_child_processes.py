"""The Python processes the commands start (the server, the compat side of a responder's
migration) run this copy of the package, and import nothing from the folder the command was
run in: a console script never reads that folder, and neither may the processes it starts."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

# Modules the child processes import, written into the working folder: each fails if imported.
SHADOWING = ("gunicorn.py", "numpy.py", "flask.py", "compat/__init__.py", "legacy_assistant/__init__.py")


def _working_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    for name in SHADOWING:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(f"raise ImportError('{name} of the working folder was imported')\n")
    return folder


def test_the_server_process_imports_nothing_from_the_working_folder(tmp_path, monkeypatch):
    """serve re-executed itself as python -m legacy_assistant.serving.server, which puts the
    working folder first on the path: a flask.py or numpy.py there stopped every worker."""
    from legacy_assistant.serving import server

    class Executed(Exception):
        pass

    started = []

    def execv(path, args):
        started.append(list(args))
        raise Executed

    monkeypatch.setattr(os, "execv", execv)
    try:
        with pytest.raises(Executed):
            server.exec_server(server.ServerOptions(port=1))
    finally:
        os.environ.pop(server.PRIVATE_ENV, None)
    monkeypatch.undo()
    command = started[0][:-1]  # without its options: the usage message, once every module is imported
    assert command[0] == sys.executable
    run = subprocess.run(command, cwd=_working_folder(tmp_path), env=dict(os.environ, PYTHONPATH=str(ROOT)),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith("usage: python -m legacy_assistant.serving.server OPTIONS_JSON"), run.stderr


def test_the_migrations_compat_process_imports_nothing_from_the_working_folder(tmp_path, monkeypatch):
    """The compat side of migrate (a responder) ran as python -m, and a numpy.py in the folder
    migrate was run from ended it: "the compat model could not answer the parity contexts"."""
    from legacy_assistant.responder import migration

    started = []

    def popen(args, **kwargs):
        started.append((list(args), kwargs["env"]))

    monkeypatch.setattr(migration.subprocess, "Popen", popen)
    answers = migration._CompatAnswers(tmp_path / "no-responder", {}, [])
    monkeypatch.undo()
    try:
        command, env = started[0]
        run = subprocess.run(command, cwd=_working_folder(tmp_path), env=dict(env, PYTHONPATH=str(ROOT)),
                             capture_output=True, text=True, timeout=120)
    finally:
        answers._folder.cleanup()
    assert run.returncode == 1, run.stderr
    assert run.stderr.startswith("error: responder directory not found"), run.stderr  # it got to its work


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (["{here}", "/x", "/y"], ["{root}", "/x", "/y"]),  # a checkout run without installing: its root
        (["{here}", "/x", "{root}"], ["/x", "{root}"]),  # installed (site-packages), or on PYTHONPATH
        (["/x"], ["{root}", "/x"]),  # python -P or -I: nothing of the launcher's put first
    ],
    ids=["not-on-the-path", "on-the-path", "safe-path"],
)
def test_the_launcher_puts_its_own_copy_of_the_package_on_the_path_and_its_folder_off(monkeypatch, path, expected):
    from legacy_assistant.common import launch

    here, root = str(ROOT / "legacy_assistant" / "common"), str(ROOT)
    assert launch.PACKAGE_ROOT == root
    monkeypatch.setattr(sys, "path", [entry.format(here=here, root=root) for entry in path])
    launch._set_path()
    assert sys.path == [entry.format(here=here, root=root) for entry in expected]


def test_a_copy_of_the_package_in_a_zip_archive_starts_its_processes_too(tmp_path):
    """Python cannot run a file inside a zip archive as a script: with the package imported from
    a zip on PYTHONPATH, the server's and the migration's processes failed to start ("can't find
    '__main__' module in '.../pkg.zip/legacy_assistant/common/launch.py'"), where python -m had
    run them. The command is python -c then, and still imports nothing from the working folder."""
    import json
    import zipfile

    archive = tmp_path / "pkg.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for package in ("legacy_assistant", "compat"):
            for path in sorted((ROOT / package).rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    zipped.write(path, path.relative_to(ROOT).as_posix())
    env = dict(os.environ, PYTHONPATH=str(archive))
    asked = subprocess.run(
        [sys.executable, "-c", "import json; from legacy_assistant.common import launch; "
         "print(launch.__file__); print(json.dumps(launch.command('legacy_assistant.serving.server:main')))"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert asked.returncode == 0, asked.stderr
    where, command = asked.stdout.splitlines()
    assert where.startswith(str(archive) + os.sep), where
    for kept in (env, {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}):
        run = subprocess.run(json.loads(command), cwd=_working_folder(tmp_path), env=kept,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 2, run.stderr
        assert run.stderr.startswith("usage: python -m legacy_assistant.serving.server OPTIONS_JSON"), run.stderr


def test_a_package_reached_through_a_symbolic_link_starts_its_processes_from_the_same_folder(tmp_path):
    """The launcher resolved symbolic links to find the folder that holds the package: with the
    package folder linked into site-packages from a checkout, the process it started put the
    checkout first on its path, and imported the checkout's compat (and whatever else lies
    there) where the command had imported site-packages' own."""
    import json

    site = tmp_path / "site-packages"
    (site / "compat").mkdir(parents=True)
    (site / "compat" / "__init__.py").write_text("")
    (site / "probe.py").write_text(
        "import json, sys\n"
        "def main(argv):\n"
        "    import compat, legacy_assistant\n"
        "    print(json.dumps([legacy_assistant.__file__, compat.__file__, argv]))\n"
        "    return 0\n"
    )
    (site / "legacy_assistant").symlink_to(ROOT / "legacy_assistant", target_is_directory=True)
    env = dict(os.environ, PYTHONPATH=str(site))
    asked = subprocess.run(
        [sys.executable, "-c", "import json; from legacy_assistant.common import launch; "
         "print(json.dumps(launch.command('probe:main', 'x')))"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert asked.returncode == 0, asked.stderr
    run = subprocess.run(json.loads(asked.stdout), cwd=_working_folder(tmp_path), env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    package, compat, argv = json.loads(run.stdout)
    assert package == str(site / "legacy_assistant" / "__init__.py")
    assert compat == str(site / "compat" / "__init__.py")
    assert argv == ["x"]
