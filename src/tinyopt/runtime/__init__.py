"""tinyopt.runtime: a numpy interpreter for float and int8 Graphs, bit-exact with TFLM's reference kernels.

``prepare_node`` computes each operator's integer parameters once (as TFLM's Prepare does); each operator
record's ``eval`` (``tinyopt/ops/<name>.py``) then runs in integers only.
"""

from __future__ import annotations

import importlib

_LAZY = {"Interpreter": "tinyopt.runtime.interpreter", "prepare_node": "tinyopt.runtime.prepare",
         "OpSupport": "tinyopt.runtime.support", "check_support": "tinyopt.runtime.support"}


def __getattr__(name: str):
    """Import on first use: the operator records import ``runtime.fixedpoint``, which must not pull in the
    interpreter (and through it the records) while they load."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tinyopt.runtime' has no attribute {name!r}")


__all__ = ["Interpreter", "OpSupport", "check_support", "prepare_node"]
