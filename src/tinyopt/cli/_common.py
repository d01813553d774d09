"""Small helpers shared by command modules: output only (every command's logic lives in the facade)."""

from __future__ import annotations

import json
import sys

from rich.console import Console

from tinyopt._json import plain


def console(stderr: bool = False, width: int | None = None) -> Console:
    """Rich console; ``width`` is used when the output is not a terminal (piped or captured), so wide
    tables are not squeezed into 80 columns."""
    con = Console(stderr=stderr, highlight=False, soft_wrap=True)
    if width and not con.is_terminal:
        con.width = max(con.width, width)
    return con


def print_json(obj) -> None:
    """One JSON object on stdout (numpy scalars converted)."""
    sys.stdout.write(json.dumps(obj, indent=2, default=plain) + "\n")


def print_result(result, stderr: bool = False) -> None:
    """A facade result's tables, as ``repr`` shows them in a terminal (at least its own width)."""
    from tinyopt._api.display import print_tables

    print_tables(result.tables(), console(stderr, result.WIDTH))
