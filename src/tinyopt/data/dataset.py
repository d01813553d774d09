"""A labelled dataset and its train/validation/test split, with the checks every loader shares.

Loaders return a ``Dataset``; ``split`` cuts it deterministically (stratified, seeded) unless the source
has an official split (FSDD's recording index), in which case the loader fills ``group`` and the caller
picks the split by group.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyopt.errors import DataError


@dataclass
class Dataset:
    """Examples ``x`` (N, ...) float32, integer labels ``y`` (N,), class names, and where it came from.

    ``group`` is an optional per-example tag (e.g. FSDD's recording index) used by official splits.
    """

    x: np.ndarray
    y: np.ndarray
    classes: list[str]
    source: str = "<memory>"
    group: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.x = np.asarray(self.x)
        self.y = np.asarray(self.y, dtype=np.int64)
        if len(self.x) != len(self.y):
            raise DataError(f"{len(self.x)} examples but {len(self.y)} labels", path=self.source,
                            fix="give one label per example")

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, idx) -> Dataset:
        idx = np.asarray(idx)
        return Dataset(self.x[idx], self.y[idx], list(self.classes), self.source,
                       None if self.group is None else self.group[idx], dict(self.meta))

    def balance(self) -> dict[str, int]:
        """Examples per class name, in class order (classes with no example show 0)."""
        counts = np.bincount(self.y, minlength=len(self.classes))
        return {c: int(n) for c, n in zip(self.classes, counts)}


@dataclass
class Splits:
    train: Dataset
    val: Dataset
    test: Dataset

    def items(self):
        return (("train", self.train), ("val", self.val), ("test", self.test))

    def balance_table(self) -> list[dict]:
        """One row per class: counts in train/val/test, so a skewed split is visible at a glance."""
        rows = []
        b = {name: ds.balance() for name, ds in self.items()}
        for c in self.train.classes:
            rows.append({"class": c, **{name: b[name].get(c, 0) for name, _ in self.items()}})
        return rows


def check_dataset(ds: Dataset, min_per_class: int = 2) -> Dataset:
    """Refuse data a classifier cannot learn from: empty, NaN/inf, a class with too few examples."""
    if len(ds) == 0:
        raise DataError("no examples", path=ds.source, fix="point the data source at a folder or file "
                        "that holds labelled examples")
    if np.issubdtype(ds.x.dtype, np.floating) and not np.isfinite(ds.x).all():
        bad = int(np.argwhere(~np.isfinite(ds.x.reshape(len(ds), -1)))[0][0])
        raise DataError(f"example {bad} holds NaN or infinite values", path=ds.source,
                        fix="clean or drop that example")
    counts = np.bincount(ds.y, minlength=len(ds.classes))
    if counts.size > len(ds.classes) or ds.y.min() < 0:
        raise DataError(f"labels outside 0..{len(ds.classes) - 1}", path=ds.source,
                        fix="give one class name per label value")
    few = [(ds.classes[i], int(n)) for i, n in enumerate(counts) if n < min_per_class]
    if few:
        name, n = few[0]
        raise DataError(f"class '{name}' has {n} example(s); at least {min_per_class} are needed to put "
                        f"one in training and one in evaluation", path=ds.source,
                        fix=f"add examples of '{name}' or remove that class")
    if len(ds.classes) < 2:
        raise DataError(f"only one class ({ds.classes[0]!r})", path=ds.source,
                        fix="a classifier needs at least two classes")
    return ds


def split(ds: Dataset, val: float = 0.1, test: float = 0.2, seed: int = 0) -> Splits:
    """Stratified, seeded split: every class appears in train, and in val/test whenever it has enough
    examples (each fraction is rounded per class, with at least one example kept for training)."""
    check_dataset(ds)
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise DataError(f"split fractions val={val}, test={test} must be in [0, 1) and sum below 1",
                        path=ds.source, fix="use e.g. val: 0.1, test: 0.2")
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for c in range(len(ds.classes)):
        idx = np.flatnonzero(ds.y == c)
        idx = idx[rng.permutation(len(idx))]
        n_test = int(round(len(idx) * test)) if test else 0
        n_val = int(round(len(idx) * val)) if val else 0
        n_test = min(n_test, len(idx) - 1)
        n_val = min(n_val, len(idx) - 1 - n_test)
        parts["test"].append(idx[:n_test])
        parts["val"].append(idx[n_test:n_test + n_val])
        parts["train"].append(idx[n_test + n_val:])
    return Splits(*(ds.subset(np.sort(np.concatenate(parts[k]))) for k in ("train", "val", "test")))


def split_by_group(ds: Dataset, test_groups, val: float = 0.1, seed: int = 0) -> Splits:
    """An official split: examples whose group is in ``test_groups`` are the test set; the rest is cut
    into train/val by ``split``."""
    check_dataset(ds)
    if ds.group is None:
        raise DataError("this source has no official split", path=ds.source,
                        fix="use split: random (with val/test fractions)")
    is_test = np.isin(ds.group, list(test_groups))
    if not is_test.any() or is_test.all():
        raise DataError(f"the official split puts {int(is_test.sum())} of {len(ds)} examples in test",
                        path=ds.source, fix="check the file names follow the dataset's naming scheme")
    rest = split(ds.subset(np.flatnonzero(~is_test)), val=val, test=0.0, seed=seed)
    return Splits(rest.train, rest.val, ds.subset(np.flatnonzero(is_test)))
