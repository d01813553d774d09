"""RSQRT against TFLM: 60 seeded configurations (int8 through TFLM's fixed-point inverse square root, and
float32), the zero and negative inputs, convert, and the PyTorch door."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ops._oracles import (
    assert_c_equals_runtime,
    assert_torch_matches,
    c_library_outputs,
    convert_and_match_tflm,
    dequantized,
    needs_cc,
    random_unary,
)
from runtime._reference import assert_matches_reference, qtensor
from tinyopt.errors import DataError
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Graph, Node, Tensor
from tinyopt.ops._gemmlowp import inv_sqrt_multiplier_exp
from tinyopt.runtime import Interpreter

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("seed", range(60))
def test_rsqrt_matches_tflm(seed):
    g, xs = random_unary("RSQRT", seed, int8=bool(seed % 2), low=0.05)
    out = assert_matches_reference(g, xs)[0]
    if seed % 2 == 0:
        np.testing.assert_allclose(out, 1 / np.sqrt(xs.astype(np.float64)), rtol=1e-6)


def test_inverse_square_root_multiplier_by_hand():
    # 1/sqrt(4) = 0.5: 4 is brought to [2^27, 2^29) as 4 << 26 (13 bit pairs), shift 11 - 12 = -1 -> doubled
    # multiplier, shift 0; 0.5 * 2^31 = 2^30 (within the Newton iteration's last-bit error)
    m, s = inv_sqrt_multiplier_exp(np.array([4, 1, 0]), -1)
    assert abs(int(m[0]) - (1 << 30)) <= 4 and int(s[0]) == 0
    assert m[1:].tolist() == [2**31 - 1, 2**31 - 1] and s[1:].tolist() == [0, 0]


def test_zero_gives_the_largest_output_and_negative_inputs_stop():
    g = single_op_model("RSQRT", [qtensor("x", (1, 3), 0.1, -10)], qtensor("y", (1,), 0.05, -128))
    out = assert_matches_reference(g, np.array([[-10, -6, 90]], np.int8))[0]
    # -10 is 0.0 -> 127; -6 is 0.4 -> 1/sqrt(0.4) = 1.58 -> 31.6 + -128 = -96; 90 is 10 -> 0.316 -> 6.3 - 128
    # = -122
    assert out.tolist() == [[127, -96, -122]]
    with pytest.raises(DataError, match="below its zero point"):
        Interpreter(g).run(np.array([[-11, 0, 0]], np.int8))


def test_converted_rsqrt_runs_in_tflm():
    g = Graph("t")
    for name in ("x", "v", "y"):
        g.add_tensor(Tensor(name, (1, 10) if name == "x" else (1,)))
    g.add_tensor(Tensor("eps", (1,), data=np.array([0.01], np.float32)))
    g.add_node(Node("v", "MUL", ["x", "x"], ["v"], {"activation": "NONE"}))
    g.add_node(Node("w", "ADD", ["v", "eps"], ["w"], {"activation": "NONE"}))
    g.add_tensor(Tensor("w", (1,)))
    g.add_node(Node("y", "RSQRT", ["w"], ["y"]))
    g.inputs, g.outputs = ["x"], ["y"]
    g.infer_shapes()
    rng = np.random.default_rng(0)
    # away from 0: there x^2 + 0.01 is below the int8 step of the square (9/255) and 1/sqrt saturates
    xs = (rng.uniform(0.7, 3, size=(16, 10)) * rng.choice([-1, 1], size=(16, 10))).astype(np.float32)
    q = convert_and_match_tflm(g, rng.uniform(-3, 3, size=(64, 10)).astype(np.float32), xs)
    assert [n.op for n in q.nodes][-1] == "RSQRT"
    x = q.tensors[q.inputs[0]]
    xq = np.clip(np.round(xs / x.quant.scale[0]) + x.quant.zero_point[0], -128, 127).astype(np.int8)
    got = dequantized(q, Interpreter(q).run(xq)[0])
    np.testing.assert_allclose(got, 1 / np.sqrt(xs.astype(np.float64) ** 2 + 0.01), rtol=0.1, atol=0.1)


def test_torch_rsqrt_matches_torch():
    class M(torch.nn.Module):
        def forward(self, x):
            return torch.rsqrt(x * x + 0.5) + (x * x + 1).rsqrt()

    assert_torch_matches(M(), (7,))


@needs_cc
@pytest.mark.parametrize("seed", [1, 3, 5])
def test_c_library_table_equals_runtime_and_tflm(seed, tmp_path):
    """The C library runs int8 RSQRT as its 256-entry table (kernels/lut.c): = the runtime and TFLM on inputs
    at or above the zero point; below it (TFLM stops) the table reads the zero input's 127."""
    g, xs = random_unary("RSQRT", seed, int8=True, low=0.05)
    want = assert_matches_reference(g, xs)[0]
    assert_c_equals_runtime(g, xs, tmp_path)
    np.testing.assert_array_equal(c_library_outputs(g, xs, tmp_path / "b"), want.reshape(len(xs), -1))
    from tinyopt.export.c.params import prepare

    table = prepare(g, 0, g.nodes[0]).arrays["table"][1]
    zp = int(g.tensors[g.inputs[0]].quant.zero_point[0])
    assert (table[: zp + 128] == 127).all() and table[zp + 128] == 127


# (input scale, output scale, zero point, x, TFLM's output); the input zero point is -128. 1 / (sqrt(s_in)
# s_out) in double gives the multipliers 1075081817, 1115581611, 1464088587, 2040486650 (shifts 8, 12, 9,
# 5); the float32 square root and product give 1075081862, 1115581545, 1464088645, 2040486520, and outputs
# one off (80, 60, 58, 12) where the rescaled value sits on a rounding tie.
RSQRT_TIES = [(0.0011750846169888973, 0.22762177884578705, 70, 54, 79),
              (0.0011490652104839683, 0.013864245265722275, -115, 19, 61),
              (0.04539360851049423, 0.013446064665913582, 33, 75, 57),
              (0.022818878293037415, 0.21772032976150513, -9, -126, 13)]


@needs_cc
@pytest.mark.parametrize("si,so,zo,x,want", RSQRT_TIES)
def test_multiplier_is_double_on_a_rounding_tie(si, so, zo, x, want, tmp_path):
    """TFLM's RSQRT output multiplier is computed in double: the runtime and the C library's table give its
    output where float32 arithmetic gives the neighbouring one."""
    import dataclasses

    from runtime._reference import run_tflm
    from tinyopt.export.tflite import graph_to_tflite_bytes
    from tinyopt.runtime.fixedpoint import quantize_multiplier

    g = single_op_model("RSQRT", [qtensor("x", (1, 1), si, -128)], qtensor("y", (1,), so, zo))
    xs = np.array([[x]], np.int8)
    assert int(run_tflm(graph_to_tflite_bytes(g), [xs])[0].ravel()[0]) == want
    interp = Interpreter(g)
    assert int(interp.run(xs)[0].ravel()[0]) == want
    assert int(c_library_outputs(g, xs, tmp_path).ravel()[0]) == want
    f32 = np.float32
    m, s = quantize_multiplier(1.0 / float(f32(np.sqrt(f32(si))) * f32(so)))
    interp.params[0] = dataclasses.replace(interp.params[0], multiplier=m, shift=s)
    assert int(interp.run(xs)[0].ravel()[0]) != want  # float32 arithmetic misses it
