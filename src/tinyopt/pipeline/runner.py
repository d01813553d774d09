"""Run a project end to end: data → features → float training → analysis → optimisation → conversion →
verification → deployment → report, each stage cached under ``<out>/cache``.

The run is deterministic: every stage takes the project seed, torch uses one fixed thread count and
deterministic algorithms, and artifacts are written atomically.
"""

from __future__ import annotations

import importlib.util
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyopt._io import atomic_write_text
from tinyopt.pipeline import stages
from tinyopt.pipeline.cache import StageCache, fingerprint_path, stage_key


def _have(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


@dataclass
class RunResult:
    out: Path
    variants: list[dict] = field(default_factory=list)
    report: Path | None = None
    timings: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    cache_hits: list[str] = field(default_factory=list)


class _Progress:
    """A rich progress display, or nothing when quiet (tests)."""

    def __init__(self, console):
        self.console = console
        self.progress = None
        if console is not None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), console=console, transient=False)

    def __enter__(self):
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc):
        if self.progress:
            self.progress.stop()

    def task(self, description: str, total: int):
        if not self.progress:
            return lambda *a, **k: None
        tid = self.progress.add_task(description, total=total)
        return lambda advance=1: self.progress.update(tid, advance=advance)

    def log(self, text: str):
        if self.progress:
            self.progress.console.print(text)


def _torch_setup(seed: int):
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(1)  # the same reduction order on every machine: same bytes
    torch.use_deterministic_algorithms(True)


def run_project(cfg: dict, out: str | Path, console=None, use_cache: bool = True) -> RunResult:
    out = Path(out)
    seed = int(cfg["seed"])
    cache = StageCache(out / "cache", enabled=use_cache)
    res = RunResult(out=out)
    _torch_setup(seed)
    t0 = time.perf_counter()
    with _Progress(console) as prog:
        # -- data ---------------------------------------------------------------------------------
        dcfg = cfg["data"]
        finger = None
        if dcfg.get("path"):
            from tinyopt.pipeline.config import resolve_path

            finger = fingerprint_path(resolve_path(dcfg["path"], cfg.get("_file")))
        data_key = stage_key("data", {**dcfg, "seed": seed, "fingerprint": finger})

        def build_data(tmp: Path) -> dict:
            splits = stages.load_data(dcfg, cfg.get("_file"), seed)
            stages.save_splits(tmp, splits)
            return {"classes": splits.train.classes, "source": splits.train.source,
                    "balance": splits.balance_table(), "meta": splits.train.meta,
                    "sizes": {k: len(d) for k, d in splits.items()}}

        tick = prog.task("data", 1)
        data_dir, data_meta = cache.cached("data", data_key, build_data)
        tick()
        splits = stages.read_splits(data_dir, data_meta["classes"], data_meta["source"], data_meta["meta"])
        res.timings["data"] = time.perf_counter() - t0

        # -- features -----------------------------------------------------------------------------
        feat_key = stage_key("features", cfg["features"], [data_key])

        def build_features(tmp: Path) -> dict:
            fsplits, _ = stages.features(splits, cfg["features"])
            stages.save_splits(tmp, fsplits)
            return {"shape": list(fsplits.train.x.shape[1:])}

        tick = prog.task("features", 1)
        feat_dir, feat_meta = cache.cached("features", feat_key, build_features)
        tick()
        fs = stages.read_splits(feat_dir, data_meta["classes"], data_meta["source"], data_meta["meta"])
        res.timings["features"] = time.perf_counter() - t0 - sum(res.timings.values())

        # -- float training -----------------------------------------------------------------------
        from tinyopt.pipeline import model_stage

        train_key = stage_key("train", {"model": cfg["model"], "training": cfg["training"], "seed": seed},
                              [feat_key])
        tcfg = cfg["training"]
        tick = prog.task("train float model", int(tcfg["epochs"]))

        def build_train(tmp: Path) -> dict:
            return model_stage.train_float(cfg, fs, tmp, on_epoch=lambda e, row: tick())

        train_dir, train_meta = cache.cached("train", train_key, build_train)
        if "train" in cache.hits:
            tick(int(tcfg["epochs"]))
        model = model_stage.load_model(cfg, fs, train_dir / "model.pt")
        res.timings["train"] = time.perf_counter() - t0 - sum(res.timings.values())

        ev = model_stage.evaluate_torch(model, fs)
        variants = [{"variant": "float", "accuracy": ev["metrics"]["accuracy"],
                     "params": model_stage.torch_param_count(model)}]
        evals = {"float": ev}
        res.variants = variants
        res.cache_hits = list(cache.hits)

        # -- report -------------------------------------------------------------------------------
        from tinyopt.pipeline.report_stage import write_report

        report_path = out / "report.html"
        write_report(report_path, cfg, data_meta, fs, train_meta, variants, evals, {"float": model})
        res.report = report_path
        res.timings["report"] = time.perf_counter() - t0 - sum(res.timings.values())
        summary = {"name": cfg["name"], "variants": variants}
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=1, default=_jsonable))
    return res


def _jsonable(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
