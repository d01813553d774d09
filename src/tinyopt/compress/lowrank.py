"""Low-rank factorization: a Linear or Conv2d layer replaced by two thinner layers from its SVD.

A weight ``W`` (out x in; a conv kernel reshaped to out x in*kh*kw) is ``U S V^T``; keeping the top
``r`` singular values gives the best rank-r approximation (Eckart-Young). It pays when
``r * (in + out) < in * out``. Rank is chosen by retained energy (fraction of ``sum s^2``) or by a
parameter budget (fraction of the layer's weights). The conv becomes ``r`` kh x kw filters followed by
a 1x1 conv to ``out`` channels; a Linear becomes Linear(in, r, no bias) then Linear(r, out).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch import nn

from tinyopt._suggest import hint
from tinyopt.compress.configs import LowRankConfig
from tinyopt.errors import ConfigError


def choose_rank(s: np.ndarray, n_out: int, n_in: int, *, energy: float | None = None,
                ratio: float | None = None, where: str = "") -> int:
    """Rank for singular values ``s`` (descending): by ``energy`` kept, or the largest rank whose two
    factors hold at most ``ratio`` of the ``n_out * n_in`` weights (at least 1)."""
    if (energy is None) == (ratio is None):
        raise ConfigError("give exactly one of energy or ratio", where=where or "lowrank",
                          fix="e.g. energy: 0.9 (keep 90 % of sum s^2) or ratio: 0.5 (half the weights)")
    if energy is not None:
        if not 0 < energy <= 1:
            raise ConfigError(f"energy = {energy} is outside (0, 1]", where=where or "lowrank",
                              fix="use a fraction such as 0.9")
        e = np.cumsum(np.asarray(s, dtype=np.float64) ** 2)
        return int(min(np.searchsorted(e, energy * e[-1] * (1 - 1e-12)) + 1, len(s)))
    if not 0 < ratio <= 1:
        raise ConfigError(f"ratio = {ratio} is outside (0, 1]", where=where or "lowrank",
                          fix="use a fraction of the layer's weights such as 0.5")
    return int(max(1, min(len(s), (ratio * n_out * n_in) // (n_out + n_in))))


def _factors(w: torch.Tensor, rank: int | None, energy, ratio, where: str):
    mat = w.detach().double().reshape(w.shape[0], -1)
    u, s, vt = torch.linalg.svd(mat, full_matrices=False)
    if rank is None:
        rank = choose_rank(s.numpy(), *mat.shape, energy=energy, ratio=ratio, where=where)
    if not 1 <= rank <= len(s):
        raise ConfigError(f"rank {rank} is outside 1..{len(s)}", where=where or "lowrank",
                          fix=f"use a rank between 1 and {len(s)}")
    root = s[:rank].sqrt()
    return (u[:, :rank] * root).to(w.dtype), (root[:, None] * vt[:rank]).to(w.dtype), rank


def factorize_linear(layer: nn.Linear, rank: int | None = None, *, energy: float | None = None,
                     ratio: float | None = None, where: str = "") -> nn.Sequential:
    a, b, r = _factors(layer.weight, rank, energy, ratio, where)
    first = nn.Linear(layer.in_features, r, bias=False)
    second = nn.Linear(r, layer.out_features, bias=layer.bias is not None)
    with torch.no_grad():
        first.weight.copy_(b)
        second.weight.copy_(a)
        if layer.bias is not None:
            second.bias.copy_(layer.bias)
    return nn.Sequential(first, second)


def factorize_conv2d(layer: nn.Conv2d, rank: int | None = None, *, energy: float | None = None,
                     ratio: float | None = None, where: str = "") -> nn.Sequential:
    if layer.groups != 1:
        raise ConfigError(f"grouped/depthwise conv (groups={layer.groups}) has no full kernel matrix",
                          where=where or None, fix="leave depthwise convs out of lowrank.layers")
    a, b, r = _factors(layer.weight, rank, energy, ratio, where)
    first = nn.Conv2d(layer.in_channels, r, layer.kernel_size, layer.stride, layer.padding, layer.dilation,
                      bias=False, padding_mode=layer.padding_mode)
    second = nn.Conv2d(r, layer.out_channels, 1, bias=layer.bias is not None)
    with torch.no_grad():
        first.weight.copy_(b.reshape(first.weight.shape))
        second.weight.copy_(a.reshape(second.weight.shape))
        if layer.bias is not None:
            second.bias.copy_(layer.bias)
    return nn.Sequential(first, second)


def factorize(layer: nn.Module, rank: int | None = None, **kw) -> nn.Sequential:
    """The two-layer replacement of one Linear or Conv2d."""
    if isinstance(layer, nn.Linear):
        return factorize_linear(layer, rank, **kw)
    if isinstance(layer, nn.Conv2d):
        return factorize_conv2d(layer, rank, **kw)
    raise ConfigError(f"cannot factorize a {type(layer).__name__}", where=kw.get("where") or None,
                      fix="factorize Linear or Conv2d layers")


def lowrank_(model: nn.Module, *, energy: float | None = None, ratio: float | None = None,
             layers: list[str] | None = None, layer_types=("dense", "conv")) -> dict[str, int]:
    """Factorize layers of ``model`` in place; returns the rank chosen per replaced layer.

    Without ``layers``, every Linear ("dense") and non-grouped Conv2d ("conv") of ``layer_types`` is
    considered and replaced only when the two factors hold fewer weights than the original (otherwise
    the layer is left alone).
    """
    kinds = {"dense": (nn.Linear,), "conv": (nn.Conv2d,)}
    types = tuple(t for k in layer_types for t in kinds[k])
    cands = {n: m for n, m in model.named_modules()
             if isinstance(m, nn.Linear) or (isinstance(m, nn.Conv2d) and m.groups == 1)}
    if layers is not None:
        for n in layers:
            if n not in cands:
                raise ConfigError(f"no Linear/Conv2d layer '{n}'{hint(n, cands)}", where="lowrank.layers",
                                  fix=f"layers are: {', '.join(cands)}")
        cands = {n: cands[n] for n in layers}
    else:
        cands = {n: m for n, m in cands.items() if isinstance(m, types)}
    ranks = {}
    for name, m in cands.items():
        new = factorize(m, energy=energy, ratio=ratio, where=name)
        if sum(p.numel() for p in new.parameters()) >= sum(p.numel() for p in m.parameters()):
            continue
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, attr, new)
        ranks[name] = new[0].out_features if isinstance(m, nn.Linear) else new[0].out_channels
    return ranks


def replay_lowrank_(model: nn.Module, ranks: dict[str, int]) -> nn.Module:
    """Replace each named layer by its two-factor form of the recorded rank (weights to be loaded
    afterwards): how a saved low-rank model gets its architecture back."""
    for name, rank in ranks.items():
        try:
            layer = model.get_submodule(name)
        except AttributeError:
            raise ConfigError(f"no layer '{name}' to factorize", where="lowrank",
                              fix="rebuild the model the low-rank step ran on") from None
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, attr,
                factorize(layer, int(rank), where=name))
    return model


def finetune_(model: nn.Module, batches: Iterable, *, epochs: int = 1, lr: float = 1e-3,
              loss_fn: Callable | None = None,
              on_epoch: Callable[[int, float], None] | None = None) -> nn.Module:
    """Recover accuracy after factorization: a few epochs of Adam on all parameters."""
    loss_fn = loss_fn or nn.functional.cross_entropy
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for epoch in range(epochs):
        total, n = 0.0, 0
        for x, y in batches:
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            total, n = total + float(loss.detach()) * len(x), n + len(x)
        if on_epoch:
            on_epoch(epoch, total / max(n, 1))
    return model


# ---- recipe step `lowrank`: factorize, then fine-tune ----

def _register_steps() -> None:
    from tinyopt.compress.recipe import register_step

    def step_lowrank(model, cfg: LowRankConfig, ctx):
        from tinyopt.compress.train import finetune

        ratio = None if cfg.energy is not None else cfg.ratio
        ranks = lowrank_(model, energy=cfg.energy, ratio=ratio, layers=cfg.layers,
                         layer_types=cfg.layer_types)
        if ranks:
            ctx.state.edits.append({"lowrank": dict(ranks)})
            ctx.state.forget_layers(ranks)
        return finetune(model, ctx.train, cfg.epochs, lr=cfg.lr, batch_size=ctx.batch_size, seed=ctx.seed,
                        progress=ctx.progress, desc="low-rank fine-tune")

    register_step("lowrank", LowRankConfig, step_lowrank)


_register_steps()
