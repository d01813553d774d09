"""The zoo's architectures. Each builder returns an ``nn.Module`` carrying ``input_shape`` (PyTorch order,
no batch) and outputs logits (no softmax: train with ``CrossEntropyLoss``; the reference ``.tflite`` files
end in a SOFTMAX, which adds no parameters and no MACs).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from tinyopt.zoo._layers import conv_bn_act, same_conv2d, same_out


class ZooModel(nn.Module):
    """A ``features`` → ``classifier`` network; ``classifier`` ends in the Linear head."""

    def __init__(self, features: nn.Module, classifier: nn.Module, input_shape: tuple[int, ...]):
        super().__init__()
        self.features = features
        self.classifier = classifier
        self.input_shape = tuple(int(d) for d in input_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def mlp(input_size: int = 784, hidden: Sequence[int] = (128, 64), num_classes: int = 10,
        dropout: float = 0.0) -> ZooModel:
    """Fully connected ReLU network on a flat vector."""
    layers: list[nn.Module] = []
    prev = input_size
    for h in hidden:
        layers += [nn.Linear(prev, h), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        prev = h
    return ZooModel(nn.Sequential(*layers), nn.Sequential(nn.Linear(prev, num_classes)), (input_size,))


def lenet300(num_classes: int = 10) -> ZooModel:
    """LeNet-300-100 as Deep Compression prunes it: 784-300-100-10, 266,610 parameters.

    Takes a 1×28×28 image (as MNIST comes) and flattens it first, like Caffe's InnerProduct does.
    """
    features = nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU())
    return ZooModel(features, nn.Sequential(nn.Linear(100, num_classes)), (1, 28, 28))


def lenet5(num_classes: int = 10) -> ZooModel:
    """Caffe's LeNet-5 as Deep Compression uses it (no ReLU after the convs): 431,080 parameters.

    conv 20@5×5 → maxpool 2 → conv 50@5×5 → maxpool 2 → fc 500 → ReLU → fc 10.
    Hand count: 520 + 25,050 + 400,500 + 5,010 = 431,080.
    """
    features = nn.Sequential(nn.Conv2d(1, 20, 5), nn.MaxPool2d(2), nn.Conv2d(20, 50, 5), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(800, 500), nn.ReLU())
    return ZooModel(features, nn.Sequential(nn.Linear(500, num_classes)), (1, 28, 28))


def dscnn(num_classes: int = 12, filters: int = 64, blocks: int = 4, input_hw: tuple[int, int] = (49, 10),
          dropout: bool = True) -> ZooModel:
    """MLPerf Tiny keyword-spotting DS-CNN (input 1×49×10 MFCCs).

    conv 64@10×4 stride 2 SAME + BN + ReLU, 4 × [depthwise 3×3 + BN + ReLU, pointwise 64 + BN + ReLU],
    average pool over what is left (25×5), fc. Dropout 0.2 after the first conv and 0.4 before the pool
    as in the reference training script. After BN folding: 22,604 parameters (as kws_ref_model.tflite).
    """
    h, w = input_hw
    layers: list[nn.Module] = [conv_bn_act(1, filters, (10, 4), 2, (h, w))]
    h, w = same_out(h, 2), same_out(w, 2)
    if dropout:
        layers.append(nn.Dropout(0.2))
    for _ in range(blocks):
        layers.append(conv_bn_act(filters, filters, (3, 3), 1, (h, w), groups=filters))
        layers.append(conv_bn_act(filters, filters, (1, 1), 1, (h, w)))
    if dropout:
        layers.append(nn.Dropout(0.4))
    layers += [nn.AvgPool2d((h, w)), nn.Flatten()]
    return ZooModel(nn.Sequential(*layers), nn.Sequential(nn.Linear(filters, num_classes)), (1, *input_hw))


class ResidualBlock(nn.Module):
    """Two 3×3 convs with BN; identity shortcut, or a 1×1 conv (with bias, no BN) when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int, in_hw: tuple[int, int]):
        super().__init__()
        out_hw = (same_out(in_hw[0], stride), same_out(in_hw[1], stride))
        self.conv1 = conv_bn_act(cin, cout, (3, 3), stride, in_hw)
        self.conv2 = nn.Sequential(same_conv2d(cout, cout, (3, 3), 1, out_hw, bias=False),
                                   nn.BatchNorm2d(cout))
        self.shortcut = (nn.Identity() if stride == 1 and cin == cout
                         else same_conv2d(cin, cout, (1, 1), stride, in_hw))
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.shortcut(x) + self.conv2(self.conv1(x)))


