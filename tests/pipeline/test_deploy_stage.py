"""The pipeline's C deployment reports every plan the generator tried, for the report's trade-off plot."""

from __future__ import annotations

import numpy as np
import torch

from tinyopt import zoo
from tinyopt.convert import convert_torch
from tinyopt.pipeline.deploy_stage import deploy_c


def test_deploy_c_lists_the_plans_tried_with_the_chosen_one(tmp_path):
    torch.manual_seed(0)
    model = zoo.build("dscnn").eval()
    shape = zoo.input_shape("dscnn")
    calib = np.random.default_rng(1).normal(0, 1, (8, *shape)).astype(np.float32)
    graph = convert_torch(model, calib, shape)
    notes: list[str] = []
    out = deploy_c(graph, tmp_path / "deploy", "kws", None, notes)
    plans = out["plans"]
    chosen = [p for p in plans if p["chosen"]]
    assert len(plans) > 1 and len(chosen) == 1 and not notes
    assert chosen[0]["arena_bytes"] == out["arena_bytes"]  # the library's arena is the chosen plan's
    speed = min(p["instructions"] for p in plans)
    assert chosen[0]["instructions"] <= 1.15 * speed  # the default (balanced) plan's bound
    assert min(p["arena_bytes"] for p in plans) <= out["arena_bytes"]


def test_report_draws_the_plans(tmp_path):
    from tinyopt.report.plots import plan_tradeoff

    fig = plan_tradeoff([{"arena_bytes": 9000, "instructions": 100, "chosen": False},
                         {"arena_bytes": 6000, "instructions": 104, "chosen": True}])
    assert len(fig.axes[0].collections) == 2  # the tried plans and the starred one
