"""tinyopt's C library against CMSIS-NN's int8 kernels on a Cortex-M4 (qemu mps2-an386): instructions and
estimated cycles per layer and in total, RAM, flash; the outputs of both sides against TFLM.

Run from the repo root::

    .venv/bin/python bench/deploy_vs_cmsisnn.py --cmsis-nn DIR [--inputs 3] [--skip-zoo] [--write]

Our library is built with ``--optimize speed`` unless ``--optimize`` says otherwise: whole tensors, as TFLM
runs them, so the comparison is kernel against kernel (the library's default plan, ``balanced``, streams rows
for less RAM at a few percent more cycles; ``--optimize balanced`` measures it).

``DIR`` is a CMSIS-NN source tree (``Include/``, ``Source/``) kept outside this repository; nothing of it is
copied here. Use the revision TFLM pins (its ``cmsis_nn_download.sh``) so that the kernels are the ones TFLM
runs. ``--write`` also writes ``bench/results/deploy_vs_cmsisnn.md``.

How each side runs:

- CMSIS-NN: every ``Source/**/*.c`` except the float ones, ``arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb
  -mfloat-abi=hard -mfpu=fpv4-sp-d16 -O2`` (TFLM's flags for third-party kernels; the DSP paths), in one
  archive. A generated C file calls, layer by layer, the ``arm_*_s8`` function TFLM's CMSIS-NN kernel calls
  with the parameters it passes: per-channel multipliers and shifts, paddings and clamps from
  ``tinyopt.runtime.prepare.prepare_node`` (the values TFLM's Prepare computes), scratch buffers of the size
  ``*_get_buffer_size`` returns on the M4 (asked on the M4 itself, under qemu). Tensors and scratch buffers
  sit in one arena at the offsets TFLM's greedy planner gives them. RESHAPE copies when its two tensors
  differ, as TFLM's kernel does; MEAN has no CMSIS-NN kernel (TFLM runs its reference one): a plain C loop
  with CMSIS-NN's requantization. TFLM's interpreter (per-node dispatch) is not run: the CMSIS-NN side is
  the kernels alone, which favours it.
- tinyopt: the generated library, ``tinyopt.export.c.board.build_m4`` (same flags).
- Both: the same harness template, the same qemu (``-icount``, SysTick: instructions per inference, median
  over the inputs), the same instruction log timed by ``tinyopt.export.c.cycles`` (first input); per-layer
  figures from builds with a mark after every layer (marks not charged).
- RAM: ours is the library's static arena plus the caller's output buffer (as ``deploy --run``); TFLM +
  CMSIS-NN is its arena: the greedy plan of tensors and scratch buffers (the head, planned here exactly as
  TFLM plans it) plus the persistent tail TFLM's Python interpreter reports for the model (reference kernels;
  CMSIS-NN's per-node data adds up to 24 B per node). Stack not counted on either side.
- Flash: ``.text + .rodata`` the linker keeps (``--gc-sections``, from its map) of the library's objects;
  CMSIS-NN: the archive members linked, plus the layer calls and the model's constants (weights, biases,
  multipliers, shifts). TFLM's interpreter and the ``.tflite`` flatbuffer are not counted.
- Outputs: both sides' M4 outputs against TFLM's Python interpreter on the same seeded inputs (against
  ``tinyopt.runtime.Interpreter`` where TFLM cannot prepare a model).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
MODELS = ROOT.parent / "shared" / "models" / "mlperf-tiny"
CASES = {"KWS (DS-CNN)": MODELS / "kws_ref_model.tflite",
         "ResNet-8": MODELS / "pretrainedResnet_quant.tflite"}
RESULTS = ROOT / "bench" / "results" / "deploy_vs_cmsisnn.md"
KEEP = "<!-- hand-written from here on: --write keeps it -->"
PREFIX = "cmsisnn"


# ---- CMSIS-NN: the library --------------------------------------------------------------------------------

def build_cmsis_nn(src: Path, work: Path) -> Path:
    """Every integer CMSIS-NN source compiled for the M4 into one archive."""
    from tinyopt.export.c.board import BOARDS, _run, require

    gcc, ar = require("arm-none-eabi-gcc"), require("arm-none-eabi-ar")
    objs = []
    out = work / "cmsis-nn-obj"
    out.mkdir(parents=True, exist_ok=True)
    sources = sorted(p for p in (src / "Source").rglob("*.c") if not re.search(r"_f(16|32)\.c$", p.name))
    for c in sources:
        o = out / (c.stem + ".o")
        _run([gcc, *BOARDS["mps2-an386"]["flags"], "-O2", "-ffunction-sections", "-fdata-sections",
              "-DARM_NN_ENABLE_F16=0", "-DARM_NN_ENABLE_F32=0", f"-I{src / 'Include'}", "-c", str(c),
             "-o", str(o)],
             f"cross-compiling CMSIS-NN {c.name}")
        objs.append(o)
    lib = work / "libcmsisnn.a"
    _run([ar, "rcs", str(lib), *map(str, objs)], "archiving CMSIS-NN")
    return lib


# ---- CMSIS-NN: the layer calls TFLM makes ---------------------------------------------------------------
# Per-operator code of this benchmark (which arm_* function TFLM's CMSIS-NN kernel calls, with what); it
# moves into the operator registry with the rest once the registry carries a "peer kernel" field.

def _dims(shape) -> str:
    n, h, w, c = shape if len(shape) == 4 else (shape[0], 1, 1, shape[-1])
    return f"{{{n}, {h}, {w}, {c}}}"


def _conv(g, node, p, k, t, buf):
    x, w, y = (g.tensors[n] for n in (node.inputs[0], node.inputs[1], node.outputs[0]))
    bias = f"b{k}" if len(node.inputs) > 2 and node.inputs[2] else "NULL"
    pre = "dw" if node.op == "DEPTHWISE_CONV_2D" else ""
    extra = f".ch_mult = {p['depth_multiplier']}, " if pre else ""
    params = (f"const cmsis_nn_{pre + '_' if pre else ''}conv_params cp = "
              f"{{.input_offset = {p['input_offset']}, .output_offset = {p['output_offset']}, "
              f"{extra}.stride = {{{p['stride_w']}, {p['stride_h']}}}, "
              f".padding = {{{p['padding_w']}, {p['padding_h']}}}, .dilation = {{{p['dilation_w']}, "
              f"{p['dilation_h']}}}, .activation = {{{p['output_activation_min']}, "
              f"{p['output_activation_max']}}}}};")
    fdims = f"{{1, {w.shape[1]}, {w.shape[2]}, {w.shape[3]}}}"
    call = "arm_depthwise_conv_wrapper_s8" if pre else "arm_convolve_wrapper_s8"
    return params, (f"const cmsis_nn_per_channel_quant_params qp = {{(int32_t *)m{k}, (int32_t *)s{k}}};\n"
                    f"        const cmsis_nn_dims in_d = {_dims(x.shape)}, f_d = {fdims}, "
                    f"b_d = {{1, 1, 1, {y.shape[3]}}}, out_d = {_dims(y.shape)};\n"
                    f"        const cmsis_nn_context ctx = {{{buf}, 0}};\n"
                    f"        if ({call}(&ctx, &cp, &qp, &in_d, {t[node.inputs[0]]}, &f_d, w{k}, &b_d, "
                    f"{bias}, &out_d, {t[node.outputs[0]]}) != ARM_CMSIS_NN_SUCCESS) return 1;"), \
        f"{call}_get_buffer_size"


def _fc(g, node, p, k, t, buf):
    y = g.tensors[node.outputs[0]]
    if len(y.shape) > 2:  # TFLM runs arm_convolve_1x1_s8_fast there; no model here needs it
        raise NotImplementedError(f"FULLY_CONNECTED with a {len(y.shape)}-D output")
    batches, depth, units = int(np.prod(y.shape[:-1])), p["accum_depth"], p["output_depth"]
    bias = f"b{k}" if len(node.inputs) > 2 and node.inputs[2] else "NULL"
    return (f"const cmsis_nn_fc_params fp = {{.input_offset = {p['input_offset']}, .filter_offset = "
            f"{p['weights_offset']}, .output_offset = {p['output_offset']}, .activation = "
            f"{{{p['output_activation_min']}, {p['output_activation_max']}}}}};"), (
        f"const cmsis_nn_quant_params qp = {{(int32_t *)m{k}, (int32_t *)s{k}, {int(p['per_channel'])}}};\n"
        f"        const cmsis_nn_dims in_d = {{{batches}, 1, 1, {depth}}}, f_d = {{{depth}, 1, 1, {units}}}, "
        f"b_d = {{1, 1, 1, {units}}}, out_d = {{{batches}, 1, 1, {units}}};\n"
        f"        const cmsis_nn_context ctx = {{NULL, 0}};\n"
        f"        if (arm_fully_connected_wrapper_s8(&ctx, &fp, &qp, &in_d, {t[node.inputs[0]]}, &f_d, "
        f"w{k}, &b_d, {bias}, &out_d, {t[node.outputs[0]]}) != ARM_CMSIS_NN_SUCCESS) return 1;"), None


def _pool(g, node, p, k, t, buf):
    x, y = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
    call = "arm_avgpool_s8" if node.op == "AVERAGE_POOL_2D" else "arm_max_pool_s8"
    return (f"const cmsis_nn_pool_params pp = {{.stride = {{{p['stride_w']}, {p['stride_h']}}}, .padding = "
            f"{{{p['padding_w']}, {p['padding_h']}}}, .activation = {{{p['output_activation_min']}, "
            f"{p['output_activation_max']}}}}};"), (
        f"const cmsis_nn_dims in_d = {_dims(x.shape)}, f_d = {{1, {p['filter_h']}, {p['filter_w']}, 1}}, "
        f"out_d = {_dims(y.shape)};\n"
        f"        const cmsis_nn_context ctx = {{{buf}, 0}};\n"
        f"        if ({call}(&ctx, &pp, &in_d, {t[node.inputs[0]]}, &f_d, &out_d, {t[node.outputs[0]]}) "
        f"!= ARM_CMSIS_NN_SUCCESS) return 1;"), "arm_avgpool_s8_get_buffer_size" if "avg" in call else None


def _add(g, node, p, k, t, buf):
    a, b, y = (g.tensors[n] for n in (node.inputs[0], node.inputs[1], node.outputs[0]))
    if not a.shape == b.shape == y.shape:  # TFLM broadcasts with its reference kernel
        raise NotImplementedError("ADD with broadcasting")
    return "", (f"if (arm_elementwise_add_s8({t[node.inputs[0]]}, {t[node.inputs[1]]}, {p['input1_offset']}, "
                f"{p['input1_multiplier']}, {p['input1_shift']}, {p['input2_offset']}, "
                f"{p['input2_multiplier']}, "
                f"{p['input2_shift']}, {p['left_shift']}, {t[node.outputs[0]]}, {p['output_offset']}, "
                f"{p['output_multiplier']}, {p['output_shift']}, {p['output_activation_min']}, "
                f"{p['output_activation_max']}, {y.size}) != ARM_CMSIS_NN_SUCCESS) return 1;"), None


def _softmax(g, node, p, k, t, buf):
    y = g.tensors[node.outputs[0]]
    return "", (f"arm_softmax_s8({t[node.inputs[0]]}, {y.size // y.shape[-1]}, {y.shape[-1]}, "
                f"{p['input_multiplier']}, {p['input_left_shift']}, {p['diff_min']}, "
                f"{t[node.outputs[0]]});"), None


def _reshape(g, node, p, k, t, buf):
    n = g.tensors[node.outputs[0]].size
    src, dst = t[node.inputs[0]], t[node.outputs[0]]
    return "", ("" if src == dst else f"memcpy({dst}, {src}, {n});"), None


def _mean(g, node, p, k, t, buf):
    x = g.tensors[node.inputs[0]]
    # over every spatial position, per channel (an axis of size 1 may be left out: cnn1d's (1, 1, L, C))
    axes = {int(a) % 4 for a in p["axes"]}
    if len(x.shape) != 4 or not axes <= {1, 2} or axes | {a for a in (1, 2) if x.shape[a] == 1} != {1, 2}:
        raise NotImplementedError(f"MEAN over axes {p['axes']}")
    _, h, w, c = x.shape
    return "", (f"for (int ch = 0; ch < {c}; ++ch) {{\n"
                f"            int32_t sum = 0;\n"
                f"            for (int i = 0; i < {h * w}; ++i) sum += {t[node.inputs[0]]}[i * {c} + ch];\n"
                f"            sum = arm_nn_requantize(sum - ({p['input_zero_point']} * {h * w}), "
                f"{p['mean_multiplier']}, {p['mean_shift']}) + {p['output_zero_point']};\n"
                f"            {t[node.outputs[0]]}[ch] = "
                "(int8_t)(sum < -128 ? -128 : sum > 127 ? 127 : sum);\n"
                f"        }}"), None


LAYERS = {"CONV_2D": _conv, "DEPTHWISE_CONV_2D": _conv, "FULLY_CONNECTED": _fc, "AVERAGE_POOL_2D": _pool,
          "MAX_POOL_2D": _pool, "ADD": _add, "SOFTMAX": _softmax, "RESHAPE": _reshape, "MEAN": _mean}


def _constants(g, node, p, k) -> list[str]:
    from tinyopt.export.c.emit import c_array

    out = []
    if node.op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
        out.append(c_array(f"w{k}", "int8_t", g.tensors[node.inputs[1]].data))
        if len(node.inputs) > 2 and node.inputs[2]:
            out.append(c_array(f"b{k}", "int32_t", g.tensors[node.inputs[2]].data))
        out.append(c_array(f"m{k}", "int32_t", p["output_multiplier"]))
        out.append(c_array(f"s{k}", "int32_t", p["output_shift"]))
    return out


def _activations(g) -> dict[str, tuple[int, int, int]]:
    """Every tensor the arena holds: (bytes, first step, last step), TFLM's lifetimes."""
    from tinyopt.analysis.memory import tensor_lifetimes

    return {n: (g.tensors[n].size, a, b) for n, (a, b) in tensor_lifetimes(g).items()}


