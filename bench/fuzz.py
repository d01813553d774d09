"""Hardening figures: fuzz campaign, loader branch coverage, corpus timing, training-command determinism.

    .venv/bin/python bench/fuzz.py [--runs 100000] [--max-time 0] [--skip-fuzz] [--skip-coverage]
                                   [--skip-determinism]

1. every atheris harness (tests/fuzz) for ``--runs`` executions: executions, time, coverage edges
   (libFuzzer's count at start and end: what fuzzing added beyond the seed corpus);
2. branch coverage (coverage.py, ``--branch``) of the loader modules when the malformed corpus and the
   corpora the fuzzers grew in build/fuzz/ are replayed through the harness targets;
3. every corpus file through ``tinyopt validate`` in its own process: the slowest wall time and the
   largest peak RSS per class (each process's own ru_maxrss), the peer being the valid files (a valid
   checkpoint pays for importing torch, which no malformed file may need);
4. ``tinyopt demo --quick`` and ``tinyopt tune --seed 0`` twice each: identical artifact bytes?
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fuzz.harness import BUILD, CORPUS, TARGETS  # noqa: E402

LOADERS = ["src/tinyopt/graph/tflite_import.py", "src/tinyopt/graph/_tflite_reader.py",
           "src/tinyopt/graph/onnx_import.py", "src/tinyopt/graph/spec.py", "src/tinyopt/_yaml.py",
           "src/tinyopt/data/wav.py", "src/tinyopt/data/csv.py", "src/tinyopt/data/idx.py",
           "src/tinyopt/compress/container.py", "src/tinyopt/cli/validate.py", "src/tinyopt/graph/load.py"]
REPLAY = r'''
import sys, warnings
from pathlib import Path
warnings.simplefilter("ignore")
sys.path.insert(0, sys.argv[1])
from tests.fuzz.harness import TARGETS, target
from tinyopt.errors import TinyoptError
n = 0
for name in TARGETS:
    if name == "pipeline":
        continue
    fn = target(name)
    for folder in sys.argv[2:]:
        for p in sorted(Path(folder, name).glob("*")) if Path(folder, name).is_dir() else []:
            try:
                fn(p.read_bytes())
            except TinyoptError:
                pass
            except Exception:
                pass  # counted by the fuzz run itself; here only coverage matters
            n += 1
# the file-level doors and folder loaders the byte targets do not reach
import tempfile
import numpy as np
from tinyopt.cli.validate import validate_file
from tinyopt.compress.container import load_compressed, pack, save_compressed, unpack
from tinyopt.data.idx import load_mnist
from tinyopt.data.wav import load_wav_folder
from tinyopt.graph.tflite_import import load_tflite
from tinyopt.graph.load import load_model
with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    calls = [lambda: load_model(tmp / "missing.tflite"), lambda: load_model(tmp),
             lambda: load_model(tmp / "m.bin"), lambda: validate_file(tmp / "missing"),
             lambda: validate_file(tmp)]
    (tmp / "m.bin").write_bytes(b"x")
    (tmp / "empty.tflite").write_bytes(b"")
    calls.append(lambda: load_model(tmp / "empty.tflite"))
    for folder in sys.argv[2:]:
        for p in sorted(Path(folder, "tflite").glob("*"))[:40] if Path(folder, "tflite").is_dir() else []:
            q = tmp / "t.tflite"
            q.write_bytes(p.read_bytes())
            calls.append(lambda q=q: load_tflite(q))
        for p in sorted(Path(folder, "container").glob("*")) if Path(folder, "container").is_dir() else []:
            def round_trip(p=p):
                layers = unpack(p.read_bytes())
                save_compressed(tmp / "c.topz", layers)
                back = load_compressed(tmp / "c.topz")
                assert all(np.array_equal(a, b) for a, b in zip(layers.values(), back.values()))
            calls.append(round_trip)
        for kind, magic in (("container", b"TOPZ"), ("idx", b"\x00\x00"), ("idx", b"\x1f\x8b"),
                            ("x", b"zzzz")):
            for p in sorted(Path(folder, kind).glob("*"))[:3] if Path(folder, kind).is_dir() else []:
                q = tmp / f"sniff-{p.name}.bin"
                q.write_bytes(p.read_bytes())
                calls.append(lambda q=q: validate_file(q))
        wavs = sorted(Path(folder, "wav").glob("*_0.wav")) if Path(folder, "wav").is_dir() else []
        if wavs:
            d = tmp / "wavs"
            d.mkdir(exist_ok=True)
            for p in wavs:
                (d / p.name).write_bytes(p.read_bytes())
            calls += [lambda d=d: load_wav_folder(d), lambda d=d: load_wav_folder(d, duration=0.5),
                      lambda: load_wav_folder(tmp / "nowhere"), lambda: load_wav_folder(tmp / "m.bin")]
    files = Path(sys.argv[1], "tests", "corpus", "files")
    calls += [lambda p=p: validate_file(p) for p in sorted(files.glob("*/*.npz"))]
    from typer.testing import CliRunner
    from tinyopt.cli import app
    picks = [*sorted(files.glob("valid/*"))[:3], *sorted(files.glob("npy/*.npz"))[:2],
             *sorted(files.glob("yaml/*"))[:3], *sorted(files.glob("onnx/*"))[:2], tmp / "missing"]
    calls += [lambda p=p: CliRunner().invoke(app, ["validate", str(p)]) for p in picks]
    mnist = Path(sys.argv[1]).parent / "shared" / "datasets" / "mnist-t10k"
    calls += [lambda: load_mnist(mnist), lambda: load_mnist(tmp)]
    for c in calls:
        try:
            c()
        except TinyoptError:
            pass
        except Exception:
            pass
        n += 1
print(n)
'''


def extra_seeds(by_target: Path) -> None:
    """Valid files with many operators and layer kinds, made or found at bench time (not committed):
    the MLPerf models, zoo models exported to ONNX, the example YAML files, a few FSDD recordings, MNIST
    labels, and containers written by ``save_compressed`` (raw and weight-shared records)."""
    import io

    import numpy as np
    import torch
    from tests.fuzz.onnx_seeds import onnx_seeds

    for k, data in enumerate(onnx_seeds()):
        (by_target / "onnx" / f"op-{k:03d}.onnx").write_bytes(data)
    shared = ROOT.parent / "shared"
    for p in sorted((shared / "models" / "mlperf-tiny").glob("*.tflite")):
        for t in ("tflite", "pipeline"):
            (by_target / t / p.name).write_bytes(p.read_bytes())
    from tinyopt.zoo import build, input_shape

    for name in ("lenet5", "dscnn", "resnet8", "cnn1d", "mobilenet_v1", "mlp", "digits_cnn"):
        torch.manual_seed(0)
        buf = io.BytesIO()
        try:
            torch.onnx.export(build(name).eval(), torch.zeros(1, *input_shape(name)), buf, dynamo=False)
        except Exception as e:  # an exporter limitation only narrows the seed set
            print(f"(onnx export of {name} skipped: {type(e).__name__})")
            continue
        (by_target / "onnx" / f"zoo-{name}.onnx").write_bytes(buf.getvalue())
    for p in sorted(ROOT.glob("examples/**/*.yaml")):
        (by_target / "yaml" / f"example-{p.parent.name}-{p.name}").write_bytes(p.read_bytes())
    for p in sorted((shared / "datasets" / "fsdd" / "recordings").glob("*_0.wav"))[:5]:
        (by_target / "wav" / p.name).write_bytes(p.read_bytes())
    for p in sorted((shared / "datasets" / "mnist-t10k").glob("*labels*")):
        (by_target / "idx" / p.name).write_bytes(p.read_bytes())
    from tinyopt.compress.coding.tensor import encode_shared
    from tinyopt.compress.container import pack

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=(8, 8))
    for k, (huff, gap) in enumerate(((True, 0), (False, 0), (True, 4), (False, 3))):
        cb = np.array([0.0, 0.5, -0.25, 1.0], np.float32)
        layers = {"shared": encode_shared(cb, labels, 2, gap, huffman=huff), "raw": rng.normal(size=(3, 2))
                  .astype(np.float32), "i8": np.arange(6, dtype=np.int8), "f16": np.ones(2, np.float16)}
        (by_target / "container" / f"packed-{k}.topz").write_bytes(pack(layers)[0])


def coverage_of_loaders() -> tuple[str, float, int]:
    """Branch coverage of LOADERS from corpus + fuzz corpora, via ``coverage run --branch``."""
    with tempfile.TemporaryDirectory() as tmp:
        by_target = Path(tmp) / "seeds"
        for name, (suffix, folders) in TARGETS.items():  # corpus files laid out per target like build/fuzz
            (by_target / name).mkdir(parents=True)
            for f in [*folders, "valid"]:
                for p in (CORPUS / f).iterdir():
                    if p.name.endswith(suffix) and p.is_file():
                        (by_target / name / f"{f}-{p.name}").write_bytes(p.read_bytes())
        extra_seeds(by_target)
        script = Path(tmp) / "replay.py"
        script.write_text(REPLAY)
        data = Path(tmp) / ".coverage"
        env = {**os.environ, "COVERAGE_FILE": str(data), "PYTHONWARNINGS": "ignore"}
        src = ",".join(str(ROOT / p) for p in LOADERS)
        r = subprocess.run([sys.executable, "-m", "coverage", "run", "--branch", f"--include={src}",
                            str(script), str(ROOT), str(by_target), str(BUILD)], env=env, capture_output=True,
                           text=True, cwd=ROOT)
        replayed = int(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else 0
        rep = subprocess.run([sys.executable, "-m", "coverage", "report", "--format=markdown",
                              "--show-missing"],
                             env=env, capture_output=True, text=True, cwd=ROOT)
        js = subprocess.run([sys.executable, "-m", "coverage", "json", "-o", str(Path(tmp) / "c.json")],
                            env=env, capture_output=True, text=True, cwd=ROOT)
        total = json.loads((Path(tmp) / "c.json").read_text())["totals"] if js.returncode == 0 else {}
        pct = 100.0 * (total.get("covered_branches", 0) / max(total.get("num_branches", 1), 1))
        table = "\n".join(line for line in rep.stdout.splitlines())
        return table, pct, replayed


def corpus_timing() -> list[tuple[str, int, float, float]]:
    """Every corpus file through ``tinyopt validate`` in its own process: per class, the file count, the
    slowest wall time and the largest peak RSS (that process's own ru_maxrss, from wait4)."""
    manifest = json.loads((CORPUS.parent / "manifest.json").read_text())
    exe = str(Path(sys.executable).with_name("tinyopt"))
    rows = []
    for cls in ("valid", "tflite", "onnx", "pt", "yaml", "wav", "csv", "idx", "npy", "container"):
        files = sorted(r for r, e in manifest.items() if e["class"] == cls and not e.get("known_bug"))
        slowest, largest = 0.0, 0.0
        for rel in files:
            t0 = time.perf_counter()
            proc = subprocess.Popen([exe, "validate", str(CORPUS / rel)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, cwd=tempfile.gettempdir())
            _, _, usage = os.wait4(proc.pid, 0)
            proc.returncode = 0  # reaped by wait4
            slowest = max(slowest, time.perf_counter() - t0)
            largest = max(largest, usage.ru_maxrss / 1024)
        rows.append((cls, len(files), slowest, largest))
    return rows


def determinism() -> list[tuple[str, bool, int]]:
    exe = str(Path(sys.executable).with_name("tinyopt"))
    project = ("name: t\ndata: {source: digits, val: 0.15, test: 0.2}\ntarget: {device: nano33ble}\nsearch:\n"
               "  width: {type: int, low: 2, high: 8}\n  depth: {type: int, low: 1, high: 2}\n")
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "p.yaml").write_text(project)
        for what, args in (("demo --quick", ["demo", "--quick", "--no-cache", "--out"]),
                           ("tune --seed 0 --trials 2",
                            ["tune", str(tmp / "p.yaml"), "--trials", "2", "--epochs",
                             "1", "--seed", "0", "--out"])):
            trees = []
            for run in ("a", "b"):
                d = tmp / f"{what.split()[0]}-{run}"
                subprocess.run([exe, *args, str(d)], capture_output=True, cwd=tmp, timeout=1800)
                trees.append({str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
                              for p in sorted(d.rglob("*")) if p.is_file()})
            same = trees[0] == trees[1] and bool(trees[0])
            diff = sorted(k for k in set(trees[0]) | set(trees[1]) if trees[0].get(k) != trees[1].get(k))
            out.append((what, same, len(trees[0]), diff[:5]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--max-time", type=int, default=0)
    ap.add_argument("--skip-fuzz", action="store_true")
    ap.add_argument("--skip-determinism", action="store_true")
    ap.add_argument("--skip-coverage", action="store_true")
    a = ap.parse_args()
    if not a.skip_fuzz:
        from tests.fuzz.run_all import main as fuzz_main

        fuzz_main(["--runs", str(a.runs), "--max-time", str(a.max_time)])
    if not a.skip_coverage:
        table, pct, replayed = coverage_of_loaders()
        print(f"\nbranch coverage of the loader modules (corpus + fuzz corpora, {replayed} inputs replayed): "
              f"{pct:.1f} %\n{table}")
    print("\n| corpus class | files (one process each) | slowest validate process (s) | largest peak RSS "
          "(MB) |\n|---|---:|---:|---:|")
    for cls, n, t, rss in corpus_timing():
        print(f"| {cls} | {n} | {t:.2f} | {rss:.0f} |")
    if not a.skip_determinism:
        print("\n| command (run twice) | identical bytes | files | differing |\n|---|---|---:|---|")
        for what, same, n, diff in determinism():
            print(f"| {what} | {'yes' if same else 'NO'} | {n} | {', '.join(diff) or '-'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
