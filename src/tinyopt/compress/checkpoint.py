"""User files for compression: ``state_dict`` checkpoints and ``.npz`` datasets, checked at the door.

A checkpoint is read with ``torch.load(weights_only=True)``: tensors and plain containers only, so a
file carrying a pickled object is refused before anything in it can run. A checkpoint that does not fit
the architecture is reported with the first missing, unexpected or mis-shaped key.
"""

from __future__ import annotations

import io
import os
import pickle
import warnings
from pathlib import Path

import torch
from torch import nn

from tinyopt._io import atomic_write_bytes
from tinyopt.data.sources import NPZ_KEYS  # re-exported: the keys load_npz reads
from tinyopt.errors import DataError, ModelFormatError


def resize_to_(model: nn.Module, state: dict) -> nn.Module:
    """Shrink Conv/Linear/BatchNorm layers in place to the channel counts a structured-pruned state_dict
    holds, so a zoo model can load weights saved after ``prune_structured`` (kernel sizes, strides and
    every other attribute must already agree; only channel/feature counts change)."""
    for name, m in model.named_modules():
        key = f"{name}.weight" if name else "weight"
        if key not in state:
            continue
        w = state[key]
        if (isinstance(m, (nn.Conv1d, nn.Conv2d)) and w.dim() == m.weight.dim()
                and w.shape[2:] == m.weight.shape[2:]):
            depthwise = m.groups == m.in_channels == m.out_channels and m.groups > 1
            m.out_channels = w.shape[0]
            m.groups = w.shape[0] if depthwise else m.groups
            m.in_channels = w.shape[1] * m.groups
        elif isinstance(m, nn.Linear) and w.dim() == 2:
            m.out_features, m.in_features = w.shape
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and w.dim() == 1:
            m.num_features = w.shape[0]
        else:
            continue
        for pname, t in list(m.named_parameters(recurse=False)) + list(m.named_buffers(recurse=False)):
            k = f"{name}.{pname}" if name else pname
            if k in state and state[k].shape != t.shape:
                new = torch.empty_like(state[k], dtype=t.dtype)
                if isinstance(t, nn.Parameter):
                    setattr(m, pname, nn.Parameter(new, requires_grad=t.requires_grad))
                else:
                    m.register_buffer(pname, new)
    return model


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a ``.pt`` file, read with ``weights_only=True``: anything that is not a mapping of
    names to tensors (a pickled module, TorchScript, foreign bytes) is refused, never executed."""
    return read_checkpoint(path)[0]


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], str | None]:
    """``read_state_dict`` plus the ``"tinyopt"`` text a compressed model carries beside its
    ``"state_dict"`` (JSON written by ``tinyopt.compress.artifact``; ``None`` in a plain checkpoint)."""
    from tinyopt._pickle_scan import prescan_checkpoint

    p = Path(path)
    prescan_checkpoint(p)  # container, pickle opcodes and state_dict structure checked before torch unpickles
    try:
        with warnings.catch_warnings():  # torch warns on odd pickle protocols; the error below says it all
            warnings.simplefilter("ignore")
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch.load raises many types on foreign bytes; all mean "bad file"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "weights_only" in str(e) or isinstance(e, pickle.UnpicklingError):
            raise ModelFormatError("refused: the file contains pickled Python objects, not only "
                                   f"tensors ({first[:120]})", path=path,
                                   fix="save with torch.save(model.state_dict(), path); tinyopt never "
                                   "unpickles objects from user files") from None
        raise ModelFormatError(f"not a PyTorch checkpoint ({type(e).__name__}: {first[:100]})", path=path,
                               fix="give a file written by torch.save(model.state_dict(), path)") from None
    meta = None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        meta = obj.get("tinyopt") if isinstance(obj.get("tinyopt"), str) else None
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj:
        raise ModelFormatError(f"holds a {type(obj).__name__}, not a state_dict (a mapping "
                               "of names to tensors)",
                               path=path, fix="save with torch.save(model.state_dict(), path)")
    for k, v in obj.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise ModelFormatError(f"entry {str(k)[:60]!r} is a {type(v).__name__}, not a tensor", path=path,
                                   where=f"key {str(k)[:60]!r}", fix="save only model.state_dict()")
    return obj, meta


def load_checkpoint(path: str | os.PathLike, model: nn.Module, resize: bool = False) -> nn.Module:
    """Load a ``state_dict`` (or ``{"state_dict": ...}``) into ``model`` strictly; with ``resize`` the
    model's layers first take the (smaller) channel counts of a structured-pruned checkpoint."""
    return load_state(model, read_state_dict(path), path, resize=resize)


def load_state(model: nn.Module, obj: dict, path: str | os.PathLike, resize: bool = False,
               fix: str = "use the checkpoint of this model (same zoo name and options)") -> nn.Module:
    """Load tensors read from ``path`` into ``model`` strictly, naming the first key that does not fit."""
    if resize:
        resize_to_(model, obj)
    own = model.state_dict()
    missing = [k for k in own if k not in obj]
    unexpected = [k for k in obj if k not in own]
    if missing or unexpected:
        what = f"missing key '{missing[0]}'" if missing else f"unexpected key '{unexpected[0]}'"
        raise ModelFormatError(f"does not match the architecture: {what} ({len(missing)} missing, "
                               f"{len(unexpected)} unexpected)", path=path, where=type(model).__name__,
                               fix=fix)
    for k, v in obj.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise ModelFormatError(f"does not match the architecture: '{k}' has shape {tuple(v.shape)}, "
                                   f"the model expects {tuple(own[k].shape)}", path=path, where=k, fix=fix)
        if not torch.isfinite(v).all() and v.is_floating_point():
            raise DataError(f"'{k}' contains NaN or inf", path=path, where=k,
                            fix="use a checkpoint from a training run that did not diverge")
    model.load_state_dict(obj)
    return model


def save_state_dict(path: str | os.PathLike, state_dict: dict) -> Path:
    """Write a state_dict atomically (a killed run leaves the old file or none, never half of one)."""
    buf = io.BytesIO()
    torch.save(state_dict, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load_npz(path: str | os.PathLike, input_shape: tuple[int, ...] | None = None):
    """``x_train, y_train, x_val, y_val`` as tensors (see ``tinyopt.data.sources.read_split_npz``, which
    checks them without torch)."""
    from tinyopt.data.sources import read_split_npz

    return tuple(torch.from_numpy(a) for a in read_split_npz(path, input_shape))


__all__ = ["NPZ_KEYS", "load_checkpoint", "load_npz", "load_state", "read_checkpoint", "read_state_dict",
           "resize_to_", "save_state_dict"]
