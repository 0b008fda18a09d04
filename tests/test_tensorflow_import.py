"""Both runtimes import TensorFlow without Keras (compat.environment.keras_deferred), and leave
Keras reachable: nothing about the process changes but the time and memory Keras took."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest

from compat.environment import _restore_keras_path
from compat.runtime import tf
from tests.subprocesses import run_python

# 2.12 imports Keras with TensorFlow whatever the environment says; 2.15 reads the variable as the
# Keras-3 releases do (both checked in their matrix cells; 2.13 and 2.14 are in no cell).
KERAS_IMPORTED_ANYWAY = tuple(int(part) for part in tf.__version__.split(".")[:2]) < (2, 15)

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
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
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
    assert report["keras_at_import"] is KERAS_IMPORTED_ANYWAY
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
