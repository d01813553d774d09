"""The 16x8 kernels (int16 activations, int8 weights) against TFLM, 50+ seeded random configurations per
operator: shapes, strides, paddings, scales over 2^-16..2^-2, int64 and int32 biases, fused activations,
broadcasts. Inputs cover the whole int16 range (rows of -32768 and 32767 included), so saturation, the
64-bit requantization and the lookup tables' ends are all exercised. Plus the refusals: zero points other
than 0 where TFLM ignores or refuses them, biases TFLM would misread, an operator without a 16x8 kernel."""

from __future__ import annotations

import numpy as np
import pytest

from runtime._reference import assert_matches_reference, qtensor
from tinyopt.errors import UnsupportedOpError
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Tensor
from tinyopt.graph.shapes import conv_output_size
from tinyopt.ops._int16 import multiply_by_quantized_multiplier_64
from tinyopt.ops.add import Add
from tinyopt.ops.average_pool_2d import AveragePool2D
from tinyopt.ops.concatenation import Concatenation
from tinyopt.ops.conv_2d import Conv2D
from tinyopt.ops.depthwise_conv_2d import DepthwiseConv2D
from tinyopt.ops.dequantize import Dequantize
from tinyopt.ops.fully_connected import FullyConnected
from tinyopt.ops.hard_swish import HardSwish
from tinyopt.ops.logistic import Logistic
from tinyopt.ops.max_pool_2d import MaxPool2D
from tinyopt.ops.mean import Mean
from tinyopt.ops.mul import Mul
from tinyopt.ops.pad import Pad
from tinyopt.ops.quantize import Quantize
from tinyopt.ops.relu import Relu
from tinyopt.ops.relu6 import Relu6
from tinyopt.ops.reshape import Reshape
from tinyopt.ops.slice import Slice
from tinyopt.ops.softmax import Softmax
from tinyopt.ops.sub import Sub
from tinyopt.ops.tanh import Tanh
from tinyopt.ops.transpose import Transpose
from tinyopt.runtime import Interpreter

SEEDS = range(50)
ACTS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def q16(name, shape, scale, zero_point=0):
    return qtensor(name, shape, scale, zero_point, dtype="int16")


def random_int16(rng, shape) -> np.ndarray:
    """Uniform int16 rows; the first three are all -32768, all 32767 and alternating."""
    x = rng.integers(-32768, 32768, size=shape).astype(np.int16)
    if shape[0] >= 3:
        x[0], x[1] = -32768, 32767
        x[2].flat[::2], x[2].flat[1::2] = -32768, 32767
    return x


def scale(rng, lo=-16.0, hi=-2.0) -> float:
    return float(2.0 ** rng.uniform(lo, hi))


# -- conv, depthwise, dense ---------------------------------------------------------------------------------

def weighted_layer(seed: int, op: str, bias_dtype: str = "int64"):
    """A random 16x8 CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED, its output scale set so that typical
    outputs land around 2^13 (most not saturated; the extreme rows saturate)."""
    rng = np.random.default_rng(seed)
    act = ACTS[seed % 4]
    if op == FullyConnected.name:
        i, o = (int(v) for v in rng.integers(1, 60, 2))
        shape_x, shape_w, cout, axis, attrs, taps = (1, i), (o, i), o, 0, dict(activation=act), i
    else:
        while True:
            h, w = (int(v) for v in rng.integers(1, 10, 2))
            kh, kw = (int(v) for v in rng.integers(1, 4, 2))
            sh, sw = (int(v) for v in rng.integers(1, 3, 2))
            dh, dw = (int(v) for v in rng.integers(1, 3, 2)) if rng.random() < 0.3 else (1, 1)
            pad = ("SAME", "VALID")[seed % 2]
            if min(conv_output_size(h, kh, sh, dh, pad), conv_output_size(w, kw, sw, dw, pad)) > 0:
                break
        cin = int(rng.integers(1, 5))
        attrs = dict(stride=(sh, sw), dilation=(dh, dw), padding=pad, activation=act)
        if op == Conv2D.name:
            cout = int(rng.integers(1, 6))
            shape_w, axis, taps = (cout, kh, kw, cin), 0, kh * kw * cin
        else:
            m = int(rng.integers(1, 3))
            cout = cin * m
            shape_w, axis, taps = (1, kh, kw, cout), 3, kh * kw
            attrs["depth_multiplier"] = m
        shape_x = (1, h, w, cin)
    per_channel = op != FullyConnected.name or seed % 3 != 0  # dense layers per tensor too
    in_s = np.float32(scale(rng, -14, -4))
    w_s = (2.0 ** rng.uniform(-9, -4, cout if per_channel else 1)).astype(np.float32)
    out_s = np.float32(in_s * float(w_s.mean()) * 2 ** 7 * np.sqrt(taps) * 2 ** rng.uniform(-1.5, 1.5))
    w = rng.integers(-127, 128, shape_w).astype(np.int8)
    bias = rng.integers(-(1 << 22), 1 << 22, cout).astype(bias_dtype)
    n = w_s.size
    inputs = [q16("x", shape_x, in_s), qtensor("w", shape_w, w_s, np.zeros(n, np.int64), data=w, axis=axis),
              qtensor("b", (cout,), np.broadcast_to(in_s * w_s, (cout,)) if n > 1 else in_s * w_s,
                      np.zeros(cout if n > 1 else 1, np.int64), data=bias, dtype=bias_dtype, axis=0)]
    return single_op_model(op, inputs, q16("y", (1,), out_s), attrs), rng


