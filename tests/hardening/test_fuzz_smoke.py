"""CI smoke of the fuzz harnesses: seeded byte mutations of the corpus through every target, in-process.

The full coverage-guided campaign (atheris, 100,000 executions per target) is ``make fuzz``; this runs
2,000 deterministic mutations per target (300 for pt and pipeline, 1,000 for onnx; about 7 s in
all) so a regression that lets a raw exception escape is
caught by the normal test run. Only ``TinyoptError`` may come out (plus the known bugs listed in
``tests/fuzz/harness.py``, which are in files this work may not edit).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fuzz.harness import KNOWN_BUGS, TARGETS, mutate, seeds, target

from tinyopt.errors import TinyoptError

RUNS = {"pipeline": 300, "pt": 300, "onnx": 1000}  # the slower targets; the rest get DEFAULT_RUNS
DEFAULT_RUNS = 2000


@pytest.mark.parametrize("name", list(TARGETS))
def test_mutated_inputs_raise_only_tinyopt_errors(name):
    fn, pool = target(name), seeds(name)
    rng = np.random.default_rng(sum(map(ord, name)))
    runs, rejected = RUNS.get(name, DEFAULT_RUNS), 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k in range(runs):
            data = mutate(pool[k % len(pool)] if k % 3 else pool[0], rng)
            try:
                fn(data)
            except TinyoptError as e:
                rejected += 1
                assert "\n" not in str(e)
            except KNOWN_BUGS.get(name, ()):
                pass
            except Exception as e:  # the failure this test exists to report
                raise AssertionError(f"{name}: {type(e).__name__}: {e} on input {data[:64]!r}...") from None
    assert rejected > 0  # the mutations do reach the checks
