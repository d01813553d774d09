"""``tinyopt convert MODEL --calib DATA.npz --out OUT.tflite``: a float model → an int8 ``.tflite``
(``tinyopt.convert`` then ``tinyopt.deploy(..., target="tflite")``).

MODEL is a float ``.tflite`` or ``.onnx`` file, ``zoo:<name>`` or ``file.py:factory`` (random weights
unless ``--checkpoint`` gives a PyTorch state dict). DATA holds the calibration samples (``.npz`` key
``x``, or its only array; or an ``.npy``), batch first, in the model's own layout (NCHW for a PyTorch
model). The output is written atomically and runs in TFLM and LiteRT; with ``--io int8`` (default) its
input and output are int8, as the TFLite converter's ``inference_input_type=int8`` gives.
``--activations int16`` converts to 16x8 (int16 activations, int8 weights, int64 biases) where every
operator has a 16x8 kernel in TFLM; the input and output are then int16.
"""

from __future__ import annotations

import typer

from tinyopt._api.arrays import load_calibration  # noqa: F401 (re-exported: the old home of the loader)
from tinyopt._api.vocab import INPUT_SHAPE_HELP


def register(app: typer.Typer) -> None:
    @app.command()
    def convert(
        model: str = typer.Argument(..., help="float .tflite, .onnx, zoo:<name>, file.py:factory, or a "
                                              ".pt/.topz written by tinyopt compress"),
        calib: str = typer.Option(None, "--calib", help="calibration samples .npz (key x) or .npy, batch "
                                                        "first, in the model's own layout (a tinyopt "
                                                        "compress output: optional, its recorded data)"),
        out: str = typer.Option(..., "--out", help="the int8 .tflite to write"),
        checkpoint: str = typer.Option(None, "--checkpoint",
                                       help="PyTorch state_dict for a zoo/file.py model"),
        io: str = typer.Option("int8", "--io",
                               help="int8 (integer input/output) | float (QUANTIZE/DEQUANTIZE)"),
        activations: str = typer.Option("int8", "--activations",
                                        help="int8 (TFLM's int8 spec) | int16 (16x8: int16 activations, "
                                             "int8 weights, int64 biases)"),
        observer: str = typer.Option(None, "--observer", help="range observer (default: min/max)"),
        input_shape: str = typer.Option(None, "--input-shape", help=INPUT_SHAPE_HELP),
    ) -> None:
        """Quantize MODEL to int8 (TFLM spec), or to 16x8 with --activations int16, with calibration data
        and write a .tflite."""
        from tinyopt._api.run import deploy
        from tinyopt._api.transform import convert as run_convert
        from tinyopt._api.vocab import parse_input_shape
        from tinyopt.errors import ConfigError

        if not out.endswith(".tflite"):  # before any work
            raise ConfigError(f"output '{out}' is not a .tflite path", where="--out",
                              fix="name it OUT.tflite")
        m = run_convert(model, calib, checkpoint=checkpoint, io=io, observer=observer,
                        input_shape=parse_input_shape(input_shape), activations=activations)
        deploy(m, target="tflite", out=out)
        io_kind = activations if io == "int8" else io
        typer.echo(f"wrote {out}: {len(m.graph.nodes)} operators, int8 weights, {activations} activations, "
                   f"{io_kind} I/O")
