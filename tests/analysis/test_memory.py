"""The greedy arena planner three ways (hand offsets, real models vs TFLM, too-small arena) + textbook."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import KWS_INT8, RESNET_FLOAT, RESNET_INT8, ROOT, need
from tinyopt.analysis.fit import analyze
from tinyopt.analysis.memory import ALIGNMENT, GreedyPlanner, align_up, plan_arena, tensor_lifetimes
from tinyopt.errors import BudgetError
from tinyopt.graph import load_model
from tinyopt.graph.spec import spec_to_graph


def test_hand_computed_offsets():
    # Sizes align to 16: 100→112, 50→64, 30→32, 200→208.
    p = GreedyPlanner()
    a = p.add_buffer(100, 0, 1)
    b = p.add_buffer(50, 1, 2)
    c = p.add_buffer(30, 0, 3)
    d = p.add_buffer(200, 3, 4)
    # Placement order by size: d(208) @0; a(112): not alive with d → @0; b(64): alive with a → @112;
    # c(32): alive with a [0,112), b [112,176), d [0,208) → first gap at 208.
    assert [p.offset_of(i) for i in (a, b, c, d)] == [0, 112, 208, 0]
    assert p.peak_bytes() == 240
    assert p.sum_bytes() == 112 + 64 + 32 + 208
    assert p.check_no_overlap()


def test_gap_between_buffers_is_reused():
    p = GreedyPlanner()
    p.add_buffer(64, 0, 2)    # @0
    p.add_buffer(64, 0, 0)    # @64 (alive with the first)
    p.add_buffer(64, 0, 2)    # @128 (alive with both)
    p.add_buffer(48, 1, 2)    # the second is dead at step 1: its hole [64,128) takes this one
    assert p.offset_of(3) == 64
    assert p.peak_bytes() == 192


def test_alignment_and_docstring_case():
    assert ALIGNMENT == 16 and align_up(1) == 16 and align_up(16) == 16 and align_up(17) == 32
    p = GreedyPlanner()
    for size, first, last in ((100, 0, 1), (50, 1, 2), (100, 2, 3)):
        p.add_buffer(size, first, last)
    assert [p.offset_of(i) for i in range(3)] == [0, 112, 0] and p.peak_bytes() == 176


def test_too_small_arena_is_a_clear_error():
    p = GreedyPlanner(arena_bytes=100)
    p.add_buffer(64, 0, 1)
    p.add_buffer(64, 1, 2)
    with pytest.raises(BudgetError, match=r"needs 128 bytes but only 100"):
        p.plan()


def test_check_no_overlap_catches_a_bad_plan():
    p = GreedyPlanner()
    p.add_buffer(32, 0, 1)
    p.add_buffer(32, 1, 2)
    p.plan()
    p.offsets_ = [0, 16]  # corrupt the plan: the two overlap at step 1
    with pytest.raises(AssertionError, match="overlap"):
        p.check_no_overlap()


def test_bad_buffer_is_rejected():
    with pytest.raises(ValueError):
        GreedyPlanner().add_buffer(10, 3, 1)


def test_plan_text_is_a_timeline():
    p = GreedyPlanner()
    p.add_buffer(64, 0, 1, name="x")
    p.add_buffer(64, 1, 2, name="y")
    text = p.plan_text(width=16)
    assert "A: x 64 B @ 0 steps 0..1" in text and "B: y 64 B @ 64 steps 1..2" in text
    assert "  1 AAAAAAAABBBBBBBB 128 B" in text


def test_lifetimes_follow_the_graph():
    g = spec_to_graph({"input": [8, 8, 1], "layers": [
        {"type": "conv2d", "filters": 4, "kernel": 3, "name": "a"},
        {"type": "conv2d", "filters": 4, "kernel": 3, "name": "b"},
        {"type": "conv2d", "filters": 4, "kernel": 1, "name": "c"}]})
    life = tensor_lifetimes(g)
    assert life["input"] == (0, 0) and life["a"] == (0, 1) and life["b"] == (1, 2) and life["c"] == (2, 2)


def test_residual_keeps_the_skip_alive():
    g = spec_to_graph({"input": [8, 8, 4], "layers": [
        {"type": "conv2d", "filters": 4, "kernel": 3, "padding": "same", "name": "a"},
        {"type": "conv2d", "filters": 4, "kernel": 3, "padding": "same", "name": "b"},
        {"type": "add", "from": "a", "name": "c"}]})
    assert tensor_lifetimes(g)["a"] == (0, 2)
    plan = plan_arena(g)
    # a, b and the add's output are alive together at step 2: 3 × 8×8×4×4 B = 3,072 B.
    assert plan.peak_bytes == 3 * 8 * 8 * 4 * 4
    plan.planner.check_no_overlap()


def test_exam_textbook_numbers():
    a = analyze(load_model(ROOT / "examples" / "specs" / "exam.yaml"))
    # Key: 91,203 × 4 / 1024 = 356.26 KB; 126×126×16×4 / 1024 = 992.25 KB; total 1,348.51 KB.
    assert round(a.textbook_param_bytes / 1024, 2) == 356.26
    assert a.largest_activation_bytes == 126 * 126 * 16 * 4 and a.largest_activation_bytes / 1024 == 992.25
    assert round(a.textbook_total_bytes / 1024, 2) == 1348.51
    # Planned: conv1 output (1,016,064 B) and pool1 output (254,016 B) are alive together: TFLM's head.
    # The arena (TFLM by default) adds its persistent tail on top (tests/analysis/test_arena.py).
    assert a.arena.runtime == "tflm-reference" and a.arena.head_bytes == 1016064 + 254016
    assert a.arena_bytes == a.arena.head_bytes + a.arena.tail_bytes


_TFLM = """
import sys
from tflite_micro.python.tflite_micro import runtime
runtime.Interpreter.from_file(sys.argv[1]).print_allocations()
"""


def tflm_head_bytes(path) -> int:
    """TFLM's own activation arena ("head") for a model, printed by its C++ recording allocator."""
    out = subprocess.run([sys.executable, "-c", _TFLM, str(path)], capture_output=True, text=True,
                         timeout=120)
    m = re.search(r"Arena allocation head (\d+) bytes", out.stdout + out.stderr)
    assert m, out.stdout + out.stderr
    return int(m.group(1))


