"""RESHAPE: the same bytes under a new shape (``new_shape`` attribute or a constant int32 shape operand).

In the C library its output aliases its input: no copy, no kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.errors import ModelFormatError, UnsupportedOpError
from tinyopt.graph.ir import Node
from tinyopt.ops._record import CKernel, Op, OpData, Options, QuantRule, register


@dataclass(kw_only=True)
class ReshapeData(OpData):
    new_shape: tuple  # the output shape (batch 1)


_NEW_SHAPE_SLOT = 0


@register
class Reshape(Op):
    name = "RESHAPE"
    builtin = 22
    options = Options(17)
    arity = (1, 2)
    aliases_input = True
    c = CKernel("", "")  # no kernel: in the C library its output aliases its input
    quant = QuantRule(output="input", int16=True)  # bytes unchanged: any dtype
    onnx = ("Flatten", "Reshape", "Squeeze", "Unsqueeze")
    torch_modules = ("Flatten", "Unflatten")
    torch_functions = ("flatten", "view", "reshape", "squeeze", "unsqueeze")
    spec_layers = {"flatten": frozenset()}

    def read_tflite(self, r, ins, out):
        shape = self._new_shape(r, ins, out)
        if not shape:
            raise UnsupportedOpError("RESHAPE to a scalar (empty new shape) is not supported", path=r.source,
                                     where=r.where, fix="reshape to [1] instead")
        return {"new_shape": shape}

    @staticmethod
    def _new_shape(r, ins, out) -> tuple[int, ...]:
        """TFLite's order: a constant 1-D shape operand, else ReshapeOptions.new_shape, else the output's."""
        if len(ins) > 1 and ins[1] is not None and ins[1].data is not None:
            shape = r.const_int(ins[1], "shape")
            if shape.ndim == 1:
                return tuple(int(d) for d in shape)
        if r.has(_NEW_SHAPE_SLOT):
            return tuple(int(d) for d in r.array(_NEW_SHAPE_SLOT, "<i4", "the new shape"))
        return out.shape

    def write_tflite(self, w, graph, node):
        if len(node.inputs) > 1 and node.inputs[1]:
            return 0  # the shape operand carries the new shape, as the TFLite converter writes it
        new_shape = node.attrs.get("new_shape") or graph.tensors[node.outputs[0]].shape
        return w.table([(_NEW_SHAPE_SLOT, "off", w.vector(list(new_shape), "<i4"), 0)])

    def shape(self, graph, node, fail):
        x = graph.tensors[node.inputs[0]]
        ins = graph.node_inputs(node)
        given = node.attrs.get("new_shape")
        if given is None:
            if len(ins) < 2 or ins[1] is None or ins[1].data is None:
                fail("has no target shape", "give new_shape or a constant shape operand")
            given = np.asarray(ins[1].data).ravel().tolist()
        new = list(given)
        if new.count(-1) > 1:
            fail("has more than one -1 in its new shape", "give all but one dimension")
        if -1 in new:
            known = int(np.prod([d for d in new if d != -1]))
            if known <= 0 or x.size % known:
                fail(f"cannot reshape {list(x.shape)} to {new}", "fix the target shape")
            new[new.index(-1)] = x.size // known
        if int(np.prod(new)) != x.size:
            fail(f"cannot reshape {list(x.shape)} ({x.size} elements) to {new}", "fix the target shape")
        return tuple(new)

    def is_identity(self, graph, node):
        x = graph.tensors[node.inputs[0]] if node.inputs and node.inputs[0] else None
        return x is not None and x.shape == graph.tensors[node.outputs[0]].shape

    def scale_channels(self, g, node, before, keep, last):
        out0, x0, x = (before.tensors[node.outputs[0]], before.tensors[node.inputs[0]],
                       g.tensors[node.inputs[0]])
        if len(out0.shape) == 2:  # a flatten: the features follow the channels
            node.attrs["new_shape"] = (out0.shape[0], x.size // out0.shape[0])
        elif out0.shape[-1] == x0.shape[-1]:  # the channel axis stays last
            node.attrs["new_shape"] = (*out0.shape[:-1], x.shape[-1])
        else:
            return False
        return True

    def prepare(self, graph, node, is_int):
        dtype = graph.tensors[node.inputs[0]].dtype if is_int else "float32"
        return ReshapeData(dtype=dtype, new_shape=graph.tensors[node.outputs[0]].shape)

    def eval(self, p: ReshapeData, inputs):
        x = inputs[0]
        return x.reshape((x.shape[0], *p.new_shape[1:]))

    def pack_c(self, graph, index, node):
        from tinyopt.export.c.params import OpParams

        return OpParams("reshape", {"size": graph.tensors[node.outputs[0]].size}, aliases=True)

    # -- doors
    def from_onnx(self, cv, node, name, a, ins):
        x = cv.val(ins[0])
        op = node.op_type
        if op == "Flatten":
            ax = a.get("axis", 1) % (len(x.shape) + 1)
            return build(cv.b, name, x, (int(np.prod(x.shape[:ax])), int(np.prod(x.shape[ax:]))))
        if op == "Reshape":
            return build(cv.b, name, x,
                         cv.target_shape(x.shape, cv.const(ins[1], "shape"), a.get("allowzero", 0)))
        return build(cv.b, name, x,
                     cv.squeezed(op, x.shape, a, [None, *(cv.const(t, "axes") for t in ins[1:] if t)]))

    def from_torch_module(self, cv, n, m, name, out_shape):
        return build(cv.b, name, cv.val(n.args[0]), out_shape)

    def from_torch_function(self, cv, n, key, name, out_shape):
        return build(cv.b, name, cv.val(n.args[0]), out_shape)

    def from_spec(self, sb, kind, layer, x, lname, fused):
        return Node(lname, self.name, [x.name], [sb.out(lname)], {"new_shape": (1, x.size // x.shape[0])})


def build(b, name: str, x, new_shape: tuple[int, ...]):
    """Reshape a framework value to a framework shape. Channels-first data keeps its NHWC graph tensor
    where the bytes allow (a flatten; spatial axes regrouped with the channels kept; channels split into
    groups, the "grouped" view that channel shuffles transpose); anything else goes through the framework
    order explicitly (TRANSPOSE, RESHAPE, TRANSPOSE back), which is what the reshape means. A squeeze or
    unsqueeze of a plain value stays plain when a channels-first view would move its data (attention's
    (1, heads, T, d) blocks are no images); a leading axis other than one makes the value unbatched."""
    from tinyopt.graph.torch_import import Val, batched, ordered, to_graph_shape

    new_shape = tuple(int(d) for d in new_shape)
    if int(np.prod(new_shape)) != int(np.prod(x.shape)):
        raise ModelFormatError(f"cannot reshape {list(x.shape)} to {list(new_shape)}", path=b.g.source,
                               where=b.where, fix="fix the target shape")
    if new_shape == x.shape:
        return x
    if x.layout == "grouped":
        return _ungroup(b, name, x, new_shape)
    if not new_shape or new_shape[0] != 1:  # the leading axis is no longer a batch of one
        x = framework_order(b, name, x)
        layout = batched(new_shape)
        if to_graph_shape(new_shape, layout) == b.g.tensors[x.name].shape:
            return Val(x.name, layout, new_shape)  # the same graph tensor (a squeezed batch axis)
        return b.emit(name, Reshape.name, [x.name], {"new_shape": to_graph_shape(new_shape, layout)}, layout)
    if ordered(x.layout) and x.layout != "plain":  # framework order: reshaped as a plain value would be
        if b.g.tensors[x.name].shape == new_shape and len(new_shape) not in (3, 4):
            return Val(x.name, "plain", new_shape)
        x = Val(x.name, "plain", x.shape)  # only its name and order are read below
    if x.layout == "ncl" and new_shape == (1, x.shape[1], 1, x.shape[2]):
        return Val(x.name, "nchw", new_shape)  # (N, C, L) as (N, C, 1, L): the same NHWC tensor
    if x.layout == "nchw" and x.shape[2] == 1 and new_shape == (1, x.shape[1], x.shape[3]):
        return Val(x.name, "ncl", new_shape)
    if x.layout == "nchw" and len(new_shape) >= 5 and new_shape[-2:] == x.shape[2:]:
        return Val(x.name, "grouped", new_shape)  # (N, g1, g2, ..., H, W): the channels split into groups
    if x.layout in ("nchw", "ncl"):
        return _from_channels_first(b, name, x, new_shape)
    if x.permuted and len(new_shape) != 2:
        from tinyopt.ops.gather import unpermute

        x = unpermute(b, f"{name}/order", x)  # a flattened feature map: in the framework's order first
    if len(new_shape) in (3, 4) and not (_unit_axes_only(x.shape, new_shape) and _moves_data(new_shape)):
        layout = {4: "nchw", 3: "ncl"}[len(new_shape)]
        if int(np.prod(new_shape[2:])) == 1:  # (N, C) → (N, C, 1, 1): the same bytes
            return b.emit(name, Reshape.name, [x.name], {"new_shape": to_graph_shape(new_shape, layout)},
                          layout)
        return _channels_first(b, name, x, new_shape)
    return b.emit(name, Reshape.name, [x.name], {"new_shape": new_shape}, "plain", x.perm)


def _from_channels_first(b, name: str, x, new_shape: tuple[int, ...]):
    """``build`` for an NCHW / NCL value: its spatial axes regrouped (the same NHWC bytes), a flatten (a
    RESHAPE whose value remembers the channels-last order), or anything else in the framework's order."""
    from tinyopt.graph.torch_import import to_graph_shape

    if len(new_shape) in (3, 4) and new_shape[1] == x.shape[1]:  # the spatial axes regrouped
        layout = "nchw" if len(new_shape) == 4 else "ncl"
        return b.emit(name, Reshape.name, [x.name], {"new_shape": to_graph_shape(new_shape, layout)}, layout)
    if len(new_shape) != 2:
        return build(b, name, _framework_order(b, name, x), new_shape)
    if int(np.prod(x.shape[1:], dtype=np.float64)) > 1 << 28:
        raise ModelFormatError(f"a flatten of {list(x.shape)} is implausibly large for a microcontroller",
                               path=b.g.source, where=b.where, fix="check the input shape")
    perm = np.arange(int(np.prod(x.shape[1:]))).reshape(x.shape[1:])
    perm = np.moveaxis(perm, 0, -1).ravel()
    order = None if np.array_equal(perm, np.arange(perm.size)) else perm
    return b.emit(name, Reshape.name, [x.name], {"new_shape": new_shape}, "plain", order)


