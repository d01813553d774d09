"""PyTorch importer: every zoo model computes what PyTorch computes (two float oracles: the project's
runtime and the float64 reference in test_passes.py), counts the same parameters, and bad input fails
with an error that names the node."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_passes import n_params, run_float
from torch import nn

from tinyopt import zoo
from tinyopt.errors import ModelFormatError, UnsupportedOpError
from tinyopt.graph.passes import fold_batchnorm, fuse_activations
from tinyopt.graph.torch_import import from_torch

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def to_nhwc(x: torch.Tensor) -> np.ndarray:
    a = x.detach().numpy()
    if a.ndim == 4:
        return np.ascontiguousarray(a.transpose(0, 2, 3, 1))
    if a.ndim == 3:
        return np.ascontiguousarray(a.transpose(0, 2, 1)[:, None])
    return a


def randomize_bn(m: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN statistics, so a wrong channel order or a missing fold shows in the outputs."""
    g = torch.Generator().manual_seed(seed)
    for mod in m.modules():
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            c = mod.num_features
            mod.running_mean.copy_(torch.rand(c, generator=g) - 0.5)
            mod.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            mod.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            mod.bias.data.copy_(torch.rand(c, generator=g) - 0.5)
    return m


def check(m: nn.Module, shape, batch=3, atol=1e-4, graph=None):
    """Graph output == PyTorch output within ``atol`` (runtime on a batch; float64 reference on row 0)."""
    from tinyopt.runtime import Interpreter

    m.eval()
    g = graph or from_torch(m, shape)
    x = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = m(x).numpy()
    got = Interpreter(g).run(to_nhwc(x).astype(np.float32))[0]
    if want.ndim == 4:
        want = want.transpose(0, 2, 3, 1)
    np.testing.assert_allclose(got, want, atol=atol, rtol=0)
    np.testing.assert_allclose(run_float(g, to_nhwc(x[:1]))[0], want[0], atol=atol, rtol=0)
    return g


SMALL = {"mobilenet_v1": {"input_size": 32}}  # same layers, a ninth of the pixels: keeps the test fast


@pytest.mark.parametrize("name", list(zoo.ZOO))
def test_zoo_model_outputs_and_params(name):
    torch.manual_seed(0)
    m = randomize_bn(zoo.build(name, **SMALL.get(name, {}))).eval()
    kept = from_torch(m, m.input_shape, fold_bn=False)
    # The graph counts BATCH_NORM's four arrays (gamma, beta, running mean, running var);
    # torch's parameters() holds gamma and beta only, so add the two running statistics.
    stats = sum(2 * b.num_features for b in m.modules() if isinstance(b, (nn.BatchNorm1d, nn.BatchNorm2d)))
    assert n_params(kept) == sum(p.numel() for p in m.parameters()) + stats
    # the door folds batch norm (as an ONNX export does): the same function, no BATCH_NORM left
    g = check(m, m.input_shape)
    assert n_params(g) == n_params(fold_batchnorm(kept)) and "BATCH_NORM" not in {n.op for n in g.nodes}
    check(m, m.input_shape, graph=fuse_activations(kept))


def test_weight_layouts():
    torch.manual_seed(0)
    conv, dw, fc = nn.Conv2d(3, 4, (2, 3)), nn.Conv2d(4, 8, 3, groups=4, padding=1), nn.Linear(8, 5)
    m = nn.Sequential(conv, dw, nn.AdaptiveAvgPool2d(1), nn.Flatten(), fc)
    g = from_torch(m, (3, 6, 7))
    c, d, f = (n for n in g.nodes if n.op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"))
    assert (c.op, d.op, d.attrs["depth_multiplier"]) == ("CONV_2D", "DEPTHWISE_CONV_2D", 2)
    w = g.tensors[c.inputs[1]].data  # [O, KH, KW, I]
    assert w.shape == (4, 2, 3, 3) and w[1, 0, 2, 1] == conv.weight[1, 1, 0, 2].item()
    w = g.tensors[d.inputs[1]].data  # [1, KH, KW, I*M]; torch [I*M, 1, KH, KW]
    assert w.shape == (1, 3, 3, 8) and w[0, 2, 1, 5] == dw.weight[5, 0, 2, 1].item()
    assert np.array_equal(g.tensors[f.inputs[1]].data, fc.weight.detach().numpy())
    assert g.tensors[g.inputs[0]].shape == (1, 6, 7, 3)
    check(m, (3, 6, 7))


def test_flatten_permutes_the_dense_columns():
    # 2 channels x 2 x 2 flattened: PyTorch order (c, h, w), the NHWC graph's order (h, w, c).
    # Graph column i holds PyTorch element perm[i] = [0, 4, 1, 5, 2, 6, 3, 7][i].
    torch.manual_seed(0)
    fc = nn.Linear(8, 3)
    m = nn.Sequential(nn.Conv2d(1, 2, 1), nn.Flatten(), fc)
    g = check(m, (1, 2, 2))
    w = g.tensors[next(n for n in g.nodes if n.op == "FULLY_CONNECTED").inputs[1]].data
    np.testing.assert_array_equal(w, fc.weight.detach().numpy()[:, [0, 4, 1, 5, 2, 6, 3, 7]])


def test_view_flatten_and_functional_ops():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(2, 3, 3, padding=1), nn.Conv2d(2, 3, 1)
            self.bn = nn.BatchNorm1d(24)  # 6 channels x 2 x 2
            self.fc = nn.Linear(24, 4)

        def forward(self, x):
            y = torch.cat([F.relu(self.a(x)), torch.sigmoid(self.b(x))], dim=1)  # channel concat
            y = y * 0.5 + F.relu6(y) - torch.tanh(y)
            y = F.max_pool2d(y, 2)
            y = F.avg_pool2d(F.pad(y, (1, 1, 1, 1)), 2)  # zero pad counted, as PyTorch does
            z = y.view(y.size(0), -1)
            return F.softmax(self.fc(F.hardtanh(self.bn(z), 0.0, 6.0)), dim=1)

    torch.manual_seed(0)
    m = randomize_bn(Net())
    g = check(m, (2, 6, 6))
    assert {"CONCATENATION", "PAD", "AVERAGE_POOL_2D", "SOFTMAX", "LOGISTIC",
            "BATCH_NORM"} <= {n.op for n in g.nodes}


def test_residual_mean_and_conv1d():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2 = nn.Conv1d(3, 4, 5, padding=2), nn.Conv1d(4, 4, 3, padding="same", dilation=2)
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            y = F.relu(self.c1(x))
            y = y + self.c2(y)
            return self.fc(y.mean(dim=2))

    torch.manual_seed(0)
    g = check(Net(), (3, 20))
    assert g.tensors[g.inputs[0]].shape == (1, 1, 20, 3)
    assert [n.attrs.get("padding") for n in g.nodes if n.op == "CONV_2D"] == ["SAME", "SAME"]


@pytest.mark.parametrize("pad,stride,size,want", [
    (1, 1, 8, ["CONV_2D"]),          # 3x3 stride 1: symmetric 1 == SAME
    (1, 2, 8, ["PAD", "CONV_2D"]),   # stride 2 on 8: SAME pads (0, 1), PyTorch (1, 1) -> explicit PAD
    (1, 2, 7, ["CONV_2D"]),          # stride 2 on 7: SAME pads (1, 1)
    (0, 2, 8, ["CONV_2D"]),          # no padding: VALID
])
def test_symmetric_padding_maps_to_same_only_when_equal(pad, stride, size, want):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(2, 3, 3, stride=stride, padding=pad))
    g = check(m, (2, size, size))
    assert [n.op for n in g.nodes] == want


