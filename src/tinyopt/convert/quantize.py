"""Float Graph + activation ranges → int8 Graph following TFLM's quantization spec.

- Weights of CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED: int8 symmetric per output channel in
  [-127, 127], zero point 0 (axis 0, or 3 for depthwise), scale = max|w| / 127.
- Biases: int32, scale = input scale × weight scale (per channel), value round(b / scale).
- Activations: int8 asymmetric per tensor from the calibrated range widened to include 0.
- TFLite's conventions for special ops: SOFTMAX and LOGISTIC outputs 1/256 with zero point -128, TANH
  1/128 with 0; RESHAPE, MAX/AVERAGE_POOL_2D, PAD and RELU6 share their input's parameters (TFLM's
  kernels do not rescale); CONCATENATION inputs with other parameters than the output get a requantizing
  QUANTIZE, as the TFLite converter inserts.
- I/O: ``io="int8"`` makes the graph inputs and outputs int8 (the converter's
  ``inference_input_type=int8``); ``io="float"`` keeps float I/O with QUANTIZE / DEQUANTIZE at the edges.
"""

from __future__ import annotations

import numpy as np

from tinyopt.convert.calibrate import choose_activation_qparams
from tinyopt.errors import ConfigError, DataError, UnsupportedOpError
from tinyopt.graph.ir import Graph, Node, QuantParams, Tensor

WEIGHTED = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0}  # op -> weight channel axis
SHARES_INPUT = ("RESHAPE", "MAX_POOL_2D", "AVERAGE_POOL_2D", "PAD", "RELU6")
FIXED_OUTPUT = {"SOFTMAX": (1.0 / 256, -128), "LOGISTIC": (1.0 / 256, -128), "TANH": (1.0 / 128, 0)}
INT8_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "SUB", "MUL", "AVERAGE_POOL_2D",
            "MAX_POOL_2D", "MEAN", "RESHAPE", "PAD", "CONCATENATION", "SOFTMAX", "LOGISTIC", "TANH", "RELU",
            "RELU6")


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
            g.add_node(Node(qname, "QUANTIZE", [name], [qname]))
    rename = {name: (name if io == "int8" else g.nodes[k].outputs[0]) for k, name in enumerate(src.inputs)}

    for i, n in enumerate(src.nodes):
        if n.op not in INT8_OPS:
            fix = ("fold it into the previous conv first (tinyopt.graph.passes.fold_batchnorm)"
                   if n.op == "BATCH_NORM" else "replace it with a supported operator")
            raise UnsupportedOpError(f"operator {n.op} has no int8 conversion", path=src.source,
                                     where=where(i, n), fix=fix)
        out = n.outputs[0]
        x0 = n.inputs[0]
        if n.op in FIXED_OUTPUT:
            s, z = FIXED_OUTPUT[n.op]
            qp[out] = (np.float32(s), z)
        elif n.op in SHARES_INPUT:
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
                if n.op == "CONCATENATION" and qp[name] != qp[out]:
                    rq = g.unique_name(f"{name}_requant")
                    s, z = qp[out]
                    g.add_tensor(Tensor(rq, t.shape, "int8", quant=QuantParams([s], [z])))
                    g.add_node(Node(rq, "QUANTIZE", [cur], [rq]))
                    cur = rq
                new_inputs.append(cur)
                continue
            if t.data is None:
                raise DataError(f"constant '{name}' has no values", path=src.source, where=where(i, n),
                                fix="convert a model with weights (a .tflite/.onnx file or a PyTorch module)")
            new_name = g.unique_name(name) if name in g.tensors else name
            if n.op in WEIGHTED and k == 1:
                axis = WEIGHTED[n.op]
                q, scale = quantize_weight(t.data, axis)
                g.add_tensor(Tensor(new_name, t.shape, "int8", data=q,
                                    quant=QuantParams(scale, np.zeros(scale.size, np.int64), axis)))
                w_scale = scale
            elif n.op in WEIGHTED and k == 2:
                in_s = np.float64(qp[x0][0])
                b_scale = (in_s * w_scale.astype(np.float64))
                g.add_tensor(Tensor(new_name, t.shape, "int32", data=quantize_bias(t.data, b_scale),
                                    quant=QuantParams(b_scale.astype(np.float32), np.zeros(b_scale.size, np.int64),
                                                      0)))
            elif t.dtype == "float32" and n.op in ("ADD", "SUB", "MUL", "CONCATENATION"):
                if n.op == "CONCATENATION":
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
            g.add_node(Node(fname, "DEQUANTIZE", [cur], [fname]))
            g.outputs.append(fname)
    return g.validate()
