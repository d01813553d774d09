"""One word per concept, for CLI flags and Python keywords alike, and the old words that still work.

- ``device``: a board of the catalog (``tinyopt devices``); was ``--board`` in ``deploy``.
- ``runtime``: what executes the model: ``tflm-reference`` (alias ``tflm``), ``cmsis-nn``, ``tinyopt-c``;
  was ``--target`` in ``check``.
- ``target``: deploy's output format: ``c``, ``arduino`` or ``tflite``.
- ``inferences_per_s``: the duty cycle behind battery life; was ``--rate`` / ``rate``.
- ``input_shape`` and all data: the model's own layout, batch omitted (a PyTorch module: C,H,W; a ``.tflite``
  or a ``.yaml`` spec: H,W,C).

An old word keeps working for now: Python gets a ``DeprecationWarning``, the CLI a one-line note on stderr.
"""

from __future__ import annotations

import sys
import warnings

from tinyopt.errors import ConfigError

RUNTIMES = ("tflm-reference", "cmsis-nn", "tinyopt-c")
_RUNTIME_ALIASES = {"tflm": "tflm-reference", "cmsis": "cmsis-nn"}
TARGETS = ("c", "arduino", "tflite")
INPUT_SHAPE_HELP = ("input shape without batch, in the model's own layout: C,H,W for a PyTorch model "
                    "(zoo:<name>, file.py:factory), H,W,C for a .yaml spec")


def runtime_name(name: str, where: str = "--runtime") -> str:
    """The canonical runtime word for ``name`` or one of its aliases."""
    key = str(name).strip().lower()
    key = _RUNTIME_ALIASES.get(key, key)
    if key not in RUNTIMES:
        raise ConfigError(f"unknown runtime '{name}'", where=where,
                          fix=f"use one of {', '.join(RUNTIMES)} (tflm is short for tflm-reference)")
    return key


def runtime_alias(name: str) -> str:
    """``tflm`` → ``tflm-reference`` (and the other aliases); any other name unchanged, for the catalog."""
    return _RUNTIME_ALIASES.get(str(name).strip().lower(), name)


def renamed_keywords(kwargs: dict, names: dict[str, str], where: str) -> dict:
    """``kwargs`` with old keyword names replaced by their new ones (a ``DeprecationWarning`` each);
    anything else is a ``TypeError``, as Python gives for an unknown keyword."""
    out = {}
    for old, value in kwargs.items():
        if old not in names:
            raise TypeError(f"{where}() got an unexpected keyword argument '{old}'")
        warnings.warn(f"{where}(): '{old}' is deprecated, use '{names[old]}'", DeprecationWarning,
                      stacklevel=3)
        out[names[old]] = value
    return out


def deprecated_flag(old: str, new: str) -> None:
    """The CLI's note for an old flag (it still works): one line on stderr."""
    print(f"note: {old} is deprecated, use {new}", file=sys.stderr)


def parse_input_shape(text: str | None, flag: str = "--input-shape"):
    """'3,32,32' → (3, 32, 32): 1 to 3 positive integers, batch omitted, in the model's own layout;
    '512;1,128' → [(512,), (1, 128)] for a model with several inputs (an empty part: a scalar input)."""
    import re

    if text is None:
        return None
    if ";" in str(text):
        return [() if not part.strip() else parse_input_shape(part, flag) for part in str(text).split(";")]
    parts = [p for p in re.split(r"[,x× ]+", str(text).strip()) if p]
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        dims = ()
    if not dims or len(dims) > 4 or min(dims) <= 0:
        raise ConfigError(f"{flag} must be 1 to 4 positive integers like 3,32,32 (inputs separated by ';'), "
                          f"got {text!r}", where=flag,
                          fix="give the shape without batch in the model's own layout: C,H,W for a PyTorch "
                              "model, H,W,C for a .yaml spec")
    return dims


def parse_input_values(items: list[str] | None, flag: str = "--input-value") -> dict | None:
    """['sr=16000', 'mask=1,0,1'] → {'sr': 16000, 'mask': [1, 0, 1]}: model inputs fixed at a value."""
    if not items:
        return None
    out = {}
    for item in items:
        name, sep, value = str(item).partition("=")
        try:
            nums = [float(v) if any(c in v for c in ".eE") else int(v) for v in value.split(",") if v.strip()]
        except ValueError:
            nums = []
        if not sep or not name or not nums:
            raise ConfigError(f"{flag} must be NAME=VALUE (numbers separated by commas), got {item!r}",
                              where=flag,
                              fix="e.g. --input-value sr=16000")
        out[name] = nums[0] if len(nums) == 1 else nums
    return out


__all__ = ["INPUT_SHAPE_HELP", "RUNTIMES", "TARGETS", "deprecated_flag", "parse_input_shape",
           "parse_input_values",
           "renamed_keywords", "runtime_alias", "runtime_name"]
