"""tinyopt: measure, compress, convert and deploy neural networks for microcontrollers.

The same verbs as the CLI, with the same words::

    import tinyopt
    model = tinyopt.load("model.tflite")                 # or a torch.nn.Module, "zoo:lenet5", "net.py:make"
    report = tinyopt.analyze(model, device="nano33ble")     # report.to_dict() == `tinyopt analyze --json`
    y = tinyopt.infer(model, x)                             # the numpy runtime, bit-exact with TFLM
    tinyopt.deploy(model, target="c", out="lib/")           # or "arduino", "tflite"

``tinyopt.compress(module, recipe, data)``, ``tinyopt.convert(model, calib=...)``, ``tinyopt.check``,
``tinyopt.tune``, ``tinyopt.select`` and ``tinyopt.devices()`` complete the set. Importing tinyopt imports
none of the optional packages (torch, onnx, scipy, scikit-learn, matplotlib, optuna).
"""

from __future__ import annotations

import importlib
import sys
import types

from tinyopt.errors import TinyoptError

__version__ = "0.1.0"

_VERBS = {"load": "model", "analyze": "measure", "check": "measure", "devices": "measure", "infer": "run",
          "deploy": "run", "compress": "transform", "convert": "transform", "tune": "search",
          "select": "search"}
_TYPES = {"Model": "model", "Report": "measure", "CheckReport": "measure", "DeviceTable": "measure",
          "Deployment": "run", "Compressed": "transform", "TuneReport": "search", "Selection": "search"}
# Verbs that share their name with a subpackage (tinyopt/compress/, tinyopt/convert/, tinyopt/devices/):
# once imported, the subpackage is the attribute, so the subpackage itself is made callable (below).
_PACKAGE_VERBS = ("compress", "convert", "devices")


def _facade(name: str):
    return getattr(importlib.import_module(f"tinyopt._api.{_VERBS.get(name) or _TYPES[name]}"), name)


class _CallablePackage(types.ModuleType):
    """A subpackage that is also a facade verb: ``tinyopt.convert(model, calib=...)`` calls the verb,
    ``tinyopt.convert.convert_graph`` is still the subpackage's function."""

    def __call__(self, *args, **kwargs):
        return _facade(self.__name__.rpartition(".")[2])(*args, **kwargs)


class _Package(types.ModuleType):
    """``tinyopt`` itself: the import system sets ``tinyopt.<sub>`` when it loads a subpackage; a verb's
    subpackage is made callable right then, whichever way it was first imported."""

    def __setattr__(self, name: str, value) -> None:
        if (name in _PACKAGE_VERBS and isinstance(value, types.ModuleType)
                and value.__name__ == f"tinyopt.{name}"):
            value.__class__ = _CallablePackage
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str):
    if name in _PACKAGE_VERBS:
        return importlib.import_module(f"tinyopt.{name}")  # callable, see _Package
    if name in _VERBS or name in _TYPES:
        value = _facade(name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tinyopt' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_VERBS, *_TYPES})


__all__ = ["TinyoptError", "__version__", *sorted(_VERBS), *sorted(_TYPES)]