def harness(g, scratch: dict[int, int] | None) -> tuple[dict[str, str], dict]:
    """``{file: text}`` of the CMSIS-NN side of ``g``. ``scratch`` None: the probe that prints every layer's
    ``*_get_buffer_size`` on the M4; else the model, its arena laid out by TFLM's greedy planner."""
    from tinyopt.analysis.memory import GreedyPlanner
    from tinyopt.runtime.prepare import prepare_node

    probe_only = scratch is None
    acts = _activations(g)
    planner = GreedyPlanner()
    order = list(acts)
    for n in order:
        planner.add_buffer(acts[n][0], acts[n][1], acts[n][2], name=n)
    scratch = scratch or {}
    for k in sorted(scratch):
        if scratch[k] > 0:
            planner.add_buffer(scratch[k], k, k, name=f"scratch{k}")
    planner.plan()
    offs = {n: planner.offset_of(i) for i, n in enumerate(order)}
    soff = {k: planner.offset_of(len(order) + i)
            for i, k in enumerate(k for k in sorted(scratch) if scratch[k] > 0)}
    t = {n: f"(arena + {o})" for n, o in offs.items()}
    x, y = g.inputs[0], g.outputs[0]
    consts, body, probes = [], [], []
    for k, node in enumerate(g.nodes):
        if node.op not in LAYERS:
            raise NotImplementedError(f"{node.op} has no CMSIS-NN call here")
        p = prepare_node(g, node)
        buf = f"(arena + {soff[k]})" if k in soff else "NULL"
        params, call, size_fn = LAYERS[node.op](g, node, p, k, t, buf)
        consts += _constants(g, node, p, k)
        body.append(f"    {{ /* node {k}: {node.op} */\n        {params}\n        {call}\n    }}\n"
                    f"    AFTER({k});")
        if size_fn:
            if size_fn == "arm_avgpool_s8_get_buffer_size":
                args = f"{g.tensors[node.outputs[0]].shape[2]}, {g.tensors[node.outputs[0]].shape[3]}"
                probes.append(f"    report({k}, {size_fn}({args}));")
            else:
                decl = params.replace("const cmsis_nn_", "cmsis_nn_")
                dims = call.split("\n")[1].strip() if "quant" in call else call.split("\n")[0].strip()
                probes.append(f"    {{\n        {decl}\n        {dims}\n"
                              f"        report({k}, {size_fn}(&cp, &in_d, &f_d, &out_d));\n    }}")
    head = ("/* bench/deploy_vs_cmsisnn.py: every layer through the CMSIS-NN call TFLM's CMSIS-NN kernel "
            "makes */\n")
    h = (f"#ifndef CMSISNN_MODEL_H\n#define CMSISNN_MODEL_H\n#include <stdint.h>\n"
         f"#define CMSISNN_INPUT_BYTES {g.tensors[x].size}\n"
         f"#define CMSISNN_OUTPUT_BYTES {g.tensors[y].size}\n"
         "typedef int8_t cmsisnn_input_t;\ntypedef int8_t cmsisnn_output_t;\n"  # the harness's element types
         f"int8_t *cmsisnn_input_buffer(void);\n"
         f"int8_t *cmsisnn_output_buffer(void);\n"
         "int cmsisnn_invoke(const int8_t *input, int8_t *output);\n#endif\n")
    arena = max(planner.peak_bytes(), 16)
    model = (head + "#include <stddef.h>\n#include <stdint.h>\n#include <string.h>\n"
             "#include \"arm_nnfunctions.h\"\n"
             "#include \"arm_nnsupportfunctions.h\"\n#include \"cmsisnn_model.h\"\n\n"
             "#ifdef CMSISNN_PROFILE\nvoid cmsisnn_profile_mark(int node);\n"
             "#define AFTER(node) cmsisnn_profile_mark(node)\n"
             "#else\n#define AFTER(node) ((void)0)\n#endif\n\n"
             f"static int8_t arena[{arena}] __attribute__((aligned(16)));\n\n" + "\n".join(consts) + "\n\n"
             f"int8_t *cmsisnn_input_buffer(void)\n{{\n    return {t[x]};\n}}\n\n"
             f"int8_t *cmsisnn_output_buffer(void)\n{{\n    return {t[y]};\n}}\n\n"  # TFLM's output tensor
             "int cmsisnn_invoke(const int8_t *input, int8_t *output)\n{\n"
             f"    if (input != {t[x]}) {{\n        memcpy({t[x]}, input, CMSISNN_INPUT_BYTES);\n    }}\n"
             + "\n".join(body) + f"\n    if (output != NULL && output != {t[y]}) {{\n"
             f"        memcpy(output, {t[y]}, CMSISNN_OUTPUT_BYTES);\n    }}\n    return 0;\n}}\n")
    probe = ("#include <stdint.h>\n#include \"arm_nnfunctions.h\"\n"
             "static void write0(const char *s)\n{\n    register uint32_t r0 __asm__(\"r0\") = 0x04u;\n"
             "    register const char *r1 __asm__(\"r1\") = s;\n"
             "    __asm__ volatile(\"bkpt 0xab\" : : \"r\"(r0), \"r\"(r1) : \"memory\");\n}\n"
             "static void report(int node, int32_t size)\n{\n    char line[32], *p = line + 31;\n"
             "    *p = 0;\n"
             "    *--p = '\\n';\n    do { *--p = (char)('0' + size % 10); size /= 10; } while (size > 0);\n"
             "    *--p = ' ';\n    do { *--p = (char)('0' + node % 10); node /= 10; } while (node > 0);\n"
             "    write0(p);\n}\n\nint main(void)\n{\n" + "\n".join(probes) + "\n    return 0;\n}\n")
    files = {"probe.c": probe} if probe_only else {"cmsisnn_model.h": h, "cmsisnn_model.c": model}
    return files, {"head": planner.peak_bytes(), "scratch": {k: v for k, v in scratch.items() if v > 0}}


