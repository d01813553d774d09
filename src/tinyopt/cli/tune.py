"""`tinyopt tune project.yaml`: search architecture, features, pruning and bits under device budgets
(``tinyopt.tune``)."""

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
    max_ram_kb: Annotated[float, typer.Option(help="RAM budget, KB = 1024 B (default: the device's "
                                                   "SRAM)")] = None,
    max_flash_kb: Annotated[float, typer.Option(help="flash budget (default: the device's flash)")] = None,
    n_jobs: Annotated[int, typer.Option(help="trials in parallel (threads, or Ray workers)")] = 1,
    ray: Annotated[str, typer.Option(help="'local' or HOST:PORT of a Ray cluster")] = None,
    out: Annotated[Path, typer.Option(help="output folder")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Optuna search, every candidate analyzed first: infeasible ones are never trained."""
    from tinyopt._api.search import tune
    from tinyopt.cli._common import console, print_json, print_result

    say = console(stderr=json_out)

    def on_trial(row):
        what = f"acc {row['accuracy'] * 100:.1f} %" if "accuracy" in row else row.get("why", row["state"])
        say.print(f"trial {row['number']:>3}  {row['state']:<8} {what}")

    report = tune(project, trials=trials, seed=seed, epochs=epochs, storage=storage, study_name=study_name,
                  max_latency_ms=max_latency_ms, max_ram_kb=max_ram_kb, max_flash_kb=max_flash_kb,
                  n_jobs=n_jobs, ray=ray, out=out, on_trial=on_trial)
    if json_out:
        print_json(report.to_dict())
    else:
        print_result(report)


def register(app: typer.Typer) -> None:
    app.command("tune")(tune_cmd)
