"""Trials on a Ray cluster: each Ray task runs Optuna's optimize loop against the shared study database.

Start a cluster with ``ray start --head --port 6379`` on one machine and ``ray start --address HEAD:6379``
on the others; then ``tinyopt tune project.yaml --ray HEAD:6379 --storage postgresql://...`` (a SQLite
file works only when every worker sees the same disk, e.g. ``--ray local``).

A head on this machine's loopback only: ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 ray start --head
--node-ip-address 127.0.0.1 --port 6379`` (without that variable Ray on Linux replaces 127.0.0.1 by the
machine's network address, in ``ray start`` and in ``ray.init`` alike), then ``--ray 127.0.0.1:6379``.
When the head listens on loopback only, tinyopt keeps the loopback address that Ray would replace.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from pathlib import Path

from tinyopt.errors import ConfigError, ToolchainError

CONNECT_TIMEOUT_S = 5.0


def probe(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast, clearly, when nothing answers at ``host:port`` (Ray itself would wait minutes)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"Ray address '{address}' is not host:port", fix="write e.g. --ray "
                          "127.0.0.1:6379 or --ray local")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as e:
        raise ToolchainError(f"no Ray cluster answers at {address} within {timeout:g} s ({e.strerror or e})",
                             fix="start one with 'ray start --head --port " + port + "', or use --ray local"
                             ) from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _listens_on_loopback_only(port: int) -> bool:
    """True when every listening TCP socket on ``port`` of this machine is bound to a loopback address
    (read from /proc/net/tcp*, so no traffic is sent); False when one listens on a wildcard or network
    address, or where /proc is not there (macOS and Windows Ray keep loopback addresses anyway)."""
    bound = []
    for name, width in (("tcp", 8), ("tcp6", 32)):
        with contextlib.suppress(OSError):
            for line in Path("/proc/net", name).read_text().splitlines()[1:]:
                fields = line.split()
                local, state = fields[1], fields[3]
                addr_hex, port_hex = local.split(":")
                if state == "0A" and int(port_hex, 16) == port and len(addr_hex) == width:
                    raw = bytes.fromhex(addr_hex)
                    # the kernel prints each 32-bit word in host (little-endian) byte order
                    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                    bound.append(ipaddress.ip_address(raw))
    def loopback(a):
        return a.is_loopback or (a.version == 6 and a.ipv4_mapped is not None and a.ipv4_mapped.is_loopback)
    return bool(bound) and all(loopback(a) for a in bound)


@contextlib.contextmanager
def _keep_loopback(ray_constants):
    """While connecting, make Ray keep 127.0.0.1 instead of swapping in the machine's address: the
    module constant behind RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, which Ray reads only at import."""
    old = getattr(ray_constants, "ENABLE_RAY_CLUSTER", None) if ray_constants is not None else None
    if old is None:
        yield
        return
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = old


def _init_failure(address: str, err: BaseException) -> ToolchainError:
    """One line naming the address and the likely fix, for whatever ``ray.init`` raised."""
    chain, e = [], err
    while e is not None and len(chain) < 8:
        chain.append(e)
        e = e.__cause__ or e.__context__
    names = {type(c).__name__ for c in chain}
    text = " ".join(str(c) for c in chain)
    dialed = next((w.rstrip(".,:") for w in str(err).split() if w.count(":") == 1 and w[0].isdigit()), None)
    where = f"Ray cluster at {address}" + (f" (Ray dialed {dialed})" if dialed and dialed != address else "")
    if "AuthenticationError" in names or "InvalidAuthToken" in text:
        return ToolchainError(
            f"the {where} requires token authentication and this process sent no token",
            fix="run tinyopt with RAY_AUTH_MODE=token and the cluster's token in RAY_AUTH_TOKEN (or "
                "~/.ray/auth_token), or start the head with RAY_AUTH_MODE=disabled on a trusted network")
    if "version" in text.lower() and "mismatch" in text.lower():
        import ray

        return ToolchainError(f"the {where} runs another Ray or Python version than this one "
                              f"(Ray {ray.__version__})",
                              fix="install the same Ray and Python versions on the head and here")
    first = str(chain[-1]).strip().splitlines()
    reason = first[-1][:200] if first else type(chain[-1]).__name__
    port = address.rpartition(":")[2]
    return ToolchainError(
        f"could not connect to the {where}: {type(err).__name__}: {reason}",
        fix=f"check 'ray status --address {address}'; for a head on this machine's loopback start it with "
            "'RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 ray start --head --node-ip-address 127.0.0.1 --port "
            f"{port}', or use --ray local")


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
        host, _, port = address.rpartition(":")
        keep = _is_loopback(host) and _listens_on_loopback_only(int(port))
        try:
            import ray._private.ray_constants as ray_constants
        except ImportError:  # a Ray without this module: let it resolve the address its own way
            ray_constants = None
        try:
            with _keep_loopback(ray_constants) if keep else contextlib.nullcontext():
                ray.init(address=address, **kwargs)
        except Exception as e:  # Ray raises ConnectionError, RuntimeError, ValueError, ...
            with contextlib.suppress(Exception):
                ray.shutdown()
            raise _init_failure(address, e) from None
    try:
        task = ray.remote(num_cpus=1)(_worker)
        n_workers = max(1, min(n_workers, n_trials))
        shares = [n_trials // n_workers + (i < n_trials % n_workers) for i in range(n_workers)]
        ray.get([task.remote(storage, study_name, seed + i, k, make_objective_args)
                 for i, k in enumerate(shares) if k])
    finally:
        ray.shutdown()
