"""Quantization-aware training: fine-tune with fake quantization so the weights learn the grid.

BatchNorm is handled the way TFLite deploys it: statistics are frozen (the model is already trained,
and batch statistics of a quantized network are noisy), and a conv followed by BatchNorm has its weight
fake-quantized *after* folding (``w * gamma / sqrt(var + eps)``), so the rounding learnt is the rounding
of the deployed folded weight. Activation ranges follow a moving average of each batch's min/max,
initialised from a short calibration. ``ptq.quant_params`` reads the returned model as it reads PTQ's.
"""

from __future__ import annotations

import copy

import torch.nn.functional as F
from torch import nn

from tinyopt.compress.configs import renamed
from tinyopt.compress.ptq import BATCHNORMS, QuantConfig, calibrate, fake_quants, prepare, set_mode
from tinyopt.compress.train import as_tensors, batches, finetune


class FrozenBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm that always normalises with its running statistics (gamma and beta still train)."""

    def forward(self, x):
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0,
                            self.eps)


class FrozenBatchNorm2d(nn.BatchNorm2d):
    forward = FrozenBatchNorm1d.forward


def freeze_batchnorm_(model: nn.Module) -> nn.Module:
    """Swap every BatchNorm for its frozen twin in place (same parameters, buffers and state_dict keys)."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, BATCHNORMS) and not isinstance(child,
                                                                (FrozenBatchNorm1d, FrozenBatchNorm2d)):
                frozen = (FrozenBatchNorm2d if isinstance(child, nn.BatchNorm2d) else FrozenBatchNorm1d)(
                    child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats)
                frozen.load_state_dict(child.state_dict())
                setattr(parent, name, frozen)
    return model


def prepare_qat(model: nn.Module, config: QuantConfig | None = None):
    cfg = config or QuantConfig(observer="moving_average")
    return prepare(freeze_batchnorm_(copy.deepcopy(model)), cfg)


def quantize_aware_train(model: nn.Module, data, config: QuantConfig | None = None, epochs: float = 1,
                         lr: float = 1e-4, batch_size: int = 64, seed: int = 0,
                         calibration_samples: int = 512, progress: bool = False,
                         calib_batches: int | None = None, **train_kw):
    """QAT on ``data = (x, y)``: returns a prepared copy, fine-tuned, observers frozen, rounding on.

    The activation ranges start from ``calibration_samples`` training samples (in order); the old
    ``calib_batches`` (a count of batches) still works with a DeprecationWarning."""
    if calib_batches is not None:
        renamed("calib_batches", "calibration_samples", "quantize_aware_train")
        calibration_samples = calib_batches * batch_size
    gm = prepare_qat(model, config)
    x, y = data
    if fake_quants(gm):
        calibrate(gm, batches(*as_tensors(x, y), batch_size),
                  max_batches=max(1, -(-int(calibration_samples) // batch_size)))
    set_mode(gm, True, True)
    finetune(gm, (x, y), epochs, lr=lr, batch_size=batch_size, seed=seed, progress=progress, desc="QAT",
             **train_kw)
    set_mode(gm, False, True)
    gm.eval()
    return gm


__all__ = ["FrozenBatchNorm1d", "FrozenBatchNorm2d", "freeze_batchnorm_", "prepare_qat",
           "quantize_aware_train"]
