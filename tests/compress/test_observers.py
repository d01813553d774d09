"""Observers against torch.ao's observers where they compute the same thing, and against hand-built
distributions where they clip on purpose. One shared test checks the scikit-learn contract for all."""

import warnings

import numpy as np
import pytest
import torch

from tinyopt.compress import observers as ob
from tinyopt.errors import ConfigError, DataError

warnings.filterwarnings("ignore", category=DeprecationWarning)
tao = pytest.importorskip("torch.ao.quantization.observer")


def _batches(seed=0, n=4):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(8, 16, generator=g) * (i + 1) + 0.5 for i in range(n)]


def test_minmax_matches_torch_ao_affine_uint8():
    ref = tao.MinMaxObserver(dtype=torch.quint8)
    ours = ob.MinMaxObserver(bits=8, unsigned=True)
    for b in _batches():
        ref(b)
        ours.partial_fit(b)
    s, z = ref.calculate_qparams()
    assert torch.allclose(ours.scale_, s) and int(ours.zero_point_) == int(z)


def test_minmax_matches_torch_ao_symmetric_int8():
    ref = tao.MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)
    ours = ob.MinMaxObserver(bits=8, symmetric=True)
    for b in _batches(1):
        ref(b)
    ours.fit(_batches(1))
    s, z = ref.calculate_qparams()
    assert torch.allclose(ours.scale_, s) and int(ours.zero_point_) == int(z) == 0


def test_moving_average_matches_torch_ao():
    ref = tao.MovingAverageMinMaxObserver(averaging_constant=0.1, dtype=torch.qint8)
    ours = ob.MovingAverageMinMaxObserver(averaging_constant=0.1, bits=8)
    ours.fit(_batches(2, 6))
    for b in _batches(2, 6):
        ref(b)
    s, z = ref.calculate_qparams()
    assert torch.allclose(ours.scale_, s) and int(ours.zero_point_) == int(z)
    assert torch.allclose(ours.min_, ref.min_val) and torch.allclose(ours.max_, ref.max_val)


def test_per_channel_matches_torch_ao():
    w = torch.randn(6, 3, 3, 3, generator=torch.Generator().manual_seed(3))
    ref = tao.PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8, qscheme=torch.per_channel_symmetric)
    ref(w)
    ours = ob.MinMaxObserver(bits=8, symmetric=True, axis=0).fit(w)
    s, z = ref.calculate_qparams()
    assert torch.allclose(ours.scale_, s) and ours.zero_point_.tolist() == z.tolist()


def _long_tail(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, 20000).astype(np.float32)
    x[:5] = [40, -35, 30, 25, -20]  # a few outliers
    return x


def test_percentile_clips_to_the_percentile():
    x = _long_tail()
    o = ob.PercentileObserver(percentile=99.0).fit(x)
    lo, hi = np.percentile(x, [1.0, 99.0])
    assert float(o.min_) == pytest.approx(lo, rel=1e-5) and float(o.max_) == pytest.approx(hi, rel=1e-5)


@pytest.mark.parametrize("cls", [ob.MSEObserver, ob.KLObserver, ob.PercentileObserver])
def test_clipping_observers_beat_minmax_on_long_tail(cls):
    # The bulk is N(0, 1); at 4 bits min-max spends its 16 levels on outliers at +-40 (step 5). A
    # clipping observer must pick a much smaller range and a lower round-trip error on the bulk.
    from tinyopt.compress import qmath
    x = torch.from_numpy(_long_tail())
    kw = {"percentile": 99.9} if cls is ob.PercentileObserver else {}
    mm = ob.MinMaxObserver(bits=4).fit(x)
    o = cls(bits=4, **kw).fit(x)
    assert float(o.max_) < 0.5 * float(mm.max_)
    bulk = x[x.abs() < 3]

    def mse(obs):
        q = qmath.quantize(bulk, obs.scale_, obs.zero_point_, -8, 7)
        return float(((qmath.dequantize(q, obs.scale_, obs.zero_point_) - bulk) ** 2).mean())
    assert mse(o) < 0.25 * mse(mm)


def test_mse_observer_is_optimal_on_its_grid():
    from tinyopt.compress import qmath
    x = torch.from_numpy(_long_tail(1))
    o = ob.MSEObserver(grid=50).fit(x)

    def err(a):
        s, z = qmath.choose_qparams(a * x.min(), a * x.max())
        return float(((qmath.dequantize(qmath.quantize(x, s, z, -128, 127), s, z) - x) ** 2).mean())
    chosen = float(o.max_) / float(x.max())
    assert all(err(chosen) <= err(a) + 1e-9 for a in np.linspace(1.0, 1 / 50, 50))


def test_kl_observer_keeps_uniform_data_unclipped():
    # For data spread evenly over [-1, 1] there is no tail to cut: the KL threshold stays near the max.
    x = torch.linspace(-1, 1, 50001)
    o = ob.KLObserver().fit(x)
    assert float(o.max_) > 0.9


@pytest.mark.parametrize("name", sorted(ob.OBSERVERS))
def test_sklearn_contract(name):
    o = ob.make_observer(name, bits=6)
    assert o.bits == 6 and not hasattr(o, "scale_")  # constructor stores kwargs only
    assert o.fit(_batches()) is o and o.partial_fit(_batches()[0]) is o
    for attr in ("min_", "max_", "scale_", "zero_point_", "n_samples_seen_"):
        assert hasattr(o, attr)
    assert o.n_samples_seen_ == 5 * 8
    o.fit(_batches())  # fit restarts
    assert o.n_samples_seen_ == 4 * 8
    lo, hi = o.quant_min, o.quant_max
    assert (lo, hi) == (-32, 31) and lo <= int(o.zero_point_) <= hi


@pytest.mark.parametrize("name", sorted(ob.OBSERVERS))
def test_empty_calibration_set(name):
    with pytest.raises(DataError, match="empty calibration set"):
        ob.make_observer(name).fit([])
    with pytest.raises(DataError, match="empty calibration batch"):
        ob.make_observer(name).fit(torch.empty(0))


def test_nan_inf_refused():
    with pytest.raises(DataError, match="NaN or inf"):
        ob.MinMaxObserver().fit(torch.tensor([1.0, float("nan")]))
    with pytest.raises(DataError, match="NaN or inf"):
        ob.KLObserver().fit(torch.tensor([1.0, float("inf")]))


def test_bad_names_and_bits():
    with pytest.raises(ConfigError, match="did you mean 'minmax'"):
        ob.make_observer("minmx")
    with pytest.raises(ConfigError, match="outside 1-16"):
        ob.MinMaxObserver(bits=0).fit(torch.ones(3))


def test_more_bad_configs():
    with pytest.raises(ConfigError, match="percentile=40"):
        ob.PercentileObserver(percentile=40).fit(torch.randn(10))
    with pytest.raises(ConfigError, match="axis=3"):
        ob.MinMaxObserver(axis=3).fit(torch.randn(2, 2))
    with pytest.raises(ConfigError, match="per-tensor only"):
        ob.KLObserver(axis=0).fit(torch.randn(2, 2))
    o = ob.KLObserver().fit(torch.zeros(100))  # nothing to spread: a zero range, the smallest scale
    assert float(o.max_) == 0.0 and float(o.scale_) == pytest.approx(torch.finfo(torch.float32).eps)
