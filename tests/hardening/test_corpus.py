"""Every malformed file in ``tests/corpus`` through the CLI: exit 2, one line that starts with the path
and names the fault (and its location where the fault has one), no traceback, nothing written.

The expectations come from ``tests/corpus/manifest.json``, written by ``tests/corpus/generate.py`` from
the fault it injected, not from the loaders' output. Per-file time (< 2 s) and process RSS are measured
by ``bench/fuzz.py``; here we check behaviour and, for the pure-Python loaders, the tracemalloc peak
(< 512 MB; tracing torch/onnx/flatbuffers loads would cost the suite too much time).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from tinyopt.cli import main

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text())
BAD = {rel: e for rel, e in MANIFEST.items() if e["exit"] == 2}
VALID = {rel: e for rel, e in MANIFEST.items() if e["exit"] == 0}
CLASSES = ("tflite", "onnx", "pt", "yaml", "wav", "csv", "idx", "npy", "container")


def _digest() -> dict[str, str]:
    return {str(p.relative_to(CORPUS)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(CORPUS.rglob("*")) if p.is_file() and not p.is_symlink()}


def _cli(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


def test_corpus_size_and_variety():
    per_class = {c: sum(e["class"] == c for e in BAD.values()) for c in CLASSES}
    print(f"\ncorpus: {len(BAD)} malformed files {per_class}, {len(VALID)} valid seeds")
    assert len(BAD) >= 250
    assert min(per_class.values()) >= 10, per_class
    on_disk = {str(p.relative_to(CORPUS / "files")) for p in (CORPUS / "files").rglob("*")
               if p.is_file() and not p.name.startswith("onnx-")}
    assert on_disk == set(MANIFEST), "every corpus file is in the manifest and vice versa"


LOCATION_MARKS = ("operator", "node", "tensor", "initializer", "record", "line", "layer", "step", "buffer",
                  "subgraph", "chunk", "header", "byte", "column", "x_", "y_", "recipe", "section",
                  "dimension")
TRACED = ("wav", "csv", "idx", "npy", "container", "yaml")  # pure-Python loaders: tracemalloc is cheap there


def test_every_corpus_file_is_handled(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything a loader wrote by mistake would land here
    before = _digest()
    handled, known, peak_max, no_location = 0, [], 0, []
    for rel in sorted(VALID):  # import every loader's libraries first
        _cli(["validate", str(CORPUS / "files" / rel)])
    for rel, exp in sorted(MANIFEST.items()):
        path = str(CORPUS / "files" / rel)
        traced = exp["class"] in TRACED
        if traced:
            tracemalloc.start()
        try:
            code, out, err = _cli(["validate", path])
        except Exception as e:  # a raw exception is the failure we report
            if exp.get("known_bug"):
                known.append(f"{rel}: {type(e).__name__}")
                continue
            raise AssertionError(f"{rel}: raw {type(e).__name__}: {e}") from None
        finally:
            if traced:
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
                peak_max = max(peak_max, peak)
                assert peak < 512 << 20, (rel, peak)
        if exp["exit"] == 0:
            assert code == 0 and out.startswith(f"{path}: ok"), (rel, err)
            continue
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and not out, (rel, code, err)
        line = lines[0]
        assert line.startswith(f"{path}: "), (rel, line)
        assert "Traceback" not in line and " Fix: " in line, line
        if exp["fragment"]:
            assert exp["fragment"].lower() in line.lower(), (rel, exp["fragment"], line)
        if exp["where"]:
            assert exp["where"] in line, (rel, exp["where"], line)
        if exp["class"] in ("tflite", "onnx", "yaml", "csv", "container") and not any(
                m in line.lower() for m in LOCATION_MARKS):
            no_location.append(line)
        handled += 1
    print(f"\ncorpus: {handled} of {len(BAD)} malformed files handled (exit 2, one line), "
          f"{len(known)} known bugs elsewhere {known}, peak traced memory {peak_max / 2**20:.1f} MB, "
          f"{len(no_location)} whole-file faults without an inner location")
    assert handled + len(known) == len(BAD)
    assert list(tmp_path.iterdir()) == [] and _digest() == before
    # faults inside a structure name it; whole-file ones (empty, truncated before the root table,
    # random bytes) have no inner location to name
    assert len(no_location) <= len(BAD) // 4, no_location[:10]


def test_real_commands_on_the_corpus(tmp_path, monkeypatch):
    """`analyze` on malformed models, `infer` on every malformed .npy, `deploy` on the files that once
    crashed the C generator: exit 2, one line, nothing written."""
    monkeypatch.chdir(tmp_path)
    tiny = str(CORPUS / "files" / next(r for r in VALID if r.endswith("tiny-int8-model.tflite")))
    n = 0
    for rel, exp in sorted(BAD.items()):
        path = str(CORPUS / "files" / rel)
        if exp.get("known_bug"):
            continue
        if "graph-output" in rel:  # regression: these crashed the C generator (KeyError in the arena plan)
            args = ["deploy", path, "--out", str(tmp_path / "lib")]
        elif exp["fault"].endswith("unsupported operator"):
            # analyze keeps an unknown operator as an opaque layer and counts the rest; deploy refuses it
            args = ["deploy", path, "--out", str(tmp_path / "lib")]
        elif (rel.endswith(".tflite") and int(rel.split("/")[1][:3]) % 3 == 0) or rel.endswith(".onnx") or (
                rel.endswith(".yaml") and "spec" in rel):  # a third of the TFLite files: suite budget
            args = ["analyze", path, "--json"]
        elif rel.endswith(".npy"):
            args = ["infer", tiny, "--input", path, "--output", str(tmp_path / "out.npy")]
        else:
            continue
        code, out, err = _cli(args)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, (rel, args[0], err)
        assert path in lines[0] and "Traceback" not in err, (rel, lines[0])
        n += 1
    print(f"\nreal commands: {n} malformed files through analyze/infer")
    assert n >= 70 and list(tmp_path.iterdir()) == []
    good = tmp_path / "x.npy"
    np.save(good, np.zeros((2, 8, 8, 1), np.int8))
    code, _, err = _cli(["infer", tiny, "--input", str(good), "--output", str(tmp_path / "y.npy")])
    assert code == 0, err
    assert np.load(tmp_path / "y.npy").shape == (2, 3)  # the tiny model's 3-class softmax per row


@pytest.mark.parametrize("cls", ["tflite", "yaml", "pt"])
def test_validate_as_a_process(cls, tmp_path):
    """A real process: exit status 2 and a single stderr line, no Python traceback."""
    rel = next(r for r, e in sorted(BAD.items()) if e["class"] == cls and e["fragment"])
    path = str(CORPUS / "files" / rel)
    ok = str(CORPUS / "files" / next(iter(sorted(VALID))))
    exe = Path(sys.executable).with_name("tinyopt")
    r = subprocess.run([str(exe), "validate", ok, path, ok], capture_output=True, text=True, timeout=120,
                       cwd=tmp_path, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert r.returncode == 2, r
    # stops at the bad one
    assert r.stdout == f"{ok}: ok ({r.stdout.split('(', 1)[1]}" and r.stdout.count("\n") == 1
    assert r.stderr.count("\n") == 1 and r.stderr.startswith(f"{path}: "), r.stderr


_NO_TORCH_PROBE = """
import contextlib, io, sys
from tinyopt.cli import main
for path in sys.argv[1:]:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(["validate", path])
    if code != 2 or "torch" in sys.modules:
        print("after", path, "exit", code, "torch" in sys.modules)
        break
else:
    print("ok", len(sys.argv) - 1)
"""


def test_no_malformed_file_needs_torch_to_be_refused():
    """Importing torch costs seconds; every malformed file is refused before it (the per-file process
    time bench/fuzz.py measures stays well under 2 s): one process validates them all and stops at the
    first one after which torch is loaded."""
    paths = [str(CORPUS / "files" / rel) for rel, e in sorted(BAD.items()) if not e.get("known_bug")]
    r = subprocess.run([sys.executable, "-c", _NO_TORCH_PROBE, *paths], capture_output=True, text=True,
                       timeout=600, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert r.stdout.strip() == f"ok {len(paths)}", (r.stdout, r.stderr[-2000:])
