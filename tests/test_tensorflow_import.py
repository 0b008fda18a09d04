"""Both runtimes import TensorFlow without Keras (compat.environment.keras_deferred), and leave
Keras reachable: nothing about the process changes but the time and memory Keras took."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from types import SimpleNamespace

import pytest

from compat.environment import _restore_keras_path
from compat.runtime import tf
from tests.subprocesses import run_python

# 2.12 imports Keras with TensorFlow whatever the environment says; 2.15 reads the variable as the
# Keras-3 releases do (both checked in their matrix cells; 2.13 and 2.14 are in no cell).
KERAS_IMPORTED_ANYWAY = tuple(int(part) for part in tf.__version__.split(".")[:2]) < (2, 15)
# keras_deferred steps aside where tf_keras is installed (TensorFlow would import it instead).
TF_KERAS_INSTALLED = importlib.util.find_spec("tf_keras") is not None

REPORT = (
    "import importlib.util, json, os, sys\n"
    "import {runtime} as runtime\n"
    "import tensorflow\n"
    "report = {{\n"
    "    'keras_at_import': 'keras' in sys.modules,\n"
    "    'variable': os.environ.get('TF_USE_LEGACY_KERAS'),\n"
    "    'none_on_path': None in tensorflow.__path__,\n"
    "    'tensorflow_keras_found': importlib.util.find_spec('tensorflow.keras') is not None,\n"
    "}}\n"
    "report['dense'] = runtime.tf.keras.layers.Dense.__module__\n"
    "report['keras_after_use'] = 'keras' in sys.modules\n"
    "print(json.dumps(report))\n"
)


def _report(runtime: str, **environment: str) -> dict:
    """The child's report, run with ``environment`` and no ``TF_USE_LEGACY_KERAS`` but the one given."""
    environment.setdefault("TF_USE_LEGACY_KERAS", "")
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update({name: value for name, value in environment.items() if value})
    for name in [name for name, value in environment.items() if not value]:
        os.environ.pop(name, None)
    try:
        result = run_python(["-c", REPORT.format(runtime=runtime)])
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("runtime", ["compat.runtime", "compat.tf2.runtime"])
def test_tensorflow_loads_without_keras_and_keras_still_loads_on_use(runtime):
    report = _report(runtime)
    assert report["keras_at_import"] is (KERAS_IMPORTED_ANYWAY or TF_KERAS_INSTALLED)
    assert report["variable"] is None  # not left behind for the process or its children
    assert report["none_on_path"] is False
    assert report["tensorflow_keras_found"] is True
    assert report["dense"].startswith("keras")
    assert report["keras_after_use"] is True


@pytest.mark.skipif(KERAS_IMPORTED_ANYWAY, reason="this release imports Keras in any case")
def test_a_value_the_user_set_is_left_alone():
    report = _report("compat.runtime", TF_USE_LEGACY_KERAS="0")
    assert report["keras_at_import"] is True
    assert report["variable"] == "0"


def test_the_missing_tf_keras_entry_is_dropped_from_tensorflow_s_path(tmp_path):
    module = SimpleNamespace(__path__=[None, str(tmp_path / "a"), str(tmp_path / "b")])
    _restore_keras_path(module)
    assert None not in module.__path__
    assert module.__path__[-2:] == [str(tmp_path / "a"), str(tmp_path / "b")]
    untouched = SimpleNamespace(__path__=["x", "y"])
    _restore_keras_path(untouched)
    assert untouched.__path__ == ["x", "y"]


# TensorFlow 2.12 on Python 3.11 imports the deprecated ``sre_constants`` while ``import tensorflow``
# runs, which warns at its first import: a process run with warnings as errors stopped there.
DEPRECATED_AT_IMPORT = (
    "import sys\n"
    "import {runtime} as runtime\n"
    "assert 'sre_constants' in sys.modules\n"
    "import sre_constants\n"
    "print(runtime.tf.__name__)\n"
)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="sre_constants warns from Python 3.11 on")
@pytest.mark.parametrize("runtime", ["compat.runtime", "compat.tf2.runtime"])
def test_a_deprecated_module_tensorflow_imports_does_not_stop_a_process_run_with_warnings_as_errors(runtime):
    result = run_python(["-W", "error", "-c", DEPRECATED_AT_IMPORT.format(runtime=runtime)])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sre_constants" not in result.stderr


def test_importing_tensorflow_leaves_the_warning_filters_as_they_were():
    """NumPy's, urllib3's and requests' filters, added as TensorFlow imports them, stay."""
    result = run_python(["-c", "import warnings; import compat.runtime; print(len(warnings.filters))"])
    plain = run_python(["-c", "import warnings; import tensorflow; print(len(warnings.filters))"])
    assert result.returncode == 0 and plain.returncode == 0, result.stderr[-3000:] + plain.stderr[-3000:]
    assert result.stdout.split()[-1] == plain.stdout.split()[-1]


@pytest.mark.parametrize(("enabled", "recorded"), [(True, "1"), (False, "0")])
def test_kernels_are_recorded_as_a_tensorflow_imported_before_either_runtime_runs_them(
    monkeypatch, enabled, recorded
):
    """A program that imported TensorFlow itself, with TF_ENABLE_ONEDNN_OPTS unset, then a runtime:
    TensorFlow chose its kernels without the runtime's default 0 (on x86 Linux, oneDNN's), so the
    manifest must not record 0."""
    import compat.environment as environment

    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    monkeypatch.setattr(environment, "_AT_IMPORT", {})
    monkeypatch.setitem(sys.modules, "tensorflow", SimpleNamespace())
    port = SimpleNamespace(IsMklEnabled=lambda: enabled)
    monkeypatch.setitem(sys.modules, "tensorflow.python.util._pywrap_util_port", port)
    environment.configure_tensorflow_environment()
    assert environment.kernel_settings() == {"TF_ENABLE_ONEDNN_OPTS": recorded}


def test_kernels_are_recorded_as_set_where_the_runtime_imports_tensorflow_first(monkeypatch):
    import compat.environment as environment

    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    monkeypatch.setattr(environment, "_AT_IMPORT", {})
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)  # not imported yet in this process: as well
    environment.configure_tensorflow_environment()
    assert environment.kernel_settings() == {"TF_ENABLE_ONEDNN_OPTS": "0"}
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1")  # set later: TensorFlow read 0
    environment.configure_tensorflow_environment()
    assert environment.kernel_settings() == {"TF_ENABLE_ONEDNN_OPTS": "0"}


@pytest.mark.parametrize(
    ("tf_keras_installed", "user_value", "inside"), [(False, None, "1"), (True, None, None), (False, "0", "0")]
)
def test_keras_deferred_steps_aside_for_tf_keras_and_for_a_value_the_user_set(
    monkeypatch, tf_keras_installed, user_value, inside
):
    """With tf_keras installed the variable would send TensorFlow to it (tf.keras would be Keras 2
    for the whole process), so nothing is set; a value the user set is left as it is."""
    from compat import environment

    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args):
        if name == "tf_keras":
            return object() if tf_keras_installed else None
        return real_find_spec(name, *args)

    monkeypatch.setattr(environment.importlib.util, "find_spec", find_spec)
    if user_value is None:
        monkeypatch.delenv("TF_USE_LEGACY_KERAS", raising=False)
    else:
        monkeypatch.setenv("TF_USE_LEGACY_KERAS", user_value)
    with environment.keras_deferred():
        assert os.environ.get("TF_USE_LEGACY_KERAS") == inside
    assert os.environ.get("TF_USE_LEGACY_KERAS") == user_value
