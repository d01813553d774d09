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


def structured_inputs(shape, rng) -> np.ndarray:
    """Inputs that look like data rather than noise: smooth blobs, stripes, a constant, extremes."""
    n = 8
    h, w = shape[0], shape[1]
    yy, xx = np.mgrid[0:h, 0:w]
    rows = []
    for k in range(n):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (1 + k) ** 2))
        stripes = np.sin(xx * (k + 1) / 3.0 + yy / 5.0)
        img = (blob * 255 - 128) if k % 2 else stripes * 127
        rows.append(np.repeat(img[..., None], shape[2], axis=-1))
    x = np.clip(np.round(np.stack(rows)), -128, 127).astype(np.int8)
    x[-3] = -128
    x[-2] = 127
    x[-1] = 0
    return x


@pytest.mark.parametrize("path", [KWS_INT8, RESNET_INT8], ids=["kws", "resnet8"])
def test_mlperf_int8_bit_exact_with_tflm(path):
    need(path)
    g = load_tflite(path)
    shape = g.tensors[g.inputs[0]].shape[1:]
    rng = np.random.default_rng(2024)
    x = np.concatenate([rng.integers(-128, 128, size=(200, *shape)).astype(np.int8),
                        structured_inputs(shape, rng)])
    ours = Interpreter(g).run(x)[0]
    ref = run_tflm(path.read_bytes(), [x])[0]
    assert ours.shape == ref.shape and ours.dtype == ref.dtype == np.int8
    assert int((ours != ref).sum()) == 0


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
