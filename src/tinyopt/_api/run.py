"""``tinyopt.infer`` (the numpy runtime, bit-exact with TFLM) and ``tinyopt.deploy`` (``.tflite``, a C99
library or an Arduino library, optionally built and run on a Cortex-M4 under qemu)."""

from __future__ import annotations

import os
from pathlib import Path

from tinyopt._api.display import Result, Table, jsonable
from tinyopt._api.model import load
from tinyopt._api.vocab import TARGETS, renamed_keywords
from tinyopt._extras import translated
from tinyopt.errors import ConfigError


@translated
def infer(model, x, *, example_input=None, input_shape: tuple[int, ...] | None = None, batch_size: int = 512):
    """Run ``model`` on every row of ``x`` with tinyopt's numpy runtime.

    ``x`` is batch first, in the model's own layout and input dtype (int8 for an int8 model; a list for
    several inputs). Returns the output array (a tuple of arrays for several outputs), batch first, in the
    model's own layout. For an int8 ``.tflite`` every row equals what TFLM computes for it.
    """
    m = load(model, example_input, input_shape=input_shape)
    outs = m.interpreter.run(m.graph_inputs(x), batch_size)
    outs = m.own_outputs(outs)
    return outs[0] if len(outs) == 1 else tuple(outs)


class Deployment(Result):
    """What ``deploy`` wrote: the folder or file, the arena and I/O sizes, and the ``run`` figures of a
    Cortex-M4 build under qemu when asked (instructions, flash, RAM, outputs equal to the host build)."""

    def __init__(self, out: Path, target: str, files: list[str], lib=None, run: dict | None = None,
                 nbytes: int | None = None, graph=None, max_slowdown: float | None = None):
        self.out, self.target, self.files, self.library, self.run = out, target, files, lib, run
        self.graph, self.max_slowdown = graph, max_slowdown
        self.arena_bytes = None if lib is None else lib.arena_bytes
        self.input_bytes = None if lib is None else lib.input_bytes
        self.output_bytes = None if lib is None else lib.output_bytes
        self.macs = None if lib is None else lib.macs
        self.nbytes = nbytes

    def summary(self) -> str:
        """The line ``tinyopt deploy`` prints."""
        if self.library is None:
            return f"wrote {self.out} ({self.target}): {self.nbytes:,} bytes"
        return (f"wrote {self.out} ({self.target}): arena {self.arena_bytes} B, input {self.input_bytes} B, "
                f"output {self.output_bytes} B, {self.macs} MACs")

    def explain(self) -> str:
        """The arena plan (every buffer's offset, size and lifetime) and the execution steps; for a model
        whose weights stay compressed, each layer's encoding, bytes and Cortex-M4 instructions (estimated,
        and measured per node with a profiled run)."""
        if self.library is None:
            raise ConfigError("a .tflite has no arena plan of ours", where="explain",
                              fix="deploy with target='c' to see the C library's plan")
        from tinyopt.export.c import compressed, explain

        text = explain(self.library)
        if self.graph is not None and compressed.is_compressed(self.graph):
            measured = {r["node"]: r["instructions"] for r in (self.run or {}).get("nodes", [])} or None
            text += "\n\n" + compressed.explain(self.graph, self.max_slowdown, measured)
        return text

    def plans(self) -> list[dict]:
        """Every plan the C generator tried: arena bytes, estimated Cortex-M4 instructions, the chosen one."""
        if self.library is None:
            raise ConfigError("a .tflite has no plans of ours", where="plans",
                              fix="deploy with target='c' to see the C library's plans")
        plan = self.library.plan
        return [{"arena_bytes": a, "instructions": round(plan.base_instructions + e), "chosen": c}
                for a, e, c in plan.considered]

    def plan_figure(self):
        """The RAM-instructions trade-off of those plans (``report.plots.plan_tradeoff``)."""
        from tinyopt.report.plots import plan_tradeoff

        return plan_tradeoff(self.plans(), f"{Path(str(self.out)).name}: plans tried, the chosen one starred")

    def to_dict(self) -> dict:
        return jsonable({"out": str(self.out), "target": self.target, "files": self.files,
                         "arena_bytes": self.arena_bytes, "input_bytes": self.input_bytes,
                         "output_bytes": self.output_bytes, "macs": self.macs, "bytes": self.nbytes,
                         "run": self.run})

    def tables(self) -> list[Table]:
        out = [Table(self.summary(), [])]
        if self.run:
            out.append(Table(f"Run on {self.run.get('board')}", ["figure", "value"],
                             [[k, v] for k, v in self.run.items() if k != "nodes"], right=("value",)))
            if self.run.get("nodes"):
                cols = ["node", "op", "instructions", "MACs", "instr/MAC"]
                out.append(Table("Per node (first input)", cols,
                                 [[r["node"], r["op"], f"{r['instructions']:,}", f"{r['macs']:,}",
                                   "" if r["instructions_per_mac"] is None
                                   else f"{r['instructions_per_mac']:.2f}"]
                                  for r in self.run["nodes"]], right=("instructions", "MACs", "instr/MAC")))
        return out


