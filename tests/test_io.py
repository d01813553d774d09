"""Crash-safe writes: a writer killed at any point leaves the old file or the complete new one."""

import os
import random
import signal
import subprocess
import sys
import time

from tinyopt._io import TMP_PREFIX, atomic_dir, atomic_write_bytes, sweep_stale

SIZE = 1 << 19
_CHILD = f"""
import sys
from pathlib import Path
from tinyopt._io import atomic_dir, atomic_write_bytes
target, kind = Path(sys.argv[1]), sys.argv[2]
print("ready", flush=True)
for i in range(1, 10**9):
    data = bytes([i % 251]) * {SIZE}
    if kind == "file":
        atomic_write_bytes(target, data)
    else:
        with atomic_dir(target) as d:
            for k in range(4):
                (d / f"part{{k}}.bin").write_bytes(data[: {SIZE} // 4])
"""


def _complete_file(p) -> bool:
    b = p.read_bytes()
    return len(b) == SIZE and b == bytes([b[0]]) * SIZE


def _complete_dir(p) -> bool:
    parts = sorted(p.iterdir())
    if [q.name for q in parts] != [f"part{k}.bin" for k in range(4)]:
        return False
    first = parts[0].read_bytes()
    return len(first) == SIZE // 4 and all(q.read_bytes() == first for q in parts) and len(set(first)) == 1


def _kill_runs(tmp_path, kind, runs, sig):
    rng = random.Random(1234)
    target = tmp_path / ("model.bin" if kind == "file" else "lib")
    if kind == "file":
        atomic_write_bytes(target, b"\x00" * SIZE)
    else:
        with atomic_dir(target) as d:
            for k in range(4):
                (d / f"part{k}.bin").write_bytes(b"\x00" * (SIZE // 4))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    bad = 0
    for _ in range(runs):
        child = subprocess.Popen([sys.executable, "-c", _CHILD, str(target), kind],
                                 stdout=subprocess.PIPE, env=env)
        child.stdout.readline()  # imported and about to write
        time.sleep(rng.uniform(0, 0.03))
        child.send_signal(sig)
        child.wait()
        ok = _complete_file(target) if kind == "file" else _complete_dir(target)
        bad += not ok
        sweep_stale(tmp_path)
        stray = [p.name for p in tmp_path.iterdir() if p.name.startswith(TMP_PREFIX)]
        assert not stray, f"temporaries left after sweep: {stray}"
    return bad


def test_sigkill_200_file_writes_leave_no_partial_file(tmp_path):
    assert _kill_runs(tmp_path, "file", 200, signal.SIGKILL) == 0


def test_sigkill_folder_writes_leave_old_or_new_folder(tmp_path):
    assert _kill_runs(tmp_path, "dir", 60, signal.SIGKILL) == 0


def test_failed_write_leaves_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write_bytes(target, b"old")

    class Boom(Exception):
        pass

    try:
        with atomic_dir(tmp_path / "d") as d:
            (d / "x").write_text("half")
            raise Boom
    except Boom:
        pass
    assert not (tmp_path / "d").exists()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_sweep_leaves_live_writers_alone(tmp_path):
    live = tmp_path / f"{TMP_PREFIX}{os.getpid()}-abc"
    live.write_text("x")
    dead = tmp_path / f"{TMP_PREFIX}999999999-abc"
    dead.write_text("x")
    assert sweep_stale(tmp_path) == 1
    assert live.exists() and not dead.exists()


_MODES_CHILD = """
import os, stat, sys
from pathlib import Path
import numpy as np
from tinyopt._io import atomic_dir, atomic_path, atomic_write_bytes
os.umask(int(sys.argv[2], 8))
out = Path(sys.argv[1])
atomic_write_bytes(out / "model.tflite", b"TFL3")
atomic_write_bytes(out / "model.tflite", b"TFL3 again")  # replacing keeps the umask mode too
with atomic_path(out / "y.npy", suffix=".npy") as tmp:
    np.save(tmp, np.zeros(3))
with atomic_dir(out / "lib") as d:
    (d / "model.c").write_text("x")
for name in ("model.tflite", "y.npy", "lib", "lib/model.c"):
    print(name, oct(stat.S_IMODE((out / name).stat().st_mode)))
"""


def test_written_files_and_folders_follow_the_umask(tmp_path):
    """mkstemp/mkdtemp alone give 0600/0700; an artifact must get what open()/mkdir() would give:
    0666 & ~umask for files, 0777 & ~umask for folders (0644/0755 under umask 022)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for umask, file_mode, dir_mode in (("022", 0o644, 0o755), ("002", 0o664, 0o775), ("077", 0o600, 0o700)):
        out = tmp_path / umask
        out.mkdir()
        res = subprocess.run([sys.executable, "-c", _MODES_CHILD, str(out), umask],
                             capture_output=True, text=True, env=env, check=True)
        modes = dict(line.split() for line in res.stdout.splitlines())
        assert modes == {"model.tflite": oct(file_mode), "y.npy": oct(file_mode),
                         "lib": oct(dir_mode), "lib/model.c": oct(file_mode)}, (umask, modes)
