"""BatchNorm folding for PyTorch modules: Conv/Linear + BatchNorm (+ ReLU) -> one layer.

In eval mode BN is the per-channel affine map ``y = gamma * (x - mean) / sqrt(var + eps) + beta``, so it
folds into the preceding layer: ``w' = w * s`` per output channel and ``b' = (b - mean) * s + beta``
with ``s = gamma / sqrt(var + eps)``. The fold is computed in float64 and cast back, so outputs match the
unfused eval-mode model to ~1e-6. (``tinyopt.graph.passes`` folds BATCH_NORM nodes of a Graph; this one
works on torch modules before conversion.)
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from tinyopt.errors import ConfigError

LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
ACTS = (nn.ReLU, nn.ReLU6)


def fold_bn(layer: nn.Module, bn: nn.Module, *, where: str = "") -> nn.Module:
    """A new Conv/Linear equal to ``bn(layer(x))`` in eval mode (``layer`` and ``bn`` are unchanged)."""
    if not isinstance(layer, LAYERS) or not isinstance(bn, NORMS):
        raise ConfigError(f"cannot fold {type(bn).__name__} into {type(layer).__name__}", where=where or None,
                          fix="fold a BatchNorm that directly follows a Conv or Linear layer")
    out_ch = layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels
    if bn.num_features != out_ch:
        raise ConfigError(f"BatchNorm has {bn.num_features} channels but the layer has {out_ch} outputs",
                          where=where or None, fix="pair each BatchNorm with the layer that feeds it")
    if bn.running_mean is None or bn.running_var is None:
        raise ConfigError("BatchNorm has no running statistics (track_running_stats=False)",
                          where=where or None, fix="train with track_running_stats=True to fold it")
    fused = copy.deepcopy(layer)
    with torch.no_grad():
        var = bn.running_var.double()
        gamma = bn.weight.double() if bn.affine else torch.ones_like(var)
        beta = bn.bias.double() if bn.affine else torch.zeros_like(var)
        s = gamma / torch.sqrt(var + bn.eps)
        w = layer.weight.double()
        b = layer.bias.double() if layer.bias is not None else torch.zeros_like(var)
        fused.weight.copy_((w * s.view(-1, *[1] * (w.dim() - 1))).to(layer.weight.dtype))
        new_b = ((b - bn.running_mean.double()) * s + beta).to(layer.weight.dtype)
        if fused.bias is None:
            fused.bias = nn.Parameter(new_b)
        else:
            fused.bias.copy_(new_b)
    return fused


def _get(model: nn.Module, name: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError:
        names = [n for n, _ in model.named_modules() if n]
        raise ConfigError(f"no module '{name}'", where="fold_bn",
                          fix=f"use module names such as {', '.join(names[:6])}") from None


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, attr, module)


def fuse_modules_(model: nn.Module, groups: list[list[str]]) -> nn.Module:
    """Fuse each ``[layer, bn]`` or ``[layer, bn, relu]`` group of module names in place.

    The layer's slot receives the folded layer (followed by the activation in an ``nn.Sequential``
    when one is given) and the other slots become ``nn.Identity``, as ``torch.ao`` fusion does, so
    the model's forward code keeps working unchanged.
    """
    for group in groups:
        if len(group) not in (2, 3):
            raise ConfigError(f"group {group} has {len(group)} names", where="fold_bn",
                              fix="give [layer, batchnorm] or [layer, batchnorm, relu]")
        layer, bn = _get(model, group[0]), _get(model, group[1])
        fused: nn.Module = fold_bn(layer, bn, where=group[0])
        if len(group) == 3:
            act = _get(model, group[2])
            if not isinstance(act, ACTS):
                raise ConfigError(f"'{group[2]}' is a {type(act).__name__}, not ReLU/ReLU6", where=group[2],
                                  fix="fuse only ReLU or ReLU6 activations")
            fused = nn.Sequential(fused, copy.deepcopy(act))
            _set(model, group[2], nn.Identity())
        _set(model, group[0], fused)
        _set(model, group[1], nn.Identity())
    return model


def find_fusable(model: nn.Module) -> list[list[str]]:
    """Groups ``[layer, bn(, relu)]`` of consecutive children inside every ``nn.Sequential``.

    Only Sequential containers are searched: there the children's order *is* the execution order;
    elsewhere a forward() may use modules in any order, so pass explicit groups to ``fuse_modules_``.
    """
    groups = []
    for prefix, m in model.named_modules():
        if not isinstance(m, nn.Sequential):
            continue
        kids = list(m.named_children())
        i = 0
        while i < len(kids) - 1:
            (n0, a), (n1, b) = kids[i], kids[i + 1]
            while isinstance(a, nn.Sequential) and len(a):  # e.g. Sequential(ZeroPad2d, Conv2d) + BN
                last = list(a.named_children())[-1]
                n0, a = f"{n0}.{last[0]}", last[1]
            if isinstance(a, LAYERS) and isinstance(b, NORMS):
                full = [f"{prefix}.{n}" if prefix else n for n in (n0, n1)]
                if i + 2 < len(kids) and isinstance(kids[i + 2][1], ACTS):
                    full.append(f"{prefix}.{kids[i + 2][0]}" if prefix else kids[i + 2][0])
                groups.append(full)
                i += len(full)
            else:
                i += 1
    return groups


def fold_bn_(model: nn.Module) -> list[list[str]]:
    """Fold every Conv/Linear + BatchNorm (+ ReLU) found in Sequential containers; returns the groups."""
    groups = find_fusable(model)
    fuse_modules_(model, groups)
    return groups


def fold_bn_model(model: nn.Module) -> nn.Module:
    """Non-mutating twin of ``fold_bn_``: a folded copy in eval mode."""
    m = copy.deepcopy(model).eval()
    fold_bn_(m)
    return m


# ---- recipe step `fold_bn` ----

def _register_steps() -> None:
    from tinyopt.compress.configs import FoldBNConfig
    from tinyopt.compress.recipe import register_step

    def step_fold_bn(model, cfg: FoldBNConfig, ctx):
        model.eval()
        if cfg.groups:
            fuse_modules_(model, cfg.groups)
            groups = [list(g) for g in cfg.groups]
        else:
            groups = fold_bn_(model)
        if groups:
            ctx.state.edits.append({"fold_bn": groups})
        return model

    register_step("fold_bn", FoldBNConfig, step_fold_bn)


_register_steps()
