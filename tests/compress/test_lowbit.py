"""Weight formats: hand-computed ternary/binary values, bit-width level counts, float16."""

import pytest
import torch
from torch import nn

from tinyopt.compress import lowbit
from tinyopt.errors import ConfigError


def test_ternary_by_hand():
    w = torch.tensor([[0.1, -0.9, 0.5, -0.2]])
    # mean|w| = 0.425, delta = 0.7 * 0.425 = 0.2975: keep -0.9 and 0.5, alpha = (0.9 + 0.5) / 2 = 0.7
    out = lowbit.Ternary()(w)
    assert torch.allclose(out, torch.tensor([[0.0, -0.7, 0.7, 0.0]]))
    assert lowbit.distinct_levels(out) == 3


def test_binary_by_hand():
    w = torch.tensor([[0.1, -0.9, 0.5, -0.2], [1.0, 1.0, -1.0, 0.0]])
    # alpha = mean|w| per row: 0.425 and 0.75
    out = lowbit.Binary()(w)
    assert torch.allclose(out, torch.tensor([[0.425, -0.425, 0.425, -0.425], [0.75, 0.75, -0.75, 0.75]]))


def test_float16_round_trip():
    w = torch.tensor([[1.0 / 3.0, 65504.0, 1e-8]])
    assert torch.equal(lowbit.Float16()(w), w.half().float())


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 7, 8, 16])
def test_n_bit_levels(bits):
    torch.manual_seed(bits)
    m = nn.Linear(512, 2)
    model = nn.Sequential(m)
    lowbit.quantize_weights_(model, bits)
    # narrow symmetric: at most 2^bits - 1 levels per channel, the largest magnitude exactly kept
    assert lowbit.distinct_levels(model[0].weight) <= 2 ** bits - 1
    raw = model[0].parametrizations.weight.original.detach()
    assert torch.allclose(model[0].weight.abs().amax(1), raw.abs().amax(1))
    assert lowbit.weight_format(model[0].parametrizations.weight[0]) == {"bits": bits, "per_channel": True}


def test_ste_gradient_flows():
    w = torch.randn(3, 4, requires_grad=True)
    lowbit.Ternary()(w).sum().backward()
    assert torch.equal(w.grad, torch.ones(3, 4))


def test_bad_formats():
    with pytest.raises(ConfigError, match="unknown weight format"):
        lowbit.weight_quantizer("int3")
    with pytest.raises(ConfigError, match="outside 1-16"):
        lowbit.weight_quantizer(17)
    from collections import OrderedDict
    with pytest.raises(ConfigError, match="did you mean 'fc1'"):
        lowbit.quantize_weights_(nn.Sequential(OrderedDict(fc1=nn.Linear(2, 2))), {"fc2": 4})
