"""Transfer learning on any module: the head is the last ``nn.Linear`` in module order."""

from __future__ import annotations

from torch import nn

from tinyopt.errors import ConfigError


def head_of(model: nn.Module) -> tuple[str, nn.Linear]:
    """(qualified name, module) of the classifier head: the last Linear registered in ``model``."""
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ConfigError(f"{type(model).__name__} has no nn.Linear classifier head", where="zoo",
                          fix="end the model in an nn.Linear layer")
    return linears[-1]


def freeze_backbone(model: nn.Module) -> nn.Module:
    """Freeze every parameter except the head's (returns ``model``, changed in place).

    BatchNorm running statistics still update in train mode; call ``model.eval()`` on the backbone if
    they should stay fixed as well.
    """
    name, head = head_of(model)
    for p in model.parameters():
        p.requires_grad_(False)
    for p in head.parameters():
        p.requires_grad_(True)
    return model


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Swap the head for a fresh ``Linear(in_features, num_classes)`` (in place; returns ``model``)."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes <= 0:
        raise ConfigError(f"num_classes must be a positive integer, got {num_classes!r}", where="zoo",
                          fix="give the number of classes of the new task")
    name, head = head_of(model)
    new = nn.Linear(head.in_features, num_classes, bias=head.bias is not None)
    parent = model
    *path, leaf = name.split(".")
    for part in path:
        parent = getattr(parent, part)
    setattr(parent, leaf, new)
    return model
