"""Constraint-driven search: Optuna proposes, the analyzer vetoes infeasible candidates before any
training, survivors train with early pruning on poor learning curves, and a SQLite study makes the whole
search resumable after a kill.

Objectives (multi-objective): maximise accuracy, minimise latency, minimise model bytes.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from tinyopt.errors import BudgetError, ConfigError
from tinyopt.search.candidate import candidate_spec
from tinyopt.search.space import Param

# A trainer gets (params, spec, report) and returns the final accuracy in [0, 1];
# report(epoch, val_accuracy) returns True when the trial should stop (poor learning curve).
Trainer = Callable[[dict, dict, Callable[[int, float], bool]], float]


@dataclass
class Budgets:
    max_latency_s: float | None = None
    max_ram_bytes: int | None = None
    max_flash_bytes: int | None = None

    def violations(self, cost: dict) -> list[str]:
        out = []
        if self.max_latency_s is not None and cost["latency_s"] > self.max_latency_s:
            out.append(f"latency {cost['latency_s'] * 1e3:.2f} ms > {self.max_latency_s * 1e3:.2f} ms")
        if self.max_ram_bytes is not None and cost["ram_bytes"] > self.max_ram_bytes:
            out.append(f"RAM {cost['ram_bytes'] / 1024:.1f} KB > {self.max_ram_bytes / 1024:.1f} KB")
        if self.max_flash_bytes is not None and cost["flash_bytes"] > self.max_flash_bytes:
            out.append(f"flash {cost['flash_bytes'] / 1024:.1f} KB > {self.max_flash_bytes / 1024:.1f} KB")
        return out


@dataclass
class TuneResult:
    trials: list[dict] = field(default_factory=list)   # every finished trial (complete or vetoed)
    trainings: int = 0                                 # trials that trained (this run)
    vetoed: int = 0                                    # infeasible, never trained (this run)
    early_stopped: int = 0

    def feasible(self) -> list[dict]:
        return [t for t in self.trials if t["state"] == "COMPLETE"]

    def pareto(self) -> list[dict]:
        """Non-dominated feasible trials on (accuracy ↑, latency ↓, bytes ↓)."""
        pts = self.feasible()

        def dominates(a, b):
            ge = (a["accuracy"] >= b["accuracy"] and a["latency_s"] <= b["latency_s"]
                  and a["flash_bytes"] <= b["flash_bytes"])
            gt = (a["accuracy"] > b["accuracy"] or a["latency_s"] < b["latency_s"]
                  or a["flash_bytes"] < b["flash_bytes"])
            return ge and gt

        return sorted([p for p in pts if not any(dominates(q, p) for q in pts)], key=lambda t: t["latency_s"])


def candidate_cost(params: dict, input_shape, num_classes, device) -> dict:
    """Exact analyzer figures for the candidate at its arithmetic (bits ≤ 8 → int8 kernels)."""
    from tinyopt.analysis import analyze
    from tinyopt.graph.spec import spec_to_graph

    spec = candidate_spec(params, input_shape, num_classes)
    bits = int(params.get("bits", 32))
    a = analyze(spec_to_graph(spec), device=device, dtype="int8" if bits <= 8 else "float32").to_dict()
    weights = a["param_bytes"]
    if bits < 8:  # sub-byte weights packed; int32 biases stay as they are
        weights = a["param_bytes"] * bits / 8
    return {"spec": spec, "latency_s": float(a["latency_s"]), "ram_bytes": int(a["arena_bytes"]),
            "flash_bytes": int(a["flash_bytes"] - a["param_bytes"] + weights),
            "param_count": int(a["params"])}


def _storage(url: str | None):
    import optuna

    if url is None:
        return None
    try:
        return optuna.storages.RDBStorage(url)
    except Exception as e:  # sqlalchemy raises many types for a corrupt file
        raise ConfigError(f"cannot open the study database ({type(e).__name__}: {str(e).splitlines()[0]})",
                          path=url, fix="give a new file name, or delete the corrupt database") from None


def open_study(storage: str | None, study_name: str, seed: int):
    """Create or load the study; a RUNNING trial left by a killed run is failed and re-queued with the
    same parameters, so no trial is lost on resume."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=5)
    try:
        study = optuna.create_study(study_name=study_name, storage=_storage(storage), sampler=sampler,
                                    directions=["maximize", "minimize", "minimize"], load_if_exists=True)
        stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    except ConfigError:
        raise
    except Exception as e:
        raise ConfigError(f"cannot open the study ({type(e).__name__}: {str(e).splitlines()[0]})",
                          path=storage, fix="give a new file name, or delete the corrupt database") from None
    for t in stale:
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        study.enqueue_trial(t.params, skip_if_exists=False)
    return study


