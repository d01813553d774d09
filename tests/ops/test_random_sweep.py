"""A seeded sweep of random CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED configurations against TFLM:
sizes, strides, dilations, padding, multipliers, zero points and per-channel scales drawn at random."""

from __future__ import annotations

import numpy as np
import pytest

from runtime._reference import assert_matches_reference, qtensor, random_int8
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.shapes import conv_output_size


def random_layer(seed: int):
    rng = np.random.default_rng(1000 + seed)
    op = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")[seed % 3]
    in_s = np.float32(2.0 ** rng.uniform(-8, 0))
    in_z, out_z = (int(v) for v in rng.integers(-128, 128, 2))
    act = str(rng.choice(["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]))
    if op == "FULLY_CONNECTED":
        i, o = (int(v) for v in rng.integers(1, 80, 2))
        shape_x, shape_w, cout, axis, attrs = (1, i), (o, i), o, 0, dict(activation=act)
    else:
        while True:
            h, w = (int(v) for v in rng.integers(1, 12, 2))
            kh, kw = (int(v) for v in rng.integers(1, 5, 2))
            sh, sw = (int(v) for v in rng.integers(1, 4, 2))
            dh, dw = (int(v) for v in rng.integers(1, 3, 2)) if rng.random() < 0.3 else (1, 1)
            pad = str(rng.choice(["SAME", "VALID"]))
            if min(conv_output_size(h, kh, sh, dh, pad), conv_output_size(w, kw, sw, dw, pad)) > 0:
                break
        cin = int(rng.integers(1, 6))
        attrs = dict(stride=(sh, sw), dilation=(dh, dw), padding=pad, activation=act)
        if op == "CONV_2D":
            cout = int(rng.integers(1, 7))
            shape_w, axis = (cout, kh, kw, cin), 0
        else:
            m = int(rng.integers(1, 4))
            cout = cin * m
            shape_w, axis = (1, kh, kw, cout), 3
            attrs["depth_multiplier"] = m
        shape_x = (1, h, w, cin)
    w_s = (2.0 ** rng.uniform(-12, -2, cout)).astype(np.float32)
    w = rng.integers(-127, 128, shape_w).astype(np.int8)
    bias = rng.integers(-(1 << 14), 1 << 14, cout).astype(np.int32)
    zeros = np.zeros(cout, np.int64)
    inputs = [qtensor("x", shape_x, in_s, in_z), qtensor("w", shape_w, w_s, zeros, data=w, axis=axis),
              qtensor("b", (cout,), in_s * w_s, zeros, data=bias, dtype="int32", axis=0)]
    out = qtensor("y", (1, 1, 1, cout) if op != "FULLY_CONNECTED" else (1, cout),
                  np.float32(2.0 ** rng.uniform(-6, 0)), out_z)
    return single_op_model(op, inputs, out, attrs), rng


@pytest.mark.parametrize("seed", range(45))
def test_random_layer_matches_tflm(seed):
    g, rng = random_layer(seed)
    assert_matches_reference(g, random_int8(rng, (8, *g.tensors["x"].shape[1:])))


def random_other(seed: int):
    rng = np.random.default_rng(2000 + seed)
    op = ("ADD", "SUB", "MUL", "AVERAGE_POOL_2D", "MAX_POOL_2D", "MEAN", "SOFTMAX")[seed % 7]

    def q(name, shape, lo=-8, hi=0):
        return qtensor(name, shape, np.float32(2.0 ** rng.uniform(lo, hi)), int(rng.integers(-128, 128)))

    act = str(rng.choice(["NONE", "RELU", "RELU6"]))
    shape = (1, int(rng.integers(1, 9)), int(rng.integers(1, 9)), int(rng.integers(1, 5)))
    if op in ("ADD", "SUB", "MUL"):
        ins, out, attrs = [q("x", shape), q("x2", shape)], q("y", shape), dict(activation=act)
    elif op == "SOFTMAX":
        ins, out, attrs = [q("x", shape, -6, 1)], qtensor("y", shape, 1 / 256, -128), dict(beta=1.0)
    elif op == "MEAN":
        from tinyopt.graph.ir import Tensor

        axes = Tensor("axes", (2,), "int32", data=np.array([1, 2], np.int32))
        ins, out, attrs = [q("x", shape), axes], q("y", (1, 1, 1, shape[3])), dict(keep_dims=True)
    else:
        x = q("x", shape)
        fh, fw = int(rng.integers(1, shape[1] + 1)), int(rng.integers(1, shape[2] + 1))
        attrs = dict(filter=(fh, fw), stride=tuple(int(v) for v in rng.integers(1, 3, 2)),
                     padding=str(rng.choice(["SAME", "VALID"])), activation=act)
        ins, out = [x], qtensor("y", shape, x.quant.scale, x.quant.zero_point)
    return single_op_model(op, ins, out, attrs), rng


@pytest.mark.parametrize("seed", range(35))
def test_random_other_op_matches_tflm(seed):
    g, rng = random_other(seed)
    xs = [random_int8(rng, (8, *g.tensors[n].shape[1:])) for n in g.inputs]
    assert_matches_reference(g, xs)
