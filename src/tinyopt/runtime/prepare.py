"""Per-operator preparation: everything TFLM's ``Prepare`` computes, once, before any inference.

``prepare_node(graph, node)`` returns the record's typed ``OpData`` (``tinyopt/ops/<name>.py``): Python
ints, int32 arrays and strings under TFLM's field names. The numpy kernels and the C generator both read
it, so they agree by construction. Float scales are read as float32 (as stored in the flatbuffer) and
widened to double exactly where TFLM widens them.
"""

from __future__ import annotations

from tinyopt import ops
from tinyopt.errors import UnsupportedOpError
from tinyopt.graph.ir import Graph, Node
from tinyopt.ops._common import activation_range_quantized, fail, tensor_qparams
from tinyopt.ops._record import OpData

QUANTIZED = ("int8", "int16")  # int16: the 16x8 kernels (int16 activations, int8 weights)


def is_integer_node(graph: Graph, node: Node) -> bool:
    """Integer kernels run when the first input is int8 (QUANTIZE: when the output is)."""
    return ops.get(node.op).is_integer(graph, node)


def data_input(graph: Graph, node: Node):
    """The tensor a node computes on, whose dtype picks the kernel: its first non-constant input (most
    operators' input 0; a transposed convolution's comes after its output shape and weights), else input 0.
    Index operands are not it: a constant table looked up by int32 indices (GATHER) computes on the table."""
    ins = [graph.tensors[t] for t in node.inputs if t]
    return next((t for t in ins if not t.constant and t.dtype in ("float32", *QUANTIZED)),
                ins[0] if ins else None)


def prepare_node(graph: Graph, node: Node) -> OpData:
    """All parameters the kernel of ``node`` needs, computed as TFLM's Prepare does."""
    index = next((i for i, n in enumerate(graph.nodes) if n is node), "?")
    rec = ops.get(node.op, path=graph.source, where=f"node {index} '{node.name}'")
    x = data_input(graph, node) if node.inputs and node.inputs[0] else None
    if x is None:
        fail(graph, node, "has no input", "repair or re-export the model")
    is_int = rec.is_integer(graph, node)
    if x.dtype not in ("float32", *QUANTIZED) and not rec.aliases_input:
        fail(graph, node, f"input dtype {x.dtype} is not supported", "use float32 or int8 tensors",
             cls=UnsupportedOpError)
    p = rec.prepare(graph, node, is_int)
    outs = [graph.tensors[t] for t in node.outputs if t]
    if p.dtype != "int16" and any(t.dtype == "int16" for t in (x, *outs)) and not rec.aliases_input:
        # a record without a 16x8 kernel would otherwise run its int8 path on int16 values
        fail(graph, node, f"{node.op} on int16 tensors: tinyopt's runtime has no 16x8 kernel for it",
             "convert with int8 activations, or replace the operator", cls=UnsupportedOpError)
    return p


__all__ = ["activation_range_quantized", "data_input", "is_integer_node", "prepare_node", "tensor_qparams"]
