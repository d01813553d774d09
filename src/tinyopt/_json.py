"""``json.dumps(default=...)`` helpers: the values tinyopt's results hold that JSON does not know."""

from __future__ import annotations


def plain(o):
    """numpy scalars and arrays as Python numbers and lists, sets as lists; TypeError for anything else."""
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, frozenset)):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def plain_or_str(o):
    """``plain``, and ``str()`` of anything else: for records that must always be written (cache
    metadata, run summaries)."""
    try:
        return plain(o)
    except TypeError:
        return str(o)
