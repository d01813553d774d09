"""Training data fitted to a PyTorch model: its input shape, from the model or found from the data.

A model that declares ``input_shape`` (channels first, no batch: the zoo's convention) gets its data
fitted to it; a model that does not (most users' own) is tried on one sample as the data come (channels
first), then, when the samples have a single channel, flattened. The first shape it runs on is its
input shape, recorded in the compressed output so convert and deploy do not ask for it.
"""

from __future__ import annotations

import math

from tinyopt.data.doors import TrainingData, fit_samples
from tinyopt.errors import DataError


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0][:120] if str(e).strip() else type(e).__name__


def input_shape_for(module, data: TrainingData, label: str = "model") -> tuple[int, ...]:
    """The input shape (channels first, no batch) ``module`` takes for ``data`` (in the model's layout)."""
    import torch

    declared = getattr(module, "input_shape", None)
    if declared:
        return tuple(int(d) for d in declared)
    sample = tuple(data.x_train.shape[1:])
    candidates = [sample]
    if len(sample) > 1 and sample[0] == 1:
        candidates.append((math.prod(sample),))
    errors = []
    modes = {m: m.training for m in module.modules()}
    module.eval()
    try:
        for shape in candidates:
            try:
                with torch.no_grad():
                    module(torch.zeros(1, *shape))
                return shape
            except Exception as e:  # the user's forward() may raise anything on a wrong shape
                errors.append(f"{list(shape)}: {_first_line(e)}")
    finally:
        for m, mode in modes.items():
            m.train(mode)
    raise DataError(f"{label} does not run on the samples ({'; '.join(errors)})", path=data.source,
                    fix="set model.input_shape (channels first, no batch) in the factory, or give data "
                        "shaped for the model")


def fit_to_model(module, data: TrainingData, label: str = "model") -> tuple[TrainingData, tuple[int, ...]]:
    """``data`` in the model's layout and shape, and that shape."""
    import torch

    data = data.to_model_layout()
    shape = input_shape_for(module, data, label)
    fitted = TrainingData(fit_samples(data.x_train, shape, data.source), data.y_train,
                          fit_samples(data.x_val, shape, data.source), data.y_val, data.classes, data.source,
                          False)
    was = module.training
    module.eval()
    try:
        with torch.no_grad():
            out = module(torch.from_numpy(fitted.x_train[:1]))
    except Exception as e:
        raise DataError(f"{label} does not run on a sample of shape {list(shape)}: {_first_line(e)}",
                        path=data.source, fix="give data shaped for the model") from None
    finally:
        module.train(was)
    labels = int(max(fitted.y_train.max(), fitted.y_val.max())) + 1
    if out.dim() != 2 or out.shape[1] < labels:
        raise DataError(f"the data have {labels} classes but {label} outputs {tuple(out.shape[1:])}",
                        path=data.source, fix=f"give the model {labels} outputs (class scores), or data with "
                        "its classes")
    return fitted, shape


__all__ = ["fit_to_model", "input_shape_for"]
