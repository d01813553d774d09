"""Per-layer cost: parameters, MACs, FLOPs, other ops and bytes at real (or "as if") dtypes.

Conventions (DESIGN.md): FLOPs = 2 × MACs for CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED, as the
seeds count them. Everything else that computes (bias adds, fused activations, pooling, element-wise
ops, softmax) is counted apart as ``other_ops``, one op per arithmetic operation:

- bias add: 1 per output element; fused RELU/RELU6/...: 1 per output element;
- MAX/AVERAGE_POOL_2D: window size per output element (compares or adds), +1 divide for average;
- MEAN: 1 add per input element + 1 divide per output element;
- ADD/SUB/MUL, RELU, RELU6, LOGISTIC, TANH, QUANTIZE, DEQUANTIZE: 1 per output element;
- SOFTMAX: 3 per element (exp, sum, divide); BATCH_NORM: 2 per element (scale and shift, folded form);
- RESHAPE, PAD, CONCATENATION move data: 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tinyopt import ops
from tinyopt.graph.ir import DTYPE_BYTES, Graph, Node, Tensor

DTYPES = ("float32", "int8")
# Operators with MACs (a weight with an output-channel axis), derived from the registry.
MAC_OPS = tuple(r.name for r in ops.records() if r.weight_axis is not None)


@dataclass
class LayerCost:
    """The cost of one node. ``output_shape`` excludes the batch dimension."""

    name: str
    type: str
    output_shape: list[int]
    params: int
    macs: int
    flops: int
    other_ops: int
    param_bytes: int
    activation_bytes: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class CostTotals:
    params: int
    macs: int
    flops: int
    other_ops: int
    param_bytes: int

    def to_dict(self) -> dict:
        return asdict(self)


def short_name(name: str, limit: int = 36) -> str:
    """A readable label for converter names like 'model/act/Relu;model/bn/FusedBatchNormV3;...;conv2d/Conv2D':
    the last ';'-separated part, cut in the middle when still too long."""
    tail = name.split(";")[-1]
    return tail if len(tail) <= limit else f"{tail[:limit // 2 - 1]}…{tail[-(limit // 2):]}"


def is_bias(node: Node, index: int) -> bool:
    return index == ops.get(node.op).bias_input


def param_dtype(tensor: Tensor, node: Node, index: int, as_dtype: str | None) -> str:
    """The dtype a parameter is stored in: its own, or "as if" ``as_dtype``.

    As if int8 follows TFLM's int8 spec: weights int8, biases int32 (they accumulate int8×int8 products).
    """
    if as_dtype is None:
        return tensor.dtype
    if as_dtype == "int8":
        return "int32" if is_bias(node, index) else "int8"
    return as_dtype


def activation_dtype(tensor: Tensor, as_dtype: str | None) -> str:
    return tensor.dtype if as_dtype is None else as_dtype


def tensor_bytes(tensor: Tensor, dtype: str) -> int:
    """Bytes at ``dtype``; a tensor at its own dtype counts what the file stores (float16, sparse)."""
    if dtype == tensor.dtype and tensor.stored_bytes is not None:
        return tensor.stored_bytes
    return int(-(-tensor.size * DTYPE_BYTES[dtype] // 1))


def node_params(graph: Graph, node: Node, as_dtype: str | None = None) -> tuple[int, int]:
    """(parameter count, parameter bytes) of a node; shape operands are not parameters."""
    count = nbytes = 0
    rec = ops.get(node.op)
    for idx in rec.param_inputs:
        if idx < len(node.inputs) and node.inputs[idx]:
            t = graph.tensors[node.inputs[idx]]
            count += t.size
            nbytes += tensor_bytes(t, param_dtype(t, node, idx, as_dtype))
    return count, nbytes


def node_macs(graph: Graph, node: Node) -> int:
    """Multiply-accumulates of one node (0 for ops that are not conv/depthwise/dense)."""
    return ops.get(node.op).macs(graph, node)


def node_other_ops(graph: Graph, node: Node) -> int:
    """The record's other ops, plus one per output element for a fused activation."""
    ops_ = ops.get(node.op).other_ops(graph, node)
    if node.attrs.get("activation", "NONE") not in ("NONE", None):
        ops_ += graph.tensors[node.outputs[0]].size
    return ops_


def layer_costs(graph: Graph, dtype: str | None = None) -> list[LayerCost]:
    """One ``LayerCost`` per node, in graph order. ``dtype`` prices bytes "as if" that dtype."""
    rows = []
    for node in graph.nodes:
        params, pbytes = node_params(graph, node, dtype)
        macs = node_macs(graph, node)
        out = graph.tensors[node.outputs[0]]
        rows.append(LayerCost(
            name=node.name, type=node.op, output_shape=list(out.shape[1:]) if len(out.shape) > 1 else
            list(out.shape), params=params, macs=macs, flops=2 * macs,
            other_ops=node_other_ops(graph, node), param_bytes=pbytes,
            activation_bytes=sum(tensor_bytes(graph.tensors[o], activation_dtype(graph.tensors[o], dtype))
                                 for o in node.outputs)))
    return rows


def totals(rows: list[LayerCost]) -> CostTotals:
    """Sum of the per-layer rows."""
    return CostTotals(params=sum(r.params for r in rows), macs=sum(r.macs for r in rows),
                      flops=sum(r.flops for r in rows), other_ops=sum(r.other_ops for r in rows),
                      param_bytes=sum(r.param_bytes for r in rows))


def model_dtype(graph: Graph) -> str:
    """The compute dtype of a graph: int8, int16 (16x8: int16 activations, int8 weights) or float32.

    Activations decide, not weights: a dynamic-range ("hybrid") model stores int8 weights but computes in
    float, like MLPerf's ``kws_ref_model_float32.tflite``. The layers with weights decide when there are
    any, so a converted model keeps its integer dtype with float I/O (QUANTIZE in front) or a float island
    (DEQUANTIZE → SQRT → QUANTIZE) inside; otherwise every activation does.
    """
    from tinyopt.runtime.prepare import data_input

    recs = [(n, ops.find(n.op)) for n in graph.nodes]
    layers = [data_input(graph, n) for n, r in recs if r is not None and r.weight_axis is not None
              and n.inputs]
    acts = {t.dtype for t in layers if t is not None} or {t.dtype for t in graph.activations()}
    if not acts or not acts <= {"int8", "uint8", "int16"}:
        return "float32"
    return "int16" if "int16" in acts else "int8"


def largest_activation(graph: Graph, dtype: str | None = None) -> tuple[str, int]:
    """(name, bytes) of the largest single activation tensor, graph input included."""
    best = ("", 0)
    for t in graph.activations():
        b = tensor_bytes(t, activation_dtype(t, dtype))
        if b > best[1]:
            best = (t.name, b)
    return best
