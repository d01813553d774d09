"""The generated C under AddressSanitizer and UndefinedBehaviorSanitizer, on random inputs.

All models go into ONE executable (each library with its own symbol prefix) and ONE process reads
``count, inputs...`` per model from stdin, so thousands of inferences cost a single build and start.
Inputs and outputs live in exact-size static buffers (ASan puts red zones around globals), and every
other inference uses the arena's own input slot instead. Any sanitizer report aborts the process
(``-fno-sanitize-recover=all``), so a clean exit with the right number of output bytes is "zero
reports". The outputs are also compared with tinyopt's numpy runtime (bit-exact with TFLM).

Models: the MLPerf Tiny int8 KWS and ResNet-8 (from ../shared), a converted zoo model, the tiny int8
corpus model, and small graphs the load → convert → generate pipeline accepted from seeded mutations
(the fuzz harness's mutator and random field edits of the tiny models).
"""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import KWS_INT8, RESNET_INT8
from tinyopt.export.c import generate_sources
from tinyopt.export.c.board import WARN_FLAGS
from tinyopt.graph import load_model
from tinyopt.graph.tflite_import import tflite_bytes_to_graph
from tinyopt.runtime import Interpreter

ROOT = Path(__file__).resolve().parents[2]
VALID = ROOT / "tests" / "corpus" / "files" / "valid"
SAN = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g1", "-O0"]


def _fuzz_accepted(limit: int = 2) -> list[tuple[str, object]]:
    """Structurally distinct graphs from mutated tiny models that the pipeline turns into C."""
    sys.path.insert(0, str(ROOT / "tests" / "graph"))
    sys.path.insert(0, str(ROOT))
    import tflite_mutations as tm
    from tests.fuzz.harness import mutate

    from tinyopt.convert.convert import convert_graph
    from tinyopt.errors import TinyoptError

    seeds = [(VALID / "000-tiny-int8-model.tflite").read_bytes(),
             (VALID / "001-tiny-float-model.tflite").read_bytes()]
    rng = np.random.default_rng(7)
    seen = {_shape_key(tflite_bytes_to_graph(s)) for s in seeds}
    out = []
    candidates = [b for s in seeds for _, b in tm.random_edits(s, 150, seed=11)]
    candidates += [mutate(seeds[k % 2], rng) for k in range(300)]
    for data in candidates:
        try:
            g = tflite_bytes_to_graph(data, "<fuzz>")
            if g.tensors[g.inputs[0]].dtype != "int8":
                shape = g.tensors[g.inputs[0]].shape
                g = convert_graph(g, np.random.default_rng(0).normal(size=(4, *shape[1:])).astype(np.float32))
            generate_sources(g, prefix="probe")
        except TinyoptError:
            continue
        key = _shape_key(g)
        if key not in seen:
            seen.add(key)
            out.append((f"fuzz {hashlib.sha1(data).hexdigest()[:8]}", g))
            if len(out) >= limit:
                break
    return out


def _shape_key(g) -> tuple:
    return tuple((n.op, tuple(tuple(g.tensors[t].shape) for t in n.inputs + n.outputs if t),
                  tuple(sorted((k, str(v)) for k, v in n.attrs.items()))) for n in g.nodes)


def _zoo_int8():
    import torch

    from tinyopt.convert.convert import convert_torch
    from tinyopt.zoo import build, input_shape

    torch.manual_seed(0)
    net = build("cnn1d").eval()
    shape = input_shape("cnn1d")
    calib = np.random.default_rng(0).normal(size=(8, *shape)).astype(np.float32)
    return convert_torch(net, calib, shape)


def _main_c(libs: list) -> str:
    lines = ["#include <stdint.h>", "#include <stdio.h>"]
    lines += [f'#include "{lib.prefix}_model.h"' for lib in libs]
    for lib in libs:
        lines += [f"static int8_t {lib.prefix}_in[{lib.input_bytes}];",
                  f"static int8_t {lib.prefix}_out[{lib.output_bytes}];"]
    lines += ["int main(void)", "{", "    uint32_t n, k;"]
    for lib in libs:
        p, P = lib.prefix, lib.prefix.upper()
        lines += [
            "    if (fread(&n, 4, 1, stdin) != 1) return 2;",
            "    for (k = 0; k < n; k++) {",
            f"        int8_t *in = (k & 1) ? {p}_input_buffer() : {p}_in;",
            f"        if (fread(in, 1, {P}_INPUT_BYTES, stdin) != {P}_INPUT_BYTES) return 3;",
            f"        if ({p}_invoke(in, {p}_out) != 0) return 4;",
            f"        if (fwrite({p}_out, 1, {P}_OUTPUT_BYTES, stdout) != {P}_OUTPUT_BYTES) return 5;",
            "    }",
        ]
    return "\n".join([*lines, "    return 0;", "}", ""])


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
def test_generated_c_is_clean_under_asan_and_ubsan(tmp_path):
    models = [("tiny corpus model", load_model(VALID / "000-tiny-int8-model.tflite"), 500),
              ("zoo cnn1d int8", _zoo_int8(), 200)]
    models += [(name, g, 150) for name, g in _fuzz_accepted()]
    for path, n in ((KWS_INT8, 150), (RESNET_INT8, 60)):
        if path.exists():
            models.append((path.name, load_model(path), n))
    libs, streams, expected = [], [], []
    rng = np.random.default_rng(0)
    for i, (name, g, n) in enumerate(models):
        lib = generate_sources(g, prefix=f"m{i}")
        for fname, text in lib.files.items():
            if not fname.startswith("examples/"):
                (tmp_path / fname).write_text(text)
        xs = rng.integers(-128, 128, size=(n, lib.input_bytes), dtype=np.int8)
        streams.append(struct.pack("<I", n) + xs.tobytes())
        shape = g.tensors[g.inputs[0]].shape
        ref = Interpreter(g).run(xs[:3].reshape(3, *shape[1:]))[0].reshape(3, -1)
        libs.append(lib)
        expected.append((name, n, lib.output_bytes, ref))
    (tmp_path / "main.c").write_text(_main_c(libs))
    exe = tmp_path / "san"
    cmd = ["gcc", *WARN_FLAGS, *SAN, "-I", str(tmp_path), *sorted(str(p) for p in tmp_path.glob("*.c")), "-o",
           str(exe)]
    t0 = time.perf_counter()
    build = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    t1 = time.perf_counter()
    assert build.returncode == 0, build.stderr[-3000:]
    run = subprocess.run([str(exe)], input=b"".join(streams), capture_output=True, timeout=600,
                         env={"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0",
                              "UBSAN_OPTIONS": "print_stacktrace=1"})
    t2 = time.perf_counter()
    err = run.stderr.decode(errors="replace")
    assert run.returncode == 0 and "runtime error" not in err and "Sanitizer" not in err, err[-3000:]
    total = sum(n for _, n, _, _ in expected)
    assert len(run.stdout) == sum(n * ob for _, n, ob, _ in expected)
    pos = 0
    for name, n, ob, ref in expected:
        got = np.frombuffer(run.stdout[pos:pos + n * ob], np.int8).reshape(n, ob)
        np.testing.assert_array_equal(got[:3], ref, err_msg=name)
        pos += n * ob
    print(f"\nsanitizers: {total} inferences over {len(models)} models "
          f"({', '.join(m[0] for m in models)}), zero ASan/UBSan reports; build {t1 - t0:.1f} "
          f"s, run {t2 - t1:.1f} s")
    assert total >= 1000
