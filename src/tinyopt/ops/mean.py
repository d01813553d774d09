"""MEAN: the average over ``axes`` (any axes, ``keep_dims``; see ``_reduce.py``).

Integer path as TFLM's ``QuantizedMeanOrSum``: the int32 sum, minus the input zero point times the count,
then one requantization whose multiplier has 1/count folded in (with at most 32 bits of extra shift).
Float: the sum in float32, then one division by the count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.graph.ir import Node
from tinyopt.ops import _common as c
from tinyopt.ops import _int16_c
from tinyopt.ops._record import QuantRule, register
from tinyopt.ops._reduce import ReduceData, Reducer, build
from tinyopt.runtime.fixedpoint import _wrap32, multiply_by_quantized_multiplier, quantize_multiplier


@dataclass(kw_only=True)
class MeanData(ReduceData):
    mean_multiplier: int = 0            # multiplier with 1/num_elements_in_axis folded in (what Eval uses)
    mean_shift: int = 0


def mean_multiplier(multiplier: int, shift: int, count: int) -> tuple[int, int]:
    """``QuantizedMeanOrSum``'s readaptation: shift = min(floor(log2(count)), 32, 31 + shift), then
    ``(multiplier << shift) / count`` in int64 (C division truncates; both are non-negative here).

    >>> mean_multiplier(1 << 30, 0, 4)  # 0.5 / 4 = 0.125: 2^30 << 2 / 4, two bits more of right shift
    (1073741824, -2)
    """
    extra = min(count.bit_length() - 1, 32, 31 + shift)
    m = (multiplier << extra) // count if extra >= 0 else (multiplier >> -extra) // count
    return int(m), shift - extra


@register
class Mean(Reducer):
    name = "MEAN"
    builtin = 40
    onnx = ("GlobalAveragePool", "ReduceMean")
    torch_modules = ("AdaptiveAvgPool1d", "AdaptiveAvgPool2d")
    torch_functions = ("mean", "adaptive_avg_pool1d", "adaptive_avg_pool2d")
    spec_layers = {"global_avgpool": frozenset()}
    spec_aliases = {"global_average_pooling": "global_avgpool", "gap": "global_avgpool"}
    quant = QuantRule(int16=True)  # TFLM's int16 MEAN: the int8 arithmetic, an int16 clamp

    def other_ops(self, graph, node):
        return graph.tensors[node.inputs[0]].size + graph.tensors[node.outputs[0]].size

    def prepare(self, graph, node, is_int):
        p = self.prepare_reduce(graph, node, is_int)
        if not is_int:
            return MeanData(**p)
        if graph.tensors[node.inputs[0]].dtype == "int16":
            p["dtype"] = "int16"  # TFLM runs the same QuantizedMeanOrSum on int16, clamped to int16
        si, zi = c.scalar_qparams(graph, node, node.inputs[0])
        so, zo = c.scalar_qparams(graph, node, node.outputs[0])
        m, s = quantize_multiplier(float(si) / float(so))
        mm, ms = mean_multiplier(m, s, p["num_elements_in_axis"])
        return MeanData(**p, input_zero_point=zi, output_zero_point=zo, multiplier=m, shift=s,
                        mean_multiplier=mm, mean_shift=ms)

    def eval(self, p: MeanData, inputs):
        x = inputs[0]
        axes, keep = self.batch_axes(p), p.keep_dims
        if p.dtype == "float32":
            total = np.sum(x.astype(np.float32), axis=axes, keepdims=keep, dtype=np.float32)
            return (total / np.float32(p.num_elements_in_axis)).astype(np.float32)
        total = np.sum(x.astype(np.int64), axis=axes, keepdims=keep)
        shifted = _wrap32(total - p.input_zero_point * p.num_elements_in_axis)  # TFLM's int32 sum
        out = multiply_by_quantized_multiplier(shifted, p.mean_multiplier, p.mean_shift) + p.output_zero_point
        info = np.iinfo(p.dtype)
        return np.clip(out, info.min, info.max).astype(p.dtype)

    def pack_c(self, graph, index, node):
        if _int16_c.is_int16(graph, node):  # the 16x8 kernel (kernels/reduce_int16.c)
            return _int16_c.pack_mean(graph, index, node, self.prepare(graph, node, True))
        return super().pack_c(graph, index, node)

    def c_requant(self, q):
        return dict(input_zero_point=q.input_zero_point, output_zero_point=q.output_zero_point,
                    multiplier=q.mean_multiplier, shift=q.mean_shift)

    # -- doors
    def from_onnx(self, cv, node, name, a, ins):
        x = cv.val(ins[0])
        if node.op_type == "GlobalAveragePool":
            return build(cv.b, name, self.name, x, range(2, len(x.shape)), True)
        return self.onnx_reduce(cv, node, name, a, ins, axes_input_from=18)

    def _adaptive(self, cv, name, x, out_shape):
        if tuple(out_shape[2:]) == tuple(x.shape[2:]):
            return x
        if all(d == 1 for d in out_shape[2:]):
            return build(cv.b, name, self.name, x, range(2, len(x.shape)), True)
        return cv.b.unsupported(f"adaptive average pooling to {list(out_shape[2:])} (only to 1)",
                                "use AdaptiveAvgPool(1) or a fixed AvgPool")

    def from_torch_module(self, cv, n, m, name, out_shape):
        return self._adaptive(cv, name, cv.val(n.args[0]), out_shape)

    def from_torch_function(self, cv, n, key, name, out_shape):
        if key.startswith("adaptive"):
            return self._adaptive(cv, name, cv.val(n.args[0]), out_shape)
        return self.torch_reduce(cv, n, name)

    def from_spec(self, sb, kind, layer, x, lname, fused):
        if len(x.shape) != 4:
            sb.fail("global_avgpool needs an H×W×C input", "remove the flatten before it")
        return Node(lname, self.name, [x.name], [sb.out(lname)], {"axes": (1, 2), "keep_dims": False})
