"""The zoo's MLPerf Tiny models equal the reference .tflite files in parameters and MACs, by every door:
PyTorch → Graph, PyTorch → ONNX → Graph, the YAML spec, and the .tflite itself (all with BN folded)."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from conftest import KWS_FLOAT, KWS_INT8, RESNET_FLOAT, RESNET_INT8, ROOT, need
from tinyopt import zoo
from tinyopt.graph import load_model
from tinyopt.graph.ir import Graph, iter_param_tensors
from tinyopt.graph.onnx_import import load_onnx
from tinyopt.graph.passes import fold_batchnorm
from tinyopt.graph.torch_import import from_torch

# Reference figures, counted by hand from the architectures:
# DS-CNN: conv 10*4*1*64+64 = 2,624; 4 x (dw 3*3*64+64 = 640, pw 64*64+64 = 4,160); fc 64*12+12 = 780
#   -> 2,624 + 4*4,800 + 780 = 22,604 params.
#   MACs: conv 25*5*64*40 = 320,000; dw 25*5*64*9 = 72,000; pw 25*5*64*64 = 512,000; fc 768
#   -> 320,000 + 4*(72,000 + 512,000) + 768 = 2,656,768.
# ResNet-8: 448 + 2*2,320 + (4,640 + 9,248 + 544) + (18,496 + 36,928 + 2,112) + 650 = 77,706 params.
#   MACs: 32*32*16*27 + 2*32*32*16*144 + 16*16*32*144 + 16*16*32*288 + 16*16*32*16
#         + 8*8*64*288 + 8*8*64*576 + 8*8*64*32 + 640 = 12,501,632.
EXPECTED = {"dscnn": (22_604, 2_656_768), "resnet8": (77_706, 12_501_632)}
TFLITE = {"dscnn": (KWS_INT8, KWS_FLOAT), "resnet8": (RESNET_INT8, RESNET_FLOAT)}
SPEC = {"dscnn": "kws.yaml", "resnet8": "resnet8.yaml"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def hand_macs(g: Graph) -> list[tuple[str, int]]:
    """Per-layer MACs from shapes: conv OH*OW*O*KH*KW*I, depthwise OH*OW*C*M*KH*KW, dense O*I."""
    rows = []
    for n in g.nodes:
        out = g.tensors[n.outputs[0]].shape
        w = g.tensors[n.inputs[1]].shape if len(n.inputs) > 1 and n.inputs[1] else None
        if n.op == "CONV_2D":
            o, kh, kw, i = w
            rows.append((n.op, out[1] * out[2] * o * kh * kw * i))
        elif n.op == "DEPTHWISE_CONV_2D":
            _, kh, kw, cm = w
            rows.append((n.op, out[1] * out[2] * cm * kh * kw))
        elif n.op == "FULLY_CONNECTED":
            o, i = w
            rows.append((n.op, o * i))
    return sorted(rows)


def params(g: Graph) -> int:
    return sum(t.size for n in g.nodes for t in iter_param_tensors(g, n))


def layer_params(g: Graph) -> list[tuple[str, int]]:
    return sorted((n.op, sum(t.size for t in iter_param_tensors(g, n))) for n in g.nodes
                  if any(True for _ in iter_param_tensors(g, n)))


@pytest.fixture(scope="module")
def doors(tmp_path_factory):
    """name -> {door: folded Graph} for the two MLPerf models."""
    out = {}
    tmp = tmp_path_factory.mktemp("parity")
    for name in EXPECTED:
        torch.manual_seed(0)
        m = zoo.build(name).eval()
        path = tmp / f"{name}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(m, torch.zeros(1, *m.input_shape), str(path), dynamo=False,
                              training=torch.onnx.TrainingMode.PRESERVE)
        out[name] = {"torch": fold_batchnorm(from_torch(m, m.input_shape)),
                     "onnx": fold_batchnorm(load_onnx(path))}
    return out


@pytest.mark.parametrize("name", list(EXPECTED))
@pytest.mark.parametrize("door", ["torch", "onnx"])
def test_zoo_doors_match_the_hand_counts(doors, name, door):
    g = doors[name][door]
    p, macs = EXPECTED[name]
    assert "BATCH_NORM" not in {n.op for n in g.nodes}
    assert params(g) == p
    assert sum(m for _, m in hand_macs(g)) == macs


@pytest.mark.parametrize("name", list(EXPECTED))
def test_torch_onnx_tflite_and_spec_agree_layer_by_layer(doors, name):
    graphs = dict(doors[name])
    for path in TFLITE[name]:
        graphs[path.name] = load_model(need(path))
    graphs["spec"] = fold_batchnorm(load_model(ROOT / "examples" / "specs" / SPEC[name]))
    ref = graphs.pop("torch")
    for door, g in graphs.items():
        assert layer_params(g) == layer_params(ref), door
        assert hand_macs(g) == hand_macs(ref), door
        assert params(g) == EXPECTED[name][0], door


@pytest.mark.parametrize("name", list(EXPECTED))
def test_analysis_cost_agrees(doors, name):
    from tinyopt.analysis.cost import layer_costs, totals

    t = totals(layer_costs(doors[name]["torch"]))
    assert (t.params, t.macs) == EXPECTED[name]


def test_resnet8_spec_with_branching_shortcuts():
    g = fold_batchnorm(load_model(ROOT / "examples" / "specs" / "resnet8.yaml"))
    assert params(g) == EXPECTED["resnet8"][0]
    assert sum(m for _, m in hand_macs(g)) == EXPECTED["resnet8"][1]


def test_kws_and_lenet5_specs():
    g = fold_batchnorm(load_model(ROOT / "examples" / "specs" / "kws.yaml"))
    assert (params(g), sum(m for _, m in hand_macs(g))) == EXPECTED["dscnn"]
    lenet = load_model(ROOT / "examples" / "specs" / "lenet5.yaml")
    # 24*24*20*25 + 8*8*50*500 + 800*500 + 500*10 (see the spec's comment)
    assert (params(lenet), sum(m for _, m in hand_macs(lenet))) == (431_080, 2_293_000)
    torch.manual_seed(0)
    m = zoo.build("lenet5")
    assert layer_params(from_torch(m, m.input_shape)) == layer_params(lenet)


def _dequantized(t) -> np.ndarray:
    """Float values of a weight tensor (the float KWS file keeps some weights int8 with a scale)."""
    if t.quant is None:
        return t.data.astype(np.float32)
    shape = [1] * t.data.ndim
    if t.quant.per_channel:
        shape[t.quant.axis] = -1
    scale = t.quant.scale.reshape(shape)
    zp = t.quant.zero_point.reshape(shape)
    return ((t.data.astype(np.float64) - zp) * scale).astype(np.float32)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_zoo_model_with_the_reference_weights_computes_the_reference(name):
    """Copy the float .tflite's (BN-folded) weights into the zoo module: PyTorch then matches LiteRT.

    This pins down what params/MACs cannot: TFLite's SAME alignment (the extra pad pixel after) in
    the stride-2 convs, the layer order and the depthwise layout.
    """
    from ai_edge_litert.interpreter import Interpreter

    path = need(TFLITE[name][1])
    g = load_model(path)
    layers = [n for n in g.nodes if n.op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")]
    m = zoo.build(name).eval()
    pairs: list[list] = []  # [conv or linear, the BatchNorm that follows it or None]
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            pairs[-1][1] = mod
        elif isinstance(mod, (nn.Conv2d, nn.Linear)):
            pairs.append([mod, None])
    assert len(pairs) == len(layers)
    with torch.no_grad():
        for (mod, bn), node in zip(pairs, layers):
            b = _dequantized(g.tensors[node.inputs[2]])
            # TFLite [O, KH, KW, I] -> PyTorch [O, I, KH, KW]; depthwise [1, KH, KW, C] -> [C, 1, KH, KW]
            w = {"CONV_2D": (0, 3, 1, 2), "DEPTHWISE_CONV_2D": (3, 0, 1, 2)}.get(node.op, (0, 1))
            w = np.ascontiguousarray(_dequantized(g.tensors[node.inputs[1]]).transpose(w))
            mod.weight.copy_(torch.from_numpy(w))
            if bn is None:
                mod.bias.copy_(torch.from_numpy(b))
            else:  # an identity batch norm whose shift is the folded bias
                bn.weight.fill_(1.0)
                bn.bias.copy_(torch.from_numpy(b))
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    rng = np.random.default_rng(0)
    for _ in range(2):
        x = rng.uniform(-1, 1, size=inp["shape"]).astype(np.float32)
        it.set_tensor(inp["index"], x)
        it.invoke()
        want = it.get_tensor(out["index"])
        with torch.no_grad():
            got = torch.softmax(m(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())), dim=1).numpy()
        # ResNet-8's file is all float32: agreement to float rounding. The "float" KWS file keeps int8
        # weights that LiteRT runs through hybrid kernels (activations quantized on the fly): ~2e-4.
        # Misaligning the first conv's SAME padding (PyTorch's symmetric (5, 1)) moves it by ~4e-3.
        np.testing.assert_allclose(got, want, atol=1e-5 if name == "resnet8" else 1e-3, rtol=0)
