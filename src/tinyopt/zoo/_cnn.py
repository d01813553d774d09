"""A plain CNN family described by a few numbers: the architecture ``tinyopt tune`` searches over.

``cnn(filters=(8, 16), kernel=3, dense=0)``: per entry of ``filters`` a conv k×k (same padding) + ReLU,
followed by a 2×2 max-pool while the feature map is at least 4 pixels wide; then flatten, an optional
dense + ReLU layer and the classifier. ``tinyopt.search.candidate.candidate_spec`` writes the same
network as a YAML spec, so the analyzer's figures for a candidate are those of this module.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from tinyopt.zoo._models import ZooModel


def cnn(num_classes: int = 10, input_hw: tuple[int, int] = (8, 8), in_channels: int = 1,
        filters: Sequence[int] = (8, 16), kernel: int = 3, dense: int = 0) -> ZooModel:
    if kernel % 2 == 0:
        raise ValueError("kernel must be odd for same padding")
    h, w = input_hw
    side, cin = min(h, w), in_channels
    layers: list[nn.Module] = []
    for f in filters:
        layers += [nn.Conv2d(cin, int(f), kernel, padding=kernel // 2), nn.ReLU()]
        if side >= 4:
            layers.append(nn.MaxPool2d(2))
            side, h, w = side // 2, h // 2, w // 2
        cin = int(f)
    layers.append(nn.Flatten())
    n = cin * h * w
    head: list[nn.Module] = []
    if dense:
        head += [nn.Linear(n, int(dense)), nn.ReLU()]
        n = int(dense)
    head.append(nn.Linear(n, num_classes))
    return ZooModel(nn.Sequential(*layers), nn.Sequential(*head), (in_channels, *input_hw))
