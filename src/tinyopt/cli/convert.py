"""``tinyopt convert MODEL --calib DATA.npz --out OUT.tflite``: a float model → an int8 ``.tflite``.

MODEL is a float ``.tflite`` or ``.onnx`` file or ``zoo:<name>`` (random weights unless ``--checkpoint``
gives a PyTorch state dict). DATA.npz holds the calibration samples (key ``x``, or its only array),
batch first, either in the model's NHWC layout or in PyTorch's channels-first layout. The output is
written atomically and runs in TFLM and LiteRT; with ``--io int8`` (default) its input and output are
int8, as the TFLite converter's ``inference_input_type=int8`` gives.
"""

from __future__ import annotations

from pathlib import Path

import typer


def load_calibration(path: str):
    import zipfile

    import numpy as np

    from tinyopt.errors import DataError

    p = Path(path)
    if not p.is_file():
        raise DataError("file not found", path=path, fix="check the path of the calibration .npz")
    try:
        with np.load(p, allow_pickle=False) as data:
            if isinstance(data, np.ndarray):
                return data
            keys = list(data.keys())
            if not keys:
                raise DataError("the archive holds no arrays", path=path, fix="save samples with numpy.savez(path, x=...)")
            key = "x" if "x" in keys else keys[0]
            if key != "x" and len(keys) > 1:
                raise DataError(f"the archive has arrays {keys} but none named 'x'", path=path,
                                fix="name the calibration samples x: numpy.savez(path, x=samples)")
            return data[key]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"not a readable .npz/.npy file ({str(e).splitlines()[0] if str(e) else type(e).__name__})",
                        path=path, fix="save samples with numpy.savez(path, x=samples)") from None


def to_graph_layout(x, graph, source: str):
    """Samples in the graph's (N, *shape[1:]) layout, or channels-first transposed into it."""
    import numpy as np

    from tinyopt.errors import DataError

    want = tuple(graph.tensors[graph.inputs[0]].shape[1:])
    x = np.asarray(x)
    if x.dtype.kind not in "fiu":
        raise DataError(f"calibration samples are {x.dtype}, not numbers", path=source, fix="save float samples")
    if tuple(x.shape[1:]) == want:
        return x.astype(np.float32)
    if x.ndim == 4 and len(want) == 3 and tuple(x.shape[1:]) == (want[2], want[0], want[1]):
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).astype(np.float32)
    if x.ndim == 3 and len(want) == 3 and want[0] == 1 and tuple(x.shape[1:]) == (want[2], want[1]):
        return np.ascontiguousarray(x.transpose(0, 2, 1)[:, None]).astype(np.float32)
    raise DataError(f"calibration samples have shape {list(x.shape)}; the model input is (N, "
                    f"{', '.join(map(str, want))})", path=source,
                    fix="give samples batch first in the model's layout (NHWC) or channels first (NCHW)")


def load_float_model(model: str, checkpoint: str | None, input_shape):
    from tinyopt.errors import ConfigError

    if model.startswith("zoo:"):

        from tinyopt import zoo
        from tinyopt.graph.torch_import import from_torch

        name = model[4:]
        module = zoo.build(name)
        if checkpoint:
            from tinyopt.compress.checkpoint import load_checkpoint

            load_checkpoint(checkpoint, module)
        module.eval()
        return from_torch(module, zoo.input_shape(name), name=name)
    if checkpoint:
        raise ConfigError("--checkpoint applies to zoo:<name> models only", where="--checkpoint",
                          fix="drop --checkpoint; .tflite/.onnx files carry their weights")
    from tinyopt.cli.analyze import load_model_ref

    return load_model_ref(model, input_shape)


def register(app: typer.Typer) -> None:
    @app.command()
    def convert(
        model: str = typer.Argument(..., help="float .tflite, .onnx or zoo:<name>"),
        calib: str = typer.Option(..., "--calib", help="calibration samples .npz (key x), batch first"),
        out: str = typer.Option(..., "--out", help="the int8 .tflite to write"),
        checkpoint: str = typer.Option(None, "--checkpoint", help="PyTorch state_dict for a zoo model"),
        io: str = typer.Option("int8", "--io", help="int8 (int8 input/output) | float (QUANTIZE/DEQUANTIZE)"),
        observer: str = typer.Option(None, "--observer", help="range observer (default: min/max)"),
        input_shape: str = typer.Option(None, "--input-shape", help="H,W,C without batch (PyTorch files)"),
    ) -> None:
        """Quantize MODEL to int8 (TFLM spec) with calibration data and write a .tflite."""
        from tinyopt.cli.analyze import parse_input_shape
        from tinyopt.convert import convert_graph
        from tinyopt.errors import ConfigError
        from tinyopt.export.tflite import save_tflite

        if io not in ("int8", "float"):
            raise ConfigError(f"unknown --io '{io}'", where="--io", fix="use int8 or float")
        if not out.endswith(".tflite"):
            raise ConfigError(f"output '{out}' is not a .tflite path", where="--out", fix="name it OUT.tflite")
        graph = load_float_model(model, checkpoint, parse_input_shape(input_shape))
        if any(t.constant and t.data is None for t in graph.tensors.values()):
            raise ConfigError("the model has no weights (an architecture spec)", path=model,
                              fix="give a .tflite/.onnx file or zoo:<name> with --checkpoint")
        x = to_graph_layout(load_calibration(calib), graph, calib)
        g = convert_graph(graph, x, io=io, observer=observer)
        save_tflite(g, out)
        typer.echo(f"wrote {out}: {len(g.nodes)} operators, int8 weights and activations, {io} I/O")
