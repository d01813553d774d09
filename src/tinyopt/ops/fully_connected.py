"""FULLY_CONNECTED: ``y = x @ W.T + b`` with weight ``[O, I]``; the input is read as rows of I values.

Integer path as TFLM's ``FullyConnected`` (per tensor) / ``FullyConnectedPerChannel``: acc = Σ (x +
input_offset)(w + weights_offset) + bias, then requantization. Per-tensor, TFLM (and LiteRT) multiply the
input and weight scales in double (``GetQuantizedConvolutionMultipler``), as the per-channel path does; so do
we: a float32 product moves the multiplier by a few units, which flips a rounding tie now and then.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.errors import ModelFormatError, UnsupportedOpError
from tinyopt.graph.ir import Node
from tinyopt.ops import _common as c
from tinyopt.ops import _int16, _int16_c
from tinyopt.ops._record import CKernel, Op, OpData, Options, QuantRule, activation, register, scalar
from tinyopt.ops.conv_2d import bias_other_ops, has_bias, weighted_dtypes
from tinyopt.runtime.fixedpoint import quantize_multiplier, quantize_multipliers


@dataclass(kw_only=True)
class FullyConnectedData(c.ActivationRange, OpData):
    accum_depth: int            # inputs per output
    output_depth: int
    keep_num_dims: bool         # the output keeps the input's leading dimensions
    input_offset: int | None = None
    weights_offset: int | None = None
    output_offset: int | None = None
    output_multiplier: np.ndarray | None = None
    output_shift: np.ndarray | None = None
    per_channel: bool = False   # one scale per output row
    wide: bool = False          # 16x8 with an int64 bias: int64 accumulator and requantization


@register
class FullyConnected(Op):
    name = "FULLY_CONNECTED"
    builtin = 9
    options = Options(8, (activation("activation", 0), scalar("keep_num_dims", 2, "bool", False)))
    arity = (2, 3)
    optional_inputs = (2,)
    param_inputs = (1, 2)
    weight_axis = 0
    bias_input = 2
    quant = QuantRule(int16=True)  # TFLM's 16x8 kernel: int16 activations, int8 weights, int64 bias
    fused_activation = True
    c = CKernel("fully_connected", "fc_params")
    onnx = ("Gemm", "MatMul")
    torch_modules = ("Linear",)
    spec_layers = {"dense": frozenset({"units", "use_bias"})}
    spec_aliases = {"linear": "dense", "fc": "dense"}

    def read_tflite(self, r, ins, out):
        r.ranks(ins, (None, 2, 1))
        if r.get(1, "i8"):  # weights_format
            raise UnsupportedOpError("shuffled FULLY_CONNECTED weights are not supported", path=r.source,
                                     where=r.where, fix="convert with default weights")
        attrs = super().read_tflite(r, ins, out)
        r.bias(ins, ins[1].shape[0])
        return attrs

    def version(self, graph, node):
        ins = graph.node_inputs(node)
        if node.attrs.get("keep_num_dims"):
            return 5
        return 4 if ins[0].dtype == "int8" else (3 if ins[1].dtype == "int8" else 1)

    def check_dtypes(self, ins, out):
        return weighted_dtypes(ins, out)

    def shape(self, graph, node, fail):
        x, w = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
        o, i = w.shape
        if x.size % i:
            fail(f"input of {x.size} elements is not a multiple of the weight's {i} inputs",
                 "match the layer's input size to the previous layer's output")
        if node.attrs.get("keep_num_dims"):
            return (*x.shape[:-1], o)
        return (x.size // i, o)

    latency_class = "fc"

    def param_formula(self, graph, node):
        o, i = graph.tensors[node.inputs[1]].shape
        b = has_bias(node)
        return f"({c.n(i)}{'+1' if b else ''})×{c.n(o)} = {c.n((i + b) * o)}"

    def mac_formula(self, graph, node):
        out = graph.tensors[node.outputs[0]]
        _, i = graph.tensors[node.inputs[1]].shape
        return f"{c.n(out.size)} outputs × {c.n(i)} inputs = {c.n(out.size * i)}"

    def scale_channels(self, g, node, before, keep, last):
        o, cin = before.tensors[node.inputs[1]].shape
        rows = before.tensors[node.inputs[0]].size // cin
        o2 = o if last else max(1, round(o * keep))
        c.resize(g.tensors[node.inputs[1]], (o2, g.tensors[node.inputs[0]].size // rows))
        if has_bias(node):
            c.resize(g.tensors[node.inputs[2]], (o2,))
        return True

    def macs(self, graph, node):
        _, cin = graph.tensors[node.inputs[1]].shape
        return graph.tensors[node.outputs[0]].size * cin

    def other_ops(self, graph, node):
        return bias_other_ops(graph, node)

    def prepare(self, graph, node, is_int):
        w = graph.tensors[node.inputs[1]]
        if len(w.shape) != 2:
            c.fail(graph, node, f"weight must be 2-D [out, in], got {list(w.shape)}", "re-export the model")
        p = dict(accum_depth=int(w.shape[1]), output_depth=int(w.shape[0]),
                 keep_num_dims=bool(node.attrs.get("keep_num_dims", False)),
                 **c.output_range(graph, node, is_int))
        if not is_int:
            return FullyConnectedData(dtype="float32", **p)
        in_s, in_z = c.scalar_qparams(graph, node, node.inputs[0])
        out_s, out_z = c.scalar_qparams(graph, node, node.outputs[0])
        w_s, w_z = c.tensor_qparams(graph, node, node.inputs[1], per_channel=True)
        if w_s.size > 1:
            if w_s.size != w.shape[0]:
                c.fail(graph, node, f"weight has {w_s.size} scales for {w.shape[0]} outputs",
                       "give one scale per output row or one per tensor")
            mult, shift = quantize_multipliers(np.float64(in_s) * w_s.astype(np.float64) / np.float64(out_s))
        else:
            m, s = quantize_multiplier(float(in_s) * float(w_s[0]) / float(out_s))
            mult, shift = np.array([m], np.int32), np.array([s], np.int32)
        x = graph.tensors[node.inputs[0]]
        wide = _int16.bias_kind(graph, node, ("int64", "int32")) if x.dtype == "int16" else False
        return FullyConnectedData(dtype="int16" if x.dtype == "int16" else "int8", **p, input_offset=-in_z,
                                  weights_offset=-int(w_z[0]), output_offset=out_z, output_multiplier=mult,
                                  output_shift=shift, per_channel=bool(w_s.size > 1), wide=wide)

    def eval(self, p: FullyConnectedData, inputs):
        x, w = inputs[0], inputs[1]
        bias = inputs[2] if len(inputs) > 2 and inputs[2] is not None else None
        depth = p.accum_depth
        lead = x.shape[:-1] if p.keep_num_dims else (x.shape[0],)
        x2 = x.reshape(-1, depth)
        if p.dtype == "int16":  # |(x + off)(w + off)| < 2^24: the float64 sums are exact
            xs = (x2.astype(np.int64) + p.input_offset).astype(np.float64)
            ws = (w.astype(np.int64) + p.weights_offset).astype(np.float64)
            acc = np.matmul(xs, ws.T).astype(np.int64)
            if bias is not None:
                acc += bias.astype(np.int64)
            y = _int16.requantize_acc(acc, p)
        elif p.dtype == "int8":
            xs = (x2.astype(np.int64) + p.input_offset).astype(np.float64)
            ws = (w.astype(np.int64) + p.weights_offset).astype(np.float64)
            acc = np.matmul(xs, ws.T).astype(np.int64)
            if bias is not None:
                acc += bias.astype(np.int64)
            y = c.requantize(acc, p)
        else:
            acc = np.matmul(x2.astype(np.float32), w.astype(np.float32).T)
            if bias is not None:
                acc = acc + bias.astype(np.float32)
            y = c.clamp_float(acc, p)
        return y.reshape(*lead, w.shape[0])

    def pack_c(self, graph, index, node):
        if _int16_c.is_int16(graph, node):  # the 16x8 kernel (kernels/fully_connected_int16.c)
            return _int16_c.pack_fully_connected(graph, index, node, self.prepare(graph, node, True))
        from tinyopt.export.c import compressed
        from tinyopt.export.c import params as cp

        if (packed := compressed.pack(graph, index, node)) is not None:  # weights kept compressed (issue #17)
            return packed

        x, w = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
        y = graph.tensors[node.outputs[0]]
        cp.check_int8(graph, index, node, [x, y, w])
        q = self.prepare(graph, node, True)
        if q.weights_offset != 0:
            raise UnsupportedOpError("weights with a non-zero zero point", path=graph.source,
                                     where=cp.where(index, node),
                                     fix="quantize weights symmetrically (int8 spec)")
        o, depth = w.shape
        wq = np.asarray(w.data, dtype=np.int64)
        bias = cp.bias_of(graph, node, o) + q.input_offset * wq.sum(axis=1)
        ints = dict(batches=x.size // depth, accum_depth=depth, out_c=o,
                    small_acc=cp.small_accumulator(bias, np.abs(wq).sum(axis=1), q.output_shift),
                    output_offset=q.output_offset, output_activation_min=q.output_activation_min,
                    output_activation_max=q.output_activation_max)
        arrays = {"weights": ("int8_t", wq.astype(np.int8)),
                  "bias": ("int32_t", cp.int32_or_fail(bias, graph, index, node)),
                  "multiplier": ("int32_t", cp.per_channel(q.output_multiplier, o)),
                  "shift": ("int32_t", cp.per_channel(q.output_shift, o))}
        grouped = o >= GROUP and self._fc6_linked(graph)
        # the M4 loops' constants: a dead filter's channel (all weights zero) outputs a constant
        m4_bias, m4_mult, m4_shift, m4_small, constants = cp.constant_channels(
            wq, arrays["bias"][1], arrays["multiplier"][1], arrays["shift"][1], q.output_offset)
        twins = pack_twin_groups(wq, m4_bias, m4_mult, m4_shift, q.output_offset, m4_small,
                                 ints["output_activation_min"], ints["output_activation_max"], grouped,
                                 constants)
        if twins is None:  # the portable loop on every build
            return cp.OpParams("fully_connected", ints, arrays)
        # the M4 loops on twin words and the widened input (kernels/fully_connected.c)
        arrays["rq"] = ("int32_t", twins[1])
        arrays["wpairs"] = ("int32_t", twins[0])
        return cp.OpParams("fully_connected", ints, arrays, optional=("rq", "wpairs"), signature="rows_col",
                           col_bytes=8 * (depth // 4) + 4, struct="fc_params",
                           entry="fully_connected_fc6" if grouped else "fully_connected_pairs",
                           files=("fully_connected", *(("fully_connected_fc6",) if grouped else ())),
                           col_free_extra=float(col_free_extra(ints["batches"], depth, o, grouped)))

    def _fc6_linked(self, graph) -> bool:
        """Whether the library carries the 6-filter loop: a layer of FC6_MIN_MACS or more runs on the int8
        twin words (not compressed, int8 input, whole blocks). Every layer of 6 filters or more then takes
        it; otherwise they all run pair by pair and the loop's code stays out."""
        from tinyopt.export.c import compressed

        return any(n.op == self.name and graph.tensors[n.inputs[0]].dtype == "int8"
                   and graph.tensors[n.inputs[1]].shape[1] % 4 == 0 and self.macs(graph, n) >= FC6_MIN_MACS
                   and compressed.pack(graph, j, n) is None for j, n in enumerate(graph.nodes))

    # -- doors
    def from_onnx(self, cv, node, name, a, ins):
        if node.op_type == "MatMul":
            return _onnx_matmul(cv, name, ins)
        x = cv.val(ins[0])
        if a.get("transA", 0):
            cv.b.unsupported("Gemm with transA=1")
        w = cv.const(ins[1], "weight").astype(np.float32)
        w = (w if a.get("transB", 0) else w.T) * np.float32(a.get("alpha", 1.0))
        bias = None
        if len(ins) > 2 and ins[2]:
            cst = cv.const(ins[2], "bias").astype(np.float32) * np.float32(a.get("beta", 1.0))
            if cst.size not in (1, w.shape[0]):
                cv.b.unsupported(f"Gemm with a bias of shape {list(cst.shape)} "
                                 "(one value per output expected)")
            bias = np.broadcast_to(cst.reshape(-1), (w.shape[0],))
        return build(cv.b, name, x, w, bias)

    def from_torch_module(self, cv, n, m, name, out_shape):
        return build(cv.b, name, cv.val(n.args[0]), cv.np(m.weight), cv.np(m.bias))

    def from_spec(self, sb, kind, layer, x, lname, fused):
        units = sb.positive_int(layer, "units")
        w = sb.const(f"{lname}/weight", (units, x.shape[-1]))
        if len(x.shape) > 2:
            sb.fail(f"dense needs a flat input, got shape {list(x.shape[1:])}",
                    "add '{type: flatten}' or '{type: global_avgpool}' before it")
        ins = [x.name, w, sb.const(f"{lname}/bias", (units,)) if layer.get("use_bias", True) else ""]
        return Node(lname, self.name, ins, [sb.out(lname)], {"activation": fused})


