"""k-means weight sharing: known centroids, the three initialisations, zeros kept, centroid gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from tinyopt.compress.cluster import (
    ClusterConfig,
    KMeansQuantizer,
    cluster_,
    encode_model,
    finetune_centroids_,
)
from tinyopt.compress.container import load_compressed, save_compressed
from tinyopt.errors import ConfigError


def test_known_centroids_three_groups():
    # three tight groups; linear init = [min, mid, max] = [-1.1, 0.5, 2.1] already separates them,
    # so the centroids are the group means -1.0, 0.5, 2.0.
    w = np.array([2.1, -1.1, 0.4, -1.0, 0.5, 1.9, -0.9, 0.6, 2.0])
    q = KMeansQuantizer(n_clusters=3, init="linear").fit(w)
    assert q.fit(w) is q
    np.testing.assert_allclose(q.codebook_, [-1.0, 0.5, 2.0], rtol=1e-6)
    assert q.labels_.tolist() == [2, 0, 1, 0, 1, 2, 0, 1, 2]
    assert q.sparse_ is False and q.index_bits == 2
    np.testing.assert_allclose(q.inertia_, 6 * 0.01, rtol=1e-6)  # six points 0.1 from their mean


def test_linear_versus_density_init_by_hand():
    # w = 1, 1.25, 1.5, 1.75, 11 (exact in binary), k = 3.
    # linear init [1, 6, 11] -> midpoints 3.5, 8.5 -> {1..1.75} mean 1.375, 6 stays (empty), {11}.
    # density init = quantiles 0, .5, 1 = [1, 1.5, 11] -> midpoints 1.25, 6.25 -> {1, 1.25} (a tie goes
    # to the lower centroid) mean 1.125, {1.5, 1.75} mean 1.625, {11}; stable on the next pass.
    w = np.array([1.0, 1.25, 1.5, 1.75, 11.0])
    lin = KMeansQuantizer(3, init="linear").fit(w)
    den = KMeansQuantizer(3, init="density").fit(w)
    assert lin.codebook_.tolist() == [1.375, 6.0, 11.0]
    assert den.codebook_.tolist() == [1.125, 1.625, 11.0]
    assert lin.inertia_ == pytest.approx(2 * 0.375**2 + 2 * 0.125**2)
    assert den.inertia_ == pytest.approx(4 * 0.125**2)
    # linear keeps the rare large weight exactly, as the paper argues
    assert 11.0 in lin.codebook_ and 11.0 in den.codebook_


def test_random_init_is_seeded_and_converges_to_a_fixed_point():
    w = np.random.default_rng(1).normal(size=500)
    a = KMeansQuantizer(8, init="random", seed=3).fit(w)
    b = KMeansQuantizer(8, init="random", seed=3).fit(w)
    c = KMeansQuantizer(8, init="random", seed=4).fit(w)
    assert np.array_equal(a.codebook_, b.codebook_) and not np.array_equal(a.codebook_, c.codebook_)
    # Lloyd fixed point: every weight sits at its nearest centroid and each centroid is its members' mean
    nearest = np.abs(w[:, None] - a.codebook_[None, :].astype(np.float64)).argmin(1)
    assert np.array_equal(nearest, a.labels_)
    for j in range(8):
        np.testing.assert_allclose(a.codebook_[j], w[a.labels_ == j].mean(), rtol=1e-5)


def test_zeros_stay_zeros_with_index_zero_reserved():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(20, 30))
    w[rng.random(w.shape) < 0.7] = 0
    q = KMeansQuantizer(15).fit(w)
    assert q.sparse_ and q.codebook_[0] == 0 and len(q.codebook_) == 16 and q.index_bits == 4
    assert np.array_equal(q.labels_ == 0, w == 0)
    assert np.array_equal(q.quantized() == 0, w == 0)


def test_too_many_clusters_names_the_layer():
    w = np.array([0.0, 0.5, 0.5, -0.25, 0.0])  # two distinct non-zero weights
    with pytest.raises(ConfigError, match="3 clusters requested but only 2 distinct non-zero") as e:
        KMeansQuantizer(3).fit(w, layer="features.1")
    assert "features.1" in str(e.value) and "Fix:" in str(e.value)
    with pytest.raises(ConfigError, match="unknown init 'lineer'; did you mean 'linear'"):
        KMeansQuantizer(2, init="lineer").fit(w)


def _mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(12, 40), nn.ReLU(), nn.Linear(40, 3))


@pytest.mark.parametrize("bits", [0, 17])
def test_cluster_bits_out_of_range(bits):
    with pytest.raises(ConfigError, match="cluster.dense_bits: bits=.* is outside 1-16"):  # refused when made
        ClusterConfig(dense_bits=bits)
    with pytest.raises(ConfigError, match="cluster.layers.2: bits="):
        ClusterConfig(layers={"2": bits or 20})


def test_cluster_model_and_container_round_trip(tmp_path):
    model = _mlp()
    with torch.no_grad():
        model[0].weight[model[0].weight.abs() < 0.1] = 0  # a pruned first layer
    zeros = model[0].weight == 0
    qs = cluster_(model, ClusterConfig(dense_bits=4, layers={"2": 3}))
    assert len(torch.unique(model[0].weight)) <= 16 and torch.equal(model[0].weight == 0, zeros)
    assert len(torch.unique(model[2].weight)) <= 8 and qs["2"].sparse_ is False
    path = tmp_path / "m.topz"
    save_compressed(path, encode_model(model, qs))
    back = load_compressed(path)
    for k, v in model.state_dict().items():
        assert np.array_equal(back[k], v.numpy()), k
    with pytest.raises(ConfigError, match="no Conv/Linear layer '3'"):
        cluster_(_mlp(), ClusterConfig(layers={"3": 4}))


def test_centroid_gradient_is_the_sum_over_its_weights():
    # One Linear(4 -> 1) with weights [0.1, 0.1, 0.5, 0.5]: two clusters. Loss = output summed, so
    # dL/dw_i = x_i. With x = [1, -3, 2, 1]: cluster 0.1 gets 1 - 3 = -2, cluster 0.5 gets 2 + 1 = 3.
    # One SGD step with lr 0.01 moves them to 0.1 + 0.02 = 0.12 and 0.5 - 0.03 = 0.47.
    layer = nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.1, 0.1, 0.5, 0.5]]))
    model = nn.Sequential(layer)
    qs = cluster_(model, ClusterConfig(dense_bits=1))
    x = torch.tensor([[1.0, -3.0, 2.0, 1.0]])
    finetune_centroids_(model, qs, [(x, None)], lr=0.01, optimizer="sgd", loss_fn=lambda out, _: out.sum())
    np.testing.assert_allclose(qs["0"].codebook_, [0.12, 0.47], rtol=1e-6)
    np.testing.assert_allclose(layer.weight.detach().numpy(), [[0.12, 0.12, 0.47, 0.47]], rtol=1e-6)


def test_finetune_keeps_zeros_and_lowers_the_loss():
    torch.manual_seed(0)
    x = torch.randn(256, 12)
    y = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 1).long()
    model = _mlp()
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(100):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    with torch.no_grad():
        model[0].weight[model[0].weight.abs() < 0.15] = 0
    zeros = model[0].weight == 0
    qs = cluster_(model, ClusterConfig(dense_bits=2))
    losses = []
    batches = [(x[i:i + 64], y[i:i + 64]) for i in range(0, 256, 64)]
    finetune_centroids_(model, qs, batches, epochs=15, lr=1e-2, on_epoch=lambda e, loss: losses.append(loss))
    assert len(losses) == 15 and losses[-1] < losses[0]
    assert torch.equal(model[0].weight == 0, zeros)
    assert len(torch.unique(model[0].weight)) <= 4
    assert np.array_equal(qs["0"].quantized(), model[0].weight.detach().numpy())


def test_recipe_steps_cluster_then_huffman(tmp_path):
    from tinyopt.compress._steps import run_recipe
    from tinyopt.compress.recipe import Recipe, StepContext

    torch.manual_seed(0)
    x = torch.randn(128, 12)
    y = (x[:, 0] > 0).long()
    ctx = StepContext(x, y, x, y, seed=0, batch_size=32)
    path = tmp_path / "r.topz"
    recipe = Recipe.from_dict({"steps": [{"prune": {"sparsity": 0.5, "epochs": 0}},
                                         {"cluster": {"dense_bits": 3, "epochs": 1, "lr": 1e-3}},
                                         {"huffman": {"path": str(path)}}]})
    model, rows, state = (result := run_recipe(_mlp(), recipe, ctx)).model, result.rows, result.state
    assert [r.step.split()[1] for r in rows[1:]] == ["prune", "cluster", "huffman"]
    from tinyopt.compress.size import model_size

    coded = [r for r in model_size(model, state=state).rows if r.index == "huffman"]
    # exact record bytes
    assert coded and rows[3].bytes == model_size(model, state=state).bytes != rows[2].bytes
    assert state.container_bytes == path.stat().st_size
    assert set(state.clusters) == {"0", "2"}
    back = load_compressed(path)
    for k, v in model.state_dict().items():
        assert np.array_equal(back[k], v.numpy()), k
    assert len(torch.unique(model[0].weight)) <= 8 and float((model[0].weight == 0).float().mean()) >= 0.5
    with pytest.raises(ConfigError, match="put a cluster step before the huffman step"):
        run_recipe(_mlp(), Recipe.from_dict({"steps": ["huffman"]}), ctx)
    with pytest.raises(ConfigError, match="unknown key 'dense_bit'"):
        Recipe.from_dict({"steps": [{"cluster": {"dense_bit": 3}}]})


def test_parametrized_weights_are_refused():
    from tinyopt.compress.prune import prune_unstructured_

    model = prune_unstructured_(_mlp(), 0.5)
    with pytest.raises(ConfigError, match="make_permanent_") as e:
        cluster_(model)
    assert "0:" in str(e.value)


def test_encode_model_with_batchnorm_loads_back_strictly(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(64, 2))
    model(torch.randn(8, 1, 6, 6))  # train mode: running stats and num_batches_tracked = 1
    qs = cluster_(model, ClusterConfig(conv_bits=3, dense_bits=3))
    path = tmp_path / "bn.topz"
    save_compressed(path, encode_model(model, qs))
    fresh = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(64, 2))
    fresh.load_state_dict({k: torch.from_numpy(v) for k, v in load_compressed(path).items()})
    for (k, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), k


def test_same_seed_same_bytes():
    def once():
        model = _mlp(7)
        with torch.no_grad():
            model[0].weight[model[0].weight.abs() < 0.05] = 0
        qs = cluster_(model, ClusterConfig(dense_bits=4, init="random"), seed=11)
        from tinyopt.compress.container import pack

        return pack(encode_model(model, qs))[0]

    assert once() == once()
