"""Metrics against scikit-learn and a hand-counted imbalanced example."""

import numpy as np
import pytest
import torch
from sklearn import metrics as skm
from torch import nn

from tinyopt.errors import DataError
from tinyopt.metrics import classification_metrics, evaluate


def test_hand_counted_imbalanced():
    # 8 of class 0, 2 of class 1; the model always says 0: accuracy 0.8 looks fine, recall of 1 is 0
    y = [0] * 8 + [1] * 2
    m = classification_metrics(y, [0] * 10)
    assert m.accuracy == 0.8
    assert m.recall.tolist() == [1.0, 0.0] and m.precision.tolist() == [0.8, 0.0]
    assert m.f1[0] == pytest.approx(2 * 0.8 / 1.8) and m.f1[1] == 0.0
    assert m.confusion.tolist() == [[8, 0], [2, 0]]


def test_matches_sklearn():
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 5, 300), rng.integers(0, 5, 300)
    m = classification_metrics(y, p)
    pr, rc, f1, sup = skm.precision_recall_fscore_support(y, p, zero_division=0)
    assert np.allclose(m.precision, pr) and np.allclose(m.recall, rc) and np.allclose(m.f1, f1)
    assert np.array_equal(m.confusion, skm.confusion_matrix(y, p)) and np.array_equal(m.support, sup)
    assert m.accuracy == skm.accuracy_score(y, p)
    assert m.to_dict()["macro_f1"] == pytest.approx(skm.f1_score(y, p, average="macro"))


def test_evaluate_model_pairs_and_batches():
    torch.manual_seed(0)
    model = nn.Linear(3, 4)
    x = torch.randn(50, 3)
    y = model(x).argmax(1)
    y[:5] = (y[:5] + 1) % 4  # five wrong on purpose
    a = evaluate(model, (x, y))
    b = evaluate(model, [(x[:20], y[:20]), (x[20:], y[20:])])
    assert a.accuracy == b.accuracy == 45 / 50
    assert np.array_equal(a.confusion, b.confusion)


def test_bad_inputs():
    with pytest.raises(DataError, match="no samples"):
        classification_metrics([], [])
    with pytest.raises(DataError, match="one prediction per label"):
        classification_metrics([0, 1], [0])
    with pytest.raises(DataError, match="no batches"):
        evaluate(nn.Linear(2, 2), [])
    with pytest.raises(DataError, match="non-negative integers"):
        classification_metrics([0.5, 1], [0, 1])
