"""tinyopt.compress: training-time compression on PyTorch modules.

Pruning (``prune``, ``prune_structured``, ``schedules``, ``sensitivity``), quantization (``qmath``,
``observers``, ``fake_quant``, ``ptq``, ``qat``, ``lowbit``, ``mixed``), weight sharing and coding
(``cluster``, ``coding``, ``container``), distillation, low-rank, BN folding, exact size accounting
(``size``), and recipes: step configs (``configs``) run in order by ``run_recipe``, which passes a
``CompressionState`` from step to step and returns it with the model and one table row per step.

    from tinyopt.compress import PruneConfig, QuantizeConfig, Recipe, StepContext, run_recipe
    recipe = Recipe([("prune", PruneConfig(sparsity=0.5)), ("quantize", QuantizeConfig(mode="qat"))])
    result = run_recipe(model, recipe, StepContext(x_train, y_train, x_val, y_val))
    result.model, result.rows, result.state
"""

from __future__ import annotations

import importlib

# name -> submodule. Resolved on first use (PEP 562), so that importing a torch-free submodule (the
# configs, the container format, the coders) or validating a file does not pay for importing torch.
_EXPORTS = {
    **dict.fromkeys(("KLObserver", "MinMaxObserver", "MovingAverageMinMaxObserver", "MSEObserver",
                     "PercentileObserver"), "observers"),
    **dict.fromkeys(("make_permanent_", "prune_structured", "prune_unstructured_", "sparsity"), "prune"),
    **dict.fromkeys(("QuantConfig", "quant_params", "quantize_dynamic", "quantize_static", "strip"), "ptq"),
    "quantize_aware_train": "qat",
    **dict.fromkeys(("ClusterConfig", "Config", "DistillConfig", "FinetuneConfig", "FoldBNConfig",
                     "HuffmanConfig", "LowRankConfig", "MixedPrecisionConfig", "PruneConfig",
                     "QuantizeConfig"), "configs"),
    **dict.fromkeys(("Recipe", "StepContext", "load_recipe", "register_step"), "recipe"),
    "CompressionState": "state",
    **dict.fromkeys(("RecipeResult", "Row", "deployable_state_dict", "format_table", "run_recipe"), "_steps"),
    **dict.fromkeys(("compression_ratio", "model_size", "tensor_size", "textbook_bytes"), "size"),
    **dict.fromkeys(("CompressedModel", "load_output", "save_output"), "artifact"),
    **dict.fromkeys(("CompressionRun", "compress_run"), "job"),
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"tinyopt.compress.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tinyopt.compress' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
