"""Shape inference: each operator record's ``shape`` rule, with errors that name the node and the fix."""

from __future__ import annotations

from typing import NoReturn

from tinyopt import ops
from tinyopt.errors import ModelFormatError
from tinyopt.graph.ir import Graph, Node
from tinyopt.ops._common import conv_output_size, same_padding

__all__ = ["conv_output_size", "infer_node", "same_padding"]


def infer_node(graph: Graph, node: Node, index: int = 0) -> None:
    """Recompute ``node``'s output shape from its inputs."""
    rec = ops.get(node.op, path=graph.source, where=f"node {index} '{node.name}'")
    where = f"node {index} '{node.name}' ({node.op})"

    def fail(msg: str, fix: str) -> NoReturn:
        raise ModelFormatError(msg, path=graph.source, where=where, fix=fix)

    if not node.inputs or not node.inputs[0]:
        fail("has no input", "repair or re-export the model")
    shapes = rec.shapes(graph, node, fail)
    if len(shapes) != len(node.outputs):
        fail(f"has {len(node.outputs)} outputs, its inputs give {len(shapes)}",
             "repair or re-export the model")
    for name, shape in zip(node.outputs, shapes):
        out = graph.tensors[name]
        out.shape = tuple(int(d) for d in shape)
        if any(d <= 0 for d in out.shape):
            fail(f"output shape {list(out.shape)} has a non-positive dimension",
                 "the input is too small for this layer; use padding 'same' or a smaller kernel/stride")