@pytest.mark.parametrize("op", [Conv2D.name, DepthwiseConv2D.name, FullyConnected.name])
@pytest.mark.parametrize("seed", SEEDS)
def test_weighted_layers_match_tflm(op, seed):
    g, rng = weighted_layer(seed, op)
    out = assert_matches_reference(g, random_int16(rng, (6, *g.tensors["x"].shape[1:])))[0]
    assert np.isin(out[3:], (-32768, 32767)).mean() < 0.5  # the random rows mostly inside the range


@pytest.mark.parametrize("op", [Conv2D.name, FullyConnected.name])
@pytest.mark.parametrize("seed", range(0, 50, 5))
def test_int32_bias_accumulates_in_int32(op, seed):
    """CONV_2D and FULLY_CONNECTED take an int32 bias too: TFLM then accumulates in int32 and requantizes
    with the int8 kernels' double rounding."""
    g, rng = weighted_layer(seed, op, "int32")
    assert not Interpreter(g).params[0].wide
    assert_matches_reference(g, random_int16(rng, (6, *g.tensors["x"].shape[1:])))


def test_64_bit_requantization_by_hand():
    # 2^30 is 0.5 (shift 0); reduced to 15 bits: 16384. x * 16384 / 2^15 = x / 2, rounded half up; 2^40 / 2
    # = 2^39 is cut to int32 (0), as TFLM's ``int32_t result = x >> total_shift`` does
    assert multiply_by_quantized_multiplier_64(np.array([7, -7, 1 << 40]), 1 << 30, 0).tolist() == [4, -3, 0]
    # shift 2: x * 16384 / 2^13 = 2x
    assert multiply_by_quantized_multiplier_64(np.array([1000]), 1 << 30, 2).tolist() == [2000]
    # a multiplier that would round up to 2^15 is held at 0x7FFF: (2^31 - 1) reads as 32767 / 32768
    assert multiply_by_quantized_multiplier_64(np.array([32768]), (1 << 31) - 1, 0).tolist() == [32767]


def test_dense_with_zero_points_matches_tflm():
    """TFLM's int16 dense kernel applies input and output offsets (the converter gives 0; a file may not)."""
    rng = np.random.default_rng(7)
    w = rng.integers(-127, 128, (5, 9)).astype(np.int8)
    g = single_op_model(FullyConnected.name, [
        q16("x", (1, 9), 0.001, 37), qtensor("w", (5, 9), 0.01, 0, data=w),
        qtensor("b", (5,), 1e-5, 0, data=rng.integers(-1000, 1000, 5).astype(np.int64), dtype="int64")],
        q16("y", (1,), 0.05, -12), dict(activation="RELU"))
    assert_matches_reference(g, random_int16(rng, (8, 9)))


# -- element-wise arithmetic --------------------------------------------------------------------------------

def binary(seed: int, op: str):
    rng = np.random.default_rng(100 + seed)
    rank = int(rng.integers(1, 5))
    a_shape = (1, *(int(d) for d in rng.integers(1, 5, rank)))
    b_shape = a_shape if seed % 2 == 0 else tuple(1 if rng.random() < 0.4 else d for d in a_shape)
    s1, s2, so = scale(rng, -14, -2), scale(rng, -14, -2), scale(rng, -14, -1)
    if seed % 5 == 0:
        s2 = s1
    g = single_op_model(op, [q16("a", a_shape, s1), q16("b", b_shape, s2)], q16("y", (1,), so),
                        dict(activation=ACTS[seed % 4]))
    return g, [random_int16(rng, (5, *a_shape[1:])), random_int16(rng, (5, *b_shape[1:]))]


