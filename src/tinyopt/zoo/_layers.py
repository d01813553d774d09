"""Building blocks shared by the zoo: TFLite-exact SAME padding and conv + BN + activation stacks.

PyTorch's symmetric ``padding=k//2`` and TFLite's SAME agree only when the total padding is even. When
it is odd (stride 2 on an even input, or a 10×4 kernel with stride 2 on 49×10), TFLite puts the extra
pixel after; we put an explicit ``ZeroPad2d`` in front of an unpadded conv so that weights trained here
and weights read from a ``.tflite`` compute the same thing.
"""

from __future__ import annotations

import math

from torch import nn


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) zero padding that TFLite's SAME uses on one axis."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def same_conv2d(cin: int, cout: int, kernel: tuple[int, int], stride: int, in_hw: tuple[int, int],
                groups: int = 1, bias: bool = True) -> nn.Module:
    """A Conv2d whose output equals TFLite's SAME conv: symmetric padding when that is exact, else a pad."""
    kh, kw = kernel
    ph = same_pads(in_hw[0], kh, stride)
    pw = same_pads(in_hw[1], kw, stride)
    if ph[0] == ph[1] and pw[0] == pw[1]:
        return nn.Conv2d(cin, cout, kernel, stride, padding=(ph[0], pw[0]), groups=groups, bias=bias)
    return nn.Sequential(nn.ZeroPad2d((pw[0], pw[1], ph[0], ph[1])),
                         nn.Conv2d(cin, cout, kernel, stride, padding=0, groups=groups, bias=bias))


def same_out(size: int, stride: int) -> int:
    return math.ceil(size / stride)


def conv_bn_act(cin, cout, kernel, stride, in_hw, groups=1, act: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """SAME conv without bias (BN's beta takes its place), BatchNorm2d, activation."""
    return nn.Sequential(same_conv2d(cin, cout, kernel, stride, in_hw, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), act())
