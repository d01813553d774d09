"""One exception family for bad input, so the CLI can print one line and exit 2.

Every message follows ``"<file>: <where>: <what is wrong>. Fix: <what to do>"``; parts that do not
apply are left out. Anything that is not a ``TinyoptError`` is our bug and keeps its traceback.
"""

from __future__ import annotations

import os


class TinyoptError(Exception):
    """Bad input from the user: a file, a config, a budget, data."""

    def __init__(self, message: str, *, path: str | os.PathLike | None = None,
                 where: str | None = None, fix: str | None = None):
        self.message = message
        self.path = None if path is None else str(path)
        self.where = where
        self.fix = fix
        super().__init__(self.format())

    def format(self) -> str:
        head = [p for p in (self.path, self.where) if p]
        text = ": ".join([*head, self.message.rstrip(".")]) + "."
        if self.fix:
            text += f" Fix: {self.fix.rstrip('.')}."
        return " ".join(text.split())  # always one line


class ModelFormatError(TinyoptError):
    """A model file that cannot be read or is structurally invalid."""


class UnsupportedOpError(TinyoptError):
    """An operator (or an operator option) that a stage does not implement."""


class ConfigError(TinyoptError):
    """A YAML project, recipe, spec or CLI option that is not valid."""


class BudgetError(TinyoptError):
    """A device budget that no candidate can meet."""


class DataError(TinyoptError):
    """A dataset, calibration set or input array that is empty or malformed."""


class ToolchainError(TinyoptError):
    """An external tool (compiler, emulator, browser) that is missing or failed."""


class MissingExtraError(TinyoptError):
    """An optional Python package that is not installed; the message names the pip extra that brings it."""


__all__ = [
    "BudgetError",
    "ConfigError",
    "DataError",
    "MissingExtraError",
    "ModelFormatError",
    "TinyoptError",
    "ToolchainError",
    "UnsupportedOpError",
]
