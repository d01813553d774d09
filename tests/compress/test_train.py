"""The fine-tuning loop's learning-rate schedule and its distillation term, each against a hand-written
loop (the cosine rate in closed form, the loss written out), and the QAT options that reach them."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tinyopt.compress import recipe
from tinyopt.compress.train import finetune
from tinyopt.errors import ConfigError


def _data(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    return x, (x[:, 0] + x[:, 1] > 0).long()


def _net(seed=1):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))


def _by_hand(net, x, y, steps, lr, batch, loss_of, rate):
    """Adam over the same batches (seeded shuffle per epoch, as ``finetune`` draws them), the rate set
    before each step by ``rate(step)``."""
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    step, epoch = 0, 0
    while step < steps:
        idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch))
        for i in range(0, len(x), batch):
            if step >= steps:
                break
            j = idx[i:i + batch]
            for group in opt.param_groups:
                group["lr"] = rate(step)
            opt.zero_grad()
            loss_of(net(x[j]), y[j], x[j]).backward()
            opt.step()
            step += 1
        epoch += 1
    return net


def test_cosine_schedule_is_the_closed_form_rate():
    x, y = _data()
    a, b = _net(), _net()
    finetune(a, (x, y), epochs=3, lr=0.05, batch_size=16, seed=0, lr_schedule="cosine")
    steps = 3 * 3  # 40 samples in batches of 16: 3 steps an epoch
    _by_hand(b, x, y, steps, 0.05, 16, lambda out, t, _x: F.cross_entropy(out, t),
             lambda s: 0.05 * (1 + math.cos(math.pi * s / steps)) / 2)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q)
    c = _net()  # the constant rate (the default) ends elsewhere
    finetune(c, (x, y), epochs=3, lr=0.05, batch_size=16, seed=0)
    assert not torch.allclose(next(c.parameters()), next(a.parameters()))


def test_distill_mixes_the_teacher_kl_into_the_loss():
    x, y = _data()
    teacher = _net(seed=7)
    a, b = _net(), _net()
    finetune(a, (x, y), epochs=2, lr=0.01, batch_size=16, seed=0, teacher=teacher, distill=0.3)

    def loss(out, t, xb):
        with torch.no_grad():
            p = F.softmax(teacher(xb), dim=1)
        kl = (p * (p.log() - F.log_softmax(out, dim=1))).sum(1).mean()  # KL(teacher || student)
        return 0.7 * F.cross_entropy(out, t) + 0.3 * kl

    _by_hand(b, x, y, 6, 0.01, 16, loss, lambda s: 0.01)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q)
    # all teacher: the labels no longer matter
    c, d = _net(), _net()
    kw = {"epochs": 2, "lr": 0.01, "batch_size": 16, "seed": 0, "teacher": teacher, "distill": 1.0}
    finetune(c, (x, y), **kw)
    finetune(d, (x, 1 - y), **kw)
    for p, q in zip(c.parameters(), d.parameters()):
        torch.testing.assert_close(p, q)


def test_qat_options_are_checked_and_round_trip():
    r = recipe.Recipe.from_dict({"steps": [{"quantize": {"mode": "qat", "lr_schedule": "cosine",
                                                         "distill": 0.5}}]})
    cfg = r.steps[0][1]
    assert (cfg.lr_schedule, cfg.distill) == ("cosine", 0.5)
    assert recipe.Recipe.from_dict(r.to_dict()) == r
    with pytest.raises(ConfigError, match=r"lr_schedule 'cosin' is not valid.*did you mean 'cosine'"):
        recipe.Recipe.from_dict({"steps": [{"quantize": {"mode": "qat", "lr_schedule": "cosin"}}]})
    with pytest.raises(ConfigError, match=r"distill 1.5 is outside \[0, 1\]"):
        recipe.Recipe.from_dict({"steps": [{"quantize": {"mode": "qat", "distill": 1.5}}]})