def scratch_sizes(g, cmsis: Path, lib: Path, work: Path) -> dict[int, int]:
    """Each layer's ``*_get_buffer_size`` as the M4 build of CMSIS-NN answers it."""
    from tinyopt.export.c.board import build_firmware, run_firmware

    files, _ = harness(g, None)
    work.mkdir(parents=True, exist_ok=True)
    (work / "probe.c").write_text(files["probe.c"])
    elf = build_firmware([work / "probe.c"], work, name="probe", include_dirs=(cmsis / "Include",),
                         objects=(lib,))
    text = run_firmware(elf)
    return {int(a): int(b) for a, b in re.findall(r"^(\d+) (\d+)$", text, re.M)}


# ---- measuring ---------------------------------------------------------------------------------------------

def kept_flash(map_path: Path, keep) -> int:
    """``.text``/``.rodata`` bytes the linker kept from the objects ``keep(object path)`` selects."""
    text = map_path.read_text(errors="replace")
    text = text[text.find("Linker script and memory map"):]
    total = 0
    for m in re.finditer(r"^ (\.(?:text|rodata)\S*)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+)$", text, re.M):
        if keep(m.group(4)):
            total += int(m.group(3), 16)
    return total


def tflm_reference(g, model_bytes: bytes, xs: np.ndarray) -> tuple[np.ndarray, str, int | None]:
    """(outputs, which interpreter, TFLM's persistent tail in bytes or None)."""
    from tflite_micro.python.tflite_micro import runtime

    x_t = g.tensors[g.inputs[0]]
    try:
        interp = runtime.Interpreter.from_bytes(model_bytes)
        outs = []
        for x in xs:
            interp.set_input(x.reshape(x_t.shape), 0)
            interp.invoke()
            outs.append(interp.get_output(0).reshape(-1))
        return np.stack(outs), "TFLM", tflm_arena_parts(model_bytes)[1]
    except RuntimeError:
        from tinyopt.runtime import Interpreter

        ref = Interpreter(g).run(xs.reshape(len(xs), *x_t.shape[1:]))[0].reshape(len(xs), -1)
        return ref, "tinyopt runtime (TFLM cannot prepare it)", None


