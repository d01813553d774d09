"""Huffman, sparse relative indices and exact-size tensor records, against hand-worked numbers."""

from __future__ import annotations

import heapq

import numpy as np
import pytest

from tinyopt.compress.coding import (
    BitReader,
    BitWriter,
    HuffmanCode,
    canonical_codes,
    code_lengths,
    decode_shared,
    encode_shared,
    entropy_bits,
    from_relative,
    to_relative,
)
from tinyopt.compress.coding.huffman import MAX_CODE_LENGTH, kraft_ok
from tinyopt.compress.coding.tensor import HEADER_FIXED_BITS
from tinyopt.errors import ConfigError, ModelFormatError


def test_huffman_hand_worked_example():
    # Six symbols with counts a45 b13 c12 d16 e9 f5 (a textbook example). Merges by hand:
    # f+e=14, c+b=25, 14+d=30, 25+30=55, a+55=100 -> depths a1, b3, c3, d3, e4, f4.
    lengths = code_lengths([45, 13, 12, 16, 9, 5])
    assert lengths.tolist() == [1, 3, 3, 3, 4, 4]
    # canonical: sorted by (length, symbol): a=0; then 0+1=1 shifted by 2 -> b=100, c=101, d=110;
    # then 111 shifted by 1 -> e=1110, f=1111.
    assert canonical_codes(lengths) == ["0", "100", "101", "110", "1110", "1111"]
    # average length (45*1 + (13+12+16)*3 + (9+5)*4) / 100 = 2.24 bits
    assert HuffmanCode().fit(np.repeat(np.arange(6), [45, 13, 12, 16, 9, 5])).encoded_bits(
        np.repeat(np.arange(6), [45, 13, 12, 16, 9, 5])) == 224


def test_huffman_second_hand_example_with_unused_symbols():
    # counts: sym0 unused, sym1 1, sym2 1, sym3 2, sym4 4: merges 1+1=2, 2+2=4, 4+4=8 ->
    # sym4 1 bit, sym3 2 bits, sym1/sym2 3 bits; canonical: 4=0, 3=10, 1=110, 2=111.
    lengths = code_lengths([0, 1, 1, 2, 4])
    assert lengths.tolist() == [0, 3, 3, 2, 1]
    assert canonical_codes(lengths) == ["", "110", "111", "10", "0"]


def _huffman_cost(freqs) -> int:
    """Independent optimum: the total coded bits equal the sum of all merged weights."""
    h = [f for f in freqs if f]
    if len(h) == 1:
        return h[0]
    heapq.heapify(h)
    cost = 0
    while len(h) > 1:
        s = heapq.heappop(h) + heapq.heappop(h)
        cost += s
        heapq.heappush(h, s)
    return cost


@pytest.mark.parametrize("seed", range(6))
def test_huffman_is_optimal_and_within_one_bit_of_entropy(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 60))
    p = rng.dirichlet(np.full(n, 0.3))
    symbols = rng.choice(n, size=3000, p=p)
    code = HuffmanCode().fit(symbols, n)
    bits = code.encoded_bits(symbols)
    assert bits == _huffman_cost(np.bincount(symbols, minlength=n))
    h = entropy_bits(symbols)
    assert h <= bits / symbols.size < h + 1
    used = code.lengths_[code.lengths_ > 0]
    assert sum(2.0 ** -used) == pytest.approx(1.0)  # a complete prefix code


def test_length_limit_keeps_a_prefix_code():
    fib = [1, 1]
    while len(fib) < 40:
        fib.append(fib[-1] + fib[-2])  # Fibonacci counts give the deepest Huffman tree: 39 levels
    assert max(code_lengths(fib, max_length=64)) == 39
    limited = code_lengths(fib)
    assert max(limited) <= MAX_CODE_LENGTH and kraft_ok(limited)
    symbols = np.repeat(np.arange(40), np.minimum(fib, 50))
    w = BitWriter()
    code = HuffmanCode().set_lengths(limited)
    code.encode(symbols, w)
    assert np.array_equal(code.decode(BitReader(w.to_bytes()), len(symbols)), symbols)


