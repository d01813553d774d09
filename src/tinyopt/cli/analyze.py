"""``tinyopt analyze MODEL``: params, MACs, memory, flash, latency, energy and a fit verdict.

MODEL is a ``.yaml`` spec, a ``.tflite`` or ``.onnx`` file, or a PyTorch reference: ``zoo:<name>`` or
``path/to/file.py:factory_or_class``. torch is imported only for PyTorch references, onnx only for
``.onnx`` files, so analyzing a ``.tflite`` or ``.yaml`` starts fast. A thin layer over
``tinyopt.analyze``: ``--json`` prints its ``to_dict()``.
"""

from __future__ import annotations

import typer

from tinyopt._api.vocab import INPUT_SHAPE_HELP


def register(app: typer.Typer) -> None:
    @app.command()
    def analyze(
        model: str = typer.Argument(..., help=".yaml, .tflite, .onnx, zoo:<name> or file.py:factory"),
        input_shape: str = typer.Option(None, "--input-shape", help=INPUT_SHAPE_HELP),
        input_value: list[str] = typer.Option(None, "--input-value",
                                              help="NAME=VALUE: fix an ONNX input at a value (repeatable)"),
        device: str = typer.Option(None, "--device", help="catalog device name (see `tinyopt devices`)"),
        sram_kb: float = typer.Option(None, "--sram-kb", help="SRAM in KB (1024 B); custom or override"),
        flash_kb: float = typer.Option(None, "--flash-kb", help="flash in KB (1024 B)"),
        fp32_flops: float = typer.Option(None, "--fp32-flops", help="FP32 FLOPs per second"),
        int8_ops: float = typer.Option(None, "--int8-ops", help="int8 ops per second"),
        dtype: str = typer.Option(None, "--dtype", help="float32|int8; default: the file's own"),
        memory: str = typer.Option("planned", "--memory", help="textbook|planned"),
        runtime: str = typer.Option(None, "--runtime",
                                    help="tflm-reference|cmsis-nn|tinyopt-c: whose arena the "
                                    "verdict uses (and cycle model); default: the device's "
                                    "runtime, else tflm-reference"),
        battery_mah: float = typer.Option(None, "--battery-mah", help="battery capacity for battery life"),
        battery_v: float = typer.Option(3.0, "--battery-v", help="battery voltage"),
        inferences_per_s: float = typer.Option(1.0, "--inferences-per-s",
                                               help="inferences per second for battery life"),
        rate: float = typer.Option(None, "--rate", hidden=True, help="deprecated: use --inferences-per-s"),
        train_batch: int = typer.Option(1, "--train-batch", help="batch size for the training-memory figure"),
        optimize: str = typer.Option("balanced", "--optimize",
                                     help="with --runtime tinyopt-c: the C library's plan, as deploy "
                                     "--optimize (speed|balanced|ram)"),
        explain: bool = typer.Option(False, "--explain", help="every figure with its formula"),
        plan: bool = typer.Option(False, "--plan", help="print the arena plan timeline"),
        as_json: bool = typer.Option(False, "--json", help="one JSON object on stdout"),
    ) -> None:
        """Does MODEL fit the device, and why (KB = 1024 bytes)."""
        from tinyopt._api.measure import analyze as run_analysis
        from tinyopt._api.vocab import deprecated_flag, parse_input_shape, parse_input_values

        if rate is not None:
            deprecated_flag("--rate", "--inferences-per-s")
            inferences_per_s = rate
        report = run_analysis(model, device, dtype=dtype, memory=memory, runtime=runtime,
                              input_shape=parse_input_shape(input_shape), sram_kb=sram_kb, flash_kb=flash_kb,
                              fp32_flops=fp32_flops, int8_ops=int8_ops, battery_mah=battery_mah,
                              battery_v=battery_v, inferences_per_s=inferences_per_s, train_batch=train_batch,
                              input_values=parse_input_values(input_value), optimize=optimize)
        if as_json:  # plain json, not rich: the JSON path stays light (start-up target < 1 s)
            import json
            import sys

            sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
            return
        from tinyopt.analysis.report import render
        from tinyopt.cli._common import console

        render(report.analysis, console(width=140), explain=explain, plan=plan)
