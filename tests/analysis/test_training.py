"""Training memory = weights + gradients + optimizer states + stored activations × batch."""

from __future__ import annotations

import pytest

from conftest import ROOT
from tinyopt.analysis.training import stored_activation_bytes, training_memory
from tinyopt.errors import ConfigError
from tinyopt.graph import load_model

EXAM = ROOT / "examples" / "specs" / "exam.yaml"

# Exam activations, float32: input 128²×1, conv1 126²×16, pool 63²×16, conv2 61²×32, pool 30²×32,
# flatten 28,800, dense 3, softmax 3 (elements).
EXAM_ACT_ELEMS = 128 * 128 + 126 * 126 * 16 + 63 * 63 * 16 + 61 * 61 * 32 + 30 * 30 * 32 + 28800 + 3 + 3


@pytest.mark.parametrize("opt,states", [("sgd", 0), ("momentum", 1), ("adam", 2)])
def test_exam_training_memory_by_hand(opt, states):
    g = load_model(EXAM)
    tm = training_memory(g, 91203, opt, batch=8)
    w = 91203 * 4
    assert tm.weights_bytes == w and tm.gradients_bytes == w and tm.optimizer_bytes == states * w
    assert tm.activations_bytes == EXAM_ACT_ELEMS * 4 * 8
    assert tm.total_bytes == (2 + states) * w + EXAM_ACT_ELEMS * 4 * 8
    assert tm.to_dict()["total_bytes"] == tm.total_bytes
    lines = tm.explain(91203, 4, EXAM_ACT_ELEMS * 4)
    assert lines[-1] == f"training total = {tm.total_bytes:,} B"


def test_training_needs_far_more_than_inference():
    g = load_model(EXAM)
    # Why (the seeds' question): inference needs params + the largest live activations; training keeps
    # every activation, gradients and optimizer state.
    inference = 91203 * 4 + 126 * 126 * 16 * 4
    assert training_memory(g, 91203, "adam").total_bytes > 2 * inference
    assert stored_activation_bytes(g) == EXAM_ACT_ELEMS * 4


@pytest.mark.parametrize("kwargs", [{"optimizer": "rmsprop"}, {"batch": 0}, {"batch": -2}, {"batch": 1.5}])
def test_bad_training_options(kwargs):
    with pytest.raises(ConfigError):
        training_memory(load_model(EXAM), 10, **kwargs)
