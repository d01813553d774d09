"""Run a project end to end: data → features → float training → analysis gate → pruning → quantization
→ conversion → verification against TFLM → deployment → report, each stage cached under ``<out>/cache``.

Deterministic: every stage takes the project seed, torch runs one thread with deterministic algorithms,
and artifacts are written atomically. A model that cannot fit the target stops the run right after the
analysis with a ``BudgetError`` (exit 2), before any artifact is written.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyopt._io import atomic_dir, atomic_write_text
from tinyopt._json import plain_or_str
from tinyopt.errors import BudgetError
from tinyopt.pipeline import model_stage, stages, variants
from tinyopt.pipeline.cache import StageCache, fingerprint_path, stage_key
from tinyopt.pipeline.progress import Progress


@dataclass
class RunResult:
    out: Path
    variants: list[dict] = field(default_factory=list)
    report: Path | None = None
    timings: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    cache_hits: list[str] = field(default_factory=list)
    cache_misses: list[str] = field(default_factory=list)
    verify: dict = field(default_factory=dict)
    deploy: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    feature_ram_bytes: int = 0


@contextlib.contextmanager
def _torch_determinism(seed: int):
    """One thread and deterministic algorithms for the run (the same reduction order on every machine:
    the same bytes), restored afterwards so a library caller's settings survive."""
    import torch

    threads, strict = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(strict)


def get_target(tcfg: dict):
    from tinyopt.devices import custom_device, get_device

    dev = get_device(tcfg["device"])
    if tcfg.get("sram_kb") or tcfg.get("flash_kb"):
        dev = custom_device(dev, sram_kb=tcfg.get("sram_kb"), flash_kb=tcfg.get("flash_kb"))
    return dev


def feature_ram_bytes(cfg: dict, data_meta: dict, feat_shape) -> int:
    """RAM the application holds besides the model: the raw window (int16 audio, float sensor rows) and
    the feature matrix (float32) it computes before quantizing into the model's input."""
    if cfg["target"].get("feature_ram_bytes") is not None:
        return int(cfg["target"]["feature_ram_bytes"])
    if cfg["data"]["source"] not in ("wav", "csv"):
        return 0
    raw = data_meta["meta"].get("samples", 0) * 2 if cfg["data"]["source"] == "wav" else 0
    return int(raw + 4 * int(np.prod(feat_shape)))


def gate(a: dict, device, extra_ram: int, label: str) -> None:
    """Stop with the analysis verdict when the model (plus feature buffers) does not fit."""
    reasons = list(a.get("reasons") or [])
    ok = a.get("fits") is not False
    if extra_ram and device.sram_bytes:
        need = int(a["ram_bytes"]) + extra_ram
        if need > device.sram_bytes:
            ok = False
            reasons.append(f"RAM with {extra_ram:,} B of feature buffers needs {need:,} B > {device.sram_bytes:,} B")
    if not ok:
        raise BudgetError(f"{label} does not fit {device.name}: " + "; ".join(r for r in reasons if "over" in r
                                                                               or "feature" in r),
                          where="analysis", fix="pick a smaller model (model.zoo/args), add optimize.prune / "
                          "optimize.quantize, or choose a larger target.device")


