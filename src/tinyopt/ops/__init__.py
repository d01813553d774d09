"""The operator registry: one module per operator, each registering one ``Op`` record.

Adding an operator is adding ``tinyopt/ops/<name>.py`` (and its C kernel file and test); every module here
whose name does not start with ``_`` is imported at first use, so no list of operators exists anywhere
else. ``get("CONV_2D")`` returns the record; ``names()`` lists what tinyopt knows.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from tinyopt.errors import UnsupportedOpError
from tinyopt.ops._record import (
    OPAQUE,
    REGISTRY,
    CKernel,
    DoorTables,
    Field,
    Op,
    OpData,
    Options,
    QuantRule,
    door_tables,
    opaque,
    register,
)

_loaded = False


def _load() -> dict[str, Op]:
    global _loaded
    if not _loaded:
        for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
            if not mod.name.startswith("_"):
                importlib.import_module(f"{__name__}.{mod.name}")
        _loaded = True
    return REGISTRY


def get(name: str, *, path: str | None = None, where: str | None = None) -> Op:
    """The record of operator ``name`` (an ``Opaque`` placeholder for an unknown operator an importer kept),
    or an UnsupportedOpError naming it (and the node, if given)."""
    reg = _load()
    rec = reg.get(name) or OPAQUE.get(name)
    if rec is None:
        raise UnsupportedOpError(f"operator {name} is not supported", path=path, where=where,
                                 fix="replace it in the model; `tinyopt check MODEL` lists what each runtime "
                                     "supports")
    return rec


def find(name: str) -> Op | None:
    """The record of ``name`` (or its opaque placeholder) or None."""
    return _load().get(name) or OPAQUE.get(name)


def is_opaque(name: str) -> bool:
    """True for an operator tinyopt does not know, kept in a graph for analysis."""
    return name not in _load() and name in OPAQUE


def records() -> list[Op]:
    """Every record, sorted by name."""
    return [r for _, r in sorted(_load().items())]


def names() -> tuple[str, ...]:
    return tuple(sorted(_load()))


@lru_cache(maxsize=1)
def doors() -> DoorTables:
    """ONNX / PyTorch / YAML names → records."""
    _load()
    return door_tables()


def by_builtin() -> dict[int, Op]:
    """TFLite builtin code → record (operators that exist in TFLite)."""
    return {r.builtin: r for r in _load().values() if r.builtin is not None}


__all__ = ["CKernel", "Field", "Op", "OpData", "Options", "QuantRule", "by_builtin", "doors", "find", "get",
           "is_opaque", "names", "opaque", "records", "register"]