@translated
def deploy(model, target: str = "c", out: str | os.PathLike | None = None, *, device: str | None = None,
           run: bool = False, inputs: int = 5, profile: bool = False, prefix: str = "tinyopt",
           force: bool = False, flash_wait_states: int | None = None, clock_mhz: float | None = None,
           example_input=None, input_shape: tuple[int, ...] | None = None, max_slowdown: float | None = None,
           optimize: str = "balanced", max_ram_kb: float | None = None, **old) -> Deployment:
    """Write ``model`` as ``target``: ``"tflite"`` (a ``.tflite`` file), ``"c"`` (a C99 library folder: one
    static arena, no malloc, no float on the int8 path) or ``"arduino"`` (the library plus a sketch).

    ``out`` is the file or folder, written atomically; an existing folder tinyopt did not write is refused
    unless ``force``. ``run=True`` (C only) also builds the library for ``device`` (default ``mps2-an386``,
    a Cortex-M4 under qemu), runs ``inputs`` seeded inputs there and on the host, and reports instructions
    per MAC, estimated Cortex-M4 cycles and milliseconds at the clock (the board's, or ``clock_mhz``; flash
    wait states the board's or ``flash_wait_states``), flash and RAM; ``profile=True`` adds each node's.
    A compressed model (a ``tinyopt compress`` output, or a ``.tflite`` with INT4 or lookup-table weights)
    keeps its weights compressed: in the ``.tflite`` as TFLM reads them, in the C library in the layout
    per layer that needs the least flash while the estimated Cortex-M4 instructions stay within
    ``max_slowdown`` (default 1.5) times the dense kernels'.
    ``optimize`` chooses the C library's execution plan: ``"speed"`` (whole tensors), ``"balanced"`` (the
    smallest arena whose row-streamed segments add at most 15 % estimated Cortex-M4 instructions) or
    ``"ram"`` (the smallest arena); ``max_ram_kb`` instead asks for the fastest plan whose arena fits in that
    many KB (1024 bytes), or raises a ``BudgetError`` naming the smallest arena there is.
    """
    kw = renamed_keywords(old, {"board": "device"}, "deploy")
    device = kw.get("device", device)
    run = run or profile  # a profile is a run with marks
    _check_options(target, out, run, inputs, flash_wait_states, clock_mhz, max_slowdown)
    _check_plan_options(optimize, max_ram_kb)
    m = load(model, example_input, input_shape=input_shape)
    if m.compressed is not None:  # tinyopt compress's output: to int8 with its record (ranges, data)
        from tinyopt._api.transform import convert

        m = convert(m)
    if target == "tflite":
        return _deploy_tflite(m, Path(out), device)
    from tinyopt.export.c import arduino_files, generate_sources, write_library
    from tinyopt.export.c.board import BOARDS

    if run and device is None:
        device = "mps2-an386"
    if device is not None and device not in BOARDS:
        raise ConfigError(f"unknown device {device!r} for a C build", where="--device",
                          fix=f"use one of {', '.join(BOARDS)}")
    max_ram = None if max_ram_kb is None else int(max_ram_kb * 1024)
    lib = generate_sources(m.graph, prefix=prefix, max_slowdown=max_slowdown, optimize=optimize,
                           max_ram=max_ram)  # raises before writing
    files = lib.files if target == "c" else arduino_files(lib, m.graph)
    meta = {"model": str(m.source), "target": target, "arena_bytes": lib.arena_bytes, "macs": lib.macs}
    write_library(files, out, force=force, meta=meta)
    res = None
    if run:
        from tinyopt.cli.deploy import run_on_board  # the --run figures (its owner keeps them beside the CLI)

        res = run_on_board(lib, Path(out), device, n_inputs=inputs, profile=profile,
                           flash_wait_states=flash_wait_states, clock_mhz=clock_mhz)
    return Deployment(Path(out), target, sorted(files), lib, res, graph=m.graph, max_slowdown=max_slowdown)


