"""``tinyopt infer MODEL --input IN.npy --output OUT.npy``: run the numpy runtime on a batch.

IN holds (N, *input_shape) in the model's input dtype (int8 for an int8 ``.tflite``). For a ``.tflite``,
each row of OUT equals what TFLM computes for that row (same shape, dtype and values). OUT is written
atomically; a model with several outputs needs an ``.npz`` OUT (one array per output, by tensor name).
"""

from __future__ import annotations

import math
from pathlib import Path

import typer


def _check_npy_size(f, size: int, path: str) -> None:
    """The header's shape x dtype must equal the bytes that follow, before numpy allocates the array (a
    40-byte file declaring (10**6, 10**6, 1000) int8 would otherwise ask for 909 TiB)."""
    import numpy as np

    from tinyopt.errors import DataError

    fmt = np.lib.format
    if f.read(6) != fmt.MAGIC_PREFIX:
        f.seek(0)
        return  # not .npy (maybe .npz): np.load decides
    f.seek(0)
    version = fmt.read_magic(f)
    read = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(version)
    if read is not None:
        shape, _, dtype = read(f, max_header_size=10_000)
        need = math.prod(shape) * dtype.itemsize
        if not dtype.hasobject and need != size - f.tell():
            raise DataError(f"the header declares shape {shape} {dtype} ({need} bytes) but {size - f.tell()} "
                            "bytes follow", path=path, fix="save the input again with numpy.save(path, array)")
    f.seek(0)


def load_npy(path: str):
    import tokenize
    import zipfile

    import numpy as np

    from tinyopt.errors import DataError

    p = Path(path)
    if not p.is_file():
        raise DataError("file not found", path=path, fix="check the path of the input .npy")
    try:
        with p.open("rb") as f:
            _check_npy_size(f, p.stat().st_size, path)
            arr = np.load(f, allow_pickle=False)
    except (ValueError, TypeError, OSError, EOFError, zipfile.BadZipFile, SyntaxError, tokenize.TokenError) as e:
        # BadZipFile: .npz magic with a broken archive; TokenError: numpy parses the header as Python
        raise DataError(f"not a readable .npy array ({str(e).splitlines()[0] if str(e) else type(e).__name__})",
                        path=path, fix="save the input with numpy.save(path, array)") from None
    if not isinstance(arr, np.ndarray):
        raise DataError("holds several arrays (.npz), not one", path=path,
                        fix="save the input with numpy.save(path, array)")
    return arr


def register(app: typer.Typer) -> None:
    @app.command()
    def infer(
        model: str = typer.Argument(..., help=".tflite, .onnx, zoo:<name> (float) ..."),
        input: str = typer.Option(..., "--input", help="(N, *input_shape) .npy in the model's input dtype"),
        output: str = typer.Option(..., "--output", help="where to write the outputs (.npy, or .npz)"),
        input_shape: str = typer.Option(None, "--input-shape", help="H,W,C without batch (YAML/PyTorch)"),
    ) -> None:
        """Run MODEL on every row of IN with the bit-exact numpy runtime."""
        import numpy as np

        from tinyopt._io import atomic_path
        from tinyopt.cli.analyze import load_model_ref, parse_input_shape
        from tinyopt.errors import ConfigError, DataError
        from tinyopt.runtime import Interpreter

        graph = load_model_ref(model, parse_input_shape(input_shape))
        if any(t.constant and t.data is None for t in graph.tensors.values()):
            raise ConfigError("the model has no weights (an architecture spec)", path=model,
                              fix="give a .tflite/.onnx file or a PyTorch model")
        it = Interpreter(graph)
        x = load_npy(input)
        try:
            outs = it.run(x)
        except DataError as e:
            raise DataError(e.message, path=input, where=f"model {model}", fix=e.fix) from None
        out = Path(output)
        if len(outs) > 1 and out.suffix != ".npz":
            raise ConfigError(f"the model has {len(outs)} outputs", where="--output",
                              fix="give an .npz output path (one array per output)")
        with atomic_path(out, suffix=out.suffix) as tmp:
            with open(tmp, "wb") as f:
                if out.suffix == ".npz":
                    np.savez(f, **dict(zip(graph.outputs, outs)))
                else:
                    np.save(f, outs[0])
        typer.echo(f"wrote {out} ({', '.join(f'{o.dtype}{list(o.shape)}' for o in outs)})")
