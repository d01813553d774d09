"""``tinyopt check MODEL --runtime tflm-reference|cmsis-nn|tinyopt-c``: every operator, supported or not,
and why (``tinyopt.check``). Exits 2 when anything is unsupported, so scripts can stop before deploying.
"""

from __future__ import annotations

import typer

from tinyopt._api.vocab import INPUT_SHAPE_HELP


def register(app: typer.Typer) -> None:
    @app.command()
    def check(
        model: str = typer.Argument(..., help=".tflite, .onnx, .yaml, zoo:<name> or file.py:factory"),
        runtime: str = typer.Option(None, "--runtime", help="tflm-reference (alias tflm) | cmsis-nn | "
                                                            "tinyopt-c [default: tflm-reference]"),
        target: str = typer.Option(None, "--target", hidden=True, help="deprecated: use --runtime"),
        input_shape: str = typer.Option(None, "--input-shape", help=INPUT_SHAPE_HELP),
        input_value: list[str] = typer.Option(None, "--input-value",
                                              help="NAME=VALUE: fix an ONNX input at a value (repeatable)"),
        as_json: bool = typer.Option(False, "--json", help="one JSON object on stdout"),
    ) -> None:
        """Is every operator of MODEL supported by the runtime you deploy with (exit 2 if not)."""
        from tinyopt._api.measure import check as run_check
        from tinyopt._api.vocab import deprecated_flag, parse_input_shape, parse_input_values, runtime_name
        from tinyopt.cli._common import print_json, print_result

        if target is not None:
            deprecated_flag("--target", "--runtime")
            runtime = runtime or runtime_name(target, where="--target")
        report = run_check(model, runtime or "tflm-reference", input_shape=parse_input_shape(input_shape),
                           input_values=parse_input_values(input_value))
        if as_json:
            print_json(report.to_dict())
        else:
            print_result(report)
        if not report.supported:
            raise typer.Exit(code=2)
