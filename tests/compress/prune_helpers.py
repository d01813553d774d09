"""The small net and data set the pruning and pruning-schedule tests share.

Not a test module: test_prune.py and test_schedules.py import it by basename (pytest puts their folder on
sys.path), so the name must stay unique across tests/.
"""

import torch
from torch import nn


def small_mlp(seed=0):
    """8 -> 16 -> 4 with a ReLU: 128 + 64 prunable weights, seeded."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


def quadrant_data(seed=0, n=64):
    """``(x, y)`` with ``n`` samples of 8 features; the class (0-3) is the signs of the first two features."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    return x, (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long()
