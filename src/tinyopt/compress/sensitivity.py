"""Sensitivity scans: how much accuracy each layer loses when only that layer is pruned or quantized.

Layers differ wildly (the first conv and the classifier are usually fragile, big dense layers robust),
so a single global ratio wastes either accuracy or size. The scan is the measurement; ``choose_ratios``
turns it into per-layer pruning ratios that reach a target overall sparsity with the smallest worst-case
per-layer accuracy drop, and ``tinyopt.compress.mixed`` does the same for bit widths.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass

from torch import nn

from tinyopt._io import atomic_path
from tinyopt.compress.lowbit import quantize_weights_
from tinyopt.compress.prune import check_amount, prunable_layers, prune_unstructured_
from tinyopt.errors import BudgetError
from tinyopt.metrics import evaluate


@dataclass
class Scan:
    """``accuracy[layer][i]`` is the validation accuracy with only ``layer`` at ``levels[i]``."""

    kind: str  # "sparsity" or "bits"
    levels: list
    baseline: float
    accuracy: dict[str, list[float]]
    numel: dict[str, int]

    def drop(self, layer: str, i: int) -> float:
        return self.baseline - self.accuracy[layer][i]

    def table(self) -> str:
        head = f"{'layer':<24}{'weights':>10}" + "".join(f"{self.kind[:4]} {lv!s:>6}" .rjust(12)
                                                         for lv in self.levels)
        lines = [head, f"{'(baseline)':<24}{'':>10}" + f"{self.baseline:12.4f}" * len(self.levels)]
        for n, accs in self.accuracy.items():
            lines.append(f"{n:<24}{self.numel[n]:>10}" + "".join(f"{a:12.4f}" for a in accs))
        return "\n".join(lines)

    def plot(self, path: str | os.PathLike) -> None:
        """Accuracy versus level, one line per layer, written atomically as an image."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        x = [float(v) if not isinstance(v, str) else i for i, v in enumerate(self.levels)]
        for n, accs in self.accuracy.items():
            ax.plot(x, accs, marker="o", label=n)
        ax.axhline(self.baseline, color="k", linestyle="--", linewidth=0.8, label="baseline")
        ax.set_xlabel(self.kind)
        ax.set_ylabel("validation accuracy")
        ax.legend(fontsize=7)
        fig.tight_layout()
        suffix = os.path.splitext(str(path))[1] or ".png"
        with atomic_path(path, suffix=suffix) as tmp:
            fig.savefig(tmp)
        plt.close(fig)


def _scan(model: nn.Module, val, kind: str, levels, layers: list[str] | None, apply) -> Scan:
    """``apply(copy, layer, level)`` on a fresh copy of ``model`` for each layer and level, then evaluate."""
    all_layers = prunable_layers(model)
    names = layers or list(all_layers)
    base = evaluate(model, val).accuracy
    acc = {}
    for n in names:
        acc[n] = []
        for lv in levels:
            m = copy.deepcopy(model)
            apply(m, n, lv)
            acc[n].append(evaluate(m, val).accuracy)
    return Scan(kind, list(levels), base, acc, {n: all_layers[n].weight.numel() for n in names})


def prune_sensitivity(model: nn.Module, val, ratios=(0.25, 0.5, 0.75, 0.9), layers: list[str] | None = None,
                      criterion: str = "l1") -> Scan:
    """Prune one layer at a time (the rest untouched) and measure validation accuracy."""
    for r in ratios:
        check_amount(r, "sensitivity")
    return _scan(model, val, "sparsity", ratios, layers,
                 lambda m, n, r: prune_unstructured_(m, {n: r}, criterion=criterion))


def quant_sensitivity(model: nn.Module, val, bits=(2, 3, 4, 6, 8), layers: list[str] | None = None) -> Scan:
    """Quantize one layer's weights at a time to each width and measure validation accuracy."""
    return _scan(model, val, "bits", bits, layers, lambda m, n, b: quantize_weights_(m, {n: b}))


def choose_ratios(scan: Scan, target: float) -> dict[str, float]:
    """Per-layer ratios reaching ``target`` overall sparsity (weighted by layer size) while keeping the
    largest single-layer accuracy drop as small as possible: for a tolerated drop ``t`` each layer takes
    the highest scanned ratio whose drop is <= t; the smallest ``t`` that reaches the target wins."""
    check_amount(target, "sensitivity")
    total = sum(scan.numel.values())

    def pick(t):
        out = {}
        for n in scan.accuracy:
            ok = [r for i, r in enumerate(scan.levels) if scan.drop(n, i) <= t + 1e-12]
            out[n] = max(ok, default=0.0)
        return out

    for t in sorted({scan.drop(n, i) for n in scan.accuracy for i in range(len(scan.levels))} | {0.0}):
        ratios = pick(t)
        if sum(ratios[n] * scan.numel[n] for n in ratios) >= target * total - 1e-9:
            return ratios
    raise BudgetError(f"overall sparsity {target} is not reachable with the scanned ratios {scan.levels}",
                      where="sensitivity", fix="scan higher ratios or lower the target")


__all__ = ["Scan", "choose_ratios", "prune_sensitivity", "quant_sensitivity"]