def run_project(cfg: dict, out: str | Path, console=None, use_cache: bool = True, report: bool = True) -> RunResult:
    """Run every stage of ``cfg`` into ``out``; ``report=False`` skips the HTML report (tests)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        from tinyopt.errors import ConfigError

        raise ConfigError("the output path exists and is not a folder", path=out,
                          fix="give --out a folder (it is created when missing)")
    seed = int(cfg["seed"])
    cache = StageCache(out / "cache", enabled=use_cache)
    res = RunResult(out=out)
    clock = [time.perf_counter()]

    def lap(name):
        now = time.perf_counter()
        res.timings[name] = res.timings.get(name, 0.0) + now - clock[0]
        clock[0] = now

    device = get_target(cfg["target"])
    opt = cfg["optimize"]
    with Progress(console) as prog, contextlib.ExitStack() as stack:
        # -- data and features -------------------------------------------------------------------
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

        with prog.step("load data"):
            data_dir, data_meta = cache.cached("data", data_key, build_data)
        lap("data")
        feat_key = stage_key("features", cfg["features"], [data_key])

        def build_features(tmp: Path) -> dict:
            splits = stages.read_splits(data_dir, data_meta["classes"], data_meta["source"], data_meta["meta"])
            fsplits, _ = stages.features(splits, cfg["features"])
            stages.save_splits(tmp, fsplits)
            return {"shape": list(fsplits.train.x.shape[1:])}

        with prog.step(f"features ({cfg['features']['block']})"):
            feat_dir, feat_meta = cache.cached("features", feat_key, build_features)
        fs = stages.read_splits(feat_dir, data_meta["classes"], data_meta["source"], data_meta["meta"])
        res.data = {**data_meta, "feature_shape": feat_meta["shape"]}
        lap("features")

        # -- analysis gate on the architecture, before any training ------------------------------
        # torch only after the data stages: bad data fails fast, without importing it
        stack.enter_context(_torch_determinism(seed))
        extra_ram = res.feature_ram_bytes = feature_ram_bytes(cfg, data_meta, feat_meta["shape"])
        deploy_dtype = "int8" if opt["quantize"] else "float32"
        with prog.step("analyze architecture"):
            from tinyopt.analysis import analyze

            pre = analyze(variants.float_graph(model_stage.build_model(cfg, fs), fs, cfg["name"]), device,
                          dtype=deploy_dtype).to_dict()
        if not opt["prune"]:
            gate(pre, device, extra_ram, f"{cfg['model']['zoo']} ({deploy_dtype})")
        lap("analysis")

        # -- float training ----------------------------------------------------------------------
        tcfg = cfg["training"]
        train_key = stage_key("train", {"model": cfg["model"], "training": tcfg, "seed": seed}, [feat_key])
        with prog.bar("train float model", int(tcfg["epochs"])) as tick:
            train_dir, train_meta = cache.cached(
                "train", train_key, lambda tmp: model_stage.train_float(cfg, fs, tmp, on_epoch=lambda e, r: tick()))
        model = model_stage.load_model(cfg, fs, train_dir / "model.pt")
        torch_models = {"float": model}
        histories = {"float": train_meta["history"]}
        lap("train")

        # -- structured pruning + fine-tuning ----------------------------------------------------
        prune_key = None
        if opt["prune"]:
            import torch

            pcfg = opt["prune"]
            prune_key = stage_key("prune", pcfg, [train_key])

            def build_prune(tmp: Path) -> dict:
                pruned, hist = variants.prune(model, fs, pcfg, seed, on_epoch=lambda e, r: tick())
                from tinyopt.compress.checkpoint import save_state_dict

                save_state_dict(tmp / "model.pt", pruned.state_dict())  # same bytes for the same weights
                return {"history": hist}

            with prog.bar(f"prune {pcfg['sparsity']:.0%} + fine-tune", int(pcfg["epochs"])) as tick:
                prune_dir, prune_meta = cache.cached("prune", prune_key, build_prune)
            pruned = variants.replay_prune(model, fs, pcfg)
            pruned.load_state_dict(torch.load(prune_dir / "model.pt", weights_only=True))
            pruned.eval()
            torch_models["pruned"] = pruned
            histories["pruned"] = prune_meta["history"]
        lap("prune")

        # -- quantization (QAT / PTQ) and conversion to int8 -------------------------------------
        int8_graphs: dict[str, object] = {}
        if opt["quantize"]:
            from tinyopt.pipeline import quantize_stage


            qcfg = opt["quantize"]
            for base, base_key in (("float", train_key), ("pruned", prune_key)):
                if base not in torch_models:
                    continue
                name = "int8" if base == "float" else "pruned+int8"
                qkey = stage_key("quantize", {**qcfg, "name": cfg["name"]}, [base_key])
                epochs = int(qcfg["epochs"]) if qcfg["mode"] == "qat" else 1
                with prog.bar(f"{qcfg['mode'].upper()} {name}", epochs) as tick:
                    qdir, _ = cache.cached("quantize", f"{base}-{qkey}", lambda tmp, b=base, n=name, t=tick: quantize_stage.build(
                        torch_models[b], fs, qcfg, seed, tmp, name=f"{cfg['name']}_{n}",
                        on_epoch=lambda e, r: t()))
                int8_graphs[name] = qdir / "model.tflite"
        lap("quantize")

        # -- artifacts, analysis of each artifact, accuracy --------------------------------------
        from tinyopt.export.tflite import graph_to_tflite_bytes

        models_dir = out / "models"
        rows, evals, analyses, blobs = [], {}, {}, {}
        with prog.bar("measure variants", len(torch_models) + len(int8_graphs)) as tick:
            for name, m in torch_models.items():
                blob = graph_to_tflite_bytes(variants.float_graph(m, fs, f"{cfg['name']}_{name}"))
                blobs[name] = blob
                tick()
            for name, p in int8_graphs.items():
                blobs[name] = Path(p).read_bytes()
                tick()
        # Nothing is written outside the cache until the deploy variant is known to fit.
        final = list(blobs)[-1]
        import tempfile

        with tempfile.TemporaryDirectory() as td:
            for name, blob in blobs.items():
                p = Path(td) / f"{name}.tflite"
                p.write_bytes(blob)
                analyses[name] = variants.analyze_artifact(p, device)
        gate(analyses[final], device, extra_ram, f"the {final} model")
        lap("analysis")
        from tinyopt.graph import load_model

        def file_of(name: str) -> Path:
            return models_dir / f"{name.replace('+', '_')}.tflite"

        with atomic_dir(models_dir) as tmp:  # the whole folder at once: no stale or half-written model
            for name, blob in blobs.items():
                (tmp / file_of(name).name).write_bytes(blob)
        with prog.bar("evaluate on test split", len(blobs)) as tick:
            for name in blobs:
                path = file_of(name)
                graph = load_model(path)
                pred = variants.run_graph(graph, fs.test.x).argmax(1)
                evals[name] = {"pred": pred, "metrics": model_stage.classify(fs.test.y, pred, fs.test.classes),
                               "graph": graph, "path": path}
                rows.append(variants.row(name, evals[name]["metrics"]["accuracy"], analyses[name],
                                         path.relative_to(out)))
                tick()
        res.variants = rows
        lap("evaluate")

        # -- verify int8 against TFLM, deploy ----------------------------------------------------
        import importlib.util

        if int8_graphs and importlib.util.find_spec("tflite_micro") is None:
            res.notes.append("int8 outputs not checked against TFLM: the tflite-micro package is not installed "
                             "(pip install tflite-micro, part of the [test] extra)")
        elif int8_graphs:
            with prog.bar("verify int8 runtime = TFLM", len(int8_graphs)) as tick:
                for name in int8_graphs:
                    ev = evals[name]
                    ours = variants.run_graph(ev["graph"], fs.test.x)
                    ref = variants.tflm_outputs(blobs[name], ev["graph"], fs.test.x)
                    res.verify[name] = {"examples": len(fs.test.x),
                                        "mismatches": int((ours.reshape(len(ours), -1) != ref).any(1).sum())}
                    tick()
        lap("verify")
        if "c" in (cfg["deploy"]["formats"] or []):
            from tinyopt.pipeline import deploy_stage

            with prog.step(f"generate C library ({final})"):
                res.deploy = deploy_stage.deploy_c(evals[final]["graph"], out / "deploy", cfg["deploy"]["prefix"],
                                                   fs, res.notes)
                res.deploy.update(deploy_stage.deploy_features_c(cfg, data_meta, out / "deploy",
                                                                 cfg["deploy"]["prefix"]))
        lap("deploy")

        # -- report and summary ------------------------------------------------------------------
        with prog.step("write report"):
            from tinyopt.pipeline.report_stage import write_report

            res.report = None if not report else write_report(out / "report.html", cfg, device, data_meta, fs, histories, rows, evals,
                                      analyses, torch_models, res)
            summary = {"name": cfg["name"], "device": device.name, "variants": rows, "verify": res.verify,
                       "deploy": res.deploy, "feature_ram_bytes": extra_ram}
            atomic_write_text(out / "summary.json", json.dumps(summary, indent=1, default=plain_or_str) + "\n")
        lap("report")
    res.cache_hits, res.cache_misses = list(cache.hits), list(cache.misses)
    return res
