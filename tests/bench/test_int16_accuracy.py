"""bench/int16_accuracy.py on one seed and one epoch: both conversions equal TFLM on every held-out image,
and 16x8 shrinks the activations' share of the error (against the float model with int8 weights)."""

from __future__ import annotations

import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import int16_accuracy as bench

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_one_seed(capsys):
    assert bench.main(["--seeds", "1", "--epochs", "1", "--no-m4"]) == 0
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 0 |")][0]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[11] == "0 / 0"  # TFLM mismatches, int8 / 16x8
    assert float(cells[10]) < 0.2  # 16x8's activation error, as a share of int8's
