"""``tinyopt devices``: the board catalog as a table (or JSON)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def devices(as_json: bool = typer.Option(False, "--json", help="one JSON object on stdout")) -> None:
        """List the catalog's boards: core, clock, SRAM, flash, FPU, DSP, power, rates (KB = 1024 B)."""
        from tinyopt.devices import list_devices

        devs = list_devices()
        if as_json:
            from tinyopt.cli._common import print_json

            print_json({"kb": 1024, "devices": [d.to_dict() for d in devs]})
            return
        from rich.table import Table

        from tinyopt.cli._common import console

        t = Table(title="Devices (KB = 1024 bytes; FLOPS/OPS are estimates, see catalog.yaml)",
                  title_justify="left")
        for col in ("name", "board", "core", "MHz", "SRAM KB", "flash KB", "FPU", "DSP", "active mW",
                    "FP32 MFLOPS", "int8 MOPS", "source"):
            t.add_column(col, justify="right" if col in ("MHz", "SRAM KB", "flash KB", "active mW", "FP32 MFLOPS",
                                                         "int8 MOPS") else "left", overflow="fold")

        def f(x, fmt="{:,.0f}"):
            return "-" if x is None else fmt.format(x)

        for d in devs:
            t.add_row(d.name, d.title, d.core or "-", f(d.clock_mhz), f(d.sram_bytes and d.sram_bytes / 1024),
                      f(d.flash_bytes and d.flash_bytes / 1024), d.fpu or "-",
                      "-" if d.dsp is None else ("yes" if d.dsp else "no"), f(d.active_mw, "{:,.2f}"),
                      f(d.fp32_flops and d.fp32_flops / 1e6, "{:,.1f}"), f(d.int8_ops and d.int8_ops / 1e6, "{:,.1f}"),
                      d.source)
        con = console()
        if not con.is_terminal:
            con.width = max(con.width, 200)
        con.print(t)
