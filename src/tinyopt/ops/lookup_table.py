"""LOOKUP_TABLE: an int8 → int8 element-wise function as a 256-entry table; the C library's form of a float
island.

``convert`` keeps an operator TFLM runs in float only (SQRT of an STFT magnitude, EXP, LOG) between a
DEQUANTIZE and a QUANTIZE, as the TFLite converter's float fallback does, and TFLM runs that island. Its int8
output depends on the int8 input value alone, so the C library runs it as one table read per element
(kernels/lut.c), the table computed at generation time by the runtime's bit-exact kernels of the island's
three nodes on all 256 inputs: no float in the library, the same bytes as TFLM. Not a TFLite operator:
``fuse_float_islands`` makes it on the C generator's copy of the graph, never in a saved model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.graph.ir import Graph, Node, Tensor
from tinyopt.ops._record import CKernel, Op, OpData, register


@dataclass(kw_only=True)
class LookupTableData(OpData):
    pass


@register
class LookupTable(Op):
    name = "LOOKUP_TABLE"
    arity = (2, 2)  # the int8 input, the int8 [256] table (table[x + 128] is the output for x)
    data_inputs = 1
    ops_per_element = 1
    quant = None
    tflm = False
    missing_fix = ("deploy the model with its DEQUANTIZE / float operator / QUANTIZE island (TFLM runs it); "
                   "the table form exists for the C library only")
    c = CKernel("lut", "lut_params")

    def check_dtypes(self, ins, out):
        if ins[0].dtype != "int8" or out.dtype != "int8" or ins[1].dtype != "int8" or ins[1].size != 256:
            return f"looks up {ins[0].dtype} in a {ins[1].dtype} table of {ins[1].size} to {out.dtype}"
        return None

    def prepare(self, graph, node, is_int):
        return LookupTableData(dtype="int8")

    def eval(self, p, inputs):
        x, table = inputs
        return np.asarray(table, np.int8).reshape(256)[x.astype(np.int64) + 128]

    def pack_c(self, graph, index, node):
        from tinyopt.export.c import params as cp

        x, t, y = (graph.tensors[n] for n in (node.inputs[0], node.inputs[1], node.outputs[0]))
        cp.check_int8(graph, index, node, [x, y])
        return cp.OpParams("lut", {"size": y.size},
                           {"table": ("int8_t", np.asarray(t.data, np.int8).reshape(256))},
                           inplace="elementwise", struct="lut_params", entry="lut", files=("lut",))


def _island(graph: Graph, quantize: Node, consumers: dict, outputs: set) -> list[Node] | None:
    """The nodes DEQUANTIZE (int8) → element-wise float-only ops → ``quantize`` (→ int8), first to last, when
    each tensor between them feeds only the next node; else None."""
    from tinyopt import ops
    from tinyopt.ops._unary import Unary
    from tinyopt.ops.dequantize import Dequantize

    producer = {o: n for n in graph.nodes for o in n.outputs}
    chain = [quantize]
    cur = quantize.inputs[0]
    while True:
        if cur in outputs or len(consumers.get(cur, ())) != 1 or cur not in producer:
            return None
        n = producer[cur]
        chain.append(n)
        if n.op == Dequantize.name:
            x = graph.tensors[n.inputs[0]]
            return chain[::-1] if x.dtype == "int8" and x.data is None and len(chain) > 2 else None
        rec = ops.find(n.op)
        if not isinstance(rec, Unary) or len([t for t in n.inputs if t]) != 1:
            return None  # only one-input element-wise functions keep "one input value, one output value"
        cur = n.inputs[0]


def island_table(graph: Graph, chain: list[Node]) -> np.ndarray:
    """The island's int8 output for each int8 input -128..127, by the runtime's own kernels."""
    from tinyopt.runtime import Interpreter

    g = Graph("island", source=graph.source)
    for n in chain:
        for t in (*n.inputs, *n.outputs):
            src = graph.tensors[t]
            if t not in g.tensors:
                g.add_tensor(Tensor(t, (1, 256), src.dtype, quant=src.quant))
        g.add_node(Node(n.name, n.op, list(n.inputs), list(n.outputs), dict(n.attrs)))
    g.inputs, g.outputs = [chain[0].inputs[0]], [chain[-1].outputs[0]]
    return Interpreter(g).run(np.arange(-128, 128, dtype=np.int8).reshape(1, 256))[0].reshape(256)


def float_islands(graph: Graph) -> list[list[Node]]:
    """Every float island the C library runs as a table (see the module), each first node to last."""
    from tinyopt.ops.quantize import Quantize

    consumers: dict[str, list[int]] = {}
    for i, n in enumerate(graph.nodes):
        for t in n.inputs:
            if t:
                consumers.setdefault(t, []).append(i)
    outputs = set(graph.outputs)
    islands = []
    for n in graph.nodes:
        if n.op == Quantize.name and graph.tensors[n.inputs[0]].dtype == "float32" and \
                graph.tensors[n.outputs[0]].dtype == "int8":
            chain = _island(graph, n, consumers, outputs)
            if chain is not None:
                islands.append(chain)
    return islands


def fuse_float_islands(graph: Graph) -> Graph:
    """A copy of ``graph`` whose float islands (see the module) are LOOKUP_TABLE nodes; ``graph`` itself if it
    has none."""
    islands = float_islands(graph)
    if not islands:
        return graph
    g = graph.copy()
    drop = {id(n) for chain in islands for n in chain}
    by_last = {id(chain[-1]): chain for chain in islands}
    nodes = []
    for n, copied in zip(graph.nodes, g.nodes):
        if id(n) in by_last:
            chain = by_last[id(n)]
            table = island_table(graph, chain)
            name = g.unique_name(f"{chain[-1].name}/table")
            g.add_tensor(Tensor(name, (256,), "int8", data=table.astype(np.int8)))
            nodes.append(Node(chain[-1].name, LookupTable.name, [chain[0].inputs[0], name], list(n.outputs)))
        elif id(n) not in drop:
            nodes.append(copied)
    g.nodes = nodes
    for chain in islands:  # the float tensors between the island's nodes are gone
        for n in chain[:-1]:
            for t in n.outputs:
                g.tensors.pop(t, None)
    return g.validate()

