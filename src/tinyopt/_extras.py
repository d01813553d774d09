"""Optional dependencies: which pip extra brings each one, and the one error that says so.

``pip install tinyopt`` gives what analyzing, checking, running and deploying a ``.tflite`` or a YAML spec
needs (numpy, pyyaml, flatbuffers, typer, rich). Everything else is an extra; a door that needs one and does
not find it raises ``MissingExtraError`` naming the extra (the CLI prints it and exits 2), never a bare
``ModuleNotFoundError`` traceback.
"""

from __future__ import annotations

import functools
import importlib.util

from tinyopt.errors import MissingExtraError

# top-level module -> the extra of pyproject.toml that installs it
EXTRA_OF = {
    "torch": "torch", "torch_pruning": "torch", "torchvision": "torch",
    "onnx": "onnx", "onnxruntime": "onnx",
    "optuna": "tune", "ray": "tune",
    "matplotlib": "report",
    "sklearn": "data", "scipy": "data", "PIL": "data",
}
PACKAGE_OF = {"torch_pruning": "torch-pruning", "sklearn": "scikit-learn", "PIL": "pillow"}


def missing_extra(error: ModuleNotFoundError, what: str | None = None) -> MissingExtraError | None:
    """The ``MissingExtraError`` for an optional module that failed to import, or None for any other."""
    top = (error.name or "").split(".")[0]
    extra = EXTRA_OF.get(top)
    if extra is None:
        return None
    package = PACKAGE_OF.get(top, top)
    return MissingExtraError(f"{what or 'this'} needs {package} (the [{extra}] extra), which is not "
                             "installed",
                             fix=f"pip install 'tinyopt[{extra}]' (or 'tinyopt[all]' for every extra)")


def require(module: str, what: str) -> None:
    """Raise ``MissingExtraError`` now when ``module`` is absent, before any work is done."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ModuleNotFoundError, ValueError):
        found = False
    if not found:
        err = missing_extra(ModuleNotFoundError(name=module), what)
        if err is None:
            raise ValueError(f"{module} is not an optional dependency of tinyopt")
        raise err


def translated(fn):
    """Decorator: a missing optional module inside ``fn`` becomes ``MissingExtraError`` naming the extra."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ModuleNotFoundError as e:
            err = missing_extra(e, f"tinyopt.{fn.__name__}")
            if err is None:
                raise
            raise err from None

    return wrapper


__all__ = ["EXTRA_OF", "missing_extra", "require", "translated"]
