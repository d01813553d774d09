"""PTQ/QAT simulation: observer placement as TFLM fuses ops, the int8 weight scheme, calibration,
bias correction, dynamic quantization, the converter's view (quant_params) and strip()."""

import pytest
import torch
from torch import nn

from tinyopt.compress import ptq, qat, qmath
from tinyopt.errors import ConfigError, DataError


class Res(nn.Module):
    """conv-bn-relu, a residual add followed by relu, a concatenation, pool, flatten, dense."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(2, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.r1 = nn.ReLU()
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)
        self.r2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        a = self.r1(self.bn1(self.c1(x)))
        b = self.r2(self.c2(a) + a)
        return self.fc(torch.flatten(self.pool(torch.cat([a, b], 1)), 1))


def _model(seed=0):
    torch.manual_seed(seed)
    m = Res()
    with torch.no_grad():  # non-trivial BN statistics so folding matters
        m.bn1.running_mean.uniform_(-0.5, 0.5)
        m.bn1.running_var.uniform_(0.5, 2.0)
        m.bn1.weight.uniform_(0.5, 1.5)
    return m.eval()


def _calib(seed=0, n=4):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(8, 2, 6, 6, generator=g) for _ in range(n)]


def test_observer_placement_follows_tflm_fusion():
    gm = ptq.prepare(_model())
    # input x; c1 -> bn1 -> r1 fused: observed after r1 only; c2 writes its own tensor; the add's
    # ReLU is fused into the ADD: observed after r2; cat gets its own; pool/flatten share; fc observed
    assert set(ptq.fake_quants(gm)) == {"x", "r1", "c2", "r2", "cat", "fc"}  # read from the graph itself
    assert ptq._conv_bn_pairs(gm) == {"c1": "bn1"}


def test_weight_scheme_is_tflm_int8_per_channel_on_folded_weight():
    m = _model()
    gm = ptq.quantize_static(m, _calib())
    qp = ptq.quant_params(gm)
    assert qp["scheme"] == "tflm-int8"
    w = qp["weights"]["c1"]
    folded = m.c1.weight * (m.bn1.weight / torch.sqrt(m.bn1.running_var + m.bn1.eps)).reshape(-1, 1, 1, 1)
    expect = folded.detach().abs().amax(dim=(1, 2, 3)) / 127  # symmetric narrow: amax / 127
    assert torch.allclose(torch.tensor(w["scale"]), expect)
    assert w["zero_point"] == [0] * 4 and (w["quant_min"], w["quant_max"], w["axis"]) == (-127, 127, 0)
    assert w["folded_bn"] == "bn1" and qp["weights"]["fc"]["folded_bn"] is None
    # the deployed (folded) weight is exactly on the grid
    stripped = ptq.strip(gm)
    f = (stripped.bn1.weight / torch.sqrt(stripped.bn1.running_var + stripped.bn1.eps)).reshape(-1, 1, 1, 1)
    q = stripped.c1.weight * f / expect.reshape(-1, 1, 1, 1)
    assert torch.allclose(q, q.round(), atol=1e-3)


def test_activation_qparams_are_asymmetric_int8_including_zero():
    gm = ptq.quantize_static(_model(), _calib())
    for name, a in ptq.quant_params(gm)["activations"].items():
        assert (a["quant_min"], a["quant_max"]) == (-128, 127), name
        # range nudged to include 0: scale = (max(hi,0) - min(lo,0)) / 255, zp = -128 - round(lo / scale)
        lo, hi = min(a["min"], 0.0), max(a["max"], 0.0)
        assert a["scale"] == pytest.approx((hi - lo) / 255, rel=1e-6)
        assert a["zero_point"] == max(-128, min(127, -128 - round(lo / a["scale"])))
    relu = ptq.quant_params(gm)["activations"]["r1"]
    assert relu["min"] >= 0 and relu["zero_point"] == -128  # after ReLU: [0, max]


def test_int8_simulation_of_one_dense_layer_by_hand():
    torch.manual_seed(3)
    m = nn.Sequential(nn.Linear(5, 3))
    x = torch.randn(16, 5)
    gm = ptq.quantize_static(m, [x])
    # by hand: quantize input (per tensor), weight (per channel, symmetric), output (per tensor)
    si, zi = qmath.choose_qparams(x.min(), x.max())
    xq = qmath.dequantize(qmath.quantize(x, si, zi, -128, 127), si, zi)
    sw, zw = qmath.choose_qparams_per_channel(m[0].weight.detach())
    wq = qmath.dequantize(qmath.quantize(m[0].weight.detach(), sw, zw, -127, 127, 0), sw, zw, 0)
    y = xq @ wq.T + m[0].bias.detach()
    # calibration sees float inputs through rounded weights (rounding of activations starts after it)
    yc = x @ wq.T + m[0].bias.detach()
    so, zo = qmath.choose_qparams(yc.min(), yc.max())
    expect = qmath.dequantize(qmath.quantize(y, so, zo, -128, 127), so, zo)
    assert torch.allclose(gm(x), expect, atol=1e-6)


def test_ptq_close_to_float_and_bias_correction_reduces_mean_error():
    m = _model()
    calib = _calib(n=8)
    test = torch.cat(_calib(seed=5, n=4))
    cfg = ptq.QuantConfig(weight_bits=3, activation_bits=None)  # coarse weights make the shift visible
    plain = ptq.quantize_static(m, calib, cfg)
    corrected = ptq.quantize_static(m, calib, cfg, bias_correction=True)
    ref = m(test).detach()
    bias_plain = (plain(test) - ref).mean(0).abs().mean()
    bias_corr = (corrected(test) - ref).mean(0).abs().mean()
    assert bias_corr < bias_plain
    q8 = ptq.quantize_static(m, calib)
    assert (q8(test) - ref).abs().max() < 0.1 * ref.abs().max()


def test_dynamic_quantizes_each_input_with_its_own_range():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 2))
    gm = ptq.quantize_dynamic(m)
    x = torch.randn(3, 4) * 10
    s, z = qmath.choose_qparams(x.min(), x.max())
    xq = qmath.fake_quantize(x, s, z, -128, 127)
    w = gm.get_submodule("0").weight  # rounded weight
    assert torch.allclose(gm(x), xq @ w.T + m[0].bias, atol=1e-5)
    assert ptq.quant_params(gm)["activations"] == {}


def test_qat_freezes_bn_and_learns():
    m = _model()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 2, 6, 6, generator=g)
    y = m(x).argmax(1)
    rv = m.bn1.running_var.clone()
    gm = qat.quantize_aware_train(m, (x, y), ptq.QuantConfig(weight_bits=4, observer="moving_average"),
                                  epochs=3, lr=1e-2, batch_size=16)
    assert isinstance(gm.bn1, qat.FrozenBatchNorm2d)
    assert torch.equal(gm.bn1.running_var, rv)  # statistics frozen
    assert ptq.quant_params(gm)["weights"]["c1"]["quant_max"] == 7
    assert all(not fq.observing and fq.quantizing for fq in ptq.fake_quants(gm).values())
    acc = (gm(x).argmax(1) == y).float().mean()
    assert acc > 0.5


def test_empty_calibration_and_bad_bits():
    with pytest.raises(DataError, match="empty calibration set"):
        ptq.quantize_static(_model(), [])
    with pytest.raises(ConfigError, match="outside 1-16"):
        ptq.quantize_static(_model(), _calib(), ptq.QuantConfig(weight_bits=17))
    with pytest.raises(ConfigError, match="outside 1-16"):
        ptq.quantize_static(_model(), _calib(), ptq.QuantConfig(activation_bits=0))
    m = _model()
    with torch.no_grad():
        m.fc.weight[0, 0] = float("inf")
    with pytest.raises(DataError, match="fc.weight"):
        ptq.prepare(m)


def test_strip_feeds_the_torch_importer_with_matching_names():
    from tinyopt.graph.torch_import import from_torch

    m = _model()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(32, 2, 6, 6, generator=g)
    gm = qat.quantize_aware_train(m, (x, m(x).argmax(1)), epochs=1, batch_size=16)
    plain = ptq.strip(gm)
    assert type(plain.bn1) is nn.BatchNorm2d and not ptq.fake_quants(plain)
    set_names = set(ptq.quant_params(gm)["activations"])
    graph = from_torch(plain, (2, 6, 6))
    names = set(graph.tensors) | {n.name for n in graph.nodes}
    assert set_names <= names, set_names - names  # every observed tensor exists under the same name
    ptq.set_mode(gm, False, False)  # rounding off: the stripped model computes the same floats
    assert torch.allclose(plain(x), gm(x), atol=1e-5)


def test_untraceable_model_is_reported():
    from tinyopt.errors import UnsupportedOpError

    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)

        def forward(self, x):
            return self.fc(x) if x.sum() > 0 else x  # data-dependent control flow

    with pytest.raises(UnsupportedOpError, match="cannot trace"):
        ptq.prepare(Branchy())


def test_pruned_then_quantized_keeps_zeros_and_reports_masked_scales():
    from tinyopt.compress.prune import prune_unstructured_

    m = _model()
    prune_unstructured_(m, 0.5)
    masked = m.fc.weight.detach().clone()  # the mask applied
    gm = ptq.quantize_static(m, _calib(), bias_correction=True)
    w = ptq.quant_params(gm)["weights"]["fc"]
    assert torch.allclose(torch.tensor(w["scale"]), masked.abs().amax(1) / 127)
    assert bool((gm.fc.weight[masked == 0] == 0).all())


def test_strip_leaves_the_prepared_model_working():
    m = _model()
    x = torch.randn(8, 2, 6, 6, generator=torch.Generator().manual_seed(3))
    gm = ptq.quantize_static(m, [x])
    before = gm(x)
    plain = ptq.strip(gm)
    assert torch.equal(gm(x), before)  # the prepared model still has its parametrized weights
    assert not any(hasattr(mod, "parametrizations") for mod in plain.modules())
