"""Shape-only what-if transforms for the verdict: "what would it cost with fewer filters?".

``scale_filters`` returns a copy of a graph in which every conv/dense layer except the last keeps a
fraction of its output channels (structured pruning), and every later layer's inputs follow. Weights are
dropped (``data=None``): only shapes matter for counting.
"""

from __future__ import annotations

from tinyopt import ops
from tinyopt.analysis.cost import MAC_OPS
from tinyopt.errors import TinyoptError
from tinyopt.graph.ir import Graph, Tensor
from tinyopt.graph.shapes import infer_node


def scale_filters(graph: Graph, keep: float) -> Graph | None:
    """Keep ``round(keep × filters)`` (at least 1) output channels in every conv/dense layer but the last.

    Returns None when the graph has a layer whose new shape cannot be derived (e.g. a reshape that mixes
    channels with space): the caller then omits the pruning suggestion rather than guess.
    """
    if not 0 < keep <= 1:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    mac_nodes = [n for n in graph.nodes if n.op in MAC_OPS]
    if not mac_nodes:
        return None
    last = mac_nodes[-1].name
    g = Graph(graph.name, graph.source)
    keep_data = _shape_operands(graph)
    for t in graph.tensors.values():
        g.add_tensor(Tensor(t.name, t.shape, t.dtype, t.data if t.name in keep_data else None, t.quant,
                            t.constant))
    g.nodes = [type(n)(n.name, n.op, list(n.inputs), list(n.outputs), dict(n.attrs)) for n in graph.nodes]
    g.inputs, g.outputs = list(graph.inputs), list(graph.outputs)
    try:
        for i, node in enumerate(g.nodes):
            if not ops.get(node.op).scale_channels(g, node, graph, keep, node.name == last):
                return None
            infer_node(g, node, index=i)
    except TinyoptError:
        return None
    return g


def _shape_operands(graph: Graph) -> set[str]:
    """Constants that are not parameters (RESHAPE shapes, PAD paddings, MEAN axes): keep their data."""
    from tinyopt.graph.ir import param_tensor_names

    params = param_tensor_names(graph)
    return {t.name for t in graph.constants() if t.name not in params}
