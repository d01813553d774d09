"""`tinyopt tune project.yaml`: search architecture, features, pruning and bits under device budgets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def tune_cmd(
    project: Annotated[Path, typer.Argument(help="project YAML (as for `tinyopt run`) with an optional "
                                                  "'search:' section")],
    trials: Annotated[int, typer.Option(help="finished trials the study should hold")] = 20,
    seed: Annotated[int, typer.Option(help="sampler and training seed")] = 0,
    epochs: Annotated[int, typer.Option(help="training epochs per candidate")] = 6,
    storage: Annotated[str, typer.Option(help="study database, e.g. sqlite:///study.db (resumable)")] = None,
    study_name: Annotated[str, typer.Option(help="study name inside the database")] = "tinyopt",
    max_latency_ms: Annotated[float, typer.Option(help="latency budget (default: none)")] = None,
    max_ram_kb: Annotated[float, typer.Option(help="RAM budget, KB = 1024 B (default: the board's SRAM)")] = None,
    max_flash_kb: Annotated[float, typer.Option(help="flash budget (default: the board's flash)")] = None,
    n_jobs: Annotated[int, typer.Option(help="trials in parallel (threads, or Ray workers)")] = 1,
    ray: Annotated[str, typer.Option(help="'local' or HOST:PORT of a Ray cluster")] = None,
    out: Annotated[Path, typer.Option(help="output folder")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Optuna search, every candidate analyzed first: infeasible ones are never trained."""
    from tinyopt._yaml import load_yaml_file
    from tinyopt.cli._common import console, print_json
    from tinyopt.errors import ConfigError
    from tinyopt.pipeline.config import validate
    from tinyopt.pipeline.runner import get_target
    from tinyopt.search.outputs import best_feasible, write_outputs
    from tinyopt.search.space import parse_space
    from tinyopt.search.train import ProjectTrainer
    from tinyopt.search.tune import Budgets, check_any_feasible, tune

    if trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {trials}", fix="e.g. --trials 20")
    raw = load_yaml_file(project)
    space = parse_space(raw.pop("search", None), str(project))
    cfg = validate(raw, str(project))
    cfg["_file"] = str(project)
    device = get_target(cfg["target"])
    budgets = Budgets(max_latency_s=None if max_latency_ms is None else max_latency_ms / 1e3,
                      max_ram_bytes=int((max_ram_kb * 1024) if max_ram_kb is not None else device.sram_bytes),
                      max_flash_bytes=int((max_flash_kb * 1024) if max_flash_kb is not None else device.flash_bytes))
    text = ", ".join(f"{k} {v}" for k, v in (
        ("latency ≤", f"{budgets.max_latency_s * 1e3:g} ms" if budgets.max_latency_s else None),
        ("RAM ≤", f"{budgets.max_ram_bytes / 1024:g} KB"), ("flash ≤", f"{budgets.max_flash_bytes / 1024:g} KB"))
        if v) + f" on {device.name}"
    trainer = ProjectTrainer(cfg, epochs=epochs, seed=seed)
    check_any_feasible(space, trainer.input_shape, trainer.num_classes, device, budgets)
    say = console(stderr=json_out)

    def on_trial(row):
        what = f"acc {row['accuracy'] * 100:.1f} %" if "accuracy" in row else row.get("why", row["state"])
        say.print(f"trial {row['number']:>3}  {row['state']:<8} {what}")

    result = tune(space, input_shape=trainer.input_shape, num_classes=trainer.num_classes, device=device,
                  budgets=budgets, trainer=trainer, n_trials=trials, seed=seed, storage=storage,
                  study_name=study_name, n_jobs=n_jobs, ray_address=ray, on_trial=on_trial)
    folder = out or Path("tinyopt-out") / f"tune-{cfg['name']}"
    files = write_outputs(folder, cfg, result, trainer.input_shape, trainer.num_classes, text)
    best = best_feasible(result)
    summary = {"trials": len(result.trials), "trainings": result.trainings, "vetoed": result.vetoed,
               "early_stopped": result.early_stopped, "pareto": result.pareto(), "best": best, "files": files}
    if json_out:
        print_json(summary)
        return
    from rich.table import Table

    t = Table(title=f"Pareto front ({text})")
    for col in ("trial", "params", "accuracy", "latency", "RAM", "flash"):
        t.add_column(col)
    for row in result.pareto():
        t.add_row(str(row["number"]), ", ".join(f"{k}={_short(v)}" for k, v in row["params"].items()),
                  f"{row['accuracy'] * 100:.2f} %", f"{row['latency_s'] * 1e3:.2f} ms",
                  f"{row['ram_bytes'] / 1024:.1f} KB", f"{row['flash_bytes'] / 1024:.1f} KB")
    say.print(t)
    say.print(f"trained {result.trainings}, vetoed before training {result.vetoed}, "
              f"stopped early {result.early_stopped}; report: {files['report']}"
              + (f"; best configuration: {files['best']}" if "best" in files else ""))


def _short(v):
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def register(app: typer.Typer) -> None:
    app.command("tune")(tune_cmd)
