"""LOG_SOFTMAX over the last axis: x - max - log(sum(exp(x - max))).

Float32 as TFLM's reference (a float32 running sum of ``std::exp``, one ``std::log``). Int8 as TFLM's
``LogSoftmaxQuantized``: the differences to the row maximum rescaled to Q5.26, exp in gemmlowp fixed point
summed in Q12.19, the log of the sum in Q5.26, then (diff - log sum) in 1/16 steps below 127; the output
is fixed at scale 16/256, zero point 127.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.ops import _common as c
from tinyopt.ops._gemmlowp import log_x_for_x_greater_than_or_equal_to_1, wrap32
from tinyopt.ops._last_axis import over_last_axis
from tinyopt.ops._record import Op, OpData, Options, QuantRule, register
from tinyopt.runtime import fixedpoint as fp

INPUT_INTEGER_BITS = 5
ACCUMULATION_INTEGER_BITS = 12
OUTPUT_INTEGER_BITS = 4
OUTPUT_QPARAMS = (16.0 / 256, 127)


@dataclass(kw_only=True)
class LogSoftmaxData(OpData):
    input_multiplier: int = 0                   # input scale * 2^26 (beta 1), as a multiplier and left shift
    input_left_shift: int = 0
    reverse_scaling_divisor: int = 0            # the inverse of that scaling, to bring the log back
    reverse_scaling_right_shift: int = 0
    diff_min: int = 0                           # differences below this give exp = 0


def log_softmax_scaling(input_scale: float) -> tuple[int, int, int, int, int]:
    """``PreprocessLogSoftmaxScalingExp`` (beta 1, 5 integer bits) and ``CalculateInputRadius``:
    (input_multiplier, input_left_shift, reverse_scaling_divisor, reverse_scaling_right_shift, diff_min)."""
    real = min(float(input_scale) * (1 << (31 - INPUT_INTEGER_BITS)), (1 << 31) - 1.0)
    m, left = fp.quantize_multiplier(real)
    divisor, divisor_shift = fp.quantize_multiplier((1 << (31 - left)) / float(m))
    diff_min = -fp.calculate_input_radius(INPUT_INTEGER_BITS, left)
    return m, left, divisor, -divisor_shift, diff_min


@register
class LogSoftmax(Op):
    name = "LOG_SOFTMAX"
    builtin = 50
    options = Options(36)
    ops_per_element = 3
    int8_version = 2
    quant = QuantRule(output=OUTPUT_QPARAMS)
    onnx = ("LogSoftmax",)
    torch_modules = ("LogSoftmax",)
    torch_functions = ("log_softmax",)

    def prepare(self, graph, node, is_int):
        if not is_int:
            return LogSoftmaxData(dtype="float32")
        si, _ = c.scalar_qparams(graph, node, node.inputs[0])
        so, zo = c.scalar_qparams(graph, node, node.outputs[0])
        if (so, zo) != (np.float32(OUTPUT_QPARAMS[0]), OUTPUT_QPARAMS[1]):
            c.fail(graph, node,
                   f"int8 LOG_SOFTMAX output must have scale 16/256 and zero point 127, got {so} and {zo}",
                   "quantize the output with scale 0.0625 and zero point 127")
        m, left, divisor, right, diff_min = log_softmax_scaling(float(si))
        return LogSoftmaxData(dtype="int8", input_multiplier=m, input_left_shift=left,
                              reverse_scaling_divisor=divisor, reverse_scaling_right_shift=right,
                              diff_min=diff_min)

    def eval(self, p: LogSoftmaxData, inputs):
        x = inputs[0]
        if p.dtype != "int8":
            xf = x.astype(np.float32)
            shifted = xf - xf.max(axis=-1, keepdims=True)
            total = np.cumsum(np.exp(shifted), axis=-1, dtype=np.float32)[..., -1:]
            return (shifted - np.log(total)).astype(np.float32)
        diff = x.astype(np.int64) - x.astype(np.int64).max(axis=-1, keepdims=True)
        diff_q5 = fp.multiply_by_quantized_multiplier(diff, p.input_multiplier, p.input_left_shift)
        exps = fp.rescale(fp.exp_on_negative_values(diff_q5, INPUT_INTEGER_BITS), 0,
                          ACCUMULATION_INTEGER_BITS)
        sum_q12 = wrap32(np.sum(np.where(diff >= p.diff_min, exps, 0), axis=-1, keepdims=True))
        log_sum_q5 = log_x_for_x_greater_than_or_equal_to_1(sum_q12, ACCUMULATION_INTEGER_BITS,
                                                            INPUT_INTEGER_BITS)
        shifted_log_sum = wrap32(log_sum_q5 + fp.INT32_MIN)
        adjusted_diff_min = np.maximum(p.diff_min - 1, fp.multiply_by_quantized_multiplier(
            shifted_log_sum, p.reverse_scaling_divisor, -p.reverse_scaling_right_shift))
        out = fp.rounding_divide_by_pot(wrap32(diff_q5 - log_sum_q5),
                                        31 - INPUT_INTEGER_BITS - OUTPUT_INTEGER_BITS) + 127
        return np.where(diff > adjusted_diff_min, np.clip(out, -128, 127), -128).astype(np.int8)

    # -- doors
    def from_onnx(self, cv, node, name, a, ins):
        x = cv.val(ins[0])
        axis = a.get("axis", -1 if cv.opset >= 13 else 1)
        if cv.opset < 13 and axis % len(x.shape) != len(x.shape) - 1 and len(x.shape) > 2:
            cv.b.unsupported("a pre-opset-13 LogSoftmax that flattens trailing axes",
                             "export with opset 13 or newer")
        return over_last_axis(cv.b, name, x, axis, self.name, {})

    def from_torch_module(self, cv, n, m, name, out_shape):
        return over_last_axis(cv.b, name, cv.val(n.args[0]), m.dim, self.name, {})

    def from_torch_function(self, cv, n, key, name, out_shape):
        return over_last_axis(cv.b, name, cv.val(n.args[0]), cv.arg(n)(1, "dim"), self.name, {})
