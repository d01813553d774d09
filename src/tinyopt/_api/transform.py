"""``tinyopt.compress`` (training-time compression of a PyTorch module, by recipe) and ``tinyopt.convert``
(a float or fake-quantized model + calibration data → an int8 model following TFLM's quantization spec)."""

from __future__ import annotations

import os

import numpy as np

from tinyopt._api.arrays import load_calibration
from tinyopt._api.display import Result, Table, jsonable
from tinyopt._api.model import Model, as_batch, load
from tinyopt._extras import translated
from tinyopt.errors import ConfigError, DataError

IO_TYPES = ("int8", "float")
ACTIVATION_TYPES = ("int8", "int16")


def _calibration(calib, source: str | None) -> np.ndarray:
    if isinstance(calib, (str, os.PathLike)):
        return load_calibration(calib)
    return calib


@translated
def convert(model, calib=None, *, example_input=None, input_shape: tuple[int, ...] | None = None,
            checkpoint: str | os.PathLike | None = None, io: str = "int8",
            observer: str | None = None, activations: str = "int8") -> Model:
    """``model`` (float, or a module prepared by ``tinyopt.compress``' PTQ/QAT steps) → an int8 ``Model``.

    ``calib`` holds calibration samples, batch first, in the model's own layout (a PyTorch module: NCHW),
    as an array or tensor, or the path of an ``.npz`` (key ``x``) / ``.npy``; a ``tinyopt compress`` output
    needs none (samples of the data it was compressed with), and keeps the int8 ranges it learnt.
    ``io="int8"`` gives int8 input and output, as the TFLite converter's ``inference_input_type=int8``;
    ``"float"`` keeps float I/O through QUANTIZE/DEQUANTIZE. The result is a TFLite model: its input is
    NHWC, like the ``.tflite`` that ``tinyopt.deploy(result, target="tflite", out=...)`` writes.
    ``activations="int16"``: 16x8 quantization (int16 activations, symmetric, zero point 0; int8 weights;
    int64 biases), for models whose every operator has a 16x8 kernel in TFLM; ``io="int8"`` then means
    integer I/O, i.e. int16 input and output. Ranges are calibrated (a compressed model's int8 ranges and
    weight encodings are for int8).
    """
    from tinyopt.convert import convert_graph, convert_torch

    if io not in IO_TYPES:
        raise ConfigError(f"unknown --io '{io}'", where="--io", fix="use int8 or float")
    if activations not in ACTIVATION_TYPES:
        raise ConfigError(f"unknown --activations '{activations}'", where="--activations",
                          fix="use int8 (the int8 spec) or int16 (16x8 quantization)")
    m = load(model, example_input, input_shape=input_shape, checkpoint=checkpoint)
    what = "calibration samples"
    cm = m.compressed  # a tinyopt compress output: samples of its recorded data when calib is not given
    if calib is None and cm is None:
        raise ConfigError("calibration samples are needed", where="--calib",
                          fix="give calib (an .npz with key x, or an array) in the model's own layout")
    x = cm.calibration() if calib is None else _calibration(calib, m.source)
    source = str(calib) if isinstance(calib, (str, os.PathLike)) else m.source
    if m.module is not None:
        x = as_batch(x, m.input_shape, {3: "NCHW", 2: "NCL"}.get(len(m.input_shape), ""), what, source)
        _numeric(x, source)
        graph = convert_torch(m.module, x.astype(np.float32), m.input_shape, io=io, observer=observer,
                              fixed=cm.fixed_ranges() if cm is not None else None, encode=cm is not None,
                              activations=activations)
    else:
        if not m.has_weights:
            raise ConfigError("the model has no weights (an architecture spec)", path=m.source,
                              fix="give a .tflite/.onnx file, or a PyTorch model (with its checkpoint)")
        try:
            xs = m.graph_inputs(x, what)
        except DataError as e:
            raise DataError(e.message, path=source, fix=e.fix) from None
        for a in xs:
            _numeric(a, source)
        graph = convert_graph(m.graph, [a.astype(np.float32) for a in xs], io=io, observer=observer,
                              activations=activations)
    graph.name, graph.source = m.name, m.source
    return Model(graph, source=m.source, name=m.name)


def _numeric(x: np.ndarray, source: str | None) -> None:
    if x.dtype.kind not in "fiu":
        raise DataError(f"calibration samples are {x.dtype}, not numbers", path=source,
                        fix="save float samples")


