"""SVDF against TFLM (float32 and int8 with int16 or int8 state) and its conversion."""

from __future__ import annotations

import numpy as np
import pytest

from ops._oracles import weights_summing_to
from runtime._reference import assert_matches_reference, qtensor, random_int8
from tinyopt.errors import UnsupportedOpError
from tinyopt.export.tflite import graph_to_tflite_bytes, single_op_model
from tinyopt.graph.ir import Graph, Node, QuantParams, Tensor
from tinyopt.ops.svdf import Svdf
from tinyopt.runtime import Interpreter

OP = "SVDF"
assert OP == Svdf.name


def svdf_graph(seed: int, int8: bool):
    rng = np.random.default_rng(seed)
    i, units, rank, mem = (int(v) for v in (rng.integers(1, 9), rng.integers(1, 6), rng.integers(1, 4),
                                            rng.integers(1, 6)))
    f = units * rank
    act = str(rng.choice(["NONE", "RELU"]))
    if int8:
        xs, xz = float(rng.uniform(0.01, 0.1)), int(rng.integers(-20, 21))
        wt_dtype = str(rng.choice(["int16", "int8"]))
        ss, sz = float(rng.uniform(0.01, 0.2)), (0 if wt_dtype == "int16" else int(rng.integers(-10, 11)))
        wt_s, top = float(rng.uniform(1e-4, 1e-2)), (32767 if wt_dtype == "int16" else 127)
        ins = [qtensor("x", (1, i), xs, xz),
               qtensor("wf", (f, i), float(rng.uniform(0.005, 0.05)), 0,
                       data=rng.integers(-127, 128, size=(f, i)).astype(np.int8)),
               qtensor("wt", (f, mem), wt_s, 0,
                       data=rng.integers(-top, top + 1, size=(f, mem)).astype(wt_dtype), dtype=wt_dtype),
               qtensor("b", (units,), np.float32(ss) * np.float32(wt_s), 0, dtype="int32",
                       data=rng.integers(-5000, 5000, size=units).astype(np.int32)),
               Tensor("s", (1, f * mem), wt_dtype, quant=QuantParams(ss, sz), variable=True)]
        y = qtensor("y", (1,), float(rng.uniform(0.01, 0.5)), int(rng.integers(-20, 21)))
        x = random_int8(rng, (5, i))
    else:
        ins = [Tensor("x", (1, i)), Tensor("wf", (f, i), data=rng.normal(size=(f, i)).astype(np.float32)),
               Tensor("wt", (f, mem), data=rng.normal(size=(f, mem)).astype(np.float32)),
               Tensor("b", (units,), data=rng.normal(size=units).astype(np.float32)) if rng.random() < 0.7
               else None, Tensor("s", (1, f * mem), variable=True)]
        y = Tensor("y", (1,))
        x = rng.normal(size=(5, i)).astype(np.float32)
    return single_op_model(OP, ins, y, {"rank": rank, "activation": act}), x


@pytest.mark.parametrize("seed", range(30))
def test_float32_matches_tflm(seed):
    g, x = svdf_graph(seed, False)
    assert_matches_reference(g, x)  # a missing bias is written as zeros (TFLM crashes without one)


@pytest.mark.parametrize("seed", range(30))
def test_int8_matches_tflm(seed):
    g, x = svdf_graph(100 + seed, True)
    assert_matches_reference(g, x)


def test_one_invocation_by_hand():
    """From the reset state only the newest column counts: out = b + w_t[:, -1] * (W_f x), summed over rank.
    W_f = [[1, 2], [3, 4]], x = [1, 1] -> features [3, 7]; w_t[:, -1] = [0.5, -1]; rank 2 -> 1.5 - 7 + b 1."""
    ins = [Tensor("x", (1, 2)), Tensor("wf", (2, 2), data=np.array([[1, 2], [3, 4]], np.float32)),
           Tensor("wt", (2, 3), data=np.array([[9, 9, 0.5], [9, 9, -1]], np.float32)),
           Tensor("b", (1,), data=np.array([1.0], np.float32)), Tensor("s", (1, 6), variable=True)]
    g = single_op_model(OP, ins, Tensor("y", (1,)), {"rank": 2, "activation": "NONE"})
    out = assert_matches_reference(g, np.ones((1, 2), np.float32))[0]
    assert out[0, 0] == pytest.approx(-4.5)


def test_state_must_be_variable():
    g, x = svdf_graph(1, False)
    g.tensors["s"].variable = False
    g.inputs.append("s")
    with pytest.raises(UnsupportedOpError, match="not a variable tensor"):
        Interpreter(g)


def _float_svdf_model(act: str) -> Graph:
    rng = np.random.default_rng(5)
    g = Graph("svdf")
    g.add_tensor(Tensor("x", (1, 12)))
    g.add_tensor(Tensor("wf", (8, 12), data=rng.normal(0, 0.3, size=(8, 12)).astype(np.float32)))
    g.add_tensor(Tensor("wt", (8, 4), data=rng.normal(0, 0.5, size=(8, 4)).astype(np.float32)))
    g.add_tensor(Tensor("b", (4,), data=rng.normal(0, 0.1, size=4).astype(np.float32)))
    g.add_tensor(Tensor("s", (1, 32), variable=True))
    g.add_tensor(Tensor("y", (1, 4)))
    g.add_tensor(Tensor("w2", (3, 4), data=rng.normal(0, 0.5, size=(3, 4)).astype(np.float32)))
    g.add_tensor(Tensor("z", (1, 3)))
    from tinyopt.ops.fully_connected import FullyConnected

    g.add_node(Node("svdf", OP, ["x", "wf", "wt", "b", "s"], ["y"], {"rank": 2, "activation": act}))
    g.add_node(Node("fc", FullyConnected.name, ["y", "w2", ""], ["z"],
                    {"activation": "NONE", "keep_num_dims": False}))
    g.inputs, g.outputs = ["x"], ["z"]
    return g.validate()


