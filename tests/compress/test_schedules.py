"""Pruning schedules: TF Model Optimization's polynomial decay by hand, constant sparsity, iterative
rounds, and gradual pruning during training reaching its final sparsity."""

import pytest
from prune_helpers import quadrant_data, small_mlp

from tinyopt.compress import prune, schedules
from tinyopt.errors import ConfigError


def test_polynomial_decay_matches_formula():
    s = schedules.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=100, power=3, frequency=10)
    # s(50) = 0.8 + (0 - 0.8) * (1 - 0.5)^3 = 0.8 - 0.1 = 0.7
    assert s.sparsity_at(50) == pytest.approx(0.7)
    assert s.sparsity_at(0) == 0.0 and s.sparsity_at(100) == pytest.approx(0.8)
    assert s.should_prune(20) and not s.should_prune(25) and s.should_prune(100)
    c = schedules.ConstantSparsity(0.5, begin_step=10, frequency=5)
    assert c.sparsity_at(9) == 0 and c.sparsity_at(10) == 0.5 and c.should_prune(15)


def test_iterative_ratios_and_gradual_pruning():
    r = schedules.iterative_ratios(0.875, 3)  # each round keeps half: 0.5, 0.75, 0.875
    assert r == pytest.approx([0.5, 0.75, 0.875])
    m = small_mlp()
    sched = schedules.PolynomialDecay(0.0, 0.6, begin_step=0, end_step=6, frequency=2)
    schedules.prune_during_training_(m, quadrant_data(), sched, epochs=2, batch_size=16)
    assert prune.sparsity(m)["0"] == pytest.approx(int(0.6 * 128) / 128)
    m = small_mlp()
    schedules.prune_iterative_(m, quadrant_data(), 0.75, rounds=2, epochs_per_round=1, batch_size=32)
    assert prune.sparsity(m)["global"] == pytest.approx(0.75)


def test_bad_schedules():
    with pytest.raises(ConfigError, match="end_step"):
        schedules.PolynomialDecay(0.0, 0.5, begin_step=10, end_step=10)
    with pytest.raises(ConfigError, match="outside \\[0, 1\\)"):
        schedules.PolynomialDecay(0.0, 1.0, begin_step=0, end_step=10)
    with pytest.raises(ConfigError, match="rounds=0"):
        schedules.iterative_ratios(0.5, 0)
