"""The three example projects end to end, from a cold cache: wall time per stage, accuracy of every
variant, and the int8 models against their float peer (the float32 model the same run trained) and
against TFLM (bit-exactness of the int8 runtime on the whole test split).

    .venv/bin/python bench/pipeline.py                     # digits, mnist, spoken-digits; writes the .md
    .venv/bin/python bench/pipeline.py digits --no-write

Acceptance targets checked in the table: digits int8 within 1 pp of float; MNIST float >= 98.0 % and
int8 >= 97.5 %; spoken digits float >= 95 % and int8 within 1 pp; every deployed model fits the Nano 33
BLE Sense (with the feature buffers kept free). The machine is shared: wall times include the load.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECTS = {"digits": None, "mnist": ROOT / "examples" / "mnist.yaml",
            "spoken-digits": ROOT / "examples" / "spoken-digits.yaml"}


def targets(r: dict) -> list[tuple[str, bool]]:
    name, acc = r["name"], {v["variant"]: v["accuracy"] for v in r["variants"]}
    f, q = acc.get("float"), acc.get("int8", acc.get("pruned+int8"))
    out = [("int8 within 1 pp of float", abs(q - f) <= 0.01)]
    if name == "mnist":
        out = [("float >= 98.0 %", f >= 0.98), ("int8 >= 97.5 %", q >= 0.975)]
    if name == "spoken-digits":
        out.insert(0, ("float >= 95 %", f >= 0.95))
        deployed = r["variants"][-1]
        need = deployed["ram_bytes"] + r["feature_ram"]
        out.append((f"{deployed['variant']} arena {deployed['ram_bytes']:,} B + feature buffers "
                    f"{r['feature_ram']:,} B = {need:,} B of {r['sram']:,} B SRAM, flash "
                    f"{deployed['flash_bytes']:,} B",
                    bool(deployed["fits"]) and need <= r["sram"]))
    return out


def run(name: str) -> dict:
    from tinyopt.pipeline.runner import get_target, run_project

    os.chdir(ROOT)  # the examples name ../shared relative to the repository root
    if PROJECTS[name] is None:
        from tinyopt.cli.demo import demo_config

        cfg = demo_config()
    else:
        from tinyopt.pipeline.config import load_project

        cfg = load_project(PROJECTS[name])
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        res = run_project(cfg, out, use_cache=False)
        wall = time.perf_counter() - t0
    return {"name": name, "wall": wall, "timings": res.timings, "variants": res.variants,
            "verify": res.verify, "deploy": res.deploy, "cpu": os.cpu_count(),
            "feature_ram": res.feature_ram_bytes, "sram": get_target(cfg["target"]).sram_bytes}


def table(results: list[dict]) -> str:
    lines = ["| project | variant | test accuracy | Δ vs float (pp) | params | flash B | flash vs float | "
             "RAM B | RAM vs float | latency ms | fits | TFLM mismatches |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |"]
    for r in results:
        base = r["variants"][0]
        for v in r["variants"]:
            ver = r["verify"].get(v["variant"])
            tflm = "" if ver is None else f"{ver['mismatches']} / {ver['examples']}"
            lines.append(
                f"| {r['name']} | {v['variant']} | {100 * v['accuracy']:.2f} % | "
                f"{100 * (v['accuracy'] - base['accuracy']):+.2f} | {v['params']:,} | {v['flash_bytes']:,} | "
                f"{v['flash_bytes'] / base['flash_bytes']:.2f}× | {v['ram_bytes']:,} | "
                f"{v['ram_bytes'] / base['ram_bytes']:.2f}× | {v['latency_ms']} | "
                f"{'yes' if v['fits'] else 'no'} | {tflm} |")
    lines += ["", "| project | wall s | " + " | ".join(STAGES) + " | targets |",
              "| --- | ---: | " + " | ".join("---:" for _ in STAGES) + " | --- |"]
    for r in results:
        checks = ", ".join(f"{t}: {'PASS' if ok else 'FAIL'}" for t, ok in targets(r))
        lines.append(f"| {r['name']} | {r['wall']:.1f} | "
                     + " | ".join(f"{r['timings'].get(s, 0):.1f}" for s in STAGES) + f" | {checks} |")
    return "\n".join(lines)


STAGES = ("data", "features", "analysis", "train", "prune", "quantize", "evaluate", "verify", "deploy",
          "report")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("projects", nargs="*", choices=[*PROJECTS, []], help="default: all three")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    results = []
    for name in args.projects or list(PROJECTS):
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results.append(run(name))
    text = table(results)
    print(text)
    if not args.no_write:
        from tinyopt._io import atomic_write_text

        with os.popen("uptime") as f:
            load = f.read().strip()
        cmd = " ".join(["bench/pipeline.py", *(argv if argv is not None else sys.argv[1:])])
        atomic_write_text(ROOT / "bench" / "results" / "pipeline.md",
                          f"# Pipeline: the example projects end to end\n\n`.venv/bin/python {cmd}` "
                          f"(cold cache, {results[0]['cpu']} cores, shared machine; `uptime` after: "
                          f"{load})\n\nPeers: the float32 model of the same run (ratios), TFLM (int8 outputs "
                          "on the whole test split). Sizes and latency are `tinyopt analyze <artifact> "
                          "--device nano33ble`.\n\n"
                          + text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
