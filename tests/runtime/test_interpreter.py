"""The interpreter on the MLPerf Tiny models: int8 bit-exact with TFLM row by row (200 seeded random
inputs plus structured ones), float close to LiteRT, and bad inputs refused with a clear error."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import KWS_FLOAT, KWS_INT8, RESNET_FLOAT, RESNET_INT8, need
from runtime._reference import run_tflm
from tinyopt.errors import DataError, UnsupportedOpError
from tinyopt.graph.ir import Tensor
from tinyopt.graph.tflite_import import load_tflite
from tinyopt.runtime import Interpreter


@pytest.mark.parametrize("path", [KWS_INT8, RESNET_INT8], ids=["kws", "resnet8"])
def test_batched_run_equals_row_by_row(path):
    """Vectorising over the batch changes nothing: a batch of 6 equals 6 runs of one row. (Equality with
    TFLM on 200+ rows is tested through `tinyopt infer` in tests/cli/test_infer.py.)"""
    need(path)
    it = Interpreter(load_tflite(path))
    shape = it.input_details()[0][1][1:]
    x = np.random.default_rng(5).integers(-128, 128, size=(6, *shape)).astype(np.int8)
    batched = it.run(x)[0]
    rows = np.concatenate([it.run(x[i: i + 1])[0] for i in range(6)])
    np.testing.assert_array_equal(batched, rows)
    np.testing.assert_array_equal(it.run(x, batch_size=4)[0], batched)  # 4 + 2 rows
    ref = run_tflm(path.read_bytes(), [x[:2]])[0]
    np.testing.assert_array_equal(batched[:2], ref)


@pytest.mark.parametrize("path", [KWS_FLOAT, RESNET_FLOAT], ids=["kws", "resnet8"])
def test_mlperf_float_close_to_litert(path):
    need(path)
    from ai_edge_litert.interpreter import Interpreter as LiteRT

    g = load_tflite(path)
    shape = g.tensors[g.inputs[0]].shape[1:]
    x = np.random.default_rng(7).normal(0, 1, size=(4, *shape)).astype(np.float32)
    ours = Interpreter(g).run(x)[0]
    lite = LiteRT(model_path=str(path))
    lite.allocate_tensors()
    inp, out = lite.get_input_details()[0]["index"], lite.get_output_details()[0]["index"]
    ref = []
    for row in x:
        lite.set_tensor(inp, row[None])
        lite.invoke()
        ref.append(lite.get_tensor(out)[0])
    # The KWS "float" model is hybrid (int8 weights): LiteRT also quantizes its activations on the fly,
    # we dequantize the weights and compute in float, so probabilities agree to a few 1e-3 only.
    hybrid = any(t.dtype == "int8" for t in g.constants())
    np.testing.assert_allclose(ours, np.stack(ref), atol=5e-3 if hybrid else 2e-5)
    assert (ours.argmax(1) == np.stack(ref).argmax(1)).all()
    if not hybrid:  # TFLM has no hybrid kernels; the pure float ResNet-8 runs there too
        np.testing.assert_allclose(ours, run_tflm(path.read_bytes(), [x])[0], atol=2e-5)


def test_wrong_shape_and_dtype_are_refused():
    need(KWS_INT8)
    it = Interpreter(load_tflite(KWS_INT8))
    with pytest.raises(DataError, match=r"shape \(N, 49, 10, 1\)"):
        it.run(np.zeros((2, 49, 10), np.int8))
    with pytest.raises(DataError, match="must be int8, got float32"):
        it.run(np.zeros((2, 49, 10, 1), np.float32))
    with pytest.raises(DataError, match="1 input"):
        it.run([np.zeros((2, 49, 10, 1), np.int8)] * 2)


def test_unsupported_op_named_with_index():
    from tinyopt.graph.ir import Graph, Node

    g = Graph("m", source="m.tflite")
    g.add_tensor(Tensor("x", (1, 4)))
    g.add_tensor(Tensor("y", (1, 4)))
    g.add_node(Node("sq", "SQUARE", ["x"], ["y"]))
    g.inputs, g.outputs = ["x"], ["y"]
    with pytest.raises(UnsupportedOpError, match=r"m.tflite: node 0 'sq': operator SQUARE is not supported"):
        Interpreter(g)