def tflm_arena_parts(model_bytes: bytes) -> tuple[int, int]:
    """(head, tail) of TFLM's arena for the model, from its ``print_allocations`` (it prints from C++)."""
    import ctypes
    import os

    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(model_bytes)
    sys.stdout.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            interp.print_allocations()
            ctypes.CDLL(None).fflush(None)
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
        f.seek(0)
        text = f.read().decode(errors="replace")
    return tuple(int(re.search(rf"Arena allocation {part} (\d+) bytes", text).group(1))
                 for part in ("head", "tail"))


def run_side(lib_dir: Path, work: Path, xs: np.ndarray, prefix: str, output_bytes: int, **kw) -> dict:
    """Build, run the inputs (SysTick), trace one input whole and one marked per layer."""
    from tinyopt.export.c.board import build_m4, estimate_library, run_qemu

    m4 = build_m4(lib_dir, work / "m4", xs, prefix=prefix, **kw)
    outs, counts = run_qemu(m4.elf, output_bytes)
    total, nodes = estimate_library(lib_dir, work, xs, prefix=prefix, profile=True, **kw)
    return {"outputs": outs, "instructions": int(np.median(counts)), "cycles": total.cycles,
            "classes": total.classes,
            "layers": {i: (v["instructions"], v["cycles"]) for i, v in nodes.items()},
            "m4": m4}


