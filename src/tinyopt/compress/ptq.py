"""Post-training quantization (static and dynamic) and bias correction, simulated on PyTorch modules.

``quantize_static(model, calib, config)`` returns a copy that computes what the int8 network will:

1. the model is traced with torch.fx; a ``FakeQuantize`` (observer + STE rounding) is inserted after
   every node whose output is a new int8 tensor in TFLM: the graph input, CONV/FC outputs, ADD, CONCAT,
   activations. Nodes that TFLM fuses into their producer get no observer of their own (a conv whose
   only user is BatchNorm or ReLU, a BatchNorm followed by ReLU, an add followed by ReLU): their range
   is the range after the fused activation. Shape-only ops and pools share their input's parameters.
2. every Conv/Linear weight gets a ``WeightFakeQuantize`` parametrization: int8 symmetric per output
   channel, narrow range [-127, 127], zero point 0. A conv followed by BatchNorm is quantized as the
   folded weight ``w * gamma / sqrt(var + eps)`` (TFLM never sees the BatchNorm).
3. ``calib`` batches run through the model with observers on; then rounding is switched on.

Where the converter finds the numbers (all plain Python; ``run_recipe`` keeps them in its state)::

    qconfig = quant_params(model)        # read from the prepared model's own fake-quantizers
    qconfig["activations"][node_name]  -> {"scale", "zero_point", "bits", "quant_min", "quant_max",
                                           "min", "max", "fq_module"}   # node_name: torch.fx node name
                                           # of the ORIGINAL model's trace, the name from_torch gives
                                           # the tensor; "x" (the placeholder) is the graph input
    qconfig["weights"][module_name]    -> {"scale": [per out channel], "zero_point": [0...], "axis": 0,
                                           "bits", "quant_min", "quant_max", "folded_bn": name | None}
                                           # ternary/binary/float16 layers: {"format", "folded_bn"}
    qconfig["scheme"] == "tflm-int8" when weights and activations are 8-bit, else "simulated".

Weight scales of a conv with ``folded_bn`` are those of the folded weight. Biases are not rounded in
simulation: TFLM stores them as int32 with scale ``s_in * s_w`` (rounding error half an accumulator step,
far below one output step), so the converter quantizes them from the float (folded) bias and these two
scales.
``strip(model)`` gives a float GraphModule with the observers removed and the weights replaced by their
rounded values (exactly on the grid), which is what ``tinyopt.graph.torch_import.from_torch`` reads.
"""

from __future__ import annotations

import copy
import operator
from dataclasses import InitVar, dataclass

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from tinyopt.compress import qmath
from tinyopt.compress.configs import old_names, renamed
from tinyopt.compress.fake_quant import FakeQuantize, WeightFakeQuantize
from tinyopt.compress.lowbit import WEIGHT_FORMATS, weight_format, weight_quantizer
from tinyopt.compress.observers import make_observer
from tinyopt.compress.prune import Mask, check_finite, make_permanent_, prunable_layers
from tinyopt.errors import DataError, UnsupportedOpError

SHARES_QPARAMS = (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d,
                  nn.AdaptiveAvgPool2d, nn.Flatten, nn.Dropout, nn.Identity, nn.ZeroPad2d, nn.ConstantPad1d,
                  nn.ConstantPad2d, nn.Unflatten)
SHARES_FUNCS = {torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze, F.dropout, F.max_pool1d,
                F.max_pool2d, F.avg_pool1d, F.avg_pool2d, F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.pad,
                getattr}
SHARES_METHODS = {"view", "reshape", "flatten", "squeeze", "unsqueeze", "contiguous", "permute", "size"}
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.Hardtanh)
ACT_FUNCS = {F.relu, torch.relu, F.relu6, F.hardtanh}
BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
FUSES_ACT = (nn.Conv1d, nn.Conv2d, nn.Linear, *BATCHNORMS)
FUSES_ACT_FUNCS = {operator.add, torch.add, operator.iadd}


@dataclass
class QuantConfig:
    """What to quantize and how. ``weight_bits``: 2-8, 16, 'float16', 'ternary', 'binary' (or a
    ``{layer: bits}`` dict for mixed precision); ``activation_bits=None`` keeps activations in float.
    (``act_bits``, the old keyword, still works with a DeprecationWarning.)"""

    weight_bits: object = 8
    activation_bits: int | None = 8
    observer: str = "minmax"
    per_channel: bool = True
    observer_kwargs: dict | None = None
    act_bits: InitVar[int | None] = None

    def __post_init__(self, act_bits=None) -> None:
        if act_bits is not None:
            renamed("act_bits", "activation_bits", "QuantConfig")
            self.activation_bits = act_bits


old_names(QuantConfig, {"act_bits": "activation_bits"})