def make_objective(study, space: list[Param], input_shape, num_classes, device, budgets: Budgets,
                   trainer: Trainer, min_trials_for_pruning: int = 3):
    """The Optuna objective: analyze first (veto before any training), then train with early stopping."""
    import optuna
    from optuna.trial import TrialState

    def objective(trial):
        params = {p.name: p.suggest(trial) for p in space}
        cost = candidate_cost(params, _shape(input_shape, params), num_classes, device)
        trial.set_user_attr("cost", {k: v for k, v in cost.items() if k != "spec"})
        bad = budgets.violations(cost)
        if bad:
            trial.set_user_attr("infeasible", "; ".join(bad))
            raise optuna.TrialPruned("infeasible: " + "; ".join(bad))
        curve: list[float] = []

        def report(epoch: int, acc: float) -> bool:
            curve.append(acc)
            trial.set_user_attr("curve", curve)
            done = [t.user_attrs.get("curve", []) for t in study.get_trials(deepcopy=False,
                                                                            states=(TrialState.COMPLETE,))]
            peers = [c[epoch] for c in done if len(c) > epoch]
            if epoch >= 1 and len(peers) >= min_trials_for_pruning and acc < statistics.median(peers) - 0.05:
                trial.set_user_attr("early_stopped", epoch)
                return True
            return False

        trial.set_user_attr("trained", True)
        acc = float(trainer(params, cost["spec"], report))
        if "early_stopped" in trial.user_attrs:
            raise optuna.TrialPruned(f"poor learning curve at epoch {trial.user_attrs['early_stopped']}")
        return acc, cost["latency_s"], cost["flash_bytes"]

    return objective


def tune(space: list[Param], *, input_shape, num_classes, device, budgets: Budgets, trainer: Trainer,
         n_trials: int, seed: int = 0, storage: str | None = None, study_name: str = "tinyopt",
         n_jobs: int = 1, ray_address: str | None = None, min_trials_for_pruning: int = 3,
         on_trial: Callable[[dict], None] | None = None, max_trainings: int | None = None) -> TuneResult:
    """Run (or resume) a study until it holds ``n_trials`` finished trials (completed or pruned), or
    until ``max_trainings`` candidates have been trained (vetoed ones cost no training and don't count).

    With ``ray_address`` ("local" or "host:port") the trials run as Ray tasks that share the study's
    database; otherwise in this process with ``n_jobs`` threads.
    """
    from optuna.trial import TrialState

    study = open_study(storage, study_name, seed)
    finished = (TrialState.COMPLETE, TrialState.PRUNED)
    before = {t.number for t in study.get_trials(deepcopy=False, states=finished)}
    if ray_address is not None:
        from tinyopt.search.distributed import run_on_ray

        if storage is None:
            raise ConfigError("--ray needs --storage: the workers share the study through it",
                              fix="add --storage sqlite:///study.db (a server database for a cluster)")
        run_on_ray(ray_address, storage, study_name, seed, n_jobs, n_trials - len(before),
                   make_objective_args=(space, input_shape, num_classes, device, budgets, trainer,
                                        min_trials_for_pruning))
        study = open_study(storage, study_name, seed)
    else:
        objective = make_objective(study, space, input_shape, num_classes, device, budgets, trainer,
                                   min_trials_for_pruning)
        while True:
            done = study.get_trials(deepcopy=False, states=finished)
            have = len(done)
            if have >= n_trials or (max_trainings is not None and
                                    sum(bool(t.user_attrs.get("trained")) for t in done) >= max_trainings):
                break
            study.optimize(objective, n_trials=min(n_trials - have, n_jobs), n_jobs=n_jobs,
                           callbacks=[_callback(on_trial)] if on_trial else None, gc_after_trial=False)
    result = TuneResult(trials=[_row(t) for t in study.get_trials(deepcopy=False, states=finished)])
    new = [t for t in study.get_trials(deepcopy=False, states=finished) if t.number not in before]
    result.trainings = sum(bool(t.user_attrs.get("trained")) for t in new)
    result.vetoed = sum("infeasible" in t.user_attrs for t in new)
    result.early_stopped = sum("early_stopped" in t.user_attrs for t in new)
    return result