def _unit_axes_only(shape, new_shape) -> bool:
    """A squeeze or unsqueeze: the axes longer than one stay as they are.

    >>> _unit_axes_only((1, 1, 8, 20, 15), (1, 8, 20, 15)), _unit_axes_only((1, 6), (1, 2, 3))
    (True, False)
    """
    return [d for d in shape if d != 1] == [d for d in new_shape if d != 1]


def _moves_data(new_shape) -> bool:
    """Whether the channels-first view of ``new_shape`` (NCHW or NCL) orders its long axes differently in the
    graph (NHWC, N1LC) than the framework does: its channels would have to move last.

    >>> _moves_data((1, 8, 20, 15)), _moves_data((1, 128, 1)), _moves_data((1, 4, 1, 1))
    (True, False, False)
    """
    graph_order = (0, 2, 3, 1) if len(new_shape) == 4 else (0, 2, 1)
    long = [a for a in graph_order if new_shape[a] != 1]
    return long != sorted(long)


def framework_order(b, name: str, x, lift: bool = False):
    """``x`` in the framework's own element order (plain, batch@k or unbatched: see torch_import), and with
    ``lift`` unbatched, a unit axis added in front (so that its batch axis, or any, can be gathered,
    concatenated or stacked like the others)."""
    from tinyopt.graph.torch_import import ordered
    from tinyopt.ops.gather import unpermute

    if x.layout == "grouped":
        b.unsupported(f"channels viewed as groups {list(x.shape)} in another order",
                      "reshape them back to (N, C, H, W) first")
    if x.layout in ("nchw", "ncl"):
        x = _framework_order(b, name, x)
    elif x.permuted:
        x = unpermute(b, f"{name}/order", x)
    assert ordered(x.layout), x.layout
    if lift and x.layout != "unbatched":
        return b.emit(f"{name}/lift", Reshape.name, [x.name], {"new_shape": (1, *x.shape)}, "unbatched")
    return x


