"""Classification metrics: accuracy alone misleads on imbalanced data, so every evaluation also gives
per-class precision, recall, F1 and the confusion matrix.

``classification_metrics(y_true, y_pred)`` works on plain arrays (any stage can use it);
``evaluate(model, data)`` runs a PyTorch model over ``(x, y)`` in batches first.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from tinyopt.errors import DataError


@dataclass
class Metrics:
    accuracy: float
    precision: np.ndarray  # per class; 0 where the class was never predicted
    recall: np.ndarray  # per class; 0 where the class never occurs
    f1: np.ndarray
    support: np.ndarray  # true count per class
    confusion: np.ndarray  # rows: true class, columns: predicted class

    @property
    def macro_f1(self) -> float:
        return float(self.f1.mean()) if self.f1.size else 0.0

    def to_dict(self) -> dict:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in asdict(self).items()} | {
            "macro_f1": self.macro_f1}


def classification_metrics(y_true, y_pred, num_classes: int | None = None) -> Metrics:
    y_true = np.asarray(y_true).reshape(-1)
    y_pred = np.asarray(y_pred).reshape(-1)
    if y_true.size == 0:
        raise DataError("no samples to evaluate", where="metrics", fix="give a non-empty validation set")
    if y_true.shape != y_pred.shape:
        raise DataError(f"{y_true.size} labels but {y_pred.size} predictions", where="metrics",
                        fix="give one prediction per label")
    for name, a in (("labels", y_true), ("predictions", y_pred)):
        if not np.issubdtype(a.dtype, np.integer) or a.min() < 0:
            raise DataError(f"{name} must be non-negative integers", where="metrics",
                            fix="pass class indices, not one-hot vectors or scores")
    n = int(max(y_true.max(), y_pred.max()) + 1) if num_classes is None else num_classes
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    tp = np.diag(cm).astype(np.float64)
    predicted, actual = cm.sum(0), cm.sum(1)
    precision = np.divide(tp, predicted, out=np.zeros(n), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros(n), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(n), where=denom > 0)
    return Metrics(float(tp.sum() / cm.sum()), precision, recall, f1, actual, cm)


def predict(model, x, batch_size: int = 512):
    """Arg-max class of ``model`` over ``x`` in eval mode, without gradients."""
    import torch

    x = torch.as_tensor(x, dtype=torch.float32)
    was_training = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out.append(model(x[i:i + batch_size]).argmax(1))
    model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros(0, np.int64)


def evaluate(model, data, batch_size: int = 512, num_classes: int | None = None) -> Metrics:
    """Metrics of ``model`` on ``data``: a pair ``(x, y)`` (arrays or tensors) or an iterable of
    ``(x, y)`` batches such as a DataLoader."""
    if isinstance(data, tuple) and len(data) == 2 and not isinstance(data[0], tuple):
        x, y = data
        if len(x) == 0:
            raise DataError("no samples to evaluate", where="evaluate", fix="give a non-empty validation set")
        pred = predict(model, x, batch_size)
        y = np.asarray(y)
    else:
        preds, ys = [], []
        for xb, yb in data:
            preds.append(predict(model, xb, batch_size))
            ys.append(np.asarray(yb))
        if not preds:
            raise DataError("no batches to evaluate", where="evaluate", fix="give a non-empty validation set")
        pred, y = np.concatenate(preds), np.concatenate(ys)
    return classification_metrics(y.astype(np.int64), pred.astype(np.int64), num_classes)


__all__ = ["Metrics", "classification_metrics", "evaluate", "predict"]