def measure(name: str, g, model_bytes: bytes, xs: np.ndarray, cmsis: Path, lib: Path, work: Path,
            optimize: str = "speed") -> dict:
    from tinyopt.export.c import generate_sources, write_library
    from tinyopt.export.c.generate import node_macs

    t0 = time.time()
    work.mkdir(parents=True, exist_ok=True)
    ref, peer, tail = tflm_reference(g, model_bytes, xs)
    ours_lib = generate_sources(g, optimize=optimize)
    write_library(ours_lib.files, work / "ours")
    ours = run_side(work / "ours", work / "ours-build", xs, "tinyopt", ours_lib.output_bytes)
    scratch = scratch_sizes(g, cmsis, lib, work / "probe")
    files, info = harness(g, scratch)
    (work / "cmsisnn").mkdir(exist_ok=True)
    for f, text in files.items():
        (work / "cmsisnn" / f).write_text(text)
    theirs = run_side(work / "cmsisnn", work / "cmsisnn-build", xs, PREFIX, g.tensors[g.outputs[0]].size,
                      include_dirs=(cmsis / "Include",), objects=(lib,))
    ours_objs = {p.name for p in (work / "ours").glob("*.c")}
    ours_flash = kept_flash(ours["m4"].map, lambda o: Path(o).name.replace(".o", ".c") in ours_objs)
    cmsis_flash = kept_flash(theirs["m4"].map,
                             lambda o: "libcmsisnn.a(" in o or o.endswith("cmsisnn_model.o"))
    layers = []
    producer = {t: j for j, n in enumerate(g.nodes) for t in n.outputs}
    for k, node in enumerate(g.nodes):
        p = ours_lib.prepared.get(k)
        row = {"node": k, "op": node.op, "macs": node_macs(p) if p is not None else 0,
               "ours": ours["layers"].get(k), "cmsis": theirs["layers"].get(k), "fused_into": None}
        if node.op == "ADD" and row["ours"] is None:  # our conv that produced one operand adds it in
            row["fused_into"] = max(producer[t] for t in node.inputs if t in producer)
        layers.append(row)
    return {
        "model": name, "macs": ours_lib.macs, "peer": peer, "inputs": len(xs),
        "ours_equal": int((ours["outputs"] == ref).all(axis=1).sum()),
        "cmsis_equal": int((theirs["outputs"] == ref).all(axis=1).sum()),
        "ours_instr": ours["instructions"], "cmsis_instr": theirs["instructions"],
        "ours_cycles": ours["cycles"], "cmsis_cycles": theirs["cycles"],
        "ours_classes": ours["classes"], "cmsis_classes": theirs["classes"],
        "ours_ram": ours["m4"].ram_bytes + ours_lib.caller_output_bytes,
        "cmsis_head": info["head"], "cmsis_scratch": sum(info["scratch"].values()), "tflm_tail": tail,
        "ours_flash": ours_flash, "cmsis_flash": cmsis_flash, "layers": layers, "seconds": time.time() - t0,
    }


