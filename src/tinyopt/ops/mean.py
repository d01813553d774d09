"""MEAN: the average over ``axes`` (an int32 constant operand; importers may give ``attrs["axes"]``).

Integer path as TFLM's ``QuantizedMeanOrSum``: sum, remove the input zero point, then one requantization
whose multiplier has 1/count folded in (with at most 32 bits of extra shift).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.errors import ModelFormatError, UnsupportedOpError
from tinyopt.graph.ir import Node, Tensor
from tinyopt.ops import _common as c
from tinyopt.ops._record import CKernel, Op, OpData, Options, register, scalar
from tinyopt.runtime.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier


@dataclass(kw_only=True)
class MeanData(OpData):
    axes: list                       # non-negative graph axes
    keep_dims: bool
    num_elements_in_axis: int
    input_zero_point: int | None = None
    output_zero_point: int | None = None
    multiplier: int | None = None     # input scale / output scale, before the 1/count adjustment
    shift: int | None = None
    mean_multiplier: int | None = None  # with 1/num_elements_in_axis folded in (what Eval uses)
    mean_shift: int | None = None


def _axes(graph, node, x) -> list[int]:
    axes = node.attrs.get("axes")
    if axes is None:
        if len(node.inputs) < 2 or graph.tensors[node.inputs[1]].data is None:
            c.fail(graph, node, "has no constant axes", "give MEAN a constant axes tensor")
        axes = np.asarray(graph.tensors[node.inputs[1]].data).ravel().tolist()
    return [int(a) for a in axes]


@register
class Mean(Op):
    name = "MEAN"
    builtin = 40
    options = Options(27, (scalar("keep_dims", 0, "bool", False),))
    arity = (2, 2)
    int8_version = 2
    c = CKernel("mean", "mean_params")
    onnx = ("GlobalAveragePool", "ReduceMean")
    torch_modules = ("AdaptiveAvgPool1d", "AdaptiveAvgPool2d")
    torch_functions = ("mean", "adaptive_avg_pool1d", "adaptive_avg_pool2d")
    spec_layers = {"global_avgpool": frozenset()}
    spec_aliases = {"global_average_pooling": "global_avgpool", "gap": "global_avgpool"}

    def read_tflite(self, r, ins, out):
        axes = r.const_int(ins[1], "axes")
        rank = len(ins[0].shape)
        if axes.ndim > 1 or any(not -rank <= a < rank for a in axes.ravel().tolist()):
            r.fail(f"axes {axes.ravel().tolist()} are out of range for rank {rank}")
        return super().read_tflite(r, ins, out)

    def complete_operands(self, graph, node):
        if len(node.inputs) >= 2 and node.inputs[1]:
            return
        if "axes" not in node.attrs:
            raise ModelFormatError("MEAN has neither an axes operand nor an 'axes' attribute", path=graph.source,
                                   where=f"node {graph.nodes.index(node)} '{node.name}'",
                                   fix="give the axes to average over")
        axes = np.asarray(node.attrs["axes"], np.int32).ravel()
        name = graph.unique_name(f"{node.name}_axes")
        graph.add_tensor(Tensor(name, axes.shape, "int32", data=axes))
        node.inputs = [node.inputs[0], name]

    def shape(self, graph, node, fail):
        x = graph.tensors[node.inputs[0]]
        axes = {a % len(x.shape) for a in _axes(graph, node, x)}
        if node.attrs.get("keep_dims"):
            return tuple(1 if i in axes else d for i, d in enumerate(x.shape))
        return tuple(d for i, d in enumerate(x.shape) if i not in axes)

    def other_ops(self, graph, node):
        return graph.tensors[node.inputs[0]].size + graph.tensors[node.outputs[0]].size

    def prepare(self, graph, node, is_int):
        x = graph.tensors[node.inputs[0]]
        axes = _axes(graph, node, x)
        rank = len(x.shape)
        if any(not -rank <= int(a) < rank for a in axes):
            c.fail(graph, node, f"axes {list(axes)} are out of range for a rank-{rank} input", "fix the axes")
        axes = sorted({int(a) % rank for a in axes})
        count = int(np.prod([x.shape[a] for a in axes]))
        p = dict(axes=axes, keep_dims=bool(node.attrs.get("keep_dims", False)), num_elements_in_axis=count)
        if not is_int:
            return MeanData(dtype="float32", **p)
        si, zi = c.scalar_qparams(graph, node, node.inputs[0])
        so, zo = c.scalar_qparams(graph, node, node.outputs[0])
        m, s = quantize_multiplier(float(si) / float(so))
        shift = min(count.bit_length() - 1, 32, 31 + s)
        mean_m = (m << shift) // count if shift >= 0 else (m >> -shift) // count
        return MeanData(dtype="int8", **p, input_zero_point=zi, output_zero_point=zo, multiplier=m, shift=s,
                        mean_multiplier=int(mean_m), mean_shift=s - shift)

    def eval(self, p: MeanData, inputs):
        x = inputs[0]
        axes = tuple(a for a in p.axes if a != 0)
        keep = p.keep_dims
        if p.dtype != "int8":
            return np.mean(x.astype(np.float32), axis=axes, keepdims=keep).astype(np.float32)
        total = np.sum(x.astype(np.int64), axis=axes, keepdims=keep)
        shifted = total - p.input_zero_point * p.num_elements_in_axis
        out = multiply_by_quantized_multiplier(shifted, p.mean_multiplier, p.mean_shift) + p.output_zero_point
        return np.clip(out, -128, 127).astype(np.int8)

    def pack_c(self, graph, index, node):
        from tinyopt.export.c import params as cp

        x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        cp.check_int8(graph, index, node, [x, y])
        q = self.prepare(graph, node, True)
        if len(x.shape) != 4 or sorted(q.axes) != [1, 2]:
            raise UnsupportedOpError(f"MEAN over axes {q.axes} of a rank-{len(x.shape)} tensor", path=graph.source,
                                     where=cp.where(index, node),
                                     fix="the C generator reduces the spatial axes [1, 2] of NHWC tensors")
        ints = dict(channels=x.shape[3], count=q.num_elements_in_axis, input_zero_point=q.input_zero_point,
                    output_zero_point=q.output_zero_point, multiplier=q.mean_multiplier, shift=q.mean_shift)
        return cp.OpParams("mean", ints)

    # -- doors
    def from_onnx(self, cv, node, name, a, ins):
        x = cv.val(ins[0])
        if node.op_type == "GlobalAveragePool":
            return build(cv.b, name, x, range(2, len(x.shape)), keepdim=True)
        axes = a.get("axes") if cv.opset < 18 else (
            cv.const(ins[1], "axes").tolist() if len(ins) > 1 and ins[1] else None)
        if axes is None:
            cv.b.unsupported("ReduceMean over all axes")
        return build(cv.b, name, x, axes, bool(a.get("keepdims", 1)))

    def _adaptive(self, cv, name, x, out_shape):
        if tuple(out_shape[2:]) == tuple(x.shape[2:]):
            return x
        if all(d == 1 for d in out_shape[2:]):
            return build(cv.b, name, x, range(2, len(x.shape)), keepdim=True)
        return cv.b.unsupported(f"adaptive average pooling to {list(out_shape[2:])} (only to 1)",
                                "use AdaptiveAvgPool(1) or a fixed AvgPool")

    def from_torch_module(self, cv, n, m, name, out_shape):
        return self._adaptive(cv, name, cv.val(n.args[0]), out_shape)

    def from_torch_function(self, cv, n, key, name, out_shape):
        if key.startswith("adaptive"):
            return self._adaptive(cv, name, cv.val(n.args[0]), out_shape)
        arg = cv.arg(n)
        dim = arg(1, "dim")
        if dim is None:
            cv.b.unsupported("a mean over all axes", "average over the spatial axes only")
        from tinyopt.graph.torch_import import tup

        return build(cv.b, name, cv.val(n.args[0]), tup(dim, 1), bool(arg(2, "keepdim", False)))

    def from_spec(self, sb, kind, layer, x, lname, fused):
        if len(x.shape) != 4:
            sb.fail("global_avgpool needs an H×W×C input", "remove the flatten before it")
        return Node(lname, self.name, [x.name], [sb.out(lname)], {"axes": (1, 2), "keep_dims": False})


def build(b, name: str, x, axes, keepdim: bool):
    """Mean over a framework value's spatial axes (global average pooling)."""
    rank = len(x.shape)
    axes = sorted({a % rank for a in axes})
    spatial = {"nchw": [2, 3], "ncl": [2]}.get(x.layout)
    if spatial is None or axes != spatial:
        b.unsupported(f"a mean over axes {axes} of {list(x.shape)}",
                      "average over the spatial axes only (global average pooling)")
    return b.emit(name, Mean.name, [x.name], {"axes": (1, 2), "keep_dims": bool(keepdim)},
                  x.layout if keepdim else "plain")
