"""Unstructured magnitude pruning with masks that survive fine-tuning.

A pruned weight is a parametrization ``weight = original * mask`` (``torch.nn.utils.parametrize``):
the optimizer keeps updating ``original`` but every forward pass, and every gradient, goes through the
mask, so pruned weights stay exactly zero however long we fine-tune. ``make_permanent_`` bakes the mask
in and restores a plain ``weight`` parameter (and the plain state_dict keys).

``amount`` is the target fraction of zeros (0 <= amount < 1), not an increment: pruning 0.5 then 0.8
leaves 80 % zeros, which is what schedules need. Structured pruning lives in ``prune_structured``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils import parametrize

from tinyopt._suggest import hint
from tinyopt.compress.configs import CRITERIA  # one list, shared with the configs
from tinyopt.errors import ConfigError, DataError

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d)


class Mask(nn.Module):
    """Parametrization multiplying a weight by a fixed 0/1 mask (a buffer, saved in the state_dict)."""

    def __init__(self, mask: torch.Tensor):
        super().__init__()
        self.register_buffer("mask", mask.to(torch.float32))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w * self.mask


def check_amount(amount: float, where: str | None = None) -> float:
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0.0 <= amount < 1.0:
        raise ConfigError(f"pruning ratio {amount!r} is outside [0, 1)", where=where,
                          fix="give the fraction of weights to remove, e.g. 0.5 (1.0 "
                              "would remove everything)")
    return float(amount)


def check_criterion(criterion: str, where: str | None = None) -> str:
    if criterion not in CRITERIA:
        raise ConfigError(f"unknown pruning criterion '{criterion}'", where=where,
                          fix=f"use one of {', '.join(CRITERIA)}{hint(criterion, CRITERIA)}")
    return criterion


def prunable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Conv and Linear layers by qualified name (the layers whose weights pruning and quantization touch)."""
    return {name: m for name, m in model.named_modules() if isinstance(m, PRUNABLE)}


def raw_weight(m: nn.Module) -> torch.Tensor:
    """The stored weight (before any mask or fake-quant parametrization)."""
    if parametrize.is_parametrized(m, "weight"):
        return m.parametrizations.weight.original
    return m.weight


def get_mask(m: nn.Module) -> torch.Tensor | None:
    if parametrize.is_parametrized(m, "weight"):
        for p in m.parametrizations.weight:
            if isinstance(p, Mask):
                return p.mask
    return None


def set_mask_(m: nn.Module, mask: torch.Tensor) -> None:
    """Install or replace the mask of one layer; the masked-out stored weights are zeroed too."""
    old = get_mask(m)
    if old is not None:
        old.copy_(mask)
    else:
        parametrize.register_parametrization(m, "weight", Mask(mask))
    with torch.no_grad():
        raw_weight(m).mul_(mask)


def check_finite(model: nn.Module, source: str | None = None) -> None:
    """Refuse NaN/inf weights, naming the layer: pruning and quantization scores are meaningless there."""
    for name, p in model.named_parameters():
        if not torch.isfinite(p).all():
            raise DataError(f"parameter '{name}' contains NaN or inf", path=source, where=name,
                            fix="retrain or load a checkpoint whose weights are finite")


def gradients(model: nn.Module, data, loss_fn=None, max_batches: int = 8) -> dict[str, torch.Tensor]:
    """Accumulated dL/dW of every prunable layer over ``data`` (an iterable of ``(x, y)`` batches),
    for the first-order Taylor criterion ``|w * dL/dw|``."""
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    layers = prunable_layers(model)
    grads = {n: torch.zeros_like(raw_weight(m)) for n, m in layers.items()}
    was_training = model.training
    model.eval()
    seen = 0
    for i, (x, y) in enumerate(data):
        if i >= max_batches:
            break
        model.zero_grad()
        loss_fn(model(x), y).backward()
        for n, m in layers.items():
            g = raw_weight(m).grad
            if g is not None:
                grads[n] += g
        seen += 1
    model.zero_grad()
    model.train(was_training)
    if seen == 0:
        raise DataError("no batches for the Taylor criterion", where="prune",
                        fix="give calibration data (x, y) batches, or use criterion 'l1'")
    return grads


