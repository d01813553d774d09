"""One compression run from names: a PyTorch model, a recipe and a data door in; the compressed model,
its table and the output file out. ``tinyopt compress`` is this plus printing; the Python API can call
``compress_run`` with the same words (a reference or a module, a recipe path/dict/Recipe, a ``--data`` word).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tinyopt.errors import ConfigError, ModelFormatError

MODEL_HELP = "zoo:<name>, path/to/file.py:factory, or a .pt/.topz written by tinyopt compress"


def as_recipe(recipe):
    """A ``Recipe`` from a YAML path, a dict or a ``Recipe``."""
    from tinyopt.compress.recipe import Recipe, load_recipe

    if isinstance(recipe, Recipe):
        return recipe
    if isinstance(recipe, dict):
        return Recipe.from_dict(recipe, source="<recipe>")
    if isinstance(recipe, (str, os.PathLike)):
        return load_recipe(recipe)
    raise ConfigError(f"a recipe must be a Recipe, a dict or a YAML path, got {type(recipe).__name__}",
                      where="recipe", fix="pass e.g. {'steps': [{'prune': {'sparsity': 0.5}}]}")


def resolve_model(model, checkpoint: str | os.PathLike | None = None, pruned: bool = False):
    """(module, CompressionState) for a model named by text (a reference, a bare zoo name, an earlier
    output) or given as a module; the state knows how to rebuild a named one."""
    from tinyopt._modelref import ModelRef, is_torch_ref
    from tinyopt.compress.artifact import SUFFIXES, load_output
    from tinyopt.compress.checkpoint import load_checkpoint
    from tinyopt.compress.state import CompressionState
    from tinyopt.zoo import ZOO

    if not isinstance(model, (str, os.PathLike)):  # a torch.nn.Module from Python: nothing to record
        if checkpoint:
            load_checkpoint(checkpoint, model, resize=pruned)
        return model, CompressionState()
    model = os.fspath(model)
    if Path(model).suffix in SUFFIXES:
        if not Path(model).is_file():
            raise ModelFormatError("file not found", path=model, fix="check the path")
        if checkpoint:
            raise ConfigError("a checkpoint with a compressed model: its weights are in the file",
                              where="--checkpoint", fix="drop --checkpoint")
        cm = load_output(model)
        edits = list(cm.meta.get("edits") or [])
        return cm.build(), CompressionState(cm.model_ref.resolved([cm.folder]), edits)
    if not is_torch_ref(model):
        if model not in ZOO:
            from tinyopt._suggest import hint

            raise ConfigError(f"'{model}' is not a model tinyopt compress takes{hint(model, list(ZOO))}",
                              where="MODEL", fix=f"give {MODEL_HELP} (zoo: {', '.join(ZOO)})")
        from tinyopt._notes import deprecated

        deprecated(f"the bare zoo name '{model}' is deprecated, write zoo:{model}")
        model = f"zoo:{model}"
    ref = ModelRef.parse(model).resolved()
    net = ref.build()
    if checkpoint:
        load_checkpoint(checkpoint, net, resize=pruned)
    return net, CompressionState(ref)


@dataclass
class CompressionRun:
    """A finished run: the ``RecipeResult`` (model, rows, state), the recipe that ran, the model's input
    shape (its own layout, no batch) and the ``--data`` word it trained on (recorded for calibration)."""

    result: object
    recipe: object
    input_shape: tuple[int, ...]
    data: str | None = None
    model_name: str = "model"

    @property
    def model(self):
        return self.result.model

    @property
    def rows(self):
        return self.result.rows

    @property
    def state(self):
        return self.result.state

    def calibration_samples(self) -> int:
        """What the recipe's last int8 step calibrated with (the converter takes as many), else 512."""
        counts = [cfg.calibration_samples for name, cfg in self.recipe.steps
                  if name == "quantize" and cfg.mode in ("ptq", "qat")]
        return counts[-1] if counts else 512

    def save(self, out: str | os.PathLike) -> int:
        """Write ``out`` (.pt or .topz) with the record convert and deploy read; returns its bytes."""
        from tinyopt.compress.artifact import save_output

        return save_output(out, self.model, self.state, input_shape=self.input_shape, data=self.data,
                           seed=self.recipe.seed, calibration_samples=self.calibration_samples(),
                           recipe=self.recipe.to_dict())

    def to_dict(self, nbytes: int | None = None) -> dict:
        st = self.state
        return {"model": self.model_name, "recipe": self.recipe.to_dict(),
                "rows": [dataclasses.asdict(r) for r in self.rows], "input_shape": list(self.input_shape),
                "bytes": nbytes,
                "state": {"edits": st.edits, "mixed_bits": st.mixed_bits,
                          "container_bytes": st.container_bytes,
                          "model": st.model_ref.to_dict() if st.model_ref else None}}


def compress_run(model, recipe, data, *, checkpoint=None, pruned: bool = False, overrides: Iterable[str] = (),
                 progress: bool = False, on_row=None) -> CompressionRun:
    """Run ``recipe`` on ``model`` with ``data`` (a ``--data`` word, see ``tinyopt.data.doors``, or a
    ``TrainingData``); ``overrides`` are ``--set KEY=VALUE`` changes. The model is built and initialised
    from the recipe's seed, so the same call gives the same bytes."""
    import torch

    from tinyopt.compress._steps import run_recipe
    from tinyopt.compress.inputs import fit_to_model
    from tinyopt.compress.recipe import StepContext
    from tinyopt.data.doors import TrainingData, open_data

    rec = as_recipe(recipe)
    overrides = list(overrides)
    if overrides:
        rec = rec.with_overrides(overrides)
    torch.manual_seed(rec.seed)
    net, state = resolve_model(model, checkpoint, pruned)
    label = state.model_ref.label if state.model_ref else type(net).__name__
    spec = None
    if not isinstance(data, TrainingData):
        spec = os.fspath(data)
        data = open_data(spec, seed=rec.seed)
    fitted, shape = fit_to_model(net, data, label)
    t = [torch.from_numpy(a) for a in (fitted.x_train, fitted.y_train, fitted.x_val, fitted.y_val)]
    ctx = StepContext(*t, seed=rec.seed, batch_size=rec.batch_size, progress=progress, folder=rec.folder)
    result = run_recipe(net, rec, ctx, on_row=on_row, state=state)
    name = model if isinstance(model, (str, os.PathLike)) else label
    return CompressionRun(result, rec, shape, spec, os.fspath(name) if not isinstance(name, str) else name)


__all__ = ["MODEL_HELP", "CompressionRun", "as_recipe", "compress_run", "resolve_model"]
