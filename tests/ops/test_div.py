"""DIV against TFLM (60 seeded broadcast configurations with fused activations, int8 and float32), the
wide-shift behaviour of TFLM's integer division, convert (exact cases only), and the doors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from onnx import helper

from ops._oracles import (
    assert_onnx_matches_ort,
    assert_torch_matches,
    convert_and_match_tflm,
    dequantized,
    onnx_file,
    random_binary,
)
from runtime._reference import assert_matches_reference, qtensor
from tinyopt.errors import UnsupportedOpError
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Graph, Node, Tensor
from tinyopt.ops._gemmlowp import rounding_divide_by_pot_wide

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ACTS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


@pytest.mark.parametrize("seed", range(60))
def test_div_matches_tflm(seed):
    g, xs = random_binary("DIV", 900 + seed, int8=bool(seed % 2), attrs={"activation": ACTS[seed % 4]},
                          positive_b=True)
    out = assert_matches_reference(g, xs)[0]
    if seed % 2 == 0 and ACTS[seed % 4] == "NONE":
        rank = len(g.tensors["y"].shape)
        a = xs[0].reshape(xs[0].shape[:1] + (1,) * (rank - xs[0].ndim) + xs[0].shape[1:])
        b = g.tensors["b"].data if len(xs) == 1 else \
            xs[1].reshape(xs[1].shape[:1] + (1,) * (rank - xs[1].ndim) + xs[1].shape[1:])
        np.testing.assert_allclose(out.reshape(-1), (a / b).reshape(-1), rtol=1e-6)


def test_every_int8_pair_matches_tflm_including_shifts_beyond_31_bits():
    """All 256 numerators against 40 denominators: small numerators make TFLM's final shift 32-35 bits."""
    g = single_op_model("DIV", [qtensor("a", (1, 256), 0.05, 3), qtensor("b", (1, 256), 0.1, -5)],
                        qtensor("y", (1,), 0.2, 1), {"activation": "NONE"})
    a = np.tile(np.arange(-128, 128, dtype=np.int8), (40, 1))
    b = np.repeat(np.arange(-128, 128, dtype=np.int8)[::6][:40, None], 256, axis=1)
    b[b == 5] = 6  # not the zero point: no division by zero
    assert_matches_reference(g, [a, b])


def test_wide_rounding_shift_by_hand():
    # exponent 33 on x86: 1000 >> (33 % 32) = 500, + 1 for x >= 0; -1000 >> 1 = -500, + 0
    assert rounding_divide_by_pot_wide(np.array([1000, -1000]), 33).tolist() == [501, -500]
    assert rounding_divide_by_pot_wide(np.array([1000, -1000]), 3).tolist() == [125, -125]


def _reciprocal_graph():
    g = Graph("t")
    g.add_tensor(Tensor("one", (1,), data=np.array([1.0], np.float32)))
    g.add_tensor(Tensor("x", (1, 3, 8)))
    g.add_tensor(Tensor("y", (1,)))
    g.add_node(Node("y", "DIV", ["one", "x"], ["y"], {"activation": "NONE"}))
    g.inputs, g.outputs = ["x"], ["y"]
    return g.infer_shapes()


def test_converted_reciprocal_runs_in_tflm_and_approximates_1_over_x():
    rng = np.random.default_rng(0)
    xs = rng.uniform(0.5, 4.0, size=(16, 3, 8)).astype(np.float32)
    q = convert_and_match_tflm(_reciprocal_graph(), rng.uniform(0.5, 4.0, size=(64, 3, 8)).astype(np.float32),
                               xs)
    x = q.tensors[q.inputs[0]]
    from tinyopt.runtime import Interpreter

    xq = np.clip(np.round(xs / x.quant.scale[0]) + x.quant.zero_point[0], -128, 127).astype(np.int8)
    got = dequantized(q, Interpreter(q).run(xq)[0])
    x_seen = (xq.astype(np.float64) - x.quant.zero_point[0]) * x.quant.scale[0]  # what the int8 model sees
    np.testing.assert_allclose(got, 1 / x_seen, atol=1.01 * q.tensors[q.outputs[0]].quant.scale[0])


def test_converting_a_division_of_two_activations_is_refused():
    g = Graph("t")
    for name in ("x", "e", "y"):
        g.add_tensor(Tensor(name, (1, 6) if name == "x" else (1,)))
    g.add_node(Node("e", "LOGISTIC", ["x"], ["e"]))
    g.add_node(Node("y", "DIV", ["x", "e"], ["y"], {"activation": "NONE"}))
    g.inputs, g.outputs = ["x"], ["y"]
    g.infer_shapes()
    from tinyopt.convert import convert_graph

    with pytest.raises(UnsupportedOpError, match="numerator computed at run time") as e:
        convert_graph(g, np.random.default_rng(0).normal(size=(16, 6)).astype(np.float32))
    assert "node 1 'y' (DIV)" in str(e.value) and "keep the division in float" in str(e.value)


