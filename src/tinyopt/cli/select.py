"""`tinyopt select VERSIONS.yaml --client NAME=LATENCY_S ...`: which version to ship to whom."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def select_cmd(
    versions: Annotated[Path, typer.Argument(help="YAML with model versions (or base + options) and a device")],
    client: Annotated[list[str], typer.Option("--client", help="NAME=LATENCY_S[,ram_kb=N][,flash_kb=N]")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Pick, per client, the most accurate version that fits its budgets, and show why."""
    from tinyopt.cli._common import console, print_json
    from tinyopt.errors import ConfigError
    from tinyopt.search.select import Client, load_versions, parse_client, require_all_served, select

    vs, doc = load_versions(versions)
    clients = [parse_client(c) for c in client or []]
    for name, budget in (doc.get("clients") or {}).items():
        clients.append(Client(str(name), float(budget)) if not isinstance(budget, dict) else
                       parse_client(f"{name}={budget.get('latency_s')}"))
    if not clients:
        raise ConfigError("no clients given", path=versions, fix="add --client NAME=LATENCY_S")
    choices = select(vs, clients)
    if json_out:
        print_json({"versions": [{"name": v.name, "accuracy": v.accuracy, "latency_s": v.latency_s,
                                  "dtype": v.dtype} for v in vs],
                    "choices": [{"client": c.client.name, "max_latency_s": c.client.max_latency_s,
                                 "version": c.version.name if c.version else None,
                                 "accuracy": c.version.accuracy if c.version else None,
                                 "reasons": c.reasons} for c in choices]})
    else:
        out = console()
        for c in choices:
            out.print(f"[bold]client {c.client.name}[/] (latency ≤ {c.client.max_latency_s:g} s)")
            for r in c.reasons:
                out.print(f"  {r}")
    require_all_served(choices, vs)


def register(app: typer.Typer) -> None:
    app.command("select")(select_cmd)
