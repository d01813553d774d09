"""The core install: the wheel, installed with no extras into a fresh venv, brings none of the optional
packages, and there analyzes, runs and deploys a .tflite exactly as the full environment does (same JSON,
same outputs, same files); a PyTorch door says which extra to install. Needs the package registry (pip)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

import tinyopt
from conftest import KWS_INT8, ROOT, need

pytestmark = pytest.mark.slow
OPTIONAL = {"torch", "torch-pruning", "onnx", "onnxruntime", "scipy", "scikit-learn", "matplotlib", "optuna",
            "ray"}


def _run(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def core_venv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("core-install")
    src = tmp / "project"  # a copy: building in place would write build/ into the shared checkout
    src.mkdir()
    shutil.copy(ROOT / "pyproject.toml", src)
    shutil.copy(ROOT / "README.md", src)
    shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    r = _run(sys.executable, "-m", "pip", "wheel", src, "--no-deps", "-q", "-w", tmp / "dist")
    assert r.returncode == 0, r.stderr
    wheel, = (tmp / "dist").glob("tinyopt-*.whl")
    r = _run(sys.executable, "-m", "venv", tmp / "venv")
    assert r.returncode == 0, r.stderr
    bin_ = tmp / "venv" / "bin"
    r = _run(bin_ / "python", "-m", "pip", "install", "-q", wheel)
    if r.returncode != 0:
        pytest.fail(f"pip install of the wheel failed (the registry must be reachable): {r.stderr[-2000:]}")
    return bin_


def test_no_optional_package_is_installed(core_venv):
    r = _run(core_venv / "python", "-m", "pip", "list", "--format", "json")
    names = {p["name"].lower() for p in json.loads(r.stdout)}
    assert "tinyopt" in names and {"numpy", "pyyaml", "flatbuffers", "typer", "rich"} <= names
    assert not names & OPTIONAL


def test_analyze_infer_deploy_a_tflite_as_the_full_install_does(core_venv, tmp_path):
    model = need(KWS_INT8)
    r = _run(core_venv / "tinyopt", "analyze", model, "--device", "nano33ble", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == tinyopt.analyze(str(model), device="nano33ble").to_dict()

    x = np.random.default_rng(5).integers(-128, 128, (8, 49, 10, 1)).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    r = _run(core_venv / "tinyopt", "infer", model, "--input", tmp_path / "x.npy",
             "--output", tmp_path / "y.npy")
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), tinyopt.infer(model, x))

    r = _run(core_venv / "tinyopt", "deploy", model, "--out", tmp_path / "core-lib")
    assert r.returncode == 0, r.stderr
    tinyopt.deploy(model, out=tmp_path / "full-lib")
    a, b = tmp_path / "core-lib", tmp_path / "full-lib"
    core = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert core and core == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in core)


def test_python_import_stays_light_and_torch_door_names_its_extra(core_venv):
    code = ("import sys, tinyopt\n"
            f"r = tinyopt.analyze({str(need(KWS_INT8))!r}, device='nano33ble')\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'onnx', 'scipy', 'sklearn', 'matplotlib', 'optuna', 'ray'))\n"
            "try:\n    tinyopt.load('zoo:lenet5')\n"
            "except tinyopt.errors.MissingExtraError as e:\n    print(r.arena_bytes, heavy, e)\n")
    r = _run(core_venv / "python", "-c", code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"{tinyopt.analyze(str(KWS_INT8), device='nano33ble').arena_bytes} [] ")
    assert "pip install 'tinyopt[torch]'" in r.stdout
    r = _run(core_venv / "tinyopt", "analyze", "zoo:lenet5")
    assert r.returncode == 2 and "tinyopt[torch]" in r.stderr and "Traceback" not in r.stderr
