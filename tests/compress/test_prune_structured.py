"""Structured pruning leaves a working, physically smaller model whose params/MACs equal the analyzer's
count of the same architecture built small from scratch (residual adds, concatenation, depthwise
groups, BatchNorm, flatten -> dense)."""

import pytest
import torch
from torch import nn

from tinyopt import zoo
from tinyopt.analysis import layer_costs, totals
from tinyopt.compress.prune import prune_structured
from tinyopt.compress.prune_structured import channel_counts, count_params_macs
from tinyopt.errors import ConfigError
from tinyopt.graph.torch_import import from_torch


def _analyzer(model, shape):
    t = totals(layer_costs(from_torch(model, shape, fold_bn=False)))  # BN kept: torch-pruning counts it
    return t.params, t.macs


class Concat(nn.Module):
    def __init__(self, w=8):
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(1, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(1, w, 5, padding=2), nn.ReLU())
        self.c = nn.Conv2d(2 * w, w, 3, padding=1)
        self.fc = nn.Linear(w * 4 * 4, 3)

    def forward(self, x):
        y = torch.cat([self.a(x), self.b(x)], 1)
        return self.fc(torch.flatten(nn.functional.max_pool2d(self.c(y), 2), 1))


def _same_arch(pruned, small, shape):
    x = torch.randn(2, *shape)
    assert pruned(x).shape == small(x).shape
    assert channel_counts(pruned) == channel_counts(small)
    assert _analyzer(pruned, shape) == _analyzer(small, shape)
    assert count_params_macs(pruned, x) == count_params_macs(small, x)
    # the analyzer also counts BatchNorm's running mean and variance as (constant) parameters
    bn_stats = sum(2 * m.num_features for m in pruned.modules()
                   if isinstance(m, nn.modules.batchnorm._BatchNorm))
    assert count_params_macs(pruned, x)[0] + bn_stats == _analyzer(pruned, shape)[0]


def test_resnet8_residual_groups():
    torch.manual_seed(0)
    m = zoo.build("resnet8")
    x = torch.randn(1, 3, 32, 32)
    p = prune_structured(m, x, 0.5)
    _same_arch(p, zoo.build("resnet8", filters=(8, 16, 32)), (3, 32, 32))
    big, small = count_params_macs(m, x), count_params_macs(p, x)
    assert small[0] < 0.3 * big[0] and small[1] < 0.3 * big[1]  # about a quarter: both sides of a conv halve
    assert sum(p.numel() for p in m.parameters()) == big[0]  # the original is untouched


def test_concatenation_and_flatten_dense():
    torch.manual_seed(1)
    p = prune_structured(Concat(8), torch.randn(1, 1, 8, 8), 0.5, criterion="l2")
    _same_arch(p, Concat(4), (1, 8, 8))


def test_depthwise_dscnn():
    torch.manual_seed(2)
    m = zoo.build("dscnn", dropout=False)
    p = prune_structured(m, torch.randn(1, 1, 49, 10), 0.5)
    _same_arch(p, zoo.build("dscnn", filters=32, dropout=False), (1, 49, 10))


def test_digits_flatten_permutation_and_criteria():
    torch.manual_seed(3)
    m = zoo.build("digits_cnn")
    x = torch.randn(4, 1, 8, 8)
    for crit in ("l1", "random"):
        p = prune_structured(m, x[:1], 0.5, criterion=crit, seed=1)
        _same_arch(p, zoo.build("digits_cnn", filters=(4, 8)), (1, 8, 8))
    y = torch.tensor([0, 1, 2, 3])
    p = prune_structured(m, x[:1], 0.5, criterion="taylor", data=[(x, y)])
    assert channel_counts(p)["features.0"] == 4
    # L1 scores the whole coupled group (conv1 filter + its bias + conv2's input slice); with conv2's
    # weights all equal and no bias, the order is that of conv1's filter norms: filters 1, 3, 5, 7 win
    with torch.no_grad():
        m.features[3].weight.fill_(0.01)
        m.features[0].bias.zero_()
        m.features[0].weight.mul_(torch.tensor([1.0, 9, 2, 8, 3, 7, 4, 6]).reshape(-1, 1, 1, 1)
                                  / m.features[0].weight.abs().sum((1, 2, 3), keepdim=True))
    p = prune_structured(m, x[:1], 0.5)
    assert torch.equal(p.features[0].weight, m.features[0].weight[[1, 3, 5, 7]])


def test_bad_input():
    m = zoo.build("digits_cnn")
    with pytest.raises(ConfigError, match="outside \\[0, 1\\)"):
        prune_structured(m, torch.randn(1, 1, 8, 8), 1.0)
    with pytest.raises(ConfigError, match="needs gradients"):
        prune_structured(m, torch.randn(1, 1, 8, 8), 0.5, criterion="taylor")
