"""The one intermediate representation every importer produces and every stage consumes.

Conventions (docs/index.md, Conventions):
- Activations are NHWC with the batch dimension kept (always 1 in a Graph), as in TFLite.
- Constant tensors keep TFLite's layouts: CONV_2D weights ``[O, KH, KW, I]``, DEPTHWISE_CONV_2D
  weights ``[1, KH, KW, I*M]``, FULLY_CONNECTED weights ``[O, I]``, biases ``[O]``.
- Operators are named as TFLite builtins (``CONV_2D``, ``FULLY_CONNECTED`` ...) plus ``BATCH_NORM``
  for float architectures that have not been folded yet. Each operator's attributes are documented in
  its record, ``tinyopt/ops/<name>.py``.
- A constant whose values are unknown (a YAML spec has no weights) has ``constant=True, data=None``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from tinyopt.errors import ModelFormatError

DTYPE_BYTES = {
    "float32": 4, "float16": 2, "int64": 8, "int32": 4, "int16": 2, "int8": 1, "uint8": 1,
    "bool": 1, "int4": 0.5,
}


def _short(name: str, limit: int = 60) -> str:
    """Converter tensor names can be hundreds of characters; messages show the head and the tail."""
    return name if len(name) <= limit else f"{name[:limit // 2 - 2]}...{name[-(limit // 2 - 1):]}"


@dataclass
class QuantParams:
    """Affine quantization: ``real = scale * (q - zero_point)``.

    ``scale`` and ``zero_point`` are 1-D arrays: one element per tensor, or one per channel along
    ``axis`` (TFLite's ``quantized_dimension``).
    """

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int | None = None

    def __post_init__(self):
        self.scale = np.atleast_1d(np.asarray(self.scale, dtype=np.float32))
        self.zero_point = np.atleast_1d(np.asarray(self.zero_point, dtype=np.int64))
        if self.scale.shape != self.zero_point.shape:
            raise ValueError("scale and zero_point must have the same length")

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1

    def __eq__(self, other) -> bool:
        return (isinstance(other, QuantParams)
                and np.array_equal(self.scale, other.scale)
                and np.array_equal(self.zero_point, other.zero_point)
                and (self.axis if self.per_channel else None) == (other.axis if other.per_channel else None))


@dataclass(frozen=True)
class Encoding:
    """How a constant int8 tensor is stored in fewer bits (``tinyopt.graph.encoding`` finds, packs and checks
    it). ``Tensor.data`` keeps the int8 values it decodes to, so every stage that computes (the numpy
    runtime, convert, analysis) reads plain int8 and only the writers (``.tflite``, the C library) pack.

    ``bits``: width of each stored element, 1 to 8. ``codebook``: False, the elements are the values
    themselves as ``bits``-wide two's complement integers (int4, int2: values in [-2^(bits-1),
    2^(bits-1) - 1]); True, they are indices into a table of int8 values, one table per tensor, or one per
    output channel when the tensor is quantized per channel (TFLM's lookup-table compression). ``sparse``:
    most values are zero (a pruned weight), so a writer may store only the others.
    """

    bits: int
    codebook: bool = False
    sparse: bool = False


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    data: np.ndarray | None = None
    quant: QuantParams | None = None
    constant: bool = False
    stored_bytes: int | None = None  # bytes the model file stores it in, when not its dtype's (fp16, sparse)
    # A state tensor (TFLite's ``is_variable``: an LSTM's hidden and cell state, SVDF's memory): no values,
    # not a graph input, read before any node writes it. Each invocation starts it at its reset value
    # (zero, or the zero point of an int8 tensor), as TFLM's ResetVariableTensors leaves it.
    variable: bool = False
    encoding: Encoding | None = None  # a constant int8 stored compressed (the data stays the int8 values)

    def __post_init__(self):
        self.shape = tuple(int(d) for d in self.shape)
        if self.data is not None:
            self.constant = True

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        """Exact storage bytes: as the model file stores it (a float32 constant that the file holds as
        float16, or as a sparse tensor, counts those bytes), else at its dtype (int4 packs two per byte)."""
        if self.stored_bytes is not None:
            return self.stored_bytes
        width = DTYPE_BYTES[self.dtype]
        return int(np.ceil(self.size * width))


@dataclass
class Node:
    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict = field(default_factory=dict)


@dataclass
class Variable:
    """A state the model keeps from one invoke to the next (TFLite's resource variables: a streaming
    model's buffered frames). ``state`` is a variable tensor holding the value before the invoke; after
    it, the value of ``update`` becomes the state. ``init`` is the value before the first invoke."""

    name: str
    state: str
    update: str
    init: np.ndarray


class Graph:
    """Tensors by name, nodes in topological order, graph inputs and outputs.

    ``source`` is the file the graph came from, so later errors can name it. ``variables``: the states
    carried between invokes (each row of a batch is then one invoke after the previous row's).
    """

    def __init__(self, name: str = "model", source: str | None = None):
        self.name = name
        self.source = source
        self.tensors: dict[str, Tensor] = {}
        self.nodes: list[Node] = []
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self.variables: list[Variable] = []

    @property
    def state_bytes(self) -> int:
        """Bytes of the states kept between invokes (a deployed library holds them beside its arena)."""
        return sum(self.tensors[v.state].nbytes for v in self.variables)

    # -- building -------------------------------------------------------------------------------
    def add_tensor(self, tensor: Tensor) -> Tensor:
        if tensor.name in self.tensors:
            raise ModelFormatError(f"duplicate tensor name '{tensor.name}'", path=self.source,
                                   fix="give every tensor a unique name")
        self.tensors[tensor.name] = tensor
        return tensor

    def add_node(self, node: Node) -> Node:
        self.nodes.append(node)
        return node

    def unique_name(self, base: str) -> str:
        name, i = base, 1
        while name in self.tensors:
            name, i = f"{base}_{i}", i + 1
        return name

    # -- queries --------------------------------------------------------------------------------
    def tensor(self, name: str) -> Tensor:
        return self.tensors[name]

    def producers(self) -> dict[str, Node]:
        return {t: n for n in self.nodes for t in n.outputs}

    def consumers(self) -> dict[str, list[Node]]:
        out: dict[str, list[Node]] = {name: [] for name in self.tensors}
        for n in self.nodes:
            for t in n.inputs:
                if t:
                    out.setdefault(t, []).append(n)
        return out

    def constants(self) -> list[Tensor]:
        return [t for t in self.tensors.values() if t.constant]

    def activations(self) -> list[Tensor]:
        """Non-constant tensors: graph inputs and every node output."""
        return [t for t in self.tensors.values() if not t.constant]

    def node_inputs(self, node: Node) -> list[Tensor | None]:
        return [self.tensors[t] if t else None for t in node.inputs]

    def copy(self) -> Graph:
        return copy.deepcopy(self)

    # -- order and checks -----------------------------------------------------------------------
    def toposort(self) -> Graph:
        """Reorder nodes so every node comes after the producers of its inputs (stable, linear time)."""
        produced_by = {t: i for i, n in enumerate(self.nodes) for t in n.outputs}
        waits = [0] * len(self.nodes)
        users: dict[int, list[int]] = {}
        for i, n in enumerate(self.nodes):
            deps = {produced_by[t] for t in n.inputs if t and t in produced_by}
            waits[i] = len(deps)
            for d in deps:
                users.setdefault(d, []).append(i)
        import heapq

        ready = [i for i, w in enumerate(waits) if w == 0]
        heapq.heapify(ready)
        order: list[int] = []
        while ready:
            i = heapq.heappop(ready)
            order.append(i)
            for u in users.get(i, ()):
                waits[u] -= 1
                if waits[u] == 0:
                    heapq.heappush(ready, u)
        if len(order) != len(self.nodes):
            stuck = [f"{i} '{_short(self.nodes[i].name)}'" for i, w in enumerate(waits) if w > 0][:3]
            raise ModelFormatError(f"the graph has a cycle through node(s) {', '.join(stuck)}",
                                   path=self.source,
                                   fix="export the model again; a feed-forward network has no cycles")
        self.nodes = [self.nodes[i] for i in order]
        return self

    def _validate_node(self, loc: str, n: Node, available: set[str], seen_outputs: set[str]) -> None:
        """One node's operands exist, are produced before it and are written once (``available`` and
        ``seen_outputs`` grow with its outputs)."""
        where = self.source
        for t in [*n.inputs, *n.outputs]:
            if t and t not in self.tensors:
                raise ModelFormatError(f"refers to unknown tensor '{t}'", path=where, where=loc,
                                       fix="repair or re-export the model")
        if set(n.inputs) & set(n.outputs) - {""}:
            raise ModelFormatError("a tensor is both input and output of the node", path=where,
                                   where=loc, fix="repair or re-export the model")
        for t in n.inputs:
            if t and t not in available:
                raise ModelFormatError(f"input '{t}' is used before it is produced", path=where,
                                       where=loc, fix="the nodes are not in topological order; "
                                       "call Graph.toposort() or re-export the model")
        for t in n.outputs:
            if t in seen_outputs or t in self.inputs or self.tensors[t].constant or self.tensors[t].variable:
                raise ModelFormatError(f"tensor '{t}' is written more than once", path=where,
                                       where=loc, fix="repair or re-export the model")
            seen_outputs.add(t)
            available.add(t)

    def validate(self) -> Graph:
        """Structural checks with errors that name the node; raises ``ModelFormatError``."""
        where = self.source
        seen_outputs: set[str] = set()
        available = set(self.inputs) | {t.name for t in self.tensors.values() if t.constant or t.variable}
        if not self.inputs:
            raise ModelFormatError("the graph has no inputs", path=where, fix="declare the model input")
        if not self.outputs:
            raise ModelFormatError("the graph has no outputs", path=where, fix="declare the model output")
        for name in [*self.inputs, *self.outputs]:
            if name not in self.tensors:
                raise ModelFormatError(f"graph input/output '{name}' is not a tensor", path=where,
                                       fix="repair or re-export the model")
        for i, n in enumerate(self.nodes):
            self._validate_node(f"node {i} '{n.name}' ({n.op})", n, available, seen_outputs)
        for v in getattr(self, "variables", []):
            st, up = self.tensors.get(v.state), self.tensors.get(v.update)
            if st is None or up is None or not st.variable or (up.shape, up.dtype) != (st.shape, st.dtype) \
                    or np.size(v.init) != st.size:
                raise ModelFormatError(f"variable '{v.name}' is inconsistent: its state must be a variable "
                                       "tensor, its update a tensor of the same shape and dtype, its initial "
                                       "value of the same size", path=where,
                                       fix="repair or re-export the model")
        for tensor in self.tensors.values():
            if any(d <= 0 for d in tensor.shape):
                raise ModelFormatError(f"tensor '{tensor.name}' has a non-positive dimension "
                                       f"{list(tensor.shape)}", path=where,
                                       fix="give every dimension a positive size")
        return self

    def infer_shapes(self) -> Graph:
        """Recompute every node output's shape from its inputs (see ``shapes.py``)."""
        from tinyopt.graph.shapes import infer_node

        for i, n in enumerate(self.nodes):
            infer_node(self, n, index=i)
        return self

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, {len(self.nodes)} nodes, {len(self.tensors)} tensors)"

    def summary(self) -> str:
        lines = [repr(self)]
        for n in self.nodes:
            outs = ", ".join(f"{o}{list(self.tensors[o].shape)}" for o in n.outputs)
            lines.append(f"  {n.op:<20} {n.name:<28} -> {outs}")
        return "\n".join(lines)


def param_tensor_names(graph: Graph) -> set[str]:
    """Names of every trainable parameter tensor of the graph (shape operands excluded)."""
    return {t.name for n in graph.nodes for t in iter_param_tensors(graph, n)}


def iter_param_tensors(graph: Graph, node: Node) -> Iterable[Tensor]:
    """The trainable parameter tensors of a node (weights, biases, BN scale/offset).

    Shape operands (RESHAPE's new shape, PAD's paddings, MEAN's axes) are constants but not parameters.
    """
    from tinyopt import ops

    rec = ops.find(node.op)
    for idx in rec.param_inputs if rec else ():
        if idx < len(node.inputs) and node.inputs[idx]:
            yield graph.tensors[node.inputs[idx]]
