"""SQUEEZE: the input without the axes of size 1 listed in ``squeeze_dims`` (all of them when the list is
empty), as TFLM's ``Squeeze``: a copy of the bytes. In the C library its output aliases its input."""

from __future__ import annotations

from dataclasses import dataclass

from tinyopt.ops import _common as c
from tinyopt.ops import _movement as mv
from tinyopt.ops._record import CKernel, Op, OpData, Options, QuantRule, register

_SQUEEZE_DIMS_SLOT = 0
MAX_RANK = 8  # TFLM's squeeze.cc max_squeeze_dims


@dataclass(kw_only=True)
class AliasData(OpData):
    new_shape: tuple  # the output shape (batch 1)


def squeezed_axes(shape, dims) -> list[int] | str:
    """The axes SQUEEZE removes, or what is wrong with ``dims``.

    >>> squeezed_axes((1, 3, 1, 1), ()), squeezed_axes((1, 3, 1), (-1,)), squeezed_axes((1, 3), (1,))
    ([0, 2, 3], [2], 'axis 1 has size 3, not 1')
    """
    rank = len(shape)
    if not dims:
        return [k for k, d in enumerate(shape) if d == 1]
    out = []
    for d in dims:
        if not -rank <= int(d) < rank:
            return f"axis {d} is out of range for rank {rank}"
        k = int(d) % rank
        if shape[k] != 1:
            return f"axis {k} has size {shape[k]}, not 1"
        out.append(k)
    return sorted(set(out))


@register
class Squeeze(Op):
    name = "SQUEEZE"
    builtin = 43
    options = Options(30)
    aliases_input = False  # same bytes, but its attributes are relative to its input: no chain folding
    quant = QuantRule(output="input")
    c = CKernel("", "")  # no kernel: the output aliases the input

    def read_tflite(self, r, ins, out):
        dims = r.array(_SQUEEZE_DIMS_SLOT, "<i4", "the squeezed axes") if r.has(_SQUEEZE_DIMS_SLOT) else []
        return {"squeeze_dims": tuple(int(d) for d in dims)}

    def write_tflite(self, w, graph, node):
        dims = list(node.attrs.get("squeeze_dims", ()))
        return w.table([(_SQUEEZE_DIMS_SLOT, "off", w.vector(dims, "<i4"), 0)])

    def shape(self, graph, node, fail):
        x = graph.tensors[node.inputs[0]]
        axes = squeezed_axes(x.shape, node.attrs.get("squeeze_dims", ()))
        if isinstance(axes, str):
            fail(f"cannot squeeze {list(x.shape)}: {axes}", "list only axes of size 1")
        return tuple(d for k, d in enumerate(x.shape) if k not in axes)

    def prepare(self, graph, node, is_int):
        x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        if len(x.shape) > MAX_RANK:
            c.unsupported(graph, node, f"a rank-{len(x.shape)} squeeze", f"TFLM squeezes up to {MAX_RANK}-D")
        mv.keeps_batch(graph, node, bool(y.shape) and y.shape[0] == 1, "the squeeze")
        mv.check_same_quant(graph, node, node.inputs[:1], is_int)
        return AliasData(dtype=mv.dtype_of(is_int), new_shape=y.shape)

    def eval(self, p: AliasData, inputs):
        x = inputs[0]
        return x.reshape((x.shape[0], *p.new_shape[1:]))

    def pack_c(self, graph, index, node):
        from tinyopt.export.c.params import OpParams

        self.prepare(graph, node, True)
        return OpParams("alias", {"size": graph.tensors[node.outputs[0]].size}, aliases=True)
