"""What a search leaves behind: the Pareto table, an HTML report with the front plotted, the trials as
JSON, and the best feasible configuration as a project file that ``tinyopt run`` accepts."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import yaml

from tinyopt._io import atomic_write_text
from tinyopt.search.candidate import candidate_model
from tinyopt.search.tune import TuneResult


def best_feasible(result: TuneResult) -> dict | None:
    """The most accurate Pareto trial (ties: the faster)."""
    front = result.pareto()
    return max(front, key=lambda t: (t["accuracy"], -t["latency_s"])) if front else None


def project_for(cfg: dict, trial: dict, input_shape, num_classes: int) -> dict:
    """The user's project with the model and optimization the trial found (feature parameters too)."""
    out = {k: copy.deepcopy(v) for k, v in cfg.items() if not k.startswith("_")}
    params = trial["params"]
    name, args = candidate_model(params, input_shape, num_classes, prune=False)
    args.pop("num_classes", None)
    out["model"] = {"zoo": name, "args": args}
    for k, v in params.items():
        if k.startswith("features."):
            out["features"][k.split(".", 1)[1]] = v
    prune = float(params.get("prune", 0.0))
    out["optimize"] = dict(out.get("optimize") or {})
    out["optimize"]["prune"] = {"sparsity": round(prune, 4)} if prune > 0 else None
    bits = int(params.get("bits", 32))
    out["optimize"]["quantize"] = {"mode": "qat"} if bits <= 8 else None
    return out


def front_2d(trials: list[dict]) -> list[dict]:
    """Accuracy/latency front: sorted by latency, each point more accurate than every faster one."""
    out, best = [], -1.0
    for t in sorted(trials, key=lambda t: (t["latency_s"], -t["accuracy"])):
        if t["accuracy"] > best:
            out.append(t)
            best = t["accuracy"]
    return out


def pareto_figure(result: TuneResult):
    from tinyopt.report.plots import _plt

    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    done = result.feasible()
    ax.scatter([t["latency_s"] * 1e3 for t in done], [t["accuracy"] * 100 for t in done], s=18,
               color="#9aa5b1", label="trained candidates")
    three = result.pareto()
    ax.scatter([t["latency_s"] * 1e3 for t in three], [t["accuracy"] * 100 for t in three], s=46,
               facecolors="none", edgecolors="#2f5bea", label="Pareto (accuracy, latency, bytes)")
    front = front_2d(done)
    ax.step([t["latency_s"] * 1e3 for t in front], [t["accuracy"] * 100 for t in front], "o-", where="post",
            color="#d1495b", label="accuracy/latency front")
    ax.set_xlabel("latency on the target (ms)")
    ax.set_ylabel("validation accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def write_outputs(out: Path, cfg: dict, result: TuneResult, input_shape, num_classes: int,
                  budgets_text: str) -> dict:
    from tinyopt.report.html import Report

    out.mkdir(parents=True, exist_ok=True)
    best = best_feasible(result)
    rows = [_table_row(t) for t in result.pareto()]
    rep = Report(f"tinyopt tune — {cfg.get('name', 'project')}",
                 f"{len(result.trials)} trials; budgets: {budgets_text}")
    rep.cards([("trials", str(len(result.trials)), "finished"),
               ("trained", str(result.trainings), "this run"),
               ("vetoed", str(result.vetoed), "infeasible, never trained"),
               ("stopped early", str(result.early_stopped), "poor learning curve")])
    rep.section("Pareto front", "accuracy against latency and model bytes; every point met the budgets")
    rep.figure(pareto_figure(result), "validation accuracy against latency", "Pareto front plot")
    rep.table(rows)
    rep.section("All trials")
    rep.table([{**_table_row(t), "state": t["state"], "why": t.get("why", "")} for t in result.trials])
    files = {"report": str(rep.save(out / "tune-report.html"))}
    atomic_write_text(out / "trials.json", json.dumps(result.trials, indent=1, sort_keys=True, default=str))
    files["trials"] = str(out / "trials.json")
    if best is not None:
        project = project_for(cfg, best,
                              input_shape(best["params"]) if callable(input_shape) else input_shape,
                              num_classes)
        text = "# written by tinyopt tune: the most accurate configuration within the budgets\n"
        atomic_write_text(out / "best.yaml", text + yaml.safe_dump(project, sort_keys=False))
        files["best"] = str(out / "best.yaml")
    return files


def _table_row(t: dict) -> dict:
    p = t["params"]
    return {"trial": t["number"], **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in p.items()},
            "accuracy %": round(t["accuracy"] * 100, 2) if "accuracy" in t else "",
            "latency ms": round(t.get("latency_s", 0) * 1e3, 3),
            "RAM KB": round(t.get("ram_bytes", 0) / 1024, 1),
            "flash KB": round(t.get("flash_bytes", 0) / 1024, 1)}
