"""Build the generated library for the host and for Cortex-M4 (MPS2 AN386), run it under qemu, measure it.

Instruction counts: qemu's ``-icount shift=S`` makes every guest instruction advance virtual time by
exactly 2^S ns, and the M4's SysTick (25 MHz processor clock on MPS2) ticks every 40 ns of virtual time,
so ``instructions = ticks * 40 / 2^S`` with no host noise. S = 3 gives 5 instructions per tick; a wrap
interrupt extends the 24-bit counter. The harness subtracts the cost of reading the counter twice.

Cycles: ``trace_cycles`` runs a one-input build with qemu's instruction log and times the stream with the
Cortex-M4 rules of ``tinyopt.export.c.cycles``; milliseconds use the board's clock (``BOARDS``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from string import Template

import numpy as np

from tinyopt.errors import ToolchainError
from tinyopt.export.c import emit
from tinyopt.export.c.cycles import TRACE_FLAGS, CortexM4Timing, Estimate, Trace, estimate
from tinyopt.export.c.generate import _resource

ICOUNT_SHIFT = 3
SYSTICK_NS = 40  # 25 MHz
M4_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
WARN_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
APT = "sudo apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
# clock_mhz: the MPS2 FPGA image runs the M4 at 25 MHz (its SysTick reference); flash_wait_states: code and
# weights sit in zero-wait SSRAM on the MPS2, so 0 (a board with slow flash sets its own)
BOARDS = {"mps2-an386": {"machine": "mps2-an386", "flags": M4_FLAGS, "clock_mhz": 25.0,
                         "flash_wait_states": 0}}


def require(tool: str) -> str:
    """Path of an external tool, or a ToolchainError that says how to install it."""
    path = shutil.which(tool)
    if path is None:
        raise ToolchainError(f"'{tool}' is not installed", where="deploy --run",
                             fix=f"install the Cortex-M toolchain and emulator: {APT}")
    return path


def _run(cmd: list[str], what: str, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    try:
        res = subprocess.run(cmd, capture_output=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as e:
        raise ToolchainError(f"{what} did not finish within {timeout:.0f} s", where=cmd[0],
                             fix="check the model size or raise the timeout") from e
    if res.returncode != 0:
        err = (res.stderr or b"").decode(errors="replace").strip().splitlines()
        raise ToolchainError(f"{what} failed: {' | '.join(err[:3]) or 'exit status ' + str(res.returncode)}",
                             where=cmd[0], fix=f"check the toolchain installation ({APT})")
    return res


def build_host(lib_dir: Path, exe: Path, main_c: Path | None = None, shared: bool = False,
               cc: str = "cc", opt: str = "-O2") -> Path:
    """Compile the library (with ``main_c``, default its example) strictly, as a user would."""
    require(cc)
    sources = sorted(str(p) for p in Path(lib_dir).glob("*.c"))
    if shared:
        cmd = [cc, *WARN_FLAGS, opt, "-fPIC", "-shared", "-I", str(lib_dir), *sources, "-o", str(exe)]
    else:
        main_c = main_c or Path(lib_dir) / "examples" / "main.c"
        cmd = [cc, *WARN_FLAGS, opt, "-I", str(lib_dir), *sources, str(main_c), "-o", str(exe)]
    _run(cmd, "host compilation")
    return exe


def io_bytes(inputs: np.ndarray) -> np.ndarray:
    """The rows of ``inputs`` as the bytes the library reads: int16 rows (a 16x8 model) as their
    little-endian bytes, anything else as int8 values.

    >>> io_bytes(np.array([[1, -2]], np.int16)).tolist()
    [[1, 0, -2, -1]]
    """
    a = np.asarray(inputs)
    a = a.astype("<i2") if a.dtype == np.int16 else a.astype(np.int8)
    return np.ascontiguousarray(a).view(np.int8).reshape(len(a), -1)


def run_host(exe: Path, inputs: np.ndarray, output_bytes: int, dtype=np.int8) -> np.ndarray:
    """Outputs of the example program for a batch of inputs (one row per input; int16 rows for a 16x8
    model), as ``dtype`` values (np.int16 for a 16x8 model's output)."""
    res = _run([str(exe)], "host run", input=io_bytes(inputs).tobytes())
    return as_values(np.frombuffer(res.stdout, np.int8).reshape(len(inputs), output_bytes), dtype)


def as_values(out_bytes: np.ndarray, dtype) -> np.ndarray:
    """Output rows of bytes read as ``dtype`` values (little-endian, as both targets store them)."""
    return np.ascontiguousarray(out_bytes).view(np.dtype(dtype).newbyteorder("<")).astype(dtype)


def inputs_initializer(inputs: np.ndarray) -> str:
    """C initialiser rows for ``int8_t inputs[N][BYTES]``.

    >>> inputs_initializer(np.array([[1, -2], [3, 4]], np.int8))
    '    {1, -2},\\n    {3, 4}'
    """
    return ",\n".join("    {" + ", ".join(str(int(v)) for v in row) + "}"
                      for row in inputs.reshape(len(inputs), -1))


@dataclass
class M4Build:
    elf: Path
    flash_bytes: int  # .text + .rodata of the library objects
    ram_bytes: int  # .data + .bss of the library objects
    elf_sizes: dict  # text/data/bss of the whole firmware (harness and test inputs included)
    map: Path | None = None  # the linker's map: what it kept of every object, after --gc-sections


def _sizes(paths: list[Path]) -> dict:
    res = _run([require("arm-none-eabi-size"), "-t", *map(str, paths)], "arm-none-eabi-size")
    total = res.stdout.decode().strip().splitlines()[-1].split()
    return {"text": int(total[0]), "data": int(total[1]), "bss": int(total[2])}


def _link(gcc: str, flags: list[str], build_dir: Path, sources: list[Path], objects: list[Path], elf: Path,
          includes: list[str]) -> None:
    """Link a bare firmware: the MPS2 start-up and linker script, newlib-nano, semihosting, a map file."""
    (build_dir / "startup.c").write_text(_resource("templates", "mps2_startup.c"))
    (build_dir / "link.ld").write_text(_resource("templates", "mps2_an386.ld"))
    harness_flags = [f for f in flags if f != "-pedantic"]  # the vector table casts the stack address
    _run([gcc, *harness_flags, *includes, "-nostartfiles", "-T", str(build_dir / "link.ld"),
          "-Wl,--gc-sections", f"-Wl,-Map={elf.with_suffix('.map')}", "--specs=nano.specs",
          "--specs=nosys.specs", *map(str, sources), str(build_dir / "startup.c"), *map(str, objects),
          "-o", str(elf)], "linking")


def build_firmware(sources: list[Path], build_dir: Path, name: str = "firmware", board: str = "mps2-an386",
                   include_dirs: tuple[Path, ...] = (), objects: tuple[Path, ...] = ()) -> Path:
    """A bare firmware from C/assembly ``sources`` (one defines ``main``) and prebuilt ``objects``: the
    ELF's path. For micro-benchmarks and probes; libraries go through ``build_m4``."""
    gcc = require("arm-none-eabi-gcc")
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    elf = build_dir / f"{name}.elf"
    _link(gcc, [*BOARDS[board]["flags"], "-O2"], build_dir, list(sources), list(objects), elf,
          [f"-I{d}" for d in include_dirs])
    return elf


def build_m4(lib_dir: Path, build_dir: Path, inputs: np.ndarray, prefix: str = "tinyopt",
             board: str = "mps2-an386", profile: bool = False, include_dirs: tuple[Path, ...] = (),
             objects: tuple[Path, ...] = ()) -> M4Build:
    """Cross-compile the library and a semihosting harness holding ``inputs``; sizes via arm-none-eabi-size.

    ``profile`` builds the library with a mark after every node, so the harness also prints each node's
    instructions on the first input (the marks cost a call each: use the plain build for totals).
    ``include_dirs`` and ``objects`` (an archive, say) are for a library that calls another one."""
    gcc = require("arm-none-eabi-gcc")
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    flags = [*WARN_FLAGS, *BOARDS[board]["flags"], "-O2", "-ffunction-sections", "-fdata-sections"]
    lib_flags = [*flags, f"-D{prefix.upper()}_PROFILE"] if profile else flags
    includes = ["-I", str(lib_dir), *(f"-I{d}" for d in include_dirs)]
    objs = []
    for src in sorted(Path(lib_dir).glob("*.c")):
        obj = build_dir / (src.stem + ".o")
        _run([gcc, *lib_flags, *includes, "-c", str(src), "-o", str(obj)], f"cross-compiling {src.name}")
        objs.append(obj)
    subs = dict(banner=emit.BANNER, prefix=prefix, PREFIX=prefix.upper(), n_inputs=len(inputs),
                inputs=inputs_initializer(io_bytes(inputs)), icount_shift=ICOUNT_SHIFT)
    (build_dir / "main.c").write_text(Template(_resource("templates", "mps2_main.c.in")).substitute(subs))
    elf = build_dir / "firmware.elf"
    _link(gcc, flags, build_dir, [build_dir / "main.c"], [*objs, *objects], elf, includes)
    lib = _sizes(objs)
    return M4Build(elf, flash_bytes=lib["text"], ram_bytes=lib["data"] + lib["bss"], elf_sizes=_sizes([elf]),
                   map=elf.with_suffix(".map"))


def run_firmware(elf: Path, board: str = "mps2-an386", timeout: float = 300,
                 trace: Path | None = None) -> str:
    """What a firmware printed over semihosting (qemu's stderr) and on its stdout; ``trace``: where qemu
    writes its instruction log."""
    qemu = require("qemu-system-arm")
    log = ["-d", TRACE_FLAGS, "-D", str(trace)] if trace is not None else []
    res = _run([qemu, "-M", BOARDS[board]["machine"], "-nographic", "-monitor", "none", "-serial", "none",
                "-icount", f"shift={ICOUNT_SHIFT}", "-semihosting-config", "enable=on,target=native",
                *log, "-kernel", str(elf)], "qemu", timeout=timeout)
    return (res.stdout + res.stderr).decode(errors="replace")


def run_traced(elf: Path, board: str = "mps2-an386", timeout: float = 300) -> tuple[Trace, str]:
    """(qemu's instruction log as a ``cycles.Trace``, what the firmware printed) of one run of ``elf``."""
    log = Path(elf).with_suffix(".trace")
    try:
        text = run_firmware(elf, board, timeout, trace=log)
        return Trace.read(log), text
    finally:
        log.unlink(missing_ok=True)


def run_qemu(elf: Path, output_bytes: int, board: str = "mps2-an386", timeout: float = 300,
             nodes: dict[int, int] | None = None, dtype=np.int8):
    """(outputs [N, output_bytes / itemsize] of ``dtype`` (np.int16 for a 16x8 model), instructions per
    inference [N]) from the harness under qemu.

    ``nodes``, if given, receives {node index: instructions} of a ``profile`` build's first inference."""
    text = run_firmware(elf, board, timeout)
    outs, counts = [], []
    for line in text.splitlines():
        m = re.fullmatch(r"out ([0-9a-f]*) (\d+)", line.strip())
        mark = re.fullmatch(r"node (\d+) (\d+)", line.strip())
        if mark and nodes is not None:
            node = int(mark.group(1))
            nodes[node] = nodes.get(node, 0) + int(mark.group(2)) * SYSTICK_NS // (1 << ICOUNT_SHIFT)
        if m:
            outs.append(np.frombuffer(bytes.fromhex(m.group(1)), np.int8))
            counts.append(int(m.group(2)) * SYSTICK_NS // (1 << ICOUNT_SHIFT))
    if not outs:
        raise ToolchainError("the firmware printed no outputs under qemu", where=str(elf),
                             fix="run qemu by hand with -semihosting to see what happened")
    return as_values(np.stack(outs).reshape(len(outs), output_bytes), dtype), np.array(counts, np.int64)


def board_timing(board: str = "mps2-an386", flash_wait_states: int | None = None) -> CortexM4Timing:
    """The cycle rules for ``board``, its flash wait states unless ``flash_wait_states`` overrides them."""
    w = BOARDS[board]["flash_wait_states"] if flash_wait_states is None else flash_wait_states
    return CortexM4Timing(flash_wait_states=int(w))


def trace_cycles(build: M4Build, prefix: str = "tinyopt", board: str = "mps2-an386",
                 timing: CortexM4Timing | None = None, timeout: float = 300) -> tuple[Estimate, list[int]]:
    """(estimate of the first inference, node order) of a harness build run under qemu's instruction log.

    The window runs from entering ``{prefix}_invoke`` to the return into ``main``. In a ``profile`` build
    every ``{prefix}_profile_mark`` call starts a segment and the marks themselves are not charged, so
    segment k is the k-th marked node's work (the last segment, the return from invoke, follows them)."""
    tr, text = run_traced(build.elf, board, timeout)
    order = [int(m.group(1)) for m in re.finditer(r"^node (\d+) ", text, re.M)]
    mark = f"{prefix}_profile_mark"
    est = estimate(tr, timing or board_timing(board), enter=f"{prefix}_invoke", until="main",
                   split=mark if order else None, exclude=(mark, "ticks_now") if order else ())
    return est, order


def estimate_library(lib_dir: Path, build_dir: Path, x: np.ndarray, prefix: str = "tinyopt",
                     board: str = "mps2-an386", timing: CortexM4Timing | None = None, profile: bool = False,
                     **build) -> tuple[Estimate, dict[int, dict]]:
    """Estimated cycles of one inference of a library (input: the first row of ``x``) and, with ``profile``,
    each marked node's ``{"instructions", "cycles", "classes"}`` from a second build with a mark after
    every node (the marks are not charged; the return from invoke goes with the last node). ``build``:
    more ``build_m4`` arguments (include dirs and objects of a library that calls another one)."""
    x = np.asarray(x, np.int8).reshape(len(x), -1)[:1]
    one = build_m4(lib_dir, Path(build_dir) / "m4-trace", x, prefix=prefix, board=board, **build)
    est, _ = trace_cycles(one, prefix=prefix, board=board, timing=timing)
    nodes: dict[int, dict] = {}
    if profile:
        marked = build_m4(lib_dir, Path(build_dir) / "m4-marked", x, prefix=prefix, board=board, profile=True,
                          **build)
        per, order = trace_cycles(marked, prefix=prefix, board=board, timing=timing)
        for k, i in enumerate(order):
            parts = [k, len(order)] if k == len(order) - 1 else [k]  # segment len(order): the return
            prev = nodes.get(i)  # a streamed node is marked after each of its bands: its parts add up
            classes: dict[str, dict[str, int]] = prev["classes"] if prev else {}
            for j in parts:
                for name, v in per.segment_classes[j].items():
                    into = classes.setdefault(name, dict.fromkeys(v, 0))
                    for f, n in v.items():
                        into[f] = into.get(f, 0) + n
            nodes[i] = {"instructions": (sum(per.segments[j][0] for j in parts)
                                         + (prev["instructions"] if prev else 0)),
                        "cycles": sum(per.segments[j][1] for j in parts) + (prev["cycles"] if prev else 0),
                        "classes": classes}
    return est, nodes


def estimate_graph(graph, board: str = "mps2-an386", flash_wait_states: int | None = None,
                   seed: int = 0, optimize: str = "balanced") -> tuple[Estimate, dict[int, dict]]:
    """Estimated Cortex-M4 cycles of ``graph`` deployed as tinyopt's C library, whole and per node, on
    one seeded input (cycles barely depend on the data: clamps and softmax only). Builds and runs it under
    qemu: a few seconds, and a ``ToolchainError`` where arm-none-eabi-gcc or qemu is missing."""
    import tempfile

    from tinyopt.export.c.generate import generate_sources, write_library

    lib = generate_sources(graph, optimize=optimize)
    x = np.random.default_rng(seed).integers(-128, 128, size=(1, lib.input_bytes), dtype=np.int8)
    with tempfile.TemporaryDirectory(prefix="tinyopt-cycles-") as tmp:
        write_library(lib.files, Path(tmp) / "lib")
        return estimate_library(Path(tmp) / "lib", Path(tmp), x, lib.prefix, board,
                                board_timing(board, flash_wait_states), profile=True)
