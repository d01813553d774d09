"""``tinyopt.select`` answers what ``tinyopt select --json`` prints (the seeds' exam versions, worked by
hand in the seeds), in the keyword forms Python users write; ``tinyopt.tune``'s refusal before any work."""

from __future__ import annotations

import json

import pytest

import tinyopt
from conftest import ROOT
from tinyopt.cli import main
from tinyopt.errors import BudgetError, ConfigError

VERSIONS = ROOT / "examples" / "select" / "exam.yaml"


def test_select_equals_cli_json(capsys):
    assert main(["select", str(VERSIONS), "--client", "c1=0.2", "--client", "c2=0.5", "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    for clients in ({"c1": 0.2, "c2": 0.5}, ["c1=0.2", "c2=0.5"]):
        sel = tinyopt.select(VERSIONS, clients)
        assert sel.to_dict() == cli
    assert [c["client"] for c in cli["choices"]] == ["c1", "c2"]
    assert all(c["version"] for c in cli["choices"]) and "chosen:" in repr(sel)


def test_select_unserved_client_is_a_budget_error_only_when_asked():
    sel = tinyopt.select(VERSIONS, {"tiny": 1e-6})
    assert sel.choices[0].version is None and "<li>" in sel._repr_html_()
    with pytest.raises(BudgetError, match="no version meets latency"):
        sel.require_all_served()
    with pytest.raises(ConfigError, match="no clients given"):
        tinyopt.select(VERSIONS)


def test_tune_refuses_zero_trials(tmp_path):
    with pytest.raises(ConfigError, match="--trials must be at least 1"):
        tinyopt.tune(tmp_path / "p.yaml", trials=0)