def zoo_graph(name: str):
    import torch

    from tinyopt.convert.convert import convert_torch
    from tinyopt.zoo import build

    torch.manual_seed(0)
    model = build(name).eval()
    shape = tuple(model.input_shape)
    return convert_torch(model, torch.randn(16, *shape), shape)


# ---- report ------------------------------------------------------------------------------------------------

def _ram(r) -> str:
    return f"{r['cmsis_head'] + (r['tflm_tail'] or 0):,}" + (
        "" if r["tflm_tail"] is not None else " (head only)")


def summary_table(rows) -> list[str]:
    out = ["| model | MACs | ours instr | CMSIS-NN instr | instr ratio | ours est. cycles "
           "| CMSIS-NN est. cycles | cycle ratio | ours cycles/MAC | CMSIS-NN cycles/MAC | ours RAM B "
           "| TFLM+CMSIS-NN arena B (scratch) | ours flash B | CMSIS-NN flash B "
           "| = reference (ours / CMSIS-NN) |",
           "|" + " --- |" * 15]
    for r in rows:
        out.append(
            f"| {r['model']} | {r['macs']:,} | {r['ours_instr']:,} | {r['cmsis_instr']:,} "
            f"| {r['cmsis_instr'] / r['ours_instr']:.2f}x | {r['ours_cycles']:,} | {r['cmsis_cycles']:,} "
            f"| **{r['cmsis_cycles'] / r['ours_cycles']:.2f}x** | {r['ours_cycles'] / max(r['macs'], 1):.2f} "
            f"| {r['cmsis_cycles'] / max(r['macs'], 1):.2f} | {r['ours_ram']:,} "
            f"| {_ram(r)} ({r['cmsis_scratch']:,}) "
            f"| {r['ours_flash']:,} | {r['cmsis_flash']:,} | {r['ours_equal']}/{r['inputs']} / "
            f"{r['cmsis_equal']}/{r['inputs']} ({r['peer']}) |")
    return out


