"""`tinyopt check`: per-operator verdicts with reasons, exit 0 when all is supported and 2 otherwise."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import KWS_FLOAT, KWS_INT8, RESNET_INT8, need
from tinyopt.cli import main
from tinyopt.export.tflite import graph_to_tflite_bytes
from tinyopt.graph.ir import Graph, Node, QuantParams, Tensor


def run_json(capsys, *args):
    code = main([str(a) for a in args] + ["--json"])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


@pytest.mark.parametrize("path,runtime", [(KWS_INT8, "tflm-reference"), (RESNET_INT8, "cmsis-nn"),
                                          (RESNET_INT8, "tinyopt-c")])
def test_int8_mlperf_models_are_supported(path, runtime, capsys):
    code, d, err = run_json(capsys, "check", need(path), "--runtime", runtime)
    assert code == 0, err
    assert d["runtime"] == runtime
    assert d["supported"] is True and len(d["operators"]) == (13 if path == KWS_INT8 else 16)
    first = d["operators"][0]
    assert first["op"] == "CONV_2D" and first["supported"]
    assert "int8" in first["reason"] and "per-channel" in first["reason"]


def test_hybrid_float_model_is_refused_by_tflm(capsys):
    code, d, _ = run_json(capsys, "check", need(KWS_FLOAT), "--runtime", "tflm")
    assert code == 2 and d["supported"] is False
    bad = [o for o in d["operators"] if not o["supported"]]
    # The 5 convs have int8 weights on float activations; depthwise, pool, dense, softmax are float.
    assert [o["index"] for o in bad] == [0, 2, 4, 6, 8]
    assert all("hybrid" in o["reason"] for o in bad)
    code, d, _ = run_json(capsys, "check", KWS_FLOAT, "--runtime", "tinyopt-c")
    assert code == 2 and not any(o["supported"] for o in d["operators"])
    assert "int8" in d["operators"][0]["reason"]


def test_reasons_for_activation_and_softmax_params(tmp_path, capsys):
    g = Graph("m")
    q = QuantParams([0.1], [0])
    g.add_tensor(Tensor("x", (1, 8), "int8", quant=q))
    g.add_tensor(Tensor("w", (4, 8), "int8", data=np.ones((4, 8), np.int8), quant=QuantParams([0.01], [0])))
    g.add_tensor(Tensor("h", (1, 4), "int8", quant=q))
    g.add_tensor(Tensor("y", (1, 4), "int8", quant=QuantParams([0.1], [0])))  # softmax wants 1/256, -128
    g.add_node(Node("fc", "FULLY_CONNECTED", ["x", "w"], ["h"], dict(activation="TANH")))
    g.add_node(Node("sm", "SOFTMAX", ["h"], ["y"], dict(beta=1.0)))
    g.inputs, g.outputs = ["x"], ["y"]
    path = tmp_path / "m.tflite"
    path.write_bytes(graph_to_tflite_bytes(g))
    code, d, _ = run_json(capsys, "check", path, "--runtime", "tflm-reference")
    assert code == 2
    fc, sm = d["operators"]
    assert not fc["supported"] and "fused activation TANH" in fc["reason"]
    assert not sm["supported"] and "scale 1/256" in sm["reason"] and "zero point -128" in sm["reason"]


def test_table_output_and_unknown_runtime(capsys):
    code = main(["check", str(need(KWS_INT8))])
    out, _ = capsys.readouterr()
    assert code == 0 and "13 of 13 operators supported on tflm-reference" in out
    code = main(["check", str(KWS_INT8), "--runtime", "tflite-micro"])
    _, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1
    assert "unknown runtime 'tflite-micro'" in err and "tflm-reference" in err


def test_old_target_flag_still_works_with_a_note(capsys):
    code, d, err = run_json(capsys, "check", need(KWS_INT8), "--target", "tflm")
    assert code == 0 and d["runtime"] == "tflm-reference" and d["supported"] is True
    assert "--target is deprecated, use --runtime" in err


def test_check_lists_every_operator_it_cannot_handle(tmp_path, capsys):
    """Two unknown ONNX operators in a row: check names both (it does not stop at the first), and analyze
    still counts the known layers."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    nodes = [helper.make_node("Hardmax", ["x"], ["a"], axis=-1),
             helper.make_node("MatMul", ["a", "w"], ["b"]),
             helper.make_node("Shrink", ["b"], ["y"], lambd=0.5)]
    graph = helper.make_graph(nodes, "gaps", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
                              [w])
    path = tmp_path / "gaps.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    code, d, err = run_json(capsys, "check", path)
    assert code == 2 and d["supported"] is False
    bad = [(r["op"], r["supported"]) for r in d["operators"]]
    assert bad == [("onnx:Hardmax", False), ("FULLY_CONNECTED", True), ("onnx:Shrink", False)]
    code = main(["analyze", str(path), "--json"])
    out, _ = capsys.readouterr()
    assert code == 0 and json.loads(out)["macs"] == 16
