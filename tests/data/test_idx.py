import gzip

import numpy as np
import pytest
from tests.conftest import MNIST, need

from tinyopt.data.idx import load_idx, load_mnist
from tinyopt.data.sources import load_mnist_dataset
from tinyopt.errors import DataError


def idx_bytes(arr: np.ndarray) -> bytes:
    """An IDX file by hand: 0, 0, type 0x08 (uint8), ndim, big-endian dims, then the bytes."""
    head = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return head + arr.astype(np.uint8).tobytes()


def test_round_trip_plain_and_gzip(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a.idx").write_bytes(idx_bytes(a))
    (tmp_path / "a.idx.gz").write_bytes(gzip.compress(idx_bytes(a)))
    np.testing.assert_array_equal(load_idx(tmp_path / "a.idx"), a)
    np.testing.assert_array_equal(load_idx(tmp_path / "a.idx.gz"), a)


def test_truncated_and_bad_magic(tmp_path):
    a = np.zeros((2, 3), np.uint8)
    (tmp_path / "t.idx").write_bytes(idx_bytes(a)[:-1])
    with pytest.raises(DataError, match=r"declares \[2, 3\] \(6 bytes\) but 5 bytes follow"):
        load_idx(tmp_path / "t.idx")
    (tmp_path / "m.idx").write_bytes(b"\x01\x00\x08\x01" + bytes(8))
    with pytest.raises(DataError, match="bad magic"):
        load_idx(tmp_path / "m.idx")
    (tmp_path / "g.idx.gz").write_bytes(b"\x1f\x8b" + b"junk")
    with pytest.raises(DataError, match="corrupt gzip"):
        load_idx(tmp_path / "g.idx.gz")


def test_real_mnist_test_set():
    x, y = load_mnist(need(MNIST))
    assert x.shape == (10000, 28, 28) and y.shape == (10000,)
    # the MNIST test set's published class counts: 980 zeros ... 1,009 nines
    assert np.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    ds = load_mnist_dataset(MNIST)
    assert ds.x.shape == (10000, 28, 28, 1) and ds.x.max() == 1.0
