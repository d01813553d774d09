"""The ONNX and PyTorch doors of recurrent layers (LSTM, GRU).

An LSTM layer that starts from a zero state and whose final cell state is not read becomes one
UNIDIRECTIONAL_SEQUENCE_LSTM (TFLM keeps its state in variable tensors, which start at zero). Everything
else is unrolled over the fixed sequence length into FULLY_CONNECTED / LOGISTIC / TANH / MUL / ADD / SUB per
time step: a GRU (TFLite has no GRU operator), and an LSTM whose initial state is a graph input or a
non-zero constant, or whose final cell state is an output. The unrolled graph grows with T (about 14
operators a step) and converts to int8 like any other graph.

Gate orders: PyTorch LSTM i f g o, ONNX LSTM i o f c, TFLite input/forget/cell/output; PyTorch GRU r z n,
ONNX GRU z r h. Sequences run batch-first with batch 1 (the graph's batch axis): a time-major ONNX X
[T, 1, I] (layout=0, what torch.onnx exports) is the same bytes, and its outputs [T, 1, 1, H] too; PyTorch's
batch_first=False, a reverse or bidirectional layer and LSTM variants (peepholes, projection, ONNX clip,
input_forget) are refused by name.
"""

from __future__ import annotations

import numpy as np

from tinyopt.graph.ir import Tensor


def reshaped(b, name: str, v, shape):
    """A plain value reshaped to a plain framework ``shape`` (the same bytes: unit axes only)."""
    from tinyopt.ops.reshape import Reshape

    return b.emit(name, Reshape.name, [v.name], {"new_shape": tuple(shape)}, "plain")


