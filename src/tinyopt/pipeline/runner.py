"""Run a project end to end: data → features → analysis gate → float training → pruning → quantization
→ conversion → verification against TFLM → deployment → report, each stage a function over a typed
``Project`` and cached under ``<out>/cache``.

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


@dataclass(frozen=True)
class Project:
    """A validated project file (``pipeline.config.validate``), by section. The stages read these fields; the
    sections stay mappings with the schema's keys (their hashes are the cache keys); ``config`` is it all."""

    name: str
    seed: int
    data: dict
    features: dict
    model: dict
    training: dict
    prune: dict | None
    quantize: dict | None
    target: dict
    deploy: dict
    file: str | None
    config: dict

    @classmethod
    def from_config(cls, cfg: dict) -> Project:
        opt = cfg["optimize"]
        return cls(str(cfg["name"]), int(cfg["seed"]), cfg["data"], cfg["features"], cfg["model"],
                   cfg["training"], opt["prune"], opt["quantize"], cfg["target"], cfg["deploy"],
                   cfg.get("_file"), cfg)

    @property
    def deploy_dtype(self) -> str:
        return "int8" if self.quantize else "float32"


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
            reasons.append(f"RAM with {extra_ram:,} B of feature buffers needs {need:,} B > "
                           f"{device.sram_bytes:,} B")
    if not ok:
        why = "; ".join(r for r in reasons if "over" in r or "feature" in r)
        raise BudgetError(f"{label} does not fit {device.name}: {why}",
                          where="analysis", fix="pick a smaller model (model.zoo/args), add optimize.prune / "
                          "optimize.quantize, or choose a larger target.device")


@dataclass
class _Run:
    """What every stage shares: the project, the output folder, the cache, progress, the result so far."""

    project: Project
    out: Path
    cache: StageCache
    prog: Progress
    res: RunResult
    device: object
    clock: float = field(default_factory=time.perf_counter)

    def lap(self, name: str) -> None:
        """Charge the time since the last lap to stage ``name``."""
        now = time.perf_counter()
        self.res.timings[name] = self.res.timings.get(name, 0.0) + now - self.clock
        self.clock = now


@dataclass
class _Data:
    dir: Path
    meta: dict
    key: str


def stage_data(run: _Run) -> _Data:
    """Load and split the data set (cached by the data section, the seed and the files' fingerprint)."""
    p = run.project
    finger = None
    if p.data.get("path"):
        from tinyopt.pipeline.config import resolve_path

        finger = fingerprint_path(resolve_path(p.data["path"], p.file))
    key = stage_key("data", {**p.data, "seed": p.seed, "fingerprint": finger})

    def build(tmp: Path) -> dict:
        splits = stages.load_data(p.data, p.file, p.seed)
        stages.save_splits(tmp, splits)
        return {"classes": splits.train.classes, "source": splits.train.source,
                "balance": splits.balance_table(), "meta": splits.train.meta,
                "sizes": {k: len(d) for k, d in splits.items()}}

    with run.prog.step("load data"):
        folder, meta = run.cache.cached("data", key, build)
    run.lap("data")
    return _Data(folder, meta, key)


def stage_features(run: _Run, data: _Data):
    """The feature block over every split; returns the feature splits and the stage's cache key."""
    p = run.project
    key = stage_key("features", p.features, [data.key])

    def build(tmp: Path) -> dict:
        splits = stages.read_splits(data.dir, data.meta["classes"], data.meta["source"], data.meta["meta"])
        fsplits, _ = stages.features(splits, p.features)
        stages.save_splits(tmp, fsplits)
        return {"shape": list(fsplits.train.x.shape[1:])}

    with run.prog.step(f"features ({p.features['block']})"):
        folder, meta = run.cache.cached("features", key, build)
    fs = stages.read_splits(folder, data.meta["classes"], data.meta["source"], data.meta["meta"])
    run.res.data = {**data.meta, "feature_shape": meta["shape"]}
    run.res.feature_ram_bytes = feature_ram_bytes(p.config, data.meta, meta["shape"])
    run.lap("features")
    return fs, key


def stage_gate_architecture(run: _Run, fs) -> None:
    """Analyze the untrained architecture at the deploy dtype; stop before training when it cannot fit
    (unless pruning will shrink it)."""
    p = run.project
    with run.prog.step("analyze architecture"):
        from tinyopt.analysis import analyze

        pre = analyze(variants.float_graph(model_stage.build_model(p.config, fs), fs, p.name), run.device,
                      dtype=p.deploy_dtype).to_dict()
    if not p.prune:
        gate(pre, run.device, run.res.feature_ram_bytes, f"{p.model['zoo']} ({p.deploy_dtype})")
    run.lap("analysis")


