"""The runner on a tiny synthetic problem: variants measured from artifacts, caching, determinism,
and the fit gate."""

import json

import numpy as np
import pytest

from tinyopt.errors import BudgetError
from tinyopt.pipeline.config import validate
from tinyopt.pipeline.runner import run_project


def blobs(path, n=40, dim=12, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, dim)) * 3
    y = np.repeat(np.arange(k), n)
    x = centres[y] + rng.standard_normal((len(y), dim))
    np.savez(path, x=x.astype(np.float32), y=y)
    return path


def project(data, **over):
    raw = {"name": "blobs", "data": {"source": "npz", "path": str(data), "val": 0.1, "test": 0.25},
           "model": {"zoo": "mlp", "args": {"hidden": [8]}}, "training": {"epochs": 6, "lr": 0.02},
           "optimize": {"quantize": {"mode": "ptq", "calibration": 64}}, "deploy": {"formats": ["tflite"]}}
    for k, v in over.items():
        raw[k] = v
    return validate(raw, "test.yaml")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return blobs(tmp_path_factory.mktemp("d") / "blobs.npz")


@pytest.fixture(scope="module")
def first(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return out, run_project(project(data), out)


def test_variants_come_from_the_written_artifacts(first):
    from tinyopt.analysis import analyze
    from tinyopt.devices import get_device
    from tinyopt.graph import load_model

    tmp_path, res = first
    names = [v["variant"] for v in res.variants]
    assert names == ["float", "int8"]
    for v in res.variants:
        a = analyze(load_model(tmp_path / v["artifact"]), get_device("nano33ble")).to_dict()
        assert (v["params"], v["flash_bytes"], v["ram_bytes"], v["fits"]) == (
            a["params"], a["flash_bytes"], a["ram_bytes"], a["fits"])
    # mlp 12-8-3: 12·8 + 8 + 8·3 + 3 = 131 parameters
    assert res.variants[0]["params"] == 131
    assert res.verify["int8"]["mismatches"] == 0 and res.verify["int8"]["examples"] == 30
    assert abs(res.variants[1]["accuracy"] - res.variants[0]["accuracy"]) <= 0.05
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["variants"] == json.loads(json.dumps(res.variants))
    html = (tmp_path / "report.html").read_text()
    assert html.count("<img ") >= 6 and "data:image/png;base64," in html


def test_changing_only_the_recipe_does_not_retrain(data, tmp_path):
    run_project(project(data), tmp_path, report=False)
    cfg = project(data, optimize={"quantize": {"mode": "ptq", "calibration": 32}})
    res = run_project(cfg, tmp_path, report=False)
    assert set(res.cache_hits) == {"data", "features", "train"}
    assert res.cache_misses == ["quantize"]


def test_same_config_same_bytes(data, first, tmp_path):
    a_dir, a = first
    run_project(project(data), tmp_path, use_cache=False)
    for v in a.variants:
        assert (a_dir / v["artifact"]).read_bytes() == (tmp_path / v["artifact"]).read_bytes()
    for name in ("summary.json", "report.html"):
        assert (a_dir / name).read_bytes() == (tmp_path / name).read_bytes()
    cached = sorted(p.relative_to(a_dir) for p in (a_dir / "cache").rglob("*") if p.is_file())
    assert cached and cached == sorted(p.relative_to(tmp_path) for p in (tmp_path / "cache").rglob("*")
                                       if p.is_file())
    for rel in cached:  # trained weights included: torch.save goes through memory, not a temp-named file
        assert (a_dir / rel).read_bytes() == (tmp_path / rel).read_bytes(), rel


def test_a_device_too_small_stops_after_analysis(data, tmp_path):
    # int8 mlp: 131 weights + int32 biases, far over a 0.1 KB flash (code alone is kilobytes)
    cfg = project(data, target={"device": "nano33ble", "flash_kb": 0.1})
    with pytest.raises(BudgetError, match="does not fit nano33ble.*flash.*over by"):
        run_project(cfg, tmp_path)
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["cache"]  # complete cache entries only: no models, report or summary
    assert {p.name.split("-")[0] for p in (tmp_path / "cache").iterdir()} == {"data", "features"}


def test_csv_windows_through_a_1d_cnn(tmp_path):
    """Accelerometer-style logs → windows → normalized → cnn1d → int8: the 1-D path end to end."""
    rng = np.random.default_rng(0)
    rows = ["timestamp,ax,ay,az,label"]
    for seg in range(6):
        label, f = (("idle", 0.0), ("walk", 2.0), ("run", 5.0))[seg % 3]
        for i in range(96):
            a = np.sin(2 * np.pi * f * i / 50 + np.arange(3)) + 0.1 * rng.standard_normal(3)
            rows.append(f"{seg * 96 + i},{a[0]:.4f},{a[1]:.4f},{a[2]:.4f},{label}")
    (tmp_path / "log.csv").write_text("\n".join(rows) + "\n")
    cfg = validate({"name": "har", "data": {"source": "csv", "path": str(tmp_path / "log.csv"), "window": 32,
                                            "window_stride": 16, "val": 0.0, "test": 0.25},
                    "features": {"block": "normalized"},
                    "model": {"zoo": "cnn1d", "args": {"filters": [4, 8]}}, "training": {"epochs": 3},
                    "optimize": {"quantize": {"mode": "ptq", "calibration": 8}},
                    "deploy": {"formats": ["tflite"]}}, "har.yaml")
    res = run_project(cfg, tmp_path / "out", report=False)
    # 2 segments of 96 rows per label, windows of 32 every 16: 1 + (96 - 32) // 16 = 5 per segment → 10 per
    # label
    assert res.data["sizes"]["train"] + res.data["sizes"]["test"] == 30
    assert res.data["feature_shape"] == [32, 3]
    assert res.verify["int8"]["mismatches"] == 0
    assert sorted(p.name for p in (tmp_path / "out" / "models").iterdir()) == ["float.tflite", "int8.tflite"]