class Unroll:
    """Builds one recurrent layer on a plain (1, T, I) sequence; a zero state is ``None``."""

    def __init__(self, b, name: str):
        self.b, self.name = b, name
        from tinyopt.ops.add import Add
        from tinyopt.ops.logistic import Logistic
        from tinyopt.ops.mul import Mul
        from tinyopt.ops.sub import Sub
        from tinyopt.ops.tanh import Tanh

        self.ADD, self.SUB, self.MUL, self.SIG, self.TANH = (Add.name, Sub.name, Mul.name, Logistic.name,
                                                             Tanh.name)

    def fc(self, tag, v, w, bias):
        from tinyopt.ops import fully_connected

        return fully_connected.build(self.b, f"{self.name}/{tag}", v, w, bias)

    def bin(self, tag, op, a, other):
        from tinyopt.ops import _binary

        return _binary.build(self.b, f"{self.name}/{tag}", op, a, other)

    def act(self, tag, op, v):
        return self.b.emit(f"{self.name}/{tag}", op, [v.name], {}, "plain")

    def split(self, tag, v, parts: int):
        from tinyopt.ops import split

        h = v.shape[1] // parts
        return split.build(self.b, f"{self.name}/{tag}", v, [h] * parts, 1)

    def steps(self, x):
        """The T time steps of a plain (1, T, I) sequence as (1, I) values."""
        from tinyopt.ops.reshape import Reshape
        from tinyopt.ops.unpack import Unpack

        t = x.shape[1]
        if t == 1:
            return [self.b.emit(f"{self.name}/x0", Reshape.name, [x.name], {"new_shape": (1, x.shape[2])},
                                "plain")]
        return self.b.emit(f"{self.name}/steps", Unpack.name, [x.name], {"num": t, "axis": 1}, "plain",
                           outputs=t)

    def sequence(self, hs):
        """(1, H) values stacked into a plain (1, T, H) sequence."""
        from tinyopt.ops.pack import Pack
        from tinyopt.ops.reshape import Reshape

        if len(hs) == 1:
            return self.b.emit(f"{self.name}/y", Reshape.name, [hs[0].name],
                               {"new_shape": (1, 1, hs[0].shape[1])}, "plain")
        return self.b.emit(f"{self.name}/y", Pack.name, [h.name for h in hs],
                           {"values_count": len(hs), "axis": 1}, "plain")

    def lstm(self, x, w_ih, w_hh, bias, h, c):
        """PyTorch-ordered (i, f, g, o) LSTM weights; returns (y, h_T, c_T)."""
        hs = []
        for t, xt in enumerate(self.steps(x)):
            pre = self.fc(f"t{t}/x", xt, w_ih, bias)
            if h is not None:
                pre = self.bin(f"t{t}/gates", self.ADD, pre, self.fc(f"t{t}/h", h, w_hh, None))
            i, f, g, o = self.split(f"t{t}/split", pre, 4)
            i, f, o = (self.act(f"t{t}/{k}", self.SIG, v) for k, v in (("i", i), ("f", f), ("o", o)))
            g = self.act(f"t{t}/g", self.TANH, g)
            ig = self.bin(f"t{t}/ig", self.MUL, i, g)
            c = ig if c is None else self.bin(f"t{t}/c", self.ADD, self.bin(f"t{t}/fc", self.MUL, f, c), ig)
            h = self.bin(f"t{t}/h_out", self.MUL, o, self.act(f"t{t}/tanh_c", self.TANH, c))
            hs.append(h)
        return self.sequence(hs), h, c

    def gru(self, x, w_ih, w_hh, b_ih, b_hh, h, linear_before_reset: bool):
        """PyTorch-ordered (r, z, n) GRU weights; returns (y, h_T)."""
        hsz = w_hh.shape[1]
        hs = []
        for t, xt in enumerate(self.steps(x)):
            xr, xz, xn = self.split(f"t{t}/xsplit", self.fc(f"t{t}/x", xt, w_ih, b_ih), 3)
            if h is None:  # W_h 0 + b_h = b_h
                hr, hz, hn = (b_hh[k * hsz:(k + 1) * hsz] for k in range(3))
            elif linear_before_reset:
                hr, hz, hn = self.split(f"t{t}/hsplit", self.fc(f"t{t}/h", h, w_hh, b_hh), 3)
            else:
                hr, hz = self.split(f"t{t}/hsplit", self.fc(f"t{t}/h", h, w_hh[:2 * hsz], b_hh[:2 * hsz]), 2)
            r = self.act(f"t{t}/r", self.SIG, self.bin(f"t{t}/r_pre", self.ADD, xr, hr))
            z = self.act(f"t{t}/z", self.SIG, self.bin(f"t{t}/z_pre", self.ADD, xz, hz))
            if h is not None and not linear_before_reset:
                hn = self.fc(f"t{t}/hn", self.bin(f"t{t}/rh", self.MUL, r, h), w_hh[2 * hsz:], b_hh[2 * hsz:])
                n_pre = self.bin(f"t{t}/n_pre", self.ADD, xn, hn)
            elif h is None and not linear_before_reset:
                n_pre = self.bin(f"t{t}/n_pre", self.ADD, xn, hn)  # W_hn (r * 0) + b_hn
            else:
                n_pre = self.bin(f"t{t}/n_pre", self.ADD, xn, self.bin(f"t{t}/rhn", self.MUL, r, hn))
            n = self.act(f"t{t}/n", self.TANH, n_pre)
            if h is None:  # h' = (1 - z) n = n - z n
                h = self.bin(f"t{t}/h_out", self.SUB, n, self.bin(f"t{t}/zn", self.MUL, z, n))
            else:  # h' = n + z (h - n)
                h = self.bin(f"t{t}/h_out", self.ADD, n, self.bin(f"t{t}/zd", self.MUL, z,
                                                                  self.bin(f"t{t}/d", self.SUB, h, n)))
            hs.append(h)
        return self.sequence(hs), h


