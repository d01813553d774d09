"""Shape-only what-if transforms for the verdict: "what would it cost with fewer filters?".

``scale_filters`` returns a copy of a graph in which every conv/dense layer except the last keeps a
fraction of its output channels (structured pruning), and every later layer's inputs follow. Weights are
dropped (``data=None``): only shapes matter for counting.
"""

from __future__ import annotations

import numpy as np

from tinyopt.analysis.cost import MAC_OPS
from tinyopt.errors import TinyoptError
from tinyopt.graph.ir import Graph, QuantParams, Tensor
from tinyopt.graph.shapes import infer_node


def _resize(t: Tensor, shape: tuple[int, ...], channels: int | None = None) -> None:
    t.shape = tuple(int(d) for d in shape)
    t.data = None
    if t.quant is not None and t.quant.per_channel and channels is not None:
        t.quant = QuantParams(np.ones(channels, np.float32), np.zeros(channels, np.int64), t.quant.axis)


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
            orig_x = graph.tensors[node.inputs[0]]
            x = g.tensors[node.inputs[0]]
            if node.op in MAC_OPS:
                w0 = graph.tensors[node.inputs[1]]
                bias = g.tensors[node.inputs[2]] if len(node.inputs) > 2 and node.inputs[2] else None
                if node.op == "CONV_2D":
                    o, kh, kw, _ = w0.shape
                    o2 = o if node.name == last else max(1, round(o * keep))
                    _resize(g.tensors[node.inputs[1]], (o2, kh, kw, x.shape[-1]), o2)
                elif node.op == "DEPTHWISE_CONV_2D":
                    _, kh, kw, om = w0.shape
                    mult = max(1, om // orig_x.shape[-1])
                    o2 = x.shape[-1] * mult
                    _resize(g.tensors[node.inputs[1]], (1, kh, kw, o2), o2)
                else:
                    o, cin = w0.shape
                    rows = orig_x.size // cin
                    o2 = o if node.name == last else max(1, round(o * keep))
                    _resize(g.tensors[node.inputs[1]], (o2, x.size // rows), o2)
                if bias is not None:
                    _resize(bias, (o2,), o2)
            elif node.op == "BATCH_NORM":
                for name in node.inputs[1:]:
                    _resize(g.tensors[name], (x.shape[-1],))
            elif node.op == "RESHAPE":
                out0 = graph.tensors[node.outputs[0]]
                if len(out0.shape) == 2:
                    node.attrs["new_shape"] = (out0.shape[0], x.size // out0.shape[0])
                elif out0.shape[-1] == orig_x.shape[-1]:
                    node.attrs["new_shape"] = (*out0.shape[:-1], x.shape[-1])
                else:
                    return None
            infer_node(g, node, index=i)
    except TinyoptError:
        return None
    return g


def _shape_operands(graph: Graph) -> set[str]:
    """Constants that are not parameters (RESHAPE shapes, PAD paddings, MEAN axes): keep their data."""
    from tinyopt.graph.ops import PARAM_INPUTS

    params = {n.inputs[i] for n in graph.nodes for i in PARAM_INPUTS.get(n.op, ()) if i < len(n.inputs)}
    return {t.name for t in graph.constants() if t.name not in params}
