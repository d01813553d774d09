"""What ADD, SUB and MUL share: a fused activation, NumPy-style broadcasting, and the framework doors
(either operand may be a constant; ONNX's MatMul + Add becomes a dense layer's bias)."""

from __future__ import annotations

import numpy as np

from tinyopt.errors import ModelFormatError
from tinyopt.ops import _common as c
from tinyopt.ops._record import Op, Options, QuantRule, activation


def options(type_code: int) -> Options:
    return Options(type_code, (activation("activation", 0),))


class Binary(Op):
    """Base record of the element-wise arithmetic operators."""

    arity = (2, 2)
    data_inputs = 2
    fused_activation = True
    ops_per_element = 1
    int8_version = 2
    quant = QuantRule(constants="range", int16=True)  # TFLM's ADD, SUB, MUL have int16 kernels
    commutative = True  # False (SUB): a constant first operand stays first (c - x)

    def shape(self, graph, node, fail):
        a, b = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
        try:
            return tuple(np.broadcast_shapes(a.shape, b.shape))
        except ValueError:
            fail(f"cannot broadcast {list(a.shape)} with {list(b.shape)}",
                 "the residual branches must have the same shape")

    arith_code = -1  # the arithmetic kernel's op: 0 ADD, 1 SUB, 2 MUL

    def pack_arithmetic(self, graph, index, node):
        """The broadcasting kernel (kernels/arithmetic.c): any operand shapes, a constant operand."""
        from tinyopt.ops._broadcast import pack_broadcast

        q = self.prepare(graph, node, True)
        ints = {"op": self.arith_code, "left_shift": 0, "input1_multiplier": 0, "input2_multiplier": 0,
                "input1_shift": 0, "input2_shift": 0}
        for f in ("input1_offset", "input2_offset", "output_offset", "left_shift", "input1_multiplier",
                  "input2_multiplier", "output_multiplier", "input1_shift", "input2_shift", "output_shift",
                  "output_activation_min", "output_activation_max"):
            if getattr(q, f, None) is not None:
                ints[f] = int(getattr(q, f))
        p = pack_broadcast(self, graph, index, node, ints, "arithmetic")
        p.struct, p.entry, p.files = "arithmetic_params", "arithmetic", ("arithmetic",)
        return p

    def operand_qparams(self, graph, node):
        """(scale, zero point) of both inputs and the output, each per tensor."""
        return tuple(c.scalar_qparams(graph, node, t)
                     for t in (node.inputs[0], node.inputs[1], node.outputs[0]))

    # -- doors
    def from_onnx(self, cv, node, name, a, ins):
        b = cv.b
        vals = [cv.env.get(t) for t in ins]
        if all(v is not None for v in vals):
            return build(b, name, self.name, vals[0], vals[1])
        if vals[0] is None and vals[1] is None:
            raise ModelFormatError(f"operand '{ins[0]}' is unknown", path=cv.path, where=b.where,
                                   fix="export the model to ONNX again")
        swap = vals[0] is None
        x = vals[1] if swap else vals[0]
        cst = cv.const(ins[0] if swap else ins[1], "operand").astype(np.float32)
        if swap and not self.commutative:  # c - x: the constant stays the first operand
            value = cst if cst.size > 1 else float(cst.ravel()[0])
            return build(b, name, self.name, x, value, const_first=True)
        if self.bias_like and cst.size == x.shape[-1] and cst.size > 1 and x.layout == "plain" and \
                cv.bias_slot(x, cst):
            return x  # MatMul + Add: the add became the dense layer's bias
        return build(b, name, self.name, x, cst if cst.size > 1 else float(cst.ravel()[0]))

    bias_like = False  # ADD: a constant vector after a bias-less dense layer becomes its bias

    def from_torch_function(self, cv, n, key, name, out_shape):
        arg = cv.arg(n)
        if arg(2, "alpha", 1) != 1:
            cv.b.unsupported("add/sub with alpha != 1")
        a, other = cv.val(n.args[0]), cv.val(n.args[1])
        from tinyopt.graph.torch_import import Val

        first = not isinstance(a, Val)
        if first:
            a, other = other, a
        if not isinstance(other, Val) and not isinstance(other, (int, float)):
            cv.b.unsupported(f"{key} with a {type(other).__name__} operand")
        return build(cv.b, name, self.name, a, other if isinstance(other, Val) else float(other),
                     const_first=first and not self.commutative)


def build(b, name: str, op: str, a, other, const_first: bool = False):
    """``op`` of two framework values, or of a value and a constant that broadcasts onto it (the constant
    the first operand when ``const_first``: c - x)."""
    from tinyopt.graph.torch_import import Val, to_graph_array

    if not isinstance(other, Val):
        cst = np.asarray(other, dtype=np.float32)
        if cst.size > 1:
            if cst.ndim > len(a.shape) or a.permuted:
                b.unsupported(f"{op.lower()} of {list(a.shape)} with a constant of shape {list(cst.shape)}")
            cst = cst.reshape((1,) * (len(a.shape) - cst.ndim) + cst.shape)
            cst = to_graph_array(cst, a.layout)
        else:
            cst = cst.reshape(1)
        operands = [a.name, b.const(f"{name}/const", cst)]
        return b.emit(name, op, operands[::-1] if const_first else operands, {"activation": "NONE"}, a.layout,
                      a.perm)
    from tinyopt.ops.reshape import common_layout

    a, other = common_layout(b, name, a, other)
    return b.emit(name, op, [a.name, other.name], {"activation": "NONE"}, a.layout, a.perm)
