"""The search engine, with a synthetic trainer whose accuracy is a known function of the parameters
(so the tests check the search machinery — pre-filter, early stopping, resume, determinism — not SGD)."""

import sqlite3

import pytest

from tinyopt.devices import get_device
from tinyopt.errors import BudgetError, ConfigError
from tinyopt.search.space import parse_space
from tinyopt.search.tune import Budgets, candidate_cost, check_any_feasible, hypervolume_2d, tune

SPACE = parse_space({
    "width": {"type": "int", "low": 2, "high": 64, "log": True},
    "depth": {"type": "int", "low": 1, "high": 3},
    "prune": {"type": "float", "low": 0.0, "high": 0.5},
    "bits": {"type": "categorical", "choices": [32, 8]},
})
SHAPE, CLASSES = (8, 8, 1), 10


class CountingTrainer:
    """Accuracy grows with width and depth; every call is recorded with its parameters."""

    def __init__(self):
        self.calls = []

    def __call__(self, params, spec, report):
        self.calls.append(dict(params))
        acc = min(0.99, 0.5 + 0.01 * params["width"] * params["depth"]) - 0.05 * params["prune"]
        for epoch in range(3):
            if report(epoch, acc * (epoch + 1) / 3):
                break
        return acc


@pytest.fixture(scope="module")
def device():
    return get_device("nano33ble")


def test_prefilter_never_trains_an_infeasible_candidate(device):
    budgets = Budgets(max_ram_bytes=3 * 1024, max_latency_s=0.02)
    trainer = CountingTrainer()
    res = tune(SPACE, input_shape=SHAPE, num_classes=CLASSES, device=device, budgets=budgets,
               trainer=trainer, n_trials=16, seed=3)
    assert res.vetoed > 0 and res.trainings == len(trainer.calls)
    for params in trainer.calls:  # every trained candidate was within budget, by the analyzer
        assert not budgets.violations(candidate_cost(params, SHAPE, CLASSES, device))
    vetoed = [t["params"] for t in res.trials if "why" in t and "ms >" in t["why"]
              or "KB >" in t.get("why", "")]
    assert len(vetoed) == res.vetoed and not any(p in trainer.calls for p in vetoed)


def test_same_seed_same_first_trials(device):
    runs = []
    for _ in range(2):
        trainer = CountingTrainer()
        tune(SPACE, input_shape=SHAPE, num_classes=CLASSES, device=device, budgets=Budgets(),
             trainer=trainer, n_trials=8, seed=11)
        runs.append(trainer.calls)
    assert runs[0] == runs[1]


_CHILD = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from test_tune_engine import SPACE, SHAPE, CLASSES, CountingTrainer
from tinyopt.devices import get_device
from tinyopt.search.tune import Budgets, tune
marker = Path(sys.argv[2])
inner = CountingTrainer()
def trainer(params, spec, report):
    if len(inner.calls) == 4:
        marker.write_text(repr(params))
        time.sleep(600)  # killed here, mid-training
    return inner(params, spec, report)
tune(SPACE, input_shape=SHAPE, num_classes=CLASSES, device=get_device("nano33ble"), budgets=Budgets(),
     trainer=trainer, n_trials=8, seed=5, storage=sys.argv[1])
"""


def test_resume_after_kill_keeps_every_trial(tmp_path, device):
    import os
    import signal
    import subprocess
    import sys
    import time

    url = f"sqlite:///{tmp_path / 'study.db'}"
    marker = tmp_path / "killed-at"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, url, str(marker), os.path.dirname(__file__)],
                             env=env)
    deadline = time.time() + 120
    while not marker.exists() and time.time() < deadline and child.poll() is None:
        time.sleep(0.1)
    assert marker.exists(), "the child never reached its fifth training"
    child.send_signal(signal.SIGKILL)
    child.wait()
    rows = sqlite3.connect(tmp_path / "study.db").execute("select state from trials").fetchall()
    assert sorted(r[0] for r in rows).count("RUNNING") == 1 and len(rows) == 5
    second = CountingTrainer()
    res = tune(SPACE, input_shape=SHAPE, num_classes=CLASSES, device=device, budgets=Budgets(),
               trainer=second, n_trials=8, seed=5, storage=url)
    assert len(res.trials) == 8  # 4 from before the kill + the retried one + 3 new
    assert repr(second.calls[0]) == marker.read_text()  # the interrupted trial ran again, same parameters
    assert len(second.calls) == 4  # the 4 finished before the kill were not re-run


def test_impossible_budget_names_the_binding_constraint(device):
    with pytest.raises(BudgetError, match="latency") as e:
        check_any_feasible(SPACE, SHAPE, CLASSES, device, Budgets(max_latency_s=1e-9))
    assert "smallest achievable" in str(e.value)


def test_corrupt_study_database(tmp_path, device):
    db = tmp_path / "bad.db"
    db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ConfigError, match="study"):
        tune(SPACE, input_shape=SHAPE, num_classes=CLASSES, device=device, budgets=Budgets(),
             trainer=CountingTrainer(), n_trials=2, storage=f"sqlite:///{db}")


def test_empty_range_is_refused():
    with pytest.raises(ConfigError, match="empty range"):
        parse_space({"width": {"type": "int", "low": 8, "high": 4}})
    with pytest.raises(ConfigError, match="empty 'choices'"):
        parse_space({"bits": {"type": "categorical", "choices": []}})


def test_hypervolume_hand_computed():
    # points (acc, latency): (0.5, 1), (0.8, 2); reference latency 4:
    # 0.5 over [1, 2) + 0.8 over [2, 4) = 0.5 + 1.6 = 2.1; a dominated point adds nothing
    assert hypervolume_2d([(0.5, 1.0), (0.8, 2.0), (0.4, 3.0)], 4.0) == pytest.approx(2.1)
