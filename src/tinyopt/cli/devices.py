"""``tinyopt devices``: the board catalog as a table (or JSON), from ``tinyopt.devices()``."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def devices(as_json: bool = typer.Option(False, "--json", help="one JSON object on stdout")) -> None:
        """List the catalog's boards: core, clock, SRAM, flash, FPU, DSP, power, rates (KB = 1024 B)."""
        from tinyopt._api.measure import devices as catalog
        from tinyopt.cli._common import print_json, print_result

        table = catalog()
        if as_json:
            print_json(table.to_dict())
        else:
            print_result(table)
