"""The oracle for runtime tests: TFLM itself, one row at a time (its interpreter takes batch 1)."""

from __future__ import annotations

import numpy as np

from tinyopt.export.tflite import graph_to_tflite_bytes
from tinyopt.graph.ir import Graph
from tinyopt.runtime import Interpreter


def run_tflm(model: bytes, inputs: list[np.ndarray], n_outputs: int = 1) -> list[np.ndarray]:
    """Outputs of TFLM for each row of the (N, ...) inputs, stacked to (N, ...)."""
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(model)
    rows: list[list[np.ndarray]] = []
    n = inputs[0].shape[0]
    for r in range(n):
        interp.reset()  # each row is one invocation from the reset state (variable tensors: LSTM/SVDF state)
        for i, x in enumerate(inputs):
            interp.set_input(x[r: r + 1], i)
        interp.invoke()
        rows.append([interp.get_output(k).copy() for k in range(n_outputs)])
    return [np.concatenate([row[j] for row in rows], axis=0) for j in range(len(rows[0]))]


def assert_matches_reference(graph: Graph, inputs, model: bytes | None = None) -> list[np.ndarray]:
    """Run ``graph`` in our interpreter and in TFLM: int8 outputs must be equal, every value."""
    if isinstance(inputs, np.ndarray):
        inputs = [inputs]
    model = graph_to_tflite_bytes(graph) if model is None else model
    ours = Interpreter(graph).run(inputs)
    ref = run_tflm(model, inputs, len(graph.outputs))
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref):
        a = a.reshape(b.shape)
        assert a.dtype == b.dtype, (a.dtype, b.dtype)
        if a.dtype == np.float32:
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
        else:
            bad = np.argwhere(a != b)
            assert bad.size == 0, (f"{len(bad)} mismatches, first at {bad[0].tolist()}: "
                                   f"ours {a[tuple(bad[0])]} TFLM {b[tuple(bad[0])]}")
    return ours


def qtensor(name: str, shape, scale, zero_point=0, data=None, dtype: str = "int8", axis: int | None = None):
    """A quantized Tensor (constant when ``data`` is given)."""
    from tinyopt.graph.ir import QuantParams, Tensor

    return Tensor(name, tuple(shape), dtype, data=data, quant=QuantParams(scale, zero_point, axis))


def random_int8(rng: np.random.Generator, shape, extremes: bool = True) -> np.ndarray:
    """Uniform int8 rows; with ``extremes`` the first rows are all -128, all 127 and alternating."""
    x = rng.integers(-128, 128, size=shape).astype(np.int8)
    if extremes and shape[0] >= 3:
        x[0] = -128
        x[1] = 127
        x[2].flat[::2] = -128
        x[2].flat[1::2] = 127
    return x