def layer_table(r) -> list[str]:
    out = [f"#### {r['model']}", "",
           "| node | op | MACs | ours instr | ours cycles | ours cycles/MAC | CMSIS-NN instr "
           "| CMSIS-NN cycles | CMSIS-NN cycles/MAC | cycle ratio |", "|" + " --- |" * 10]
    adds = {row["fused_into"]: row for row in r["layers"] if row["fused_into"] is not None}
    for row in r["layers"]:
        o, c, macs = row["ours"], row["cmsis"], row["macs"]
        o_txt = ((f"{o[0]:,} | {o[1]:,} | {o[1] / macs:.2f}" if macs else f"{o[0]:,} | {o[1]:,} | -")
                 if o else
                 ("0 | 0 | -" if row["fused_into"] is None else f"in node {row['fused_into']} | - | -"))
        c_txt = ((f"{c[0]:,} | {c[1]:,} | {c[1] / macs:.2f}" if macs else f"{c[0]:,} | {c[1]:,} | -")
                 if c else "- | - | -")
        ratio = f"{c[1] / o[1]:.2f}x" if o and c and o[1] else "-"
        if row["node"] in adds and o and c:  # our conv with the ADD fused in, against their conv + ADD
            c_add = adds[row["node"]]["cmsis"][1]
            ratio = f"{c[1] / o[1]:.2f}x ({(c[1] + c_add) / o[1]:.2f}x with ADD {adds[row['node']]['node']})"
        op = row["op"] + (" + ADD" if row["node"] in adds else "")
        out.append(f"| {row['node']} | {op} | {macs:,} | {o_txt} | {c_txt} | {ratio} |")
    return out


def class_table(r) -> list[str]:
    out = [f"#### {r['model']}: where the estimated cycles go", "",
           "| class | ours count | ours cycles | CMSIS-NN count | CMSIS-NN cycles |", "|" + " --- |" * 5]
    names = list(dict.fromkeys([*r["ours_classes"], *r["cmsis_classes"]]))
    for c in names:
        o, t = r["ours_classes"].get(c, {}), r["cmsis_classes"].get(c, {})
        cnt = "instructions" if "instructions" in o or "instructions" in t else "events"
        out.append(f"| {c} | {o.get(cnt, 0):,} | {o.get('cycles', 0):,} | {t.get(cnt, 0):,} "
                   f"| {t.get('cycles', 0):,} |")
    return out


