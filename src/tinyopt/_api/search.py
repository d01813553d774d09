"""``tinyopt.tune`` (search architecture, features, pruning and bits under a device's budgets) and
``tinyopt.select`` (which model version to ship to which client)."""

from __future__ import annotations

import os
from pathlib import Path

from tinyopt._api.display import Result, Table, jsonable
from tinyopt._extras import translated
from tinyopt.errors import ConfigError


def _short(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


class TuneReport(Result):
    """A finished search: ``pareto`` (the non-dominated feasible trials), ``best``, counts of trainings,
    vetoes (infeasible, never trained) and early stops, and the ``files`` written (report, trials, best)."""

    def __init__(self, result, files: dict, budgets_text: str):
        from tinyopt.search.outputs import best_feasible

        self.result, self.files, self.budgets = result, files, budgets_text
        self.pareto = result.pareto()
        self.best = best_feasible(result)

    def to_dict(self) -> dict:
        r = self.result
        return jsonable({"trials": len(r.trials), "trainings": r.trainings, "vetoed": r.vetoed,
                         "early_stopped": r.early_stopped, "pareto": self.pareto, "best": self.best,
                         "files": self.files})

    def tables(self) -> list[Table]:
        r = self.result
        rows = [[row["number"], ", ".join(f"{k}={_short(v)}" for k, v in row["params"].items()),
                 f"{row['accuracy'] * 100:.2f} %", f"{row['latency_s'] * 1e3:.2f} ms",
                 f"{row['ram_bytes'] / 1024:.1f} KB", f"{row['flash_bytes'] / 1024:.1f} KB"]
                for row in self.pareto]
        note = (f"trained {r.trainings}, vetoed before training {r.vetoed}, stopped early {r.early_stopped}; "
                f"report: {self.files.get('report')}"
                + (f"; best configuration: {self.files['best']}" if "best" in self.files else ""))
        cols = ["trial", "params", "accuracy", "latency", "RAM", "flash"]
        return [Table(f"Pareto front ({self.budgets})", cols,
                      rows, notes=[note])]


@translated
def tune(project: str | os.PathLike, *, trials: int = 20, seed: int = 0, epochs: int = 6,
         storage: str | None = None, study_name: str = "tinyopt", max_latency_ms: float | None = None,
         max_ram_kb: float | None = None, max_flash_kb: float | None = None, n_jobs: int = 1,
         ray: str | None = None, out: str | os.PathLike | None = None, on_trial=None) -> TuneReport:
    """Optuna search over the project's ``search:`` space; every candidate is analyzed first, so infeasible
    ones are never trained. Budgets default to the project device's SRAM and flash (KB = 1024 B).
    ``storage`` (``sqlite:///study.db``) makes the study resumable; ``ray`` (``local`` or ``HOST:PORT``)
    runs trials on Ray. ``on_trial(row)`` is called as each trial finishes. Writes the report, the trials and
    the best configuration (a project file) into ``out`` (default ``tinyopt-out/tune-<name>``)."""
    from tinyopt._yaml import load_yaml_file
    from tinyopt.pipeline.config import validate
    from tinyopt.pipeline.runner import get_target
    from tinyopt.search.outputs import write_outputs
    from tinyopt.search.space import parse_space
    from tinyopt.search.train import ProjectTrainer
    from tinyopt.search.tune import Budgets, check_any_feasible
    from tinyopt.search.tune import tune as run_tune

    if trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {trials}", where="--trials",
                          fix="e.g. --trials 20")
    raw = load_yaml_file(project)
    space = parse_space(raw.pop("search", None), str(project))
    cfg = validate(raw, str(project))
    cfg["_file"] = str(project)
    device = get_target(cfg["target"])
    ram = max_ram_kb * 1024 if max_ram_kb is not None else device.sram_bytes
    flash = max_flash_kb * 1024 if max_flash_kb is not None else device.flash_bytes
    budgets = Budgets(max_latency_s=None if max_latency_ms is None else max_latency_ms / 1e3,
                      max_ram_bytes=int(ram), max_flash_bytes=int(flash))
    text = ", ".join(f"{k} {v}" for k, v in (
        ("latency ≤", f"{budgets.max_latency_s * 1e3:g} ms" if budgets.max_latency_s else None),
        ("RAM ≤", f"{budgets.max_ram_bytes / 1024:g} KB"),
        ("flash ≤", f"{budgets.max_flash_bytes / 1024:g} KB"))
        if v) + f" on {device.name}"
    trainer = ProjectTrainer(cfg, epochs=epochs, seed=seed)
    check_any_feasible(space, trainer.input_shape, trainer.num_classes, device, budgets)
    result = run_tune(space, input_shape=trainer.input_shape, num_classes=trainer.num_classes, device=device,
                      budgets=budgets, trainer=trainer, n_trials=trials, seed=seed, storage=storage,
                      study_name=study_name, n_jobs=n_jobs, ray_address=ray, on_trial=on_trial)
    folder = Path(out) if out is not None else Path("tinyopt-out") / f"tune-{cfg['name']}"
    files = write_outputs(folder, cfg, result, trainer.input_shape, trainer.num_classes, text)
    return TuneReport(result, files, text)


class Selection(Result):
    """Per client, the chosen version (or None) and the reasons; ``versions`` are the candidates."""

    def __init__(self, versions: list, choices: list):
        self.versions, self.choices = versions, choices

    def require_all_served(self) -> None:
        """Raise ``BudgetError`` naming the binding budget when some client gets no version."""
        from tinyopt.search.select import require_all_served

        require_all_served(self.choices, self.versions)

    def to_dict(self) -> dict:
        return jsonable({"versions": [{"name": v.name, "accuracy": v.accuracy, "latency_s": v.latency_s,
                                       "dtype": v.dtype} for v in self.versions],
                         "choices": [{"client": c.client.name, "max_latency_s": c.client.max_latency_s,
                                      "version": c.version.name if c.version else None,
                                      "accuracy": c.version.accuracy if c.version else None,
                                      "reasons": c.reasons} for c in self.choices]})

    def tables(self) -> list[Table]:
        return [Table(f"client {c.client.name} (latency ≤ {c.client.max_latency_s:g} s)", [],
                      notes=list(c.reasons)) for c in self.choices]


def _clients(clients) -> list:
    from tinyopt.search.select import Client, parse_client

    if clients is None:
        return []
    if isinstance(clients, dict):
        clients = [f"{name}={budget}" for name, budget in clients.items()]
    if isinstance(clients, str):
        clients = [clients]
    return [c if isinstance(c, Client) else parse_client(str(c)) for c in clients]


@translated
def select(versions: str | os.PathLike, clients=None) -> Selection:
    """For each client, the most accurate version of ``versions`` (a YAML of model versions, or a base plus
    options, and a device) within its budgets, with the reasoning. ``clients``: ``{"fast": 0.2}`` (name →
    latency budget in s), or ``["fast=0.2,ram_kb=256", ...]``; clients listed in the YAML are added."""
    from tinyopt.search.select import Client, load_versions, parse_client
    from tinyopt.search.select import select as choose

    vs, doc = load_versions(versions)
    cs = _clients(clients)
    for name, budget in (doc.get("clients") or {}).items():
        cs.append(Client(str(name), float(budget)) if not isinstance(budget, dict) else
                  parse_client(f"{name}={budget.get('latency_s')}"))
    if not cs:
        raise ConfigError("no clients given", path=versions, fix="add --client NAME=LATENCY_S")
    return Selection(vs, choose(vs, cs))


__all__ = ["Selection", "TuneReport", "select", "tune"]
