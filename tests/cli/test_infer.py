"""`tinyopt infer`: on the int8 MLPerf models every output value equals TFLM's for that row (200 seeded
random inputs plus structured ones); bad models and bad inputs exit 2 with one line naming the problem."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import KWS_INT8, RESNET_INT8, need
from tinyopt.cli import main

sys.path.insert(0, str(Path(__file__).parents[1] / "graph"))
sys.path.insert(0, str(Path(__file__).parents[1]))
import tflite_mutations as tm

from runtime._reference import run_tflm


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def structured_rows(shape, rng, n=12) -> np.ndarray:
    """Data-like rows: smooth blobs and stripes (like digits or spectrograms), a ramp, and extremes."""
    h, w = shape[0], shape[1]
    yy, xx = np.mgrid[0:h, 0:w]
    rows = []
    for k in range(n - 4):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (1 + k) ** 2)) * 255 - 128
        stripes = np.sin(xx * (k + 1) / 3.0 + yy / 5.0) * 127
        rows.append(blob if k % 2 else stripes)
    rows.append((yy * w + xx) % 256 - 128)  # ramp over every value
    x = np.stack([np.repeat(np.clip(np.round(r), -128, 127)[..., None], shape[2], -1) for r in rows])
    ext = np.stack([np.full(shape, v) for v in (-128, 127, 0)])
    return np.concatenate([x, ext]).astype(np.int8)


@pytest.mark.parametrize("path", [KWS_INT8, RESNET_INT8], ids=["kws", "resnet8"])
def test_infer_equals_tflm_row_by_row(path, tmp_path, capsys):
    need(path)
    from tinyopt.graph.tflite_import import load_tflite

    shape = load_tflite(path).tensors[load_tflite(path).inputs[0]].shape[1:]
    rng = np.random.default_rng(2026)
    x = np.concatenate([rng.integers(-128, 128, size=(200, *shape)).astype(np.int8),
                        structured_rows(shape, rng)])
    np.save(tmp_path / "in.npy", x)
    code, out, err = run(capsys, "infer", path, "--input", tmp_path / "in.npy", "--output",
                         tmp_path / "out.npy")
    assert code == 0, err
    ours = np.load(tmp_path / "out.npy")
    ref = run_tflm(path.read_bytes(), [x])[0]
    assert ours.shape == ref.shape and ours.dtype == ref.dtype == np.int8
    assert int((ours != ref).sum()) == 0


def one_line_error(capsys, *args) -> str:
    code, out, err = run(capsys, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Fix:" in lines[0] and "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("name", ["buffer index out of range", "opcode index out of range",
                                  "operator input index out of range", "negative dimension",
                                  "huge dimensions", "int8 activation without quantization", "scale zero",
                                  "scale NaN", "unsupported operator"])
def test_bad_model_exits_2_with_one_line(name, tmp_path, capsys):
    mutation = tm.MUTATIONS[[m.name for m in tm.MUTATIONS].index(name)]
    model = tm.decode(need(KWS_INT8).read_bytes())
    mutation.edit(model)
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(tm.encode(model))
    np.save(tmp_path / "in.npy", np.zeros((2, 49, 10, 1), np.int8))
    line = one_line_error(capsys, "infer", bad, "--input", tmp_path / "in.npy", "--output",
                          tmp_path / "o.npy")
    assert str(bad) in line and mutation.fragment in line and "Fix:" in line
    assert not (tmp_path / "o.npy").exists()


@pytest.mark.parametrize("arr,fragment", [
    (np.zeros((3, 49, 10), np.int8), "must have shape (N, 49, 10, 1), got [3, 49, 10]"),
    (np.zeros((3, 49, 10, 1), np.float32), "must be int8, got float32"),
    (np.zeros((3, 10, 49, 1), np.int8), "got [3, 10, 49, 1]"),
])
def test_wrong_input_array_exits_2(arr, fragment, tmp_path, capsys):
    need(KWS_INT8)
    np.save(tmp_path / "in.npy", arr)
    line = one_line_error(capsys, "infer", KWS_INT8, "--input", tmp_path / "in.npy", "--output",
                          tmp_path / "o.npy")
    assert fragment in line and str(tmp_path / "in.npy") in line
    assert not (tmp_path / "o.npy").exists()


def test_unreadable_input_file_exits_2(tmp_path, capsys):
    need(KWS_INT8)
    (tmp_path / "in.npy").write_bytes(b"not numpy")
    line = one_line_error(capsys, "infer", KWS_INT8, "--input", tmp_path / "in.npy", "--output",
                          tmp_path / "o.npy")
    assert "not a readable .npy array" in line
    line = one_line_error(capsys, "infer", KWS_INT8, "--input", tmp_path / "missing.npy", "--output",
                          tmp_path / "o.npy")
    assert "file not found" in line


def test_output_is_replaced_atomically(tmp_path, capsys):
    need(KWS_INT8)
    out = tmp_path / "o.npy"
    out.write_bytes(b"old")
    np.save(tmp_path / "in.npy", np.zeros((2, 49, 10), np.int8))  # wrong shape: the old file stays
    one_line_error(capsys, "infer", KWS_INT8, "--input", tmp_path / "in.npy", "--output", out)
    assert out.read_bytes() == b"old"
    np.save(tmp_path / "in.npy", np.zeros((2, 49, 10, 1), np.int8))
    code, _, err = run(capsys, "infer", KWS_INT8, "--input", tmp_path / "in.npy", "--output", out)
    assert code == 0, err
    assert np.load(out).shape == (2, 12) and not [p for p in tmp_path.iterdir()
                                                  if p.name.startswith(".tinyopt")]
