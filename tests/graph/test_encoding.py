"""graph.encoding: the smallest lossless encoding of an int8 weight, and TFLM's int4 / lookup-table forms."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from tinyopt.errors import ModelFormatError
from tinyopt.graph import encoding as enc
from tinyopt.graph.ir import Encoding, QuantParams, Tensor


def test_doctests():
    assert doctest.testmod(enc).failed == 0


@pytest.mark.parametrize("values, axis, want", [
    ([[-7, 0, 7, 3, 5], [1, -8, 2, -1, 4]], None, Encoding(4)),         # a 4-bit grid: the values themselves
    ([[-1, 0, 1, 1], [0, 0, -1, 1]], None, Encoding(2)),  # ternary fits int2 (2 bits < codebook 2)
    ([[-100, 50, 60, 100], [7, 7, 7, 7]], None, Encoding(3, True)),       # 5 shared values: 3-bit indices
    ([[-100, 50, 50, 100], [7, 8, 9, 10]], 0, Encoding(2, True)),         # per channel: at most 4 values each
    ([[0, 0, 0, 90], [0, -90, 0, 0]], None, Encoding(2, True, True)),     # pruned and shared
])
def test_find_encoding(values, axis, want):
    assert enc.find_encoding(np.array(values, np.int8), axis) == want


def test_plain_int8_weights_have_no_encoding_and_sparse_int8_keeps_8_bits():
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, size=(16, 64)).astype(np.int8)
    assert enc.find_encoding(w) is None
    w[rng.random(w.shape) < 0.8] = 0
    assert enc.find_encoding(w) == Encoding(8, False, True)


@pytest.mark.parametrize("count", [1, 2, 7, 64])
def test_int4_round_trip_matches_tflm_nibble_order(count):
    q = np.random.default_rng(count).integers(-8, 8, size=count).astype(np.int8)
    raw = enc.pack_int4(q)
    assert len(raw) == (count + 1) // 2
    # element 0 in the low nibble of byte 0 (TFLM's UnpackDenseInt4IntoInt8)
    assert raw[0] & 0xF == int(q[0]) & 0xF
    np.testing.assert_array_equal(enc.unpack_int4(raw, count), q)


@pytest.mark.parametrize("bits", [1, 3, 4, 7])
def test_index_bits_pack_high_bits_first(bits):
    idx = np.random.default_rng(bits).integers(0, 1 << bits, size=37)
    raw = enc.pack_bits(idx, bits)
    assert len(raw) == (37 * bits + 7) // 8
    np.testing.assert_array_equal(enc.unpack_bits(raw, 37, bits), idx)
    first = int.from_bytes(raw[:2], "big") >> (16 - bits)  # the first field is the top bits of byte 0
    assert first == idx[0]


@pytest.mark.parametrize("shape, axis", [((5, 3, 3, 2), 0), ((1, 3, 3, 6), 3), ((6, 10), None)])
def test_lookup_tables_decode_to_the_values(shape, axis):
    rng = np.random.default_rng(1)
    q = rng.choice(np.array([-90, -3, 0, 12, 77], np.int8), size=shape)
    tables, idx = enc.lut_tables(q, axis)
    assert tables.shape[0] == (1 if axis is None else shape[axis])
    bits = enc.index_bits(tables.shape[1])
    back = enc.decode_lut(enc.pack_bits(idx, bits), tables.astype(np.int8).tobytes(), shape, bits, axis)
    np.testing.assert_array_equal(back, q)


def test_decode_lut_refuses_an_index_past_its_table():
    with pytest.raises(ValueError, match="past the"):
        enc.decode_lut(enc.pack_bits(np.array([0, 3]), 2), np.int8([1, 2, 3]).tobytes(), (2,), 2, None)


def test_check_names_the_tensor_whose_values_do_not_fit():
    t = Tensor("conv/w", (2, 2), "int8", data=np.int8([[9, 0], [1, 2]]), encoding=Encoding(4))
    with pytest.raises(ModelFormatError, match="conv/w.*outside int4"):
        enc.check(t)
    t.encoding = Encoding(1, True)
    with pytest.raises(ModelFormatError, match="needs 4 values"):
        enc.check(t)
    t.encoding = Encoding(2, True)
    enc.check(t)


def test_tflite_form_follows_what_tflm_runs():
    w = np.int8([[1, -2, 3, 0], [7, -8, 0, 1]])
    per_channel = QuantParams([0.1, 0.2], [0, 0], 0)
    t = Tensor("w", w.shape, "int8", data=w, quant=QuantParams(0.1, 0), encoding=Encoding(4))
    assert enc.tflite_form(t, ["FULLY_CONNECTED"])[0] == "int4"  # per-tensor dense: INT4
    t.quant = per_channel
    assert enc.tflite_form(t, ["CONV_2D"])[0] == "int4"
    assert enc.tflite_form(t, ["FULLY_CONNECTED"])[0] == "int8"  # TFLM refuses per-channel int4 dense;
    # here a per-channel lookup table would be larger than the int8 bytes, so it stays int8
    t.data = np.tile(np.int8([[5, -5, 5, -5]]), (2, 4))
    t.shape = t.data.shape
    t.encoding = Encoding(1, True)
    assert enc.tflite_form(t, ["FULLY_CONNECTED"]) == ("lut", 1)
