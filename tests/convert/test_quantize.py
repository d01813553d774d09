"""quantize_graph's rules by hand: weight and bias quantization, activation parameters, and TFLite's
conventions for special operators."""

from __future__ import annotations

import numpy as np
import pytest

from tinyopt.convert import choose_activation_qparams, quantize_bias, quantize_graph, quantize_weight
from tinyopt.errors import UnsupportedOpError
from tinyopt.graph.ir import Graph, Node, Tensor


def test_quantize_weight_per_channel_by_hand():
    w = np.array([[0.5, -1.0, 0.3], [0.2, 0.05, -0.1]], np.float32)
    q, s = quantize_weight(w, axis=0)
    # Channel 0: scale 1/127, q = [63.5 -> 64 (even), -127, 38.1 -> 38]; channel 1: scale 0.2/127,
    # q = [127, 31.75 -> 32, -63.5 -> -64].
    np.testing.assert_allclose(s, [1 / 127, 0.2 / 127], rtol=1e-7)
    assert q.tolist() == [[64, -127, 38], [127, 32, -64]]
    q0, s0 = quantize_weight(np.zeros((2, 3), np.float32), axis=0)
    assert q0.tolist() == [[0, 0, 0], [0, 0, 0]] and s0.tolist() == [1.0, 1.0]  # no zero scale


def test_quantize_bias_by_hand():
    # 0.3 / (0.1 * 0.02) = 150; -0.0051 / 0.002 = -2.55 -> -3.
    assert quantize_bias(np.array([0.3, -0.0051]), np.array([0.002, 0.002])).tolist() == [150, -3]


@pytest.mark.parametrize("lo,hi,scale,zp", [
    (-1.0, 2.0, 3 / 255, -43),        # -128 - (-1) / (3/255) = -128 + 85
    (0.0, 2.55, 0.01, -128),          # zero at the bottom of the range
    (-2.55, 0.0, 0.01, 127),          # zero at the top
    (0.5, 3.0, 3.0 / 255, -128),      # widened to include 0
])
def test_activation_qparams_by_hand(lo, hi, scale, zp):
    s, z = choose_activation_qparams(lo, hi)
    assert np.isclose(s, scale, rtol=1e-6) and z == zp


def small_graph(ops):
    """x [1,4,4,2] → CONV_2D 1x1 (2→2) → each op in ``ops`` (shape-preserving, single input)."""
    g = Graph("t")
    g.add_tensor(Tensor("x", (1, 4, 4, 2)))
    g.add_tensor(Tensor("w", (2, 1, 1, 2), data=np.array([[[[1.0, -0.5]]], [[[0.25, 2.0]]]], np.float32)))
    g.add_tensor(Tensor("b", (2,), data=np.array([0.1, -0.2], np.float32)))
    g.add_tensor(Tensor("c", (1, 4, 4, 2)))
    g.add_node(Node("conv", "CONV_2D", ["x", "w", "b"], ["c"], dict(stride=(1, 1), padding="SAME")))
    prev = "c"
    for i, (op, attrs) in enumerate(ops):
        out = f"t{i}"
        g.add_tensor(Tensor(out, (1, 4, 4, 2)))
        g.add_node(Node(op.lower(), op, [prev], [out], attrs))
        prev = out
    g.inputs, g.outputs = ["x"], [prev]
    return g.infer_shapes().validate()


