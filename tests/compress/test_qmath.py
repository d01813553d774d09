"""Quantization arithmetic against the seeds' flashcards and against PyTorch's own quantize ops."""

import math

import pytest
import torch

from tinyopt.compress import qmath
from tinyopt.errors import ConfigError, DataError


def test_seed_scale_min_minus50_max150_8bit():
    # seed: (150 - (-50)) / (2^8 - 1) = 200 / 255 = 0.7843
    s, z = qmath.choose_qparams(-50.0, 150.0, bits=8, unsigned=True)
    assert round(float(s), 4) == 0.7843
    # zp = 0 - round(-50 / 0.78431) = round(63.75) = 64
    assert int(z) == 64
    s_signed, z_signed = qmath.choose_qparams(-50.0, 150.0, bits=8)
    assert round(float(s_signed), 4) == 0.7843 and int(z_signed) == 64 - 128


def test_seed_symmetric_rule():
    # s = max|x| / (2^(b-1) - 1) = 2.54 / 127 = 0.02; q = clamp(round(x / s), -128, 127)
    x = torch.tensor([-2.54, -1.0, 0.0, 0.011, 0.009, 2.54])
    q, s = qmath.quantize_symmetric(x, bits=8)
    assert float(s) == pytest.approx(0.02)
    assert q.tolist() == [-127, -50, 0, 1, 0, 127]
    q4, s4 = qmath.quantize_symmetric(x, bits=4)  # s = 2.54 / 7
    assert q4.tolist() == [round(v / (2.54 / 7)) for v in x.tolist()]
    assert q4.min() >= -8 and q4.max() <= 7


def test_seed_ternary_bits():
    assert qmath.bits_per_level(3) == pytest.approx(1.58, abs=0.005)
    assert qmath.bits_per_level(3) == math.log2(3)


def test_qrange():
    assert qmath.qrange(8) == (-128, 127)
    assert qmath.qrange(8, narrow_range=True) == (-127, 127)
    assert qmath.qrange(4, unsigned=True) == (0, 15)
    assert qmath.qrange(16) == (-32768, 32767)


def test_zero_is_exact_and_range_includes_zero():
    # a positive-only range is widened to [0, max]: zp = qmin, real 0 maps to an integer exactly
    s, z = qmath.choose_qparams(2.0, 10.0, bits=8)
    assert float(s) == pytest.approx(10.0 / 255) and int(z) == -128
    assert float(qmath.dequantize(qmath.quantize(0.0, s, z, -128, 127), s, z)) == 0.0


def test_tflite_weight_scheme_per_channel():
    w = torch.tensor([[0.5, -1.27, 0.1], [3.0, 0.2, -0.3]])
    s, z = qmath.choose_qparams_per_channel(w, axis=0)  # symmetric narrow int8: amax / 127
    assert torch.allclose(s, torch.tensor([1.27 / 127, 3.0 / 127]))
    assert z.tolist() == [0, 0]
    q = qmath.quantize(w, s, z, -127, 127, axis=0)
    assert q.tolist() == [[50, -127, 10], [127, 8, -13]]


def test_quantize_matches_torch():
    x = torch.linspace(-3, 5, 101)
    s, z = qmath.choose_qparams(x.min(), x.max(), bits=8, unsigned=True)
    ref = torch.quantize_per_tensor(x, float(s), int(z), torch.quint8)
    q = qmath.quantize(x, s, z, 0, 255)
    assert torch.equal(q, ref.int_repr().to(torch.int64))
    assert torch.allclose(qmath.dequantize(q, s, z), ref.dequantize())


def test_fake_quantize_matches_torch_forward_and_backward():
    torch.manual_seed(0)
    x = (torch.randn(64) * 3).requires_grad_()
    y = qmath.fake_quantize(x, 0.05, 3, -128, 127)
    x2 = x.detach().clone().requires_grad_()
    y2 = torch.fake_quantize_per_tensor_affine(x2, 0.05, 3, -128, 127)
    assert torch.equal(y, y2)
    y.sum().backward()
    y2.sum().backward()
    assert torch.equal(x.grad, x2.grad)  # STE: 1 inside the range, 0 where clamped
    assert 0 < x.grad.sum() < 64


def test_fake_quantize_per_channel_matches_torch():
    torch.manual_seed(1)
    w = torch.randn(4, 3, 3, 3)
    s, z = qmath.choose_qparams_per_channel(w, axis=0)
    y = qmath.fake_quantize(w, s, z, -127, 127, axis=0)
    ref = torch.fake_quantize_per_channel_affine(w, s, z.to(torch.int32), 0, -127, 127)
    assert torch.allclose(y, ref, atol=1e-7)


@pytest.mark.parametrize("bits", [0, 17, -1, 2.5, True])
def test_bits_outside_1_16(bits):
    with pytest.raises(ConfigError, match="outside 1-16"):
        qmath.choose_qparams(-1.0, 1.0, bits=bits)


def test_nan_range_refused():
    with pytest.raises(DataError, match="NaN"):
        qmath.choose_qparams(float("nan"), 1.0)
    with pytest.raises(DataError):
        qmath.choose_qparams(0.0, float("inf"))


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(lo=st.floats(-1e3, 0), width=st.floats(1e-3, 2e3), bits=st.integers(2, 16),
       t=st.floats(0, 1))
def test_round_trip_error_at_most_half_a_step(lo, width, bits, t):
    # any x inside the (zero-including) range comes back within scale / 2 (rounding, never clamping)
    hi = lo + width
    s, z = qmath.choose_qparams(lo, hi, bits=bits)
    qmin, qmax = qmath.qrange(bits)
    x = torch.tensor(lo + t * (hi - lo), dtype=torch.float32)
    err = abs(float(qmath.dequantize(qmath.quantize(x, s, z, qmin, qmax), s, z)) - float(x))
    assert err <= float(s) / 2 * (1 + 1e-3) + 1e-6
    assert qmin <= int(z) <= qmax
