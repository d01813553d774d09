"""TFLite custom operators a record reads (``tflite_custom`` + ``from_tflite_custom``): MediaPipe's
``Convolution2DTransposeBias`` (selfie segmentation) becomes a TRANSPOSE_CONV. Files are written here with
the ``tflite`` package's builders (an independent writer); the oracle is MediaPipe's kernel loop written out
in numpy: output stride (in - 1) + k - P, P = max(0, k - (in - 1) % stride - 1) under SAME, bias first,
each input pixel scattered from (in * stride - P // 2)."""

from __future__ import annotations

import struct

import flatbuffers
import numpy as np
import pytest
import tflite

from runtime._reference import assert_matches_reference, random_int8
from tinyopt.convert import convert_graph
from tinyopt.errors import ModelFormatError
from tinyopt.graph.tflite_import import tflite_bytes_to_graph
from tinyopt.runtime import Interpreter

FLOAT32 = 0


def mediapipe_out(size: int, k: int, stride: int, same: bool) -> tuple[int, int]:
    """(output size, rows cropped before) of MediaPipe's Prepare/Eval."""
    cut = max(0, k - (size - 1) % stride - 1) if same else 0
    return stride * (size - 1) + k - cut, cut // 2


def mediapipe_reference(x, w, b, stride: tuple[int, int], same: bool) -> np.ndarray:
    """MediaPipe's float loop: the output starts at the bias, every input value times every tap added at
    (in_y * stride_h - pad_h + ky, in_x * stride_w - pad_w + kx) when that lies inside."""
    _, h, wd, _ = x.shape
    o, kh, kw, _ = w.shape
    (oh, ph), (ow, pw) = mediapipe_out(h, kh, stride[0], same), mediapipe_out(wd, kw, stride[1], same)
    y = np.broadcast_to(b.astype(np.float64), (x.shape[0], oh, ow, o)).copy()
    for iy in range(h):
        for ix in range(wd):
            for ky in range(kh):
                for kx in range(kw):
                    oy, ox = iy * stride[0] - ph + ky, ix * stride[1] - pw + kx
                    if 0 <= oy < oh and 0 <= ox < ow:
                        y[:, oy, ox] += x[:, iy, ix].astype(np.float64) @ w[:, ky, kx].astype(np.float64).T
    return y


def custom_model(x_shape, w, b, out_shape, options: bytes, code: str = "Convolution2DTransposeBias") -> bytes:
    """A one-operator .tflite: CUSTOM ``code`` on [input, weights, bias] with raw ``options``."""
    import importlib

    Buffer, Model, Operator, OperatorCode, SubGraph, Tensor = (  # the builder functions' modules
        importlib.import_module(f"tflite.{n}") for n in ("Buffer", "Model", "Operator", "OperatorCode",
                                                         "SubGraph", "Tensor"))

    bld = flatbuffers.Builder(1 << 12)
    datas = [b"", b"", w.astype("<f4").tobytes(), b.astype("<f4").tobytes(), b""]
    bufs = []
    for d in datas:
        vec = bld.CreateByteVector(d) if d else None
        Buffer.BufferStart(bld)
        if vec is not None:
            Buffer.BufferAddData(bld, vec)
        bufs.append(Buffer.BufferEnd(bld))
    tensors = []
    for name, shape, buf in (("x", x_shape, 1), ("w", w.shape, 2), ("b", b.shape, 3), ("y", out_shape, 4)):
        nm, sh = bld.CreateString(name), bld.CreateNumpyVector(np.asarray(shape, "<i4"))
        Tensor.TensorStart(bld)
        Tensor.TensorAddShape(bld, sh)
        Tensor.TensorAddType(bld, FLOAT32)
        Tensor.TensorAddBuffer(bld, buf)
        Tensor.TensorAddName(bld, nm)
        tensors.append(Tensor.TensorEnd(bld))
    ins, outs = (bld.CreateNumpyVector(np.asarray([0, 1, 2], "<i4")),
                 bld.CreateNumpyVector(np.asarray([3], "<i4")))
    opts = bld.CreateByteVector(options)
    Operator.OperatorStart(bld)
    Operator.OperatorAddOpcodeIndex(bld, 0)
    Operator.OperatorAddInputs(bld, ins)
    Operator.OperatorAddOutputs(bld, outs)
    Operator.OperatorAddCustomOptions(bld, opts)
    op = Operator.OperatorEnd(bld)

    def vector(start, items):
        start(bld, len(items))
        for it in reversed(items):
            bld.PrependUOffsetTRelative(it)
        return bld.EndVector()

    tvec, ovec = vector(SubGraph.SubGraphStartTensorsVector,
                        tensors), vector(SubGraph.SubGraphStartOperatorsVector, [op])
    sin, sout = bld.CreateNumpyVector(np.asarray([0], "<i4")), bld.CreateNumpyVector(np.asarray([3], "<i4"))
    SubGraph.SubGraphStart(bld)
    SubGraph.SubGraphAddTensors(bld, tvec)
    SubGraph.SubGraphAddInputs(bld, sin)
    SubGraph.SubGraphAddOutputs(bld, sout)
    SubGraph.SubGraphAddOperators(bld, ovec)
    sg = SubGraph.SubGraphEnd(bld)
    cc = bld.CreateString(code)
    OperatorCode.OperatorCodeStart(bld)
    OperatorCode.OperatorCodeAddDeprecatedBuiltinCode(bld, 32)
    OperatorCode.OperatorCodeAddCustomCode(bld, cc)
    OperatorCode.OperatorCodeAddVersion(bld, 1)
    OperatorCode.OperatorCodeAddBuiltinCode(bld, 32)
    opc = OperatorCode.OperatorCodeEnd(bld)
    ocvec = vector(Model.ModelStartOperatorCodesVector, [opc])
    sgvec = vector(Model.ModelStartSubgraphsVector, [sg])
    bvec = vector(Model.ModelStartBuffersVector, bufs)
    Model.ModelStart(bld)
    Model.ModelAddVersion(bld, 3)
    Model.ModelAddOperatorCodes(bld, ocvec)
    Model.ModelAddSubgraphs(bld, sgvec)
    Model.ModelAddBuffers(bld, bvec)
    bld.Finish(Model.ModelEnd(bld), file_identifier=b"TFL3")
    assert tflite.Model.GetRootAsModel(bytes(bld.Output()), 0).OperatorCodes(0).CustomCode() == code.encode()
    return bytes(bld.Output())


