"""The compressed-model container: exact round trip, hand-computed sizes, and damaged files."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from tinyopt.compress.coding import encode_shared
from tinyopt.compress.container import load_compressed, pack, save_compressed
from tinyopt.errors import ConfigError, ModelFormatError


def _layers():
    rng = np.random.default_rng(0)
    cb = np.concatenate([[0], rng.normal(size=31)]).astype(np.float32)
    labels = rng.integers(1, 32, size=(20, 30))
    labels[rng.random(labels.shape) < 0.85] = 0
    return {
        "fc1.weight": encode_shared(cb, labels, 5, 5),
        "fc1.bias": rng.normal(size=20).astype(np.float32),
        "conv.weight": encode_shared(cb[1:9].copy(), rng.integers(0, 8, size=(4, 2, 3, 3)), 3),
        "half": rng.normal(size=(3, 4)).astype(np.float16),
        "q": rng.integers(-128, 128, size=7).astype(np.int8),
        "i32": rng.integers(-1000, 1000, size=(2, 2)).astype(np.int32),
    }, cb, labels


def test_round_trip_exact(tmp_path):
    layers, cb, labels = _layers()
    path = tmp_path / "m.topz"
    n = save_compressed(path, layers)
    data, sizes = pack(layers)
    assert n == path.stat().st_size == len(data) == 9 + sum(sizes.values())
    back = load_compressed(path)
    assert list(back) == list(layers)
    assert np.array_equal(back["fc1.weight"], cb[labels])
    for k in ("fc1.bias", "half", "q", "i32"):
        assert back[k].dtype == layers[k].dtype and np.array_equal(back[k], layers[k])
    assert back["conv.weight"].shape == (4, 2, 3, 3)
    # same input, same bytes
    assert pack(layers)[0] == path.read_bytes()


def test_raw_record_size_by_hand(tmp_path):
    # record: name_len 2 + name 1 + kind 1 + body_len 4 + body (dtype 1 + ndim 1 + dim 4 + 3*4 data)
    # + crc 4 = 30 bytes; file = magic 4 + version 1 + count 4 + 30 = 39 bytes.
    data, sizes = pack({"b": np.array([1.0, 2.0, 3.0], dtype=np.float32)})
    assert sizes == {"b": 30} and len(data) == 39
    assert data[:9] == b"TOPZ" + struct.pack("<BI", 1, 1)


def test_every_truncation_is_a_clear_error(tmp_path):
    layers, _, _ = _layers()
    data, _ = pack(layers)
    path = tmp_path / "cut.topz"
    for cut in range(0, len(data), 7):
        path.write_bytes(data[:cut])
        with pytest.raises(ModelFormatError) as e:
            load_compressed(path)
        msg = str(e.value)
        assert str(path) in msg and "Fix:" in msg
        if cut > 40:
            assert "record" in msg


def test_corrupt_byte_fails_crc_naming_the_record(tmp_path):
    data, sizes = pack(_layers()[0])
    bad = bytearray(data)
    bad[9 + sizes["fc1.weight"] + 20] ^= 0xFF  # inside the second record
    path = tmp_path / "bad.topz"
    path.write_bytes(bytes(bad))
    with pytest.raises(ModelFormatError, match=r"record 1 \('fc1.bias'\): CRC32 mismatch"):
        load_compressed(path)


def _record(name: bytes, kind: int, body: bytes) -> bytes:
    rec = struct.pack("<H", len(name)) + name + struct.pack("<BI", kind, len(body)) + body
    return rec + struct.pack("<I", zlib.crc32(rec[2:]))


@pytest.mark.parametrize("data,match", [
    (b"PK\x03\x04" + b"\0" * 20, "bad magic"),
    (b"TOPZ" + struct.pack("<BI", 9, 0), "version 9"),
    (b"TOPZ" + struct.pack("<BI", 1, 4_000_000_000), "file ends before record 0"),
    (b"TOPZ" + struct.pack("<BI", 1, 1) + struct.pack("<H", 60000) + b"\0" * 20, "name length 60000"),
    (b"TOPZ" + struct.pack("<BI", 1, 1) + struct.pack("<H", 1) + b"w" + struct.pack("<BI", 0, 0xFFFFFFFF)
     + b"\0" * 8, "body length 4294967295 exceeds"),
    # valid CRC, raw record claiming 2**32-1 x 2**32-1 floats in 8 bytes: refused, nothing allocated
    (b"TOPZ" + struct.pack("<BI", 1, 1) + _record(b"w", 0, struct.pack("<BB2I", 0, 2, 2**32 - 1, 2**32 - 1)
                                                     + b"\0" * 8), "needs"),
    # four dims of 2**32-1: the product wraps around in int64 arithmetic; counted exactly, it is refused
    (b"TOPZ" + struct.pack("<BI", 1, 1) + _record(b"w", 0, struct.pack("<BB4I", 0, 4, *[2**32 - 1] * 4)),
     "needs"),
    (b"TOPZ" + struct.pack("<BI", 1, 1) + _record(b"w", 7, b""), "unknown record kind 7"),
    (b"TOPZ" + struct.pack("<BI", 1, 2) + _record(b"w", 0, b"\0\0\0\0\0\0") * 2, "duplicate"),
    (b"TOPZ" + struct.pack("<BI", 1, 0) + b"junk", "unexpected bytes"),
])
def test_hostile_files(tmp_path, data, match):
    path = tmp_path / "evil.topz"
    path.write_bytes(data)
    with pytest.raises(ModelFormatError, match=match) as e:
        load_compressed(path)
    assert str(path) in str(e.value)


def test_missing_file_and_failed_save_keeps_old_file(tmp_path):
    with pytest.raises(ModelFormatError, match="not found"):
        load_compressed(tmp_path / "nope.topz")
    path = tmp_path / "m.topz"
    save_compressed(path, {"a": np.zeros(2, dtype=np.float32)})
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="float64"):
        save_compressed(path, {"a": np.zeros(2, dtype=np.float32), "b": np.zeros(2)})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.topz"]  # no temporary left behind
