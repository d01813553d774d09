"""PyTorch door: ``from_torch(module, input_shape)`` traces with torch.fx and builds an NHWC Graph.

The NCHW → NHWC change happens here, at the door, so the rest of the project sees one layout. The
``NchwBuilder`` below is torch-free and shared with the ONNX importer: both frameworks speak NCHW.

Layout bookkeeping: every value remembers how its framework shape maps onto its graph tensor.
- ``nchw``: framework (N, C, H, W) ↔ graph (1, H, W, C);
- ``ncl``: framework (N, C, L) ↔ graph (1, 1, L, C) (1-D convs run as 2-D convs with H = 1);
- ``plain``: the same order, optionally with ``perm``: after flattening a channels-first tensor the graph
  holds its elements in (h, w, c) order, ``graph[i] = framework[perm[i]]``. The next dense layer absorbs
  the permutation into its weight columns, which is what TFLite converters do, so the NHWC graph
  computes exactly what the framework computes.
- ``grouped``: framework (N, g1, ..., gk, H, W) ↔ graph (1, H, W, g1 * ... * gk): the channels viewed as
  groups (``x.view(b, g, c // g, h, w)``), with ``perm`` the channel order a transpose of the groups left
  (graph channel j holds framework channel perm[j]); reshaping back to (N, C, H, W) gathers the channels
  into that order (a channel shuffle). Only reshapes and transposes of the groups apply to it.
- framework order, batch elsewhere (``batch@k``, ``unbatched``): a value whose leading axis is not a batch
  of one (a recurrent state [2, batch, 128], attention's stacked q/k/v [3, batch, heads, T, d], a time-major
  sequence). Every activation keeps graph axis 0 as its batch of one, as the runtime, the C library and
  their row-by-row comparisons with TFLM assume, so the graph holds such a value in the framework's byte
  order with a unit axis in front: ``batch@k`` moves the framework's axis k (of size 1) there, graph
  (1, S[:k], S[k+1:]); ``unbatched`` adds one, graph (1, *S), when S has no unit axis. ``plain`` is
  ``batch@0``. A model run on N rows is N independent framework calls at batch one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

import numpy as np

from tinyopt import ops
from tinyopt.errors import ModelFormatError, UnsupportedOpError
from tinyopt.graph.ir import Graph, Node, Tensor
from tinyopt.graph.shapes import infer_node


def supported(door: str) -> tuple[str, ...]:
    """What a framework door converts, for error messages: its records' names plus pass-through calls."""
    d = ops.doors()
    if door == "onnx":
        return tuple(sorted([*d.onnx, *ONNX_PASS_THROUGH]))
    return tuple(sorted([*d.torch_modules, *PASS_THROUGH_MODULES])) + tuple(
        sorted([*d.torch_functions, *PASS_THROUGH_FUNCTIONS]))


ONNX_PASS_THROUGH = ("Identity", "Dropout")


@dataclass
class Val:
    """A framework value: its graph tensor, the layout mapping and the framework shape."""

    name: str
    layout: str  # "nchw" | "ncl" | "plain" | "grouped" | "batch@k" | "unbatched"
    shape: tuple[int, ...]  # framework (channels-first) shape, batch 1
    perm: np.ndarray | None = None

    @property
    def permuted(self) -> bool:
        return self.perm is not None


