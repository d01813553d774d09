"""The ``tinyopt`` command.

Each sub-command lives in its own module here and exposes ``register(app)``; modules are discovered at
start-up so that packages stay independent. Command modules import heavy libraries (torch, onnx,
matplotlib) inside the command function, never at module level: ``tinyopt analyze`` must start fast.

Bad input raises ``TinyoptError``: we print its one-line message (it starts with the file) to stderr and
exit 2, no traceback. So does a missing optional package (``MissingExtraError``: the message names the pip
extra). Each command is a thin layer over the Python facade (``tinyopt.analyze`` ...): parse flags, call it,
print its result.
"""

from __future__ import annotations

import importlib
import pkgutil
import signal
import sys

import typer

from tinyopt.errors import TinyoptError

app = typer.Typer(
    name="tinyopt",
    help="Measure, compress, convert and deploy neural networks for microcontrollers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """tinyopt: does it fit, and what would make it fit."""


def _register_commands() -> None:
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}").register(app)


_register_commands()


def _terminate(signum, frame):
    """SIGTERM unwinds like an exception, so atomic writers remove their temporaries."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (usage errors: 2, bad input: 2, success: 0)."""
    from tinyopt._notes import cli_notes

    signal.signal(signal.SIGTERM, _terminate)
    try:
        with cli_notes():  # an old word in a recipe or project file: one 'note:' line each
            app(args=argv, prog_name="tinyopt")  # standalone: handles --help and usage errors itself
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except TinyoptError as e:
        print(e, file=sys.stderr)  # one line, starting with the file it is about
        return 2
    except ModuleNotFoundError as e:  # an optional package this door needs: name its pip extra
        from tinyopt._extras import missing_extra

        err = missing_extra(e, f"tinyopt {argv[0] if argv else ' '.join(sys.argv[1:2])}".strip())
        if err is None:
            raise
        print(err, file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    return 0


def run() -> None:
    sys.exit(main())
