"""Small helpers shared by command modules."""

from __future__ import annotations

import json
import sys

from rich.console import Console

from tinyopt._json import plain


def console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def print_json(obj) -> None:
    """One JSON object on stdout (numpy scalars converted)."""
    sys.stdout.write(json.dumps(obj, indent=2, default=plain) + "\n")
