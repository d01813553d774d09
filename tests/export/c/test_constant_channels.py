"""Dead filters on the Cortex-M4 loops: a channel whose weights are all zero, with an int32 bias near 2^30,
as trained models carry them (MLPerf's visual wake words model has such channels in 9 of its pointwise
convs). TFLM outputs the constant MBQM(bias) + offset there; the M4 loops' accumulators must stay below
2^30, so before ``constant_channels`` the whole layer fell back to the portable loop (4 instructions per
MAC instead of ~1.3). Now the loops take the layer and the dead channel's requantization words give the
constant: host and M4 equal TFLM."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from test_dense import HAVE_ARM, _q, tflm

from tinyopt.export.c import generate_sources, write_library
from tinyopt.export.c.board import APT, build_host, build_m4, run_host, run_qemu
from tinyopt.export.tflite import graph_to_tflite_bytes, single_op_model
from tinyopt.graph.ir import Tensor

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="no host C compiler (cc)")


def layer(op: str, seed: int):
    """``op`` with 8 output channels, channels 2 and 5 dead: weights 0, biases +2^30 and -2^30 at a weight
    scale of 1e-7 (the outputs MBQM(+-2^30) + zp = zp +- 5, inside int8) and channel 7 dead with a bias
    that saturates."""
    rng = np.random.default_rng(seed)
    c = 8
    if op == "FULLY_CONNECTED":
        x_shape, w = (1, 16), rng.integers(-127, 128, size=(c, 16)).astype(np.int8)
        axis, attrs = 0, {"activation": "NONE"}
        w[[2, 5, 7]] = 0
    elif op == "CONV_2D":  # a pointwise conv on the 2-pixel x 4-filter loop
        x_shape, w = (1, 4, 6, 8), rng.integers(-127, 128, size=(c, 1, 1, 8)).astype(np.int8)
        axis, attrs = 0, {"padding": "SAME", "activation": "RELU"}
        w[[2, 5, 7]] = 0
    else:  # a 3x3 depthwise conv on the pair loop
        x_shape, w = (1, 6, 5, 8), rng.integers(-127, 128, size=(1, 3, 3, c)).astype(np.int8)
        axis, attrs = 3, {"padding": "SAME", "depth_multiplier": 1, "activation": "NONE"}
        w[..., [2, 5, 7]] = 0
    sw = rng.uniform(0.002, 0.02, c).astype(np.float32)
    sw[[2, 5, 7]] = 1e-7
    sx, zx, sy, zy = 0.05, 3, 0.4, -7
    bias = rng.integers(-3000, 3000, size=c).astype(np.int32)
    bias[[2, 5, 7]] = [1 << 30, -(1 << 30), 2**31 - 1]
    # channel 2: 2^30 * 0.05 * 1e-7 / 0.4 = 13.4 -> zp + 13; channel 7: about 2^31 * 1.25e-8 = 26.8 -> zp + 27
    return single_op_model(op, [Tensor("x", x_shape, "int8", quant=_q(sx, zx)),
                                Tensor("w", w.shape, "int8", data=w, quant=_q(sw, np.zeros(c), axis)),
                                Tensor("b", (c,), "int32", data=bias, quant=_q(sx * sw, np.zeros(c), 0))],
                           Tensor("y", (), "int8", quant=_q(sy, zy)), attrs)


@pytest.mark.parametrize("op", ["CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"])
def test_dead_channels_keep_the_m4_loops_and_equal_tflm(op, tmp_path):
    g = layer(op, seed=len(op))
    lib = generate_sources(g, optimize="speed")
    p = lib.prepared[0]
    assert p.ints["small_acc"] == 0  # the biases near 2^30: the portable loop's bound fails ...
    assert "rq" in p.arrays  # ... but the M4 loops take the layer
    write_library(lib.files, tmp_path / "lib")
    xs = np.random.default_rng(1).integers(-128, 128, size=(12, lib.input_bytes), dtype=np.int8)
    ref = tflm(graph_to_tflite_bytes(g), xs)
    per_channel = ref.reshape(len(xs), -1, 8)
    low = -7 if op == "CONV_2D" else -7 - 13  # the conv's ReLU clamps channel 5 at the zero point
    assert (per_channel[:, :, 2] == -7 + 13).all() and (per_channel[:, :, 5] == low).all()
    host = run_host(build_host(tmp_path / "lib", tmp_path / "host"), xs, lib.output_bytes)
    assert np.array_equal(host, ref)
    if not HAVE_ARM:
        pytest.skip(f"Cortex-M toolchain or qemu absent: {APT}")
    outs, _ = run_qemu(build_m4(tmp_path / "lib", tmp_path / "m4", xs).elf, lib.output_bytes)
    assert np.array_equal(outs, ref)
