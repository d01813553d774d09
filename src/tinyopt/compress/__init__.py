"""tinyopt.compress: training-time compression on PyTorch modules.

Pruning (``prune``, ``prune_structured``, ``schedules``, ``sensitivity``), quantization (``qmath``,
``observers``, ``fake_quant``, ``ptq``, ``qat``, ``lowbit``, ``mixed``), exact size accounting (``size``)
and recipes (``recipe``). Weight sharing, coding, distillation, low-rank and BN folding live in their
own modules beside these. Import the submodule you need; the names below are the common entry points.
"""

from tinyopt.compress.observers import (
    KLObserver,
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    MSEObserver,
    PercentileObserver,
)
from tinyopt.compress.prune import make_permanent_, prune_structured, prune_unstructured_, sparsity
from tinyopt.compress.ptq import QuantConfig, quant_params, quantize_dynamic, quantize_static, strip
from tinyopt.compress.qat import quantize_aware_train
from tinyopt.compress.recipe import Recipe, load_recipe, register_step
from tinyopt.compress.size import compression_ratio, model_size, tensor_size, textbook_bytes

__all__ = [
    "KLObserver", "MSEObserver", "MinMaxObserver", "MovingAverageMinMaxObserver", "PercentileObserver",
    "QuantConfig", "Recipe", "compression_ratio", "load_recipe", "make_permanent_", "model_size",
    "prune_structured", "prune_unstructured_", "quant_params", "quantize_aware_train", "quantize_dynamic",
    "quantize_static", "register_step", "sparsity", "strip", "tensor_size", "textbook_bytes",
]