def test_special_operator_conventions():
    g = small_graph([("MAX_POOL_2D", dict(filter=(2, 2), stride=(2, 2), padding="VALID")),
                     ("LOGISTIC", {}), ("TANH", {}), ("SOFTMAX", dict(beta=1.0))])
    ranges = {name: (-3.0, 5.0) for name in g.tensors}
    q = quantize_graph(g, ranges)
    qp = {n: (float(t.quant.scale[0]), int(t.quant.zero_point[0])) for n, t in q.tensors.items()
          if not t.constant}
    assert qp["t0"] == qp["c"]                      # max pool shares its input's parameters
    assert qp["t1"] == (1 / 256, -128)              # logistic
    assert qp["t2"] == (1 / 128, 0)                 # tanh
    assert qp["t3"] == (1 / 256, -128)              # softmax
    w = q.tensors["w"]
    assert w.dtype == "int8" and w.quant.axis == 0 and w.data.tolist() == [[[[127, -64]]], [[[16, 127]]]]
    b = q.tensors["b"]
    # bias scale = input scale (8/255) x weight scale (1/127 and 2/127)
    np.testing.assert_allclose(b.quant.scale, [8 / 255 / 127, 8 / 255 * 2 / 127], rtol=1e-6)
    assert b.dtype == "int32" and b.data.tolist() == [round(0.1 / (8 / 255 / 127)),
                                                      round(-0.2 / (8 / 255 * 2 / 127))]


def test_concatenation_inputs_are_requantized_to_the_output():
    g = Graph("cat")
    for n in ("a", "b"):
        g.add_tensor(Tensor(n, (1, 2, 2, 1)))
    g.add_tensor(Tensor("y", (1, 2, 2, 2)))
    g.add_node(Node("cat", "CONCATENATION", ["a", "b"], ["y"], dict(axis=3)))
    g.inputs, g.outputs = ["a", "b"], ["y"]
    q = quantize_graph(g, {"a": (-1.0, 1.0), "b": (-4.0, 4.0), "y": (-4.0, 4.0)})
    ops = [n.op for n in q.nodes]
    assert ops == ["QUANTIZE", "CONCATENATION"]     # only 'a' differs from the output's parameters
    assert q.nodes[1].inputs == ["a_requant", "b"]


def test_unfolded_batch_norm_is_refused():
    g = Graph("bn", source="m.onnx")
    g.add_tensor(Tensor("x", (1, 2, 2, 3)))
    for n in ("g", "be", "m", "v"):
        g.add_tensor(Tensor(n, (3,), data=np.ones(3, np.float32)))
    g.add_tensor(Tensor("y", (1, 2, 2, 3)))
    g.add_node(Node("bn", "BATCH_NORM", ["x", "g", "be", "m", "v"], ["y"], dict(epsilon=1e-5)))
    g.inputs, g.outputs = ["x"], ["y"]
    with pytest.raises(UnsupportedOpError, match=r"m.onnx: node 0 'bn' \(BATCH_NORM\).*fold_batchnorm"):
        quantize_graph(g, {"x": (-1, 1), "y": (-1, 1)})


def test_bias_past_int32_widens_the_weight_scale():
    """A channel whose weights are all near zero but whose bias is not: the plain max|w|/127 scale would put
    the int32 bias (and the accumulator TFLM wraps) past int32; the converter widens that channel's weight
    scale instead, as the TFLite converter does, and the int8 graph then equals TFLM."""
    from runtime._reference import assert_matches_reference
    from tinyopt.convert.convert import convert_graph
    from tinyopt.export.tflite import single_op_model
    from tinyopt.graph.ir import Tensor

    rng = np.random.default_rng(9)
    w = rng.normal(size=(3, 1, 1, 16)).astype(np.float32)
    w[1] *= 1e-9  # a dead channel
    b = np.array([0.1, 0.5, -0.2], np.float32)
    g = single_op_model("CONV_2D",
                        [Tensor("x", (1, 4, 4, 16)), Tensor("w", w.shape, data=w), Tensor("b", (3,), data=b)],
                        Tensor("y", (1,)), {"padding": "SAME"})
    q = convert_graph(g, rng.uniform(-1, 1, size=(8, 4, 4, 16)).astype(np.float32))
    bias = q.tensors[q.nodes[0].inputs[2]].data.astype(np.int64)
    assert np.abs(bias).max() + 255 * 127 * 16 < 2**31  # no wrap in TFLM's int32 accumulator
    ws = q.tensors[q.nodes[0].inputs[1]].quant.scale
    assert ws[1] > 1e-9 / 127  # widened: the bias decides it, not the (dead) weights
    xq = rng.integers(-128, 128, size=(10, 4, 4, 16)).astype(np.int8)
    assert_matches_reference(q, xq)