def fused_lstm(b, name: str, x, w_ih, w_hh, bias):
    """One UNIDIRECTIONAL_SEQUENCE_LSTM from PyTorch-ordered (i, f, g, o) weights, state variables at zero."""
    from tinyopt.ops.unidirectional_sequence_lstm import UnidirectionalSequenceLstm

    hsz = w_hh.shape[1]
    ins = [x.name] + [""] * 23
    order = (0, 1, 2, 3)  # TFLite input, forget, cell, output = PyTorch i, f, g, o
    for k, gate in enumerate(order):
        rows = slice(gate * hsz, (gate + 1) * hsz)
        ins[1 + k] = b.const(f"{name}/input_to_gate{k}", w_ih[rows])
        ins[5 + k] = b.const(f"{name}/recurrent_to_gate{k}", w_hh[rows])
        ins[12 + k] = b.const(f"{name}/gate_bias{k}", bias[rows])
    for k, what in ((18, "hidden_state"), (19, "cell_state")):
        ins[k] = b.g.add_tensor(Tensor(b.g.unique_name(f"{name}/{what}"), (1, hsz), variable=True)).name
    attrs = {"activation": "TANH", "cell_clip": 0.0, "proj_clip": 0.0, "time_major": False,
             "asymmetric_quantize_inputs": False, "diagonal_recurrent_tensors": False}
    return b.emit(name, UnidirectionalSequenceLstm.name, ins, attrs, "plain")


def as_sequence(b, name: str, x):
    """A framework (1, T, I) value as a plain graph tensor in that order."""
    from tinyopt.ops import reshape

    if len(x.shape) != 3 or x.shape[0] != 1:
        b.unsupported(f"a recurrent layer on a value of shape {list(x.shape)}",
                      "give a batch-first sequence (1, time, features)")
    if x.layout == "ncl":
        return reshape._framework_order(b, f"{name}/sequence", x)
    if x.layout != "plain" or x.permuted:
        b.unsupported(f"a recurrent layer on a {x.layout} value",
                      "give a batch-first sequence (1, time, features)")
    return x


def as_state(b, name: str, v, hsz: int):
    """An initial state (1, 1, H) / (1, H) framework value as a plain (1, H) graph value."""
    from tinyopt.ops import reshape

    if int(np.prod(v.shape)) != hsz:
        b.unsupported(f"an initial state of shape {list(v.shape)} for one layer of size {hsz}",
                      "give one layer's state (num_layers=1, batch 1)")
    if v.layout == "ncl":
        v = reshape._framework_order(b, f"{name}/state", v)
    return reshape.build(b, f"{name}/state2d", v, (1, hsz))


def last_step(b, name: str, y, shape):
    """The last time step of a plain (1, T, H) sequence, reshaped to the framework ``shape``."""
    from tinyopt.ops import strided_slice

    t = y.shape[1]
    h = y if t == 1 else strided_slice.build(b, f"{name}/last", y, [t - 1], [t], [1], [1])
    return reshaped(b, f"{name}/last_state", h, shape)


# -- PyTorch --------------------------------------------------------------------------------------------

def _used_outputs(n) -> set:
    """Which parts of an fx call's result are read: 'y', 'h', 'c' (getitem chains on (y, (h, c)))."""
    import operator

    used = set()
    for u in n.users:
        if u.op == "call_function" and u.target is operator.getitem and u.args[1] == 0:
            used.add("y")
        elif u.op == "call_function" and u.target is operator.getitem and u.args[1] == 1:
            subs = list(u.users)  # none: the state was unpacked and dropped (``y, _ = lstm(x)``)
            if any(not (s.target is operator.getitem and s.args[1] in (0, 1)) for s in subs):
                used.update(("h", "c"))
            for s in subs:
                if s.target is operator.getitem and s.args[1] in (0, 1):
                    used.add("h" if s.args[1] == 0 else "c")
        else:
            used.update(("y", "h", "c"))
    return used