def stage_train(run: _Run, fs, feat_key: str):
    """Train the float model (cached by model, training section, seed and features)."""
    p = run.project
    key = stage_key("train", {"model": p.model, "training": p.training, "seed": p.seed}, [feat_key])
    with run.prog.bar("train float model", int(p.training["epochs"])) as tick:
        folder, meta = run.cache.cached(
            "train", key,
            lambda tmp: model_stage.train_float(p.config, fs, tmp, on_epoch=lambda e, r: tick()))
    model = model_stage.load_model(p.config, fs, folder / "model.pt")
    run.lap("train")
    return model, meta["history"], key


def stage_prune(run: _Run, fs, model, train_key: str):
    """Structured pruning + fine-tuning of the float model, or None when the project does not prune."""
    p = run.project
    if not p.prune:
        run.lap("prune")
        return None
    import torch

    pcfg = p.prune
    key = stage_key("prune", pcfg, [train_key])

    with run.prog.bar(f"prune {pcfg['sparsity']:.0%} + fine-tune", int(pcfg["epochs"])) as tick:
        def build(tmp: Path) -> dict:
            pruned, hist = variants.prune(model, fs, pcfg, p.seed, on_epoch=lambda e, r: tick())
            from tinyopt.compress.checkpoint import save_state_dict

            save_state_dict(tmp / "model.pt", pruned.state_dict())  # same bytes for the same weights
            return {"history": hist}

        folder, meta = run.cache.cached("prune", key, build)
    pruned = variants.replay_prune(model, fs, pcfg)
    pruned.load_state_dict(torch.load(folder / "model.pt", weights_only=True))
    pruned.eval()
    run.lap("prune")
    return pruned, meta["history"], key


def stage_quantize(run: _Run, fs, bases: list[tuple[str, object, str]]) -> dict[str, Path]:
    """QAT or PTQ of each (name, module, cache key) base and conversion to int8 .tflite, by variant name."""
    p = run.project
    int8: dict[str, Path] = {}
    if p.quantize:
        from tinyopt.pipeline import quantize_stage

        qcfg = p.quantize
        for base, module, base_key in bases:
            name = "int8" if base == "float" else "pruned+int8"
            qkey = stage_key("quantize", {**qcfg, "name": p.name}, [base_key])
            epochs = int(qcfg["epochs"]) if qcfg["mode"] == "qat" else 1
            with run.prog.bar(f"{qcfg['mode'].upper()} {name}", epochs) as tick:
                def build(tmp, m=module, n=name, t=tick):
                    return quantize_stage.build(m, fs, qcfg, p.seed, tmp, name=f"{p.name}_{n}",
                                                on_epoch=lambda e, r: t())

                qdir, _ = run.cache.cached("quantize", f"{base}-{qkey}", build)
            int8[name] = qdir / "model.tflite"
    run.lap("quantize")
    return int8


def stage_measure(run: _Run, fs, torch_models: dict, int8_graphs: dict[str, Path]):
    """Every variant as .tflite bytes and its analysis; stop when the deploy variant (the last) does not fit,
    before anything is written outside the cache."""
    import tempfile

    from tinyopt.export.tflite import graph_to_tflite_bytes

    blobs, analyses = {}, {}
    with run.prog.bar("measure variants", len(torch_models) + len(int8_graphs)) as tick:
        for name, m in torch_models.items():
            blobs[name] = graph_to_tflite_bytes(variants.float_graph(m, fs, f"{run.project.name}_{name}"))
            tick()
        for name, path in int8_graphs.items():
            blobs[name] = Path(path).read_bytes()
            tick()
    final = list(blobs)[-1]
    with tempfile.TemporaryDirectory() as td:
        for name, blob in blobs.items():
            path = Path(td) / f"{name}.tflite"
            path.write_bytes(blob)
            analyses[name] = variants.analyze_artifact(path, run.device)
    gate(analyses[final], run.device, run.res.feature_ram_bytes, f"the {final} model")
    run.lap("analysis")
    return blobs, analyses, final


def stage_evaluate(run: _Run, fs, blobs: dict, analyses: dict):
    """Write every variant under models/ (the folder at once), then its accuracy on the test split."""
    from tinyopt.graph import load_model

    models_dir = run.out / "models"

    def file_of(name: str) -> Path:
        return models_dir / f"{name.replace('+', '_')}.tflite"

    with atomic_dir(models_dir) as tmp:  # the whole folder at once: no stale or half-written model
        for name, blob in blobs.items():
            (tmp / file_of(name).name).write_bytes(blob)
    rows, evals = [], {}
    with run.prog.bar("evaluate on test split", len(blobs)) as tick:
        for name in blobs:
            path = file_of(name)
            graph = load_model(path)
            pred = variants.run_graph(graph, fs.test.x).argmax(1)
            evals[name] = {"pred": pred, "metrics": model_stage.classify(fs.test.y, pred, fs.test.classes),
                           "graph": graph, "path": path}
            rows.append(variants.row(name, evals[name]["metrics"]["accuracy"], analyses[name],
                                     path.relative_to(run.out)))
            tick()
    run.res.variants = rows
    run.lap("evaluate")
    return rows, evals


