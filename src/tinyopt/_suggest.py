"""'Did you mean': the nearest valid word to a misspelt one, for every message that refuses a name.

One helper instead of a ``difflib`` call in each loader, so recipes, project files, specs and the zoo
suggest the same way. Torch-free and tiny: loaders import it before anything heavy.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: object, valid: Iterable[object], *, n: int = 1, cutoff: float = 0.5) -> list[str]:
    """Up to ``n`` valid names closest to ``name`` (compared as text), best first; empty when none is close.

    >>> did_you_mean("quantise", ["prune", "quantize"])
    ['quantize']
    >>> did_you_mean("zzz", ["prune", "quantize"])
    []
    """
    return difflib.get_close_matches(str(name), [str(v) for v in valid], n=n, cutoff=cutoff)


def hint(name: object, valid: Iterable[object], *, cutoff: float = 0.5) -> str:
    """``"; did you mean 'x'"`` for the closest valid name, or an empty string (to append to a message).

    >>> hint("ratoi", ["ratio", "scope"])
    "; did you mean 'ratio'"
    """
    near = did_you_mean(name, valid, cutoff=cutoff)
    return f"; did you mean '{near[0]}'" if near else ""


__all__ = ["did_you_mean", "hint"]
