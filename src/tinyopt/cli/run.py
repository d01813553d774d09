"""``tinyopt run project.yaml``: the impulse configured by a project file (see ``examples/``)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def run(project: Path = typer.Argument(..., help="project YAML (see examples/)"),
            out: Path = typer.Option(Path("tinyopt-out"), "--out", help="output folder"),
            no_cache: bool = typer.Option(False, "--no-cache", help="recompute every stage")) -> None:
        """Data → features → training → optimisation → conversion → deployment → report, each stage
        cached so that changing only the recipe does not retrain the float model."""
        from tinyopt.cli._common import console
        from tinyopt.pipeline.config import load_project
        from tinyopt.pipeline.runner import run_project
        from tinyopt.pipeline.summary import print_summary

        cfg = load_project(project)
        con = console()
        con.width = max(con.width, 110)  # the closing table has ten columns
        res = run_project(cfg, out, console=con, use_cache=not no_cache)
        print_summary(con, res)
