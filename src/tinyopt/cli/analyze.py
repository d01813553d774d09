"""``tinyopt analyze MODEL``: params, MACs, memory, flash, latency, energy and a fit verdict.

MODEL is a ``.yaml`` spec, a ``.tflite`` or ``.onnx`` file, or a PyTorch reference: ``zoo:<name>`` or
``path/to/file.py:factory_or_class``. torch is imported only for PyTorch references, onnx only for
``.onnx`` files, so analyzing a ``.tflite`` or ``.yaml`` starts fast.
"""

from __future__ import annotations

import os
import re

import typer

from tinyopt.errors import ConfigError


def parse_input_shape(text: str | None) -> tuple[int, ...] | None:
    """'128,128,1' → (128, 128, 1); at most 3 positive integers (H,W,C; L,C; or N)."""
    if text is None:
        return None
    parts = [p for p in re.split(r"[,x× ]+", text.strip()) if p]
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        dims = ()
    if not dims or len(dims) > 3 or min(dims) <= 0:
        raise ConfigError(f"--input-shape must be 1 to 3 positive integers like 128,128,1, got {text!r}",
                          where="--input-shape", fix="give H,W,C (or L,C, or N) without the batch")
    return dims


def _torch_order(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Our H,W,C / L,C / N → PyTorch's C,H,W / C,L / N."""
    return shape if len(shape) == 1 else (shape[-1], *shape[:-1])


def load_torch_reference(ref: str, input_shape: tuple[int, ...] | None):
    """Build the module a ``zoo:<name>`` or ``file.py:factory`` reference names and import it."""
    from tinyopt._modelref import ModelRef
    from tinyopt.graph.torch_import import from_torch

    mref = ModelRef.parse(ref)  # zoo and file.py:factory resolved in one place (tinyopt._modelref)
    module = mref.build()
    label = mref.label
    shape = _torch_order(input_shape) if input_shape else getattr(module, "input_shape", None)
    if shape is None:
        raise ConfigError("a PyTorch model needs an input shape", where=label,
                          fix="give --input-shape H,W,C (or set model.input_shape in PyTorch order)")
    graph = from_torch(module, tuple(int(d) for d in shape), name=label)
    graph.source = graph.source or ref
    return graph


def load_model_ref(model: str, input_shape: tuple[int, ...] | None = None):
    """A Graph from any MODEL the CLI accepts."""
    if model.startswith("zoo:") or re.search(r"\.py:[^/\\]*$", model):
        return load_torch_reference(model, input_shape)
    from tinyopt.graph.load import load_model

    return load_model(os.fspath(model), input_shape)


def register(app: typer.Typer) -> None:
    @app.command()
    def analyze(
        model: str = typer.Argument(..., help=".yaml, .tflite, .onnx, zoo:<name> or file.py:factory"),
        input_shape: str = typer.Option(None, "--input-shape", help="H,W,C without batch (YAML/PyTorch)"),
        device: str = typer.Option(None, "--device", help="catalog device name (see `tinyopt devices`)"),
        sram_kb: float = typer.Option(None, "--sram-kb", help="SRAM in KB (1024 B); custom or override"),
        flash_kb: float = typer.Option(None, "--flash-kb", help="flash in KB (1024 B)"),
        fp32_flops: float = typer.Option(None, "--fp32-flops", help="FP32 FLOPs per second"),
        int8_ops: float = typer.Option(None, "--int8-ops", help="int8 ops per second"),
        dtype: str = typer.Option(None, "--dtype", help="float32|int8; default: the file's own"),
        memory: str = typer.Option("planned", "--memory", help="textbook|planned"),
        runtime: str = typer.Option(None, "--runtime", help="tflm-reference|cmsis-nn (cycle model)"),
        battery_mah: float = typer.Option(None, "--battery-mah", help="battery capacity for battery life"),
        battery_v: float = typer.Option(3.0, "--battery-v", help="battery voltage"),
        rate: float = typer.Option(1.0, "--rate", help="inferences per second for battery life"),
        train_batch: int = typer.Option(1, "--train-batch", help="batch size for the training-memory figure"),
        explain: bool = typer.Option(False, "--explain", help="every figure with its formula"),
        plan: bool = typer.Option(False, "--plan", help="print the arena plan timeline"),
        as_json: bool = typer.Option(False, "--json", help="one JSON object on stdout"),
    ) -> None:
        """Does MODEL fit the device, and why (KB = 1024 bytes)."""
        from tinyopt.analysis.fit import analyze as run_analysis
        from tinyopt.devices import custom_device, get_device

        if dtype is not None and dtype not in ("float32", "int8"):
            raise ConfigError(f"unknown dtype '{dtype}'", where="--dtype", fix="use float32 or int8")
        if memory not in ("textbook", "planned"):
            raise ConfigError(f"unknown memory model '{memory}'", where="--memory", fix="use textbook or planned")
        shape = parse_input_shape(input_shape)
        dev = get_device(device) if device else None
        if any(v is not None for v in (sram_kb, flash_kb, fp32_flops, int8_ops)):
            dev = custom_device(dev, sram_kb=sram_kb, flash_kb=flash_kb, fp32_flops=fp32_flops, int8_ops=int8_ops)
        graph = load_model_ref(model, shape)
        result = run_analysis(graph, dev, dtype=dtype, memory=memory, runtime=runtime, battery_mah=battery_mah,
                              battery_v=battery_v, inferences_per_s=rate, train_batch=train_batch)
        if as_json:  # plain json, not rich: the JSON path stays light (start-up target < 1 s)
            import json
            import sys

            sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
            return
        from tinyopt.analysis.report import render
        from tinyopt.cli._common import console

        con = console()
        if not con.is_terminal:  # piped or captured: do not squeeze the table into 80 columns
            con.width = max(con.width, 140)
        render(result, con, explain=explain, plan=plan)
