"""Per-operator preparation: everything TFLM's ``Prepare`` computes, once, before any inference.

``prepare_node(graph, node)`` returns a plain dict of Python ints, int32 arrays and strings. The numpy
kernels in ``runtime/ops`` and the C code generator both read it, so they agree by construction.
Float scales are read as float32 (as stored in the flatbuffer) and widened to double exactly where TFLM
widens them; where TFLM multiplies two float32 scales in float32 first (FULLY_CONNECTED per-tensor,
RELU) we do the same.

Keys (present when they apply to the operator):

=============================  ====================================================================
``dtype``                      "int8" (integer kernels) or "float32"
``input_offset``               ``-input_zero_point`` (added to every input value); RELU alone follows
                               TFLM's ``ReluOpData``: ``+input_zero_point``, subtracted
``weights_offset``             ``-weight_zero_point`` (0 under the int8 spec)
``output_offset``              ``output_zero_point`` (added after requantization)
``output_multiplier``          int32 array, one per output channel (length 1 when per-tensor)
``output_shift``               int32 array, TFLM sign convention (positive = left shift)
``output_activation_min/max``  clamp of the fused activation, in the output's integer domain
                               (float32 bounds for float nodes)
``stride_h/_w``, ``dilation_h/_w``, ``filter_h/_w``
``padding_h/_w``               padding before the first row/column (TFLM ``padding_values``)
``padding_h_offset/_w_offset`` the extra padding row/column after (SAME with an odd total)
``out_h/_w``                   output height/width
``padding``                    "SAME" or "VALID" (as in the node)
``activation``                 the fused activation name (NONE, RELU, RELU6, RELU_N1_TO_1)
``accum_depth/output_depth``   FULLY_CONNECTED: inputs per output, outputs
``keep_num_dims``              FULLY_CONNECTED: output keeps the input's leading dimensions
``beta``                       SOFTMAX beta (float32 value widened to double)
``epsilon``                    BATCH_NORM (float only)
``depth_multiplier``           DEPTHWISE_CONV_2D channel multiplier
``per_channel``                FULLY_CONNECTED: whether the weight has one scale per output row
``input1_offset/input2_offset`` ADD/SUB/MUL ``-zero_point`` of each operand
``left_shift``                 ADD/SUB: 20 for int8 (inputs are scaled up before requantization)
``input1_multiplier/_shift``   ADD/SUB: operand rescaling to twice the larger input scale
``input2_multiplier/_shift``
``input_multiplier``           SOFTMAX (beta * scale), LOGISTIC/TANH (scale * 2^27), QUANTIZE requant
``input_shift``                QUANTIZE int8 -> int8: shift of input scale / output scale
``input_left_shift``           SOFTMAX / LOGISTIC / TANH
``diff_min``                   SOFTMAX: input differences below this give exp = 0
``input_zero_point``           LOGISTIC / TANH / MEAN / QUANTIZE / DEQUANTIZE
``input_range_radius``         LOGISTIC / TANH: beyond ±radius the output saturates
``multiplier/shift``           MEAN: input scale / output scale, before the 1/count adjustment
``mean_multiplier/_shift``     MEAN: after folding 1/num_elements_in_axis in (what Eval uses)
``num_elements_in_axis``       MEAN
``axes``, ``keep_dims``        MEAN (axes resolved to non-negative graph axes)
``pad_value``                  PAD: the value padded in (output zero point for int8)
``paddings``                   PAD: [[before, after], ...] per graph dimension
``scale``, ``zero_point``      QUANTIZE (output) / DEQUANTIZE (input) affine parameters
``zero``, ``six``              RELU6 int8: clamp bounds in the input's integer domain
=============================  ====================================================================
"""

from __future__ import annotations

import numpy as np

from tinyopt.errors import ModelFormatError, UnsupportedOpError
from tinyopt.graph.ir import Graph, Node
from tinyopt.graph.shapes import conv_output_size
from tinyopt.runtime.fixedpoint import (
    calculate_input_radius,
    frexp_multiplier,
    quantize_multiplier,
    quantize_multipliers,
    round_half_away,
)

