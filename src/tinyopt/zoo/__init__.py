"""Model zoo: the networks the project measures, compresses and deploys, by name.

``build("dscnn")`` returns a fresh ``torch.nn.Module`` (initialised from torch's global RNG, so
``torch.manual_seed`` makes it deterministic) with ``model.input_shape`` in PyTorch order, no batch.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from torch import nn

from tinyopt.errors import ConfigError
from tinyopt.zoo._cnn import cnn
from tinyopt.zoo._models import (
    ZooModel,
    cnn1d,
    digits_cnn,
    dscnn,
    lenet5,
    lenet300,
    mlp,
    mobilenet_v1,
    resnet8,
)
from tinyopt.zoo._transfer import freeze_backbone, head_of, replace_head

ZOO: dict[str, Callable[..., nn.Module]] = {
    "mlp": mlp,
    "lenet300": lenet300,
    "lenet5": lenet5,
    "dscnn": dscnn,
    "resnet8": resnet8,
    "mobilenet_v1": mobilenet_v1,
    "cnn1d": cnn1d,
    "digits_cnn": digits_cnn,
    "cnn": cnn,
}


def _builder(name: str) -> Callable[..., nn.Module]:
    if name not in ZOO:
        from tinyopt._suggest import did_you_mean

        near = did_you_mean(name, ZOO, cutoff=0.6)
        hint = f"did you mean '{near[0]}'? " if near else ""
        raise ConfigError(f"unknown zoo model '{name}'", where="zoo",
                          fix=f"{hint}known models: {', '.join(ZOO)}")
    return ZOO[name]


def build(name: str, **kwargs) -> nn.Module:
    """Build zoo model ``name``; keyword arguments go to its builder (all take ``num_classes``)."""
    fn = _builder(name)
    params = inspect.signature(fn).parameters
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise ConfigError(f"unknown option '{unknown[0]}' for zoo model '{name}'", where="zoo",
                          fix=f"options of {name}: {', '.join(params)}")
    try:
        return fn(**kwargs)
    except (TypeError, ValueError, RuntimeError) as e:  # e.g. a negative width or a too-small input
        raise ConfigError(f"cannot build zoo model '{name}' with {kwargs}: {e}", where="zoo",
                          fix=f"check the options of {name}: {', '.join(params)}") from e


def input_shape(name: str, **kwargs) -> tuple[int, ...]:
    """Input shape of ``build(name, **kwargs)`` in PyTorch order without batch: (C, H, W), (C, L) or (N,)."""
    return tuple(build(name, **kwargs).input_shape)


__all__ = ["ZOO", "ZooModel", "build", "freeze_backbone", "head_of", "input_shape", "replace_head"]
