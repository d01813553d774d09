"""When to prune, and how much: one-shot, iterative, polynomial decay, constant sparsity.

A schedule maps a training step to a target sparsity and says on which steps masks are updated.
Polynomial decay is TF Model Optimization's:
``s(t) = s_f + (s_i - s_f) * (1 - (t - t0) / (t1 - t0)) ** power`` for ``t0 <= t <= t1``, updated every
``frequency`` steps, so most of the pruning happens early while the network can still adapt.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from tinyopt.compress.prune import check_amount, prune_unstructured_
from tinyopt.compress.train import finetune
from tinyopt.errors import ConfigError


@dataclass
class ConstantSparsity:
    target: float
    begin_step: int = 0
    frequency: int = 100

    def sparsity_at(self, step: int) -> float:
        return self.target if step >= self.begin_step else 0.0

    def should_prune(self, step: int) -> bool:
        return step >= self.begin_step and (step - self.begin_step) % self.frequency == 0


@dataclass
class PolynomialDecay:
    initial_sparsity: float
    final_sparsity: float
    begin_step: int
    end_step: int
    power: float = 3.0
    frequency: int = 100

    def __post_init__(self):
        check_amount(self.initial_sparsity, "schedule")
        check_amount(self.final_sparsity, "schedule")
        if self.end_step <= self.begin_step:
            raise ConfigError(f"end_step {self.end_step} is not after begin_step {self.begin_step}",
                              where="schedule", fix="make end_step larger than begin_step")

    def sparsity_at(self, step: int) -> float:
        if step < self.begin_step:
            return 0.0
        t = min(1.0, (step - self.begin_step) / (self.end_step - self.begin_step))
        return self.final_sparsity + (self.initial_sparsity - self.final_sparsity) * (1.0 - t) ** self.power

    def should_prune(self, step: int) -> bool:
        return (self.begin_step <= step <= self.end_step
                and ((step - self.begin_step) % self.frequency == 0 or step == self.end_step))


def iterative_ratios(target: float, rounds: int) -> list[float]:
    """Targets for prune → fine-tune → repeat: each round removes the same fraction of what is left,
    ``s_k = 1 - (1 - target) ** (k / rounds)``, ending exactly at ``target``."""
    check_amount(target, "schedule")
    if rounds < 1:
        raise ConfigError(f"rounds={rounds} must be at least 1", where="schedule",
                          fix="use rounds: 1 or more")
    return [1.0 - (1.0 - target) ** (k / rounds) for k in range(1, rounds + 1)]


def prune_during_training_(model: nn.Module, data, schedule, epochs: float, scope: str = "layer",
                           criterion: str = "l1", **train_kw) -> nn.Module:
    """Fine-tune while a schedule raises the sparsity (gradual pruning)."""

    def on_step(step: int) -> None:
        if schedule.should_prune(step):
            prune_unstructured_(model, schedule.sparsity_at(step), scope=scope, criterion=criterion)

    finetune(model, data, epochs, on_step=on_step, **train_kw)
    return prune_unstructured_(model, schedule.sparsity_at(10**12), scope=scope, criterion=criterion)


def prune_iterative_(model: nn.Module, data, target: float, rounds: int = 3, epochs_per_round: float = 1,
                     scope: str = "layer", criterion: str = "l1", **train_kw) -> nn.Module:
    """Prune to ``iterative_ratios(target, rounds)`` in turn, fine-tuning after each round."""
    seed = train_kw.pop("seed", 0)
    for i, r in enumerate(iterative_ratios(target, rounds)):
        prune_unstructured_(model, r, scope=scope, criterion=criterion)
        finetune(model, data, epochs_per_round, seed=seed + i, **train_kw)
    return model


__all__ = ["ConstantSparsity", "PolynomialDecay", "iterative_ratios", "prune_during_training_",
           "prune_iterative_"]