class Compressed(Result):
    """What ``tinyopt.compress`` gives back (the run ``tinyopt compress`` makes): the compressed ``model``,
    one row per recipe step (accuracy, change in percentage points, non-zero parameters, MACs, exact bytes,
    compression ratio), the ``recipe``, the ``state`` the steps passed on (what convert and the saved output
    need beyond the weights) and the model's ``input_shape``."""

    def __init__(self, run):
        self.run = run
        self.model, self.rows, self.recipe, self.state = run.model, run.rows, run.recipe, run.state
        self.input_shape, self.source, self.data = tuple(run.input_shape), run.model_name, run.data

    def state_dict(self) -> dict:
        """Plain float tensors (masks and rounding baked in, observers removed)."""
        from tinyopt.compress import deployable_state_dict

        return deployable_state_dict(self.model)

    def save(self, path: str | os.PathLike) -> int:
        """Write what ``tinyopt compress --out`` writes (``.pt``, or ``.topz`` coded, with the record):
        ``tinyopt.load(path)`` rebuilds a ``zoo:``/``file.py:factory`` model from it and ``tinyopt.convert``
        calibrates on the recorded data when it was a ``--data`` word. Returns the bytes written."""
        return self.run.save(path)

    def to_dict(self) -> dict:
        return jsonable(self.run.to_dict())

    def tables(self) -> list[Table]:
        cols = ["step", "accuracy", "Δ pp", "params≠0", "MACs", "bytes", "CR"]
        return [Table(f"{self.source}: compression by step", cols,
                      [[r.step, f"{r.accuracy:.4f}", f"{r.delta_pp:+.2f}", r.params, r.macs, r.bytes,
                        f"{r.ratio:.2f}"] for r in self.rows], right=tuple(cols[1:]))]


def _training_data(data):
    """Four arrays (a tuple, or a dict by name) as the loaders' ``TrainingData``, in the model's own layout;
    any other ``data`` (a ``--data`` word, a ``TrainingData``) goes through unchanged."""
    from tinyopt.data.doors import TrainingData

    keys = ("x_train", "y_train", "x_val", "y_val")
    if isinstance(data, (str, os.PathLike, TrainingData)):
        return data
    if isinstance(data, dict):
        missing = [k for k in keys if k not in data]
        if missing:
            raise DataError(f"the data has no {', '.join(missing)}", where="data",
                            fix=f"give a dict with {', '.join(keys)}")
        data = tuple(data[k] for k in keys)
    if not isinstance(data, (tuple, list)) or len(data) != 4:
        raise DataError("data must be a --data word (an .npz, a folder, digits...), a dict or a tuple "
                        "(x_train, y_train, x_val, y_val)", where="data",
                        fix="pass the four arrays, inputs in the model's own layout")
    arrays = [np.asarray(a.detach().cpu() if hasattr(a, "detach") else a) for a in data]
    x_train, y_train, x_val, y_val = arrays
    y_train, y_val = y_train.astype(np.int64), y_val.astype(np.int64)
    n = int(max(y_train.max(initial=0), y_val.max(initial=0))) + 1
    return TrainingData(x_train.astype(np.float32), y_train, x_val.astype(np.float32), y_val,
                        [str(c) for c in range(n)], "data", False)


@translated
def compress(model, recipe, data, *, checkpoint: str | os.PathLike | None = None, overrides=(),
             progress: bool = False, on_row=None) -> Compressed:
    """Run ``recipe``'s steps (prune, quantize, cluster, Huffman, distill, low-rank, fold BN, fine-tune) on a
    PyTorch ``model`` and say what each step bought: the same run as ``tinyopt compress``.

    ``model``: a ``torch.nn.Module``, ``"zoo:<name>"``, ``"file.py:factory"`` (``checkpoint``: its trained
    ``state_dict``) or a ``tinyopt compress`` output. ``recipe``: a YAML path, a dict or a ``Recipe``;
    ``overrides`` are ``--set KEY=VALUE`` changes. ``data``: what ``tinyopt compress --data`` takes (an
    ``.npz``, an image or wav folder, ``digits``, ...), or the four arrays ``x_train, y_train, x_val, y_val``
    (a tuple or dict), inputs in the model's own layout: they also give a bare module its input shape.
    ``on_row(row)`` is called as each step's row arrives. ``result.save(path)`` writes what ``--out`` writes.
    """
    from tinyopt.compress.job import compress_run

    if isinstance(model, Model):
        if model.module is None:
            raise ConfigError("compress works on PyTorch models (training-time techniques need gradients)",
                              path=model.source, fix="give a torch.nn.Module, zoo:<name> or file.py:factory; "
                              "a .tflite/.onnx model goes straight to tinyopt.convert")
        model = model.source if model.compressed is not None else model.module
    run = compress_run(model, recipe, _training_data(data), checkpoint=checkpoint, overrides=overrides,
                       progress=progress, on_row=on_row)
    return Compressed(run)


__all__ = ["Compressed", "compress", "convert"]
