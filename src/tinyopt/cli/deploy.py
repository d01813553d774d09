"""``tinyopt deploy MODEL --target c|arduino|tflite --out DIR``: an int8 model as a C99 library (static
arena), an Arduino library or a ``.tflite`` (``tinyopt.deploy``).

``--optimize speed|balanced|ram`` and ``--max-ram-kb`` choose the C library's plan (row-streamed segments,
``export/c/stream.py``). ``--explain`` prints the plan (every buffer's offset, size and lifetime; the layers
run by bands of rows, in place or fused) and, for a compressed model,
each layer's weight encoding, bytes and Cortex-M4 instructions. ``--device mps2-an386
--run`` also cross-compiles for Cortex-M4, runs seeded inputs under qemu and reports instructions per
MAC, estimated Cortex-M4 cycles and milliseconds at the board's clock, flash, RAM and whether the M4
outputs equal the host build's; ``--profile`` splits instructions and cycles by node.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer


def run_on_board(lib, out: Path, board: str, n_inputs: int = 5, seed: int = 0, profile: bool = False,
                 flash_wait_states: int | None = None, clock_mhz: float | None = None) -> dict:
    """Build host and M4, run ``n_inputs`` seeded inputs on both; the figures ``--json`` prints.

    Instructions are the SysTick count under ``qemu -icount`` (median over the inputs); cycles are the
    Cortex-M4 estimate of the first input's instruction stream (``tinyopt.export.c.cycles``) and
    milliseconds those cycles at the board's clock (or ``clock_mhz``). ``profile`` adds a second M4 build
    with a mark after every node and reports each node's traced instructions and cycles on the first input
    (the marks themselves are not charged; the totals come from the unmarked build)."""
    import numpy as np

    from tinyopt.export.c.board import (
        BOARDS,
        board_timing,
        build_host,
        build_m4,
        estimate_library,
        run_host,
        run_qemu,
    )
    from tinyopt.export.c.generate import node_macs

    rng = np.random.default_rng(seed)
    xs = rng.integers(-128, 128, size=(n_inputs, lib.input_bytes), dtype=np.int8)
    timing = board_timing(board, flash_wait_states)
    clock = float(clock_mhz or BOARDS[board]["clock_mhz"])
    with tempfile.TemporaryDirectory(prefix="tinyopt-build-") as tmp:
        tmp = Path(tmp)
        m4 = build_m4(out, tmp / "m4", xs, prefix=lib.prefix, board=board)
        m4_out, counts = run_qemu(m4.elf, lib.output_bytes, board=board)
        host_out = run_host(build_host(out, tmp / "host"), xs, lib.output_bytes)
        est, per_node = estimate_library(out, tmp, xs, prefix=lib.prefix, board=board, timing=timing,
                                         profile=profile)
    instructions = int(np.median(counts))
    res = {
        "board": board,
        "inputs": n_inputs,
        "instructions": instructions,
        "macs": lib.macs,
        "instructions_per_mac": round(instructions / max(lib.macs, 1), 3),
        "cycles": est.cycles,
        "cycles_per_mac": round(est.cycles / max(lib.macs, 1), 3),
        "clock_mhz": clock,
        "ms": round(est.cycles / (clock * 1e3), 3),
        "flash_wait_states": timing.flash_wait_states,
        "cycle_model": "Cortex-M4 TRM timing of the instructions qemu ran on the first input",
        "flash_bytes": m4.flash_bytes,
        # + the caller's output buffer; the input lives in the arena
        "ram_bytes": m4.ram_bytes + lib.caller_output_bytes,
        "arena_bytes": lib.arena_bytes,
        "outputs_match_host": bool(np.array_equal(m4_out, host_out)),
    }
    if profile:
        res["cycle_classes"] = est.classes
        res["nodes"] = []
        for i, v in per_node.items():
            n, c, macs = v["instructions"], v["cycles"], node_macs(lib.prepared[i])
            res["nodes"].append({"node": i, "op": lib.prepared[i].kind, "instructions": n, "cycles": c,
                                 "macs": macs,
                                 "instructions_per_mac": round(n / macs, 3) if macs else None,
                                 "cycles_per_mac": round(c / macs, 3) if macs else None,
                                 "ms": round(c / (clock * 1e3), 4), "classes": v["classes"]})
    return res


def register(app: typer.Typer) -> None:
    @app.command()
    def deploy(
        model: str = typer.Argument(..., help="int8 .tflite model (or anything tinyopt can load; a tinyopt "
                                              "compress output is converted to int8 first)"),
        target: str = typer.Option("c", "--target", help="c (library folder), arduino (library + sketch) or "
                                                         "tflite (a .tflite file)"),
        out: Path = typer.Option(..., "--out", help="output folder, or .tflite file (written atomically)"),
        explain: bool = typer.Option(False, "--explain", help="print the arena plan"),
        force: bool = typer.Option(False, "--force", help="replace an existing folder tinyopt did not write"),
        prefix: str = typer.Option("tinyopt", "--prefix", help="C symbol prefix"),
        device: str = typer.Option(None, "--device", help="device for --run: mps2-an386 (Cortex-M4, qemu)"),
        board: str = typer.Option(None, "--board", hidden=True, help="deprecated: use --device"),
        run: bool = typer.Option(False, "--run",
                                 help="build for the device, run under qemu, compare with host"),
        inputs: int = typer.Option(5, "--inputs", help="seeded random inputs for --run"),
        as_json: bool = typer.Option(False, "--json", help="print the --run figures as JSON"),
        profile: bool = typer.Option(False, "--profile",
                                     help="--run plus each node's M4 instructions and cycles"),
        wait_states: int = typer.Option(None, "--flash-wait-states",
                                        help="flash wait states for the cycle estimate "
                                             "(default: the board's)"),
        clock_mhz: float = typer.Option(None, "--clock-mhz",
                                        help="clock for the milliseconds (default: the board's)"),
        optimize: str = typer.Option("balanced", "--optimize",
                                     help="C library plan: speed (whole tensors), balanced (least RAM within "
                                          "+15 %% estimated M4 instructions) or ram (least RAM)"),
        max_ram_kb: float = typer.Option(None, "--max-ram-kb",
                                         help="the fastest plan whose arena fits this many KB (or an error "
                                              "naming the smallest possible)"),
        max_slowdown: float = typer.Option(None, "--max-slowdown",
                                           help="compressed weights: the layouts' estimated Cortex-M4 "
                                                "instructions within this times the dense kernels' "
                                                "(default 1.5)"),
    ) -> None:
        """Generate a C99 library (or an Arduino library, or a .tflite) from an int8 model."""
        from tinyopt._api.run import deploy as run_deploy
        from tinyopt._api.vocab import deprecated_flag
        from tinyopt.cli._common import console, print_json

        if board is not None:
            deprecated_flag("--board", "--device")
            device = device or board
        result = run_deploy(model, target, out, device=device, run=run, inputs=inputs, profile=profile,
                            prefix=prefix, force=force, flash_wait_states=wait_states, clock_mhz=clock_mhz,
                            max_slowdown=max_slowdown, optimize=optimize, max_ram_kb=max_ram_kb)
        con = console(stderr=as_json)
        if explain:
            con.print(result.explain(), markup=False)
        con.print(result.summary(), markup=False)
        res = result.run
        if res is not None:
            if as_json:
                print_json(res)
            else:
                for k, v in res.items():
                    if k not in ("nodes", "cycle_classes"):
                        con.print(f"{k:>22}  {v}", markup=False)
                for row in res.get("nodes", []):
                    per_mac = (f"{row['instructions_per_mac']:.2f} instr, "
                               f"{row['cycles_per_mac']:.2f} cycles/MAC") if row["macs"] else ""
                    con.print(f"  node {row['node']:>3} {row['op']:<18} {row['instructions']:>11,} instr "
                              f"{row['cycles']:>11,} cycles {row['ms']:>9.3f} ms {row['macs']:>11,} MACs "
                             f"{per_mac}",
                              markup=False)