INT8_MIN, INT8_MAX = -128, 127
QUANTIZED = ("int8",)


def _where(graph: Graph, node: Node) -> str:
    index = next((i for i, n in enumerate(graph.nodes) if n is node), "?")
    return f"node {index} '{node.name}' ({node.op})"


def _fail(graph, node, msg, fix, cls=ModelFormatError):
    raise cls(msg, path=graph.source, where=_where(graph, node), fix=fix)


def tensor_qparams(graph: Graph, node: Node, name: str, per_channel: bool = False):
    """(scale float32 array, zero_point int64 array) of an int8/int32 tensor, checked."""
    t = graph.tensors[name]
    q = t.quant
    if q is None or q.scale.size == 0:
        _fail(graph, node, f"{t.dtype} tensor '{name}' has no quantization parameters",
              "quantize the model with scale and zero point on every integer tensor")
    scale = q.scale.astype(np.float32)
    if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        _fail(graph, node, f"tensor '{name}' has an invalid scale {scale[:4].tolist()}",
              "every scale must be a positive finite number; re-quantize the model")
    if not per_channel and scale.size != 1:
        _fail(graph, node, f"tensor '{name}' has {scale.size} scales; this operator needs one per tensor",
              "quantize activations per tensor", cls=UnsupportedOpError)
    return scale, q.zero_point.astype(np.int64)


def _scalar_qparams(graph, node, name):
    s, z = tensor_qparams(graph, node, name)
    return np.float32(s[0]), int(z[0])


def activation_range_quantized(activation: str, scale: np.float32, zero_point: int) -> tuple[int, int]:
    """``CalculateActivationRangeQuantized`` for int8: quantize 0/6/±1 with float32 division."""
    def q(f):
        return zero_point + int(round_half_away(np.float32(f) / np.float32(scale)))

    if activation in (None, "NONE"):
        return INT8_MIN, INT8_MAX
    if activation == "RELU":
        return max(INT8_MIN, q(0.0)), INT8_MAX
    if activation == "RELU6":
        return max(INT8_MIN, q(0.0)), min(INT8_MAX, q(6.0))
    if activation == "RELU_N1_TO_1":
        return max(INT8_MIN, q(-1.0)), min(INT8_MAX, q(1.0))
    raise ValueError(activation)


def activation_range_float(activation: str) -> tuple[float, float]:
    return {None: (-np.inf, np.inf), "NONE": (-np.inf, np.inf), "RELU": (0.0, np.inf), "RELU6": (0.0, 6.0),
            "RELU_N1_TO_1": (-1.0, 1.0)}[activation]


def _geometry(graph, node, x_shape, kh, kw) -> dict:
    a = node.attrs
    sh, sw = (int(v) for v in a.get("stride", (1, 1)))
    dh, dw = (int(v) for v in a.get("dilation", (1, 1)))
    padding = a.get("padding", "VALID")
    if padding not in ("SAME", "VALID"):
        _fail(graph, node, f"padding '{padding}' is not SAME or VALID", "re-export with SAME or VALID padding")
    if min(sh, sw, dh, dw, kh, kw) <= 0:
        _fail(graph, node, f"stride {sh}x{sw}, dilation {dh}x{dw}, kernel {kh}x{kw} must be positive",
              "use sizes of at least 1")
    _, h, w, _ = x_shape
    out_h = conv_output_size(h, kh, sh, dh, padding)
    out_w = conv_output_size(w, kw, sw, dw, padding)
    if out_h <= 0 or out_w <= 0:
        _fail(graph, node, f"kernel {kh}x{kw} does not fit the {h}x{w} input", "use SAME padding")

    def pad(stride, dil, size, k, out):
        total = max((out - 1) * stride + (k - 1) * dil + 1 - size, 0)
        return total // 2, total % 2

    ph, ph_off = pad(sh, dh, h, kh, out_h)
    pw, pw_off = pad(sw, dw, w, kw, out_w)
    return {"stride_h": sh, "stride_w": sw, "dilation_h": dh, "dilation_w": dw, "filter_h": kh, "filter_w": kw,
            "padding_h": ph, "padding_w": pw, "padding_h_offset": ph_off, "padding_w_offset": pw_off,
            "out_h": out_h, "out_w": out_w, "padding": padding}


