"""Sensitivity scans and the choices made from them (pruning ratios, mixed-precision widths)."""

import pytest
import torch
from torch import nn

from tinyopt.compress import mixed, sensitivity
from tinyopt.errors import BudgetError


def _scan():
    # hand-made scan: layer a (1,000 weights) robust, layer b (100 weights) fragile
    return sensitivity.Scan("sparsity", [0.5, 0.8, 0.9], 0.90,
                            {"a": [0.90, 0.89, 0.85], "b": [0.85, 0.60, 0.40]}, {"a": 1000, "b": 100})


def test_choose_ratios_by_hand():
    s = _scan()
    # target 0.5 overall: tolerated drop 0.0 gives a=0.5, b=0 -> 500/1100 = 0.45 < 0.5;
    # drop 0.01 gives a=0.8 -> 800/1100 = 0.727 >= 0.5: a 0.8, b 0
    assert sensitivity.choose_ratios(s, 0.5) == {"a": 0.8, "b": 0.0}
    # target 0.85: needs a=0.9 (drop 0.05) and b=0.5 (drop 0.05): (900 + 50) / 1100 = 0.864
    assert sensitivity.choose_ratios(s, 0.85) == {"a": 0.9, "b": 0.5}
    with pytest.raises(BudgetError):
        sensitivity.choose_ratios(s, 0.95)


def test_scan_measures_real_models(tmp_path):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 3))
    x = torch.randn(200, 6)
    y = m(x).argmax(1)
    s = sensitivity.prune_sensitivity(m, (x, y), ratios=(0.0, 0.9))
    assert s.baseline == 1.0 and s.accuracy["0"][0] == 1.0 and s.accuracy["2"][0] == 1.0
    assert s.accuracy["0"][1] < 1.0  # pruning 90 % of a layer changes predictions
    q = sensitivity.quant_sensitivity(m, (x, y), bits=(2, 8))
    assert q.accuracy["0"][1] >= q.accuracy["0"][0]
    assert "baseline" in s.table()
    s.plot(tmp_path / "scan.png")
    assert (tmp_path / "scan.png").read_bytes()[:4] == b"\x89PNG"


def test_mixed_precision_budget_by_hand():
    scan = sensitivity.Scan("bits", [2, 4, 8], 0.9, {"big": [0.89, 0.9, 0.9], "small": [0.5, 0.85, 0.9]},
                            {"big": 1000, "small": 100})
    channels = {"big": 10, "small": 10}
    # budget = everything at 4 bits: 500 + 40 + 50 + 40 = 630 bytes. The big layer costs 0.01 to go to
    # 2 bits and saves 250 B; that pays for the small one at 8 bits (100 + 40): 250+40 + 100+40 = 430
    budget = mixed.weight_bytes(1000, 10, 4) + mixed.weight_bytes(100, 10, 4)
    bits = mixed.choose_bits(scan, channels, budget)
    assert budget == 630
    size = sum(mixed.weight_bytes(scan.numel[n], channels[n], b) for n, b in bits.items())
    assert size <= budget
    assert bits == {"big": 2, "small": 8}
    with pytest.raises(BudgetError):
        mixed.choose_bits(scan, channels, 100)
