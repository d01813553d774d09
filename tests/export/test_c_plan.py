"""Arena planner: hand-computed offsets, in-place bounds, a real model's peak, and a too-small arena."""

from __future__ import annotations

import pytest

from conftest import KWS_INT8, RESNET_INT8, need
from tinyopt.errors import BudgetError
from tinyopt.export.c.params import prepare
from tinyopt.export.c.plan import (
    ArenaPlanner,
    _conv_bounds,
    best_plan,
    build_plan,
    find_fusions,
    make_schedule,
    topological_orders,
)
from tinyopt.graph import load_model


def test_greedy_offsets_by_hand():
    # a [0,1] 100 B, b [1,2] 60 B, c [2,3] 80 B, d [0,3] 10 B. Largest first: a@0; c (alive with b, d only)
    # @0 since a is dead at 2; b overlaps a and c in time -> after a: 100; d overlaps all -> after b: 160.
    p = ArenaPlanner()
    for name, size, first, last in [("a", 100, 0, 1), ("b", 60, 1, 2), ("c", 80, 2, 3), ("d", 10, 0, 3)]:
        p.add_buffer(name, size, first, last)
    p.plan()
    assert {n: p.offset_of(n) for n in "abcd"} == {"a": 0, "c": 0, "b": 100, "d": 160}
    assert p.peak_bytes == 170 < 100 + 60 + 80 + 10
    p.check_no_overlap()
    assert "arena 170 bytes" in p.print_plan()


def test_in_place_permission_lets_output_share_its_dying_input():
    # y = add(x, z) with x dying at step 1: fwd_max 0 means y may start at or before x
    p = ArenaPlanner()
    p.add_buffer("x", 64, 0, 1)
    p.add_buffer("z", 64, 0, 1)
    p.add_buffer("y", 64, 1, 2)
    p.allow_overlap(1, "x", "y", 0)
    p.plan()
    assert p.peak_bytes == 128 and p.offset_of("y") == p.offset_of("x")
    assert p.in_place_nodes() == {1}
    q = ArenaPlanner(allow_inplace=False)
    q.buffers, q.overlaps = {k: type(v)(v.name, v.size, v.first, v.last)
                             for k, v in p.buffers.items()}, p.overlaps
    assert q.plan().peak_bytes == 192


def test_conv_bounds_by_hand():
    # 3x3 stride 1 pad 1, 4 rows of 10 bytes in and out: after output row r (top-down) input rows >= r are
    # still read, so output row r may end at input row r's start: fwd_max = r*10 - (r+1)*10 = -10.
    # Bottom-up: after row r, rows <= r are read: output row r may start at input row r+1: rev_min = +10.
    ints = dict(in_h=4, out_h=4, in_w=5, in_c=2, out_w=5, out_c=2, stride_h=1, padding_h=1, filter_h=3,
                dilation_h=1)
    assert _conv_bounds(ints) == (-10, 10)
    # 1x1: exactly in place either way
    ints.update(filter_h=1, padding_h=0)
    assert _conv_bounds(ints) == (0, 0)
    # stride 2 halving the rows, doubling channels (row bytes equal): top-down may share the start
    ints.update(in_h=8, filter_h=3, padding_h=1, stride_h=2, out_c=4, in_w=10, in_c=1, out_w=5)
    # r: lo(r+1) = 2(r+1)-1 = 2r+1 -> (2r+1)*10 - (r+1)*20 = -10 for every r
    assert _conv_bounds(ints)[0] == -10


def test_too_small_arena_is_a_clear_error():
    p = ArenaPlanner(arena_limit=100)
    p.add_buffer("a", 80, 0, 1)
    p.add_buffer("b", 80, 1, 2)
    with pytest.raises(BudgetError, match="160 bytes, the arena limit is 100"):
        p.plan()


def _prepared(g):
    return {i: prepare(g, i, n) for i, n in enumerate(g.nodes)}


def test_kws_plan_reuses_one_activation_buffer():
    g = load_model(need(KWS_INT8))
    prep = _prepared(g)
    plan = best_plan(g, prep)
    plan.planner.check_no_overlap()
    acts = sum(t.nbytes for t in g.activations())
    # every 25x5x64 activation (8000 B) lives in one buffer shifted by at most a row (320 B), plus a two-row
    # scratch (the depthwise pair loop and the odd-width first conv finish two rows at once) and the 1x1
    # convs' two widened pixels (2 x 64 channels x 2 bytes)
    assert plan.arena_bytes <= 8000 + 3 * 320 + 4 * 64 < acts
    plain = build_plan(make_schedule(g, prep, fuse=False), list(range(len(g.nodes))), allow_inplace=False)
    # ping-pong of two 8000 B buffers (TFLM's arena head: 24,272 - 8,272 tail B) plus the widened pixels
    assert plain.arena_bytes == 2 * 8000 + 4 * 64


def test_resnet_orders_fusions_and_plan():
    g = load_model(need(RESNET_INT8))
    orders = topological_orders(g)
    assert orders[0] == list(range(len(g.nodes)))
    assert len(orders) == 9  # the shortcut conv of blocks 2 and 3 can run at three places each
    prep = _prepared(g)
    fused = find_fusions(g, prep)
    # each residual ADD (nodes 3, 7, 11) absorbs the conv feeding its first eligible operand: block 1's
    # second conv (2), then the 1x1 shortcut convs of blocks 2 and 3 (6, 10), whose outputs come first
    assert {i: f.add_index for i, f in fused.items()} == {2: 3, 6: 7, 10: 11}
    assert fused[2].other == g.nodes[0].outputs[0] and fused[2].conv_first is False
    plan = best_plan(g, prep)
    plan.planner.check_no_overlap()
    # the peak is block 1: its input (kept for the skip) and conv 1's output, 32x32x16 each, plus two
    # 3x3x16 im2col patches widened to 16 bits; with the caller's 10 B output it stays under 0.6 x TFLM's
    # 55,984 B
    assert plan.arena_bytes == 2 * 32 * 32 * 16 + 4 * 144
    assert plan.arena_bytes + 10 < 0.6 * 55984