def test_sparse_relative_index_hand_example():
    # 4-bit gaps (largest 15). Non-zeros at positions 2 and 22 of 30: distance from -1 to 2 is 3;
    # from 2 to 22 is 20 > 15, so a filler (a zero) goes at 2+15=17, then the entry at 17+5=22.
    # Trailing zeros 23..29 are 7 < 15: no filler needed.
    labels = np.zeros(30, dtype=np.int64)
    labels[2], labels[22] = 7, 3
    gaps, values = to_relative(labels, 4)
    assert gaps.tolist() == [3, 15, 5] and values.tolist() == [7, 0, 3]
    assert np.array_equal(from_relative(gaps, values, 30), labels)
    # 60 elements: 37 trailing zeros -> fillers at 22+15=37 and 52, then 7 zeros remain.
    labels = np.concatenate([labels, np.zeros(30, dtype=np.int64)])
    gaps, values = to_relative(labels, 4)
    assert gaps.tolist() == [3, 15, 5, 15, 15] and values.tolist() == [7, 0, 3, 0, 0]
    # exact multiples: a distance of exactly 15 needs no filler, 16 needs one (15 + 1), 30 one (15 + 15)
    for dist, want in [(15, [15]), (16, [15, 1]), (30, [15, 15]), (31, [15, 15, 1])]:
        lab = np.zeros(dist, dtype=np.int64)
        lab[-1] = 1
        assert to_relative(lab, 4)[0].tolist() == want


def test_record_sizes_hand_computed():
    # Dense, 4 labels [0,0,0,1], 2-entry float32 codebook, 1-bit indices, no Huffman:
    # header 4 (ndim) + 32 (one dim) + 1+2+5+5+17+32 = 98 bits, codebook 2*32 = 64, codes 4*1 = 4
    # -> 166 bits -> 21 bytes with 2 padding bits.
    cb = np.array([0.5, -2.0], dtype=np.float32)
    enc = encode_shared(cb, np.array([0, 0, 0, 1]), 1, huffman=False)
    assert HEADER_FIXED_BITS + 32 == 98
    assert enc.sizes == {"header": 98, "codebook": 64, "index_codes": 4, "padding": 2}
    assert enc.n_bytes == 21
    # With Huffman: counts [3, 1] -> both 1 bit; table = 17 (alphabet length 2) + 2*5 = 27 bits;
    # 98 + 64 + 27 + 4 = 193 bits -> 25 bytes, 7 padding bits.
    enc = encode_shared(cb, np.array([0, 0, 0, 1]), 1)
    assert enc.sizes == {"header": 98, "codebook": 64, "index_table": 27, "index_codes": 4, "padding": 7}
    assert enc.n_bytes == 25 and sum(enc.sizes.values()) == 8 * enc.n_bytes
    assert np.array_equal(decode_shared(enc.payload), cb[[0, 0, 0, 1]])


@pytest.mark.parametrize("huffman", [True, False])
@pytest.mark.parametrize("index_bits,gap_bits,density", [(5, 5, 0.08), (8, 8, 0.3), (4, 3, 0.5), (2, 0, 1.0),
                                                         (16, 0, 1.0), (1, 16, 0.01)])
def test_round_trip_random(huffman, index_bits, gap_bits, density):
    rng = np.random.default_rng(index_bits * 100 + gap_bits)
    k = min(1 << index_bits, 300)
    cb = np.sort(rng.normal(size=k)).astype(np.float32)
    if gap_bits:
        cb[0] = 0.0
    labels = rng.integers(1 if gap_bits else 0, k, size=(37, 23))
    if gap_bits:
        labels[rng.random(labels.shape) > density] = 0
    enc = encode_shared(cb, labels, index_bits, gap_bits, huffman=huffman)
    out = decode_shared(enc.payload)
    assert out.dtype == np.float32 and np.array_equal(out, cb[labels])
    assert sum(enc.sizes.values()) == 8 * enc.n_bytes
    if not huffman:
        assert enc.sizes["index_codes"] == enc.n_entries * index_bits


