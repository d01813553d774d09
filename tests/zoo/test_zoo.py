import pytest
import torch
from torch import nn

from tinyopt import zoo
from tinyopt.errors import ConfigError
from tinyopt.graph.shapes import same_padding
from tinyopt.zoo._layers import same_pads

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


SMALL = {"mobilenet_v1": {"input_size": 32}}  # same layers, fewer pixels: keeps the test fast


@pytest.mark.parametrize("name", list(zoo.ZOO))
def test_every_model_builds_runs_and_is_deterministic(name):
    kw = SMALL.get(name, {})
    torch.manual_seed(0)
    a = zoo.build(name, **kw).eval()
    torch.manual_seed(0)
    b = zoo.build(name, **kw).eval()
    assert a.input_shape == zoo.input_shape(name, **kw)
    x = torch.randn(2, *a.input_shape)
    ya, yb = a(x), b(x)
    assert torch.equal(ya, yb)
    assert ya.shape[0] == 2 and ya.ndim == 2


@pytest.mark.parametrize("name", list(zoo.ZOO))
def test_num_classes_everywhere(name):
    m = zoo.build(name, num_classes=5, **SMALL.get(name, {})).eval()
    assert m(torch.zeros(1, *m.input_shape)).shape == (1, 5)


def test_deep_compression_lenets_have_the_papers_counts():
    # LeNet-300-100: 784*300+300 + 300*100+100 + 100*10+10 = 235,500 + 30,100 + 1,010 = 266,610
    assert n_params(zoo.build("lenet300")) == 266_610
    # LeNet-5: 20*25+20 + 50*20*25+50 + 800*500+500 + 500*10+10 = 520 + 25,050 + 400,500 + 5,010
    assert n_params(zoo.build("lenet5")) == 431_080


def test_dscnn_unfolded_count():
    # Folded reference: 22,604 (conv 10*4*64+64, 4*(dw 9*64+64 + pw 64*64+64), fc 64*12+12).
    # Here the 9 convs have no bias (-9*64) and each carries a BN with gamma+beta (+9*128).
    assert n_params(zoo.build("dscnn")) == 22_604 - 9 * 64 + 9 * 128


def test_mlp_hidden_sizes_and_input():
    m = zoo.build("mlp", input_size=20, hidden=(7,), num_classes=3)
    assert m.input_shape == (20,)
    assert n_params(m) == 20 * 7 + 7 + 7 * 3 + 3


def test_cnn1d_and_mobilenet_options():
    m = zoo.build("cnn1d", in_channels=6, length=64, num_classes=4)
    assert m.input_shape == (6, 64)
    assert m(torch.zeros(1, 6, 64)).shape == (1, 4)
    mb = zoo.build("mobilenet_v1", alpha=0.5, input_size=64, num_classes=3)
    assert mb.input_shape == (3, 64, 64) and zoo.input_shape("mobilenet_v1") == (3, 96, 96)
    # last pointwise has int(1024*0.5) = 512 channels feeding the 3-way head
    assert zoo.head_of(mb)[1].in_features == 512


@pytest.mark.parametrize("size,k,s",
                         [(49, 10, 2), (10, 4, 2), (32, 3, 2), (32, 1, 2), (25, 3, 1), (96, 3, 2)])
def test_same_pads_match_tflite_rule(size, k, s):
    out = -(-size // s)
    assert same_pads(size, k, s) == same_padding(size, k, s, 1, out)


def test_same_padding_reproduces_tflite_output_sizes():
    # kws_ref_model.tflite: 49x10 input, 10x4 stride-2 SAME conv -> 25x5
    feats = zoo.build("dscnn").features
    y = feats[0](torch.zeros(1, 1, 49, 10))
    assert y.shape == (1, 64, 25, 5)


def test_replace_head_and_freeze_backbone():
    torch.manual_seed(0)
    m = zoo.build("digits_cnn")
    zoo.replace_head(m, 3)
    name, head = zoo.head_of(m)
    assert name == "classifier.0" and head.out_features == 3 and head.in_features == 16 * 4
    zoo.freeze_backbone(m)
    trainable = {n for n, p in m.named_parameters() if p.requires_grad}
    assert trainable == {"classifier.0.weight", "classifier.0.bias"}
    assert m(torch.zeros(1, 1, 8, 8)).shape == (1, 3)


def test_bad_names_and_options():
    with pytest.raises(ConfigError, match="did you mean 'dscnn'"):
        zoo.build("dscn")
    with pytest.raises(ConfigError, match="unknown option 'width'"):
        zoo.build("resnet8", width=2)
    with pytest.raises(ConfigError, match="num_classes must be a positive"):
        zoo.replace_head(zoo.build("mlp"), 0)
    with pytest.raises(ConfigError, match="no nn.Linear"):
        zoo.freeze_backbone(nn.Sequential(nn.ReLU()))
