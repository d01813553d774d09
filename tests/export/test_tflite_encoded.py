""".tflite with compressed weights (issue #17): INT4 tensors and TFLM's lookup-table compression metadata,
bit-exact with tflite-micro, read back into the same int8 values and encodings."""

from __future__ import annotations

import numpy as np
import pytest

from runtime._reference import assert_matches_reference, qtensor, random_int8
from tinyopt.errors import ModelFormatError
from tinyopt.export.tflite import graph_to_tflite_bytes, single_op_model
from tinyopt.graph import encoding as enc
from tinyopt.graph.ir import Encoding
from tinyopt.graph.tflite_import import tflite_bytes_to_graph


def _weights(rng, kind, shape):
    if kind == "int4":
        return rng.integers(-8, 8, size=shape).astype(np.int8)
    if kind == "int2":
        return rng.integers(-2, 2, size=shape).astype(np.int8)
    codebook = rng.integers(-127, 128, size=6)
    w = codebook[rng.integers(0, 6, size=shape)]
    if kind == "pruned-shared":
        w[rng.random(shape) < 0.8] = 0
    return w.astype(np.int8)


def _model(op, rng, kind, per_channel):
    if op == "FULLY_CONNECTED":
        o, shape, axis = 6, (6, 40), 0
        x, y, attrs = (1, 40), (1, 6), {"activation": "RELU"}
    elif op == "CONV_2D":
        o, shape, axis = 5, (5, 3, 3, 4), 0
        x, y, attrs = (1, 7, 6, 4), (1, 1, 1, 5), {"padding": "SAME", "stride": (1, 1), "activation": "NONE"}
    else:
        o, shape, axis = 8, (1, 3, 3, 8), 3
        x, y, attrs = (1, 7, 6, 8), (1, 1, 1, 8), {"padding": "VALID", "stride": (1, 1),
                                                   "depth_multiplier": 1, "activation": "NONE"}
    w = _weights(rng, kind, shape)
    s = rng.uniform(0.005, 0.02, o) if per_channel else np.float32(0.012)
    wq = qtensor("w", shape, s, np.zeros(o) if per_channel else 0, data=w, axis=axis if per_channel else None)
    wq.encoding = enc.find_encoding(w, enc.table_axis(wq))
    bias_scale = 0.05 * np.broadcast_to(s, (o,))
    b = qtensor("b", (o,), bias_scale, np.zeros(o), data=rng.integers(-800, 800, o).astype(np.int32),
                dtype="int32", axis=0)
    return single_op_model(op, [qtensor("x", x, 0.05, int(rng.integers(-20, 20))), wq, b],
                           qtensor("y", y, 0.1, int(rng.integers(-10, 10))), attrs)


CASES = [(op, kind, pc) for op in ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")
         for kind in ("int4", "int2", "shared", "pruned-shared") for pc in (False, True)]


@pytest.mark.parametrize("op, kind, per_channel", CASES,
                         ids=[f"{o}-{k}-{'pc' if p else 'pt'}" for o, k, p in CASES])
def test_encoded_weights_run_in_tflm_bit_exact_and_read_back(op, kind, per_channel):
    rng = np.random.default_rng(len(op) * 31 + len(kind) * 7 + per_channel)
    g = _model(op, rng, kind, per_channel)
    w = g.tensors["w"]
    form, bits = enc.tflite_form(w, [op])
    data = graph_to_tflite_bytes(g)
    xs = random_int8(rng, (6, *g.tensors["x"].shape[1:]))
    assert_matches_reference(g, xs, model=data)  # TFLM decodes what we wrote to the same outputs
    back = tflite_bytes_to_graph(data).tensors["w"]
    np.testing.assert_array_equal(back.data, w.data)
    if form == "int8":
        assert back.encoding is None and back.stored_bytes is None
    else:
        assert back.stored_bytes == enc.tflite_bytes(w, form, bits) < w.size
        assert back.encoding.codebook == (form == "lut")
        assert back.encoding.bits == bits
    if op != "FULLY_CONNECTED" and w.encoding == Encoding(4):
        assert form == "int4"
    if op == "FULLY_CONNECTED" and w.encoding == Encoding(4):  # TFLM's dense kernel: INT4 per tensor only
        assert (form != "int4") if per_channel else (form == "int4")


def test_plain_models_are_written_as_before():
    rng = np.random.default_rng(0)
    g = _model("CONV_2D", rng, "int4", True)
    g.tensors["w"].encoding = None
    assert b"COMPRESSION_METADATA" not in graph_to_tflite_bytes(g)
    g.tensors["w"].encoding = Encoding(4)
    assert (len(graph_to_tflite_bytes(g)) < len(graph_to_tflite_bytes(_model("CONV_2D", rng, "int4", True)))
            + 200)


def test_a_corrupt_lookup_table_is_refused_with_the_file_named():
    g = _model("FULLY_CONNECTED", np.random.default_rng(3), "shared", False)
    form, bits = enc.tflite_form(g.tensors["w"], ["FULLY_CONNECTED"])
    assert form == "lut"
    data = graph_to_tflite_bytes(g)
    # tensors x, w, b, y; buffers: 0 empty, 1 w's indices, 2 b, 3 w's value table, 4 the metadata
    good = enc.lut_metadata([(1, 3, bits)])
    assert good in data
    with pytest.raises(ModelFormatError, match="8-bit indices is invalid"):
        tflite_bytes_to_graph(data.replace(good, enc.lut_metadata([(1, 3, 8)])), "bad.tflite")
    with pytest.raises(ModelFormatError, match="buffer index 9 is out of range"):
        tflite_bytes_to_graph(data.replace(good, enc.lut_metadata([(1, 9, bits)])), "bad.tflite")


def test_the_cases_cover_int4_and_lookup_tables():
    forms = set()
    for op, kind, per_channel in CASES:
        rng = np.random.default_rng(len(op) * 31 + len(kind) * 7 + per_channel)
        forms.add(enc.tflite_form(_model(op, rng, kind, per_channel).tensors["w"], [op])[0])
    assert {"int4", "lut"} <= forms