GROUP = 6  # filters per pass of the Cortex-M4 loop (tinyopt_fc6q in kernels/fully_connected.c)
# smaller layers run pair by pair (tinyopt_fc2q), without the 6-filter loop's 3.5 KB of code
FC6_MIN_MACS = 4096


def col_free_extra(batches: int, depth: int, out_c: int, grouped: bool) -> int:
    """Cortex-M4 instructions a dense layer on twin words adds when it reads its int8 input directly (col
    NULL: tinyopt_fc6b / tinyopt_fc2b) instead of widening it into col first; negative when the widening
    costs more (few filters). Counted from the loops: per block and pass (a group of 6 or a pair) 2
    SXTB16 for one load (+1), per extra run of 16 pairs of blocks in a group +1 (the widened loop's
    sentinel load is also its next lanes), minus the widening (16 per 4 blocks, 6 per block left); the
    calls' difference (4 per grouped call; 4 with pairs, 20 without; 3 more per pair: the library with
    col always, TINYOPT_FC_COL_ALWAYS, has no NULL tests) fitted to qemu's counts, which the formula then
    matches within two 5-instruction ticks per input vector.

    >>> col_free_extra(1, 640, 128, True)  # 160 blocks x 22 passes + 21 x 4 - 640 - 4 - 4 + 3
    2959
    """
    blocks = depth // 4
    groups = out_c // GROUP if grouped else 0
    pairs = (out_c - GROUP * groups + 1) // 2
    runs = -(-(blocks // 2) // 16)  # passes of the 16-pair unrolling per group
    widen = 16 * (blocks // 4) + 6 * (blocks % 4)
    calls = 4 * (groups > 0) + (4 if pairs else 20) - 3 * pairs
    per_vector = blocks * (groups + pairs) + groups * max(runs - 1, 0) - widen - calls
    return batches * per_vector


def pack_twin_groups(w: np.ndarray, bias, multipliers, shifts, output_offset: int, small: int, act_min: int,
                     act_max: int, grouped: bool = True, constants=None):
    """(twin words, requantization words) of the dense layer's Cortex-M4 loops, or None (portable C).

    Filters [O][K] (K a multiple of 4): with ``grouped``, groups of 6 (3 twin pairs), each group's words
    in ``pack_twins`` order and 24 requantization words: the pairs' starting accumulators
    [256 bA + bB, bB] x 3 (mod 2^32), then [m, r, s] per channel (``requant_words``). The filters left
    (all of them without ``grouped``) follow pair by pair (an odd last one with a zero twin): each pair's
    words in turn, then the pairs' starting accumulators and [m, r, s] for the real filters only. None
    unless the clamp is all of int8.

    >>> ones = np.ones((2, 4), np.int64)
    >>> words, rq = pack_twin_groups(ones, [3, -1], [1 << 30] * 2, [-1] * 2, 0, 1, -128, 127)
    >>> len(words), rq.tolist()  # one pair: 1 block x 2 words; 256 * 3 - 1, -1, then [m, r, s] x 2
    (2, [767, -1, 1073741824, 1, 1, 1073741824, 1, 1])
    """
    from tinyopt.export.c import params as cp

    w = np.asarray(w, np.int64)
    o, k = w.shape
    bias = np.asarray(bias, np.int64)
    words = cp.requant_words(bias, multipliers, shifts, output_offset, small, constants)
    grouped_o = o - o % GROUP if grouped else 0
    wp = np.concatenate([w, np.zeros((o % 2, k), np.int64)])
    bp = np.concatenate([bias, np.zeros(o % 2, np.int64)])
    if words is None or (act_min, act_max) != (-128, 127) or k % 4 or not cp.twins_fit(wp, bp):
        return None
    ba, bb = bp[0::2], bp[1::2]
    start = np.stack([((ba * 256 + bb + 2**31) % 2**32) - 2**31, bb], axis=1).reshape(-1)
    parts_w, parts_rq = [], []
    if grouped_o:
        parts_w.append(cp.pack_twins(wp[:grouped_o], GROUP // 2))
        mrs = words[:grouped_o].reshape(-1, 3 * GROUP)
        parts_rq.append(np.concatenate([start[:grouped_o].reshape(-1, GROUP), mrs], axis=1))
    if grouped_o < o:
        parts_w += [cp.pack_twins(wp[j:j + 2], 1) for j in range(grouped_o, len(wp), 2)]
        parts_rq.append(np.concatenate([start[grouped_o:], words[grouped_o:].reshape(-1)]))
    rq = np.concatenate([r.reshape(-1) for r in parts_rq])
    return np.concatenate(parts_w), rq


def build(b, name: str, x, weight: np.ndarray, bias: np.ndarray | None):
    """A dense layer on a flat framework value; a flatten's permutation moves into the weight columns."""
    from tinyopt.graph.torch_import import batch_at, ordered

    weight = np.asarray(weight, dtype=np.float32)
    if len(x.shape) == 3 and x.layout == "ncl":  # (N, T, features) made channels-first by a reshape: back
        from tinyopt.ops.reshape import framework_order

        x = framework_order(b, f"{name}/sequence", x)
    if len(x.shape) > 2 and ordered(x.layout) and not x.permuted and batch_at(x.layout) != len(x.shape) - 1:
        # a sequence (N, T, features) in the framework's order: the dense layer on its last axis, each
        # leading position a row (TFLite's keep_num_dims), as nn.Linear and ONNX MatMul compute it
        if x.shape[-1] != weight.shape[1]:
            raise ModelFormatError(f"weight expects {weight.shape[1]} inputs, input has {x.shape[-1]}",
                                   path=b.g.source, where=b.where, fix="re-export the model")
        ins = [x.name, b.const(f"{name}/weight", weight),
               b.const(f"{name}/bias", bias) if bias is not None else ""]
        return b.emit(name, FullyConnected.name, ins, {"activation": "NONE", "keep_num_dims": True}, x.layout)
    if x.layout != "plain" or len(x.shape) != 2:
        b.unsupported(f"a dense layer on a {len(x.shape)}-D {x.layout} input {list(x.shape)}",
                      "flatten the input to (N, features) before the dense layer, or give it a "
                      "(N, T, features) sequence")
    if x.shape[1] != weight.shape[1]:
        raise ModelFormatError(f"weight expects {weight.shape[1]} inputs, input has {x.shape[1]}",
                               path=b.g.source, where=b.where, fix="re-export the model")
    if x.permuted:
        weight = weight[:, x.perm]  # graph column i holds framework element perm[i]
    ins = [x.name, b.const(f"{name}/weight", weight),
           b.const(f"{name}/bias", bias) if bias is not None else ""]
    return b.emit(name, FullyConnected.name, ins, {"activation": "NONE", "keep_num_dims": False}, "plain")


def _onnx_matmul(cv, name: str, ins: list[str]):
    """ONNX MatMul: a flat activation times a constant 2-D weight is a dense layer; any other product (two
    activations, a constant on the left, a batched activation) is a BATCH_MATMUL."""
    from tinyopt.ops import batch_matmul

    lhs, rhs = (cv.consts[t] if t in cv.consts else cv.val(t) for t in ins[:2])
    lhs_const, rhs_const = isinstance(lhs, np.ndarray), isinstance(rhs, np.ndarray)
    if rhs_const and not lhs_const and rhs.ndim == 2 and len(lhs.shape) == 2:
        return build(cv.b, name, lhs, rhs.T, None)
    if lhs_const and rhs_const:
        cv.b.unsupported("MatMul of two constants", "fold constant products before exporting")
    return batch_matmul.build(cv.b, name, lhs, rhs)
