import json
import time

import pytest
import yaml

from tinyopt.cli import main
from tinyopt.pipeline.config import validate

PROJECT = """
name: t
data: {source: digits, val: 0.15, test: 0.2}
target: {device: nano33ble}
search:
  width: {type: int, low: 2, high: 8}
  depth: {type: int, low: 1, high: 2}
  bits: {type: categorical, choices: [32, 8]}
"""


@pytest.fixture
def project(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text(PROJECT)
    return p


def test_tune_writes_front_report_and_a_runnable_best_project(project, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["tune", str(project), "--trials", "3", "--epochs", "1", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["trials"] == 3 and summary["trainings"] + summary["vetoed"] == 3
    html = (out / "tune-report.html").read_text()
    assert "Pareto front" in html and "data:image/png;base64," in html
    best = yaml.safe_load((out / "best.yaml").read_text())
    cfg = validate(best)  # a valid project for `tinyopt run`
    assert cfg["model"]["zoo"] == "cnn" and cfg["model"]["args"]["filters"] == [
        w * 2**i
        for i, w in enumerate([summary["best"]["params"]["width"]] * summary["best"]["params"]["depth"])]


def test_impossible_budget_exits_2_naming_the_constraint(project, capsys):
    assert main(["tune", str(project), "--trials", "2", "--max-ram-kb", "0.01"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "RAM" in err and "smallest achievable" in err


def test_ray_address_that_does_not_answer_fails_fast(project, tmp_path, capsys):
    pytest.importorskip("ray")
    t = time.time()
    code = main(["tune", str(project), "--trials", "2", "--ray", "127.0.0.1:9",
                 "--storage", f"sqlite:///{tmp_path / 's.db'}"])
    assert code == 2 and time.time() - t < 30
    assert "no Ray cluster answers at 127.0.0.1:9" in capsys.readouterr().err


def test_ray_local_runs_trials_in_workers(project, tmp_path, capsys):
    pytest.importorskip("ray")
    db = tmp_path / "s.db"
    assert main(["tune", str(project), "--trials", "2", "--epochs", "1", "--ray", "local",
                 "--storage", f"sqlite:///{db}", "--out", str(tmp_path / "o"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["trials"] == 2
