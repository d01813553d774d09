"""tinyopt tune against random search, with the same number of trainings, on the same space and data.

Random search trains every candidate it draws and only then learns (from the same analyzer) that some
break the budgets; tune asks the analyzer first. Printed: hypervolume of the accuracy/latency front of
each, trainings spent on infeasible candidates, and wall time.

    .venv/bin/python bench/tune_vs_random.py [--trainings 16] [--epochs 6] [--max-latency-ms 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tinyopt.pipeline.config import validate
from tinyopt.pipeline.runner import get_target
from tinyopt.search.space import parse_space
from tinyopt.search.train import ProjectTrainer
from tinyopt.search.tune import Budgets, candidate_cost, hypervolume_2d, tune

SPACE = {
    "width": {"type": "int", "low": 2, "high": 64, "log": True},
    "depth": {"type": "int", "low": 1, "high": 3},
    "kernel": {"type": "categorical", "choices": [3, 5]},
    "dense": {"type": "categorical", "choices": [0, 32, 64]},
    "bits": {"type": "categorical", "choices": [32, 8]},
}


def random_search(space, trainer, device, budgets, trainings, seed):
    rng = np.random.default_rng(seed)
    points, wasted = [], 0
    for _ in range(trainings):
        params = {p.name: p.sample(rng) for p in space}
        cost = candidate_cost(params, trainer.input_shape(params), trainer.num_classes, device)
        acc = trainer(params, cost["spec"], lambda e, a: False)
        if budgets.violations(cost):
            wasted += 1  # trained, then found infeasible
        else:
            points.append((acc, cost["latency_s"]))
    return points, wasted


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trainings", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--max-latency-ms", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    cfg = validate({"name": "digits-bench", "data": {"source": "digits", "val": 0.15, "test": 0.2}})
    device = get_target(cfg["target"])
    budgets = Budgets(max_latency_s=args.max_latency_ms / 1e3, max_ram_bytes=device.sram_bytes,
                      max_flash_bytes=device.flash_bytes)
    space = parse_space(SPACE)
    trainer = ProjectTrainer(cfg, epochs=args.epochs, seed=args.seed)
    ref = budgets.max_latency_s

    t0 = time.perf_counter()
    rand_pts, rand_wasted = random_search(space, trainer, device, budgets, args.trainings, args.seed)
    t_rand = time.perf_counter() - t0

    t0 = time.perf_counter()
    res = tune(space, input_shape=trainer.input_shape, num_classes=trainer.num_classes, device=device,
               budgets=budgets, trainer=trainer, n_trials=10 * args.trainings, seed=args.seed,
               max_trainings=args.trainings, min_trials_for_pruning=10**9)
    t_tune = time.perf_counter() - t0
    tune_pts = [(t["accuracy"], t["latency_s"]) for t in res.feasible()]

    hv_r, hv_t = hypervolume_2d(rand_pts, ref), hypervolume_2d(tune_pts, ref)
    rows = [("random search", args.trainings, rand_wasted, len(rand_pts), hv_r, t_rand),
            ("tinyopt tune", res.trainings, 0, len(tune_pts), hv_t, t_tune)]
    print(f"digits, Nano 33 BLE Sense, latency ≤ {args.max_latency_ms:g} ms, "
          f"{args.epochs} epochs per training")
    print(f"{'method':<15} {'trainings':>9} {'infeasible trained':>18} {'feasible':>8} "
          f"{'hypervolume':>11} {'wall s':>7}")
    for name, n, wasted, feas, hv, t in rows:
        print(f"{name:<15} {n:>9} {wasted:>18} {feas:>8} {hv * 1e3:>11.4f} {t:>7.1f}")
    print(f"hypervolume ratio tune/random: {hv_t / hv_r if hv_r else float('inf'):.3f}; "
          f"vetoed before training: {res.vetoed}; trainings saved vs random's wasted: {rand_wasted}")


if __name__ == "__main__":
    main()
