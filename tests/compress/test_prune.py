"""Unstructured pruning: exact counts, global vs layer scope, masks surviving fine-tuning, criteria."""

import pytest
import torch
from prune_helpers import quadrant_data, small_mlp
from torch import nn

from tinyopt.compress import prune
from tinyopt.compress.train import finetune
from tinyopt.errors import ConfigError, DataError


def test_layer_scope_removes_exactly_the_smallest():
    m = small_mlp()
    w0 = m[0].weight.detach().clone()
    prune.prune_unstructured_(m, 0.5)
    # floor(0.5 * 128) = 64 zeros in layer 0, and they are the 64 smallest |w|
    assert int((m[0].weight == 0).sum()) == 64 and int((m[2].weight == 0).sum()) == 32
    kept = m[0].weight.detach() != 0
    assert w0.abs()[kept].min() >= w0.abs()[~kept].max()


def test_global_scope_one_threshold():
    m = small_mlp()
    with torch.no_grad():
        m[2].weight.mul_(0.01)  # layer 2 is all tiny: global pruning takes it first
    prune.prune_unstructured_(m, 0.3, scope="global")
    s = prune.sparsity(m)
    # 0.3 * (128 + 64) = 57.6 -> 57 zeros overall; all 64 of layer 2 are smaller than any of layer 0
    assert int(round(s["global"] * 192)) == 57 and s["2"] == pytest.approx(57 / 64) and s["0"] == 0.0


def test_masks_survive_finetuning_and_make_permanent():
    m = small_mlp()
    prune.prune_unstructured_(m, 0.75)
    zero = m[0].weight.detach() == 0
    finetune(m, quadrant_data(), epochs=3, lr=1e-2, batch_size=16)
    assert bool((m[0].weight.detach()[zero] == 0).all())
    assert prune.sparsity(m)["global"] == pytest.approx(0.75)
    prune.make_permanent_(m)
    assert set(m.state_dict()) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert prune.sparsity(m)["global"] == pytest.approx(0.75)


def test_target_semantics_not_incremental():
    m = small_mlp()
    prune.prune_unstructured_(m, 0.5)
    prune.prune_unstructured_(m, 0.8)
    assert int((m[0].weight == 0).sum()) == int(0.8 * 128)  # 102, not 0.5 + 0.8 * 0.5


def test_per_layer_dict():
    m = small_mlp()
    prune.prune_unstructured_(m, {"0": 0.25, "2": 0.5})
    s = prune.sparsity(m)
    assert (s["0"], s["2"]) == (32 / 128, 32 / 64)


def test_taylor_and_random_criteria():
    m = small_mlp()
    x, y = quadrant_data()
    grads = prune.gradients(m, [(x, y)])
    w = m[0].weight.detach().clone()
    prune.prune_unstructured_(m, 0.5, criterion="taylor", data=[(x, y)])
    kept = m[0].weight.detach() != 0
    score = (w * grads["0"]).abs()
    assert score[kept].min() >= score[~kept].max()
    a, b = small_mlp(), small_mlp()
    prune.prune_unstructured_(a, 0.5, criterion="random", seed=3)
    prune.prune_unstructured_(b, 0.5, criterion="random", seed=3)
    assert torch.equal(a[0].weight, b[0].weight)  # seeded


def test_l1_l2_regularization_value():
    m = small_mlp()
    w0, w2 = m[0].weight, m[2].weight
    expect = 0.1 * (w0.abs().sum() + w2.abs().sum()) + 0.01 * ((w0 ** 2).sum() + (w2 ** 2).sum())
    assert torch.allclose(prune.regularization(m, l1=0.1, l2=0.01), expect)


@pytest.mark.parametrize("amount", [1.0, -0.1, 1.5, "half", True])
def test_ratio_outside_range(amount):
    with pytest.raises(ConfigError, match="outside \\[0, 1\\)"):
        prune.prune_unstructured_(small_mlp(), amount)


def test_bad_names_and_nan_weights():
    with pytest.raises(ConfigError, match="did you mean 'l1'"):
        prune.prune_unstructured_(small_mlp(), 0.5, criterion="l11")
    with pytest.raises(ConfigError, match="no prunable layer 'x'"):
        prune.prune_unstructured_(small_mlp(), {"x": 0.5})
    m = small_mlp()
    with torch.no_grad():
        m[2].weight[0, 0] = float("nan")
    with pytest.raises(DataError, match="2.weight.*NaN"):
        prune.prune_unstructured_(m, 0.5)


def test_make_permanent_on_a_copy_leaves_the_original_working():
    import copy

    m = small_mlp()
    prune.prune_unstructured_(m, 0.5)
    c = prune.make_permanent_(copy.deepcopy(m))
    x = quadrant_data()[0]
    assert torch.equal(c(x), m(x))  # the original still has its mask and still runs
    assert prune.get_mask(m[0]) is not None and prune.get_mask(c[0]) is None
    assert type(c[0]) is nn.Linear
