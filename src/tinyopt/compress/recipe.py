"""Recipes: a list of compression steps, each a small config dataclass, run in order with a table.

YAML, Python and the CLI say the same thing in the same words::

    seed: 0
    batch_size: 64
    steps:
      - finetune: {epochs: 2, lr: 0.001}
      - prune: {method: structured, ratio: 0.5, schedule: iterative, rounds: 2, epochs: 1}
      - quantize: {mode: qat, bits: 8, epochs: 1}

Each step name maps, through a registry, to ``(config class, function)``; other modules add their own
steps with ``register_step(name, ConfigClass, fn)`` where ``fn(model, config, ctx) -> model``. Unknown
steps and keys are errors that name the nearest valid word.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tinyopt._suggest import hint
from tinyopt._yaml import load_yaml_file
from tinyopt.errors import ConfigError

if TYPE_CHECKING:  # annotations only: reading and checking a recipe does not import torch
    import torch
    from torch import nn


class Config:
    """Mixin for step configs: data only, round-trips through plain dicts."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None, where: str | None = None):
        d = {} if d is None else d
        if not isinstance(d, dict):
            raise ConfigError(f"options must be a mapping, got {type(d).__name__}", where=where,
                              fix="write 'key: value' pairs, e.g. {ratio: 0.5}")
        names = [f.name for f in dataclasses.fields(cls)]
        for k in d:
            if k not in names:
                raise ConfigError(f"unknown key '{k}'", where=where,
                                  fix=f"valid keys: {', '.join(names)}{hint(k, names)}")
        return cls(**d)


@dataclass
class FinetuneConfig(Config):
    epochs: float = 1.0
    lr: float = 1e-3
    l1: float = 0.0  # sparsity-inducing regularization, added to the loss
    l2: float = 0.0


@dataclass
class PruneConfig(Config):
    method: str = "unstructured"  # unstructured | structured
    ratio: float = 0.5
    scope: str = "layer"  # layer | global (unstructured)
    criterion: str = "l1"  # l1 | l2 | random | taylor
    schedule: str = "one_shot"  # one_shot | iterative | polynomial | constant
    rounds: int = 3  # iterative
    epochs: float = 1.0  # fine-tuning after (or, for polynomial/constant, during) pruning
    lr: float = 1e-3
    layers: dict | None = None  # per-layer ratios (unstructured), e.g. from a sensitivity scan
    sensitivity: bool = False  # unstructured one-shot: per-layer ratios from a scan reaching `ratio`


@dataclass
class QuantizeConfig(Config):
    mode: str = "ptq"  # ptq | dynamic | qat | weights
    bits: object = 8  # 2-8, 16, float16, ternary, binary (or {layer: bits})
    act_bits: int | None = 8
    observer: str = "minmax"  # minmax | moving_average | percentile | mse | kl
    per_channel: bool = True
    bias_correction: bool = False
    calib_batches: int = 8
    epochs: float = 1.0  # qat
    lr: float = 1e-4


@dataclass
class MixedPrecisionConfig(Config):
    budget_bits: float = 4.0  # size budget: the size of the model with every weight at this width
    candidates: list = field(default_factory=lambda: [2, 3, 4, 5, 6, 8])
    act_bits: int | None = 8
    epochs: float = 1.0  # QAT after choosing the widths
    lr: float = 1e-4