@pytest.mark.parametrize("op", [Add.name, Sub.name, Mul.name])
@pytest.mark.parametrize("seed", SEEDS)
def test_arithmetic_matches_tflm(op, seed):
    """ADD/SUB: left shift 15 (TFLM's general int16 path); MUL: one requantization of the int32 product;
    broadcasting on odd seeds."""
    g, x = binary(seed, op)
    assert_matches_reference(g, x)


@pytest.mark.parametrize("op", [Add.name, Sub.name])
@pytest.mark.parametrize("scales", [(2 ** -10, 2 ** -10, 2 ** -9), (2 ** -12, 2 ** -10, 2 ** -10),
                                    (2 ** -15, 2 ** -15, 2 ** -15), (2 ** -8, 2 ** -12, 2 ** -8)])
def test_power_of_two_scales_take_the_general_path(op, scales):
    """TFLite's int16 ADD has a fast path for power-of-two scales (a rounding shift and a saturating add);
    TFLM calls the general one (pot_scale false) whatever the scales, and so do we."""
    rng = np.random.default_rng(11)
    s1, s2, so = scales
    g = single_op_model(op, [q16("a", (1, 64), s1), q16("b", (1, 64), s2)], q16("y", (1,), so),
                        {"activation": "NONE"})
    assert Interpreter(g).params[0].left_shift == 15
    assert_matches_reference(g, [random_int16(rng, (40, 64)), random_int16(rng, (40, 64))])


# -- activations --------------------------------------------------------------------------------------------

EVERY_INT16 = np.arange(-32768, 32768, dtype=np.int16).reshape(256, 256)


@pytest.mark.parametrize("op", [Logistic.name, Tanh.name])
@pytest.mark.parametrize("seed", SEEDS)
def test_sigmoid_and_tanh_on_every_input_match_tflm(op, seed):
    """Every int16 value through the table and its interpolation; scales include TFLM's power-of-two
    cases (2^-12, and 2^-11 for TANH) and scales that need the up-to-15-bit multiplier."""
    rng = np.random.default_rng(200 + seed)
    s = (2.0 ** -12, 2.0 ** -11, 2.0 ** -10, 2.0 ** -15)[seed] if seed < 4 else scale(rng, -16, 1)
    g = single_op_model(op, [q16("x", (1, 256), s)], q16("y", (1,), 1.0 / 32768))
    p = Interpreter(g).params[0]
    if seed == 0 or (seed == 1 and op == Tanh.name):
        assert p.input_multiplier == 0  # the power-of-two case
    assert_matches_reference(g, EVERY_INT16)


@pytest.mark.parametrize("op", [Relu.name, Relu6.name])
@pytest.mark.parametrize("seed", SEEDS)
def test_relu_and_relu6_match_tflm(op, seed):
    """Standalone RELU (a requantization to the output scale, clamped at 0) and RELU6 (a clamp in the
    input's domain, the output sharing its parameters; 6.0 saturates to 32767 at coarse scales)."""
    rng = np.random.default_rng(250 + seed)
    s = scale(rng, -14, -1)
    out = scale(rng, -14, -1) if op == Relu.name else s
    g = single_op_model(op, [q16("x", (1, 7, 5), s)], q16("y", (1,), out))
    assert_matches_reference(g, random_int16(rng, (5, 7, 5)))


@pytest.mark.parametrize("seed", SEEDS)
def test_softmax_matches_tflm(seed):
    rng = np.random.default_rng(300 + seed)
    depth, rows = int(rng.integers(1, 40)), int(rng.integers(1, 4))
    beta = float(rng.choice([1.0, 0.5, 2.0, 1.3]))
    g = single_op_model(Softmax.name, [q16("x", (1, rows, depth), scale(rng, -16, -4))],
                        q16("y", (1,), 1.0 / 32768), {"beta": beta})
    x = random_int16(rng, (8, rows, depth))
    x[3] = 0  # equal inputs: a sum of equal table values
    assert_matches_reference(g, x)


@pytest.mark.parametrize("s", [10 / 65535, 2.0 ** -12, 1e-5])
def test_softmax_every_difference_matches_tflm(s):
    """Rows [0, v] for every int16 v: the exp table at every index and both table ends."""
    g = single_op_model(Softmax.name, [q16("x", (1, 256, 2), s)], q16("y", (1,), 1.0 / 32768), {"beta": 1.0})
    x = np.stack([np.zeros(65536, np.int16), np.arange(-32768, 32768).astype(np.int16)], axis=1)
    assert_matches_reference(g, x.reshape(256, 256, 2))