def _check_config(cfg: QuantConfig, layers) -> dict:
    per_layer = (cfg.weight_bits if isinstance(cfg.weight_bits, dict)
                 else dict.fromkeys(layers, cfg.weight_bits))
    for name, b in per_layer.items():
        if b not in WEIGHT_FORMATS:
            qmath.check_bits(b, where=name)
    if cfg.activation_bits is not None:
        qmath.check_bits(cfg.activation_bits, where="activations")
    return per_layer


def _kind(n: torch.fx.Node, mods: dict) -> str:
    """'share' (keeps input qparams), 'act' (fusable activation), 'bn', 'fuses' (can absorb an
    activation), 'other' (needs its own observer), 'none' (not a tensor op)."""
    if n.op == "call_module":
        m = mods[n.target]
        if isinstance(m, SHARES_QPARAMS):
            return "share"
        if isinstance(m, ACTIVATIONS):
            return "act"
        if isinstance(m, BATCHNORMS):
            return "bn"
        if isinstance(m, FUSES_ACT):
            return "fuses"
        return "other"
    if n.op == "call_function":
        if n.target in SHARES_FUNCS:
            return "share"
        if n.target in ACT_FUNCS:
            return "act"
        return "fuses" if n.target in FUSES_ACT_FUNCS else "other"
    if n.op == "call_method":
        if n.target in SHARES_METHODS:
            return "share"
        return "act" if n.target in ("relu", "relu_") else "other"
    return "placeholder" if n.op == "placeholder" else "none"


def _needs_observer(n: torch.fx.Node, mods: dict) -> bool:
    k = _kind(n, mods)
    if k in ("share", "none"):
        return False
    users = list(n.users)
    if len(users) == 1:
        follower = _kind(users[0], mods)
        if k in ("fuses", "bn") and follower == "act":
            return False  # TFLM fuses the activation into this op
        if k == "fuses" and follower == "bn" and n.op == "call_module":
            return False  # BatchNorm is folded into the conv
    return True


def _conv_bn_pairs(gm: torch.fx.GraphModule) -> dict[str, str]:
    mods = dict(gm.named_modules())
    pairs = {}
    for n in gm.graph.nodes:
        if n.op == "call_module" and isinstance(mods[n.target], BATCHNORMS):
            src = n.args[0]
            if (isinstance(src, torch.fx.Node) and src.op == "call_module" and len(src.users) == 1
                    and isinstance(mods[src.target], (nn.Conv1d, nn.Conv2d, nn.Linear))):
                pairs[src.target] = n.target
    return pairs


def _bn_fold_factor(bn: nn.Module):
    return lambda: bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)


