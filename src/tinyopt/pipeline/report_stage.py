"""Assemble the HTML report of a run from the stages' numbers (figures from ``tinyopt.report.plots``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyopt.report import plots
from tinyopt.report.html import Report


def _weights(model) -> np.ndarray:
    import torch

    return np.concatenate([m.weight.detach().numpy().ravel() for m in model.modules()
                           if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear))])


def write_report(path: Path, cfg: dict, data_meta: dict, fs, train_meta: dict, variants: list[dict],
                 evals: dict, models: dict) -> Path:
    best = variants[-1]
    rep = Report(f"tinyopt · {cfg['name']}",
                 f"{data_meta['source']} → {cfg['features']['block']} features → {cfg['model']['zoo']} "
                 f"→ {cfg['target']['device']}")
    rep.cards([("test accuracy", f"{100 * best['accuracy']:.2f} %", best["variant"]),
               ("parameters", f"{best['params']:,}", best["variant"]),
               ("examples", f"{sum(data_meta['sizes'].values()):,}",
                " / ".join(f"{k} {v}" for k, v in data_meta["sizes"].items()))])
    rep.section("Variants", "Every model the run produced, measured on the test split.")
    rep.table(variants)
    rep.section("Data", f"Source {data_meta['source']}; {len(data_meta['classes'])} classes.")
    rep.grid()
    rep.figure(plots.class_balance(data_meta["balance"]), "examples per class and split")
    rep.figure(plots.training_curves(train_meta["history"], "float training"), "loss and validation accuracy")
    rep.grid(False)
    rep.section("Confusion matrix", "Float model on the test split.")
    cm = np.asarray(evals["float"]["metrics"]["confusion"])
    rep.figure(plots.confusion(cm, data_meta["classes"]), "rows: true class, columns: predicted class")
    rep.section("Weights")
    rep.figure(plots.weight_histograms({k: _weights(m) for k, m in models.items()}), "weight distributions")
    rep.save(path)
    return path
