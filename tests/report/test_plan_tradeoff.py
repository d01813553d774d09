"""The RAM-instructions trade-off of the C library's plans: a point per plan tried, the chosen one marked."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "export" / "c"))

from test_stream import random_network

import tinyopt


def test_plan_figure_has_every_plan_tried_and_stars_the_chosen(tmp_path):
    d = tinyopt.deploy(random_network(2), target="c", out=tmp_path / "lib", optimize="ram")
    plans = d.plans()
    chosen = [p for p in plans if p["chosen"]]
    assert len(chosen) == 1
    assert chosen[0]["arena_bytes"] == d.arena_bytes == min(p["arena_bytes"] for p in plans)
    speed = tinyopt.deploy(random_network(2), target="c", out=tmp_path / "s", optimize="speed").plans()
    assert speed == [{**speed[0], "chosen": True}] and len(plans) > 1  # the speed plan alone; ram tried more
    fig = d.plan_figure()
    ax = fig.axes[0]
    tried, star = ax.collections
    assert len(tried.get_offsets()) == len(plans) - 1 and len(star.get_offsets()) == 1
    assert tuple(star.get_offsets()[0]) == (chosen[0]["instructions"], chosen[0]["arena_bytes"])
    fig.savefig(tmp_path / "plans.png")
    assert (tmp_path / "plans.png").stat().st_size > 1000
