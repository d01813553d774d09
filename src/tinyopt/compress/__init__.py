"""tinyopt.compress: training-time compression on PyTorch modules.

Pruning (``prune``, ``prune_structured``, ``schedules``, ``sensitivity``), quantization (``qmath``,
``observers``, ``fake_quant``, ``ptq``, ``qat``, ``lowbit``, ``mixed``), exact size accounting (``size``)
and recipes (``recipe``). Weight sharing, coding, distillation, low-rank and BN folding live in their
own modules beside these. Import the submodule you need; the names below are the common entry points.
"""

from __future__ import annotations

import importlib

# name -> submodule. Resolved on first use (PEP 562), so that importing a torch-free submodule (the
# container format, the coders) or validating a file does not pay for importing torch.
_EXPORTS = {
    **dict.fromkeys(("KLObserver", "MinMaxObserver", "MovingAverageMinMaxObserver", "MSEObserver",
                     "PercentileObserver"), "observers"),
    **dict.fromkeys(("make_permanent_", "prune_structured", "prune_unstructured_", "sparsity"), "prune"),
    **dict.fromkeys(("QuantConfig", "quant_params", "quantize_dynamic", "quantize_static", "strip"), "ptq"),
    "quantize_aware_train": "qat",
    **dict.fromkeys(("Recipe", "load_recipe", "register_step"), "recipe"),
    **dict.fromkeys(("compression_ratio", "model_size", "tensor_size", "textbook_bytes"), "size"),
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
