"""``tinyopt demo``: the whole impulse on scikit-learn's bundled digits, nothing to download."""

from __future__ import annotations

from pathlib import Path

import typer

DEMO_PROJECT = {
    "name": "digits",
    "seed": 0,
    "data": {"source": "digits", "split": "random", "val": 0.1, "test": 0.2},
    "features": {"block": "raw"},
    "model": {"zoo": "digits_cnn", "args": {"filters": [16, 32]}},
    "training": {"epochs": 30, "lr": 0.01, "batch_size": 32},
    "optimize": {"prune": {"sparsity": 0.5, "epochs": 15, "lr": 0.005},
                 "quantize": {"mode": "qat", "epochs": 5, "lr": 0.001, "calibration_samples": 256}},
    "target": {"device": "nano33ble"},
    "deploy": {"formats": ["tflite", "c"], "prefix": "digits"},
}


def demo_config(quick: bool = False) -> dict:
    """The demo project (the same as ``examples/digits.yaml``); ``quick`` trains fewer epochs (tests)."""
    import copy

    from tinyopt.pipeline.config import validate

    raw = copy.deepcopy(DEMO_PROJECT)
    if quick:
        raw["training"]["epochs"] = 8
        raw["optimize"]["prune"]["epochs"] = 2
        raw["optimize"]["quantize"]["epochs"] = 1
    return validate(raw, "<tinyopt demo>")


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(out: Path = typer.Option(Path("tinyopt-out"), "--out", help="output folder"),
             quick: bool = typer.Option(False, "--quick", help="fewer epochs (for tests)"),
             no_cache: bool = typer.Option(False, "--no-cache", help="recompute every stage")) -> None:
        """Digits → small CNN → analyze against a Nano 33 BLE Sense → prune + QAT int8 → convert →
        verify against TFLM → C library → HTML report, in about a minute."""
        from tinyopt.cli._common import console
        from tinyopt.pipeline.runner import run_project
        from tinyopt.pipeline.summary import print_summary

        con = console()
        con.width = max(con.width, 110)  # the closing table has ten columns
        res = run_project(demo_config(quick), out, console=con, use_cache=not no_cache)
        print_summary(con, res)
