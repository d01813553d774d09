"""Entropy coding for compressed weights: canonical Huffman, sparse relative indices, exact sizes."""

from tinyopt.compress.coding.bits import BitReader, BitWriter
from tinyopt.compress.coding.huffman import (
    HuffmanCode,
    canonical_codes,
    code_lengths,
    entropy_bits,
)
from tinyopt.compress.coding.sparse import from_relative, max_gap, to_relative
from tinyopt.compress.coding.tensor import EncodedTensor, decode_shared, encode_shared

__all__ = [
    "BitReader",
    "BitWriter",
    "EncodedTensor",
    "HuffmanCode",
    "canonical_codes",
    "code_lengths",
    "decode_shared",
    "encode_shared",
    "entropy_bits",
    "from_relative",
    "max_gap",
    "to_relative",
]
