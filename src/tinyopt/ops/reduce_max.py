"""REDUCE_MAX: the maximum over ``axes`` (any axes, ``keep_dims``; see ``_reduce.py``).

Integer path as TFLM's ``EvalMinMaxHelper``: the maximum of the raw int8 values, which is only the
maximum of the real values because TFLM requires the output to keep the input's scale and zero point.
"""

from __future__ import annotations

import numpy as np

from tinyopt.ops import _common as c
from tinyopt.ops._record import QuantRule, register
from tinyopt.ops._reduce import ReduceData, Reducer


@register
class ReduceMax(Reducer):
    name = "REDUCE_MAX"
    builtin = 82
    quant = QuantRule(output="input")
    c_op = 1
    onnx = ("ReduceMax",)
    torch_functions = ("amax", "max")

    def prepare(self, graph, node, is_int):
        p = self.prepare_reduce(graph, node, is_int)
        if not is_int:
            return ReduceData(**p)
        si, zi = c.scalar_qparams(graph, node, node.inputs[0])
        so, zo = c.scalar_qparams(graph, node, node.outputs[0])
        if (si, zi) != (so, zo):
            c.fail(graph, node, f"int8 REDUCE_MAX output (scale {so}, zero point {zo}) differs from its input "
                   f"(scale {si}, zero point {zi})", "give the output the input's scale and zero point")
        return ReduceData(**p, input_zero_point=zi, output_zero_point=zo)

    def eval(self, p: ReduceData, inputs):
        x = inputs[0]
        return np.max(x, axis=self.batch_axes(p), keepdims=p.keep_dims).astype(x.dtype)

    def c_requant(self, q):
        return dict(input_zero_point=0, output_zero_point=0, multiplier=0, shift=0)

    def from_onnx(self, cv, node, name, a, ins):
        return self.onnx_reduce(cv, node, name, a, ins, axes_input_from=18)

    def from_torch_function(self, cv, n, key, name, out_shape):
        if key == "max":
            return self._torch_max(cv, n, name)
        return self.torch_reduce(cv, n, name)

    def _torch_max(self, cv, n, name):
        """torch.max(x, other) is MAXIMUM; torch.max(x) the maximum of every element."""
        from tinyopt.graph.torch_import import Val
        from tinyopt.ops import _broadcast
        from tinyopt.ops.maximum import Maximum

        other = cv.val(cv.arg(n)(1, "dim", n.kwargs.get("other")))
        if isinstance(other, Val):
            return _broadcast.build(cv.b, name, Maximum.name, cv.val(n.args[0]), other)
        if other is not None:
            cv.b.unsupported("torch.max(x, dim), which returns values and indices",
                             "use torch.amax(x, dim) for the values, torch.argmax(x, dim) for the indices")
        return self.torch_reduce(cv, n, name)