def to_graph_shape(shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
    if layout == "nchw":
        n, c, h, w = shape
        return (n, h, w, c)
    if layout == "ncl":
        n, c, length = shape
        return (n, 1, length, c)
    if layout == "unbatched":
        return (1, *shape)
    k = batch_at(layout)
    if k:
        return (shape[k], *shape[:k], *shape[k + 1:])
    return tuple(shape)


def from_graph_shape(shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
    if layout == "nchw":
        n, h, w, c = shape
        return (n, c, h, w)
    if layout == "ncl":
        n, _, length, c = shape
        return (n, c, length)
    if layout == "unbatched":
        return tuple(shape[1:])
    k = batch_at(layout)
    if k:
        return (*shape[1:k + 1], shape[0], *shape[k + 1:])
    return tuple(shape)


def batch_at(layout: str) -> int | None:
    """k of a ``batch@k`` layout (0 for plain), else None."""
    if layout == "plain":
        return 0
    return int(layout[6:]) if layout.startswith("batch@") else None


def ordered(layout: str) -> bool:
    """Whether the graph holds the value's elements in the framework's own order (plain, batch@k,
    unbatched): reshapes and transposes of it are plain index arithmetic."""
    return layout == "unbatched" or batch_at(layout) is not None


def to_graph_array(a: np.ndarray, layout: str) -> np.ndarray:
    """A framework-ordered array of a value's rank (a constant operand) in the value's graph layout."""
    if layout == "nchw":
        return np.ascontiguousarray(a.transpose(0, 2, 3, 1))
    if layout == "ncl":
        return np.ascontiguousarray(a.transpose(0, 2, 1)[:, None])
    if layout == "unbatched":
        return a[None]
    k = batch_at(layout)
    return np.ascontiguousarray(np.moveaxis(a, k, 0)) if k else a


def graph_axis(axis: int, layout: str, rank: int) -> int:
    """Framework axis → graph axis."""
    axis %= rank
    if layout == "nchw":
        return {0: 0, 1: 3, 2: 1, 3: 2}[axis]
    if layout == "ncl":
        return {0: 0, 1: 3, 2: 2}[axis]
    if layout == "unbatched":
        return axis + 1
    k = batch_at(layout)
    if k:
        return 0 if axis == k else axis + 1 if axis < k else axis
    return axis


def batched(shape: tuple[int, ...]) -> str:
    """The layout that holds a framework value in its own order: its first unit axis as the graph's batch
    (``plain`` when that is axis 0), else ``unbatched``.

    >>> batched((1, 4)), batched((3, 1, 2, 5)), batched((2, 3))
    ('plain', 'batch@1', 'unbatched')
    """
    k = next((i for i, d in enumerate(shape) if d == 1), None)
    return "unbatched" if k is None else "plain" if k == 0 else f"batch@{k}"


def layout_view(x: Val, perm: list[int]) -> Val | None:
    """A framework transpose that only converts between NHWC and NCHW views of the same graph tensor
    (exporters wrap NHWC models in such transposes): the new view, else None."""
    if x.layout == "plain" and len(x.shape) == 4 and list(perm) == [0, 3, 1, 2] and not x.permuted:
        n_, h, w_, c = x.shape  # NHWC data viewed as NCHW
        return Val(x.name, "nchw", (n_, c, h, w_))
    if x.layout == "nchw" and list(perm) == [0, 2, 3, 1]:  # back to NHWC: the graph tensor as it is
        n_, c, h, w_ = x.shape
        return Val(x.name, "plain", (n_, h, w_, c))
    return None


class NchwBuilder:
    """Builds an NHWC Graph from channels-first framework operations (shared by torch and ONNX)."""

    def __init__(self, name: str, source: str | None, door: str):
        self.g = Graph(name, source=source)
        self.door = door
        self.where = ""  # the framework node being converted, for error messages
        self._node_names: set[str] = set()

    # -- errors and tensors -----------------------------------------------------------------------
    def unsupported(self, what: str, fix: str | None = None) -> NoReturn:
        raise UnsupportedOpError(what, path=self.g.source, where=self.where,
                                 fix=fix or f"use supported operations: {', '.join(supported(self.door))}")

    def const(self, base: str, data: np.ndarray, dtype: str = "float32") -> str:
        arr = np.ascontiguousarray(np.asarray(data, dtype=np.dtype(dtype)))
        return self.g.add_tensor(Tensor(self.g.unique_name(base), arr.shape, dtype, data=arr)).name

    def emit(self, name: str, op: str, inputs: list[str], attrs: dict, layout: str,
             perm: np.ndarray | None = None, outputs: int = 1) -> Val | list[Val]:
        """Add node ``op`` and its output (shape inferred); the output keeps ``layout`` (and ``perm``).
        ``outputs`` > 1 (SPLIT, UNPACK): that many outputs, returned as a list."""
        if layout == "grouped":
            self.unsupported(f"{op} on channels viewed as groups", "reshape them back to (N, C, H, W) first")
        outs = [self.g.add_tensor(Tensor(self.g.unique_name(name if outputs == 1 else f"{name}_{k}"),
                                         (1,))).name
                for k in range(outputs)]
        node_name, i = name, 1
        while node_name in self._node_names:
            node_name, i = f"{name}_{i}", i + 1
        self._node_names.add(node_name)
        node = self.g.add_node(Node(node_name, op, inputs, outs, attrs))
        infer_node(self.g, node, index=len(self.g.nodes) - 1)
        vals = [Val(o, layout, from_graph_shape(self.g.tensors[o].shape, layout), perm) for o in outs]
        return vals[0] if outputs == 1 else vals

    def settle(self, v):
        """A framework operation's result in the layout the next one expects: a value in framework order whose
        layout no longer is the one ``batched`` gives its shape (attention's q sliced out of its (3, N, ...)
        stack has a leading 1 again: plain) is reshaped into it (the same bytes; the RESHAPE aliases in the C
        library)."""
        if isinstance(v, (list, tuple)):
            return type(v)(self.settle(e) for e in v)
        if isinstance(v, Val) and ordered(v.layout) and v.layout != batched(v.shape) and not v.permuted:
            from tinyopt.ops.reshape import Reshape

            layout = batched(v.shape)
            node = next((n for n in self.g.nodes if v.name in n.outputs), None)
            base = node.name if node is not None else v.name
            return self.emit(f"{base}/batch", Reshape.name, [v.name],
                             {"new_shape": to_graph_shape(v.shape, layout)}, layout)
        return v

    def input(self, name: str, shape: tuple[int, ...], layout: str | None = None) -> Val:
        """A graph input; ``layout="plain"`` keeps a 4-D input as given (an NHWC framework input),
        ``"ordered"`` takes the shape whole in framework order (its leading axis is not a batch: a recurrent
        state [2, batch, 128]; see ``batched``)."""
        if layout == "ordered":
            layout = batched(tuple(shape))
            if len(shape) > 5:
                self.unsupported(f"an input of shape {list(shape)} (rank {len(shape)})",
                                 "give inputs of rank 5 or less")
            t = self.g.add_tensor(Tensor(self.g.unique_name(name), to_graph_shape(tuple(shape), layout)))
            self.g.inputs.append(t.name)
            return Val(t.name, layout, tuple(shape))
        shape = (1, *shape[1:])
        layout = layout or {4: "nchw", 3: "ncl"}.get(len(shape), "plain")
        if len(shape) > 4 or len(shape) < 2:
            self.unsupported(f"an input of shape {list(shape)} (rank {len(shape)})",
                             "give (C, H, W), (C, L) or (N,) without the batch dimension")
        t = self.g.add_tensor(Tensor(self.g.unique_name(name), to_graph_shape(shape, layout)))
        self.g.inputs.append(t.name)
        return Val(t.name, layout, shape)

    def opaque(self, name: str, op: str, inputs: list[str], shapes: list[tuple], layout: str) -> list[Val]:
        """A node of an operator tinyopt does not know, with framework output ``shapes`` (each value takes
        ``layout`` when its rank fits it, else plain)."""
        from tinyopt import ops

        ops.opaque(op)
        outs, vals = [], []
        for k, shape in enumerate(shapes):
            lay = layout if len(shape) == {"nchw": 4, "ncl": 3}.get(layout, len(shape)) else "plain"
            t = self.g.add_tensor(Tensor(self.g.unique_name(f"{name}_{k}" if len(shapes) > 1 else name),
                                         to_graph_shape(tuple(shape), lay)))
            outs.append(t.name)
            vals.append(Val(t.name, lay, tuple(shape)))
        self.g.add_node(Node(name, op, inputs, outs, {}))
        return vals

    def finish(self, outputs: list[Val]) -> Graph:
        from tinyopt.ops.gather import unpermute

        for v in outputs:
            if v.permuted:  # a flattened channels-first output: gathered into the framework's order
                v = unpermute(self, f"{v.name}_order", v)
            self.g.outputs.append(v.name)
        from tinyopt.graph.passes import fold_pad_into_conv

        return fold_pad_into_conv(self.g.validate())


# -- torch.fx front end ---------------------------------------------------------------------------

def tup(v, n: int) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


def torch_pads(padding, kernel, dilation, n: int) -> tuple[int, int, int, int]:
    """PyTorch conv/pool padding (int, tuple, 'same', 'valid') → (top, bottom, left, right)."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":  # PyTorch puts the odd pixel after, as TFLite does
        per = []
        for k, d in zip(tup(kernel, n), tup(dilation, n)):
            total = d * (k - 1)
            per += [total // 2, total - total // 2]
        return (0, 0, *per) if n == 1 else tuple(per)
    p = tup(padding, n)
    return (0, 0, p[0], p[0]) if n == 1 else (p[0], p[0], p[1], p[1])


def _input_shapes(input_shape, label: str) -> list[tuple[int, ...]]:
    """One shape, or a list of shapes (a model with several inputs), each 1 to 3 positive ints."""
    shapes = list(input_shape) if isinstance(input_shape, (tuple, list)) and input_shape and all(
        isinstance(s, (tuple, list)) for s in input_shape) else [input_shape]
    for shape in shapes:
        shape = tuple(shape) if isinstance(shape, (tuple, list)) else ()
        if not shape or len(shape) > 3 or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                                                  for d in shape):
            raise ModelFormatError("input_shape must be 1 to 3 positive integers without the "
                                   f"batch, got {input_shape!r}", where=label,
                                   fix="give e.g. (1, 28, 28), (3, 128) or (784,); a list of "
                                       "such for several inputs")
    return [tuple(s) for s in shapes]


def from_torch(module, input_shape, name: str | None = None, fold_bn: bool = True) -> Graph:
    """Trace ``module`` with torch.fx and convert it to a float Graph, batch norm folded into the layer
    before it (as an ONNX export in eval mode folds it), so both doors count the same network alike.

    ``input_shape`` excludes the batch and is in PyTorch order: (C, H, W), (C, L) or (N,); a list of such
    shapes for a model with several inputs. 4-D outputs come out NHWC. The module's train/eval state is
    left as it was. ``fold_bn=False`` keeps BATCH_NORM nodes (what training-time analyses see).
    """
    import torch
    import torch.fx

    label = name or type(module).__name__
    if isinstance(module, torch.jit.ScriptModule):
        raise UnsupportedOpError("a TorchScript module cannot be traced into its layers", where=label,
                                 fix="load the model's Python definition through the file.py:factory door "
                                     "(with --checkpoint for its weights), or export it "
                                     "to ONNX and load that")
    if not isinstance(module, torch.nn.Module):
        raise ModelFormatError(f"expected a torch.nn.Module, got {type(module).__name__}", where=label,
                               fix="pass the model object")
    shapes = _input_shapes(input_shape, label)
    if type(module).__module__.startswith("torch.nn.modules") and not isinstance(
            module, (torch.nn.Sequential, torch.nn.ModuleList, torch.nn.ModuleDict)):
        module = torch.nn.Sequential(module)  # fx traces into the root: keep a lone layer a leaf
    modes = {m: m.training for m in module.modules()}
    try:
        try:
            gm = torch.fx.symbolic_trace(module)
        except Exception as e:  # fx raises many types for untraceable Python
            raise UnsupportedOpError("torch.fx cannot trace the model: "
                                     f"{str(e).splitlines()[0] if str(e) else e!r}",
                                     where=label, fix="remove data-dependent control flow from forward(), "
                                     "or export the model to ONNX and load that") from None
        gm.eval()
        examples = [torch.zeros(1, *s) for s in shapes]
        try:
            with torch.no_grad():
                module(*examples)  # fails fast and plainly (fx's error path is slow)
                _ShapeRecorder(gm).run(*examples)
        except Exception as e:
            given = [[1, *s] for s in shapes]
            what = f"an input of shape {given[0]}" if len(given) == 1 else f"inputs of shapes {given}"
            raise ModelFormatError(f"the model does not run on {what}: "
                                   f"{str(e).splitlines()[0] if str(e) else e!r}", where=label,
                                   fix="check input_shape (PyTorch order, no batch)") from None
    finally:
        for m, mode in modes.items():
            m.train(mode)
    graph = _FxConverter(gm, label).run(shapes)
    if not fold_bn:
        return graph
    from tinyopt.graph.passes import fold_batchnorm

    return fold_batchnorm(graph)


def _shape_recorder_class():
    import torch
    import torch.fx

    class ShapeRecorder(torch.fx.Interpreter):
        """Runs the traced graph once and stores each tensor result's shape in ``node.meta``.

        (torch.fx's ShapeProp does the same but spends seconds setting up fake-tensor machinery.)
        """

        def run_node(self, n):
            out = super().run_node(n)
            if isinstance(out, torch.Tensor):
                n.meta["tinyopt_shape"] = tuple(int(d) for d in out.shape)
            elif isinstance(out, (tuple, list)) and out and all(isinstance(t, torch.Tensor) for t in out):
                n.meta["tinyopt_shapes"] = [tuple(int(d) for d in t.shape) for t in out]
            elif isinstance(out, (tuple, list)) and out and _tensor_tree(out, torch.Tensor):
                n.meta["tinyopt_shapes"] = _shape_tree(out)  # nested, as nn.LSTM's (y, (h, c))
            elif isinstance(out, int) or (isinstance(out, (tuple, list))
                                          and all(isinstance(d, int) for d in out)):
                n.meta["tinyopt_value"] = out  # shape arithmetic (x.size(2) // 2): known once traced
            return out

    return ShapeRecorder


def _tensor_tree(out, leaf) -> bool:
    """A (nested) tuple or list whose leaves are ``leaf`` (or None: a part the door did not build)."""
    return all(_tensor_tree(e, leaf) if isinstance(e, (tuple, list)) else (e is None or isinstance(e, leaf))
               for e in out)


def _shape_tree(out) -> list:
    return [_shape_tree(e) if isinstance(e, (tuple, list)) else tuple(int(d) for d in e.shape) for e in out]


def _ShapeRecorder(gm):  # a class made on first use, so importing this module needs no torch
    return _shape_recorder_class()(gm)


class _FxConverter:
    def __init__(self, gm, label: str):
        self.gm = gm
        self.mods = dict(gm.named_modules())
        self.b = NchwBuilder(label, None, "torch")
        self.env: dict = {}

    def run(self, shapes: list[tuple[int, ...]]) -> Graph:
        b = self.b
        for n in self.gm.graph.nodes:
            b.where = f"node '{n.name}' ({self._describe(n)})"
            if n.op == "placeholder":
                k = len(b.g.inputs)
                if k >= len(shapes):
                    b.unsupported(f"model input {k + 1} without a shape",
                                  f"give one input shape per forward() argument ({k + 1} or more)")
                self.env[n] = b.input(n.name, (1, *shapes[k]))
            elif n.op == "output":
                outs = n.args[0] if isinstance(n.args[0], (tuple, list)) else [n.args[0]]
                vals = [v for v in (self.env.get(o) for o in outs) if isinstance(v, Val)]
                if len(vals) != len(outs):
                    b.unsupported("a model output that is not a tensor computed from the input")
                return b.finish(vals)
            elif "tinyopt_shape" in n.meta or "tinyopt_shapes" in n.meta:
                if n.op == "get_attr":
                    b.unsupported("a tensor attribute used directly in forward()",
                                  "wrap parameters in supported layers (nn.Linear, nn.Conv2d, ...)")
                # a tuple of tensors (chunk, split, unbind): a list of shapes in, a list of values out
                self.env[n] = b.settle(self.convert(n, n.meta.get("tinyopt_shape",
                                                                  n.meta.get("tinyopt_shapes"))))
            # anything else computes shapes (x.size(0)); reshapes take their target from the traced shape
        raise AssertionError("fx graph without an output node")

    def _describe(self, n) -> str:
        if n.op == "call_module":
            return type(self.mods[n.target]).__name__
        if n.op == "call_method":
            return f"Tensor.{n.target}"
        return getattr(n.target, "__name__", str(n.target))

    # -- what records' ``from_torch_*`` use
    def val(self, a, many: bool = False):
        """A framework value for an fx argument (constants pass through); ``many``: the list of values of
        a call that returns several tensors is accepted too (``getitem`` picks one)."""
        import torch.fx

        if isinstance(a, torch.fx.Node):
            v = self.env.get(a)
            if many and isinstance(v, list) and _tensor_tree(v, Val):
                return v
            if not isinstance(v, Val):
                self.b.unsupported(f"an operand '{a.name}' that is not a tensor computed from the input"
                                   + (" (a tuple of tensors: index it first)" if isinstance(v, list) else ""))
            return v
        return a

    @staticmethod
    def value(a):
        """A number (or tuple) the model computed from shapes (``x.shape[2]``), as traced; else ``a``."""
        import torch.fx

        if isinstance(a, torch.fx.Node) and "tinyopt_value" in a.meta:
            return a.meta["tinyopt_value"]
        return a

    @staticmethod
    def np(t) -> np.ndarray | None:
        """A parameter tensor as float32 numpy (None stays None)."""
        return None if t is None else t.detach().cpu().numpy().astype(np.float32)

    @staticmethod
    def arg(n):
        """``arg(i, keyword, default)``: positional argument i of call ``n``, else its keyword."""
        def get(i, key, default=None):
            return n.args[i] if len(n.args) > i else n.kwargs.get(key, default)
        return get

    def convert(self, n, out_shape) -> Val:
        if n.op == "call_module":
            return self._module(n, self.mods[n.target], out_shape)
        return self._function(n, out_shape)

    def _module(self, n, m, out_shape) -> Val:
        if any(c.__name__ in PASS_THROUGH_MODULES
               and c.__module__.startswith("torch.nn") for c in type(m).__mro__):
            return self.val(n.args[0])
        table = ops.doors().torch_modules
        rec = next((table[c.__name__] for c in type(m).__mro__
                    if c.__name__ in table and c.__module__.startswith("torch.nn")), None)
        if rec is None:
            return self.b.unsupported(f"module {type(m).__name__} is not supported")
        return rec.from_torch_module(self, n, m, n.name, out_shape)

    def _function(self, n, out_shape) -> Val:
        if n.op == "call_method":
            key = n.target
        else:
            key = _function_keys().get(n.target) or _library_key(n.target)
            if key is None:
                return self.b.unsupported("function "
                                          f"{getattr(n.target, '__name__', n.target)} is not supported")
        key = key[:-1] if key.endswith("_") and not key.startswith("_") else key  # in-place variants
        if key in PASS_THROUGH_FUNCTIONS:
            return self.val(n.args[0])
        rec = ops.doors().torch_functions.get(key)
        if rec is None:
            return self.b.unsupported(f"Tensor.{key} is not supported" if n.op == "call_method"
                                      else f"function {key} is not supported")
        return rec.from_torch_function(self, n, key, n.name, out_shape)


# Calls that compute their input unchanged at inference (no operator).
PASS_THROUGH_MODULES = ("Dropout", "Dropout1d", "Dropout2d", "AlphaDropout", "Identity")
# A dotted name is a library's function (see ``_library_key``): torchvision's stochastic depth is the
# identity at inference, like dropout.
PASS_THROUGH_FUNCTIONS = ("dropout", "contiguous", "clone", "detach", "torchvision.ops.stochastic_depth")


def _function_keys() -> dict:
    """torch / torch.nn.functional / operator callables → the name records register them under."""
    global _KEYS
    if _KEYS is None:
        import operator

        import torch
        import torch.nn.functional as F

        _KEYS = {}
        for key in (*ops.doors().torch_functions, *PASS_THROUGH_FUNCTIONS):
            for mod in (F, torch, operator):
                f = getattr(mod, key, None)
                if callable(f) and f not in _KEYS:
                    _KEYS[f] = key
    return _KEYS


_KEYS: dict | None = None


def _library_key(target) -> str | None:
    """The dotted name (``package.module.function``) under which a record or the pass-through list names
    ``target``, looked up in modules the model has already imported (nothing is imported here)."""
    import sys

    for key in (*ops.doors().torch_functions, *PASS_THROUGH_FUNCTIONS):
        module, _, attr = key.rpartition(".")
        if module and getattr(sys.modules.get(module), attr, None) is target:
            return key
    return None
