"""``tinyopt infer MODEL --input IN.npy --output OUT.npy``: run the numpy runtime on a batch
(``tinyopt.infer``).

IN holds (N, *input_shape) in the model's own layout and input dtype (int8 for an int8 ``.tflite``; NCHW
for a PyTorch model or an NCHW ONNX file). For a ``.tflite``, each row of OUT equals what TFLM computes for
that row (same shape, dtype and values). OUT is written atomically; a model with several outputs needs an
``.npz`` OUT (one array per output, by tensor name).
"""

from __future__ import annotations

from pathlib import Path

import typer

from tinyopt._api.arrays import load_npy
from tinyopt._api.vocab import INPUT_SHAPE_HELP


def register(app: typer.Typer) -> None:
    @app.command()
    def infer(
        model: str = typer.Argument(..., help=".tflite, .onnx, zoo:<name> or file.py:factory"),
        input: str = typer.Option(..., "--input", help="(N, *input_shape) .npy in the model's own layout and "
                                                       "input dtype"),
        output: str = typer.Option(..., "--output", help="where to write the outputs (.npy, or .npz)"),
        input_shape: str = typer.Option(None, "--input-shape", help=INPUT_SHAPE_HELP),
    ) -> None:
        """Run MODEL on every row of IN with the bit-exact numpy runtime."""
        import numpy as np

        from tinyopt._api.model import load
        from tinyopt._api.run import infer as run_infer
        from tinyopt._api.vocab import parse_input_shape
        from tinyopt._io import atomic_path
        from tinyopt.errors import ConfigError, DataError

        m = load(model, input_shape=parse_input_shape(input_shape))
        x = load_npy(input)
        out = Path(output)
        if len(m.graph.outputs) > 1 and out.suffix != ".npz":
            raise ConfigError(f"the model has {len(m.graph.outputs)} outputs", where="--output",
                              fix="give an .npz output path (one array per output)")
        try:
            y = run_infer(m, x)
        except DataError as e:  # the data's fault: name the input file, and the model as the place
            raise DataError(e.message, path=input, where=f"model {model}", fix=e.fix) from None
        outs = list(y) if isinstance(y, tuple) else [y]
        with atomic_path(out, suffix=out.suffix) as tmp:
            with open(tmp, "wb") as f:
                if out.suffix == ".npz":
                    np.savez(f, **dict(zip(m.graph.outputs, outs)))
                else:
                    np.save(f, outs[0])
        typer.echo(f"wrote {out} ({', '.join(f'{o.dtype}{list(o.shape)}' for o in outs)})")
