"""``tinyopt check MODEL --target tflm|tinyopt-c``: every operator, supported or not, and why.

Exits 2 when anything is unsupported, so scripts can stop before deploying.
"""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def check(
        model: str = typer.Argument(..., help=".tflite, .onnx, .yaml, zoo:<name> or file.py:factory"),
        target: str = typer.Option("tflm", "--target", help="tflm | tinyopt-c"),
        input_shape: str = typer.Option(None, "--input-shape", help="H,W,C without batch (YAML/PyTorch)"),
        as_json: bool = typer.Option(False, "--json", help="one JSON object on stdout"),
    ) -> None:
        """Is every operator of MODEL supported by the deploy target (exit 2 if not)."""
        from tinyopt.cli.analyze import load_model_ref, parse_input_shape
        from tinyopt.runtime.support import TARGETS, check_support, graph_level_problems

        if target not in TARGETS:
            from tinyopt.errors import ConfigError

            raise ConfigError(f"unknown target '{target}'", where="--target", fix=f"use one of {', '.join(TARGETS)}")
        graph = load_model_ref(model, parse_input_shape(input_shape))
        rows = check_support(graph, target)
        problems = graph_level_problems(graph, target)
        ok = all(r.supported for r in rows) and not problems
        if as_json:
            from tinyopt.cli._common import print_json

            print_json({"model": model, "target": target, "supported": ok, "problems": problems,
                        "operators": [r.to_dict() for r in rows]})
        else:
            from rich.table import Table

            from tinyopt.cli._common import console

            con = console()
            if not con.is_terminal:
                con.width = max(con.width, 160)
            table = Table(title=f"{model} on {target}")
            for col in ("#", "operator", "name", "dtype", "supported", "why"):
                table.add_column(col, overflow="fold")
            for r in rows:
                table.add_row(str(r.index), r.op, r.name[:40], r.dtype, "yes" if r.supported else "NO", r.reason)
            con.print(table)
            for p in problems:
                con.print(f"model: {p}")
            bad = sum(not r.supported for r in rows)
            con.print(f"{len(rows) - bad} of {len(rows)} operators supported on {target}"
                      + ("" if ok else "; not deployable as is"))
        if not ok:
            raise typer.Exit(code=2)