# -- quantize, dequantize -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["float_s16", "s16_s16", "s16_s8", "s8_s16", "dequantize"])
@pytest.mark.parametrize("seed", SEEDS)
def test_quantize_and_dequantize_match_tflm(kind, seed):
    """float → int16, int16 → int16, int16 → int8, int8 → int16 (the converter's edges and
    requantizations), int16 → float."""
    rng = np.random.default_rng(400 + seed)
    shape = (1, int(rng.integers(1, 30)))
    s_in, s_out, zp8 = scale(rng), scale(rng), int(rng.integers(-128, 128))
    if kind == "float_s16":
        g = single_op_model(Quantize.name, [Tensor("x", shape)], q16("y", (1,), s_out))
        x = (rng.normal(size=(6, shape[1])) * s_out * 20000).astype(np.float32)  # some beyond int16
    elif kind == "dequantize":
        g = single_op_model(Dequantize.name, [q16("x", shape, s_in)], Tensor("y", (1,)))
        x = random_int16(rng, (6, shape[1]))
    else:
        x_t = qtensor("x", shape, s_in, zp8) if kind == "s8_s16" else q16("x", shape, s_in)
        y_t = qtensor("y", (1,), s_out, zp8) if kind == "s16_s8" else q16("y", (1,), s_out)
        g = single_op_model(Quantize.name, [x_t], y_t)
        x = (rng.integers(-128, 128, (6, shape[1])).astype(np.int8) if kind == "s8_s16"
             else random_int16(rng, (6, shape[1])))
    assert_matches_reference(g, x)


# -- pooling, mean, data movement ---------------------------------------------------------------------------

