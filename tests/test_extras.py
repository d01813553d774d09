"""A door whose optional package is missing says which pip extra brings it: ``MissingExtraError`` in
Python, one line and exit 2 on the command line. The packages are hidden from a child process by an import
hook, as if not installed; the core doors (a .tflite) keep working there."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import KWS_INT8, ROOT, need
from tinyopt._extras import missing_extra, require
from tinyopt.errors import MissingExtraError

HIDE = textwrap.dedent("""
    import sys
    HIDDEN = set(sys.argv[1].split(","))
    class Hide:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in HIDDEN:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    sys.meta_path.insert(0, Hide())
    del sys.argv[1]
""")


def cli_without(hidden: str, *args, cwd=None):
    code = HIDE + "from tinyopt.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    return subprocess.run([sys.executable, "-c", code, hidden, *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


def test_mapping_and_require():
    err = missing_extra(ModuleNotFoundError(name="sklearn.datasets"), "the digits data")
    assert isinstance(err, MissingExtraError) and "scikit-learn" in str(err) and "tinyopt[data]" in str(err)
    assert missing_extra(ModuleNotFoundError(name="tinyopt.nothing")) is None  # our bug: stays a traceback
    require("numpy", "anything")  # present: nothing happens
    with pytest.raises(ValueError, match="not an optional dependency"):
        require("no_such_module_at_all", "anything")


@pytest.mark.parametrize("hidden,args,extra", [
    ("torch", ["analyze", "zoo:lenet5"], "torch"),
    ("torch", ["check", "zoo:lenet5"], "torch"),
    ("onnx", ["check", "MODEL.onnx"], "onnx"),
    ("optuna", ["tune", "examples/tune/digits.yaml", "--trials", "1"], "tune"),
])
def test_missing_extra_exits_2_naming_it(hidden, args, extra, tmp_path):
    (tmp_path / "MODEL.onnx").write_bytes(b"\x08\x07")
    args = [str(tmp_path / a) if a.endswith(".onnx") else a for a in args]
    r = cli_without(hidden, *args, cwd=ROOT)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert f"pip install 'tinyopt[{extra}]'" in r.stderr


def test_python_door_raises_missing_extra():
    code = HIDE + ("import tinyopt\n"
                   "try:\n    tinyopt.load('zoo:lenet5')\n"
                   "except tinyopt.errors.MissingExtraError as e:\n    print(e)\n")
    r = subprocess.run([sys.executable, "-c", code, "torch"], capture_output=True, text=True, timeout=120)
    assert "needs torch (the [torch] extra)" in r.stdout, r.stderr


def test_core_doors_work_without_any_extra(tmp_path):
    hidden = "torch,torch_pruning,onnx,onnxruntime,optuna,ray,matplotlib,sklearn,scipy"
    np.save(tmp_path / "x.npy", np.zeros((2, 49, 10, 1), np.int8))
    for args in (["analyze", need(KWS_INT8), "--device", "nano33ble", "--json"], ["check", KWS_INT8],
                 ["infer", KWS_INT8, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy"],
                 ["deploy", KWS_INT8, "--out", tmp_path / "lib"], ["devices"],
                 ["analyze", ROOT / "examples" / "specs" / "exam.yaml", "--device", "exam"]):
        r = cli_without(hidden, *args)
        assert r.returncode == 0, (args, r.stderr)
    assert np.load(tmp_path / "y.npy").shape == (2, 12)
