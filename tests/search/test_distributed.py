"""tune through a real Ray head on this machine's loopback, and clean one-line failures from ray.init."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from tinyopt.cli import main
from tinyopt.errors import ToolchainError
from tinyopt.search.distributed import _init_failure, _listens_on_loopback_only

PROJECT = """
name: t
data: {source: digits, val: 0.15, test: 0.2}
target: {device: nano33ble}
search:
  width: {type: int, low: 2, high: 4}
  depth: {type: int, low: 1, high: 1}
"""


def _free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def ray_head(**env):
    """`ray start --head` on 127.0.0.1 only, in its own process group and temp folder; killed at the end
    by that group's id (never `ray stop`, which would stop every Ray on the machine)."""
    pytest.importorskip("ray")
    port = _free_loopback_port()
    temp = tempfile.mkdtemp(prefix="tinyopt-ray-")  # short: Ray's socket paths must fit 107 bytes
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0", **env}
    cmd = [str(Path(sys.executable).with_name("ray")), "start", "--head", "--node-ip-address", "127.0.0.1",
           "--port", str(port), "--num-cpus", "2", "--include-dashboard", "false", "--disable-usage-stats",
           "--temp-dir", temp]
    starter = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        log, _ = starter.communicate(timeout=120)
        assert starter.returncode == 0, log
        yield port, Path(temp)
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(starter.pid, sig)
            time.sleep(1)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture
def project(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text(PROJECT)
    return p


def test_two_trials_run_on_a_head_listening_on_loopback_only(project, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with ray_head(RAY_AUTH_MODE="disabled") as (port, temp):
        # the head took 127.0.0.1 (the variable makes Ray honour --node-ip-address), nothing else
        assert _listens_on_loopback_only(port)
        assert main(["tune", str(project), "--trials", "2", "--epochs", "1", "--ray", f"127.0.0.1:{port}",
                     "--storage", f"sqlite:///{tmp_path / 's.db'}", "--out", str(tmp_path / "o"),
                     "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["trials"] == 2
        # the trials ran in worker processes the head started, not in this process
        workers = list(temp.glob("session_*/logs/worker-*"))
        assert workers, sorted(p.name for p in temp.glob("session_*/logs/*"))


def test_head_that_wants_a_token_gives_one_line_naming_address_and_fix(project, tmp_path, capsys,
                                                                       monkeypatch):
    for var in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RAY_gcs_server_port_wait_time_s", "2")  # Ray's own retry budget, 20 s by default
    with ray_head(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=uuid.uuid4().hex) as (port, _):
        code = main(["tune", str(project), "--trials", "2", "--epochs", "1", "--ray", f"127.0.0.1:{port}",
                     "--storage", f"sqlite:///{tmp_path / 's.db'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert f"Ray cluster at 127.0.0.1:{port} requires token authentication" in err[-1]
    assert "Fix: run tinyopt with RAY_AUTH_MODE=token" in err[-1] and "Traceback" not in "\n".join(err)


def test_connection_failure_names_the_given_and_the_dialed_address():
    """Ray on Linux swaps 127.0.0.1 for the machine's address; the message shows both."""
    try:
        try:
            raise RuntimeError("Failed to connect to GCS. Last connection error: timed out")
        except RuntimeError as inner:
            raise ConnectionError("Failed to connect to Ray cluster at 192.0.2.2:6379") from inner
    except ConnectionError as e:
        err = _init_failure("127.0.0.1:6379", e)
    assert isinstance(err, ToolchainError)
    text = str(err)
    assert text.startswith("could not connect to the Ray cluster at 127.0.0.1:6379 (Ray "
                           "dialed 192.0.2.2:6379)")
    assert "--node-ip-address 127.0.0.1 --port 6379" in text and "\n" not in text
