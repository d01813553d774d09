"""Which operators a deploy target can run, and why not, before anything is deployed.

Targets:
- ``tflm``: TensorFlow Lite Micro's reference kernels (what ``tinyopt.runtime`` reproduces bit for bit):
  float32, int8, or int16 activations with int8 weights (16x8, for the operators whose records have that
  kernel; no hybrid float-activation/int8-weight kernels, no uint8 here), fused activations
  NONE/RELU/RELU6/RELU_N1_TO_1, quantization parameters TFLM's Prepare accepts.
- ``tinyopt-c``: the generated C library (``tinyopt.export.c``): int8, and 16x8 where a record has an int16
  C kernel; the operators it has C kernels for, integer inputs and outputs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tinyopt import ops
from tinyopt.errors import ConfigError, TinyoptError
from tinyopt.graph.ir import Graph, Node
from tinyopt.ops._common import INTEGER_ACTIVATIONS
from tinyopt.runtime.prepare import data_input, prepare_node

TARGETS = ("tflm", "tinyopt-c")


@dataclass
class OpSupport:
    index: int
    name: str
    op: str
    dtype: str
    supported: bool
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def _first_line(e: TinyoptError) -> str:
    """The error's own message and fix, without the file/node prefix (the table already says where)."""
    text = e.message.rstrip(".")
    return f"{text}; fix: {e.fix.rstrip('.')}" if e.fix else text


def _describe(graph: Graph, node: Node, p) -> str:
    bits = [p.dtype]
    if ops.get(node.op).weight_axis is not None and p.dtype in ("int8", "int16"):
        q = graph.tensors[node.inputs[1]].quant
        bits.append("per-channel" if q is not None and q.per_channel else "per-tensor")
    if hasattr(p, "stride_h"):
        bits.append(f"stride {p.stride_h}x{p.stride_w}")
        if (p.dilation_h, p.dilation_w) != (1, 1):
            bits.append(f"dilation {p.dilation_h}x{p.dilation_w}")
        bits.append(p.padding)
    act = node.attrs.get("activation")
    if act and act != "NONE":
        bits.append(f"fused {act}")
    return ", ".join(bits)


def _tflm_node(graph: Graph, index: int, node: Node) -> tuple[bool, str]:
    rec = ops.find(node.op)
    if ops.is_opaque(node.op):
        return False, f"{node.op}: tinyopt does not know this operator (custom or not yet supported); " \
                      "nothing here can run or count it"
    if rec is None or not rec.tflm:
        if rec is not None and rec.missing_fix:
            return False, f"{node.op} is not a TFLite operator; {rec.missing_fix}"
        return False, f"{node.op} is not among the TFLM kernels tinyopt checks ({', '.join(tflm_ops())})"
    ins = graph.node_inputs(node)
    x = data_input(graph, node)
    dtypes = {t.dtype for t in [x, *(graph.tensors[o] for o in node.outputs)] if t is not None}
    bad = sorted(dtypes - {"float32", "int8", "int16"})  # int16: the record's prepare says if it has 16x8
    indices = bad == ["int32"] and rec.check_dtypes(ins, graph.tensors[node.outputs[0]]) is None  # ARG_MAX
    if bad and not indices:
        return False, f"dtype {', '.join(bad)} is not supported (float32, int8, or int16 for 16x8)"
    if rec.weight_axis is not None and x.dtype == "float32" and ins[1] is not None and ins[1].dtype == "int8":
        return False, "hybrid layer (float activations, int8 weights): TFLM has no hybrid kernels; " \
                      "convert the model to full int8"
    act = node.attrs.get("activation", "NONE") or "NONE"
    if act not in INTEGER_ACTIVATIONS:
        return False, f"fused activation {act} is not supported; use a separate {act} operator"
    try:
        p = prepare_node(graph, node)
    except TinyoptError as e:
        return False, _first_line(e)
    return True, _describe(graph, node, p)


def tflm_ops() -> tuple[str, ...]:
    """The operators whose TFLM kernels tinyopt reproduces."""
    return tuple(r.name for r in ops.records() if r.tflm)


def _c_node(graph: Graph, index: int, node: Node) -> tuple[bool, str]:
    from tinyopt.export.c.params import prepare

    tensors = [data_input(graph, node) if node.inputs else None,
               *(graph.tensors[t] for t in node.outputs if t)]
    dtypes = sorted({t.dtype for t in tensors if t is not None} - {"int8", "int16"})  # int16: pack_c decides
    if dtypes and any(graph.tensors[t].dtype == "float32" for t in graph.inputs):
        return False, (f"dtype {', '.join(dtypes)}: the C library runs int8 (and 16x8) models; "
                       "convert the model first")
    if dtypes:  # a float operator inside a converted model, not one the C library folds into a table
        return False, (f"dtype {', '.join(dtypes)} inside an integer model: the C library has no float "
                       "kernels; it runs a float island as an int8 table only when it is DEQUANTIZE from "
                       "int8, one-input element-wise operators, QUANTIZE to int8 (not between int16 "
                       "tensors); deploy this model with TFLM (--runtime tflm-reference), or convert it with "
                       "--activations int8")
    try:
        prepare(graph, index, node)
        p = prepare_node(graph, node)
    except TinyoptError as e:
        return False, _first_line(e)
    return True, _describe(graph, node, p)


def check_support(graph: Graph, target: str = "tflm") -> list[OpSupport]:
    """One row per operator: supported or not, and the reason (dtype, activation, parameters...)."""
    if target not in TARGETS:
        raise ConfigError(f"unknown target '{target}'", where="--target",
                          fix=f"use one of {', '.join(TARGETS)}")
    check = _tflm_node if target == "tflm" else _c_node
    tables = {}
    if target == "tinyopt-c":
        from tinyopt.ops.lookup_table import float_islands

        for chain in float_islands(graph):
            ops_ = " → ".join(n.op for n in chain)
            for n in chain:
                tables[id(n)] = (f"float island {ops_}: one int8 lookup table in the C library "
                                 "(same bytes as TFLM)")
    rows = []
    for i, node in enumerate(graph.nodes):
        x = data_input(graph, node) if node.inputs and node.inputs[0] else None
        ok, why = (True, tables[id(node)]) if id(node) in tables else check(graph, i, node)
        rows.append(OpSupport(i, node.name, node.op, x.dtype if x is not None else "-", ok, why))
    return rows


def graph_level_problems(graph: Graph, target: str) -> list[str]:
    """Problems that belong to no single operator (the C library's one int8 input and output)."""
    if target != "tinyopt-c":
        return []
    from tinyopt.export.c.generate import check_graph

    try:
        check_graph(graph)
    except TinyoptError as e:
        return [_first_line(e)]
    return []
