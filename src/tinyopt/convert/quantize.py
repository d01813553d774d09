"""Float Graph + activation ranges → int8 Graph following TFLM's quantization spec.

- Weights (input 1 of records with a ``weight_axis``: conv, depthwise, dense): int8 symmetric per output
  channel in [-127, 127], zero point 0, scale = max|w| / 127.
- Biases (the record's ``bias_input``): int32, scale = input scale × weight scale (per channel), value
  round(b / scale).
- Activations: int8 asymmetric per tensor from the calibrated range widened to include 0.
- Each record's ``quant`` rule gives TFLite's conventions for special ops: fixed outputs (SOFTMAX and
  LOGISTIC 1/256 with zero point -128, TANH 1/128 with 0), outputs that share their input's parameters
  (RESHAPE, pooling, PAD, RELU6: TFLM's kernels do not rescale), inputs requantized to the output's
  parameters by an inserted QUANTIZE (CONCATENATION, as the TFLite converter does).
- I/O: ``io="int8"`` makes the graph inputs and outputs int8 (the converter's
  ``inference_input_type=int8``); ``io="float"`` keeps float I/O with QUANTIZE / DEQUANTIZE at the edges.
"""

from __future__ import annotations

import numpy as np

from tinyopt import ops
from tinyopt.convert.calibrate import MIN_RANGE_WIDTH, choose_activation_qparams
from tinyopt.errors import ConfigError, DataError, UnsupportedOpError
from tinyopt.graph.ir import Graph, Node, QuantParams, Tensor
from tinyopt.ops.dequantize import Dequantize
from tinyopt.ops.quantize import Quantize

_REQUANTIZE = Quantize.name  # what the TFLite converter inserts at float inputs and before CONCATENATION
_DEQUANTIZE = Dequantize.name


GRID_STEPS = (1, 3, 7, 15, 31, 63)  # symmetric narrow grids of 2..7 bits: ternary/binary, int3 .. int7
CODEBOOK_VALUES = 64  # a weight with at most this many distinct values (shared weights) is one codebook


def grid_scales(w: np.ndarray, axis: int) -> np.ndarray:
    """Per channel, the step of the coarsest symmetric grid k * step (|k| <= 63) holding every weight of the
    channel exactly (a low-bit, ternary or binary fake-quantized weight, or one BN folding scaled), or NaN:
    quantizing with that step keeps the values on the grid's integers instead of re-rounding them."""
    rows = np.moveaxis(np.asarray(w, np.float64), axis, 0).reshape(w.shape[axis], -1)
    amax = np.abs(rows).max(axis=1)
    out = np.full(rows.shape[0], np.nan)
    for steps in GRID_STEPS:
        step = np.where(amax > 0, amax / steps, 1.0)
        r = rows / step[:, None]
        on = (np.abs(r - np.round(r)) <= 1e-3).all(axis=1) & (amax > 0) & np.isnan(out)
        out[on] = step[on]
    return out


