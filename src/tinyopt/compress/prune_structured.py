"""Structured pruning: remove whole conv filters, channels and dense neurons, leaving a smaller model.

Removing output channel ``k`` of a conv is only correct if every tensor coupled to it loses channel
``k`` too: the BatchNorm after it, the input channels of the next conv, the depthwise conv that must
keep ``groups == channels``, the partner branch of a residual add, the slice of a concatenation, and the
``k``-th block of ``H*W`` columns of a dense layer after a flatten. Torch-Pruning traces the model into
a dependency graph and prunes such coupled groups at once; we drive it (criterion, seed, which layers
to spare) and then check the result: the pruned model must run and keep its output shape.

Criteria score a group (all its coupled channels together): ``l1``/``l2`` = the L1/L2 norm of the
weights, ``random`` = baseline, ``taylor`` = ``|w * dL/dw|`` summed over the group (needs data).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from tinyopt.compress.prune import check_amount, check_criterion, check_finite, make_permanent_
from tinyopt.errors import ConfigError, DataError, UnsupportedOpError


def output_layer(model: nn.Module) -> nn.Module | None:
    """The last Linear/Conv (by registration order): its outputs are the classes and must stay."""
    last = None
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            last = m
    return last


def _importance(criterion: str):
    import torch_pruning as tp

    if criterion == "l1":
        return tp.importance.MagnitudeImportance(p=1)
    if criterion == "l2":
        return tp.importance.MagnitudeImportance(p=2)
    if criterion == "random":
        return tp.importance.RandomImportance()
    return tp.importance.TaylorImportance()


def prune_structured(model: nn.Module, example_input: torch.Tensor, amount: float, criterion: str = "l1",
                     ignored_layers: list[nn.Module] | None = None, global_pruning: bool = False,
                     round_to: int | None = None, data=None, seed: int = 0) -> nn.Module:
    """A pruned copy of ``model`` with ``amount`` of the channels of each prunable group removed.

    The output layer is never pruned (add others in ``ignored_layers``, given as modules of ``model``).
    ``round_to`` keeps channel counts multiples of it (SIMD-friendly); ``data`` is an iterable of
    ``(x, y)`` batches for the Taylor criterion. Unstructured masks, if any, are baked in first.
    """
    import torch_pruning as tp

    check_amount(amount, "prune_structured")
    check_criterion(criterion, "prune_structured")
    check_finite(model)
    if criterion == "taylor" and data is None:
        raise ConfigError("criterion 'taylor' needs gradients", where="prune_structured",
                          fix="pass data=(x, y) batches, or use criterion 'l1'")
    originals = {id(m): name for name, m in model.named_modules()}
    ignored_names = [originals[id(m)] for m in (ignored_layers or []) if id(m) in originals]
    work = make_permanent_(copy.deepcopy(model)).eval()
    mods = dict(work.named_modules())
    ignored = [mods[n] for n in ignored_names]
    out_layer = output_layer(work)
    if out_layer is not None and out_layer not in ignored:
        ignored.append(out_layer)
    example_input = torch.as_tensor(example_input, dtype=torch.float32)
    with torch.no_grad():
        ref_shape = tuple(work(example_input).shape)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        try:
            pruner = tp.pruner.MetaPruner(work, example_input, importance=_importance(criterion),
                                          pruning_ratio=amount, ignored_layers=ignored, round_to=round_to,
                                          global_pruning=global_pruning)
        except Exception as e:  # Torch-Pruning raises plain exceptions on graphs it cannot trace
            raise UnsupportedOpError(f"cannot build the channel dependency graph: {e}",
                                     where="prune_structured",
                                     fix="use unstructured pruning for this model") from None
        if criterion == "taylor":
            work.zero_grad()
            seen = 0
            for x, y in data:
                nn.functional.cross_entropy(work(torch.as_tensor(x, dtype=torch.float32)),
                                            torch.as_tensor(y, dtype=torch.int64)).backward()
                seen += 1
            if not seen:
                raise DataError("no batches for the Taylor criterion", where="prune_structured",
                                fix="give at least one (x, y) batch")
        pruner.step()
        work.zero_grad()
    with torch.no_grad():
        shape = tuple(work(example_input).shape)
    if shape != ref_shape:  # our invariant: a dependency-aware pruner never changes the output
        raise AssertionError(f"structured pruning changed the output shape {ref_shape} -> {shape}")
    return work


def channel_counts(model: nn.Module) -> dict[str, int]:
    """Output channels / features of every Conv/Linear (what structured pruning changed)."""
    return {n: (m.out_channels if hasattr(m, "out_channels") else m.out_features)
            for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))}


def count_params_macs(model: nn.Module, example_input: torch.Tensor) -> tuple[int, int]:
    """Parameters and conv/dense MACs of one inference, counted with forward hooks (batch 1).

    MACs of a conv = output elements x (in_channels / groups) x kernel area; of a dense layer =
    in x out; the same convention as the analyzer (FLOPs = 2 x MACs, bias adds not counted).
    """
    macs = 0

    def hook(m, _inp, out):
        nonlocal macs
        if isinstance(m, nn.Linear):
            macs += m.in_features * m.out_features * (out.numel() // out.shape[-1] // out.shape[0])
        else:
            k = 1
            for s in m.kernel_size:
                k *= s
            macs += (out.numel() // out.shape[0]) * (m.in_channels // m.groups) * k

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.as_tensor(example_input, dtype=torch.float32)[:1])
    finally:
        for h in handles:
            h.remove()
        model.train(was)
    return sum(p.numel() for p in model.parameters()), macs


__all__ = ["channel_counts", "count_params_macs", "output_layer", "prune_structured"]