def weight_scores(w: torch.Tensor, criterion: str, grad: torch.Tensor | None = None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Importance of each weight: larger is kept. L1 and L2 rank single weights alike; they differ for
    groups (structured pruning)."""
    w = w.detach()
    if criterion == "l1":
        return w.abs()
    if criterion == "l2":
        return w * w
    if criterion == "random":
        return torch.rand(w.shape, generator=generator)
    if grad is None:
        raise ConfigError("criterion 'taylor' needs gradients", where="prune",
                          fix="pass data=(x, y) batches so gradients can be computed")
    return (w * grad).abs()


def _prune_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Mask keeping all but the ``k`` lowest scores (ties broken by position, deterministic)."""
    mask = torch.ones(scores.numel())
    if k > 0:
        idx = torch.argsort(scores.reshape(-1), stable=True)[:k]
        mask[idx] = 0.0
    return mask.reshape(scores.shape)


def prune_unstructured_(model: nn.Module, amount: float | dict[str, float], scope: str = "layer",
                        criterion: str = "l1", data=None, seed: int = 0,
                        layers: list[str] | None = None) -> nn.Module:
    """Zero the least important weights of Conv/Linear layers in place and keep them zero.

    ``scope='layer'``: each layer loses ``amount`` of its weights; ``'global'``: one threshold over all
    chosen layers, so layers with many small weights (usually the big dense ones) lose more.
    ``amount`` may be a ``{layer: ratio}`` dict (layer scope) as a sensitivity scan produces.
    Biases are not pruned.
    """
    check_criterion(criterion)
    if scope not in ("layer", "global"):
        raise ConfigError(f"unknown pruning scope '{scope}'", where="prune", fix="use 'layer' or 'global'")
    check_finite(model)
    all_layers = prunable_layers(model)
    names = list(all_layers) if layers is None else layers
    if isinstance(amount, dict):
        if scope != "layer":
            raise ConfigError("per-layer ratios need scope 'layer'", where="prune", fix="set scope: layer")
        for n in amount:
            if n not in all_layers:
                raise ConfigError(f"no prunable layer '{n}'", where="prune",
                                  fix=f"use one of {list(all_layers)}{hint(n, all_layers)}")
            check_amount(amount[n], where=n)
        names, ratios = list(amount), dict(amount)
    else:
        check_amount(amount)
        ratios = dict.fromkeys(names, float(amount))
    for n in names:
        if n not in all_layers:
            raise ConfigError(f"no prunable layer '{n}'", where="prune",
                              fix=f"use one of {list(all_layers)}{hint(n, all_layers)}")
    gen = torch.Generator().manual_seed(seed)
    grads = gradients(model, data) if criterion == "taylor" else {}
    scores = {}
    for n in names:
        w = raw_weight(all_layers[n])
        s = weight_scores(w, criterion, grads.get(n), gen)
        old = get_mask(all_layers[n])
        scores[n] = s if old is None else torch.where(old > 0, s, torch.full_like(s, -1.0))
    if scope == "global":
        flat = torch.cat([s.reshape(-1) for s in scores.values()])
        k = math.floor(ratios[names[0]] * flat.numel()) if names else 0
        mask = _prune_k(flat, k)
        off = 0
        for n in names:
            numel = scores[n].numel()
            set_mask_(all_layers[n], mask[off:off + numel].reshape(scores[n].shape))
            off += numel
    else:
        for n in names:
            set_mask_(all_layers[n], _prune_k(scores[n], math.floor(ratios[n] * scores[n].numel())))
    return model


def sparsity(model: nn.Module) -> dict[str, float]:
    """Fraction of exactly-zero weights per prunable layer, plus ``'global'`` over all of them."""
    out, zeros, total = {}, 0, 0
    for n, m in prunable_layers(model).items():
        w = m.weight.detach()
        z = int((w == 0).sum())
        out[n] = z / w.numel()
        zeros, total = zeros + z, total + w.numel()
    out["global"] = zeros / total if total else 0.0
    return out


def bake_(m: nn.Module) -> nn.Module:
    """Replace a module's parametrized tensors by plain parameters holding their current values.

    ``parametrize.remove_parametrizations`` deletes the property from the module's class, and a
    deep-copied module shares that class with its original, so removing it from a copy would break
    the original. We switch this instance back to its base class instead and leave the class alone.
    """
    if not parametrize.is_parametrized(m):
        return m
    values = {name: getattr(m, name).detach().clone() for name in m.parametrizations}
    m.__class__ = type(m).__bases__[0]
    del m._modules["parametrizations"]
    for name, v in values.items():
        m.register_parameter(name, nn.Parameter(v))
    return m


def make_permanent_(model: nn.Module) -> nn.Module:
    """Remove every parametrization (masks, fake quant), keeping the values they produce."""
    for m in list(model.modules()):
        bake_(m)
    return model


def regularization(model: nn.Module, l1: float = 0.0, l2: float = 0.0) -> torch.Tensor:
    """``l1 * sum|w| + l2 * sum w^2`` over prunable weights: add to the loss to push weights towards zero
    before magnitude pruning (L1 drives many exactly small, which is what pruning removes cheaply)."""
    total = torch.zeros(())
    for m in prunable_layers(model).values():
        w = m.weight
        if l1:
            total = total + l1 * w.abs().sum()
        if l2:
            total = total + l2 * (w * w).sum()
    return total


__all__ = ["CRITERIA", "Mask", "check_amount", "check_finite", "bake_", "get_mask", "gradients",
           "make_permanent_", "prunable_layers", "prune_unstructured_", "raw_weight", "regularization",
           "set_mask_", "sparsity", "weight_scores"]


def prune_structured(model: nn.Module, example_input: torch.Tensor, amount: float, criterion: str = "l1",
                     **kw) -> nn.Module:
    """Dependency-aware filter/channel pruning returning a physically smaller model; see
    ``tinyopt.compress.prune_structured.prune_structured``."""
    from tinyopt.compress.prune_structured import prune_structured as _impl

    return _impl(model, example_input, amount, criterion=criterion, **kw)


__all__ += ["prune_structured"]
