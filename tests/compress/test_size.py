"""Size accounting: the seeds' quiz numbers, and hand-counted sparse storage formats."""

import numpy as np
import pytest
import torch
from torch import nn

from tinyopt.compress import size
from tinyopt.compress.lowbit import quantize_weights_
from tinyopt.compress.prune import prune_unstructured_
from tinyopt.errors import ConfigError


def test_seed_cr_5_71():
    # 2.5 M float32 = 10,000,000 B; 70 % left at 1 byte = 1,750,000 B; 10e6 / 1.75e6 = 5.714
    orig = size.textbook_bytes(2_500_000)
    comp = size.textbook_bytes(2_500_000, prune=0.30, bits=8)
    assert orig == 10_000_000 and comp == pytest.approx(1_750_000)
    assert round(size.compression_ratio(orig, comp), 2) == 5.71


def test_seed_cr_3_33_with_huffman():
    # 2 M x 4 B = 8e6; 1.5 M left x 2 B = 3e6; Huffman -20 % = 2.4e6; 8e6 / 2.4e6 = 3.33
    comp = size.textbook_bytes(2_000_000, prune=0.25, bits=16, coding_gain=0.20)
    assert comp == pytest.approx(2_400_000)
    assert round(size.compression_ratio(size.textbook_bytes(2_000_000), comp), 2) == 3.33


def test_seed_x16():
    # 4 M x 4 B = 16e6; 2 M left x 0.5 B = 1e6 -> x16
    comp = size.textbook_bytes(4_000_000, prune=0.5, bits=4)
    assert size.compression_ratio(size.textbook_bytes(4_000_000), comp) == pytest.approx(16.0)


def test_dense_bitmask_relative_hand_counts():
    w = np.zeros(40, np.float32)
    w[[0, 3, 20, 39]] = 1.0
    # dense int8: 40 B
    assert size.tensor_size(w, 8, "dense").total == 40
    # bitmask: 40 bits = 5 B of mask + 4 values x 1 B = 9 B
    t = size.tensor_size(w, 8, "bitmask")
    assert (t.index_bytes, t.value_bytes) == (5, 4)
    # relative with 3-bit gaps (max run 7): gaps 0, 2, 16, 18 -> fillers 16//8 = 2 and 18//8 = 2
    assert size.relative_index_entries(w != 0, 3) == 4 + 2 + 2
    t = size.tensor_size(w, 8, "relative", relative_bits=3)
    assert (t.value_bytes, t.index_bytes) == (8, 3)  # 8 entries x 8 bit; 8 x 3 bit = 24 bit = 3 B
    # auto picks the cheapest: dense 40, bitmask 9, relative 11 -> bitmask
    assert size.tensor_size(w, 8, "auto", relative_bits=3).index == "bitmask"
    assert size.tensor_size(w, 8, "auto", relative_bits=3).total == 9


def test_low_bit_packing_ternary_binary_float16():
    w = np.ones(1000, np.float32)
    assert size.tensor_size(w, 4, "dense").value_bytes == 500
    assert size.tensor_size(w, "binary", "dense").value_bytes == 125
    assert size.tensor_size(w, "ternary", "dense").value_bytes == 200  # 5 trits per byte
    assert size.tensor_size(w, "float16", "dense").value_bytes == 2000
    assert size.tensor_size(np.ones(7), 3, "dense").value_bytes == 3  # 21 bits -> 3 bytes


def test_codebook_and_scales():
    w = np.ones((4, 10), np.float32)
    t = size.tensor_size(w, 32, "dense", codebook=16, scales=0)  # 40 x 4 bit = 20 B + 16 x 4 B
    assert (t.value_bytes, t.meta_bytes) == (20, 64)
    t = size.tensor_size(w, 8, "dense", scales=4)  # 40 B + 4 float32 scales
    assert t.total == 56


def test_model_size_pruned_and_quantized():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(100, 50), nn.ReLU(), nn.Linear(50, 10))
    rep = size.model_size(m)
    assert rep.params == 100 * 50 + 50 + 50 * 10 + 10 and rep.bytes == rep.original_bytes
    prune_unstructured_(m, 0.9)
    quantize_weights_(m, {"0": 8})  # the layer's quantizer says how it is stored: no attribute to set
    rep = size.model_size(m, index="bitmask")
    # layer 0: 500 non-zeros x 1 B + 5000 bits mask (625 B) + 50 scales x 4 B; bias 50 x int32
    # layer 1 (float): 50 non-zeros x 4 B + 500 bits (63 B) ; bias 10 x 4 B
    assert rep.bytes == (500 + 625 + 200 + 200) + (50 * 4 + 63 + 40)
    assert rep.ratio == pytest.approx(rep.original_bytes / rep.bytes)


def test_bad_inputs():
    with pytest.raises(ConfigError, match="outside \\[0, 1\\)"):
        size.textbook_bytes(10, prune=1.0)
    with pytest.raises(ConfigError, match="outside 1-32"):
        size.textbook_bytes(10, bits=0)
    with pytest.raises(ConfigError):
        size.tensor_size(np.ones(3), 8, "csr")