@pytest.mark.parametrize("path", [KWS_INT8, RESNET_INT8, RESNET_FLOAT])  # TFLM refuses the hybrid KWS float
def test_planned_arena_not_above_tflm(path):
    pytest.importorskip("tflite_micro")
    g = load_model(need(path))
    plan = plan_arena(g)
    plan.planner.check_no_overlap()
    tflm = tflm_head_bytes(path)
    assert plan.peak_bytes <= tflm
    assert plan.peak_bytes < plan.planner.sum_bytes()  # sharing happened
    # Independent lower bound: the two (three for ResNet's skip) largest tensors alive together.
    largest = max(plan.sizes)
    assert plan.peak_bytes >= (2 if path == KWS_INT8 else 3) * largest
    assert tflm in (16000, 49152, 196608)  # the figures (int8), as TFLM prints them today


def test_random_plans_are_valid_and_bounded():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    buffers = st.lists(st.tuples(st.integers(1, 5000), st.integers(0, 20), st.integers(0, 6)), min_size=1,
                       max_size=16)

    @settings(max_examples=60, deadline=None, derandomize=True)
    @given(buffers)
    def check(bufs):
        p = GreedyPlanner()
        for size, first, length in bufs:
            p.add_buffer(size, first, first + length)
        assert p.check_no_overlap()
        assert all(p.offset_of(i) % ALIGNMENT == 0 for i in range(len(bufs)))
        # Lower bound: at every step the live buffers must all fit; upper bound: no sharing at all.
        live = max(sum(align_up(s) for s, f, n in bufs if f <= t <= f + n) for t in range(27))
        assert live <= p.peak_bytes() <= p.sum_bytes()

    check()


def test_pinned_buffers_keep_their_offset():
    p = GreedyPlanner()
    p.add_buffer(64, 0, 3, offline_offset=128)
    p.add_buffer(64, 0, 3)
    p.add_buffer(64, 0, 3)
    # The pinned one sits at 128; the others take the gaps below it: 0 and 64.
    assert [p.offset_of(i) for i in range(3)] == [128, 0, 64] and p.peak_bytes() == 192


def test_subclass_can_change_the_placement_order():
    class SmallestFirst(GreedyPlanner):
        def placement_order(self):
            return sorted(range(len(self.buffers)), key=lambda i: self.aligned_size(i))

    p = SmallestFirst()
    p.add_buffer(160, 0, 1)
    p.add_buffer(16, 0, 1)
    assert p.offset_of(1) == 0 and p.offset_of(0) == 16 and p.check_no_overlap()


def test_conflicts_hook_allows_in_place_sharing():
    class InPlace(GreedyPlanner):
        """Buffers 0 → 1 are an element-wise op's input and output: they may share bytes."""

        def conflicts(self, i, j):
            return {i, j} != {0, 1} and super().conflicts(i, j)

    p = InPlace()
    p.add_buffer(64, 0, 1)
    p.add_buffer(64, 1, 2)
    assert p.offset_of(1) == 0 and p.peak_bytes() == 64 and p.check_no_overlap()
    q = GreedyPlanner()
    q.add_buffer(64, 0, 1)
    q.add_buffer(64, 1, 2)
    assert q.peak_bytes() == 128


def test_module_doctests():
    import doctest

    from tinyopt.analysis import memory

    assert doctest.testmod(memory).failed == 0
