"""Params, MACs, FLOPs and bytes against the seeds' worked answers and hand counts."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import KWS_FLOAT, KWS_INT8, RESNET_FLOAT, RESNET_INT8, ROOT, need
from tinyopt.analysis.cost import largest_activation, layer_costs, model_dtype, totals
from tinyopt.graph import load_model
from tinyopt.graph.spec import spec_to_graph

SPECS = ROOT / "examples" / "specs"


def test_exam_params_per_layer_and_total():
    rows = layer_costs(load_model(SPECS / "exam.yaml"))
    by_type = [(r.type, r.params) for r in rows if r.params]
    # Solution key: (3×3×1+1)×16 = 160; (3×3×16+1)×32 = 4,640; (28,800+1)×3 = 86,403.
    assert by_type == [("CONV_2D", 160), ("CONV_2D", 4640), ("FULLY_CONNECTED", 86403)]
    t = totals(rows)
    assert t.params == 91203
    assert t.param_bytes == 91203 * 4


def test_exam_flops_and_macs():
    rows = layer_costs(load_model(SPECS / "exam.yaml"))
    macs = [r.macs for r in rows if r.macs]
    # conv1: 126×126×16 outputs × 9; conv2: 61×61×32 × 144; dense: 3 × 28,800.
    assert macs == [126 * 126 * 16 * 9, 61 * 61 * 32 * 144, 3 * 28800]
    t = totals(rows)
    assert t.flops == 2 * sum(macs) == 39_037_824
    assert round(t.flops / 1e6, 2) == 39.04  # the key: 39.04 MFLOPs (its "39 M" rounded)


def test_exam_pruned_params_and_flops():
    t = totals(layer_costs(load_model(SPECS / "exam_pruned.yaml")))
    # Key: 80 + 584 + 21,603 = 22,267 params.
    assert t.params == 80 + (3 * 3 * 8 + 1) * 8 + (7200 + 1) * 3 == 22267
    # conv1 2×126²×8×9 = 2,286,144; conv2 2×61²×8×72 = 4,286,592 (the key rounds to 4.27 M);
    # dense 2×7,200×3 = 43,200.
    assert t.flops == 2_286_144 + 4_286_592 + 43_200
    assert round(t.flops / 1e6, 2) == 6.62


@pytest.mark.parametrize("spec,expected", [
    ({"input": [25088], "layers": [{"type": "dense", "units": 128}]}, 25088 * 128 + 128),   # 3,211,392
    ({"input": [128], "layers": [{"type": "dense", "units": 64}, {"type": "dense", "units": 10}]},
     128 * 64 + 64 + 64 * 10 + 10),                                                           # 8,906
])
def test_quiz_dense_params(spec, expected):
    assert totals(layer_costs(spec_to_graph(spec))).params == expected
    assert expected in (3_211_392, 8_906)


def test_quiz_example_specs_match_the_key():
    assert totals(layer_costs(load_model(SPECS / "quiz_dense_head.yaml")))  # loads
    first = layer_costs(load_model(SPECS / "quiz_dense_head.yaml"))[0]
    assert first.params == 3_211_392
    assert totals(layer_costs(load_model(SPECS / "transfer_head.yaml"))).params == 8_906


def test_other_ops_are_counted_apart():
    g = spec_to_graph({"input": [4, 4, 2], "layers": [
        {"type": "conv2d", "filters": 3, "kernel": 3, "activation": "relu"},   # out 2×2×3
        {"type": "maxpool2d", "pool": 2},                                       # out 1×1×3
        {"type": "flatten"},
        {"type": "dense", "units": 2, "activation": "softmax"}]})
    rows = {r.name: r for r in layer_costs(g)}
    conv = rows["conv2d_0"]
    assert conv.macs == 2 * 2 * 3 * (3 * 3 * 2) and conv.flops == 2 * conv.macs
    assert conv.other_ops == 12 + 12          # 12 bias adds + 12 ReLUs
    assert rows["maxpool2d_1"].other_ops == 3 * 4 and rows["maxpool2d_1"].flops == 0
    assert rows["dense_3"].other_ops == 2     # bias adds
    assert rows["dense_3/softmax"].other_ops == 3 * 2


def test_as_if_int8_prices_biases_at_int32():
    g = load_model(SPECS / "exam.yaml")
    t = totals(layer_costs(g, "int8"))
    biases = 16 + 32 + 3
    assert t.param_bytes == (91203 - biases) * 1 + biases * 4
    assert largest_activation(g, "int8")[1] == 126 * 126 * 16
    assert largest_activation(g)[1] == 126 * 126 * 16 * 4


def _tflite_param_elements(path) -> tuple[int, int]:
    """(params, bytes) of conv/dw/fc weight and bias tensors, read with the `tflite` schema package."""
    import tflite

    model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
    sub = model.Subgraphs(0)
    codes = {getattr(tflite.BuiltinOperator, k): k for k in dir(tflite.BuiltinOperator) if k.isupper()}
    seen, n, nbytes = set(), 0, 0
    width = {tflite.TensorType.INT8: 1, tflite.TensorType.INT32: 4, tflite.TensorType.FLOAT32: 4}
    for i in range(sub.OperatorsLength()):
        op = sub.Operators(i)
        oc = model.OperatorCodes(op.OpcodeIndex())
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        if codes[code] not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            continue
        for k in (1, 2):
            idx = op.Inputs(k) if k < op.InputsLength() else -1
            if idx >= 0 and idx not in seen:
                seen.add(idx)
                t = sub.Tensors(idx)
                size = int(np.prod(t.ShapeAsNumpy()))
                n += size
                nbytes += size * width[t.Type()]
    return n, nbytes


# Hand counts (DS-CNN: 49×10 input; conv 10×4/2 → 25×5×64; 4 × (dw 3×3 + pw 64→64); FC 64→12).
KWS_MACS = 25 * 5 * 64 * 10 * 4 + 4 * (25 * 5 * 64 * 9 + 25 * 5 * 64 * 64) + 64 * 12          # 2,656,768
# ResNet-8: conv 3×3 3→16; 2 × conv 3×3 16→16 @32²; stage 2 @16²: 3×3 16→32, 3×3 32→32, 1×1 16→32;
# stage 3 @8²: 3×3 32→64, 3×3 64→64, 1×1 32→64; FC 64→10.
RESNET_MACS = (32 * 32 * 16 * 27 + 2 * 32 * 32 * 16 * 144
               + 16 * 16 * 32 * (144 + 288 + 16) + 8 * 8 * 64 * (288 + 576 + 32) + 64 * 10)    # 12,501,632


@pytest.mark.parametrize("path,macs",
                         [(KWS_INT8, KWS_MACS), (KWS_FLOAT, KWS_MACS), (RESNET_INT8, RESNET_MACS),
                          (RESNET_FLOAT, RESNET_MACS)])
def test_mlperf_params_and_macs(path, macs):
    g = load_model(need(path))
    t = totals(layer_costs(g))
    params, nbytes = _tflite_param_elements(path)
    assert t.params == params
    assert t.param_bytes == nbytes
    assert t.macs == macs and t.flops == 2 * macs
    assert macs in (2_656_768, 12_501_632)
    assert model_dtype(g) == ("int8" if path in (KWS_INT8, RESNET_INT8) else "float32")
