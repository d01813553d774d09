"""Old words still work: Python callers get a ``DeprecationWarning``, the CLI prints a one-line note.

``deprecated(message)`` is how tinyopt code says a word was renamed; ``cli_notes()`` wraps a CLI command
and prints each of tinyopt's own deprecation warnings once, as ``note: <message>`` on stderr (Python
hides ``DeprecationWarning`` outside ``__main__``, and its default format takes two lines). Other
warnings are shown as usual once the command is done; third-party deprecations stay hidden.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def deprecated(message: str, stacklevel: int = 3) -> None:
    warnings.warn(message, DeprecationWarning, stacklevel=stacklevel)


def _ours(w: warnings.WarningMessage) -> bool:
    try:
        return Path(w.filename).resolve().is_relative_to(_PACKAGE)
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def cli_notes(stream=None):
    """Print tinyopt's deprecation warnings raised inside the block as one-line notes (each once)."""
    pending: list = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DeprecationWarning)
            try:
                yield
            finally:
                pending = list(caught)
    finally:  # outside the recording context, so other warnings reach the usual display
        seen = set()
        for w in pending:
            if issubclass(w.category, DeprecationWarning):
                text = str(w.message)
                if _ours(w) and text not in seen:
                    seen.add(text)
                    print(f"note: {text}", file=stream or sys.stderr)
            else:
                warnings.showwarning(w.message, w.category, w.filename, w.lineno, w.file, w.line)


__all__ = ["cli_notes", "deprecated"]