def resnet8(num_classes: int = 10, filters: Sequence[int] = (16, 32, 64),
            input_hw: tuple[int, int] = (32, 32)) -> ZooModel:
    """MLPerf Tiny image-classification ResNet-8 (CIFAR-10, 3×32×32).

    conv 16@3×3 + BN + ReLU, three residual stacks of 16/32/64 filters (stride 1, 2, 2), average pool,
    fc. After BN folding: 77,706 parameters (as pretrainedResnet_quant.tflite).
    """
    h, w = input_hw
    layers: list[nn.Module] = [conv_bn_act(3, filters[0], (3, 3), 1, (h, w))]
    cin = filters[0]
    for i, f in enumerate(filters):
        stride = 1 if i == 0 else 2
        layers.append(ResidualBlock(cin, f, stride, (h, w)))
        h, w, cin = same_out(h, stride), same_out(w, stride), f
    layers += [nn.AvgPool2d((h, w)), nn.Flatten()]
    return ZooModel(nn.Sequential(*layers), nn.Sequential(nn.Linear(cin, num_classes)), (3, *input_hw))


def mobilenet_v1(num_classes: int = 2, alpha: float = 0.25, input_size: int = 96, in_channels: int = 3,
                 ) -> ZooModel:
    """MobileNet v1 with width multiplier ``alpha`` (defaults: the MLPerf Tiny visual-wake-words model,
    0.25 × 96×96×3, 2 classes). BN + ReLU6 after every conv, stride-2 convs padded as TFLite's SAME.
    """
    plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), *[(512, 1)] * 5, (1024, 2), (1024, 1)]
    h = w = input_size
    c = max(8, int(32 * alpha))
    layers: list[nn.Module] = [conv_bn_act(in_channels, c, (3, 3), 2, (h, w), act=nn.ReLU6)]
    h, w = same_out(h, 2), same_out(w, 2)
    for width, stride in plan:
        out = max(8, int(width * alpha))
        layers.append(conv_bn_act(c, c, (3, 3), stride, (h, w), groups=c, act=nn.ReLU6))
        h, w = same_out(h, stride), same_out(w, stride)
        layers.append(conv_bn_act(c, out, (1, 1), 1, (h, w), act=nn.ReLU6))
        c = out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return ZooModel(nn.Sequential(*layers), nn.Sequential(nn.Linear(c, num_classes)),
                    (in_channels, input_size, input_size))


def cnn1d(in_channels: int = 3, length: int = 128, num_classes: int = 6, filters: Sequence[int] = (16, 32),
          kernel: int = 5) -> ZooModel:
    """1-D CNN for sensor windows (C channels × L samples, e.g. a 3-axis accelerometer)."""
    layers: list[nn.Module] = []
    cin = in_channels
    for i, f in enumerate(filters):
        layers += [nn.Conv1d(cin, f, kernel, padding=kernel // 2, bias=False), nn.BatchNorm1d(f), nn.ReLU()]
        if i < len(filters) - 1:
            layers.append(nn.MaxPool1d(2))
        cin = f
    layers += [nn.AdaptiveAvgPool1d(1), nn.Flatten()]
    return ZooModel(nn.Sequential(*layers), nn.Sequential(nn.Linear(cin, num_classes)), (in_channels, length))


def digits_cnn(num_classes: int = 10, filters: Sequence[int] = (8, 16)) -> ZooModel:
    """Small CNN for scikit-learn's 8×8 digits: two [conv 3×3 + ReLU + maxpool 2] and a dense head.

    Ends in a flatten of a 4-D tensor, so importing it exercises the NCHW → NHWC column permutation.
    """
    c1, c2 = filters
    features = nn.Sequential(nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
    return ZooModel(features, nn.Sequential(nn.Linear(c2 * 4, num_classes)), (1, 8, 8))