def common_layout(b, name: str, a, other):
    """Two framework values of one rank in one layout, for an element-wise operation: ``other`` brought into
    ``a``'s layout (a residual add of attention's plain output to a channels-first value), or both into the
    framework's order when either is unbatched or flattened differently. Returns the pair."""
    from tinyopt.graph.torch_import import Val

    same_perm = (a.perm is None) == (other.perm is None) and (a.perm is None
                                                              or np.array_equal(a.perm, other.perm))
    if a.layout == other.layout and same_perm:
        return a, other
    if len(a.shape) != len(other.shape) or "grouped" in (a.layout, other.layout):
        b.unsupported(f"an element-wise operation on {list(a.shape)} ({a.layout}) and {list(other.shape)} "
                      f"({other.layout})", "give both operands the same rank")
    if a.layout not in ("plain", "nchw", "ncl") or other.layout not in ("plain", "nchw", "ncl") or a.permuted:
        return (framework_order(b, f"{name}/lhs", a, lift=True),
                framework_order(b, f"{name}/rhs", other, lift=True))
    y = framework_order(b, f"{name}/rhs", other)
    if a.layout in ("nchw", "ncl"):
        y = _channels_first(b, f"{name}/rhs_{a.layout}", y, y.shape)
    assert y.layout == a.layout, (y.layout, a.layout)
    return a, Val(y.name, y.layout, y.shape)


