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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.errors import ModelFormatError, UnsupportedOpError
from tinyopt.graph.ir import Graph, Node, Tensor
from tinyopt.graph.shapes import infer_node, same_padding

TORCH_SUPPORTED = (
    "Conv1d", "Conv2d", "Linear", "BatchNorm1d", "BatchNorm2d", "ReLU", "ReLU6", "Hardtanh(0, 6)", "Sigmoid",
    "Tanh", "Softmax", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d(1)",
    "AdaptiveAvgPool2d(1)", "Flatten", "ZeroPad1d", "ZeroPad2d", "ConstantPad2d(value=0)", "Dropout",
    "Identity", "view/reshape/flatten/squeeze/unsqueeze", "add/sub/mul (+ - *)", "cat", "mean",
    "relu/relu6/hardtanh/sigmoid/tanh/softmax/max_pool2d/avg_pool2d/adaptive_avg_pool2d/dropout/pad",
    "contiguous",
)


@dataclass
class Val:
    """A framework value: its graph tensor, the layout mapping and the framework shape."""

    name: str
    layout: str  # "nchw" | "ncl" | "plain"
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
    return tuple(shape)


def from_graph_shape(shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
    if layout == "nchw":
        n, h, w, c = shape
        return (n, c, h, w)
    if layout == "ncl":
        n, _, length, c = shape
        return (n, c, length)
    return tuple(shape)


def graph_axis(axis: int, layout: str, rank: int) -> int:
    """Framework axis → graph axis."""
    axis %= rank
    if layout == "nchw":
        return {0: 0, 1: 3, 2: 1, 3: 2}[axis]
    if layout == "ncl":
        return {0: 0, 1: 3, 2: 2}[axis]
    return axis


class NchwBuilder:
    """Builds an NHWC Graph from channels-first framework operations (shared by torch and ONNX)."""

    def __init__(self, name: str, source: str | None, supported: tuple[str, ...]):
        self.g = Graph(name, source=source)
        self.supported = supported
        self.where = ""  # the framework node being converted, for error messages
        self._node_names: set[str] = set()

    # -- errors and tensors -----------------------------------------------------------------------
    def unsupported(self, what: str, fix: str | None = None):
        raise UnsupportedOpError(what, path=self.g.source, where=self.where,
                                 fix=fix or f"use supported operations: {', '.join(self.supported)}")

    def const(self, base: str, data: np.ndarray, dtype: str = "float32") -> str:
        arr = np.ascontiguousarray(np.asarray(data, dtype=np.dtype(dtype)))
        return self.g.add_tensor(Tensor(self.g.unique_name(base), arr.shape, dtype, data=arr)).name

    def _emit(self, name: str, op: str, inputs: list[str], attrs: dict, layout: str,
              perm: np.ndarray | None = None) -> Val:
        out = self.g.add_tensor(Tensor(self.g.unique_name(name), (1,))).name
        node_name, i = name, 1
        while node_name in self._node_names:
            node_name, i = f"{name}_{i}", i + 1
        self._node_names.add(node_name)
        node = self.g.add_node(Node(node_name, op, inputs, [out], attrs))
        infer_node(self.g, node, index=len(self.g.nodes) - 1)
        shape = from_graph_shape(self.g.tensors[out].shape, layout)
        return Val(out, layout, shape, perm)

    def input(self, name: str, shape: tuple[int, ...], layout: str | None = None) -> Val:
        """A graph input; ``layout="plain"`` keeps a 4-D input as given (an NHWC framework input)."""
        shape = (1, *shape[1:])
        layout = layout or {4: "nchw", 3: "ncl"}.get(len(shape), "plain")
        if len(shape) > 4 or len(shape) < 2:
            self.unsupported(f"an input of shape {list(shape)} (rank {len(shape)})",
                             "give (C, H, W), (C, L) or (N,) without the batch dimension")
        t = self.g.add_tensor(Tensor(self.g.unique_name(name), to_graph_shape(shape, layout)))
        self.g.inputs.append(t.name)
        return Val(t.name, layout, shape)

    # -- layers -----------------------------------------------------------------------------------
    def conv(self, name: str, x: Val, weight: np.ndarray, bias: np.ndarray | None, stride, pads, dilation,
             groups: int) -> Val:
        """Conv with framework weight [O, I/g, KH, KW] (or [O, I/g, K] for 1-D) and pads (t, b, l, r)."""
        weight = np.asarray(weight, dtype=np.float32)
        if weight.ndim == 3:  # 1-D conv as a 2-D conv over (1, L)
            if x.layout != "ncl":
                self.unsupported(f"a 1-D convolution on a {len(x.shape)}-D input {list(x.shape)}",
                                 "feed Conv1d a (N, C, L) tensor")
            weight = weight[:, :, None, :]
            stride, dilation, pads = (1, stride[-1]), (1, dilation[-1]), (0, 0, pads[-2], pads[-1])
        elif x.layout != "nchw":
            self.unsupported(f"a 2-D convolution on a {len(x.shape)}-D input {list(x.shape)}",
                             "feed Conv2d an (N, C, H, W) tensor")
        o, ipg, kh, kw = weight.shape
        cin = x.shape[1]
        if ipg * groups != cin:
            raise ModelFormatError(f"weight expects {ipg * groups} input channels, input has {cin}",
                                   path=self.g.source, where=self.where, fix="re-export the model")
        if groups == 1:
            op, w, attrs = "CONV_2D", weight.transpose(0, 2, 3, 1), {}
        elif groups == cin and o % cin == 0:
            op, w, attrs = "DEPTHWISE_CONV_2D", weight.transpose(1, 2, 3, 0), {"depth_multiplier": o // cin}
        else:
            return self.unsupported(f"a grouped convolution with groups={groups} (neither 1 nor depthwise)",
                                    "use groups=1 or groups=in_channels")
        x, padding = self._resolve_padding(name, x, (kh, kw), stride, dilation, pads, allow_pad=True)
        attrs.update(stride=tuple(stride), dilation=tuple(dilation), padding=padding, activation="NONE")
        ins = [x.name, self.const(f"{name}/weight", w), self.const(f"{name}/bias", bias) if bias is not None else ""]
        return self._emit(name, op, ins, attrs, x.layout)

    def _resolve_padding(self, name, x: Val, kernel, stride, dilation, pads, allow_pad: bool,
                         ceil_mode: bool = False, same_ok: bool = True):
        """Map explicit pads (t, b, l, r) to VALID, SAME (when identical to TFLite's) or PAD + VALID."""
        h, w = to_graph_shape(x.shape, x.layout)[1:3]
        t, b, left, r = (int(p) for p in pads)
        want = []
        for size, k, s, d, lo, hi in ((h, kernel[0], stride[0], dilation[0], t, b),
                                      (w, kernel[1], stride[1], dilation[1], left, r)):
            eff = (k - 1) * d + 1
            span = size + lo + hi - eff
            out = (-(-span // s) if ceil_mode else span // s) + 1
            if ceil_mode and (out - 1) * s >= size + lo:  # the last window must start inside
                out -= 1
            want.append(out)
        same_out = [-(-h // stride[0]), -(-w // stride[1])]
        same = (same_padding(h, kernel[0], stride[0], dilation[0], same_out[0])
                + same_padding(w, kernel[1], stride[1], dilation[1], same_out[1]))
        if not any((t, b, left, r)) and not ceil_mode:
            return x, "VALID"
        if same_ok and want == same_out and ((t, b, left, r) == same or (ceil_mode and t == left == 0
                                                                          and same[0] == same[2] == 0)):
            return x, "SAME"
        if allow_pad and not ceil_mode:
            return self.pad(f"{name}/pad", x, (t, b, left, r)), "VALID"
        return self.unsupported(f"padding {[t, b, left, r]} (ceil_mode={ceil_mode}) that is not TFLite's SAME "
                                f"{list(same)} for this size and stride",
                                "use padding 0, or the symmetric padding that equals SAME")

    def pad(self, name: str, x: Val, pads) -> Val:
        """Zero padding of the spatial axes, pads (top, bottom, left, right)."""
        t, b, left, r = pads
        if x.layout not in ("nchw", "ncl") or (x.layout == "ncl" and (t or b)):
            self.unsupported(f"spatial padding of a {len(x.shape)}-D tensor", "pad only (N, C, H, W) or (N, C, L)")
        p = np.array([[0, 0], [t, b], [left, r], [0, 0]], dtype=np.int32)
        return self._emit(name, "PAD", [x.name, self.const(f"{name}/paddings", p, "int32")], {}, x.layout)

    def linear(self, name: str, x: Val, weight: np.ndarray, bias: np.ndarray | None) -> Val:
        weight = np.asarray(weight, dtype=np.float32)
        if x.layout != "plain" or len(x.shape) != 2:
            self.unsupported(f"a dense layer on a {len(x.shape)}-D input {list(x.shape)}",
                             "flatten the input to (N, features) before the dense layer")
        if x.shape[1] != weight.shape[1]:
            raise ModelFormatError(f"weight expects {weight.shape[1]} inputs, input has {x.shape[1]}",
                                   path=self.g.source, where=self.where, fix="re-export the model")
        if x.permuted:
            weight = weight[:, x.perm]  # graph column i holds framework element perm[i]
        ins = [x.name, self.const(f"{name}/weight", weight), self.const(f"{name}/bias", bias) if bias is not None else ""]
        return self._emit(name, "FULLY_CONNECTED", ins, {"activation": "NONE", "keep_num_dims": False}, "plain")

    def batchnorm(self, name: str, x: Val, gamma, beta, mean, var, eps: float) -> Val:
        arrays = [np.asarray(a, dtype=np.float32) for a in (gamma, beta, mean, var)]
        if x.layout == "plain" and len(x.shape) != 2:
            self.unsupported(f"batch norm over axis 1 of a plain {len(x.shape)}-D tensor")
        if x.permuted:
            arrays = [a[x.perm] for a in arrays]
        ins = [x.name] + [self.const(f"{name}/{k}", a) for k, a in zip(("gamma", "beta", "mean", "var"), arrays)]
        return self._emit(name, "BATCH_NORM", ins, {"epsilon": float(eps)}, x.layout, x.perm)

    def unary(self, name: str, x: Val, op: str) -> Val:
        return self._emit(name, op, [x.name], {}, x.layout, x.perm)

    def softmax(self, name: str, x: Val, axis: int) -> Val:
        if graph_axis(axis, x.layout, len(x.shape)) != len(to_graph_shape(x.shape, x.layout)) - 1 or x.permuted:
            self.unsupported(f"softmax over axis {axis} of {list(x.shape)} (the graph's softmax runs over the "
                             "last NHWC axis)", "apply softmax over the channel/feature axis")
        return self._emit(name, "SOFTMAX", [x.name], {"beta": 1.0}, x.layout)

    def pool(self, name: str, x: Val, kind: str, kernel, stride, pads, ceil_mode=False,
             count_include_pad=True) -> Val:
        if len(kernel) == 1:
            if x.layout != "ncl":
                self.unsupported(f"a 1-D pooling on a {len(x.shape)}-D input")
            kernel, stride, pads = (1, kernel[0]), (1, stride[0]), (0, 0, *pads[-2:])
        elif x.layout != "nchw":
            self.unsupported(f"a 2-D pooling on a {len(x.shape)}-D input")
        any_pad = any(pads)
        if kind == "MAX":
            x, padding = self._resolve_padding(name, x, kernel, stride, (1, 1), pads, False, ceil_mode)
        elif any_pad and count_include_pad:  # zeros count: explicit PAD then VALID
            if ceil_mode:
                self.unsupported("average pooling with ceil_mode and padding")
            x, padding = self.pad(f"{name}/pad", x, pads), "VALID"
        else:  # TFLite's SAME average pool divides by the in-bounds count, like count_include_pad=False
            x, padding = self._resolve_padding(name, x, kernel, stride, (1, 1), pads, False, ceil_mode)
        op = "MAX_POOL_2D" if kind == "MAX" else "AVERAGE_POOL_2D"
        attrs = {"filter": tuple(kernel), "stride": tuple(stride), "padding": padding, "activation": "NONE"}
        return self._emit(name, op, [x.name], attrs, x.layout)

    def mean(self, name: str, x: Val, axes, keepdim: bool) -> Val:
        """Mean over spatial axes (global average pooling)."""
        rank = len(x.shape)
        axes = sorted({a % rank for a in axes})
        spatial = {"nchw": [2, 3], "ncl": [2]}.get(x.layout)
        if spatial is None or axes != spatial:
            self.unsupported(f"a mean over axes {axes} of {list(x.shape)}",
                             "average over the spatial axes only (global average pooling)")
        out = self._emit(name, "MEAN", [x.name], {"axes": (1, 2), "keep_dims": bool(keepdim)},
                         x.layout if keepdim else "plain")
        return out

    def reshape(self, name: str, x: Val, new_shape: tuple[int, ...]) -> Val:
        """Reshape to a framework shape: a flatten of channels-first data, or a plain reshape."""
        new_shape = tuple(int(d) for d in new_shape)
        if not new_shape or new_shape[0] != 1:
            self.unsupported(f"a reshape of {list(x.shape)} to {list(new_shape)} that moves the batch axis",
                             "keep the batch as the first axis (e.g. x.flatten(1), x.view(x.size(0), -1))")
        if int(np.prod(new_shape)) != int(np.prod(x.shape)):
            raise ModelFormatError(f"cannot reshape {list(x.shape)} to {list(new_shape)}", path=self.g.source,
                                   where=self.where, fix="fix the target shape")
        if new_shape == x.shape:
            return x
        if x.layout == "ncl" and new_shape == (1, x.shape[1], 1, x.shape[2]):
            return Val(x.name, "nchw", new_shape)  # (N, C, L) as (N, C, 1, L): the same NHWC tensor
        if x.layout == "nchw" and x.shape[2] == 1 and new_shape == (1, x.shape[1], x.shape[3]):
            return Val(x.name, "ncl", new_shape)
        if x.layout in ("nchw", "ncl"):
            if len(new_shape) != 2:
                self.unsupported(f"a reshape of channels-first {list(x.shape)} to {list(new_shape)}",
                                 "only flatten (N, C, ...) to (N, C*...)")
            if int(np.prod(x.shape[1:], dtype=np.float64)) > 1 << 28:
                raise ModelFormatError(f"a flatten of {list(x.shape)} is implausibly large for a microcontroller",
                                       path=self.g.source, where=self.where, fix="check the input shape")
            perm = np.arange(int(np.prod(x.shape[1:]))).reshape(x.shape[1:])
            perm = np.moveaxis(perm, 0, -1).ravel()
            perm = None if np.array_equal(perm, np.arange(perm.size)) else perm
            return self._emit(name, "RESHAPE", [x.name], {"new_shape": new_shape}, "plain", perm)
        if x.permuted and len(new_shape) != 2:
            self.unsupported(f"a reshape of a flattened channels-first tensor to {list(new_shape)}")
        if len(new_shape) > 2:
            layout = {4: "nchw", 3: "ncl"}.get(len(new_shape))
            trivial = int(np.prod(new_shape[2:])) == 1 if layout else False  # (N, C) → (N, C, 1, 1)
            if not trivial:
                self.unsupported(f"a reshape of {list(x.shape)} into a channels-first {list(new_shape)}",
                                 "keep the model's reshapes to flattening")
            return self._emit(name, "RESHAPE", [x.name], {"new_shape": to_graph_shape(new_shape, layout)}, layout)
        return self._emit(name, "RESHAPE", [x.name], {"new_shape": new_shape}, "plain", x.perm)

    def binary(self, name: str, op: str, a: Val, b: Val | float | np.ndarray) -> Val:
        """ADD / SUB / MUL of two values, or of a value and a constant that broadcasts onto it."""
        if not isinstance(b, Val):
            c = np.asarray(b, dtype=np.float32)
            if c.size > 1:
                if c.ndim > len(a.shape) or a.permuted:
                    self.unsupported(f"{op.lower()} of {list(a.shape)} with a constant of shape {list(c.shape)}")
                c = c.reshape((1,) * (len(a.shape) - c.ndim) + c.shape)
                c = c.transpose(0, 2, 3, 1) if a.layout == "nchw" else (
                    c.transpose(0, 2, 1)[:, None] if a.layout == "ncl" else c)
            else:
                c = c.reshape(1)
            return self._emit(name, op, [a.name, self.const(f"{name}/const", c)], {"activation": "NONE"},
                              a.layout, a.perm)
        if a.layout != b.layout or len(a.shape) != len(b.shape):
            self.unsupported(f"{op.lower()} of {list(a.shape)} and {list(b.shape)} with different layouts")
        if (a.perm is None) != (b.perm is None) or (a.permuted and not np.array_equal(a.perm, b.perm)):
            self.unsupported(f"{op.lower()} of tensors flattened in different orders")
        return self._emit(name, op, [a.name, b.name], {"activation": "NONE"}, a.layout, a.perm)

    def concat(self, name: str, xs: list[Val], axis: int) -> Val:
        x0 = xs[0]
        if any(x.layout != x0.layout or x.permuted for x in xs):
            self.unsupported("a concatenation of tensors with different layouts or flattened orders")
        ax = graph_axis(axis, x0.layout, len(x0.shape))
        return self._emit(name, "CONCATENATION", [x.name for x in xs], {"axis": ax, "activation": "NONE"},
                          x0.layout)

    def finish(self, outputs: list[Val]) -> Graph:
        for v in outputs:
            if v.permuted:
                self.unsupported("a model output that is a flattened channels-first tensor",
                                 "end the model in a dense layer or keep the output unflattened")
            self.g.outputs.append(v.name)
        from tinyopt.graph.passes import fold_pad_into_conv

        return fold_pad_into_conv(self.g.validate())


# -- torch.fx front end ---------------------------------------------------------------------------

def _tup(v, n: int) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


def _torch_pads(padding, kernel, dilation, n: int) -> tuple[int, int, int, int]:
    """PyTorch conv/pool padding (int, tuple, 'same', 'valid') → (top, bottom, left, right)."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":  # PyTorch puts the odd pixel after, as TFLite does
        per = []
        for k, d in zip(_tup(kernel, n), _tup(dilation, n)):
            total = d * (k - 1)
            per += [total // 2, total - total // 2]
        return (0, 0, *per) if n == 1 else tuple(per)
    p = _tup(padding, n)
    return (0, 0, p[0], p[0]) if n == 1 else (p[0], p[0], p[1], p[1])


def from_torch(module, input_shape: tuple[int, ...], name: str | None = None) -> Graph:
    """Trace ``module`` with torch.fx and convert it to a float Graph (BN kept: see ``passes``).

    ``input_shape`` excludes the batch and is in PyTorch order: (C, H, W), (C, L) or (N,). 4-D outputs
    come out NHWC. The module's train/eval state is left as it was.
    """
    import torch
    import torch.fx

    label = name or type(module).__name__
    if not isinstance(module, torch.nn.Module):
        raise ModelFormatError(f"expected a torch.nn.Module, got {type(module).__name__}", where=label,
                               fix="pass the model object")
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else ()
    if not shape or len(shape) > 3 or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                                              for d in shape):
        raise ModelFormatError(f"input_shape must be 1 to 3 positive integers without the batch, got "
                               f"{input_shape!r}", where=label, fix="give e.g. (1, 28, 28), (3, 128) or (784,)")
    if type(module).__module__.startswith("torch.nn.modules") and not isinstance(
            module, (torch.nn.Sequential, torch.nn.ModuleList, torch.nn.ModuleDict)):
        module = torch.nn.Sequential(module)  # fx traces into the root: keep a lone layer a leaf
    modes = {m: m.training for m in module.modules()}
    try:
        try:
            gm = torch.fx.symbolic_trace(module)
        except Exception as e:  # fx raises many types for untraceable Python
            raise UnsupportedOpError(f"torch.fx cannot trace the model: {str(e).splitlines()[0] if str(e) else e!r}",
                                     where=label, fix="remove data-dependent control flow from forward(), "
                                     "or export the model to ONNX and load that") from None
        gm.eval()
        try:
            with torch.no_grad():
                module(torch.zeros(1, *shape))  # fails fast and plainly (fx's error path is slow)
                _ShapeRecorder(gm).run(torch.zeros(1, *shape))
        except Exception as e:
            raise ModelFormatError(f"the model does not run on an input of shape {[1, *shape]}: "
                                   f"{str(e).splitlines()[0] if str(e) else e!r}", where=label,
                                   fix="check input_shape (PyTorch order, no batch)") from None
    finally:
        for m, mode in modes.items():
            m.train(mode)
    return _FxConverter(gm, label).run(shape)


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
            return out

    return ShapeRecorder


def _ShapeRecorder(gm):  # noqa: N802 - a class made on first use, so importing this module needs no torch
    return _shape_recorder_class()(gm)


class _FxConverter:
    def __init__(self, gm, label: str):
        self.gm = gm
        self.mods = dict(gm.named_modules())
        self.b = NchwBuilder(label, None, TORCH_SUPPORTED)
        self.env: dict = {}

    def run(self, shape) -> Graph:
        b = self.b
        for n in self.gm.graph.nodes:
            b.where = f"node '{n.name}' ({self._describe(n)})"
            if n.op == "placeholder":
                if b.g.inputs:
                    b.unsupported("a second model input", "give the model a single tensor input")
                self.env[n] = b.input(n.name, (1, *shape))
            elif n.op == "output":
                outs = n.args[0] if isinstance(n.args[0], (tuple, list)) else [n.args[0]]
                vals = [self.env.get(o) for o in outs]
                if not all(isinstance(v, Val) for v in vals):
                    b.unsupported("a model output that is not a tensor computed from the input")
                return b.finish(vals)
            elif "tinyopt_shape" in n.meta:
                if n.op == "get_attr":
                    b.unsupported("a tensor attribute used directly in forward()",
                                  "wrap parameters in supported layers (nn.Linear, nn.Conv2d, ...)")
                self.env[n] = self.convert(n, n.meta["tinyopt_shape"])
            # anything else computes shapes (x.size(0)); reshapes take their target from the traced shape
        raise AssertionError("fx graph without an output node")

    def _describe(self, n) -> str:
        if n.op == "call_module":
            return type(self.mods[n.target]).__name__
        if n.op == "call_method":
            return f"Tensor.{n.target}"
        return getattr(n.target, "__name__", str(n.target))

    def _val(self, a):
        import torch.fx

        if isinstance(a, torch.fx.Node):
            v = self.env.get(a)
            if not isinstance(v, Val):
                self.b.unsupported(f"an operand '{a.name}' that is not a tensor computed from the input")
            return v
        return a

    def convert(self, n, out_shape) -> Val:
        if n.op == "call_module":
            return self._module(n, self.mods[n.target], out_shape)
        return self._function(n, out_shape)

    def _module(self, n, m, out_shape) -> Val:
        from torch import nn

        b, name = self.b, n.name
        x = self._val(n.args[0])
        np_ = lambda t: None if t is None else t.detach().cpu().numpy().astype(np.float32)  # noqa: E731
        if isinstance(m, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.Identity)):
            return x
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            k = 1 if isinstance(m, nn.Conv1d) else 2
            if m.padding_mode != "zeros":
                b.unsupported(f"padding_mode='{m.padding_mode}'", "use padding_mode='zeros'")
            pads = _torch_pads(m.padding, m.kernel_size, m.dilation, k)
            return b.conv(name, x, np_(m.weight), np_(m.bias), _tup(m.stride, 2)[-2:] if k == 2 else m.stride,
                          pads, m.dilation, m.groups)
        if isinstance(m, nn.Linear):
            return b.linear(name, x, np_(m.weight), np_(m.bias))
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if m.running_mean is None:
                b.unsupported("batch norm without running statistics", "use track_running_stats=True")
            c = m.num_features
            gamma = np_(m.weight) if m.weight is not None else np.ones(c, np.float32)
            beta = np_(m.bias) if m.bias is not None else np.zeros(c, np.float32)
            return b.batchnorm(name, x, gamma, beta, np_(m.running_mean), np_(m.running_var), m.eps)
        simple = {nn.ReLU: "RELU", nn.ReLU6: "RELU6", nn.Sigmoid: "LOGISTIC", nn.Tanh: "TANH"}
        if type(m) in simple:
            return b.unary(name, x, simple[type(m)])
        if isinstance(m, nn.Hardtanh):
            return self._hardtanh(name, x, m.min_val, m.max_val)
        if isinstance(m, nn.Softmax):
            return self._softmax(name, x, m.dim)
        if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d)):
            return self._pool(name, x, "MAX", 1 if isinstance(m, nn.MaxPool1d) else 2, m.kernel_size, m.stride,
                              m.padding, m.dilation, m.ceil_mode, True, m.return_indices)
        if isinstance(m, (nn.AvgPool1d, nn.AvgPool2d)):
            k = 1 if isinstance(m, nn.AvgPool1d) else 2
            if getattr(m, "divisor_override", None):
                b.unsupported("divisor_override in average pooling")
            return self._pool(name, x, "AVG", k, m.kernel_size, m.stride, m.padding, 1, m.ceil_mode,
                              m.count_include_pad, False)
        if isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
            return self._adaptive(name, x, out_shape)
        if isinstance(m, (nn.Flatten, nn.Unflatten)):
            return b.reshape(name, x, out_shape)
        if isinstance(m, (nn.ZeroPad1d, nn.ZeroPad2d, nn.ConstantPad1d, nn.ConstantPad2d)):
            if float(getattr(m, "value", 0.0)) != 0.0:
                b.unsupported(f"constant padding with value {m.value}", "pad with zeros")
            p = m.padding
            return b.pad(name, x, (0, 0, p[0], p[1]) if len(p) == 2 else (p[2], p[3], p[0], p[1]))
        return b.unsupported(f"module {type(m).__name__} is not supported")

    def _hardtanh(self, name, x, lo, hi) -> Val:
        if (float(lo), float(hi)) != (0.0, 6.0):
            self.b.unsupported(f"hardtanh({lo}, {hi}) (only (0, 6), i.e. ReLU6, has a TFLite op)")
        return self.b.unary(name, x, "RELU6")

    def _softmax(self, name, x, dim) -> Val:
        if dim is None:
            self.b.unsupported("softmax without dim", "give dim explicitly")
        return self.b.softmax(name, x, dim)

    def _pool(self, name, x, kind, k, kernel, stride, padding, dilation, ceil_mode, include_pad, indices):
        if indices:
            self.b.unsupported("pooling with return_indices=True")
        if any(d != 1 for d in _tup(dilation, k)):
            self.b.unsupported(f"dilated pooling (dilation {dilation})")
        kernel = _tup(kernel, k)
        stride = _tup(stride, k) if stride not in (None, (), []) else kernel
        pads = _torch_pads(padding, kernel, 1, k)
        return self.b.pool(name, x, kind, kernel, stride, pads, bool(ceil_mode), bool(include_pad))

    def _adaptive(self, name, x, out_shape) -> Val:
        if tuple(out_shape[2:]) == tuple(x.shape[2:]):
            return x
        if all(d == 1 for d in out_shape[2:]):
            return self.b.mean(name, x, range(2, len(x.shape)), keepdim=True)
        return self.b.unsupported(f"adaptive average pooling to {list(out_shape[2:])} (only to 1)",
                                  "use AdaptiveAvgPool(1) or a fixed AvgPool")

    def _function(self, n, out_shape) -> Val:
        import operator

        import torch
        import torch.nn.functional as F

        b, name, args = self.b, n.name, n.args

        def arg(i, key, default=None):
            return args[i] if len(args) > i else n.kwargs.get(key, default)

        if n.op == "call_method":
            key = n.target
        else:
            table = {
                F.relu: "relu", torch.relu: "relu", F.relu6: "relu6", F.hardtanh: "hardtanh",
                torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid", torch.tanh: "tanh", F.tanh: "tanh",
                F.softmax: "softmax", torch.softmax: "softmax", F.max_pool2d: "max_pool2d",
                F.max_pool1d: "max_pool1d", F.avg_pool2d: "avg_pool2d", F.avg_pool1d: "avg_pool1d",
                F.adaptive_avg_pool2d: "adaptive", F.adaptive_avg_pool1d: "adaptive", F.dropout: "dropout",
                torch.flatten: "flatten", torch.reshape: "reshape", torch.squeeze: "squeeze",
                torch.unsqueeze: "unsqueeze", operator.add: "add", torch.add: "add", operator.iadd: "add",
                operator.sub: "sub", torch.sub: "sub", operator.mul: "mul", torch.mul: "mul",
                torch.cat: "cat", torch.concat: "cat", torch.mean: "mean", F.pad: "pad",
            }
            key = next((v for f, v in table.items() if n.target is f), None)
            if key is None:
                return b.unsupported(f"function {getattr(n.target, '__name__', n.target)} is not supported")
        key = key.rstrip("_")  # in-place variants compute the same value
        if key in ("dropout", "contiguous", "clone", "detach"):
            return self._val(args[0])
        if key in ("flatten", "view", "reshape", "squeeze", "unsqueeze"):
            return b.reshape(name, self._val(args[0]), out_shape)
        if key in ("relu", "sigmoid", "tanh", "relu6"):
            return b.unary(name, self._val(args[0]), {"relu": "RELU", "relu6": "RELU6", "sigmoid": "LOGISTIC",
                                                      "tanh": "TANH"}[key])
        if key == "hardtanh":
            return self._hardtanh(name, self._val(args[0]), arg(1, "min_val", -1.0), arg(2, "max_val", 1.0))
        if key == "softmax":
            return self._softmax(name, self._val(args[0]), arg(1, "dim"))
        if key in ("max_pool2d", "max_pool1d"):
            return self._pool(name, self._val(args[0]), "MAX", int(key[-2]), arg(1, "kernel_size"),
                              arg(2, "stride"), arg(3, "padding", 0), arg(4, "dilation", 1),
                              arg(5, "ceil_mode", False), True, arg(6, "return_indices", False))
        if key in ("avg_pool2d", "avg_pool1d"):
            if arg(6, "divisor_override") is not None:
                b.unsupported("divisor_override in average pooling")
            return self._pool(name, self._val(args[0]), "AVG", int(key[-2]), arg(1, "kernel_size"),
                              arg(2, "stride"), arg(3, "padding", 0), 1, arg(4, "ceil_mode", False),
                              arg(5, "count_include_pad", True), False)
        if key == "adaptive":
            return self._adaptive(name, self._val(args[0]), out_shape)
        if key in ("add", "sub", "mul"):
            if arg(2, "alpha", 1) != 1:
                b.unsupported("add/sub with alpha != 1")
            a, c = self._val(args[0]), self._val(args[1])
            if not isinstance(a, Val):
                if key == "sub":
                    b.unsupported("a scalar minus a tensor", "write -(x - c) or fold it into the next layer")
                a, c = c, a
            if not isinstance(c, Val) and not isinstance(c, (int, float)):
                b.unsupported(f"{key} with a {type(c).__name__} operand")
            return b.binary(name, key.upper(), a, c if isinstance(c, Val) else float(c))
        if key == "cat":
            return b.concat(name, [self._val(t) for t in arg(0, "tensors")], arg(1, "dim", 0))
        if key == "mean":
            dim = arg(1, "dim")
            if dim is None:
                b.unsupported("a mean over all axes", "average over the spatial axes only")
            return b.mean(name, self._val(args[0]), _tup(dim, 1), bool(arg(2, "keepdim", False)))
        if key == "pad":
            pad, mode, value = list(arg(1, "pad")), arg(2, "mode", "constant"), arg(3, "value", None)
            if mode != "constant" or value not in (None, 0, 0.0) or len(pad) not in (2, 4):
                b.unsupported(f"pad {pad} with mode={mode!r}, value={value!r}",
                              "zero-pad the last one or two axes only")
            return b.pad(name, self._val(args[0]), (0, 0, *pad) if len(pad) == 2 else (pad[2], pad[3], pad[0], pad[1]))
        return b.unsupported(f"Tensor.{key} is not supported" if n.op == "call_method"
                             else f"function {key} is not supported")
