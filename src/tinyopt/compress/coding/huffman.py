"""Canonical Huffman coding: lengths from frequencies, codes from lengths, a table of lengths only.

Why canonical: the decoder rebuilds every code from the code lengths alone, so the stored table is one
small length per symbol instead of the codes themselves (as DEFLATE and JPEG do). Lengths are capped
at ``MAX_CODE_LENGTH`` so each fits ``LENGTH_FIELD_BITS`` bits in the table.
"""

from __future__ import annotations

import heapq

import numpy as np

from tinyopt.compress.coding.bits import BitReader, BitWriter

MAX_CODE_LENGTH = 24
LENGTH_FIELD_BITS = 5
ALPHABET_FIELD_BITS = 17  # alphabets up to 2**16 symbols (16-bit indices) plus one


def code_lengths(freqs, max_length: int = MAX_CODE_LENGTH) -> np.ndarray:
    """Huffman code length of every symbol (0 for symbols that never occur).

    One used symbol gets length 1 (a code must have at least one bit to be a prefix code). Ties are
    broken by symbol order, so the same frequencies always give the same lengths. If the tree is
    deeper than ``max_length``, frequencies are halved (keeping them >= 1) until it fits, as zlib-style
    coders do; the result is still a valid prefix code, slightly above the optimum.
    """
    freqs = np.asarray(freqs, dtype=np.int64)
    if freqs.ndim != 1 or (freqs < 0).any():
        raise ValueError("frequencies must be a 1-D array of counts >= 0")
    lengths = np.zeros(len(freqs), dtype=np.int64)
    used = np.flatnonzero(freqs)
    if len(used) == 0:
        return lengths
    if len(used) == 1:
        lengths[used[0]] = 1
        return lengths
    f = freqs[used].copy()
    while True:
        depth = _tree_depths(f)
        if depth.max() <= max_length:
            lengths[used] = depth
            return lengths
        f = np.maximum(f >> 1, 1)


def _tree_depths(f: np.ndarray) -> np.ndarray:
    """Leaf depths of the Huffman tree over weights ``f`` (len >= 2): merge the two lightest."""
    n = len(f)
    parent = np.zeros(2 * n - 1, dtype=np.int64)
    heap = [(int(w), i) for i, w in enumerate(f)]
    heapq.heapify(heap)
    node = n
    while len(heap) > 1:
        w1, a = heapq.heappop(heap)
        w2, b = heapq.heappop(heap)
        parent[a] = parent[b] = node
        heapq.heappush(heap, (w1 + w2, node))
        node += 1
    depth = np.zeros(2 * n - 1, dtype=np.int64)
    for i in range(2 * n - 3, -1, -1):  # the root (2n-2) has depth 0; parents come later than children
        depth[i] = depth[parent[i]] + 1
    return depth[:n]


def canonical_codes(lengths) -> list[str]:
    """The canonical code of every symbol as a bit string ('' for unused symbols).

    Symbols are sorted by (length, symbol); each code is the previous one plus one, shifted left
    whenever the length grows.
    """
    lengths = [int(v) for v in lengths]
    codes = [""] * len(lengths)
    code, prev = 0, 0
    for sym in sorted((s for s, n in enumerate(lengths) if n), key=lambda s: (lengths[s], s)):
        code <<= lengths[sym] - prev
        prev = lengths[sym]
        codes[sym] = format(code, f"0{prev}b")
        code += 1
    return codes


def kraft_ok(lengths) -> bool:
    """True if the lengths describe a prefix code (Kraft sum <= 1)."""
    return sum(2.0 ** -int(n) for n in lengths if n) <= 1.0


