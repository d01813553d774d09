"""The README's walkthrough runs as written: its ten-line net.py is the file in examples/walkthrough, and
its commands (train, then analyze, compress, convert, check, deploy) run in a scratch folder one after
the other, ending in a C library whose int8 model predicts what the trained float model predicts."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT

pytestmark = pytest.mark.usefixtures("one_torch_thread")
README = ROOT / "README.md"


def section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Walkthrough: from my trained PyTorch model to a C library on my board")
    end = text.index("\n## ", start + 3)
    return text[start:end]


def commands() -> list[list[str]]:
    block = re.search(r"```console\n(.*?)```", section(), flags=re.S).group(1)
    joined = block.replace("\\\n", " ")
    return [shlex.split(line[2:]) for line in joined.splitlines() if line.startswith("$ ")]


def test_the_shown_model_is_the_file_and_ten_lines():
    shown = re.search(r"```py\n(.*?)```", section(), flags=re.S).group(1)
    net = (ROOT / "examples" / "walkthrough" / "net.py").read_text()
    assert shown == net
    code = [ln for ln in net.splitlines() if ln.strip() and not ln.lstrip().startswith(('"""', "#"))]
    assert len(code) <= 10


def test_five_commands_from_model_to_library():
    verbs = [c[1] for c in commands() if c[0] == "tinyopt"]
    assert verbs == ["analyze", "compress", "convert", "check", "deploy"]


def test_walkthrough_runs_as_written(tmp_path, monkeypatch, capsys):
    from tinyopt.cli import main

    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    for cmd in commands():
        if cmd[0] == "python":
            done = subprocess.run([sys.executable, *cmd[1:]], capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, done.stderr[-2000:]
        else:
            assert cmd[0] == "tinyopt"
            assert main(cmd[1:]) == 0, (cmd, capsys.readouterr().err[-2000:])
    out = capsys.readouterr().out
    assert "FITS" in out and "of 7 operators supported on tflm-reference" in out
    lib = tmp_path / "net-c"
    assert (lib / "tinyopt_model.c").is_file() and (lib / "tinyopt_model.h").is_file()

    # the int8 model (numpy runtime, bit-exact with TFLM) agrees with the trained float model
    import torch
    from sklearn.datasets import load_digits

    from tinyopt.graph import load_model
    from tinyopt.runtime import Interpreter

    sys.path.insert(0, str(ROOT / "examples" / "walkthrough"))
    try:
        from net import make
    finally:
        sys.path.pop(0)
    net = make()
    net.load_state_dict(torch.load(tmp_path / "net.pt", weights_only=True))
    x = (load_digits().images / 16.0).astype(np.float32)
    with torch.no_grad():
        float_pred = net.eval()(torch.from_numpy(x[:, None])).argmax(1).numpy()
    g = load_model(tmp_path / "net-int8.tflite")
    q = g.tensors[g.inputs[0]].quant
    xq = np.clip(np.round(x[..., None] / q.scale[0]) + q.zero_point[0], -128, 127).astype(np.int8)
    int8_pred = Interpreter(g).run([xq])[0].reshape(len(x), -1).argmax(1)
    assert (int8_pred == float_pred).mean() >= 0.97