def _check_options(target, out, run, inputs, flash_wait_states, clock_mhz, max_slowdown=None) -> None:
    """Refuse bad options before anything is loaded or written."""
    if max_slowdown is not None and not max_slowdown >= 1.0:
        raise ConfigError(f"--max-slowdown {max_slowdown} is below 1", where="--max-slowdown",
                          fix="give 1.0 (compressed layers as fast as the dense kernels) or more, e.g. 1.5")
    if target not in TARGETS:
        raise ConfigError(f"unknown target {target!r}", where="--target",
                          fix=f"use one of {', '.join(TARGETS)}")
    if out is None:
        raise ConfigError("no output path given", where="--out",
                          fix="give out= (a folder, or a .tflite file)")
    if run and target != "c":
        raise ConfigError("--run builds the plain C target", where="--run", fix="use --target c with --run")
    if inputs < 1:
        raise ConfigError("--inputs must be at least 1", where="--inputs", fix="give a positive count")
    if flash_wait_states is not None and not 0 <= flash_wait_states <= 15:
        raise ConfigError(f"--flash-wait-states {flash_wait_states} is out of range",
                          where="--flash-wait-states", fix="give the board's flash wait states, 0 to 15")
    if clock_mhz is not None and not clock_mhz > 0:
        raise ConfigError(f"--clock-mhz {clock_mhz} is not a clock", where="--clock-mhz",
                          fix="give the core clock in MHz, e.g. 80")


def _check_plan_options(optimize: str, max_ram_kb: float | None) -> None:
    from tinyopt.export.c.plan import MODES

    if optimize not in MODES:
        raise ConfigError(f"unknown plan {optimize!r}", where="--optimize",
                          fix=f"use one of {', '.join(MODES)}")
    if max_ram_kb is not None and not max_ram_kb > 0:
        raise ConfigError(f"--max-ram-kb {max_ram_kb} is not a budget", where="--max-ram-kb",
                          fix="give the arena budget in KB (1024 bytes), e.g. 16")


def _deploy_tflite(m, out: Path, device) -> Deployment:
    from tinyopt.export.tflite import save_tflite

    if device is not None:
        raise ConfigError("a device applies to C builds (--run)", where="--device",
                          fix="drop --device, or use --target c --run")
    if out.suffix.lower() != ".tflite":
        raise ConfigError(f"output '{out}' is not a .tflite path", where="--out", fix="name it OUT.tflite")
    if not m.has_weights:
        raise ConfigError("the model has no weights (an architecture spec)", path=m.source,
                          fix="give a .tflite/.onnx file or a PyTorch model")
    save_tflite(m.graph, out)
    return Deployment(out, "tflite", [out.name], nbytes=out.stat().st_size)


__all__ = ["Deployment", "deploy", "infer"]
