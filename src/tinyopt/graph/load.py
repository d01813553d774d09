"""One door for every model file: pick the importer by suffix, check the file exists and is not empty."""

from __future__ import annotations

import os
from pathlib import Path

from tinyopt.errors import ModelFormatError
from tinyopt.graph.ir import Graph

SUFFIXES = (".yaml", ".yml", ".tflite", ".onnx")


def load_model(path: str | os.PathLike, input_shape: tuple[int, ...] | None = None, opaque: bool = False,
               input_values: dict | None = None) -> Graph:
    """Load ``.yaml``/``.yml`` (architecture spec), ``.tflite`` or ``.onnx`` into a validated Graph.

    ``input_shape`` (without the batch, in the model's own layout) sets a spec's input, and an ONNX model's
    dynamic input dimensions (a list of shapes for several inputs).

    ``input_values``: ONNX inputs fixed at a value (they become constants; control flow on them folds).
    ``opaque``: keep operators tinyopt does not know as opaque nodes (for analyze and check: everything else
    is counted, and check lists every one of them); otherwise the first is refused.

    PyTorch models come in through ``tinyopt.graph.torch_import.from_torch`` (they need a module object
    and an example input shape, not a file).
    """
    p = Path(path)
    if not p.exists():
        raise ModelFormatError("file not found", path=path, fix="check the path and the file name")
    if p.is_dir():
        raise ModelFormatError("is a folder, not a model file", path=path,
                               fix="give the model file inside it")
    suffix = p.suffix.lower()
    if suffix not in SUFFIXES:
        raise ModelFormatError(f"unknown model format '{suffix or p.name}'", path=path,
                               fix="give a .yaml, .tflite or .onnx file (PyTorch models via the "
                                   "Python API or a zoo name)")
    if p.stat().st_size == 0:
        raise ModelFormatError("the file is empty", path=path, fix="export the model again")
    if input_values and suffix != ".onnx":
        raise ModelFormatError("fixing an input at a value (--input-value) works for ONNX models", path=path,
                               fix="drop --input-value")
    if suffix in (".yaml", ".yml"):
        from tinyopt.graph.spec import load_spec

        return load_spec(p, input_shape)
    if suffix == ".tflite":
        from tinyopt.graph.tflite_import import load_tflite

        return load_tflite(p, opaque=opaque)
    from tinyopt.graph.onnx_import import load_onnx

    shapes = None
    if input_shape is not None:
        shapes = (list(input_shape) if input_shape
                  and isinstance(input_shape[0], (tuple, list)) else [input_shape])
    return load_onnx(p, opaque=opaque, input_shapes=shapes, input_values=input_values)