def op_table(rows) -> list[str]:
    """Cycles by operator type, per model: where each side spends them. Our convs that add a residual in
    (ADD fused) are set against CMSIS-NN's conv and ADD together."""
    out = ["| model | operator | layers | MACs | ours cycles | share of ours | CMSIS-NN cycles "
           "| cycle ratio |",
           "|" + " --- |" * 8]
    for r in rows:
        ops: dict[str, list[int]] = {}
        fused = {row["fused_into"] for row in r["layers"] if row["fused_into"] is not None}
        for row in r["layers"]:
            op = row["op"]
            if row["node"] in fused or row["fused_into"] is not None:
                op = (f"{r['layers'][row['node'] if row['fused_into'] is None else row['fused_into']]['op']}"
                      " + ADD")
            o = ops.setdefault(op, [0, 0, 0, 0])
            o[0] += row["fused_into"] is None
            o[1] += row["macs"]
            o[2] += row["ours"][1] if row["ours"] else 0
            o[3] += row["cmsis"][1] if row["cmsis"] else 0
        for op, (n, macs, ours, theirs) in sorted(ops.items(), key=lambda kv: -kv[1][3]):
            ratio = f"{theirs / ours:.2f}x" if ours else "-"
            out.append(f"| {r['model']} | {op} | {n} | {macs:,} | {ours:,} "
                       f"| {100 * ours / r['ours_cycles']:.1f} % "
                       f"| {theirs:,} | {ratio} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cmsis-nn", type=Path, required=True, help="CMSIS-NN source tree (Include/, Source/)")
    ap.add_argument("--inputs", type=int, default=3, help="seeded inputs per model under qemu")
    ap.add_argument("--skip-zoo", action="store_true", help="only the two MLPerf models")
    ap.add_argument("--optimize", choices=("speed", "balanced", "ram"), default="speed",
                    help="the library's plan (tinyopt deploy --optimize); default speed: whole tensors as "
                         "TFLM runs them, the cycle-for-cycle comparison (balanced, the library's default, "
                         "streams rows for less RAM at a few %% more cycles)")
    ap.add_argument("--only", default="", help="comma-separated model names to run (e.g. 'mlp,lenet300'); "
                    "--write refuses it: the results file holds every model")
    ap.add_argument("--write", action="store_true", help=f"write {RESULTS.relative_to(ROOT)}")
    ap.add_argument("--mlperf", type=Path, help="a folder of more MLPerf Tiny int8 .tflite models (VWW, AD), "
                    "kept outside the repo")
    a = ap.parse_args()
    only = {m.strip() for m in a.only.split(",") if m.strip()}
    if only and a.write:
        sys.exit("--only runs a subset; --write needs every model")
    cmsis = a.cmsis_nn.resolve()
    if not (cmsis / "Include" / "arm_nnfunctions.h").is_file():
        sys.exit(f"{cmsis}: no Include/arm_nnfunctions.h; give --cmsis-nn a CMSIS-NN source tree")
    from tinyopt.export.tflite import graph_to_tflite_bytes
    from tinyopt.graph import load_model
    from tinyopt.zoo import ZOO

    t0 = time.time()
    rows = []
    with tempfile.TemporaryDirectory(prefix="tinyopt-cmsisnn-") as tmp:
        tmp = Path(tmp)
        lib = build_cmsis_nn(cmsis, tmp)
        cases = dict(CASES)
        if a.mlperf:  # the same selection as bench/deploy_vs_tflm.py --mlperf
            sys.path.insert(0, str(Path(__file__).parent))
            from deploy_vs_tflm import more_mlperf

            cases.update(more_mlperf(a.mlperf))
        for name, path in cases.items():
            if only and name not in only:
                continue
            if not path.is_file():
                print(f"skipping {name}: {path} absent", file=sys.stderr)
                continue
            g = load_model(path)
            xs = np.random.default_rng(0).integers(-128, 128, size=(a.inputs, g.tensors[g.inputs[0]].size),
                                                   dtype=np.int8)
            rows.append(measure(name, g, path.read_bytes(), xs, cmsis, lib, tmp / path.stem, a.optimize))
            print(f"{name}: {rows[-1]['seconds']:.0f} s", file=sys.stderr)
        for name in [] if a.skip_zoo else ZOO:
            if only and name not in only:
                continue
            g = zoo_graph(name)
            xs = np.random.default_rng(1).integers(-128, 128, size=(a.inputs, g.tensors[g.inputs[0]].size),
                                                   dtype=np.int8)
            rows.append(measure(f"zoo {name}", g, graph_to_tflite_bytes(g), xs, cmsis, lib,
                                tmp / f"zoo-{name}", a.optimize))
            print(f"zoo {name}: {rows[-1]['seconds']:.0f} s", file=sys.stderr)
    lines = summary_table(rows)
    print("\n".join(lines))
    if a.write:
        write_results(rows, a, time.time() - t0)


def write_results(rows, a, seconds: float) -> None:
    from tinyopt._io import atomic_write_text

    cmd = ("python bench/deploy_vs_cmsisnn.py --cmsis-nn DIR" + f" --inputs {a.inputs}"
           + (" --skip-zoo" if a.skip_zoo else "") + (" --mlperf MLPERF" if a.mlperf else "")
           + (f" --optimize {a.optimize}" if a.optimize != "speed" else "") + " --write")
    text = ["# tinyopt C library vs CMSIS-NN kernels on Cortex-M4 (qemu mps2-an386)", "",
            f"Command (repo root, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {seconds:.0f} s): "
            f"`.venv/bin/{cmd}`", "",
            "DIR: CMSIS-NN at the revision TFLM pins (outside the repository; see the script's docstring).",
            "Cycles: `tinyopt.export.c.cycles` (Cortex-M4 TRM timing of the traced instruction stream, zero "
            "wait states, first input). Ratios: CMSIS-NN / ours (above 1: ours needs fewer).", "",
            *summary_table(rows), "", "## Per layer", ""]
    for r in rows:
        if r["model"] in CASES:
            text += [*layer_table(r), ""]
    text += ["## By operator type", "", *op_table(rows), "", "## Instruction classes", ""]
    for r in rows:
        if r["model"] in CASES:
            text += [*class_table(r), ""]
    old = RESULTS.read_text() if RESULTS.is_file() else ""
    kept = old[old.index(KEEP):] if KEEP in old else KEEP + "\n"
    atomic_write_text(RESULTS, "\n".join(text) + "\n" + kept)


if __name__ == "__main__":
    main()
