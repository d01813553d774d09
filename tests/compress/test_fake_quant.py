"""FakeQuantize modules against torch.ao's FakeQuantize, and the QAT weight quantizer's BN folding."""

import warnings

import torch

from tinyopt.compress.fake_quant import FakeQuantize, WeightFakeQuantize
from tinyopt.compress.observers import MovingAverageMinMaxObserver

warnings.filterwarnings("ignore", category=DeprecationWarning)


def test_matches_torch_ao_fake_quantize():
    from torch.ao.quantization import FakeQuantize as TorchFQ
    from torch.ao.quantization.observer import MovingAverageMinMaxObserver as TorchObs

    ref = TorchFQ(observer=TorchObs, quant_min=0, quant_max=255, dtype=torch.quint8)
    ours = FakeQuantize(MovingAverageMinMaxObserver(averaging_constant=0.01, unsigned=True))
    ours.quantizing = True
    g = torch.Generator().manual_seed(0)
    for i in range(5):
        x = torch.randn(16, 8, generator=g) * (1 + i)
        assert torch.allclose(ours(x), ref(x), atol=1e-6)
    assert torch.allclose(ours.observer.scale_, ref.scale)
    assert int(ours.observer.zero_point_) == int(ref.zero_point)


def test_observe_only_passes_through_and_qparams_dict():
    fq = FakeQuantize()
    x = torch.tensor([-1.0, 0.3, 2.0])
    assert torch.equal(fq(x), x)
    q = fq.qparams()
    assert (q["min"], q["max"], q["quant_min"], q["quant_max"]) == (-1.0, 2.0, -128, 127)
    assert abs(q["scale"] - 3.0 / 255) < 1e-7


def test_weight_fake_quantize_per_channel_and_folded():
    torch.manual_seed(0)
    w = torch.randn(3, 2, 3, 3)
    wq = WeightFakeQuantize()(w)
    s = w.abs().amax((1, 2, 3), keepdim=True) / 127
    assert torch.allclose(wq, torch.round(w / s) * s)
    fold = torch.tensor([0.5, 2.0, 4.0])
    q = WeightFakeQuantize()
    q.fold = lambda: fold
    out = q(w)
    wf = w * fold.reshape(-1, 1, 1, 1)
    sf = wf.abs().amax((1, 2, 3), keepdim=True) / 127
    assert torch.allclose(out * fold.reshape(-1, 1, 1, 1), torch.round(wf / sf) * sf, atol=1e-6)
