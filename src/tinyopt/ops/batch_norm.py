"""BATCH_NORM: ``(x - mean) / sqrt(var + epsilon) * gamma + beta`` per channel (last axis).

Not a TFLite operator: float architectures carry it until ``passes.fold_batchnorm`` folds it into the
layer before it, which ``convert`` requires.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt.graph.ir import Node
from tinyopt.ops import _common as c
from tinyopt.ops._record import Op, OpData, register


@dataclass(kw_only=True)
class BatchNormData(OpData):
    epsilon: float


@register
class BatchNorm(Op):
    name = "BATCH_NORM"
    param_inputs = (1, 2, 3, 4)
    folds_into_weights = True
    ops_per_element = 2  # scale and shift, the folded form
    quant = None
    tflm = False
    onnx = ("BatchNormalization",)
    torch_modules = ("BatchNorm1d", "BatchNorm2d")
    spec_layers = {"batchnorm": frozenset({"epsilon"})}
    spec_aliases = {"bn": "batchnorm", "batch_norm": "batchnorm"}
    missing_fix = ("fold batch norm into the previous conv first (tinyopt.graph.passes.fold_batchnorm; "
                   "tinyopt convert does)")

    def param_formula(self, graph, node):
        ch = graph.tensors[node.inputs[1]].size
        return f"4×{c.n(ch)} (gamma, beta, mean, var) = {c.n(4 * ch)}"

    def scale_channels(self, g, node, before, keep, last):
        for name in node.inputs[1:]:
            c.resize(g.tensors[name], (g.tensors[node.inputs[0]].shape[-1],))
        return True

    def lower(self, graph, node):
        """x * s + t per channel (s = gamma / sqrt(var + eps), t = beta - mean * s): MUL then ADD, what the
        TFLite converter emits for a batch norm that follows no convolution."""
        from tinyopt.graph.ir import Tensor
        from tinyopt.ops.add import Add
        from tinyopt.ops.mul import Mul

        gamma, beta, mean, var = (graph.tensors[t].data for t in node.inputs[1:5])
        if any(a is None for a in (gamma, beta, mean, var)):
            return None
        s = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64)
                                               + float(node.attrs.get("epsilon", 1e-5)))
        t = beta.astype(np.float64) - mean.astype(np.float64) * s
        names = []
        for what, v in (("scale", s), ("shift", t)):
            name = graph.unique_name(f"{node.name}/{what}")
            graph.add_tensor(Tensor(name, v.shape, data=v.astype(np.float32)))
            names.append(name)
        mid = graph.unique_name(f"{node.name}/scaled")
        graph.add_tensor(Tensor(mid, graph.tensors[node.outputs[0]].shape))
        return [Node(mid, Mul.name, [node.inputs[0], names[0]], [mid], {"activation": "NONE"}),
                Node(node.name, Add.name, [mid, names[1]], list(node.outputs), {"activation": "NONE"})]

    def prepare(self, graph, node, is_int):
        if is_int:
            c.unsupported(graph, node, "BATCH_NORM has no integer kernel",
                          "fold batch norm into the previous conv "
                          "(tinyopt.graph.passes.fold_batchnorm) before quantizing")
        return BatchNormData(dtype="float32", epsilon=float(node.attrs.get("epsilon", 1e-5)))

    def eval(self, p: BatchNormData, inputs):
        x, gamma, beta, mean, var = (np.asarray(a, dtype=np.float32) for a in inputs[:5])
        inv = gamma / np.sqrt(var + np.float32(p.epsilon))
        return ((x - mean) * inv + beta).astype(np.float32)

    def from_onnx(self, cv, node, name, a, ins):
        if a.get("training_mode", 0):
            cv.b.unsupported("BatchNormalization in training mode", "export the model in eval mode")
        gamma, beta, mean, var = (cv.const(t, "batch-norm parameter") for t in ins[1:5])
        return build(cv.b, name, cv.val(ins[0]), gamma, beta, mean, var, a.get("epsilon", 1e-5))

    def from_torch_module(self, cv, n, m, name, out_shape):
        if m.running_mean is None:
            cv.b.unsupported("batch norm without running statistics", "use track_running_stats=True")
        ch = m.num_features
        gamma = cv.np(m.weight) if m.weight is not None else np.ones(ch, np.float32)
        beta = cv.np(m.bias) if m.bias is not None else np.zeros(ch, np.float32)
        return build(cv.b, name, cv.val(n.args[0]), gamma, beta, cv.np(m.running_mean), cv.np(m.running_var),
                     m.eps)

    def from_spec(self, sb, kind, layer, x, lname, fused):
        ch = x.shape[-1]
        ins = [x.name] + [sb.const(f"{lname}/{p}", (ch,)) for p in ("gamma", "beta", "mean", "var")]
        return Node(lname, self.name, ins, [sb.out(lname)], {"epsilon": float(layer.get("epsilon", 1e-3))})


def build(b, name: str, x, gamma, beta, mean, var, eps: float):
    arrays = [np.asarray(a, dtype=np.float32) for a in (gamma, beta, mean, var)]
    if x.layout == "plain" and len(x.shape) != 2:
        b.unsupported(f"batch norm over axis 1 of a plain {len(x.shape)}-D tensor")
    if x.permuted:
        arrays = [a[x.perm] for a in arrays]
    ins = [x.name] + [b.const(f"{name}/{k}", a) for k, a in zip(("gamma", "beta", "mean", "var"), arrays)]
    return b.emit(name, BatchNorm.name, ins, {"epsilon": float(eps)}, x.layout, x.perm)