def _callback(on_trial):
    def cb(study, frozen):
        on_trial(_row(frozen))
    return cb


def _row(t) -> dict:
    cost = t.user_attrs.get("cost", {})
    row = {"number": t.number, "state": t.state.name, "params": dict(t.params), **cost}
    if t.values:
        row["accuracy"] = t.values[0]
    if "infeasible" in t.user_attrs:
        row["why"] = t.user_attrs["infeasible"]
    elif "early_stopped" in t.user_attrs:
        row["why"] = f"stopped early at epoch {t.user_attrs['early_stopped']}"
    return row


def _shape(input_shape, params: dict) -> tuple[int, ...]:
    """The candidate's input shape: fixed, or a function of its feature parameters."""
    return tuple(input_shape(params)) if callable(input_shape) else tuple(input_shape)


def smallest_achievable(space: list[Param], input_shape, num_classes, device) -> dict:
    """The cheapest corner of the space (lowest width/depth, highest pruning, fewest bits): used to
    name the binding constraint when no candidate can meet the budgets."""
    params = {}
    for p in space:
        if p.kind in ("int", "float"):
            params[p.name] = p.high if p.name == "prune" else p.low
        else:
            nums = [c for c in p.choices if isinstance(c, (int, float))]
            params[p.name] = min(nums) if nums else p.choices[0]
    params.setdefault("dense", 0)
    return candidate_cost(params, _shape(input_shape, params), num_classes, device)


def check_any_feasible(space, input_shape, num_classes, device, budgets: Budgets) -> None:
    """Fail fast, before the study, when even the cheapest candidate breaks a budget."""
    cost = smallest_achievable(space, input_shape, num_classes, device)
    bad = budgets.violations(cost)
    if bad:
        raise BudgetError(
            f"no candidate can meet the budgets: even the smallest has {bad[0]} "
            f"(smallest achievable: latency {cost['latency_s'] * 1e3:.2f} ms, RAM "
            f"{cost['ram_bytes'] / 1024:.1f} KB, flash {cost['flash_bytes'] / 1024:.1f} KB)",
            fix="relax that budget, choose a faster board, or widen the search space downwards")


def hypervolume_2d(points: list[tuple[float, float]], ref_latency: float) -> float:
    """Area dominated by (accuracy ↑, latency ↓) points above accuracy 0 and below ``ref_latency``."""
    pts = sorted((lat, acc) for acc, lat in points if lat < ref_latency)
    area, best = 0.0, 0.0
    # sweep latency from the reference down: each point adds the accuracy it improves, over its span
    frontier = []
    for lat, acc in pts:
        if acc > best:
            frontier.append((lat, acc))
            best = acc
    for i, (lat, acc) in enumerate(frontier):
        nxt = frontier[i + 1][0] if i + 1 < len(frontier) else ref_latency
        area += (nxt - lat) * acc
    return area
