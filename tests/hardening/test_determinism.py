"""Every artifact-writing command, run twice with the same inputs and seed, writes identical bytes.

Two runs go to two different folders (so nothing can be reused) and every file written is compared
byte for byte: convert (.tflite), compress (.pt + JSON table), deploy (C library folder), infer (.npy).
The training commands (run/demo --quick, tune --seed) are covered by bench/fuzz.py's determinism
section, which is too slow for the unit-test budget.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from pathlib import Path

import numpy as np
import pytest

from tinyopt.cli import main

VALID = Path(__file__).resolve().parents[1] / "corpus" / "files" / "valid"
TINY_INT8 = VALID / "000-tiny-int8-model.tflite"
TINY_FLOAT = VALID / "001-tiny-float-model.tflite"


def _cli(args: list[str]) -> None:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    assert code == 0, (args, err.getvalue()[-2000:])


def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def inputs(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "in"
    d.mkdir()
    np.savez(d / "calib.npz", x=rng.normal(size=(16, 8, 8, 1)).astype(np.float32))
    np.save(d / "x.npy", rng.integers(-128, 128, size=(5, 8, 8, 1), dtype=np.int8))
    np.savez(d / "data.npz", x_train=rng.random((64, 784), dtype=np.float32), y_train=rng.integers(0, 10, 64),
             x_val=rng.random((32, 784), dtype=np.float32), y_val=rng.integers(0, 10, 32))
    (d / "recipe.yaml").write_text("seed: 3\nbatch_size: 32\nsteps:\n  - prune: {ratio: 0.5}\n"
                                   "  - quantize: {mode: ptq, bits: 8}\n")
    return d


def _commands(d: Path, out: Path) -> list[list[str]]:
    return [
        ["convert", str(TINY_FLOAT), "--calib", str(d / "calib.npz"), "--out", str(out / "m.tflite")],
        ["deploy", str(TINY_INT8), "--out", str(out / "lib")],
        ["infer", str(TINY_INT8), "--input", str(d / "x.npy"), "--output", str(out / "y.npy")],
        ["compress", "mlp", "--recipe", str(d / "recipe.yaml"), "--data", str(d / "data.npz"),
         "--out", str(out / "c.pt"), "--json", str(out / "c.json"), "--no-progress"],
    ]


def test_artifacts_are_byte_identical_across_runs(tmp_path, inputs):
    trees = []
    for run in ("a", "b"):
        out = tmp_path / run
        out.mkdir()
        for args in _commands(inputs, out):
            _cli(args)
        trees.append(_tree(out))
    a, b = trees
    assert set(a) >= {"m.tflite", "y.npy", "c.pt", "c.json", "lib/tinyopt_model.c"}, sorted(a)
    assert a == b, {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k)}
    print(f"\ndeterminism: {len(a)} files from convert/deploy/infer/compress identical across two runs")


def test_the_compared_artifacts_are_real(tmp_path, inputs):
    """Guard against comparing two empty files: the outputs load and hold the expected content."""
    from tinyopt.graph import load_model
    from tinyopt.runtime import Interpreter

    out = tmp_path / "o"
    out.mkdir()
    for args in _commands(inputs, out)[:3]:
        _cli(args)
    g = load_model(out / "m.tflite")
    # conv, dw, pool, reshape, fc, softmax
    assert g.tensors[g.inputs[0]].dtype == "int8" and len(g.nodes) == 6
    x = np.load(inputs / "x.npy")
    y = np.load(out / "y.npy")
    np.testing.assert_array_equal(y, Interpreter(load_model(TINY_INT8)).run(x)[0])
    assert y.shape == (5, 3) and (out / "lib" / "tinyopt_model.h").read_text().count("TINYOPT_INPUT_BYTES "
                                                                                     "64") == 1
