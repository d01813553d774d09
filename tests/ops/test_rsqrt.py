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
