"""A small CNN for 8x8 grey images (scikit-learn's digits): the model of the README walkthrough."""
from torch import nn


def make(num_classes: int = 10) -> nn.Module:
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(16 * 2 * 2, 32), nn.ReLU(), nn.Linear(32, num_classes))
    net.input_shape = (1, 8, 8)  # channels, height, width: what it takes (no batch)
    return net