class HuffmanCode:
    """A canonical Huffman code, fitted on symbols (scikit-learn style).

    ``fit(symbols, n_symbols)`` learns ``lengths_`` and ``codes_``; ``encode`` writes the codes of a
    symbol array, ``decode`` reads them back.
    """

    def __init__(self, max_length: int = MAX_CODE_LENGTH):
        self.max_length = max_length

    def fit(self, symbols, n_symbols: int | None = None) -> HuffmanCode:
        symbols = np.asarray(symbols, dtype=np.int64).ravel()
        if n_symbols is None:
            n_symbols = int(symbols.max()) + 1 if symbols.size else 0
        if symbols.size and (symbols.min() < 0 or symbols.max() >= n_symbols):
            raise ValueError(f"symbols must lie in [0, {n_symbols})")
        return self.set_lengths(code_lengths(np.bincount(symbols, minlength=n_symbols), self.max_length))

    def set_lengths(self, lengths) -> HuffmanCode:
        self.lengths_ = np.asarray(lengths, dtype=np.int64)
        self.codes_ = canonical_codes(self.lengths_)
        return self

    def encoded_bits(self, symbols) -> int:
        """Exact number of bits the codes of ``symbols`` take."""
        symbols = np.asarray(symbols, dtype=np.int64).ravel()
        return int(self.lengths_[symbols].sum()) if symbols.size else 0

    def table_bits(self) -> int:
        """Size of the stored table: alphabet length, then one length field per symbol."""
        return ALPHABET_FIELD_BITS + LENGTH_FIELD_BITS * _table_len(self.lengths_)

    def write_table(self, w: BitWriter) -> None:
        n = _table_len(self.lengths_)
        w.write(n, ALPHABET_FIELD_BITS)
        for v in self.lengths_[:n]:
            w.write(int(v), LENGTH_FIELD_BITS)

    @classmethod
    def read_table(cls, r: BitReader, max_symbols: int) -> HuffmanCode:
        n = r.read(ALPHABET_FIELD_BITS)
        if n > max_symbols:
            r.fail(f"Huffman table declares {n} symbols, more than the {max_symbols} its index width allows")
        if LENGTH_FIELD_BITS * n > r.remaining:
            r.fail(f"Huffman table of {n} symbols is longer than the rest of the record")
        lengths = [r.read(LENGTH_FIELD_BITS) for _ in range(n)]
        if any(v > MAX_CODE_LENGTH for v in lengths) or not kraft_ok(lengths):
            r.fail("Huffman table lengths do not form a prefix code")
        return cls().set_lengths(lengths)

    def encode(self, symbols, w: BitWriter) -> None:
        symbols = np.asarray(symbols, dtype=np.int64).ravel()
        if symbols.size and (self.lengths_[symbols] == 0).any():
            raise ValueError("a symbol to encode has no code (it was absent when the code was fitted)")
        codes = self.codes_
        w.write_codes([codes[s] for s in symbols.tolist()])

    def decode(self, r: BitReader, count: int) -> np.ndarray:
        """Read ``count`` symbols (the puff.c canonical decoder: one bit at a time, no tree)."""
        lengths = self.lengths_
        max_len = int(lengths.max()) if lengths.size else 0
        per_len = np.bincount(lengths[lengths > 0], minlength=max_len + 1).tolist()
        ordered = sorted(np.flatnonzero(lengths).tolist(), key=lambda s: (int(lengths[s]), s))
        if count and not ordered:
            r.fail(f"{count} coded symbols declared but the Huffman table is empty")
        bits, pos, end = r.bits, r.pos, len(r.bits)
        out = [0] * count
        for i in range(count):
            code = first = index = 0
            for n in range(1, max_len + 1):
                if pos >= end:
                    r.fail("Huffman bit stream ends in the middle of a code")
                code |= bits[pos] == "1"
                pos += 1
                c = per_len[n]
                if code - first < c:
                    out[i] = ordered[index + code - first]
                    break
                index += c
                first = (first + c) << 1
                code <<= 1
            else:
                r.fail("bit pattern that is not a code of the Huffman table")
        r.pos = pos
        return np.asarray(out, dtype=np.int64)


def _table_len(lengths: np.ndarray) -> int:
    used = np.flatnonzero(lengths)
    return int(used[-1]) + 1 if used.size else 0


def entropy_bits(symbols) -> float:
    """Shannon entropy (bits per symbol) of the empirical distribution of ``symbols``."""
    symbols = np.asarray(symbols).ravel()
    if symbols.size == 0:
        return 0.0
    p = np.unique(symbols, return_counts=True)[1] / symbols.size
    return float(-(p * np.log2(p)).sum())
