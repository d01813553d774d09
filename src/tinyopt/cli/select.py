"""`tinyopt select VERSIONS.yaml --client NAME=LATENCY_S ...`: which version to ship to whom
(``tinyopt.select``); exits 2 when some client gets no version."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def select_cmd(
    versions: Annotated[Path, typer.Argument(help="YAML with model versions (or base + options) and a "
                                                  "device")],
    client: Annotated[list[str], typer.Option("--client",
                                              help="NAME=LATENCY_S[,ram_kb=N][,flash_kb=N]")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Pick, per client, the most accurate version that fits its budgets, and show why."""
    from tinyopt._api.search import select
    from tinyopt.cli._common import print_json, print_result

    selection = select(versions, client or [])
    if json_out:
        print_json(selection.to_dict())
    else:
        print_result(selection)
    selection.require_all_served()


def register(app: typer.Typer) -> None:
    app.command("select")(select_cmd)
