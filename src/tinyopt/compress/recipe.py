"""Recipes: a list of compression steps, each a small config dataclass, run in order with a table.

YAML, Python and the CLI say the same thing in the same words::

    seed: 0
    batch_size: 64
    steps:
      - finetune: {epochs: 2, lr: 0.001}
      - prune: {method: structured, sparsity: 0.5, schedule: iterative, rounds: 2, epochs: 1}
      - quantize: {mode: qat, weight_bits: 8, epochs: 1}

Each step name maps to a config class (``tinyopt.compress.configs``) and a function; other modules add
their own steps with ``register_step(name, ConfigClass, fn)`` where ``fn(model, config, ctx) -> model``.
Unknown steps and keys are errors that name the nearest valid word; the whole recipe is checked
without importing torch. ``Recipe.with_overrides(["prune.epochs=0.5"])`` is ``tinyopt compress --set``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tinyopt._suggest import hint
from tinyopt._yaml import load_yaml_file
from tinyopt.compress.configs import (
    BUILTIN_CONFIGS,
    ClusterConfig,
    Config,
    DistillConfig,
    FinetuneConfig,
    FoldBNConfig,
    HuffmanConfig,
    LowRankConfig,
    MixedPrecisionConfig,
    PruneConfig,
    QuantizeConfig,
    renamed,
)
from tinyopt.compress.state import CompressionState
from tinyopt.errors import ConfigError

if TYPE_CHECKING:  # annotations only: reading and checking a recipe does not import torch
    import torch
    from torch import nn


@dataclass
class StepContext:
    """What a step may use: data (in the model's own layout), the seed, the batch size, progress
    output, the compression state the steps share, and the folder relative paths in the recipe start from."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    seed: int = 0
    batch_size: int = 64
    progress: bool = False
    state: CompressionState = field(default_factory=CompressionState)
    folder: str | None = None

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
BUILTIN_STEPS = frozenset(BUILTIN_CONFIGS)


def register_step(name: str, config_cls: type,
                  fn: Callable[[nn.Module, object, StepContext], nn.Module]) -> None:
    """Make ``name`` usable in recipes: ``config_cls.from_dict`` parses its options, ``fn`` runs it."""
    if not (dataclasses.is_dataclass(config_cls) and hasattr(config_cls, "from_dict")):
        raise TypeError(f"{config_cls!r} must be a dataclass with from_dict/to_dict (subclass recipe.Config)")
    STEPS[name] = (config_cls, fn)


def config_class(name: str) -> type:
    """The config class of a step (a step registered by the caller wins over a built-in name)."""
    return STEPS[name][0] if name in STEPS else BUILTIN_CONFIGS[name]


def step_function(name: str) -> Callable:
    if name not in STEPS:
        _builtin_steps()
    return STEPS[name][1]


def _parse_steps(raw, source: str | None, batch_size: int) -> list[tuple[str, Config]]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError("'steps' must be a non-empty list", path=source, where="recipe",
                          fix="list steps such as '- prune: {sparsity: 0.5}'")
    steps = []
    for i, item in enumerate(raw, 1):
        if isinstance(item, str):
            item = {item: {}}
        if not isinstance(item, dict) or len(item) != 1:
            raise ConfigError(f"step {i} must be one 'name: {{options}}' pair", path=source,
                              where=f"step {i}", fix="write e.g. '- quantize: {mode: ptq, weight_bits: 8}'")
        (name, opts), = item.items()
        known = sorted(BUILTIN_STEPS | set(STEPS))
        if name not in known:
            raise ConfigError(f"unknown step '{name}'", path=source, where=f"step {i}",
                              fix=f"known steps: {', '.join(known)}{hint(name, known)}")
        where = f"step {i} ({name})"
        cls = config_class(name)
        if cls is QuantizeConfig and isinstance(opts, dict) and "calib_batches" in opts:
            opts = _calib_batches(opts, batch_size, where)
        steps.append((name, cls.from_dict(opts, where=where)))
    return steps


def _calib_batches(opts: dict, batch_size: int, where: str) -> dict:
    """The old ``calib_batches`` (a count of batches) as ``calibration_samples`` (a count of samples)."""
    opts = dict(opts)
    n = opts.pop("calib_batches")
    if "calibration_samples" in opts:
        raise ConfigError("both 'calib_batches' and 'calibration_samples' are given", where=where,
                          fix="keep only 'calibration_samples'")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"calib_batches {n!r} must be a positive integer", where=where,
                          fix="write calibration_samples: <number of samples> instead")
    renamed("calib_batches", f"calibration_samples (calib_batches: {n} = calibration_samples: "
            f"{n * batch_size} at batch_size {batch_size})", where)
    opts["calibration_samples"] = n * batch_size
    return opts