def torch_recurrent(cv, n, m, name: str, out_shape):
    b = cv.b
    kind = type(m).__name__
    if kind not in ("LSTM", "GRU"):
        b.unsupported(f"module {kind}")
    if not m.batch_first:
        b.unsupported(f"nn.{kind} with batch_first=False",
                      "construct it with batch_first=True: the PyTorch door feeds "
                      "batch-first (1, T, F) inputs")
    if m.bidirectional:
        b.unsupported(f"a bidirectional nn.{kind}",
                      "use a forward layer (TFLM has no bidirectional sequence op)")
    if getattr(m, "proj_size", 0):
        b.unsupported("nn.LSTM with proj_size", "TFLM runs the standard LSTM only")
    if not m.bias:
        b.unsupported(f"nn.{kind} with bias=False", "construct it with bias=True")
    x = as_sequence(b, name, cv.val(n.args[0]))
    state = n.args[1] if len(n.args) > 1 else n.kwargs.get("hx")
    hsz, layers = m.hidden_size, m.num_layers
    used = _used_outputs(n)
    if layers > 1 and used & {"h", "c"}:
        b.unsupported(f"the final state of a {layers}-layer nn.{kind}", "read the output sequence, or stack "
                      "single-layer modules")
    h0 = c0 = None
    if state is not None:
        if layers > 1:
            b.unsupported(f"an initial state of a {layers}-layer nn.{kind}", "stack single-layer modules")
        hv, cv_ = (state[0], state[1]) if kind == "LSTM" else (state, None)
        h0 = as_state(b, f"{name}/h0", cv.val(hv), hsz)
        c0 = as_state(b, f"{name}/c0", cv.val(cv_), hsz) if cv_ is not None else None
    y = x
    h = c = None
    for k in range(layers):
        lname = name if layers == 1 else f"{name}/l{k}"
        w_ih, w_hh = cv.np(getattr(m, f"weight_ih_l{k}")), cv.np(getattr(m, f"weight_hh_l{k}"))
        b_ih, b_hh = cv.np(getattr(m, f"bias_ih_l{k}")), cv.np(getattr(m, f"bias_hh_l{k}"))
        if kind == "LSTM" and h0 is None and "c" not in used:
            y = fused_lstm(b, lname, y, w_ih, w_hh, b_ih + b_hh)
            h = None
        elif kind == "LSTM":
            y, h, c = Unroll(b, lname).lstm(y, w_ih, w_hh, b_ih + b_hh, h0, c0)
        else:
            y, h = Unroll(b, lname).gru(y, w_ih, w_hh, b_ih, b_hh, h0, True)
    out_h = out_c = None
    if "h" in used:
        out_h = (last_step(b, f"{name}/h_n", y, (1, 1, hsz)) if h is None
                 else reshaped(b, f"{name}/h_n", h, (1, 1, hsz)))
    if "c" in used and kind == "LSTM":
        out_c = reshaped(b, f"{name}/c_n", c, (1, 1, hsz))
    return [y, [out_h, out_c]] if kind == "LSTM" else [y, out_h]


# -- ONNX -----------------------------------------------------------------------------------------------

def _onnx_state(cv, name: str, tensor: str, hsz: int, what: str):
    """None for a zero state (absent, or a constant of zeros), else a plain (1, H) value (a constant or a
    graph value)."""
    b = cv.b
    if not tensor:
        return None
    if tensor in cv.consts:
        v = np.asarray(cv.consts[tensor], np.float32)
        if v.size != hsz:
            b.unsupported(f"{what} of shape {list(v.shape)}", "give one direction's state for batch 1")
        if not v.any():
            return None
        from tinyopt.graph.torch_import import Val

        return Val(b.const(f"{name}/{what}", v.reshape(1, hsz)), "plain", (1, hsz))
    return as_state(b, f"{name}/{what}", cv.val(tensor), hsz)