@pytest.mark.parametrize("case", ["one_symbol", "equal_freq", "empty", "all_zero_sparse", "float16"])
def test_round_trip_adversarial(case):
    cb = np.linspace(-1, 1, 32).astype(np.float32)
    gap_bits = 0
    if case == "one_symbol":
        labels = np.full((10, 10), 7)
    elif case == "equal_freq":
        labels = np.tile(np.arange(32), 4)
    elif case == "empty":
        labels = np.zeros((3, 0), dtype=np.int64)
    elif case == "all_zero_sparse":
        cb[0], labels, gap_bits = 0.0, np.zeros((20, 20), dtype=np.int64), 5
    else:
        cb, labels = cb.astype(np.float16), np.arange(32)
    enc = encode_shared(cb, labels, 5, gap_bits)
    out = decode_shared(enc.payload)
    assert out.shape == labels.shape and out.dtype == cb.dtype and np.array_equal(out, cb[labels])
    if case == "one_symbol":
        assert enc.sizes["index_codes"] == 100  # one symbol: a 1-bit code each
    if case == "equal_freq":
        assert enc.sizes["index_codes"] == 128 * 5  # 32 equally likely symbols: 5 bits each
    if case == "all_zero_sparse":
        assert enc.n_entries == 400 // 31  # fillers every 31 positions: 12, leaving 28 < 31 zeros


@pytest.mark.parametrize("index_bits,gap_bits", [(0, 0), (17, 0), (5, 17), (5, -1)])
def test_bits_out_of_range(index_bits, gap_bits):
    cb = np.zeros(2, dtype=np.float32)
    with pytest.raises(ConfigError, match="bits") as e:
        encode_shared(cb, np.zeros(4, dtype=np.int64), index_bits, gap_bits, layer="fc1")
    assert "fc1" in str(e.value) and "Fix:" in str(e.value)


def test_encode_rejects_bad_codebooks():
    with pytest.raises(ConfigError, match="codebook\\[0\\] == 0"):
        encode_shared(np.ones(4, dtype=np.float32), np.array([1, 0, 2]), 2, 3, layer="conv1")
    with pytest.raises(ConfigError, match="do not fit"):
        encode_shared(np.ones(5, dtype=np.float32), np.array([1, 0, 2]), 2, layer="conv1")
    with pytest.raises(ConfigError, match="labels"):
        encode_shared(np.ones(4, dtype=np.float32), np.array([4]), 2, layer="conv1")


def test_decode_of_damaged_records_fails_cleanly():
    rng = np.random.default_rng(0)
    cb = np.concatenate([[0], rng.normal(size=15)]).astype(np.float32)
    labels = rng.integers(1, 16, size=(8, 12))
    labels[rng.random(labels.shape) < 0.6] = 0
    payload = encode_shared(cb, labels, 4, 3).payload
    for cut in range(len(payload)):  # every truncation
        with pytest.raises(ModelFormatError):
            decode_shared(payload[:cut], where="record 0", path="m.topz")
    for i in range(300):  # random bit flips: a clean error or some tensor, never another exception
        bad = bytearray(payload)
        bad[i % len(bad)] ^= 1 << (i % 8)
        try:
            decode_shared(bytes(bad))
        except ModelFormatError as e:
            assert "Fix:" in str(e)


def test_decoder_refuses_huge_declared_shape_without_allocating():
    enc = encode_shared(np.zeros(2, dtype=np.float32), np.zeros(4, dtype=np.int64), 1, 4)
    w = BitWriter()  # same record but with a dimension of 4e9 elements
    w.write(1, 4)
    w.write(4_000_000_000, 32)
    rest = format(int.from_bytes(enc.payload, "big"), f"0{8 * enc.n_bytes}b")[36:]
    w.write_codes([rest])
    with pytest.raises(ModelFormatError, match="larger than"):
        decode_shared(w.to_bytes())


def test_property_round_trip():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=60, deadline=None, derandomize=True)
    @given(st.lists(st.integers(0, 7), max_size=200), st.integers(1, 6), st.booleans())
    def check(values, gap_bits, huffman):
        labels = np.asarray(values, dtype=np.int64)
        cb = np.array([0, 1.5, -2, 3, 0.25, -0.5, 8, 9], dtype=np.float32)
        gaps, vals = to_relative(labels, gap_bits)
        assert gaps.min(initial=1) >= 1 and gaps.max(initial=1) < 1 << gap_bits
        assert np.array_equal(from_relative(gaps, vals, len(labels)), labels)
        for gb in (0, gap_bits):
            enc = encode_shared(cb, labels, 3, gb, huffman=huffman)
            assert np.array_equal(decode_shared(enc.payload), cb[labels])
            assert sum(enc.sizes.values()) == 8 * enc.n_bytes

    check()