class _Tracer(torch.fx.Tracer):
    """Keeps every BatchNorm (including QAT's frozen subclasses) and our fake-quant modules as leaves."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, (*BATCHNORMS, FakeQuantize)) or super().is_leaf_module(m, qualname)


def trace(model: nn.Module) -> torch.fx.GraphModule:
    try:
        graph = _Tracer().trace(model)
        return torch.fx.GraphModule(model, graph, type(model).__name__)
    except Exception as e:  # fx raises many exception types for untraceable Python
        raise UnsupportedOpError("torch.fx cannot trace the model: "
                                 f"{str(e).splitlines()[0] if str(e) else e!r}",
                                 where=type(model).__name__,
                                 fix="remove data-dependent control flow from forward()") from None


def prepare(model: nn.Module, config: QuantConfig | None = None) -> torch.fx.GraphModule:
    """A traced copy of ``model`` with weight quantizers and activation observers in place (observing,
    not yet rounding). The original model is not changed."""
    cfg = config or QuantConfig()
    check_finite(model)
    gm = trace(copy.deepcopy(model))
    gm.input_shape = getattr(model, "input_shape", None)
    layers = prunable_layers(gm)
    per_layer = _check_config(cfg, layers)
    pairs = _conv_bn_pairs(gm)
    mods = dict(gm.named_modules())
    for name, bits in per_layer.items():
        m = layers[name]
        q = weight_quantizer(bits, per_channel=cfg.per_channel)
        if isinstance(q, WeightFakeQuantize) and name in pairs:
            q.fold = _bn_fold_factor(mods[pairs[name]])
        parametrize.register_parametrization(m, "weight", q)
    if cfg.activation_bits is not None:
        count = 0
        for n in list(gm.graph.nodes):
            if not _needs_observer(n, mods):
                continue
            fq = FakeQuantize(make_observer(cfg.observer, bits=cfg.activation_bits,
                                            **(cfg.observer_kwargs or {})))
            fq_name = f"act_fq_{count}"
            count += 1
            gm.add_submodule(fq_name, fq)
            with gm.graph.inserting_after(n):
                new = gm.graph.call_module(fq_name, (n,))
            n.replace_all_uses_with(new, delete_user_cb=lambda u, new=new: u is not new)
        gm.graph.lint()
        gm.recompile()
    return gm


def _fq_nodes(gm: nn.Module) -> dict[str, str]:
    """Observed node name -> name of its activation fake-quantizer, read from the graph itself (each
    quantizer is a call_module node whose one argument is the node it observes)."""
    graph = getattr(gm, "graph", None)
    if graph is None:
        return {}
    out = {}
    for n in graph.nodes:
        if n.op == "call_module" and isinstance(gm.get_submodule(n.target), FakeQuantize) and n.args:
            out[n.args[0].name] = n.target
    return out


def fake_quants(gm: nn.Module) -> dict[str, FakeQuantize]:
    """Activation fake-quantizers by the name of the node they observe."""
    return {node: gm.get_submodule(fq) for node, fq in _fq_nodes(gm).items()}


def weight_quantizers(model: nn.Module) -> dict[str, nn.Module]:
    """Conv/Linear layer name -> the quantizer parametrizing its weight (pruning masks are not quantizers)."""
    out = {}
    for name, m in prunable_layers(model).items():
        if parametrize.is_parametrized(m, "weight"):
            q = next((p for p in m.parametrizations.weight if not isinstance(p, Mask)), None)
            if q is not None:
                out[name] = q
    return out


def is_prepared(model: nn.Module) -> bool:
    """True for a model made by ``prepare`` / ``quantize_static`` / ``quantize_dynamic`` / QAT: a traced
    GraphModule holding fake-quantizers (the converter then uses their scales as they are)."""
    return isinstance(model, torch.fx.GraphModule) and bool(_fq_nodes(model) or weight_quantizers(model))


def set_mode(gm: nn.Module, observing: bool, quantizing: bool) -> None:
    for fq in fake_quants(gm).values():
        fq.observing, fq.quantizing = observing, quantizing


def calibrate(gm: nn.Module, calib, max_batches: int | None = None) -> nn.Module:
    """Run calibration batches (tensors, or ``(x, y)`` pairs) with observers on, then switch to rounding."""
    set_mode(gm, True, False)
    for fq in fake_quants(gm).values():
        fq.refit_each_batch = False
    gm.eval()
    seen = 0
    with torch.no_grad():
        for b in calib:
            if max_batches is not None and seen >= max_batches:
                break
            x = b[0] if isinstance(b, (tuple, list)) else b
            if len(x) == 0:
                continue
            gm(torch.as_tensor(x, dtype=torch.float32))
            seen += 1
    if seen == 0:
        raise DataError("empty calibration set", where="ptq",
                        fix="give at least one non-empty calibration batch")
    for fq in fake_quants(gm).values():
        fq.observer.refit()
        fq.refit_each_batch = True
    set_mode(gm, False, True)
    return gm


def quantize_static(model: nn.Module, calib, config: QuantConfig | None = None,
                    bias_correction: bool = False) -> torch.fx.GraphModule:
    """Static PTQ: weights and activations quantized, activation ranges from calibration data."""
    gm = prepare(model, config)
    if bias_correction:
        calib = list(calib)
        correct_bias_(gm, calib)
    return calibrate(gm, calib)


def quantize_dynamic(model: nn.Module, config: QuantConfig | None = None) -> torch.fx.GraphModule:
    """Dynamic PTQ: weights quantized ahead of time; each Conv/Linear input is quantized per tensor
    with the range of the values it actually receives (no calibration; costs a min/max per call)."""
    cfg = copy.copy(config or QuantConfig())
    act_bits = cfg.activation_bits
    cfg.activation_bits = None
    gm = prepare(model, cfg)
    if act_bits is not None:
        qmin, qmax = qmath.qrange(act_bits)

        def hook(_m, args):
            x = args[0]
            s, z = qmath.choose_qparams(x.detach().min(), x.detach().max(), act_bits)
            return (qmath.fake_quantize(x, s, z, qmin, qmax), *args[1:])

        for m in prunable_layers(gm).values():
            m.register_forward_pre_hook(hook)
    return gm


def correct_bias_(gm: nn.Module, calib) -> nn.Module:
    """Empirical bias correction: for each quantized layer, the mean per-channel shift that weight
    rounding causes on calibration data, ``E[W_q x] - E[W x]``, is subtracted from the bias (or added
    to the following BatchNorm's running mean when the layer has no bias)."""
    layers = prunable_layers(gm)
    sums = {n: None for n in layers}
    counts = dict.fromkeys(layers, 0)
    handles = []
    for name, m in layers.items():
        def hook(mod, args, out, name=name):
            w = weight_quantizer_of(mod)[0]  # float weight, pruning mask applied
            if isinstance(mod, nn.Linear):
                ref = F.linear(args[0], w, mod.bias)
            else:
                ref = mod._conv_forward(args[0], w, mod.bias)
            d = (out - ref).detach()
            red = [i for i in range(d.dim()) if i != 1]
            s = d.sum(dim=red)
            sums[name] = s if sums[name] is None else sums[name] + s
            counts[name] += d.numel() // d.shape[1]
        handles.append(m.register_forward_hook(hook))
    set_mode(gm, False, False)
    gm.eval()
    with torch.no_grad():
        for b in calib:
            x = b[0] if isinstance(b, (tuple, list)) else b
            gm(torch.as_tensor(x, dtype=torch.float32))
    for h in handles:
        h.remove()
    mods = dict(gm.named_modules())
    pairs = _conv_bn_pairs(gm)
    with torch.no_grad():
        for name, m in layers.items():
            if sums[name] is None:
                continue
            shift = sums[name] / counts[name]
            if m.bias is not None:
                m.bias.sub_(shift)
            elif name in pairs:
                mods[pairs[name]].running_mean.add_(shift)
            else:
                m.bias = nn.Parameter(-shift)
    return gm


def weight_quantizer_of(m: nn.Module) -> tuple[torch.Tensor, nn.Module | None]:
    """The weight as the quantizer sees it (after any pruning mask before it) and the quantizer."""
    plist = m.parametrizations.weight
    w = plist.original.detach()
    for p in plist:
        if not isinstance(p, Mask):
            return w, p
        w = p(w)
    return w, None


def quant_params(gm: nn.Module) -> dict:
    """The converter's view of a prepared model (see the module docstring), read from its quantizers."""
    nodes = _fq_nodes(gm)
    acts = {}
    for node, fq in fake_quants(gm).items():
        if fq.fitted:
            acts[node] = fq.qparams() | {"fq_module": nodes[node]}
    weights = {}
    pairs = _conv_bn_pairs(gm) if isinstance(gm, torch.fx.GraphModule) else {}
    layers = prunable_layers(gm)
    for name, q in weight_quantizers(gm).items():
        if not isinstance(q, WeightFakeQuantize):
            weights[name] = {"format": weight_format(q)["bits"], "folded_bn": pairs.get(name)}
            continue
        w, _ = weight_quantizer_of(layers[name])
        if q.fold is not None:
            w = w * q.fold().reshape([-1] + [1] * (w.dim() - 1))
        s, z, qmin, qmax = q.qparams(w)
        weights[name] = {"scale": s.reshape(-1).tolist(), "zero_point": z.reshape(-1).tolist(),
                         "axis": 0 if q.per_channel else None, "bits": q.bits, "quant_min": qmin,
                         "quant_max": qmax, "folded_bn": pairs.get(name)}
    # TFLM's int8 scheme: every weight 8-bit integer, every activation observed at 8 bits
    eight = (bool(acts) and all(a.get("bits") == 8 for a in acts.values()) and bool(weights)
             and all(w.get("bits") == 8 for w in weights.values()))
    return {"scheme": "tflm-int8" if eight else "simulated", "activations": acts, "weights": weights}


def strip(gm: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """A float copy without observers, weights replaced by their rounded values."""
    out = copy.deepcopy(gm)
    removed = []
    for node in list(out.graph.nodes):
        if node.op == "call_module" and isinstance(out.get_submodule(node.target), FakeQuantize):
            node.replace_all_uses_with(node.args[0])
            out.graph.erase_node(node)
            removed.append(node.target)
    for name in removed:
        out.delete_submodule(name)
    out.graph.lint()
    out.recompile()
    # deepcopy keeps torch's generated Parametrized* class shared with ``gm``; removing the copy's
    # parametrizations deletes the weight property from that class and would break ``gm``. Give each
    # copied module a private twin of its class first.
    for m in out.modules():
        if parametrize.is_parametrized(m):
            cls = m.__class__
            m.__class__ = type(cls.__name__, cls.__bases__, dict(cls.__dict__))
    make_permanent_(out)
    for parent in list(out.modules()):  # QAT's frozen BatchNorms back to plain ones (same in eval mode)
        for name, child in list(parent.named_children()):
            if isinstance(child, BATCHNORMS) and type(child) not in BATCHNORMS:
                plain = next(c for c in BATCHNORMS if isinstance(child, c))(
                    child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats)
                plain.load_state_dict(child.state_dict())
                setattr(parent, name, plain.eval())
    return out


__all__ = ["QuantConfig", "calibrate", "correct_bias_", "fake_quants", "is_prepared", "prepare",
           "quant_params", "quantize_dynamic", "quantize_static", "set_mode", "strip", "trace",
           "weight_quantizer_of", "weight_quantizers"]