@pytest.mark.parametrize("act", ["NONE", "RELU"])
def test_converted_model_matches_tflm(act):
    from tinyopt.convert import convert_graph

    g = _float_svdf_model(act)
    calib = np.random.default_rng(0).normal(size=(64, 12)).astype(np.float32)
    q = convert_graph(g, calib)
    node = q.nodes[0]
    assert q.tensors[node.inputs[2]].dtype == "int16" and q.tensors[node.inputs[4]].variable
    s, z = q.tensors["x"].quant.scale[0], q.tensors["x"].quant.zero_point[0]
    xq = np.clip(np.round(calib[:8] / s) + z, -128, 127).astype(np.int8)
    ours = assert_matches_reference(q, xq, graph_to_tflite_bytes(q))[0]
    so, zo = q.tensors[q.outputs[0]].quant.scale[0], q.tensors[q.outputs[0]].quant.zero_point[0]
    fl = Interpreter(g).run(calib[:8])[0]
    assert np.abs((ours.astype(np.float32) - zo) * so - fl).max() < 0.1


def test_convert_refuses_an_activation_the_int8_kernel_drops():
    from tinyopt.convert import convert_graph

    g = _float_svdf_model("TANH")
    with pytest.raises(UnsupportedOpError, match="not applied by TFLM's int8 kernel"):
        convert_graph(g, np.random.default_rng(0).normal(size=(16, 12)).astype(np.float32))


def _one_filter(k: int, in_s, wf_s, wt_s, st_s, out_s, wf_row, bias: int) -> Graph:
    """One feature over k inputs, memory 1, time weight 1, int16 state at zero point 0."""
    ins = [qtensor("x", (1, k), in_s, 0),
           qtensor("wf", (1, k), wf_s, 0, data=np.asarray(wf_row, np.int8).reshape(1, k)),
           qtensor("wt", (1, 1), wt_s, 0, data=np.array([[1]], np.int16), dtype="int16"),
           qtensor("b", (1,), np.float32(st_s) * np.float32(wt_s), 0, dtype="int32",
                   data=np.array([bias], np.int32)),
           Tensor("s", (1, 1), "int16", quant=QuantParams(st_s, 0), variable=True)]
    return single_op_model(OP, ins, qtensor("y", (1,), out_s, 0), {"rank": 1, "activation": "NONE"})


# Second scale (s_state s_wt / s_out): x at its zero point, so out = requantize(bias). (state, time
# weight, output scale, bias, TFLM's output): in double the multipliers give 62, 32, 14; float32
# arithmetic 63, 33, 13.
SECOND = [(0.034522347, 0.005101994, 0.015076036, 5349, 62), (0.04225047, 0.003493424, 0.0851103, 18740, 32),
          (0.016196335, 0.00024140308, 0.0055857776, 19286, 14)]
# First scale (s_in s_wf / s_state): the second is exactly 1 (s_wt 2^-10, s_out = s_state 2^-10), so out = the
# new state = requantize(acc), acc = sum of the feature weights (x all 1). (input, feature weight, state
# scale, acc, TFLM's output): double gives 20, 4, 75; float32 arithmetic 19, 3, 74.
FIRST = [(0.043023318, 0.016548581, 0.058807127, 1610, 20), (0.015834436, 0.0025018451, 0.0020919724, 184, 4),
         (0.0042909887, 0.009229535, 0.0011827635, 2224, 75)]


@pytest.mark.parametrize("case", [("second", *c) for c in SECOND] + [("first", *c) for c in FIRST])
def test_effective_scales_are_double_on_a_rounding_tie(case):
    """TFLM's two effective scales are taken in double: the runtime gives its output on requantizations
    that sit on a rounding tie, where float32 arithmetic gives the neighbouring one."""
    import dataclasses

    from runtime._reference import run_tflm
    from tinyopt.runtime.fixedpoint import quantize_multiplier

    f32 = np.float32
    which, a, b, s, acc, want = case
    if which == "second":
        g, xs = _one_filter(2, 1 / 16, 1 / 16, b, a, s, [0, 0], acc), np.zeros((1, 2), np.int8)
        old = {"effective_scale_2_a": f32(f32(f32(a) * f32(b)) / f32(s))}
    else:
        row = weights_summing_to(acc)
        k = len(row)
        g = _one_filter(k, a, b, 2.0 ** -10, s, float(f32(s) * f32(2.0 ** -10)), row, 0)
        xs = np.ones((1, k), np.int8)
        old = {"effective_scale_1_a": f32(f32(f32(a) * f32(b)) / f32(s))}
    assert int(run_tflm(graph_to_tflite_bytes(g), [xs])[0].ravel()[0]) == want
    interp = Interpreter(g)
    assert int(interp.run(xs)[0].ravel()[0]) == want
    (name, real), = old.items()
    m, sh = quantize_multiplier(float(real))
    interp.params[0] = dataclasses.replace(interp.params[0], **{name: m, name[:-1] + "b": sh})
    assert int(interp.run(xs)[0].ravel()[0]) != want  # float32 arithmetic misses it