def test_onnx_div_forms_match_ort(tmp_path):
    nodes = [  # two values: DIV; a constant divisor: MUL; Reciprocal and a constant numerator: DIV
        helper.make_node("Exp", ["x"], ["e"]),
        helper.make_node("Div", ["x", "e"], ["q1"]),
        helper.make_node("Div", ["q1", "two"], ["q2"]),
        helper.make_node("Reciprocal", ["e"], ["r"]),
        helper.make_node("Div", ["three", "e"], ["q3"]),
        helper.make_node("Add", ["q2", "r"], ["s"]),
        helper.make_node("Add", ["s", "q3"], ["y"])]
    path = onnx_file(tmp_path, nodes, (1, 3, 4, 5),
                     inits=[("two", np.float32(2.0)), ("three", np.float32(3.0))], opset=13)
    g = assert_onnx_matches_ort(path, np.random.default_rng(0).normal(size=(2, 3, 4, 5)).astype(np.float32))
    assert [n.op for n in g.nodes].count("DIV") == 3 and "MUL" in {n.op for n in g.nodes}


def test_onnx_division_by_a_square_root_becomes_rsqrt_and_mul(tmp_path):
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], axes=[1], keepdims=1),
             helper.make_node("Mul", ["m", "m"], ["m2"]),
             helper.make_node("Add", ["m2", "eps"], ["v"]),
             helper.make_node("Sqrt", ["v"], ["s"]),
             helper.make_node("Div", ["x", "s"], ["y"])]
    path = onnx_file(tmp_path, nodes, (1, 3, 4, 5), inits=[("eps", np.float32(1e-3))], opset=13)
    g = assert_onnx_matches_ort(path, np.random.default_rng(0).normal(size=(2, 3, 4, 5)).astype(np.float32))
    ops = [n.op for n in g.nodes]
    assert "RSQRT" in ops and "SQRT" not in ops and "DIV" not in ops


class _Divs(torch.nn.Module):
    def forward(self, x):
        e = torch.exp(x)
        return x / e + x / 4 + 2 / e + torch.div(x, e) + e.reciprocal() + x.div(e.sum(dim=1, keepdim=True))


def test_torch_division_forms_match_torch():
    g = assert_torch_matches(_Divs(), (3, 4, 5), atol=1e-4)
    assert [n.op for n in g.nodes].count("DIV") == 5


def test_torch_div_with_rounding_mode_is_refused():
    class M(torch.nn.Module):
        def forward(self, x):
            return torch.div(x, torch.exp(x), rounding_mode="floor")

    with pytest.raises(UnsupportedOpError, match="rounding_mode"):
        assert_torch_matches(M(), (4,))


# (s1, z1, s2, z2, so, zo, a, b, TFLM's quotient). s1 / (s2 so) in double gives the multipliers 1376651737,
# 1325981256 and 1141640277 (shifts 7, 8, 8); float32 arithmetic gives 1376651776, 1325981184, 1141640192,
# and the quotients -49, -111, -44: one off, where the rescaled quotient sits on a rounding tie.
DIV_TIES = [(0.2370445728302002, 123, 0.14877447485923767, -128, 0.01941768266260624, 43, -32, 11, -48),
            (0.9327567219734192, 117, 0.1641828566789627, -128, 0.035941243171691895, 67, -49, 19, -112),
            (0.3630611002445221, 116, 0.034289442002773285, -128, 0.07780005782842636, 76, 31, -32, -45)]


@pytest.mark.parametrize("s1,z1,s2,z2,so,zo,a,b,want", DIV_TIES)
def test_multiplier_is_the_double_ratio_on_a_rounding_tie(s1, z1, s2, z2, so, zo, a, b, want):
    """TFLM's DIV requantizes by s1 / (s2 so) taken in double: the runtime gives its quotient where float32
    arithmetic gives the neighbouring one."""
    import dataclasses

    from runtime._reference import run_tflm
    from tinyopt.export.tflite import graph_to_tflite_bytes
    from tinyopt.runtime import Interpreter
    from tinyopt.runtime.fixedpoint import quantize_multiplier

    g = single_op_model("DIV", [qtensor("a", (1, 1), s1, z1), qtensor("b", (1, 1), s2, z2)],
                        qtensor("y", (1,), so, zo), {"activation": "NONE"})
    xs = [np.array([[a]], np.int8), np.array([[b]], np.int8)]
    assert int(run_tflm(graph_to_tflite_bytes(g), xs)[0].ravel()[0]) == want
    interp = Interpreter(g)
    assert int(interp.run(xs)[0].ravel()[0]) == want
    f32 = np.float32
    m, s = quantize_multiplier(float(f32(f32(s1) / f32(f32(s2) * f32(so)))))
    interp.params[0] = dataclasses.replace(interp.params[0], output_multiplier=m, output_shift=s)
    assert int(interp.run(xs)[0].ravel()[0]) != want  # the float32 ratio misses it