def _case(seed: int):
    rng = np.random.default_rng(seed)
    h, wd = (int(v) for v in rng.integers(2, 7, size=2))
    kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
    sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
    same = bool(rng.random() < 0.7)
    i, o = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    w = rng.normal(size=(o, kh, kw, i)).astype(np.float32)
    b = rng.normal(size=(o,)).astype(np.float32)
    out = (1, mediapipe_out(h, kh, sh, same)[0], mediapipe_out(wd, kw, sw, same)[0], o)
    data = custom_model((1, h, wd, i), w, b, out, struct.pack("<iii", 1 if same else 2, sw, sh))
    return data, w, b, (sh, sw), same, rng.normal(size=(3, h, wd, i)).astype(np.float32)


@pytest.mark.parametrize("seed", range(50))
def test_mediapipe_transpose_conv_bias_is_a_transpose_conv(seed):
    """50 seeded layers: loaded as one TRANSPOSE_CONV whose float output equals MediaPipe's loop, or refused
    by name where TFLite's SAME padding cannot crop what MediaPipe crops."""
    data, w, b, stride, same, x = _case(seed)
    try:
        g = tflite_bytes_to_graph(data, "selfie.tflite")
    except ModelFormatError as e:
        assert "not expressible" in str(e) and "Convolution2DTransposeBias" in str(e)
        return
    assert [n.op for n in g.nodes] == ["TRANSPOSE_CONV"]
    np.testing.assert_allclose(Interpreter(g).run(x)[0], mediapipe_reference(x, w, b, stride, same),
                               atol=1e-4)


def test_most_layers_load_and_convert_to_an_int8_transpose_conv_tflm_runs():
    loaded = 0
    for seed in range(50):
        data, *_ = _case(seed)
        try:
            tflite_bytes_to_graph(data, "selfie.tflite")
            loaded += 1
        except ModelFormatError:
            pass
    assert loaded >= 45  # selfie segmentation's 2x2, stride-2 SAME layers are always expressible
    data, w, b, stride, same, x = _case(3)
    g = tflite_bytes_to_graph(data, "selfie.tflite")
    q = convert_graph(g, np.random.default_rng(0).normal(size=(32, *x.shape[1:])).astype(np.float32))
    assert [n.op for n in q.nodes] == ["TRANSPOSE_CONV"]
    assert_matches_reference(q, random_int8(np.random.default_rng(1), (4, *x.shape[1:])))


def test_bad_custom_options_and_shapes_are_refused_by_name():
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(2, 2, 2, 3)).astype(np.float32), np.zeros(2, np.float32)
    good = struct.pack("<iii", 1, 2, 2)
    for options, shape, match in ((b"\x01\x00", (1, 8, 8, 2), "needs 12"),
                                  (struct.pack("<iii", 3, 2, 2), (1, 8, 8, 2), "padding code 3"),
                                  (good, (1, 9, 8, 2), r"stored as \[1, 9, 8, 2\]")):
        with pytest.raises(ModelFormatError, match=match) as e:
            tflite_bytes_to_graph(custom_model((1, 4, 4, 3), w, b, shape, options), "selfie.tflite")
        assert "operator 0 (CUSTOM 'Convolution2DTransposeBias')" in str(e.value)
    g = tflite_bytes_to_graph(custom_model((1, 4, 4, 3), w, b, (1, 8, 8, 2), good), "selfie.tflite")
    assert g.nodes[0].attrs["stride"] == (2, 2) and g.nodes[0].attrs["padding"] == "SAME"


def test_other_custom_operators_stay_opaque_for_analysis():
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(2, 2, 2, 3)).astype(np.float32), np.zeros(2, np.float32)
    data = custom_model((1, 4, 4, 3), w, b, (1, 8, 8, 2), b"", code="TransformLandmarks")
    g = tflite_bytes_to_graph(data, "x.tflite", opaque=True)
    assert g.nodes[0].op == "CUSTOM 'TransformLandmarks'"
    with pytest.raises(Exception, match="TransformLandmarks"):
        tflite_bytes_to_graph(data, "x.tflite")
