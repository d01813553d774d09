"""PyTorch models named by text: ``zoo:<name>`` or ``path/to/file.py:factory`` (with keyword arguments).

The one resolver behind every door that takes a PyTorch model by name (analyze, compress, convert,
deploy, the distillation student). A reference is plain data, so a compressed model records the
reference it was built from, and ``convert`` / ``deploy`` rebuild the architecture without the user
stating it again. The user's file is run as ``python file.py`` would run it: it is their own code.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tinyopt.errors import ConfigError, ModelFormatError

_FILE_REF = re.compile(r"\.py:[^/\\]*$")


def is_torch_ref(text: str) -> bool:
    """True for ``zoo:<name>`` and ``<file>.py:<name>``."""
    return text.startswith("zoo:") or bool(_FILE_REF.search(text))


@dataclass(frozen=True)
class ModelRef:
    """``source`` is ``zoo:<name>`` or ``<file>.py:<factory>``; ``kwargs`` go to the builder.

    ``sha256`` (file references) is the file's digest when the reference was recorded: a rebuild from a
    file that changed since then warns, because the same weights in changed code may compute something else.
    """

    source: str
    kwargs: dict = field(default_factory=dict)
    sha256: str | None = None

    @classmethod
    def parse(cls, text: str, kwargs: dict | None = None) -> ModelRef:
        if not is_torch_ref(text):
            raise ConfigError(f"'{text}' is not a PyTorch model reference", where="model",
                              fix="write zoo:<name> or path/to/file.py:factory")
        return cls(text, dict(kwargs or {}))

    @property
    def is_zoo(self) -> bool:
        return self.source.startswith("zoo:")

    @property
    def label(self) -> str:
        """``lenet5`` or ``net.py:make``: short enough for a graph name and a table."""
        if self.is_zoo:
            return self.source[4:]
        path, _, attr = self.source.rpartition(":")
        return f"{Path(path).name}:{attr}"

    def file(self, search: Sequence[str | os.PathLike] = ()) -> Path:
        """The Python file of a file reference: as written, else relative to each folder of ``search``."""
        path_text = self.source.rpartition(":")[0]
        p = Path(os.path.expanduser(path_text))
        candidates = [p] if p.is_absolute() else [Path(s) / p for s in search] + [p]
        for c in candidates:
            if c.is_file():
                return c
        elsewhere = [str(s) for s in search if Path(s).resolve() != Path.cwd()]
        where = f" (looked in {', '.join(elsewhere)} and in the current folder)" if elsewhere else ""
        raise ModelFormatError("file not found", path=path_text,
                               fix=f"check the path of the Python file{where}")

    def resolved(self, search: Sequence[str | os.PathLike] = ()) -> ModelRef:
        """This reference with its file path as found (usable from the current folder) and the file's
        sha256 recorded; zoo references are returned unchanged."""
        if self.is_zoo:
            return self
        path = self.file(search)
        attr = self.source.rpartition(":")[2]
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        return ModelRef(f"{path.as_posix()}:{attr}", dict(self.kwargs), digest)

    def relative_to(self, folder: str | os.PathLike) -> ModelRef:
        """The file path rewritten relative to ``folder`` (where a compressed model is written), so the
        record survives moving the project folder as a whole."""
        if self.is_zoo:
            return self
        path_text, _, attr = self.source.rpartition(":")
        rel = os.path.relpath(os.path.abspath(path_text), os.path.abspath(folder))
        return ModelRef(f"{Path(rel).as_posix()}:{attr}", dict(self.kwargs), self.sha256)

    def build(self, search: Sequence[str | os.PathLike] = ()):
        """A fresh ``torch.nn.Module`` (initialised from torch's global RNG: seed it for determinism)."""
        if self.is_zoo:
            from tinyopt.zoo import build

            return build(self.source[4:], **self.kwargs)
        import warnings

        path = self.file(search)
        attr = self.source.rpartition(":")[2]
        where = str(path)
        if not attr.isidentifier():
            raise ConfigError(f"'{attr}' is not a Python name", path=where,
                              fix="write MODEL as path/to/file.py:factory_or_class")
        data = path.read_bytes()
        if self.sha256 and hashlib.sha256(data).hexdigest() != self.sha256:
            warnings.warn(f"{where} changed since the model was compressed; the architecture is rebuilt "
                          "from the file as it is now", stacklevel=2)
        name = f"tinyopt_user_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]}_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod  # dataclasses and pickling look classes up by module name
        try:
            spec.loader.exec_module(mod)  # the user's own code, as `python file.py` would run it
        except Exception as e:
            sys.modules.pop(name, None)
            raise ModelFormatError(f"importing the file failed: {type(e).__name__}: {e}", path=where,
                                   fix="make the file importable on its own") from None
        factory = getattr(mod, attr, None)
        if factory is None or not callable(factory):
            raise ConfigError(f"the file defines no callable '{attr}'", path=where,
                              fix="name a function or class that returns a torch.nn.Module")
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        try:
            module = factory(**self.kwargs)
        except Exception as e:
            raise ModelFormatError(f"calling {attr}({args}) failed: {type(e).__name__}: {e}", path=where,
                                   fix=f"make {attr}({args}) work" if args else
                                   f"make {attr}() work without arguments") from None
        import torch

        if not isinstance(module, torch.nn.Module):
            raise ModelFormatError(f"{attr}({args}) returned a {type(module).__name__}, not a "
                                   "torch.nn.Module", path=where, fix=f"make {attr} return the model")
        return module

    def to_dict(self) -> dict:
        return {"source": self.source, "kwargs": dict(self.kwargs), "sha256": self.sha256}

    @classmethod
    def from_dict(cls, d: dict) -> ModelRef:
        return cls(str(d["source"]), dict(d.get("kwargs") or {}), d.get("sha256"))


__all__ = ["ModelRef", "is_torch_ref"]
