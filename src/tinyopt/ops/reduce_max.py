"""REDUCE_MAX: the maximum over ``axes`` (any axes, ``keep_dims``; see ``_reduce.py``).

Integer path as TFLM's ``EvalMinMaxHelper``: the maximum of the raw int8 values, which is only the
maximum of the real values because TFLM requires the output to keep the input's scale and zero point.
"""

from __future__ import annotations

import numpy as np

from tinyopt.ops import _common as c
from tinyopt.ops._record import QuantRule, register
from tinyopt.ops._reduce import ReduceData, Reducer, build


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
            c.fail(graph, node,
                   f"int8 REDUCE_MAX output (scale {so}, zero point {zo}) differs from its input "
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
        """torch.max(x, other) is MAXIMUM; torch.max(x, dim) the pair (values, indices): REDUCE_MAX and
        ARG_MAX, each built only if the model reads it; torch.max(x) the maximum of every element."""
        import operator

        from tinyopt.graph.torch_import import Val
        from tinyopt.ops import _broadcast, arg_max
        from tinyopt.ops.maximum import Maximum

        arg = cv.arg(n)
        x, other = cv.val(n.args[0]), cv.val(arg(1, "dim", n.kwargs.get("other")))
        if isinstance(other, Val):
            return _broadcast.build(cv.b, name, Maximum.name, x, other)
        if other is None:
            return self.torch_reduce(cv, n, name)
        keep = bool(arg(2, "keepdim", False))
        wanted = {u.args[1] if u.target is operator.getitem else None for u in n.users}
        if wanted - {0, 1}:
            cv.b.unsupported("torch.max(x, dim) read other than by index ([0] values, [1] indices)",
                             "index its result, or use torch.amax / torch.argmax")
        values = build(cv.b, name, self.name, x, [int(other)], keep) if 0 in wanted else None
        indices = arg_max.build(cv.b, f"{name}/indices", x, int(other), keep) if 1 in wanted else None
        return [values, indices]