def quantize_weight(w: np.ndarray, axis: int, min_scale: np.ndarray | None = None,
                    codebook: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel symmetric int8 in [-127, 127]: (q int8, scale float32 per channel), each scale at least
    ``min_scale`` (what keeps the channel's bias and accumulator inside int32, see ``bias_safe_scale``).

    A channel already on a coarser symmetric grid (``grid_scales``) takes that grid's step as its scale,
    so its int8 values are the grid's integers, exactly. With ``codebook``, a weight holding at most
    ``CODEBOOK_VALUES`` distinct values, and at most one per 4 weights (weight sharing, not a small layer),
    off any grid is quantized per tensor: every channel then indexes one table of int8 values (one scale
    returned)."""
    w = np.asarray(w, dtype=np.float32)
    other = tuple(i for i in range(w.ndim) if i != axis)
    amax = np.abs(w).max(axis=other).astype(np.float64)
    scale = np.where(amax > 0, amax / 127.0, 1.0)
    grid = grid_scales(w, axis)
    on_grid = np.isfinite(grid)
    if codebook and not on_grid.all() and np.unique(w).size <= min(CODEBOOK_VALUES, w.size // 4):
        scale = np.full(1, amax.max() / 127.0 if amax.max() > 0 else 1.0)
        if min_scale is not None:
            scale = np.maximum(scale, np.max(min_scale))
        q = np.clip(np.round(w.astype(np.float64) / float(np.float32(scale[0]))), -127, 127)
        return q.astype(np.int8), scale.astype(np.float32)
    scale = np.where(on_grid, grid, scale)
    if min_scale is not None:
        scale = np.maximum(scale, min_scale)
    scale = scale.astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.round(w.astype(np.float64) / scale.astype(np.float64).reshape(shape)), -127, 127)
    return q.astype(np.int8), scale


def bias_safe_scale(bias: np.ndarray, input_scale: float, taps: int, bits: int = 32) -> np.ndarray:
    """The smallest weight scale per channel at which the quantized bias plus the largest possible sum of
    products still fits the kernel's accumulator (TFLM accumulates in int32 and wraps). A channel whose
    weights are all near zero but whose bias is not would otherwise get a bias past int32; the TFLite
    converter widens such weight scales the same way."""
    headroom = float(2 ** (bits - 1) - 1) - 255.0 * 127.0 * taps
    return np.abs(np.asarray(bias, np.float64)) / (float(input_scale) * max(headroom, 1.0))


def quantize_bias(b: np.ndarray, scale: np.ndarray, bits: int = 32) -> np.ndarray:
    q = np.round(np.asarray(b, dtype=np.float64) / scale.astype(np.float64))
    return np.clip(q, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1).astype(np.int64 if bits == 64 else np.int32)


def quantize_graph(graph: Graph, ranges: dict[str, tuple[float, float]], *, io: str = "int8",
                   fixed: dict[str, tuple[float, int]] | None = None, activations: str = "int8",
                   encode: bool = False) -> Graph:
    """The integer twin of a float ``graph`` (BN folded, activations fused) given activation ranges.

    ``activations``: ``"int8"`` (TFLM's int8 spec) or ``"int16"`` (16x8: int16 activations symmetric with
    zero point 0, int8 weights, int64 biases of int16 layers), for operators whose TFLM kernels have it.
    ``fixed`` gives (scale, zero_point) for tensors whose parameters were chosen elsewhere (a QAT or PTQ
    model's observers); they win over ``ranges``. ``encode`` (a compressed model): shared weights are
    quantized per tensor and every weight carries the smallest lossless encoding of its int8 values
    (``Tensor.encoding``: int4/int2, codebook, sparse), which the writers keep.
    """
    if io not in ("int8", "float"):
        raise ConfigError(f"io must be 'int8' or 'float', got '{io}'", fix="use io='int8' or io='float'")
    if activations not in ("int8", "int16"):
        raise ConfigError(f"activations must be 'int8' or 'int16', got '{activations}'",
                          fix="use int8 (the int8 spec) or int16 (16x8 quantization)")
    q = Quantizer(graph, ranges, fixed or {}, activations, encode)
    q.inputs(io)
    for i, n in enumerate(graph.nodes):
        rec = ops.get(n.op, path=graph.source, where=q.where(i, n))
        if rec.quant is None and q.float_island(i, n, rec):
            continue
        if rec.quant is None:
            raise UnsupportedOpError(f"operator {n.op} has no integer conversion", path=graph.source,
                                     where=q.where(i, n),
                                     fix=rec.missing_fix or "replace it with a supported operator")
        if activations == "int16" and not rec.quant.int16:
            raise UnsupportedOpError(f"operator {n.op} has no 16x8 kernel in TFLM", path=graph.source,
                                     where=q.where(i, n), fix="convert with int8 activations")
        rec.quantize(q, i, n)
    q.outputs(io)
    return q.g.validate()


class Quantizer:
    """The integer graph under construction, and the helpers each record's ``quantize`` builds it with."""

    def __init__(self, src: Graph, ranges: dict, fixed: dict, activations: str, encode: bool = False):
        self.src, self.ranges, self.fixed = src, ranges, fixed
        self.dtype = activations
        self.encode = encode
        self.g = Graph(src.name, source=src.source)
        self.qp: dict[str, tuple[np.float32, int]] = {}
        self.rename: dict[str, str] = {}

    @staticmethod
    def where(i: int, n: Node | None) -> str | None:
        return f"node {i} '{n.name}' ({n.op})" if n is not None else None

    # -- activation parameters
    def choose(self, lo: float, hi: float) -> tuple[np.float32, int]:
        """(scale, zero point) of a range at the activation dtype."""
        if self.dtype == "int16":  # symmetric, zero point 0 (TFLite's 16x8 scheme)
            lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
            amax = max(-lo, hi, MIN_RANGE_WIDTH / 2)
            return np.float32(amax / 32767.0), 0
        return choose_activation_qparams(lo, hi)

    def params_for(self, name: str, i: int, n: Node | None) -> tuple[np.float32, int]:
        if name in self.fixed:
            s, z = self.fixed[name]
            return np.float32(s), int(z)
        if name not in self.ranges:
            raise DataError(f"no calibration range for tensor '{name}'", path=self.src.source,
                            where=self.where(i, n), fix="calibrate on data that reaches every layer")
        return self.choose(*self.ranges[name])

    def output_params(self, rule, i: int, n: Node, out: str) -> tuple[np.float32, int]:
        """The output's parameters under the record's rule: fixed, shared with input 0, or calibrated."""
        fixed = rule.output16 if self.dtype == "int16" and rule.output16 else rule.output
        if isinstance(fixed, tuple):
            return np.float32(fixed[0]), int(fixed[1])
        if fixed == "input":
            return self.qp.get(n.inputs[0])  # None after an integer result (indices): nothing to share
        if self.src.tensors[out].dtype != "float32":
            return None
        return self.params_for(out, i, n)

    def act_tensor(self, name: str) -> Tensor:
        t = self.src.tensors[name]
        if t.dtype != "float32":  # an integer result of the float model (ARG_MAX's indices): kept as it is
            return Tensor(name, t.shape, t.dtype)
        s, z = self.qp[name]
        return Tensor(name, t.shape, self.dtype, quant=QuantParams([s], [z]))

    def requantized(self, name: str, params: tuple) -> str:
        """The integer tensor of activation ``name``, requantized to ``params`` by an inserted QUANTIZE when
        its own parameters differ."""
        cur = self.rename[name]
        if self.qp[name] == params:
            return cur
        rq = self.g.unique_name(f"{name}_requant")
        self.g.add_tensor(Tensor(rq, self.src.tensors[name].shape, self.dtype, quant=QuantParams([params[0]],
                                                                                             [params[1]])))
        self.g.add_node(Node(rq, _REQUANTIZE, [cur], [rq]))
        return rq

    # -- constants
    def new_name(self, name: str) -> str:
        return self.g.unique_name(name) if name in self.g.tensors else name

    def constant(self, name: str, i: int, n: Node) -> Tensor:
        t = self.src.tensors[name]
        if t.data is None:
            raise DataError(f"constant '{name}' has no values", path=self.src.source, where=self.where(i, n),
                            fix="convert a model with weights (a .tflite/.onnx file or a PyTorch module)")
        return t

    def weight(self, name: str, axis: int, i: int, n: Node,
               bias: str | None = None) -> tuple[str, np.ndarray]:
        """int8 symmetric per-channel weights along ``axis``: (new name, per-channel scales); with the node's
        ``bias``, no scale so small that the bias would not fit the accumulator."""
        t = self.constant(name, i, n)
        min_scale = None
        if bias and self.src.tensors[bias].data is not None:
            taps = t.data.size // t.data.shape[axis]
            min_scale = bias_safe_scale(self.src.tensors[bias].data, self.qp[n.inputs[0]][0], taps,
                                        bits=64 if self.dtype == "int16" else 32)
        q, scale = quantize_weight(t.data, axis, min_scale, codebook=self.encode)
        new = self.new_name(name)
        encoding = None
        if self.encode:
            from tinyopt.graph.encoding import find_encoding

            encoding = find_encoding(q, axis if scale.size > 1 else None)
        self.g.add_tensor(Tensor(new, t.shape, "int8", data=q, encoding=encoding,
                                 quant=QuantParams(scale, np.zeros(scale.size, np.int64), axis)))
        return new, scale

    def bias(self, name: str, input_scale, weight_scale: np.ndarray, i: int, n: Node) -> str:
        """Bias at scale input x weight (per channel): int32, or int64 under int16 activations."""
        t = self.constant(name, i, n)
        b_scale = np.float64(input_scale) * weight_scale.astype(np.float64)
        new = self.new_name(name)
        wide = self.dtype == "int16"
        data = quantize_bias(t.data, b_scale, bits=64 if wide else 32)
        self.g.add_tensor(Tensor(new, t.shape, "int64" if wide else "int32", data=data,
                                 quant=QuantParams(b_scale.astype(np.float32),
                                                   np.zeros(b_scale.size, np.int64), 0)))
        return new

    def activation_constant(self, name: str, params: tuple, i: int, n: Node) -> str:
        """A float constant operand quantized like an activation with ``params``."""
        t = self.constant(name, i, n)
        s, z = params
        lo, hi = (-32768, 32767) if self.dtype == "int16" else (-128, 127)
        q = np.clip(np.round(t.data.astype(np.float64) / float(s)) + z, lo, hi).astype(self.dtype)
        new = self.new_name(name)
        self.g.add_tensor(Tensor(new, t.shape, self.dtype, data=q, quant=QuantParams([s], [z])))
        return new

    def copy_constant(self, name: str, i: int, n: Node) -> str:
        """A shape operand (RESHAPE shape, PAD paddings, MEAN axes) kept as it is."""
        t = self.constant(name, i, n)
        new = self.new_name(name)
        self.g.add_tensor(Tensor(new, t.shape, t.dtype, data=t.data, quant=t.quant))
        return new

    def emit(self, n: Node, inputs: list[str], outputs: list[str] | None = None) -> Node:
        """Add the integer node (its outputs' parameters already in ``qp``)."""
        outs = list(n.outputs if outputs is None else outputs)
        for out in outs:
            self.g.add_tensor(self.act_tensor(out))
            self.rename[out] = out
        return self.g.add_node(Node(n.name, n.op, inputs, outs, dict(n.attrs)))

    def float_island(self, i: int, n: Node, rec) -> bool:
        """An operator TFLM runs in float only (EXP, LOG, SQRT): kept in float between a DEQUANTIZE of each
        activation input and a QUANTIZE of each output at its calibrated parameters, as the TFLite converter's
        float fallback does; TFLM runs the island, the numpy runtime bit-exactly too. False (the caller
        refuses) for an operator TFLM lacks or an integer output."""
        if not rec.tflm or rec.builtin is None or any(self.src.tensors[o].dtype != "float32"
                                                      for o in n.outputs):
            return False
        ins = []
        for name in n.inputs:
            t = self.src.tensors[name] if name else None
            if t is None or t.constant:
                ins.append(self.copy_constant(name, i, n) if t is not None else "")
                continue
            cur = self.rename[name]
            if self.g.tensors[cur].dtype == "float32":
                ins.append(cur)
                continue
            fname = self.g.unique_name(f"{name}_float")
            self.g.add_tensor(Tensor(fname, t.shape, "float32"))
            self.g.add_node(Node(fname, _DEQUANTIZE, [cur], [fname]))
            ins.append(fname)
        outs = []
        for out in n.outputs:
            outs.append(self.g.unique_name(f"{out}_float"))
            self.g.add_tensor(Tensor(outs[-1], self.src.tensors[out].shape, "float32"))
        self.g.add_node(Node(n.name, n.op, ins, outs, dict(n.attrs)))
        for out, fname in zip(n.outputs, outs):
            self.qp[out] = self.params_for(out, i, n)
            self.g.add_tensor(self.act_tensor(out))
            self.g.add_node(Node(self.g.unique_name(f"{out}_quantize"), _REQUANTIZE, [fname], [out]))
            self.rename[out] = out
        return True

    # -- graph edges
    def inputs(self, io: str) -> None:
        for name in self.src.inputs:
            t = self.src.tensors[name]
            if t.dtype != "float32":
                raise UnsupportedOpError(f"input '{name}' is {t.dtype}; conversion starts from a float model",
                                         path=self.src.source, fix="give the float model")
            self.qp[name] = self.params_for(name, -1, None)
            self.g.inputs.append(name)
            if io == "int8":
                self.g.add_tensor(self.act_tensor(name))
                self.rename[name] = name
                continue
            self.g.add_tensor(Tensor(name, t.shape, "float32"))
            qname = self.g.unique_name(f"{name}_{self.dtype}")
            s, z = self.qp[name]
            self.g.add_tensor(Tensor(qname, t.shape, self.dtype, quant=QuantParams([s], [z])))
            self.g.add_node(Node(qname, _REQUANTIZE, [name], [qname]))
            self.rename[name] = qname

    def outputs(self, io: str) -> None:
        for name in self.src.outputs:
            cur = self.rename[name]
            if io == "int8" or self.g.tensors[cur].quant is None:
                self.g.outputs.append(cur)
                continue
            fname = self.g.unique_name(f"{name}_float")
            self.g.add_tensor(Tensor(fname, self.src.tensors[name].shape, "float32"))
            self.g.add_node(Node(fname, _DEQUANTIZE, [cur], [fname]))
            self.g.outputs.append(fname)


def quantize_node(q: Quantizer, i: int, n: Node, rec) -> Node:
    """The default conversion of one node (records may override ``Op.quantize``): every output's parameters
    by the record's rule, weights per channel, biases at input x weight scale, other float constants as
    activations (own range, or the output's), shape operands unchanged, inputs requantized to the output's
    parameters where the rule says so."""
    rule = rec.quant
    for out in n.outputs:
        q.qp[out] = q.output_params(rule, i, n, out)
    out0 = n.outputs[0]
    new_inputs: list[str] = []
    w_scale = None
    for k, name in enumerate(n.inputs):
        if not name:
            new_inputs.append("")
        elif not q.src.tensors[name].constant:
            new_inputs.append(q.requantized(name, q.qp[out0]) if rule.inputs_as_output else q.rename[name])
        elif rec.weight_axis is not None and k == 1:
            bias = (n.inputs[rec.bias_input] if rec.bias_input is not None
                    and len(n.inputs) > rec.bias_input else None)
            new, w_scale = q.weight(name, rec.weight_axis, i, n, bias)
            new_inputs.append(new)
        elif rec.weight_axis is not None and k == rec.bias_input:
            new_inputs.append(q.bias(name, q.qp[n.inputs[0]][0], w_scale, i, n))
        elif q.src.tensors[name].dtype == "float32" and rule.constants in ("range", "output"):
            t = q.constant(name, i, n)
            params = q.qp[out0] if rule.constants == "output" else q.choose(float(t.data.min()),
                                                                            float(t.data.max()))
            new_inputs.append(q.activation_constant(name, params, i, n))
        else:
            new_inputs.append(q.copy_constant(name, i, n))
    return q.emit(n, new_inputs)
