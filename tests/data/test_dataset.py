import numpy as np
import pytest

from tinyopt.data.dataset import Dataset, check_dataset, split, split_by_group
from tinyopt.data.sources import load_digits, load_npz
from tinyopt.errors import DataError


def _ds(counts, classes=None):
    y = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
    x = np.arange(len(y), dtype=np.float32)[:, None]
    return Dataset(x, y, classes or [f"c{i}" for i in range(len(counts))], "mem")


def test_split_is_stratified_with_hand_counts():
    # class 0: 10 examples → test round(2.0)=2, val round(1.0)=1, train 7;
    # class 1: 5 examples → test round(1.0)=1, val round(0.5)=0 (banker's rounding), train 4.
    s = split(_ds([10, 5]), val=0.1, test=0.2, seed=0)
    assert s.train.balance() == {"c0": 7, "c1": 4}
    assert s.val.balance() == {"c0": 1, "c1": 0}
    assert s.test.balance() == {"c0": 2, "c1": 1}
    ids = np.concatenate([s.train.x[:, 0], s.val.x[:, 0], s.test.x[:, 0]])
    assert sorted(ids.tolist()) == list(range(15))  # a partition: nothing lost, nothing twice


def test_split_is_deterministic_per_seed():
    a, b, c = (split(_ds([20, 20]), seed=s) for s in (1, 1, 2))
    assert np.array_equal(a.test.x, b.test.x)
    assert not np.array_equal(a.test.x, c.test.x)


def test_balance_table_rows():
    rows = split(_ds([10, 5]), val=0.1, test=0.2).balance_table()
    assert rows == [{"class": "c0", "train": 7, "val": 1, "test": 2},
                    {"class": "c1", "train": 4, "val": 0, "test": 1}]


def test_label_with_one_example_is_refused():
    with pytest.raises(DataError, match="class 'c1' has 1 example"):
        split(_ds([5, 1]))


def test_empty_and_nan_are_refused():
    with pytest.raises(DataError, match="no examples"):
        check_dataset(Dataset(np.zeros((0, 2)), np.zeros(0), ["a", "b"], "mem"))
    ds = _ds([3, 3])
    ds.x[4, 0] = np.nan
    with pytest.raises(DataError, match="example 4 holds NaN"):
        check_dataset(ds)


def test_split_by_group_keeps_the_official_test_set():
    ds = _ds([10, 10])
    ds.group = np.tile(np.arange(10), 2)
    s = split_by_group(ds, test_groups=range(5), val=0.0)
    assert sorted(set(s.test.group.tolist())) == [0, 1, 2, 3, 4]
    assert len(s.test) == 10 and len(s.train) == 10


def test_digits_shape_and_range():
    ds = load_digits()
    assert ds.x.shape == (1797, 8, 8, 1) and ds.x.dtype == np.float32
    assert ds.x.max() == 1.0 and ds.x.min() == 0.0  # sklearn stores 0..16, we divide by 16


def test_npz_round_trip_and_refusals(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, x=np.ones((4, 3)), y=np.array([0, 1, 0, 1]), classes=np.array(["no", "yes"]))
    ds = load_npz(p)
    assert ds.classes == ["no", "yes"] and ds.x.shape == (4, 3)
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}], dtype=object), y=np.array([0]))
    with pytest.raises(DataError, match="not a readable .npz"):
        load_npz(tmp_path / "obj.npz")
    np.savez(tmp_path / "nolabel.npz", x=np.ones((2, 2)))
    with pytest.raises(DataError, match="no array 'y'"):
        load_npz(tmp_path / "nolabel.npz")