@pytest.mark.parametrize("op", [MaxPool2D.name, AveragePool2D.name])
@pytest.mark.parametrize("seed", SEEDS)
def test_pooling_matches_tflm(op, seed):
    rng = np.random.default_rng(500 + seed)
    f = tuple(int(v) for v in rng.integers(1, 4, 2))
    hw = (int(rng.integers(f[0], 9)), int(rng.integers(f[1], 9)))
    ch, s = int(rng.integers(1, 5)), scale(rng)
    attrs = dict(filter=f, stride=tuple(int(v) for v in rng.integers(1, 3, 2)),
                 padding=("SAME", "VALID")[seed % 2], activation=ACTS[(seed // 2) % 4])
    g = single_op_model(op, [q16("x", (1, *hw, ch), s)], q16("y", (1,), s), attrs)
    assert_matches_reference(g, random_int16(rng, (5, *hw, ch)))


@pytest.mark.parametrize("seed", SEEDS)
def test_mean_matches_tflm(seed):
    rng = np.random.default_rng(600 + seed)
    shape = (1, *(int(d) for d in rng.integers(1, 7, 3)))
    axes = sorted(int(a) for a in rng.choice([1, 2, 3], size=int(rng.integers(1, 4)), replace=False))
    g = single_op_model(Mean.name, [q16("x", shape, scale(rng)), Tensor("a", (len(axes),), "int32",
                                                                       data=np.array(axes, np.int32))],
                        q16("y", (1,), scale(rng)), {"keep_dims": bool(seed % 2)})
    assert_matches_reference(g, random_int16(rng, (5, *shape[1:])))


@pytest.mark.parametrize("op", [Concatenation.name, Pad.name, Reshape.name, Transpose.name, Slice.name])
@pytest.mark.parametrize("seed", SEEDS)
def test_data_movement_matches_tflm(op, seed):
    """CONCATENATION, PAD, RESHAPE, TRANSPOSE, SLICE move int16 values unscaled."""
    rng = np.random.default_rng(700 + seed)
    s = scale(rng)
    shape = (1, *(int(d) for d in rng.integers(1, 5, 3)))
    x = random_int16(rng, (4, *shape[1:]))
    if op == Concatenation.name:
        axis = int(rng.integers(1, 4))
        other = list(shape)
        other[axis] = int(rng.integers(1, 4))
        g = single_op_model(op, [q16("a", shape, s), q16("b", tuple(other), s)], q16("y", (1,), s),
                            {"axis": axis, "activation": "NONE"})
        x = [x, random_int16(rng, (4, *other[1:]))]
    elif op == Pad.name:
        pads = np.zeros((4, 2), np.int32)
        pads[1:] = rng.integers(0, 3, (3, 2))
        g = single_op_model(op, [q16("x", shape, s), Tensor("p", (4, 2), "int32", data=pads)],
                            q16("y", (1,), s))
    elif op == Reshape.name:
        size = int(np.prod(shape))
        new = (1, size) if seed % 2 else (1, *shape[1:][::-1])
        g = single_op_model(op, [q16("x", shape, s),
                                 Tensor("p", (len(new),), "int32", data=np.array(new, np.int32))],
                            q16("y", (1,), s), {"new_shape": new})
    elif op == Transpose.name:
        perm = np.array([0, *(int(p) + 1 for p in rng.permutation(3))], np.int32)
        g = single_op_model(op, [q16("x", shape, s), Tensor("perm", (4,), "int32", data=perm)],
                            q16("y", (1,), s))
    else:
        begin = np.array([0, *(int(rng.integers(0, d)) for d in shape[1:])], np.int32)
        size = np.array([1, *(int(rng.integers(1, d - b + 1)) for d, b in zip(shape[1:], begin[1:]))],
                        np.int32)
        g = single_op_model(op, [q16("x", shape, s), Tensor("b", (4,), "int32", data=begin),
                                 Tensor("s", (4,), "int32", data=size)], q16("y", (1,), s))
    assert_matches_reference(g, x)


# -- refusals -----------------------------------------------------------------------------------------------

def test_conv_with_an_int16_zero_point_is_refused():
    """TFLM's 16x8 convolution ignores zero points: a non-zero one would give another function."""
    w = np.ones((2, 1, 1, 3), np.int8)
    g = single_op_model(Conv2D.name,
                        [q16("x", (1, 4, 4, 3), 0.01, 5), qtensor("w", w.shape, [0.1, 0.1], [0, 0],
                                                                 data=w, axis=0)],
                        q16("y", (1,), 0.1), dict(padding="VALID"))
    with pytest.raises(UnsupportedOpError, match="zero point 5.*ignore zero points.*Fix: quantize int16"):
        Interpreter(g)


def test_depthwise_with_an_int32_bias_is_refused():
    """TFLM's 16x8 depthwise kernel reads its bias as int64 whatever the file says."""
    w = np.ones((1, 3, 3, 2), np.int8)
    g = single_op_model(DepthwiseConv2D.name,
                        [q16("x", (1, 4, 4, 2), 0.01), qtensor("w", w.shape, [0.1, 0.1], [0, 0],
                                                              data=w, axis=3),
                         qtensor("b", (2,), [1e-3, 1e-3], [0, 0], data=np.zeros(2, np.int32),
                                 dtype="int32", axis=0)],
                        q16("y", (1,), 0.1), dict(padding="SAME", depth_multiplier=1))
    with pytest.raises(UnsupportedOpError, match="int32 bias.*Fix: quantize the bias to int64"):
        Interpreter(g)


def test_logistic_output_scale_must_be_2_to_the_minus_15():
    g = single_op_model(Logistic.name, [q16("x", (1, 4), 0.001)], q16("y", (1,), 1.0 / 256))
    with pytest.raises(Exception, match="scale 2\\^-15"):
        Interpreter(g)


def test_operator_without_a_16x8_kernel_is_refused_not_miscomputed():
    """HARD_SWISH has int8 and float kernels only: on int16 tensors the runtime says so instead of running
    its int8 path on int16 values."""
    g = single_op_model(HardSwish.name, [q16("x", (1, 4), 0.001)], q16("y", (1,), 0.001))
    with pytest.raises(UnsupportedOpError, match="HARD_SWISH on int16 tensors.*no 16x8 kernel"):
        Interpreter(g)


def test_module_doctests():
    import doctest

    from tinyopt.ops import _int16

    assert doctest.testmod(_int16).failed == 0


def test_check_support_reports_16x8_per_operator():
    """``tinyopt check``: a 16x8 layer is supported on TFLM and in the C library (which pack it), an
    operator without a 16x8 kernel is not, with the runtime's reason."""
    from tinyopt.runtime.support import check_support

    g, _ = weighted_layer(3, Conv2D.name)
    rows = check_support(g, "tflm") + check_support(g, "tinyopt-c")
    assert all(r.supported and r.dtype == "int16" and r.reason.startswith("int16, per-") for r in rows)
    hs = single_op_model(HardSwish.name, [q16("x", (1, 4), 0.001)], q16("y", (1,), 0.001))
    (row,) = check_support(hs, "tflm")
    assert not row.supported and "no 16x8 kernel" in row.reason
