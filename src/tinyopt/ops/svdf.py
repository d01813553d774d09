"""SVDF: a rank-decomposed filter over time (keyword spotting's streaming layer), as TFLM's kernel runs it.

Operands: 0 the input [B, I]; 1 ``weights_feature`` [F, I]; 2 ``weights_time`` [F, M]; 3 the bias [U]
(optional; U = F / rank); 4 the activation state [B, F * M], a variable tensor holding each filter's last M
feature values. One invocation shifts the state left by one, writes the new features W_f x into the last
column, then out[u] = bias[u] + sum over the rank's filters of sum_j W_t[f, j] state[f, j].

int8 (TFLM's EvalIntegerSvdfReference): int8 input and feature weights, int16 (or int8) time weights and
state, int32 bias at state x time-weight scale; TFLM applies no fused activation on this path (the output
clamp is int8's), so a converted RELU is kept exact by the output's zero point -128. Its two effective
scales, s_in s_wf / s_state and s_state s_wt / s_out, are taken in double, as the installed TFLM computes
them (float32 arithmetic moves a multiplier a few units, which flips a rounding tie now and then).

State: TFLM keeps it between invocations until ``Reset``; tinyopt runs each invocation from the reset state
(zero, the zero point), so only the newest column contributes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tinyopt.errors import UnsupportedOpError
from tinyopt.graph.ir import Node, QuantParams, Tensor
from tinyopt.ops import _common as c
from tinyopt.ops._record import Op, OpData, Options, QuantRule, activation, register, scalar
from tinyopt.runtime.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier

FLOAT_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"NONE": lambda v: v,
                                                                    "RELU": lambda v: np.maximum(v, 0),
                     "RELU6": lambda v: np.clip(v, 0, 6), "RELU_N1_TO_1": lambda v: np.clip(v, -1, 1),
                     "TANH": np.tanh}


@dataclass(kw_only=True)
class SvdfData(OpData):
    rank: int
    num_filters: int
    num_units: int
    memory_size: int
    activation: str
    state_dtype: str = "float32"
    input_zero_point: int = 0
    output_zero_point: int = 0
    activation_state_zero_point: int = 0
    effective_scale_1_a: int = 0   # input x feature weights -> state
    effective_scale_1_b: int = 0
    effective_scale_2_a: int = 0   # state x time weights -> output
    effective_scale_2_b: int = 0


@register
class Svdf(Op):
    name = "SVDF"
    builtin = 27
    options = Options(6, (scalar("rank", 0, "i32", 0, 1), activation("activation", 1),
                          scalar("asymmetric_quantize_inputs", 2, "bool", False)))
    arity = (4, 5)  # TFLM requires 5 (checked in prepare); the bias may be -1
    optional_inputs = (3,)
    param_inputs = (1, 2, 3)
    quant = QuantRule()

    def complete_operands(self, graph, node):
        """A zero bias where the IR has none: TFLM dereferences the bias operand (it crashes without one)."""
        if node.inputs[3]:
            return
        x, wt, st = (graph.tensors[node.inputs[k]] for k in (0, 2, 4))
        units = graph.tensors[node.outputs[0]].shape[-1]
        dtype, quant = "float32", None
        if x.dtype == "int8":
            dtype = "int32"
            if wt.quant is not None and st.quant is not None:
                quant = QuantParams(np.array([np.float32(st.quant.scale[0]) * np.float32(wt.quant.scale[0])]),
                                    np.array([0]))
        name = graph.unique_name(f"{node.name}_zero_bias")
        graph.add_tensor(Tensor(name, (units,), dtype, data=np.zeros(units, np.dtype(dtype)), quant=quant))
        node.inputs = [*node.inputs[:3], name, node.inputs[4]]

    def check_dtypes(self, ins, out):
        x = ins[0]
        want = {"float32": ("float32", "float32"), "int8": ("int8", "int8")}.get(x.dtype)
        if want is None or out.dtype != want[1] or ins[1].dtype != want[0]:
            return f"has {x.dtype} input, {ins[1].dtype} feature weights and {out.dtype} output"
        if x.dtype == "int8" and (ins[2].dtype not in ("int8", "int16") or ins[4].dtype != ins[2].dtype):
            return f"has {ins[2].dtype} time weights with a {ins[4].dtype} state (int16 or int8, the same)"
        return None

    def _sizes(self, graph, node, fail):
        x, wf, wt = (graph.tensors[node.inputs[k]] for k in (0, 1, 2))
        rank = int(node.attrs.get("rank", 1))
        if len(x.shape) != 2 or len(wf.shape) != 2 or len(wt.shape) != 2:
            fail(f"needs a 2-D input and 2-D weights, got {list(x.shape)}, {list(wf.shape)}, "
                 f"{list(wt.shape)}",
                 "re-export the model")
        f, m = wt.shape
        if rank < 1 or wf.shape[0] % rank or wf.shape[0] != f or wf.shape[1] != x.shape[1]:
            fail(f"rank {rank}, feature weights {list(wf.shape)}, time weights {list(wt.shape)} and input "
                 f"{list(x.shape)} do not fit", "give [filters, inputs] and [filters, memory] with filters a "
                 "multiple of rank")
        return x.shape[0], x.shape[1], f, m, rank

    def shape(self, graph, node, fail):
        b, _, f, _, rank = self._sizes(graph, node, fail)
        return (b, f // rank)

    def macs(self, graph, node):
        b, i, f, m, _ = self._sizes(graph, node, lambda *a: None)
        return b * f * (i + m)

    def prepare(self, graph, node, is_int):
        b, i, f, m, rank = self._sizes(graph, node, lambda msg, fix: c.fail(graph, node, msg, fix))
        if len(node.inputs) != 5:
            c.fail(graph, node, f"has {len(node.inputs)} operands; TFLM's SVDF takes 5",
                   "re-export the model")
        state = graph.tensors[node.inputs[4]]
        if not state.variable:
            c.unsupported(graph, node, f"the state '{state.name}' is not a variable tensor",
                          "give SVDF its state as a variable tensor (TFLM requires it)")
        if state.shape != (b, f * m):
            c.fail(graph, node, f"state has shape {list(state.shape)}, expected {[b, f * m]}",
                   "re-export the model")
        act = node.attrs.get("activation", "NONE") or "NONE"
        if act not in FLOAT_ACTIVATIONS:
            c.unsupported(graph, node, f"fused activation {act}",
                          f"use one of {', '.join(FLOAT_ACTIVATIONS)}")
        p = dict(rank=rank, num_filters=f, num_units=f // rank, memory_size=m, activation=act)
        if not is_int:
            return SvdfData(dtype="float32", **p)
        if not node.inputs[3]:
            c.unsupported(graph, node, "an int8 SVDF without a bias",
                          "give a zero int32 bias (TFLM reads its scale)")
        in_s, in_z = c.scalar_qparams(graph, node, node.inputs[0])
        wf_s, _ = c.scalar_qparams(graph, node, node.inputs[1])
        wt_s, _ = c.scalar_qparams(graph, node, node.inputs[2])
        b_s, _ = c.scalar_qparams(graph, node, node.inputs[3])
        st_s, st_z = c.scalar_qparams(graph, node, node.inputs[4])
        out_s, out_z = c.scalar_qparams(graph, node, node.outputs[0])
        if abs(float(b_s) - float(np.float32(st_s * wt_s))) >= 1e-5:
            c.fail(graph, node, f"bias scale {float(b_s)} is not state scale x time weight scale "
                   f"{float(np.float32(st_s * wt_s))}",
                   "quantize the bias at state x time-weight scale (TFLM checks)")
        m1, s1 = quantize_multiplier(float(in_s) * float(wf_s) / float(st_s))
        m2, s2 = quantize_multiplier(float(st_s) * float(wt_s) / float(out_s))
        return SvdfData(dtype="int8", **p, state_dtype=state.dtype, input_zero_point=in_z,
                        output_zero_point=out_z, activation_state_zero_point=st_z, effective_scale_1_a=m1,
                        effective_scale_1_b=s1, effective_scale_2_a=m2, effective_scale_2_b=s2)

    def eval(self, p: SvdfData, inputs):
        x, wf, wt, bias = inputs[0], inputs[1], inputs[2], inputs[3]
        rows, f, m = x.shape[0], p.num_filters, p.memory_size
        if p.dtype == "float32":
            state = np.zeros((rows, f, m), np.float32)  # the reset state, shifted: only the new column is set
            state[:, :, m - 1] = x.astype(np.float32) @ wf.astype(np.float32).T
            scratch = (state * wt.astype(np.float32)).sum(axis=2, dtype=np.float32)
            out = scratch.reshape(rows, p.num_units, p.rank).sum(axis=2, dtype=np.float32)
            if bias is not None:
                out = out + bias.astype(np.float32)
            return FLOAT_ACTIVATIONS[p.activation](out).astype(np.float32)
        info = np.iinfo(np.dtype(p.state_dtype))
        zp = p.activation_state_zero_point
        state = np.full((rows, f, m), zp, np.int64)
        dot = (x.astype(np.int64) - p.input_zero_point) @ wf.astype(np.int64).T
        dot = np.clip(multiply_by_quantized_multiplier(dot, p.effective_scale_1_a, p.effective_scale_1_b),
                      info.min, info.max)
        state[:, :, m - 1] = (dot + zp).astype(np.dtype(p.state_dtype))  # stored as the state's type (wraps)
        scratch = ((state - zp) * wt.astype(np.int64)).sum(axis=2)
        acc = scratch.reshape(rows, p.num_units, p.rank).sum(axis=2) + bias.astype(np.int64)
        out = multiply_by_quantized_multiplier(acc, p.effective_scale_2_a,
                                               p.effective_scale_2_b) + p.output_zero_point
        return np.clip(out, -128, 127).astype(np.int8)

    # -- convert
    def quantize(self, q, index, node):
        return quantize_svdf(q, index, node)


def _symmetric(q, name: str, index: int, node: Node, dtype: str) -> tuple[str, np.float32]:
    t = q.constant(name, index, node)
    w = np.asarray(t.data, np.float32)
    top = 127 if dtype == "int8" else 32767
    amax = float(np.abs(w).max())
    scale = np.float32(amax / top if amax > 0 else 1.0)
    data = np.clip(np.round(w.astype(np.float64) / float(scale)), -top, top).astype(dtype)
    new = q.new_name(name)
    q.g.add_tensor(Tensor(new, t.shape, dtype, data=data,
                          quant=QuantParams(np.array([scale]), np.array([0]))))
    return new, scale


def quantize_svdf(q, index: int, node: Node) -> Node:
    """TFLM's int8 SVDF: per-tensor int8 feature weights, int16 time weights and state, the state's scale
    bounding |W_f x| over the input's int8 range (no calibration of the state needed), an int32 bias at
    state x time-weight scale. The fused activation must be implied by the output's int8 clamp."""
    if q.dtype != "int8":
        raise UnsupportedOpError("SVDF has no 16x8 kernel in TFLM", path=q.src.source,
                                 where=q.where(index, node), fix="convert with int8 activations")
    out = node.outputs[0]
    q.qp[out] = q.params_for(out, index, node)
    s_out, z_out = q.qp[out]
    act = node.attrs.get("activation", "NONE") or "NONE"
    lo_real = float(s_out) * (-128 - z_out)
    hi_real = float(s_out) * (127 - z_out)
    implied = {"NONE": True, "RELU": z_out == -128, "RELU6": z_out == -128 and hi_real <= 6.0 + 1e-6,
               "RELU_N1_TO_1": lo_real >= -1.0 - 1e-6 and hi_real <= 1.0 + 1e-6}
    if not implied.get(act, False):
        raise UnsupportedOpError(f"SVDF's fused activation {act} is not applied by TFLM's int8 kernel and "
                                 "the output range does not imply it", path=q.src.source,
                                 where=q.where(index, node),
                                 fix="use NONE or RELU (a RELU output starts at zero, so the "
                                     "int8 clamp applies it)")
    x = node.inputs[0]
    in_s, in_z = q.qp[x]
    wf_name, wf_s = _symmetric(q, node.inputs[1], index, node, "int8")
    wt_name, wt_s = _symmetric(q, node.inputs[2], index, node, "int16")
    wf_q = q.g.tensors[wf_name].data.astype(np.int64)
    x_max = float(in_s) * max(abs(-128 - in_z), abs(127 - in_z))
    bound = float(np.abs(wf_q).sum(axis=1).max()) * float(wf_s) * x_max
    st_s = np.float32(max(bound, 1e-6) / 32767.0)
    b_scale = np.float32(st_s * wt_s)
    if node.inputs[3]:
        bias = q.constant(node.inputs[3], index, node).data
    else:
        bias = np.zeros(q.src.tensors[out].shape[-1], np.float32)
    b_name = q.g.unique_name(node.inputs[3] or f"{node.name}_bias")
    bq = np.clip(np.round(np.asarray(bias, np.float64) / float(b_scale)), -(2 ** 31),
                 2 ** 31 - 1).astype(np.int32)
    q.g.add_tensor(Tensor(b_name, bq.shape, "int32", data=bq,
                          quant=QuantParams(np.array([b_scale]), np.array([0]))))
    st = q.src.tensors[node.inputs[4]]
    st_name = q.g.unique_name(st.name)
    q.g.add_tensor(Tensor(st_name, st.shape, "int16", quant=QuantParams(np.array([st_s]), np.array([0])),
                          variable=True))
    return q.emit(node, [q.rename[x], wf_name, wt_name, b_name, st_name])
