"""'Did you mean' for config errors: the nearest valid name to a misspelt one."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def nearest(name: str, valid: Iterable[str]) -> str:
    """``"; did you mean 'x'"`` for the closest valid name, or an empty string."""
    match = difflib.get_close_matches(str(name), [str(v) for v in valid], n=1, cutoff=0.5)
    return f"; did you mean '{match[0]}'" if match else ""
