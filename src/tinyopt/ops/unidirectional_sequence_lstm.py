"""UNIDIRECTIONAL_SEQUENCE_LSTM: a whole LSTM layer over a sequence, as TFLM's kernel runs it.

Operands (TFLite's 24): 0 the input [B, T, I] (``time_major``: [T, B, I]); 1-4 input-to-{input, forget,
cell, output} weights [S, I]; 5-8 recurrent-to-gate weights [S, S]; 9-11 peephole; 12-15 gate biases [S];
16-17 projection; 18 the hidden (output) state and 19 the cell state, variable tensors [B, S]; 20-23 layer
norm. TFLM runs the standard LSTM only (no CIFG, peephole, projection or layer norm): so do we, and we
refuse the variants by name. Per step t, with h, c the state:

    gate = act(W_x x_t + b + W_h h)   for forget/input/output (sigmoid) and cell (the fused activation, tanh)
    c = f * c + i * g (clipped to ±cell_clip when set);  h = o * tanh(c);  output[t] = h

Integer kernels (TFLM's 8x8->16 and 16x8->16): int8 (int16) activations, int8 per-tensor symmetric
weights, int32 (int64) biases at input x weight scale, gate pre-activations int16 at 2^-12, gate outputs
int16 at 2^-15, the cell state int16 at a power-of-two scale, the hidden state at the output's parameters
(TFLM copies its bytes into the output).

State: TFLM keeps variable tensors between invocations until ``Reset``; tinyopt runs every invocation (each
row given to the runtime, each call of the C library) from the reset state, zero (the zero point), which
is how a model that classifies one sequence per call uses it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.errors import UnsupportedOpError
from tinyopt.graph.ir import Node, QuantParams, Tensor
from tinyopt.ops import _common as c
from tinyopt.ops import _lstm as lq
from tinyopt.ops._record import CKernel, Op, OpData, Options, QuantRule, activation, register, scalar
from tinyopt.runtime.fixedpoint import quantize_multiplier

GATES = ("input", "forget", "cell", "output")  # TFLite's operand order of the four gates
INPUT_WEIGHTS = (1, 2, 3, 4)
RECURRENT_WEIGHTS = (5, 6, 7, 8)
BIASES = (12, 13, 14, 15)
HIDDEN_STATE, CELL_STATE = 18, 19
VARIANTS = {"peephole weights": (9, 10, 11), "a projection": (16, 17),
            "layer normalization": (20, 21, 22, 23)}


@dataclass(kw_only=True)
class LstmData(OpData):
    time_major: bool
    time_steps: int
    input_dimension: int
    state_dimension: int
    cell_gate_nonlinear_type: str   # the fused activation of the cell gate (TANH)
    cell_clip: float
    input_offset: int = 0           # -input zero point
    hidden_offset: int = 0          # -hidden state zero point (the recurrent FC's input offset)
    hidden_zero_point: int = 0      # the reset value of the hidden state and the output mul's offset
    activation_min: int = 0         # the hidden state's dtype range
    activation_max: int = 0
    wide: bool = False              # 16x8: int64 accumulators and requantization
    # per gate (GATES order): the input and recurrent FC multipliers to 2^-12
    input_multiplier: tuple = ()
    input_shift: tuple = ()
    recurrent_multiplier: tuple = ()
    recurrent_shift: tuple = ()
    forget_cell_multiplier: int = 0  # f (2^-15) x c -> c
    forget_cell_shift: int = 0
    input_cell_multiplier: int = 0   # i (2^-15) x g (2^-15) -> c
    input_cell_shift: int = 0
    output_multiplier: int = 0       # tanh(c) (2^-15) x o (2^-15) -> h
    output_shift: int = 0
    cell_state_scale_power: int = 0
    quantized_cell_clip: int = 0


def _inter_gate(s1: float | np.floating, s2: float | np.floating,
                out: float | np.floating) -> tuple[int, int]:
    """``CreateInterGateMulParams``: double(s1) * double(s2) / double(out), quantized."""
    return quantize_multiplier(float(np.float32(s1)) * float(np.float32(s2)) / float(np.float32(out)))


@register
class UnidirectionalSequenceLstm(Op):
    name = "UNIDIRECTIONAL_SEQUENCE_LSTM"
    builtin = 44
    options = Options(71, (activation("activation", 0), scalar("cell_clip", 1, "f32", 0.0),
                           scalar("proj_clip", 2, "f32", 0.0), scalar("time_major", 3, "bool", False),
                           scalar("asymmetric_quantize_inputs", 4, "bool", False),
                           scalar("diagonal_recurrent_tensors", 5, "bool", False)))
    arity = (1, 24)  # TFLM requires all 24 (checked in prepare); the optional ones may be -1
    optional_inputs = (1, 5, 9, 10, 11, 12, 16, 17, 20, 21, 22, 23)
    param_inputs = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 20, 21, 22, 23)
    quant = QuantRule(int16=True)
    c = CKernel("lstm", "lstm_params")
    onnx = ("LSTM", "GRU")
    torch_modules = ("LSTM", "GRU")

    def read_tflite(self, r, ins, out):
        attrs = super().read_tflite(r, ins, out)
        if len(ins[0].shape) != 3:
            r.fail(f"input has rank {len(ins[0].shape)}; the LSTM takes [batch, time, features]")
        return attrs

    def check_dtypes(self, ins, out):
        x = ins[0]
        if out.dtype != x.dtype:
            return f"maps {x.dtype} input to {out.dtype} output"
        weights = {ins[k].dtype for k in (*INPUT_WEIGHTS, *RECURRENT_WEIGHTS) if ins[k] is not None}
        want = {"float32": "float32", "int8": "int8", "int16": "int8"}.get(x.dtype)
        if want is None or weights - {want}:
            return f"has {x.dtype} activations with {sorted(weights)} weights"
        return None

    # -- graph
    def _sizes(self, graph, node, fail):
        x = graph.tensors[node.inputs[0]]
        w = graph.tensors[node.inputs[2]]
        if len(x.shape) != 3 or len(w.shape) != 2:
            fail("needs a [batch, time, features] input and 2-D weights, got "
                 f"{list(x.shape)} and {list(w.shape)}",
                 "give the LSTM a 3-D sequence")
        tm = bool(node.attrs.get("time_major", False))
        t, b = (x.shape[0], x.shape[1]) if tm else (x.shape[1], x.shape[0])
        return b, t, x.shape[2], w.shape[0]

    def shape(self, graph, node, fail):
        x = graph.tensors[node.inputs[0]]
        _, _, i, s = self._sizes(graph, node, fail)
        if graph.tensors[node.inputs[2]].shape[1] != i:
            fail(f"input-to-forget weights {list(graph.tensors[node.inputs[2]].shape)} do "
                 f"not take {i} features",
                 "match the weights to the input")
        return (*x.shape[:2], s)

    def macs(self, graph, node):
        b, t, i, s = self._sizes(graph, node, lambda m, f: None)
        return b * t * 4 * s * (i + s)

    def other_ops(self, graph, node):
        b, t, _, s = self._sizes(graph, node, lambda m, f: None)
        return b * t * s * 10  # 4 gate adds + biases, 4 activations, 3 products, 1 sum, tanh(c)

    # -- runtime
    def _check(self, graph, node):
        ins = node.inputs
        if len(ins) != 24:
            c.fail(graph, node, f"has {len(ins)} operands; TFLM's LSTM takes 24", "re-export the model")
        for what, slots in VARIANTS.items():
            if any(ins[k] for k in slots):
                c.unsupported(graph, node, f"an LSTM with {what}", "TFLM runs the standard LSTM only "
                              "(no CIFG, peephole, projection or layer norm); train the model without it")
        if not ins[1] or not ins[5] or not ins[12]:
            c.unsupported(graph, node, "a coupled input-forget gate (CIFG: no input gate weights)",
                          "TFLM runs the standard LSTM only; train the model with an input gate")
        missing = [k for k in (*INPUT_WEIGHTS, *RECURRENT_WEIGHTS, *BIASES, HIDDEN_STATE,
                               CELL_STATE) if not ins[k]]
        if missing:
            c.fail(graph, node, f"operands {missing} are missing",
                   "give all 4 gates' weights, biases and both states")
        for k in (HIDDEN_STATE, CELL_STATE):
            if not graph.tensors[ins[k]].variable:
                c.unsupported(graph, node, f"the {'hidden' if k == HIDDEN_STATE else 'cell'} state "
                              f"'{ins[k]}' is not a variable tensor",
                              "TFLM's LSTM keeps its state in variable tensors (an initial state given as an "
                              "input is converted by the framework doors into per-step operators)")
        act = node.attrs.get("activation", "TANH")
        if act != "TANH":
            c.unsupported(graph, node, f"cell gate activation {act}",
                          "TFLM's LSTM computes the cell gate with tanh")
        if node.attrs.get("diagonal_recurrent_tensors"):
            c.unsupported(graph, node, "diagonal recurrent weights", "use full recurrent weight matrices")

    def prepare(self, graph, node, is_int):
        self._check(graph, node)
        b, t, i, s = self._sizes(graph, node, lambda m, f: c.fail(graph, node, m, f))
        x = graph.tensors[node.inputs[0]]
        p = dict(time_major=bool(node.attrs.get("time_major", False)), time_steps=t, input_dimension=i,
                 state_dimension=s, cell_gate_nonlinear_type="TANH",
                 cell_clip=float(np.float32(node.attrs.get("cell_clip", 0.0))))
        for k in (*INPUT_WEIGHTS, *RECURRENT_WEIGHTS):
            want = (s, i) if k in INPUT_WEIGHTS else (s, s)
            if graph.tensors[node.inputs[k]].shape != want:
                c.fail(graph, node,
                       f"weight operand {k} has shape {list(graph.tensors[node.inputs[k]].shape)}, "
                       f"expected {list(want)}", "re-export the model")
        for k in (*BIASES, HIDDEN_STATE, CELL_STATE):
            want = s if k in BIASES else b * s
            if graph.tensors[node.inputs[k]].size != want:
                c.fail(graph, node,
                       f"operand {k} has {graph.tensors[node.inputs[k]].size} values, expected {want}",
                       "re-export the model")
        if not is_int:
            return LstmData(dtype="float32", **p)
        h = graph.tensors[node.inputs[HIDDEN_STATE]]
        cell = graph.tensors[node.inputs[CELL_STATE]]
        if cell.dtype != "int16" or h.dtype != x.dtype:
            c.unsupported(graph, node, f"{x.dtype} LSTM with a {h.dtype} hidden and {cell.dtype} cell state",
                          f"quantize the hidden state as {x.dtype} and the cell state as int16")
        in_s, in_z = c.scalar_qparams(graph, node, node.inputs[0])
        h_s, h_z = c.scalar_qparams(graph, node, node.inputs[HIDDEN_STATE])
        c_s, _ = c.scalar_qparams(graph, node, node.inputs[CELL_STATE])
        mult: dict[str, list[int]] = {"input_multiplier": [], "input_shift": [], "recurrent_multiplier": [],
                                      "recurrent_shift": []}
        for gate in range(4):
            for key, src_s, k in (("input", in_s, INPUT_WEIGHTS[gate]),
                                  ("recurrent", h_s, RECURRENT_WEIGHTS[gate])):
                w_s, w_z = c.tensor_qparams(graph, node, node.inputs[k])  # per tensor (TFLM's LSTM FC)
                if w_z[0] != 0:
                    c.unsupported(graph, node, f"weights '{node.inputs[k]}' with zero point {int(w_z[0])}",
                                  "quantize weights symmetrically")
                # the gate's FC multiplier: s_src s_w / 2^-12 in double, as the installed TFLM computes it
                # (a float32 product flips a rounding tie now and then)
                real = float(src_s) * float(w_s[0]) / lq.GATE_INPUT_SCALE
                m, sh = quantize_multiplier(real)
                mult[f"{key}_multiplier"].append(m)
                mult[f"{key}_shift"].append(sh)
        fc_m, fc_s = _inter_gate(lq.GATE_OUTPUT_SCALE, c_s, c_s)
        ic_m, ic_s = _inter_gate(lq.GATE_OUTPUT_SCALE, lq.GATE_OUTPUT_SCALE, c_s)
        o_m, o_s = _inter_gate(lq.GATE_OUTPUT_SCALE, lq.GATE_OUTPUT_SCALE, h_s)
        lo, hi = (-128, 127) if x.dtype == "int8" else (lq.INT16_MIN, lq.INT16_MAX)
        clip = float(np.float32(p["cell_clip"])) / float(np.float32(c_s))
        return LstmData(dtype=x.dtype, **p, input_offset=-in_z, hidden_offset=-h_z, hidden_zero_point=h_z,
                        activation_min=lo, activation_max=hi, wide=x.dtype == "int16",
                        input_multiplier=tuple(mult["input_multiplier"]),
                        input_shift=tuple(mult["input_shift"]),
                        recurrent_multiplier=tuple(mult["recurrent_multiplier"]),
                        recurrent_shift=tuple(mult["recurrent_shift"]), forget_cell_multiplier=fc_m,
                        forget_cell_shift=fc_s, input_cell_multiplier=ic_m, input_cell_shift=ic_s,
                        output_multiplier=o_m, output_shift=o_s, cell_state_scale_power=lq.checked_log2(c_s),
                        quantized_cell_clip=int(min(max(clip, -32768.0), 32767.0)))

    def eval(self, p: LstmData, inputs):
        x = inputs[0]
        if p.time_major:  # [T, B, I]: every batch advances together, as independent sequences
            return np.swapaxes(self._run(p, np.swapaxes(x, 0, 1), inputs), 0, 1)
        return self._run(p, x, inputs)

    def _run(self, p: LstmData, x: np.ndarray, inputs) -> np.ndarray:
        """x [rows, T, I] -> [rows, T, S]; each row starts from the reset state."""
        w_in = [inputs[k] for k in INPUT_WEIGHTS]
        w_rec = [inputs[k] for k in RECURRENT_WEIGHTS]
        bias = [inputs[k] for k in BIASES]
        if p.dtype == "float32":
            return self._run_float(p, x, w_in, w_rec, bias)
        return self._run_integer(p, x, w_in, w_rec, bias)

    @staticmethod
    def _run_float(p: LstmData, x: np.ndarray, w_in: list, w_rec: list, bias: list) -> np.ndarray:
        rows, s = x.shape[0], p.state_dimension
        y = np.empty((rows, p.time_steps, s), np.float32)
        h = np.zeros((rows, s), np.float32)
        cell = np.zeros((rows, s), np.float32)
        for t in range(p.time_steps):
            xt = x[:, t].astype(np.float32)
            pre = [xt @ w_in[g].astype(np.float32).T + bias[g].astype(np.float32) + h
                   @ w_rec[g].astype(np.float32).T
                   for g in range(4)]
            i, f, o = (1.0 / (1.0 + np.exp(-pre[k])) for k in (0, 1, 3))
            cell = f * cell + i * np.tanh(pre[2])
            if p.cell_clip > 0:
                cell = np.clip(cell, -p.cell_clip, p.cell_clip)
            h = (o * np.tanh(cell)).astype(np.float32)
            y[:, t] = h
        return y

    @staticmethod
    def _run_integer(p: LstmData, x: np.ndarray, w_in: list, w_rec: list, bias: list) -> np.ndarray:
        rows, s = x.shape[0], p.state_dimension
        y = np.empty((rows, p.time_steps, s), np.dtype(p.dtype))
        h = np.full((rows, s), p.hidden_zero_point, np.int64)
        cell = np.zeros((rows, s), np.int64)
        w_in = [w.astype(np.int64) for w in w_in]
        w_rec = [w.astype(np.int64) for w in w_rec]
        bias = [b.astype(np.int64) for b in bias]
        tanh_c = lq.tanh_params(p.cell_state_scale_power)
        for t in range(p.time_steps):
            xt = x[:, t].astype(np.int64) + p.input_offset
            gates = []
            for g in range(4):
                a = lq.requantize(xt @ w_in[g].T + bias[g], p.input_multiplier[g], p.input_shift[g], p.wide)
                r = lq.requantize((h + p.hidden_offset) @ w_rec[g].T, p.recurrent_multiplier[g],
                                  p.recurrent_shift[g], p.wide)
                pre = np.clip(np.clip(a, lq.INT16_MIN, lq.INT16_MAX) + np.clip(r, lq.INT16_MIN, lq.INT16_MAX),
                              lq.INT16_MIN, lq.INT16_MAX)
                gates.append(lq.tanh16(pre, 3, 0) if g == 2 else lq.logistic16(pre))
            i, f, g_, o = gates
            cell = lq.mul_elementwise(f, cell, p.forget_cell_multiplier, p.forget_cell_shift, 0,
                                      lq.INT16_MIN, lq.INT16_MAX)
            ig = lq.mul_elementwise(i, g_, p.input_cell_multiplier, p.input_cell_shift, 0, lq.INT16_MIN,
                                    lq.INT16_MAX)
            cell = np.clip(cell + ig, lq.INT16_MIN, lq.INT16_MAX)
            if p.cell_clip > 0:
                cell = np.clip(cell, -p.quantized_cell_clip, p.quantized_cell_clip)
            h = lq.mul_elementwise(lq.tanh16(cell, *tanh_c), o, p.output_multiplier, p.output_shift,
                                   p.hidden_zero_point, p.activation_min, p.activation_max)
            y[:, t] = h
        return y

    # -- convert
    def quantize(self, q, index, node):
        return quantize_lstm(q, index, node)

    # -- C library
    def pack_c(self, graph, index, node):
        """kernels/lstm.c: the int8 kernel above (one sequence from the reset state), the four gates'
        weights stacked, the cell and the gates in a 10 * S-byte scratch (the hidden state is the previous
        output row)."""
        from tinyopt.export.c import params as cp

        p = self.prepare(graph, node, True)
        x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        if p.dtype != "int8":
            raise UnsupportedOpError(f"a {p.dtype} LSTM (16x8)", path=graph.source,
                                     where=cp.where(index, node),
                                     fix="the C library runs the int8 LSTM: convert with int8 activations")
        cp.check_int8(graph, index, node, [x, y])
        batch = x.shape[1] if p.time_major else x.shape[0]
        if batch != 1:
            raise UnsupportedOpError(f"an LSTM over {batch} sequences at once", path=graph.source,
                                     where=cp.where(index, node), fix="give one sequence (batch 1)")
        tanh_m, tanh_s = lq.tanh_params(p.cell_state_scale_power)
        tanh_m, tanh_s = (3 << tanh_s, 0) if tanh_m == 0 else (tanh_m, tanh_s)
        if 32768 * tanh_m >= 1 << 40:
            raise UnsupportedOpError("a cell state scale too coarse for the kernel's tanh", path=graph.source,
                                     where=cp.where(index, node), fix="convert with a finer cell state scale")
        t = graph.tensors
        ints = dict(time_steps=p.time_steps, input_dimension=p.input_dimension,
                    state_dimension=p.state_dimension, input_offset=p.input_offset,
                    hidden_offset=p.hidden_offset, hidden_zero_point=p.hidden_zero_point,
                    activation_min=p.activation_min, activation_max=p.activation_max,
                    forget_cell_multiplier=p.forget_cell_multiplier,
                    input_cell_multiplier=p.input_cell_multiplier, output_multiplier=p.output_multiplier,
                    forget_cell_shift=p.forget_cell_shift, input_cell_shift=p.input_cell_shift,
                    output_shift=p.output_shift, tanh_multiplier=tanh_m, tanh_shift=tanh_s,
                    quantized_cell_clip=p.quantized_cell_clip if p.cell_clip > 0 else 0)
        arrays = {
            "input_weights": ("int8_t", np.stack([t[node.inputs[k]].data for k in INPUT_WEIGHTS])),
            "recurrent_weights": ("int8_t", np.stack([t[node.inputs[k]].data for k in RECURRENT_WEIGHTS])),
            "bias": ("int32_t", np.stack([np.asarray(t[node.inputs[k]].data, np.int64) for k in BIASES])),
            "input_multiplier": ("int32_t", np.asarray(p.input_multiplier)),
            "input_shift": ("int32_t", np.asarray(p.input_shift)),
            "recurrent_multiplier": ("int32_t", np.asarray(p.recurrent_multiplier)),
            "recurrent_shift": ("int32_t", np.asarray(p.recurrent_shift)),
            "sigmoid_table": ("uint16_t", lq.SIGMOID_TABLE),
        }
        return cp.OpParams("lstm", ints, arrays, signature="rows_col",
                           col_bytes=-(-10 * p.state_dimension // 4) * 4)

    # -- doors
    def from_onnx(self, cv, node, name, a, ins):
        from tinyopt.ops._recurrent_doors import onnx_recurrent

        return onnx_recurrent(cv, node, name, a, ins)

    def from_torch_module(self, cv, n, m, name, out_shape):
        from tinyopt.ops._recurrent_doors import torch_recurrent

        return torch_recurrent(cv, n, m, name, out_shape)


# -- conversion ------------------------------------------------------------------------------------------

def cell_scale(time_steps: int, cell_clip: float) -> float:
    """The int16 cell state's power-of-two scale. |c_t| <= |c_{t-1}| + |i g| < t (the gates lie in (0, 1)
    and (-1, 1)), so T bounds the cell over a sequence that starts from zero: the smallest power of two whose
    int16 range holds min(T, cell_clip), as the converter needs no calibration of the cell itself."""
    bound = float(time_steps)
    if cell_clip > 0:
        bound = min(bound, float(cell_clip))
    return 2.0 ** (int(np.ceil(np.log2(max(bound, 2.0 ** -15)))) - 15)


def _per_tensor_weight(q, name: str, index: int, node: Node) -> tuple[str, np.float32]:
    """int8 symmetric per-tensor weights (TFLM's LSTM gates take one scale per matrix)."""
    t = q.constant(name, index, node)
    w = np.asarray(t.data, np.float32)
    amax = float(np.abs(w).max())
    scale = np.float32(amax / 127.0 if amax > 0 else 1.0)
    data = np.clip(np.round(w.astype(np.float64) / float(scale)), -127, 127).astype(np.int8)
    new = q.new_name(name)
    q.g.add_tensor(Tensor(new, t.shape, "int8", data=data,
                          quant=QuantParams(np.array([scale]), np.array([0]))))
    return new, scale


def quantize_lstm(q, index: int, node: Node) -> Node:
    """The integer LSTM TFLM expects: per-tensor weights, biases at input x weight scale, the hidden state
    variable at the output's parameters (TFLM copies it into the output), the cell state variable int16 at
    a power-of-two scale (``cell_scale``), no intermediate tensors (TFLM fixes the gates at 2^-12/2^-15)."""
    src = q.src
    rec = UnidirectionalSequenceLstm
    out = node.outputs[0]
    q.qp[out] = q.params_for(out, index, node)
    x = node.inputs[0]
    in_s = q.qp[x][0]
    ins = [q.rename[x]] + [""] * 23
    for k in (*INPUT_WEIGHTS, *RECURRENT_WEIGHTS):
        if node.inputs[k]:
            ins[k], scale = _per_tensor_weight(q, node.inputs[k], index, node)
            if k in INPUT_WEIGHTS and node.inputs[k + 11]:
                ins[k + 11] = q.bias(node.inputs[k + 11], in_s, np.array([scale], np.float32), index, node)
    for k, name in enumerate(node.inputs):
        if name and not ins[k] and k not in (HIDDEN_STATE, CELL_STATE):
            raise UnsupportedOpError(f"operand {k} of the LSTM ('{name}') has no integer conversion",
                                     path=src.source, where=q.where(index, node),
                                     fix="TFLM runs the standard LSTM only (no peephole, "
                                         "projection or layer norm)")
    _, t_steps, _, _ = rec()._sizes(src, node, lambda m, f: None)
    h_src, c_src = (src.tensors[node.inputs[k]] for k in (HIDDEN_STATE, CELL_STATE))
    s_out, z_out = q.qp[out]
    cs = cell_scale(t_steps, float(node.attrs.get("cell_clip", 0.0)))
    for k, t, dtype, params in ((HIDDEN_STATE, h_src, q.dtype, (s_out, z_out)),
                                (CELL_STATE, c_src, "int16", (cs, 0))):
        name = q.g.unique_name(t.name)
        q.g.add_tensor(Tensor(name, t.shape, dtype,
                              quant=QuantParams(np.array([params[0]]), np.array([params[1]])), variable=True))
        ins[k] = name
    return q.emit(node, ins)