@dataclass
class Recipe:
    steps: list = field(default_factory=list)  # [(name, config)]
    seed: int = 0
    batch_size: int = 64
    source: str | None = field(default=None, compare=False, repr=False)  # the file it was read from

    def to_dict(self) -> dict:
        return {"seed": self.seed, "batch_size": self.batch_size,
                "steps": [{name: cfg.to_dict()} for name, cfg in self.steps]}

    @property
    def folder(self) -> str | None:
        """Where relative paths inside the recipe (a student's file) start from."""
        return str(Path(self.source).parent) if self.source else None

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
        seed, bs = d.get("seed", 0), d.get("batch_size", 64)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ConfigError(f"seed {seed!r} is not an integer", path=source, fix="give an integer seed")
        if not isinstance(bs, int) or isinstance(bs, bool) or bs < 1:
            raise ConfigError(f"batch_size {bs!r} is not a positive integer", path=source,
                              fix="e.g. batch_size: 64")
        return cls(_parse_steps(d.get("steps"), source, bs), seed, bs, source)

    def with_overrides(self, assignments: Iterable[str]) -> Recipe:
        """A copy with ``KEY=VALUE`` assignments applied (values read as YAML: numbers, lists, ...).

        KEY is ``seed``, ``batch_size``, or ``STEP.OPTION`` where STEP is a step name (every step of that
        name), a 1-based position, or ``*`` (every step that has OPTION): e.g. ``prune.epochs=0.5``,
        ``2.weight_bits=4``, ``*.epochs=0.1``.
        """
        d = self.to_dict()
        for text in assignments:
            key, value = _assignment(str(text))
            if key in ("seed", "batch_size"):
                d[key] = value
                continue
            step, _, option = key.rpartition(".")
            names = [next(iter(s)) for s in d["steps"]]
            for i in _steps_named(step, option, names, f"--set {text}"):
                d["steps"][i] = {names[i]: {**d["steps"][i][names[i]], option: value}}
        return Recipe.from_dict(d, source=self.source)


def _assignment(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` → (key, value read as YAML)."""
    import yaml

    key, eq, value_text = text.partition("=")
    key = key.strip()
    if not eq or not key:
        raise ConfigError(f"'{text}' is not KEY=VALUE", where="--set",
                          fix="write e.g. --set prune.epochs=0.5")
    if key not in ("seed", "batch_size") and "." not in key:
        raise ConfigError(f"'{key}' names no step", where=f"--set {text}",
                          fix="write STEP.OPTION (prune.epochs), N.OPTION or *.OPTION, or seed / batch_size")
    try:
        return key, yaml.safe_load(value_text) if value_text.strip() else None
    except yaml.YAMLError:
        return key, value_text


def _steps_named(step: str, option: str, names: list[str], where: str) -> list[int]:
    """Indexes of the steps an override's STEP names (a name, a 1-based position, or ``*``)."""
    if step == "*":
        hits = [i for i, n in enumerate(names)
                if option in config_class(n).fields() or option in config_class(n)._renamed]
    elif step.isdigit():
        hits = [int(step) - 1] if 1 <= int(step) <= len(names) else []
    else:
        hits = [i for i, n in enumerate(names) if n == step]
    if not hits:
        what = f"no step has an option '{option}'" if step == "*" else f"the recipe has no step '{step}'"
        listed = ", ".join(f"{i + 1}. {n}" for i, n in enumerate(names))
        near = hint(step, names) if step != "*" and not step.isdigit() else ""
        raise ConfigError(what, where=where, fix=f"steps: {listed}{near}")
    return hits


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
    """Import the step modules (they import torch), which register the built-in step functions."""
    from tinyopt.compress import _steps, cluster, distill, fuse, lowrank  # noqa: F401


__all__ = ["BUILTIN_STEPS", "STEPS", "ClusterConfig", "CompressionState", "Config", "DistillConfig",
           "FinetuneConfig", "FoldBNConfig", "HuffmanConfig", "LowRankConfig", "MixedPrecisionConfig",
           "PruneConfig", "QuantizeConfig", "Recipe", "StepContext", "config_class", "load_recipe",
           "register_step", "step_function"]
