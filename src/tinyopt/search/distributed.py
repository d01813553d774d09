"""Trials on a Ray cluster: each Ray task runs Optuna's optimize loop against the shared study database.

Start a cluster with ``ray start --head --port 6379`` on one machine and ``ray start --address HEAD:6379``
on the others; then ``tinyopt tune project.yaml --ray HEAD:6379 --storage postgresql://...`` (a SQLite
file works only when every worker sees the same disk, e.g. ``--ray local``).
"""

from __future__ import annotations

import socket

from tinyopt.errors import ConfigError, ToolchainError

CONNECT_TIMEOUT_S = 5.0


def probe(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast with a clear message when nothing answers at ``host:port`` (Ray itself would wait minutes)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"Ray address '{address}' is not host:port", fix="write e.g. --ray 127.0.0.1:6379 "
                          "or --ray local")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as e:
        raise ToolchainError(f"no Ray cluster answers at {address} within {timeout:g} s ({e.strerror or e})",
                             fix="start one with 'ray start --head --port " + port + "', or use --ray local"
                             ) from None


def _worker(storage, study_name, seed, n_trials, args):
    from tinyopt.search.tune import make_objective, open_study

    study = open_study(storage, study_name, seed)
    study.optimize(make_objective(study, *args), n_trials=n_trials, gc_after_trial=False)
    return n_trials


def run_on_ray(address: str, storage: str, study_name: str, seed: int, n_workers: int, n_trials: int,
               make_objective_args: tuple) -> None:
    if n_trials <= 0:
        return
    try:
        import ray
    except ImportError:
        raise ToolchainError("Ray is not installed", fix="pip install 'ray>=2.9'") from None
    if address != "local":
        probe(address)
    kwargs = dict(include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    if address == "local":
        ray.init(num_cpus=max(1, n_workers), **kwargs)
    else:
        ray.init(address=address, **kwargs)
    try:
        task = ray.remote(num_cpus=1)(_worker)
        n_workers = max(1, min(n_workers, n_trials))
        shares = [n_trials // n_workers + (i < n_trials % n_workers) for i in range(n_workers)]
        ray.get([task.remote(storage, study_name, seed + i, k, make_objective_args)
                 for i, k in enumerate(shares) if k])
    finally:
        ray.shutdown()
