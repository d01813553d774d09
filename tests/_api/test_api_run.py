"""``tinyopt.infer`` row by row against TFLM on an MLPerf int8 model, and ``tinyopt.deploy``'s choices and
refusals (nothing is written when it refuses)."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import tinyopt
from conftest import KWS_INT8, ROOT, need
from tinyopt.errors import ConfigError

sys.path.insert(0, str(Path(__file__).parents[1]))
from runtime._reference import run_tflm


def test_infer_equals_tflm_on_kws():
    x = np.random.default_rng(3).integers(-128, 128, (20, 49, 10, 1)).astype(np.int8)
    y = tinyopt.infer(need(KWS_INT8), x)
    np.testing.assert_array_equal(y, run_tflm(KWS_INT8.read_bytes(), [x])[0])
    m = tinyopt.load(KWS_INT8)
    assert m.interpreter is m.interpreter  # prepared once per model
    np.testing.assert_array_equal(tinyopt.infer(m, x, batch_size=7), y)  # batches change nothing


def test_deploy_targets_and_refusals(tmp_path):
    lib = tinyopt.deploy(need(KWS_INT8), out=tmp_path / "c")
    assert lib.target == "c" and "tinyopt_model.c" in lib.files and lib.arena_bytes > 0
    assert "steps (node = index in the model file)" in lib.explain()
    assert lib.to_dict()["run"] is None and "wrote" in repr(lib)
    tfl = tinyopt.deploy(KWS_INT8, target="tflite", out=tmp_path / "k.tflite")
    assert tfl.nbytes == (tmp_path / "k.tflite").stat().st_size
    with pytest.raises(ConfigError, match="no arena plan"):
        tfl.explain()
    cases = [(dict(target="cpp", out=tmp_path / "x"), "unknown target 'cpp'"),
             (dict(target="c"), "no output path"),
             (dict(target="arduino", out=tmp_path / "x", run=True), "--run builds the plain C target"),
             (dict(target="c", out=tmp_path / "x", device="uno"), "unknown device 'uno'"),
             (dict(target="tflite", out=tmp_path / "x.bin"), "not a .tflite path"),
             (dict(target="c", out=tmp_path / "x", run=True, inputs=0), "--inputs must be at least 1"),
             (dict(target="c", out=tmp_path / "x", run=True, clock_mhz=0), "is not a clock")]
    for kwargs, fragment in cases:
        with pytest.raises(ConfigError, match=fragment):
            tinyopt.deploy(KWS_INT8, **kwargs)
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.bin").exists()
    with pytest.raises(ConfigError, match="no weights"):
        tinyopt.deploy(ROOT / "examples" / "specs" / "exam.yaml", target="tflite", out=tmp_path / "e.tflite")


def test_old_board_keyword_warns():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ConfigError, match="unknown device 'uno'"):
            tinyopt.deploy(KWS_INT8, out="unused", board="uno")
    assert any("'board' is deprecated, use 'device'" in str(w.message) for w in caught)