def test_zeropad_that_equals_same_becomes_same():
    # the zoo's DS-CNN first conv: 49x10, 10x4 kernel, stride 2: SAME pads (4, 5) x (1, 1)
    torch.manual_seed(0)
    m = nn.Sequential(nn.ZeroPad2d((1, 1, 4, 5)), nn.Conv2d(1, 4, (10, 4), 2))
    g = check(m, (1, 49, 10))
    assert [(n.op, n.attrs["padding"]) for n in g.nodes] == [("CONV_2D", "SAME")]


def test_pools_ceil_mode_and_count_include_pad():
    m = nn.Sequential(nn.MaxPool2d(2, ceil_mode=True), nn.AvgPool2d(3, 1, padding=1, count_include_pad=False),
                      nn.MaxPool2d(3, 2, padding=1))
    # 9 -> ceil(9/2) = 5 (SAME, pads (0, 1)); 5 -> 5 (pads (1, 1)); 5 -> 3 (k 3, s 2: pads (1, 1))
    g = check(m, (2, 9, 9))
    assert [n.attrs["padding"] for n in g.nodes] == ["SAME", "SAME", "SAME"]


def test_train_mode_is_restored_and_bn_stats_untouched():
    torch.manual_seed(0)
    m = zoo.build("cnn1d").train()
    before = m.features[1].running_mean.clone()
    from_torch(m, m.input_shape)
    assert m.training and all(mod.training for mod in m.modules())
    assert torch.equal(m.features[1].running_mean, before)


def test_unsupported_module_names_node_and_lists_supported():
    m = nn.Sequential(nn.Linear(4, 4), nn.GELU())
    with pytest.raises(UnsupportedOpError) as e:
        from_torch(m, (4,))
    msg = str(e.value)
    assert "node '_1' (GELU)" in msg and "module GELU is not supported" in msg and "Conv2d" in msg
    assert "\n" not in msg


@pytest.mark.parametrize("module,shape,match", [
    (nn.Conv2d(4, 4, 3, groups=2), (4, 5, 5), "grouped convolution with groups=2"),
    (nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"), (2, 5, 5), "padding_mode='reflect'"),
    (nn.Hardtanh(-2.0, 2.0), (3,), r"hardtanh\(-2.0, 2.0\)"),
    (nn.Softmax(dim=0), (2, 3, 3), "softmax over axis 0"),
    (nn.AdaptiveAvgPool2d(2), (1, 4, 4), "adaptive average pooling to"),
    (nn.AvgPool2d(2, padding=1, count_include_pad=False), (1, 4, 4), "count_include_pad=False"),
])
def test_unsupported_options(module, shape, match):
    with pytest.raises(UnsupportedOpError, match=match):
        from_torch(module, shape)


def test_untraceable_model_and_bad_shapes():
    class Branchy(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    with pytest.raises(UnsupportedOpError, match="torch.fx cannot trace"):
        from_torch(Branchy(), (3,))
    with pytest.raises(ModelFormatError, match="does not run on an input of shape"):
        from_torch(nn.Linear(4, 2), (5,))
    with pytest.raises(ModelFormatError, match="input_shape must be"):
        from_torch(nn.Linear(4, 2), (0,))
    with pytest.raises(ModelFormatError, match="expected a torch.nn.Module"):
        from_torch(lambda x: x, (4,))