def onnx_recurrent(cv, node, name: str, a: dict, ins: list[str]):
    b = cv.b
    op = node.op_type
    gates = 4 if op == "LSTM" else 3
    direction = a.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    if direction != "forward":
        b.unsupported(f"a {direction} {op}", "export a forward layer (TFLM has no reverse or bidirectional "
                      "sequence op; run two forward layers on reversed inputs and concatenate)")
    if a.get("activations") is not None and [s.decode() if isinstance(s, bytes) else s
                                             for s in a["activations"]] \
            != (["Sigmoid", "Tanh", "Tanh"] if op == "LSTM" else ["Sigmoid", "Tanh"]):
        b.unsupported(f"{op} with activations {a['activations']}", "use the default sigmoid/tanh activations")
    if a.get("clip") is not None or a.get("input_forget", 0):
        b.unsupported(f"{op} with clip or input_forget", "export the standard layer")
    time_major = int(a.get("layout", 0)) == 0
    if len(ins) > 4 and ins[4]:
        b.unsupported(f"{op} with sequence_lens", "export without sequence lengths (a fixed sequence length)")
    if op == "LSTM" and len(ins) > 7 and ins[7]:
        b.unsupported("LSTM with peephole weights (P)", "TFLM runs the standard LSTM only")
    x = cv.val(ins[0])
    if time_major:  # X [T, batch, I] (torch.onnx's export of a batch_first=False layer, and of nn.LSTM's)
        if len(x.shape) != 3 or x.shape[1] != 1:
            b.unsupported(f"a time-major {op} (layout=0) on X of shape {list(x.shape)}: "
                          f"{x.shape[1] if len(x.shape) == 3 else '?'} sequences at once",
                          "give one sequence (batch 1): X [T, 1, features]")
        from tinyopt.ops import transpose

        x = transpose.build(b, f"{name}/batch_major", x, [1, 0, 2], view=False)
    x = as_sequence(b, name, x)
    w = np.asarray(cv.const(ins[1], "W"), np.float32)[0]
    r = np.asarray(cv.const(ins[2], "R"), np.float32)[0]
    hsz = int(a.get("hidden_size", r.shape[-1]))
    bias = np.asarray(cv.const(ins[3], "B"), np.float32)[0] if len(ins) > 3 and ins[3] else \
        np.zeros(2 * gates * hsz, np.float32)
    wb, rb = bias[:gates * hsz], bias[gates * hsz:]
    blocks = lambda m: [m[k * hsz:(k + 1) * hsz] for k in range(gates)]  # noqa: E731
    outs = list(node.output) + [""] * (3 - len(node.output))
    used = {k for k, o in zip("yhc", outs) if o and (cv.uses.get(o) or o in cv.outputs)}
    h0 = _onnx_state(cv, name, ins[5] if len(ins) > 5 else "", hsz, "initial_h")
    if op == "LSTM":
        c0 = _onnx_state(cv, name, ins[6] if len(ins) > 6 else "", hsz, "initial_c")
        i, o, f, c_ = (0, 1, 2, 3)  # ONNX i o f c -> PyTorch i f g o
        w_t, r_t = (np.concatenate([blocks(m)[k] for k in (i, f, c_, o)]) for m in (w, r))
        b_t = np.concatenate([blocks(wb)[k] + blocks(rb)[k] for k in (i, f, c_, o)])
        if h0 is None and c0 is None and "c" not in used:
            y, h, c = fused_lstm(b, name, x, w_t, r_t, b_t), None, None
        else:
            y, h, c = Unroll(b, name).lstm(x, w_t, r_t, b_t, h0, c0)
    else:
        z, r_, hh = (0, 1, 2)  # ONNX z r h -> PyTorch r z n
        w_t, r_t, bw, br = (np.concatenate([blocks(m)[k] for k in (r_, z, hh)]) for m in (w, r, wb, rb))
        y, h = Unroll(b, name).gru(x, w_t, r_t, bw, br, h0, bool(a.get("linear_before_reset", 0)))
        c = None
    res = [None, None, None]
    if "y" in used:  # [T, directions, batch, H] time-major, else [batch, T, directions, H]: the same bytes
        from tinyopt.ops import reshape

        t = y.shape[1]
        res[0] = reshape.build(b, f"{name}/Y", y, (t, 1, 1, hsz)) if time_major and t > 1 else \
            reshaped(b, f"{name}/Y", y, (1, t, 1, hsz))
    if "h" in used:
        res[1] = (last_step(b, f"{name}/Y_h", y, (1, 1, hsz)) if h is None
                  else reshaped(b, f"{name}/Y_h", h, (1, 1, hsz)))
    if "c" in used:
        res[2] = reshaped(b, f"{name}/Y_c", c, (1, 1, hsz))
    return res[:len(node.output)]
