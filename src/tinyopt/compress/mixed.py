"""Mixed precision: a bit width per layer, chosen from measured sensitivity, under a size budget.

Greedy by marginal cost: start every layer at its widest candidate; while the weights are over budget,
narrow the layer whose next step down costs the least accuracy per byte saved; then spend any budget
left by widening, one step at a time, the layer that gains the most accuracy per extra byte. Sizes are the
exact packed bytes of the weights plus one float32 scale per output channel (``tinyopt.compress.size``).
"""

from __future__ import annotations

import math

from torch import nn

from tinyopt.compress.prune import prunable_layers
from tinyopt.compress.sensitivity import Scan, quant_sensitivity
from tinyopt.errors import BudgetError


def weight_bytes(numel: int, channels: int, bits) -> int:
    return math.ceil(numel * bits / 8) + 4 * channels


def choose_bits(scan: Scan, channels: dict[str, int], budget_bytes: int) -> dict[str, int]:
    """Per-layer widths (from ``scan.levels``) whose weight bytes fit ``budget_bytes``."""
    levels = sorted(scan.levels)
    idx = {n: len(levels) - 1 for n in scan.accuracy}
    pos = {b: scan.levels.index(b) for b in levels}

    def size():
        return sum(weight_bytes(scan.numel[n], channels[n], levels[i]) for n, i in idx.items())

    while size() > budget_bytes:
        best = None
        for n, i in idx.items():
            if i == 0:
                continue
            saved = (weight_bytes(scan.numel[n], channels[n], levels[i])
                     - weight_bytes(scan.numel[n], channels[n], levels[i - 1]))
            loss = max(0.0, scan.accuracy[n][pos[levels[i]]] - scan.accuracy[n][pos[levels[i - 1]]])
            cost = (loss + 1e-6) / saved
            if best is None or cost < best[0]:
                best = (cost, n)
        if best is None:
            raise BudgetError(f"weights need {size()} bytes even at {levels[0]} bits, over the "
                              f"budget of {budget_bytes}", where="mixed precision",
                              fix="raise the budget or allow narrower widths")
        idx[best[1]] -= 1
    while True:  # spend what is left of the budget where a wider layer gains the most per byte
        best = None
        for n, i in idx.items():
            if i == len(levels) - 1:
                continue
            extra = (weight_bytes(scan.numel[n], channels[n], levels[i + 1])
                     - weight_bytes(scan.numel[n], channels[n], levels[i]))
            if size() + extra > budget_bytes:
                continue
            gain = scan.accuracy[n][pos[levels[i + 1]]] - scan.accuracy[n][pos[levels[i]]]
            if gain > 0 and (best is None or gain / extra > best[0]):
                best = (gain / extra, n)
        if best is None:
            return {n: levels[i] for n, i in idx.items()}
        idx[best[1]] += 1


def mixed_precision(model: nn.Module, val, budget_bits: float = 4.0, candidates=(2, 3, 4, 5, 6, 8),
                    scan: Scan | None = None) -> tuple[dict[str, int], Scan]:
    """Widths for every Conv/Linear so the weights take no more bytes than at a uniform ``budget_bits``."""
    layers = prunable_layers(model)
    scan = scan or quant_sensitivity(model, val, tuple(candidates))
    channels = {n: m.weight.shape[0] for n, m in layers.items()}
    budget = sum(weight_bytes(m.weight.numel(), channels[n], budget_bits) for n, m in layers.items())
    return choose_bits(scan, channels, budget), scan


__all__ = ["choose_bits", "mixed_precision", "weight_bytes"]
