"""`tinyopt demo --quick`: every stage runs, the table equals `tinyopt analyze` on the artifacts, the int8
runtime equals TFLM, the C library is written and the report renders."""

import json

import pytest
from tests.report.browser import render

from tinyopt.cli import main
from tinyopt.cli.demo import DEMO_PROJECT, demo_config
from tinyopt.pipeline.config import load_project, validate


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    return out, json.loads((out / "summary.json").read_text())


def test_all_four_variants(demo):
    out, s = demo
    assert [v["variant"] for v in s["variants"]] == ["float", "pruned", "int8", "pruned+int8"]
    assert s["device"] == "nano33ble"
    params = {v["variant"]: v["params"] for v in s["variants"]}
    # digits_cnn(16, 32): conv 1→16 3×3 (160) + conv 16→32 3×3 (4,640) + fc 128→10 (1,290) = 6,090
    assert params["float"] == params["int8"] == 6090
    # 50 % of the channels: conv 1→8 (80) + conv 8→16 (1,168) + fc 64→10 (650) = 1,898
    assert params["pruned"] == params["pruned+int8"] == 1898
    assert all(v["fits"] for v in s["variants"])


def test_table_equals_tinyopt_analyze_on_the_artifacts(demo, capsys):
    out, s = demo
    for v in s["variants"]:
        capsys.readouterr()
        assert main(["analyze", str(out / v["artifact"]), "--device", "nano33ble", "--json"]) == 0
        a = json.loads(capsys.readouterr().out)
        assert (v["params"], v["flash_bytes"], v["ram_bytes"], v["fits"]) == (
            a["params"], a["flash_bytes"], a["ram_bytes"], a["fits"])
        assert v["latency_ms"] == round(1e3 * a["latency_s"], 4)
        assert v["energy_mj"] == round(a["energy_mj"], 5)


def test_int8_equals_tflm_and_the_library_is_written(demo):
    out, s = demo
    assert s["verify"] == {"int8": {"examples": 359, "mismatches": 0},
                           "pruned+int8": {"examples": 359, "mismatches": 0}}
    lib = out / "deploy" / "digits"
    assert (lib / "digits_model.c").is_file() and (lib / "digits_model.h").is_file()
    assert s["deploy"]["arena_bytes"] > 0


def test_int8_close_to_float(demo):
    acc = {v["variant"]: v["accuracy"] for v in demo[1]["variants"]}
    assert abs(acc["int8"] - acc["float"]) <= 0.01
    assert acc["float"] >= 0.9  # even the quick schedule learns the digits


def test_report_renders(demo, tmp_path):
    out, _ = demo
    html = (out / "report.html").read_text()
    n = html.count("<img ")
    assert n >= 8
    r = render(out / "report.html", tmp_path, screenshot=False)
    assert r["probe"] == f"{n}/{n}" and r["console_errors"] == []


def test_example_file_is_the_demo_project(examples):
    cfg = load_project(examples / "digits.yaml")
    cfg.pop("_file")
    assert cfg == validate(DEMO_PROJECT)
    assert demo_config(quick=False) == validate(DEMO_PROJECT, "<tinyopt demo>")