def _framework_order(b, name: str, x):
    """A channels-first value as a plain tensor in the framework's own order (N, C, H, W) or (N, C, L)."""
    from tinyopt.ops import transpose

    if x.layout == "ncl":
        _, ch, length = x.shape
        x = b.emit(f"{name}/nlc", Reshape.name, [x.name], {"new_shape": (1, length, ch)}, "plain")
        return transpose.build(b, f"{name}/ncl", x, [0, 2, 1], view=False)
    _, ch, h, w = x.shape
    from tinyopt.graph.torch_import import Val

    hwc = Val(x.name, "plain", (1, h, w, ch))  # the graph tensor itself
    return transpose.build(b, f"{name}/nchw", hwc, [0, 3, 1, 2], view=False)


def _channels_first(b, name: str, x, new_shape):
    """A plain tensor read as channels-first (N, C, H, W) or (N, C, L): the channels move last."""
    from tinyopt.graph.torch_import import Val
    from tinyopt.ops import transpose

    y = b.emit(name, Reshape.name, [x.name], {"new_shape": new_shape}, "plain")
    if len(new_shape) == 4:
        t = transpose.build(b, f"{name}/nhwc", y, [0, 2, 3, 1], view=False)
        return Val(t.name, "nchw", new_shape)
    _, ch, length = new_shape
    t = transpose.build(b, f"{name}/nlc", y, [0, 2, 1], view=False)
    z = b.emit(f"{name}/n1lc", Reshape.name, [t.name], {"new_shape": (1, 1, length, ch)}, "ncl")
    return z


def _ungroup(b, name: str, x, new_shape):
    """Leave the grouped view: back to (N, C, H, W), the channels gathered into the order the group
    transposes left them in (a channel shuffle), or regrouped."""
    from tinyopt.graph.torch_import import Val
    from tinyopt.ops.gather import Gather

    ch = int(np.prod(x.shape[1:-2]))
    h, w = x.shape[-2:]
    if x.perm is None:
        flat = Val(x.name, "nchw", (1, ch, h, w))
    else:  # graph channel j holds framework channel perm[j]: gather them back into order
        ins = [x.name, b.const(f"{name}/channels", np.argsort(x.perm).astype(np.int32), "int32")]
        flat = b.emit(f"{name}/shuffle", Gather.name, ins, {"axis": 3, "batch_dims": 0}, "nchw")
    return build(b, name, flat, new_shape)
