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
from tinyopt.convert.calibrate import choose_activation_qparams
from tinyopt.errors import ConfigError, DataError, UnsupportedOpError
from tinyopt.graph.ir import Graph, Node, QuantParams, Tensor
from tinyopt.ops.dequantize import Dequantize
from tinyopt.ops.quantize import Quantize

_REQUANTIZE = Quantize.name  # what the TFLite converter inserts at float inputs and before CONCATENATION
_DEQUANTIZE = Dequantize.name


def quantize_weight(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel symmetric int8 in [-127, 127]: (q int8, scale float32 per channel)."""
    w = np.asarray(w, dtype=np.float32)
    other = tuple(i for i in range(w.ndim) if i != axis)
    amax = np.abs(w).max(axis=other).astype(np.float64)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.round(w.astype(np.float64) / scale.astype(np.float64).reshape(shape)), -127, 127)
    return q.astype(np.int8), scale


def quantize_bias(b: np.ndarray, scale: np.ndarray) -> np.ndarray:
    q = np.round(np.asarray(b, dtype=np.float64) / scale.astype(np.float64))
    return np.clip(q, -(2**31), 2**31 - 1).astype(np.int32)


def quantize_graph(graph: Graph, ranges: dict[str, tuple[float, float]], *, io: str = "int8",
                   fixed: dict[str, tuple[float, int]] | None = None) -> Graph:
    """The int8 twin of a float ``graph`` (BN folded, activations fused) given activation ranges.

    ``fixed`` gives (scale, zero_point) for tensors whose parameters were chosen elsewhere (a QAT or PTQ
    model's observers); they win over ``ranges``.
    """
    if io not in ("int8", "float"):
        raise ConfigError(f"io must be 'int8' or 'float', got '{io}'", fix="use io='int8' or io='float'")
    fixed = fixed or {}
    src = graph
    g = Graph(graph.name, source=graph.source)
    qp: dict[str, tuple[np.float32, int]] = {}

    def where(i, n):
        return f"node {i} '{n.name}' ({n.op})"

    def params_for(name: str, i: int, n: Node | None):
        if name in fixed:
            s, z = fixed[name]
            return np.float32(s), int(z)
        if name not in ranges:
            raise DataError(f"no calibration range for tensor '{name}'", path=src.source,
                            where=where(i, n) if n else None,
                            fix="calibrate on data that reaches every layer")
        return choose_activation_qparams(*ranges[name])

    def act_tensor(name: str) -> Tensor:
        t = src.tensors[name]
        s, z = qp[name]
        return Tensor(name, t.shape, "int8", quant=QuantParams([s], [z]))

    # graph inputs
    for name in src.inputs:
        t = src.tensors[name]
        if t.dtype != "float32":
            raise UnsupportedOpError(f"input '{name}' is {t.dtype}; conversion starts from a float model",
                                     path=src.source, fix="give the float model")
        qp[name] = params_for(name, -1, None)
        if io == "int8":
            g.add_tensor(act_tensor(name))
            g.inputs.append(name)
        else:
            g.add_tensor(Tensor(name, t.shape, "float32"))
            g.inputs.append(name)
            qname = g.unique_name(f"{name}_int8")
            g.add_tensor(Tensor(qname, t.shape, "int8", quant=QuantParams([qp[name][0]], [qp[name][1]])))
            g.add_node(Node(qname, _REQUANTIZE, [name], [qname]))
    rename = {name: (name if io == "int8" else g.nodes[k].outputs[0]) for k, name in enumerate(src.inputs)}

    for i, n in enumerate(src.nodes):
        rec = ops.get(n.op, path=src.source, where=where(i, n))
        rule = rec.quant
        if rule is None:
            raise UnsupportedOpError(f"operator {n.op} has no int8 conversion", path=src.source,
                                     where=where(i, n), fix=rec.missing_fix or "replace it with a supported operator")
        out = n.outputs[0]
        x0 = n.inputs[0]
        if isinstance(rule.output, tuple):
            s, z = rule.output
            qp[out] = (np.float32(s), z)
        elif rule.output == "input":
            qp[out] = qp[x0]
        else:
            qp[out] = params_for(out, i, n)
        new_inputs = []
        for k, name in enumerate(n.inputs):
            if not name:
                new_inputs.append("")
                continue
            t = src.tensors[name]
            if not t.constant:
                cur = rename[name]
                if rule.inputs_as_output and qp[name] != qp[out]:
                    rq = g.unique_name(f"{name}_requant")
                    s, z = qp[out]
                    g.add_tensor(Tensor(rq, t.shape, "int8", quant=QuantParams([s], [z])))
                    g.add_node(Node(rq, _REQUANTIZE, [cur], [rq]))
                    cur = rq
                new_inputs.append(cur)
                continue
            if t.data is None:
                raise DataError(f"constant '{name}' has no values", path=src.source, where=where(i, n),
                                fix="convert a model with weights (a .tflite/.onnx file or a PyTorch module)")
            new_name = g.unique_name(name) if name in g.tensors else name
            if rec.weight_axis is not None and k == 1:
                axis = rec.weight_axis
                q, scale = quantize_weight(t.data, axis)
                g.add_tensor(Tensor(new_name, t.shape, "int8", data=q,
                                    quant=QuantParams(scale, np.zeros(scale.size, np.int64), axis)))
                w_scale = scale
            elif rec.weight_axis is not None and k == rec.bias_input:
                in_s = np.float64(qp[x0][0])
                b_scale = (in_s * w_scale.astype(np.float64))
                g.add_tensor(Tensor(new_name, t.shape, "int32", data=quantize_bias(t.data, b_scale),
                                    quant=QuantParams(b_scale.astype(np.float32), np.zeros(b_scale.size, np.int64),
                                                      0)))
            elif t.dtype == "float32" and rule.constants in ("range", "output"):
                if rule.constants == "output":
                    s, z = qp[out]
                else:
                    s, z = choose_activation_qparams(float(t.data.min()), float(t.data.max()))
                q = np.clip(np.round(t.data.astype(np.float64) / float(s)) + z, -128, 127).astype(np.int8)
                g.add_tensor(Tensor(new_name, t.shape, "int8", data=q, quant=QuantParams([s], [z])))
            else:  # shape operands (RESHAPE shape, PAD paddings, MEAN axes) stay as they are
                g.add_tensor(Tensor(new_name, t.shape, t.dtype, data=t.data, quant=t.quant))
            new_inputs.append(new_name)
        g.add_tensor(act_tensor(out))
        rename[out] = out
        g.add_node(Node(n.name, n.op, new_inputs, [out], dict(n.attrs)))

    for name in src.outputs:
        cur = rename[name]
        if io == "int8":
            g.outputs.append(cur)
        else:
            fname = g.unique_name(f"{name}_float")
            g.add_tensor(Tensor(fname, src.tensors[name].shape, "float32"))
            g.add_node(Node(fname, _DEQUANTIZE, [cur], [fname]))
            g.outputs.append(fname)
    return g.validate()
