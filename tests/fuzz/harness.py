"""Fuzz targets: one per loader plus load → convert → generate C, each allowing only ``TinyoptError``.

A target takes the raw bytes of one file. Loaders that need a path get a file in a private temporary
folder (on /dev/shm when present), with the suffix ``tinyopt validate`` dispatches on, so the fuzzed code
is exactly the CLI's. Used three ways: by atheris (``python -m tests.fuzz.run_all``), by the CI smoke
test with a seeded byte mutator (``mutate``), and by the coverage replay in ``bench/fuzz.py``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "corpus" / "files"

# target name -> (file suffix, corpus folders whose files seed it)
TARGETS = {
    "tflite": (".tflite", ["tflite"]),
    "onnx": (".onnx", ["onnx"]),
    "pt": (".pt", ["pt"]),
    "yaml": (".yaml", ["yaml"]),
    "wav": (".wav", ["wav"]),
    "csv": (".csv", ["csv"]),
    "idx": ("-ubyte", ["idx"]),
    "npy": (".npy", ["npy"]),
    "container": (".topz", ["container"]),
    "pipeline": (".tflite", ["tflite"]),
}
BUILD = ROOT / "build" / "fuzz"
SLOW_S = 2.0
# Raw exceptions from code this work may not edit yet (owner mid-edit), tolerated so fuzzing goes on;
# each must be a corpus file with "known_bug" in the manifest and be listed in the report. None today.
KNOWN_BUGS: dict[str, tuple[type[BaseException], ...]] = {}
PIPELINE_MAX_ELEMENTS = 1 << 18  # keep one execution well under the 2 s budget
_DIR = tempfile.mkdtemp(prefix="tinyopt-fuzz-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
atexit.register(shutil.rmtree, _DIR, True)
# the data file the corpus's external-data ONNX faults point at, so the range checks are reachable
(Path(_DIR) / "onnx-data.bin").write_bytes((CORPUS / "onnx" / "onnx-data.bin").read_bytes())
ACCEPTED: list[bytes] = []  # pipeline inputs that produced a C library (for the sanitizer run)


def seeds(name: str) -> list[bytes]:
    """Valid files of the target's kind first, then its malformed corpus files."""
    suffix, folders = TARGETS[name]
    valid = sorted(p for p in (CORPUS / "valid").iterdir() if p.name.endswith(suffix))
    import json

    known = {k for k, v in json.loads((CORPUS.parent / "manifest.json").read_text()).items()
             if v.get("known_bug")}
    bad = sorted(p for f in folders for p in (CORPUS / f).iterdir()
                 if p.name.endswith(suffix) and f"{f}/{p.name}" not in known)
    out = [p.read_bytes() for p in valid + bad]
    if name == "onnx":  # one small graph per supported operator and error branch, built by script
        from tests.fuzz.onnx_seeds import onnx_seeds

        out += onnx_seeds()
    return out


def _as_file(data: bytes, suffix: str) -> str:
    path = os.path.join(_DIR, "input" + suffix)
    with open(path, "wb") as f:
        f.write(data)
    return path


def _pipeline(data: bytes) -> None:
    from tinyopt.convert.convert import convert_graph
    from tinyopt.export.c import generate_sources
    from tinyopt.graph.tflite_import import tflite_bytes_to_graph

    g = tflite_bytes_to_graph(data, "<fuzz>")
    shape = g.tensors[g.inputs[0]].shape
    if len(g.nodes) > 64 or sum(int(np.prod(t.shape)) for t in g.tensors.values()) > PIPELINE_MAX_ELEMENTS:
        return  # big graphs are valid but slow; the MLPerf models cover size
    if g.tensors[g.inputs[0]].dtype != "int8":
        calib = np.random.default_rng(0).normal(size=(4, *shape[1:])).astype(np.float32)
        g = convert_graph(g, calib)
    generate_sources(g)
    keep = os.environ.get("TINYOPT_FUZZ_ACCEPTED")
    if len(ACCEPTED) < 64:
        ACCEPTED.append(data)
        if keep:  # libFuzzer ends the process with exit(): save as we go
            import hashlib

            Path(keep).mkdir(parents=True, exist_ok=True)
            (Path(keep) / f"{hashlib.sha1(data).hexdigest()[:16]}.tflite").write_bytes(data)


def target(name: str):
    """The one-input function for ``name``: returns normally or raises ``TinyoptError``."""
    from tinyopt.cli.validate import validate_file

    suffix = TARGETS[name][0]
    if name == "pipeline":
        return _pipeline
    if name == "tflite":
        from tinyopt.graph.tflite_import import tflite_bytes_to_graph

        return lambda data: tflite_bytes_to_graph(data, "<fuzz>")
    if name == "container":
        from tinyopt.compress.container import unpack

        return lambda data: unpack(data, path="<fuzz>")
    return lambda data: validate_file(_as_file(data, suffix))


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """A seeded byte mutator for the CI smoke (atheris does its own): flips, runs, cuts, splices."""
    buf = bytearray(data)
    for _ in range(int(rng.integers(1, 4))):
        kind = int(rng.integers(0, 6))
        pos = int(rng.integers(0, max(len(buf), 1)))
        if kind == 0 and buf:
            buf[pos % len(buf)] = int(rng.integers(0, 256))
        elif kind == 1:
            buf[pos:pos + 4] = int(rng.choice([0, 1, 0x7F, 0xFF, 2**31 - 1, 2**32 - 1])).to_bytes(4, "little")
        elif kind == 2:
            del buf[pos:pos + int(rng.integers(1, 16))]
        elif kind == 3:
            buf[pos:pos] = rng.integers(0, 256, int(rng.integers(1, 16)), dtype=np.uint8).tobytes()
        elif kind == 4:
            buf = buf[:pos]
        else:
            buf[pos:pos + 1] = b"\n" if rng.random() < 0.5 else b","
    return bytes(buf)
