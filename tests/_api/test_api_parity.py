"""The facade answers what the CLI answers, on every MLPerf Tiny model: analyze (``to_dict()`` equals
``--json``, key for key and value for value), check, infer (the same arrays), deploy (the same files) and
convert (the same bytes). The CLI is a thin layer over the facade, so this pins that nothing is added or
lost between them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import tinyopt
from conftest import KWS_FLOAT, KWS_INT8, RESNET_FLOAT, RESNET_INT8, need
from tinyopt.cli import main

MODELS = [KWS_INT8, KWS_FLOAT, RESNET_INT8, RESNET_FLOAT]
IDS = ["kws-int8", "kws-float", "resnet8-int8", "resnet8-float"]


def cli_json(capsys, *args) -> dict:
    code = main([str(a) for a in args] + ["--json"])
    out, err = capsys.readouterr()
    assert code in (0, 2), err
    return json.loads(out)


@pytest.mark.parametrize("path", MODELS, ids=IDS)
@pytest.mark.parametrize("options", [{"device": "stm32l4r5"}, {"device": "nano33ble", "dtype": "int8"},
                                     {"device": "esp32s3", "memory": "textbook", "battery_mah": 1000.0}, {}])
def test_analyze_equals_cli_json(path, options, capsys):
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
    d = cli_json(capsys, "analyze", need(path), *flags)
    report = tinyopt.analyze(str(path), **options)
    assert report.to_dict() == d
    for key, value in d.items():  # every key is an attribute with the same value
        assert getattr(report, key) == value
    assert d["params"] > 0 and (d["fits"] is None) == (not options)


@pytest.mark.parametrize("path", MODELS, ids=IDS)
@pytest.mark.parametrize("runtime", ["tflm-reference", "tinyopt-c"])
def test_check_equals_cli_json(path, runtime, capsys):
    d = cli_json(capsys, "check", need(path), "--runtime", runtime)
    assert tinyopt.check(str(path), runtime=runtime).to_dict() == d


def _inputs(model: Path, n: int) -> np.ndarray:
    m = tinyopt.load(model)
    shape, dtype = m.inputs[0]["shape"], m.inputs[0]["dtype"]
    rng = np.random.default_rng(7)
    if dtype == "int8":
        return rng.integers(-128, 128, (n, *shape)).astype(np.int8)
    return rng.normal(0, 1, (n, *shape)).astype(np.float32)


@pytest.mark.parametrize("path", MODELS, ids=IDS)
def test_infer_equals_cli(path, tmp_path, capsys):
    x = _inputs(need(path), 6)
    np.save(tmp_path / "in.npy", x)
    args = ["infer", str(path), "--input", str(tmp_path / "in.npy"), "--output", str(tmp_path / "out.npy")]
    assert main(args) == 0
    y = tinyopt.infer(str(path), x)
    cli = np.load(tmp_path / "out.npy")
    assert y.dtype == cli.dtype and y.shape == cli.shape and y.shape[0] == 6
    np.testing.assert_array_equal(y, cli)


@pytest.mark.parametrize("path", [KWS_INT8, RESNET_INT8], ids=["kws-int8", "resnet8-int8"])
@pytest.mark.parametrize("target", ["c", "arduino", "tflite"])
def test_deploy_writes_the_same_files_as_cli(path, target, tmp_path, capsys):
    suffix = ".tflite" if target == "tflite" else ""
    a, b = tmp_path / f"cli{suffix}", tmp_path / f"api{suffix}"
    assert main(["deploy", str(need(path)), "--target", target, "--out", str(a)]) == 0
    result = tinyopt.deploy(str(path), target=target, out=b)
    assert capsys.readouterr().out.strip() == result.summary().replace(str(b), str(a))
    if target == "tflite":
        assert a.read_bytes() == b.read_bytes()
        return
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    assert result.arena_bytes == json.loads((a / "tinyopt_manifest.json").read_text())["arena_bytes"]


@pytest.mark.parametrize("path,shape", [(KWS_FLOAT, (49, 10, 1)), (RESNET_FLOAT, (32, 32, 3))],
                         ids=["kws-float", "resnet8-float"])
def test_convert_gives_the_same_bytes_as_cli(path, shape, tmp_path, capsys):
    calib = np.random.default_rng(0).normal(0, 1, (16, *shape)).astype(np.float32)
    np.savez(tmp_path / "calib.npz", x=calib)
    out = tmp_path / "cli.tflite"
    assert main(["convert", str(need(path)), "--calib", str(tmp_path / "calib.npz"), "--out", str(out)]) == 0
    model = tinyopt.convert(str(path), calib=calib)
    assert model.dtype == "int8" and model.inputs[0]["shape"] == list(shape)
    api = tinyopt.deploy(model, target="tflite", out=tmp_path / "api.tflite").out
    assert api.read_bytes() == out.read_bytes()


def test_old_rate_flag_equals_inferences_per_s_with_a_note(capsys):
    args = ["analyze", str(need(KWS_INT8)), "--device", "nano33ble", "--battery-mah", "500", "--json"]
    assert main(args + ["--inferences-per-s", "4"]) == 0
    new = json.loads(capsys.readouterr().out)
    assert main(args + ["--rate", "4"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == new and new["battery"]["inferences_per_s"] == 4.0
    assert "--rate is deprecated, use --inferences-per-s" in err
    api = tinyopt.analyze(str(KWS_INT8), device="nano33ble", battery_mah=500, inferences_per_s=4)
    assert new == api.to_dict()
