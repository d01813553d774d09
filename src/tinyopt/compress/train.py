"""A small, seeded fine-tuning loop shared by pruning schedules, QAT and recipes.

Compression steps need a few epochs of training to recover; this loop is deliberately plain (Adam,
cross-entropy, fixed batch order from a seed) so results are reproducible byte for byte on one machine.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from tinyopt.compress.configs import LR_SCHEDULES, check_choice
from tinyopt.errors import DataError


def as_tensors(x, y) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.as_tensor(x, dtype=torch.float32)
    y = torch.as_tensor(y, dtype=torch.int64)
    if len(x) == 0:
        raise DataError("empty training set", where="finetune", fix="give at least one training sample")
    if len(x) != len(y):
        raise DataError(f"{len(x)} samples but {len(y)} labels", where="finetune",
                        fix="give one label per sample")
    return x, y


def batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int | None = None):
    """``(x, y)`` mini-batches, shuffled with ``seed`` (in order when ``seed`` is None)."""
    idx = torch.arange(len(x)) if seed is None else torch.randperm(len(x),
                                                                   generator=torch.Generator().manual_seed(seed))
    for i in range(0, len(x), batch_size):
        j = idx[i:i + batch_size]
        yield x[j], y[j]


def finetune(model: nn.Module, data, epochs: float = 1, lr: float = 1e-3, batch_size: int = 64,
             seed: int = 0, on_step: Callable[[int], None] | None = None,
             extra_loss: Callable[[nn.Module], torch.Tensor] | None = None, weight_decay: float = 0.0,
             progress: bool = False, desc: str = "fine-tune", lr_schedule: str = "constant",
             teacher: nn.Module | None = None, distill: float = 0.0) -> nn.Module:
    """Train ``model`` on ``data = (x, y)`` for ``epochs`` (fractions allowed) with Adam.

    ``on_step(step)`` runs before every optimizer step (pruning schedules update masks there);
    ``extra_loss(model)`` is added to the loss (sparsity regularization). ``lr_schedule="cosine"`` decays
    the rate to zero over the steps, so the result does not hinge on where the last few steps of a constant
    rate happened to leave the weights. With a ``teacher``, ``distill`` is the share of the loss that is
    the KL divergence to the teacher's outputs (temperature 1; the rest is cross-entropy to the labels).
    """
    check_choice(lr_schedule, LR_SCHEDULES, desc, "lr_schedule")
    x, y = as_tensors(*data)
    torch.manual_seed(seed)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr,
                           weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    steps_per_epoch = (len(x) + batch_size - 1) // batch_size
    total = max(1, round(epochs * steps_per_epoch)) if epochs > 0 else 0
    cosine = lr_schedule == "cosine"
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(total, 1)) if cosine else None
    if teacher is not None:
        teacher.eval()
    bar = _progress(total, desc) if progress else None
    model.train()
    step = 0
    epoch = 0
    while step < total:
        for xb, yb in batches(x, y, batch_size, seed + epoch):
            if step >= total:
                break
            if on_step is not None:
                on_step(step)
            opt.zero_grad()
            out = model(xb)
            loss = loss_fn(out, yb)
            if teacher is not None and distill:
                loss = (1 - distill) * loss + distill * _soft_loss(out, teacher, xb)
            if extra_loss is not None:
                loss = loss + extra_loss(model)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            step += 1
            if bar is not None:
                bar.update(1)
        epoch += 1
    if bar is not None:
        bar.close()
    model.eval()
    return model


def _soft_loss(out: torch.Tensor, teacher: nn.Module, xb: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        target = torch.log_softmax(teacher(xb), dim=1)
    return torch.nn.functional.kl_div(torch.log_softmax(out, dim=1), target, reduction="batchmean",
                                      log_target=True)


class _progress:
    """A one-line progress bar on stderr (rich), closed explicitly."""

    def __init__(self, total: int, desc: str):
        from rich.console import Console
        from rich.progress import Progress

        self._p = Progress(console=Console(stderr=True), transient=True)
        self._p.start()
        self._task = self._p.add_task(desc, total=total)

    def update(self, n: int) -> None:
        self._p.update(self._task, advance=n)

    def close(self) -> None:
        self._p.stop()


__all__ = ["as_tensors", "batches", "finetune"]
