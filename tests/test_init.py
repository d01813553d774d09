"""``import tinyopt``: the facade's names, light (no optional package, not even numpy), and the verbs that
share a subpackage's name callable whichever was imported first."""

from __future__ import annotations

import subprocess
import sys

import pytest

import tinyopt

HEAVY = ("torch", "onnx", "scipy", "sklearn", "matplotlib", "optuna", "ray", "numpy")


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          timeout=120).stdout.strip()


def test_import_is_light():
    out = _run(f"import sys, tinyopt; print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))")
    assert out == "[]"


@pytest.mark.parametrize("first", ["import tinyopt.convert.convert", "from tinyopt.compress import recipe",
                                   "import tinyopt.devices", "import tinyopt"])
def test_verbs_named_like_subpackages_are_callable_in_any_import_order(first):
    out = _run(f"{first}\nimport tinyopt\n"
               "print(callable(tinyopt.convert), callable(tinyopt.compress), callable(tinyopt.devices),"
               " tinyopt.convert.convert_graph.__name__, tinyopt.devices().devices[0].name != '')")
    assert out == "True True True convert_graph True"


def test_public_names():
    for name in ("load", "analyze", "check", "compress", "convert", "infer", "deploy", "tune", "select",
                 "devices", "Model", "Report", "TinyoptError"):
        assert name in dir(tinyopt) and name in tinyopt.__all__
    assert tinyopt.Report.__name__ == "Report"
    with pytest.raises(AttributeError, match="no attribute 'analyse'"):
        tinyopt.analyse  # noqa: B018