def _activation(graph, node) -> str:
    act = node.attrs.get("activation", "NONE") or "NONE"
    if act not in ("NONE", "RELU", "RELU6", "RELU_N1_TO_1"):
        _fail(graph, node, f"fused activation {act} is not supported by the integer kernels",
              "use NONE, RELU, RELU6 or RELU_N1_TO_1", cls=UnsupportedOpError)
    return act


def _out_range(graph, node, out_name, is_int) -> dict:
    act = _activation(graph, node)
    if is_int:
        s, z = _scalar_qparams(graph, node, out_name)
        lo, hi = activation_range_quantized(act, s, z)
    else:
        lo, hi = activation_range_float(act)
    return {"output_activation_min": lo, "output_activation_max": hi, "activation": act}


def _conv_like(graph, node, is_int, depthwise) -> dict:
    x = graph.tensors[node.inputs[0]]
    w = graph.tensors[node.inputs[1]]
    if len(x.shape) != 4 or len(w.shape) != 4:
        _fail(graph, node, f"expects 4-D input and weight, got {list(x.shape)} and {list(w.shape)}",
              "reshape to NHWC before this layer")
    _, kh, kw, _ = w.shape
    p = _geometry(graph, node, x.shape, kh, kw)
    if depthwise:
        out_c = w.shape[3]
        m = int(node.attrs.get("depth_multiplier", 0) or out_c // x.shape[3])
        if m <= 0 or x.shape[3] * m != out_c:
            _fail(graph, node, f"{out_c} output channels are not {x.shape[3]} input channels x multiplier {m}",
                  "fix the depthwise weight shape or depth_multiplier")
        p["depth_multiplier"] = m
    else:
        out_c = w.shape[0]
        if w.shape[3] != x.shape[3]:
            _fail(graph, node, f"weight expects {w.shape[3]} input channels, input has {x.shape[3]}",
                  "fix the weight shape")
    p.update(_out_range(graph, node, node.outputs[0], is_int))
    if not is_int:
        return p
    in_s, in_z = _scalar_qparams(graph, node, node.inputs[0])
    out_s, out_z = _scalar_qparams(graph, node, node.outputs[0])
    w_s, w_z = tensor_qparams(graph, node, node.inputs[1], per_channel=True)
    if w_s.size not in (1, out_c):
        _fail(graph, node, f"weight has {w_s.size} scales for {out_c} output channels",
              "give one scale per output channel or one per tensor")
    w_s = np.broadcast_to(w_s, (out_c,))
    eff = np.float64(in_s) * w_s.astype(np.float64) / np.float64(out_s)
    mult, shift = quantize_multipliers(eff)
    p.update(input_offset=-in_z, weights_offset=0, output_offset=out_z, output_multiplier=mult,
             output_shift=shift)
    return p


def _fully_connected(graph, node, is_int) -> dict:
    w = graph.tensors[node.inputs[1]]
    if len(w.shape) != 2:
        _fail(graph, node, f"weight must be 2-D [out, in], got {list(w.shape)}", "re-export the model")
    p = {"accum_depth": int(w.shape[1]), "output_depth": int(w.shape[0]),
         "keep_num_dims": bool(node.attrs.get("keep_num_dims", False))}
    p.update(_out_range(graph, node, node.outputs[0], is_int))
    if not is_int:
        return p
    in_s, in_z = _scalar_qparams(graph, node, node.inputs[0])
    out_s, out_z = _scalar_qparams(graph, node, node.outputs[0])
    w_s, w_z = tensor_qparams(graph, node, node.inputs[1], per_channel=True)
    if w_s.size > 1:
        if w_s.size != w.shape[0]:
            _fail(graph, node, f"weight has {w_s.size} scales for {w.shape[0]} outputs",
                  "give one scale per output row or one per tensor")
        mult, shift = quantize_multipliers(np.float64(in_s) * w_s.astype(np.float64) / np.float64(out_s))
    else:
        # GetQuantizedConvolutionMultipler: the two float32 scales are multiplied in float32.
        m, s = quantize_multiplier(float(np.float32(in_s * w_s[0])) / float(out_s))
        mult, shift = np.array([m], np.int32), np.array([s], np.int32)
    p.update(input_offset=-in_z, weights_offset=-int(w_z[0]), output_offset=out_z, output_multiplier=mult,
             output_shift=shift, per_channel=bool(w_s.size > 1))
    return p


def _pool(graph, node, is_int) -> dict:
    x = graph.tensors[node.inputs[0]]
    fh, fw = (int(v) for v in node.attrs["filter"])
    if len(x.shape) != 4:
        _fail(graph, node, f"expects a 4-D NHWC input, got {list(x.shape)}", "reshape to NHWC first")
    p = _geometry(graph, node, x.shape, fh, fw)
    p.update(_out_range(graph, node, node.outputs[0], is_int))
    return p


def _binary_qparams(graph, node):
    """(scale, zero point) of a two-input op's inputs and output, each per tensor."""
    return tuple(_scalar_qparams(graph, node, t) for t in (node.inputs[0], node.inputs[1], node.outputs[0]))


def _add_sub(graph, node, is_int) -> dict:
    p = _out_range(graph, node, node.outputs[0], is_int)
    if not is_int:
        return p
    (s1, z1), (s2, z2), (so, zo) = _binary_qparams(graph, node)
    left_shift = 20
    twice_max = 2.0 * float(max(s1, s2))
    m1, sh1 = quantize_multiplier(float(s1) / twice_max)
    m2, sh2 = quantize_multiplier(float(s2) / twice_max)
    mo, sho = quantize_multiplier(twice_max / ((1 << left_shift) * float(so)))
    p.update(input1_offset=-z1, input2_offset=-z2, output_offset=zo, left_shift=left_shift,
             input1_multiplier=m1, input1_shift=sh1, input2_multiplier=m2, input2_shift=sh2,
             output_multiplier=mo, output_shift=sho)
    return p


def _mul(graph, node, is_int) -> dict:
    p = _out_range(graph, node, node.outputs[0], is_int)
    if not is_int:
        return p
    (s1, z1), (s2, z2), (so, zo) = _binary_qparams(graph, node)
    m, s = quantize_multiplier(float(s1) * float(s2) / float(so))
    p.update(input1_offset=-z1, input2_offset=-z2, output_offset=zo, output_multiplier=m, output_shift=s)
    return p


def _mean(graph, node, is_int) -> dict:
    x = graph.tensors[node.inputs[0]]
    axes = node.attrs.get("axes")
    if axes is None:
        if len(node.inputs) < 2 or graph.tensors[node.inputs[1]].data is None:
            _fail(graph, node, "has no constant axes", "give MEAN a constant axes tensor")
        axes = np.asarray(graph.tensors[node.inputs[1]].data).ravel().tolist()
    rank = len(x.shape)
    if any(not -rank <= int(a) < rank for a in axes):
        _fail(graph, node, f"axes {list(axes)} are out of range for a rank-{rank} input", "fix the axes")
    axes = sorted({int(a) % rank for a in axes})
    count = int(np.prod([x.shape[a] for a in axes]))
    p = {"axes": axes, "keep_dims": bool(node.attrs.get("keep_dims", False)), "num_elements_in_axis": count}
    if not is_int:
        return p
    si, zi = _scalar_qparams(graph, node, node.inputs[0])
    so, zo = _scalar_qparams(graph, node, node.outputs[0])
    m, s = quantize_multiplier(float(si) / float(so))
    # QuantizedMeanOrSum folds 1/count into the multiplier with at most 32 bits of extra shift.
    shift = min(count.bit_length() - 1, 32, 31 + s)
    mean_m = (m << shift) // count if shift >= 0 else (m >> -shift) // count
    p.update(input_zero_point=zi, output_zero_point=zo, multiplier=m, shift=s, mean_multiplier=int(mean_m),
             mean_shift=s - shift)
    return p


def _softmax(graph, node, is_int) -> dict:
    beta = float(np.float32(node.attrs.get("beta", 1.0)))
    p = {"beta": beta}
    if not is_int:
        return p
    si, _ = _scalar_qparams(graph, node, node.inputs[0])
    so, zo = _scalar_qparams(graph, node, node.outputs[0])
    if zo != -128 or so != np.float32(1.0 / 256):
        _fail(graph, node, f"int8 softmax output must have scale 1/256 and zero point -128, got {so} and {zo}",
              "quantize softmax outputs with scale 0.00390625 and zero point -128")
    kbits = 5
    real = min(beta * float(si) * (1 << (31 - kbits)), (1 << 31) - 1.0)
    m, left = quantize_multiplier(real)
    p.update(input_multiplier=m, input_left_shift=left,
             diff_min=int(-1.0 * calculate_input_radius(kbits, left)))
    return p


def _logistic_tanh(graph, node, is_int) -> dict:
    if not is_int:
        return {}
    si, zi = _scalar_qparams(graph, node, node.inputs[0])
    so, zo = _scalar_qparams(graph, node, node.outputs[0])
    want = (np.float32(1 / 256), -128) if node.op == "LOGISTIC" else (np.float32(1 / 128), 0)
    if (so, zo) != want:
        _fail(graph, node, f"int8 {node.op} output must have scale {float(want[0])} and zero point {want[1]}, "
              f"got {so} and {zo}", f"quantize the output with scale {float(want[0])}, zero point {want[1]}")
    m, left = frexp_multiplier(float(si) * float(1 << (31 - 4)))
    return {"input_zero_point": zi, "input_multiplier": m, "input_left_shift": left,
            "input_range_radius": calculate_input_radius(4, left, 31)}


def _relu(graph, node, is_int) -> dict:
    if not is_int:
        return {}
    si, zi = _scalar_qparams(graph, node, node.inputs[0])
    if node.op == "RELU6":
        six = zi + int(round_half_away(np.float32(6.0) / si))
        return {"zero": zi, "six": int(min(max(six, INT8_MIN), INT8_MAX))}
    so, zo = _scalar_qparams(graph, node, node.outputs[0])
    m, s = quantize_multiplier(float(np.float32(si / so)))
    lo = max(INT8_MIN, zo + int(round_half_away(np.float32(0.0) / so)))
    return {"input_offset": zi, "output_offset": zo, "output_multiplier": m, "output_shift": s,
            "output_activation_min": lo, "output_activation_max": INT8_MAX}


def _quantize(graph, node) -> dict:
    x = graph.tensors[node.inputs[0]]
    so, zo = _scalar_qparams(graph, node, node.outputs[0])
    p = {"scale": so, "zero_point": zo}
    if x.dtype in QUANTIZED:
        si, zi = _scalar_qparams(graph, node, node.inputs[0])
        m, s = quantize_multiplier(float(si) / float(so))
        p.update(input_zero_point=zi, input_multiplier=m, input_shift=s)
    return p


def _dequantize(graph, node) -> dict:
    si, zi = _scalar_qparams(graph, node, node.inputs[0])
    return {"scale": si, "zero_point": zi, "input_zero_point": zi}


def _pad(graph, node, is_int) -> dict:
    x = graph.tensors[node.inputs[0]]
    if len(node.inputs) < 2 or graph.tensors[node.inputs[1]].data is None:
        _fail(graph, node, "has no constant paddings", "give PAD a constant paddings tensor")
    pads = np.asarray(graph.tensors[node.inputs[1]].data).reshape(-1, 2).astype(np.int64)
    if pads.shape[0] != len(x.shape) or (pads < 0).any():
        _fail(graph, node, f"paddings {pads.tolist()} do not fit a rank-{len(x.shape)} input",
              "give one non-negative (before, after) pair per dimension")
    pad_value = 0.0
    if len(node.inputs) > 2 and node.inputs[2]:
        pad_value = np.asarray(graph.tensors[node.inputs[2]].data).ravel()[0]
    elif is_int:
        pad_value = _scalar_qparams(graph, node, node.outputs[0])[1]
    return {"paddings": pads.tolist(), "pad_value": pad_value}


def _concat(graph, node, is_int) -> dict:
    x = graph.tensors[node.inputs[0]]
    axis = int(node.attrs.get("axis", -1))
    if not -len(x.shape) <= axis < len(x.shape):
        _fail(graph, node, f"axis {axis} is out of range for rank {len(x.shape)}", "fix the axis")
    p = {"axis": axis % len(x.shape)}
    p.update(_out_range(graph, node, node.outputs[0], is_int))
    if is_int:
        out = _scalar_qparams(graph, node, node.outputs[0])
        for name in node.inputs:
            if _scalar_qparams(graph, node, name) != out:
                _fail(graph, node, f"input '{name}' has other quantization parameters than the output",
                      "give every concatenated tensor the output's scale and zero point")
    return p


def is_integer_node(graph: Graph, node: Node) -> bool:
    """Integer kernels run when the first input is int8 (QUANTIZE: when the output is)."""
    if node.op == "QUANTIZE":
        return True
    return graph.tensors[node.inputs[0]].dtype in QUANTIZED


def prepare_node(graph: Graph, node: Node) -> dict:
    """All parameters the kernel of ``node`` needs, computed as TFLM's Prepare does (see the table above)."""
    op = node.op
    x = graph.tensors[node.inputs[0]] if node.inputs and node.inputs[0] else None
    if x is None:
        _fail(graph, node, "has no input", "repair or re-export the model")
    is_int = is_integer_node(graph, node)
    if x.dtype not in ("float32", *QUANTIZED) and op not in ("RESHAPE",):
        _fail(graph, node, f"input dtype {x.dtype} is not supported", "use float32 or int8 tensors",
              cls=UnsupportedOpError)
    if op == "CONV_2D":
        p = _conv_like(graph, node, is_int, depthwise=False)
    elif op == "DEPTHWISE_CONV_2D":
        p = _conv_like(graph, node, is_int, depthwise=True)
    elif op == "FULLY_CONNECTED":
        p = _fully_connected(graph, node, is_int)
    elif op in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        p = _pool(graph, node, is_int)
    elif op in ("ADD", "SUB"):
        p = _add_sub(graph, node, is_int)
    elif op == "MUL":
        p = _mul(graph, node, is_int)
    elif op == "MEAN":
        p = _mean(graph, node, is_int)
    elif op == "SOFTMAX":
        p = _softmax(graph, node, is_int)
    elif op in ("LOGISTIC", "TANH"):
        p = _logistic_tanh(graph, node, is_int)
    elif op in ("RELU", "RELU6"):
        p = _relu(graph, node, is_int)
    elif op == "QUANTIZE":
        p = _quantize(graph, node)
    elif op == "DEQUANTIZE":
        p = _dequantize(graph, node)
    elif op == "PAD":
        p = _pad(graph, node, is_int)
    elif op == "CONCATENATION":
        p = _concat(graph, node, is_int)
    elif op == "RESHAPE":
        p = {}
    elif op == "BATCH_NORM":
        if is_int:
            _fail(graph, node, "BATCH_NORM has no integer kernel", "fold batch norm into the previous conv "
                  "(tinyopt.graph.passes.fold_batchnorm) before quantizing", cls=UnsupportedOpError)
        p = {"epsilon": float(node.attrs.get("epsilon", 1e-5))}
    else:
        _fail(graph, node, f"operator {op} is not supported by the runtime",
              "replace it with a supported operator (see `tinyopt check`)", cls=UnsupportedOpError)
    p["dtype"] = "int8" if is_int else "float32"
    return p


__all__ = ["activation_range_quantized", "prepare_node", "tensor_qparams", "is_integer_node"]