@dataclass
class StepContext:
    """What a step may use: data, an example input, the seed, the batch size, progress output."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    seed: int = 0
    batch_size: int = 64
    progress: bool = False

    @property
    def example_input(self) -> torch.Tensor:
        return self.x_train[:1]

    @property
    def train(self):
        return self.x_train, self.y_train

    @property
    def val(self):
        return self.x_val, self.y_val


STEPS: dict[str, tuple[type, Callable]] = {}
# the steps tinyopt registers itself (on first use, since their modules import torch): a recipe naming
# none of these nor a step registered by the caller is refused without importing them
BUILTIN_STEPS = frozenset({"cluster", "distill", "finetune", "fold_bn", "huffman", "lowrank", "mixed_precision",
                           "prune", "quantize"})


def register_step(name: str, config_cls: type, fn: Callable[[nn.Module, object, StepContext], nn.Module]) -> None:
    """Make ``name`` usable in recipes: ``config_cls.from_dict`` parses its options, ``fn`` runs it."""
    if not (dataclasses.is_dataclass(config_cls) and hasattr(config_cls, "from_dict")):
        raise TypeError(f"{config_cls!r} must be a dataclass with from_dict/to_dict (subclass recipe.Config)")
    STEPS[name] = (config_cls, fn)


@dataclass
class Recipe:
    steps: list = field(default_factory=list)  # [(name, config)]
    seed: int = 0
    batch_size: int = 64

    def to_dict(self) -> dict:
        return {"seed": self.seed, "batch_size": self.batch_size,
                "steps": [{name: cfg.to_dict()} for name, cfg in self.steps]}

    @classmethod
    def from_dict(cls, d: dict, source: str | None = None) -> Recipe:
        if not isinstance(d, dict):
            raise ConfigError("a recipe must be a mapping with 'steps'", path=source,
                              fix="write 'steps:' followed by a list of steps")
        top = ("steps", "seed", "batch_size")
        for k in d:
            if k not in top:
                raise ConfigError(f"unknown key '{k}'", path=source, where="recipe",
                                  fix=f"valid keys: {', '.join(top)}{hint(k, top)}")
        raw = d.get("steps")
        if not isinstance(raw, list) or not raw:
            raise ConfigError("'steps' must be a non-empty list", path=source, where="recipe",
                              fix="list steps such as '- prune: {ratio: 0.5}'")
        named = []
        for i, item in enumerate(raw, 1):
            if isinstance(item, str):
                item = {item: {}}
            if not isinstance(item, dict) or len(item) != 1:
                raise ConfigError(f"step {i} must be one 'name: {{options}}' pair", path=source,
                                  where=f"step {i}", fix="write e.g. '- quantize: {mode: ptq, bits: 8}'")
            (name, opts), = item.items()
            known = sorted(BUILTIN_STEPS | set(STEPS))
            if name not in known:
                raise ConfigError(f"unknown step '{name}'", path=source, where=f"step {i}",
                                  fix=f"known steps: {', '.join(known)}{hint(name, known)}")
            named.append((i, name, opts))
        seed, bs = d.get("seed", 0), d.get("batch_size", 64)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ConfigError(f"seed {seed!r} is not an integer", path=source, fix="give an integer seed")
        if not isinstance(bs, int) or isinstance(bs, bool) or bs < 1:
            raise ConfigError(f"batch_size {bs!r} is not a positive integer", path=source, fix="e.g. batch_size: 64")
        _builtin_steps()  # the step options are checked by each step's config class
        steps = [(name, STEPS[name][0].from_dict(opts, where=f"step {i} ({name})")) for i, name, opts in named]
        return cls(steps, seed, bs)


def load_recipe(path: str | os.PathLike) -> Recipe:
    """Read and validate a YAML recipe (safe loader; errors name the file, the step and the key)."""
    try:
        return Recipe.from_dict(load_yaml_file(path), source=str(path))
    except ConfigError as e:
        if e.path is None:
            e.path = str(path)
            e.args = (e.format(),)
        raise


def _builtin_steps() -> None:
    if "prune" not in STEPS:
        from tinyopt.compress import _steps  # noqa: F401  (registers prune/quantize/finetune/mixed)
    if "cluster" not in STEPS:  # registers cluster/huffman, distill, lowrank, fold_bn
        from tinyopt.compress import cluster, distill, fuse, lowrank  # noqa: F401


__all__ = ["Config", "FinetuneConfig", "MixedPrecisionConfig", "PruneConfig", "QuantizeConfig", "Recipe",
           "BUILTIN_STEPS", "STEPS", "StepContext", "load_recipe", "register_step"]