def stage_verify(run: _Run, fs, int8_names: list[str], evals: dict, blobs: dict) -> None:
    """Every int8 variant through TFLM on the whole test split: the rows whose outputs differ from ours."""
    import importlib.util

    if int8_names and importlib.util.find_spec("tflite_micro") is None:
        run.res.notes.append("int8 outputs not checked against TFLM: the tflite-micro package is not "
                             "installed (pip install tflite-micro, part of the [test] extra)")
    elif int8_names:
        with run.prog.bar("verify int8 runtime = TFLM", len(int8_names)) as tick:
            for name in int8_names:
                ev = evals[name]
                ours = variants.run_graph(ev["graph"], fs.test.x)
                ref = variants.tflm_outputs(blobs[name], ev["graph"], fs.test.x)
                run.res.verify[name] = {"examples": len(fs.test.x),
                                        "mismatches": int((ours.reshape(len(ours), -1) != ref).any(1).sum())}
                tick()
    run.lap("verify")


def stage_deploy(run: _Run, fs, data: _Data, graph, final: str) -> None:
    """The C library of the deploy variant, and the feature extraction's C when the features need it."""
    p = run.project
    if "c" in (p.deploy["formats"] or []):
        from tinyopt.pipeline import deploy_stage

        with run.prog.step(f"generate C library ({final})"):
            run.res.deploy = deploy_stage.deploy_c(graph, run.out / "deploy", p.deploy["prefix"], fs,
                                                   run.res.notes)
            run.res.deploy.update(deploy_stage.deploy_features_c(p.config, data.meta, run.out / "deploy",
                                                                 p.deploy["prefix"]))
    run.lap("deploy")


def stage_report(run: _Run, fs, data: _Data, histories: dict, rows: list, evals: dict, analyses: dict,
                 torch_models: dict, report: bool) -> None:
    """The HTML report (unless ``report`` is False) and summary.json."""
    p, res = run.project, run.res
    with run.prog.step("write report"):
        from tinyopt.pipeline.report_stage import write_report

        if report:
            res.report = write_report(run.out / "report.html", p.config, run.device, data.meta, fs, histories,
                                      rows, evals, analyses, torch_models, res)
        summary = {"name": p.name, "device": run.device.name, "variants": rows, "verify": res.verify,
                   "deploy": res.deploy, "feature_ram_bytes": res.feature_ram_bytes}
        text = json.dumps(summary, indent=1, default=plain_or_str) + "\n"
        atomic_write_text(run.out / "summary.json", text)
    run.lap("report")


def run_project(cfg: dict, out: str | Path, console=None, use_cache: bool = True,
                report: bool = True) -> RunResult:
    """Run every stage of the validated project ``cfg`` into ``out``; ``report=False`` skips the report."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        from tinyopt.errors import ConfigError

        raise ConfigError("the output path exists and is not a folder", path=out,
                          fix="give --out a folder (it is created when missing)")
    project = Project.from_config(cfg)
    cache = StageCache(out / "cache", enabled=use_cache)
    with Progress(console) as prog, contextlib.ExitStack() as stack:
        run = _Run(project, out, cache, prog, RunResult(out=out), get_target(project.target))
        data = stage_data(run)
        fs, feat_key = stage_features(run, data)
        # torch only after the data stages: bad data fails fast, without importing it
        stack.enter_context(_torch_determinism(project.seed))
        stage_gate_architecture(run, fs)
        model, history, train_key = stage_train(run, fs, feat_key)
        torch_models, histories, bases = {"float": model}, {"float": history}, [("float", model, train_key)]
        pruned = stage_prune(run, fs, model, train_key)
        if pruned is not None:
            torch_models["pruned"], histories["pruned"] = pruned[0], pruned[1]
            bases.append(("pruned", pruned[0], pruned[2]))
        int8_graphs = stage_quantize(run, fs, bases)
        blobs, analyses, final = stage_measure(run, fs, torch_models, int8_graphs)
        rows, evals = stage_evaluate(run, fs, blobs, analyses)
        stage_verify(run, fs, list(int8_graphs), evals, blobs)
        stage_deploy(run, fs, data, evals[final]["graph"], final)
        stage_report(run, fs, data, histories, rows, evals, analyses, torch_models, report)
    run.res.cache_hits, run.res.cache_misses = list(cache.hits), list(cache.misses)
    return run.res
