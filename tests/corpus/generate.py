"""Build the malformed-file corpus: ``python tests/corpus/generate.py`` (deterministic, seeds fixed).

Every file under ``tests/corpus/files/<class>/`` is made here from a small valid file of its class and
one named fault; ``manifest.json`` records, per file, the fault and the expected outcome: exit code 2
from ``tinyopt validate``, the error class, and a fragment the one-line message must contain (written
from the fault, not copied from the loader's output). The valid seeds themselves are kept in
``files/valid/`` (expected: exit 0) so the test also proves the loaders accept good input.

TFLite faults come from ``tests/graph/tflite_mutations.py`` (edits made with the ``tflite`` package's own
builder, independent of tinyopt's reader); random byte mutations that happen to stay valid (a flipped
weight byte) are dropped, since a corpus file must be bad. ``gen_tflite_fields`` adds one file per importer
check those do not reach (options, dtypes, operand kinds, external buffers, sparsity, custom quantization,
the operators the tiny models lack), written with the same builder (patched for the two fields its
encoder omits). Regenerating gives the same bytes except for
two .pt files whose writers embed run-specific data (torch's legacy format and TorchScript archives);
their faults are the same.
"""

from __future__ import annotations

import gzip
import io
import json
import pickle
import re
import shutil
import struct
import sys
import wave
import zipfile
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
FILES = HERE / "files"
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "graph"))

MF, UO, CE, DE = "ModelFormatError", "UnsupportedOpError", "ConfigError", "DataError"


class Corpus:
    def __init__(self):
        self.entries: dict[str, dict] = {}
        self.counts: dict[str, int] = {}

    def add(self, cls: str, what: str, data: bytes, ext: str, error: str | None = None,
            fragment: str | None = None, where: str | None = None, known_bug: str | None = None) -> Path:
        n = self.counts.get(cls, 0)
        self.counts[cls] = n + 1
        slug = re.sub(r"[^a-z0-9]+", "-", what.lower()).strip("-")[:48]
        rel = f"{cls}/{n:03d}-{slug}{ext}"
        path = FILES / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.entries[rel] = {"class": cls, "fault": what, "exit": 0 if error is None else 2, "error": error,
                             "fragment": fragment, "where": where}
        if known_bug:
            self.entries[rel]["known_bug"] = known_bug
        return path


# -- valid seeds -------------------------------------------------------------------------------------
def tiny_tflite() -> tuple[bytes, bytes]:
    """An int8 and a float32 conv → depthwise → pool → dense → softmax model on 8x8x1 (a few KB)."""
    import torch
    from torch import nn

    from tinyopt.convert.convert import convert_torch
    from tinyopt.export.tflite import graph_to_tflite_bytes
    from tinyopt.graph.torch_import import from_torch

    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, groups=4, padding=1),
                      nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(64, 3), nn.Softmax(-1)).eval()
    calib = np.random.default_rng(0).normal(size=(16, 1, 8, 8)).astype(np.float32)
    int8 = graph_to_tflite_bytes(convert_torch(m, calib, (1, 8, 8)))
    flt = graph_to_tflite_bytes(from_torch(m, (1, 8, 8), name="tiny"))
    return int8, flt


def gen_tflite(c: Corpus) -> None:
    import tflite_mutations as tm

    from tinyopt.errors import TinyoptError
    from tinyopt.graph.tflite_import import tflite_bytes_to_graph

    int8, flt = tiny_tflite()
    c.add("valid", "tiny int8 model", int8, ".tflite")
    c.add("valid", "tiny float model", flt, ".tflite")
    for mi, data in enumerate((int8, flt)):
        for mut in tm.MUTATIONS:
            m = tm.decode(data)
            try:
                mut.edit(m)
            except (StopIteration, KeyError, IndexError, TypeError):
                continue  # does not apply (e.g. no int8 tensors in the float model)
            c.add("tflite", f"m{mi} {mut.name}", tm.encode(m), ".tflite", mut.error.__name__, mut.fragment)
        for name, bad in tm.truncations(data, count=10, seed=mi):
            c.add("tflite", f"m{mi} {name}", bad, ".tflite", MF)
    for what, pick in (("graph output is a weight", lambda m: tm._weight(m)),  # crashed the C generator
                       ("graph output is the graph input", lambda m: m["subgraphs"][0]["inputs"][0])):
        m = tm.decode(int8)
        m["subgraphs"][0]["outputs"] = [pick(m)]
        c.add("tflite", what, tm.encode(m), ".tflite", MF, "no operator computes it", "tensor")
    c.add("tflite", "empty file", b"", ".tflite", MF, "empty")
    c.add("tflite", "wrong file identifier", int8[:4] + b"XXXX" + int8[8:], ".tflite", MF)
    c.add("tflite", "root offset past the end", struct.pack("<I", 10**6) + int8[4:], ".tflite", MF)
    c.add("tflite", "an onnx file renamed", b"\x08\x07\x12\x07pytorch" + bytes(64), ".tflite", MF)
    kept = 0
    for mi, data in enumerate((int8, flt)):  # random faults, kept only when they really are faults
        for name, bad in [*tm.byte_mutations(data, 60, seed=100 + mi),
                          *tm.random_edits(data, 60, seed=200 + mi)]:
            try:
                tflite_bytes_to_graph(bad)
            except TinyoptError:
                c.add("tflite", f"m{mi} {name}", bad, ".tflite", "TinyoptError")
                kept += 1
            if kept >= 30 * (mi + 1):
                break
    gen_tflite_fields(c, int8, flt)


# TFLite builtin operator and options codes used below (schema.fbs: BuiltinOperator, BuiltinOptions)
CONCATENATION, DEQUANTIZE, RESHAPE, CUSTOM, PAD, MEAN, QUANTIZE = 2, 6, 22, 32, 34, 40, 114
OPT_CONCAT, OPT_RESHAPE, OPT_REDUCER = 10, 17, 27
F32, I32, U8, I8 = 0, 2, 3, 9  # TensorType codes


def _tfl(tensors, ops, inputs, outputs) -> dict:
    """A model dict in the form ``tflite_mutations.encode`` writes, from a compact description: tensors as
    (name, shape, type code, constant bytes or None, (scale, zero point) or None), operators as
    (builtin code, input indices, output indices, options dict or None)."""
    buffers, tensor_dicts = [b""], []
    for name, shape, ttype, data, q in tensors:
        if data is not None:
            buffers.append(data)
        tensor_dicts.append({"name": name.encode(), "shape": list(shape), "type": ttype,
                             "buffer": len(buffers) - 1 if data is not None else 0,
                             "quant": None if q is None
                             else {"scale": [q[0]], "zero_point": [q[1]], "axis": 0}})
    codes = sorted({op[0] for op in ops})
    opcodes = [{"deprecated": min(code, 127), "builtin": code, "version": 1,
                "custom": None} for code in codes]
    operators = [{"opcode": codes.index(code), "inputs": list(ins), "outputs": list(outs), "options": opts}
                 for code, ins, outs, opts in ops]
    return {"version": 3, "description": None, "opcodes": opcodes, "buffers": buffers,
            "subgraphs": [{"tensors": tensor_dicts, "operators": operators, "name": b"main", "inputs": inputs,
                           "outputs": outputs}]}


def _f32(*values) -> bytes:
    return np.asarray(values, "<f4").tobytes()


def _i32(values) -> bytes:
    return np.asarray(values, "<i4").tobytes()


def _concat(axis: int) -> dict:
    return {"type": OPT_CONCAT, "fields": {"Axis": axis, "FusedActivationFunction": 0}}


def _encode_with(model: dict, module: str, table: str, extra, nth: int) -> bytes:
    """``encode`` with one more field on the ``nth`` table of kind ``table`` (0-based, in writing order):
    ``extra(builder)`` runs before the table starts (to build a nested table) and returns a function that
    adds the field while the table is open. The ``tflite`` package's builders are patched for the call."""
    import importlib

    import tflite_mutations as tm

    mod = importlib.import_module(f"tflite.{module}")
    start, end = getattr(mod, f"{table}Start"), getattr(mod, f"{table}End")
    seen, pending = [0], []

    def patched_start(b):
        if seen[0] == nth:
            pending.append(extra(b))
        seen[0] += 1
        start(b)

    def patched_end(b):
        if pending:
            pending.pop()(b)
        return end(b)

    setattr(mod, f"{table}Start", patched_start)
    setattr(mod, f"{table}End", patched_end)
    try:
        return tm.encode(model)
    finally:
        setattr(mod, f"{table}Start", start)
        setattr(mod, f"{table}End", end)


def _sparsity(b):
    import importlib

    sp, t = importlib.import_module("tflite.SparsityParameters"), importlib.import_module("tflite.Tensor")
    sp.SparsityParametersStart(b)
    off = sp.SparsityParametersEnd(b)
    return lambda b: t.TensorAddSparsity(b, off)


def _custom_details(b):
    import importlib

    q = importlib.import_module("tflite.QuantizationParameters")
    return lambda b: q.QuantizationParametersAddDetailsType(b, 1)  # 1 = CustomQuantization


def gen_tflite_fields(c: Corpus, int8: bytes, flt: bytes) -> None:
    """One fault per importer check the mutations above do not reach: options, dtypes, operand kinds,
    the external-buffer layout, sparsity and custom quantization, and the operators the tiny models lack
    (CONCATENATION, MEAN, PAD, QUANTIZE, DEQUANTIZE, a custom operator)."""
    import tflite_mutations as tm

    def edited(data: bytes, edit) -> bytes:
        m = tm.decode(data)
        edit(m)
        return tm.encode(m)

    def tensors(m):
        return m["subgraphs"][0]["tensors"]

    def ops(m):
        return m["subgraphs"][0]["operators"]

    def relu_out_constant(m):  # float model: op 1 is RELU with output tensor 4 [1, 8, 8, 4]
        m["buffers"].append(bytes(4 * 8 * 8 * 4))
        tensors(m)[4]["buffer"] = len(m["buffers"]) - 1

    c.add("tflite", "operator output carries constant data", edited(flt, relu_out_constant), ".tflite", MF,
          "constant data", "tensor 4")

    def custom_op(m):
        m["opcodes"].append({"deprecated": CUSTOM, "builtin": CUSTOM, "version": 1,
                             "custom": b"TinyCustomOp"})
        ops(m)[1]["opcode"] = len(m["opcodes"]) - 1

    c.add("tflite", "custom operator", edited(flt, custom_op), ".tflite", UO, "TinyCustomOp", "operator 1")
    c.add("tflite", "required input marked absent (-1)",
          edited(flt, lambda m: ops(m)[0]["inputs"].__setitem__(0, -1)), ".tflite", MF, "input 0 is absent",
          "operator 0")
    ext = tm.decode(flt)
    clean = tm.externalize(ext, 1)  # conv weights stored after the flatbuffer (the > 2 GB layout)
    c.add("tflite", "external buffer cut short", clean[:-16], ".tflite", MF, "outside", "buffer 1")
    ext["buffers"][1] = _f32(float("nan")) + ext["buffers"][1][4:]
    c.add("tflite", "external weights hold NaN", tm.externalize(ext, 1), ".tflite", MF, "NaN", "tensor 1")
    c.add("tflite", "sparse weight tensor", _encode_with(tm.decode(flt), "Tensor", "Tensor", _sparsity, 1),
          ".tflite", MF, "sparse", "tensor 1")
    c.add("tflite", "custom quantization details",
          _encode_with(tm.decode(int8), "QuantizationParameters", "QuantizationParameters", _custom_details,
                       0),
          ".tflite", MF, "custom quantization", "tensor 0")

    def bad_activation(m):  # names w, w_1, w: the third becomes w_2
        for i, name in ((1, b"w"), (2, b"w_1"), (3, b"w")):
            tensors(m)[i]["name"] = name
        ops(m)[0]["options"]["fields"]["FusedActivationFunction"] = 9

    c.add("tflite", "fused activation code 9 (tensor names repeat)", edited(int8, bad_activation), ".tflite",
          UO, "fused activation code 9", "operator 0")

    def dw_padding(m):  # depth multiplier left 0 is derived (4 // 4); the padding code is the fault
        ops(m)[2]["options"]["fields"].update(DepthMultiplier=0, Padding=7)

    c.add("tflite", "padding code 7 (depth multiplier unset)", edited(flt, dw_padding), ".tflite", MF,
          "padding code 7", "operator 2")
    c.add("tflite", "shuffled fully-connected weights",
          edited(flt, lambda m: ops(m)[6]["options"]["fields"].update(WeightsFormat=1)), ".tflite", UO,
          "shuffled", "operator 6")
    c.add("tflite", "reshape to a scalar",
          edited(flt, lambda m: ops(m)[5]["options"]["fields"].update(NewShape=np.zeros(0, "<i4"))),
          ".tflite", UO, "scalar", "operator 5")
    c.add("tflite", "conv int8 input with a float32 output",
          edited(int8, lambda m: tensors(m)[3].update(type=F32)), ".tflite", MF, "maps int8 input to float32",
          "operator 0")
    c.add("tflite", "conv int8 input with uint8 weights",
          edited(int8, lambda m: tensors(m)[1].update(type=U8)), ".tflite", MF, "uint8 weights", "operator 0")

    def long_bias(m):
        tensors(m)[2]["shape"] = [5]
        m["buffers"][tensors(m)[2]["buffer"]] = bytes(20)

    c.add("tflite", "bias longer than the output channels", edited(flt, long_bias), ".tflite", MF,
          "expected [4]", "operator 0")
    x4 = ("x", [1, 4], F32, None, None)
    cases = [
        ("concatenation of rank 2 and rank 3", [x4, ("c", [1, 2, 2], F32, _f32(*range(4)), None),
                                                ("y", [1, 8], F32, None, None)],
         [(CONCATENATION, [0, 1], [2], _concat(1))], "cannot concatenate"),
        ("mean axis out of range",
         [("x", [1, 4, 4, 2], F32, None, None), ("axes", [2], I32, _i32([1, 5]), None),
          ("y", [1, 4], F32, None, None)],
         [(MEAN, [0, 1], [2], {"type": OPT_REDUCER, "fields": {"KeepDims": False}})],
         "out of range for rank 4"),
        ("mean axes stored as float32",
         [("x", [1, 4, 4, 2], F32, None, None), ("axes", [2], F32, _f32(1, 2), None),
          ("y", [1, 2], F32, None, None)], [(MEAN, [0, 1], [2], None)],
         "constant int32"),
        ("pad paddings for two of four dimensions", [("x", [1, 4, 4, 2], F32, None, None),
                                                     ("pads", [2, 2], I32, _i32([[1, 1], [1, 1]]), None),
                                                     ("y", [1, 6, 6, 2], F32, None, None)],
         [(PAD, [0, 1], [2], None)], "paddings of shape [2, 2]"),
        ("quantize float32 to int32", [x4, ("y", [1, 4], I32, None, None)], [(QUANTIZE, [0], [1], None)],
         "quantizes float32 to int32"),
        ("dequantize int8 to int8", [("x", [1, 4], I8, None, (0.5, 0)), ("y", [1, 4], I8, None, (0.5, 0))],
         [(DEQUANTIZE, [0], [1], None)], "dequantizes int8 to int8"),
        ("reshape with a 2-D shape operand changes the element count",  # the operand is not 1-D: TFLite
         # uses the output
         [x4, ("shape", [1, 2], I32, _i32([[1, 5]]), None), ("y", [1, 5], F32, None, None)],
         [(RESHAPE, [0, 1], [2], None)], "cannot reshape"),  # shape instead
    ]
    for what, ts, os_, frag in cases:
        out = len(ts) - 1
        c.add("tflite", what, tm.encode(_tfl(ts, os_, [0], [out])), ".tflite", MF, frag,
              "node 0" if frag == "cannot reshape" else "operator 0")
    # 300 constant inputs sharing one 64 KB buffer: copies stop at the budget (2 x file + 16 MB) and the
    # rest are views; the fault is the stored output shape (one input short)
    n, width = 300, 16384
    m = _tfl([("x", [1, width], F32, None, None),
              ("c", [1, width], F32, _f32(*np.linspace(0, 1, width)), None),
              ("y", [1, width * n], F32, None, None)], [(CONCATENATION, [0, 1], [2], _concat(1))], [0], [2])
    shared = tensors(m)[1]
    tensors(m)[2:2] = [dict(shared, name=f"c{k}".encode()) for k in range(1, n)]
    ops(m)[0]["inputs"] = list(range(n + 1))
    ops(m)[0]["outputs"] = m["subgraphs"][0]["outputs"] = [n + 1]
    c.add("tflite", "300 inputs share one buffer, output shape one short", tm.encode(m), ".tflite", MF,
          "is stored with shape", "operator 0")


# -- ONNX --------------------------------------------------------------------------------------------
def _onnx_model(initializer_external: dict | None = None, op: str = "Relu", extra_nodes=(), dims=(4, 16)):
    import onnx
    from onnx import TensorProto, helper

    w = np.arange(np.prod(dims), dtype=np.float32).reshape(dims) / 100
    init = helper.make_tensor("W", TensorProto.FLOAT, list(dims), w.ravel().tolist())
    if initializer_external is not None:
        init = onnx.TensorProto(name="W", data_type=TensorProto.FLOAT, dims=list(dims))
        init.data_location = TensorProto.EXTERNAL
        for k, v in initializer_external.items():
            init.external_data.add(key=k, value=str(v))
    nodes = [helper.make_node("Gemm", ["x", "W"], ["h"], transB=1), helper.make_node(op, ["h"], ["y"]),
             *extra_nodes]
    g = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [init])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def gen_onnx(c: Corpus) -> None:
    from onnx import TensorProto, helper

    good = _onnx_model().SerializeToString()
    c.add("valid", "tiny onnx gemm relu", good, ".onnx")
    rng = np.random.default_rng(1)
    c.add("onnx", "random bytes", rng.integers(0, 256, 300, dtype=np.uint8).tobytes(), ".onnx", MF)
    for cut in (3, 10, len(good) // 2, len(good) - 5):
        c.add("onnx", f"truncated to {cut} bytes", good[:cut], ".onnx", MF)
    c.add("onnx", "a tflite file renamed", b"\x1c\x00\x00\x00TFL3" + bytes(40), ".onnx", MF)
    c.add("onnx", "graph without nodes",
          helper.make_model(helper.make_graph([], "e", [], [])).SerializeToString(), ".onnx", MF, "no nodes")
    data_ok = (np.arange(64, dtype=np.float32) / 100).tobytes()
    ext = [("parent folder escape", {"location": "../secret.bin", "length": 256}, "not a relative path"),
           ("absolute path", {"location": "/etc/passwd"}, "not a relative path"),
           ("windows drive path", {"location": "C:\\weights.bin"}, "not a relative path"),
           ("nested escape", {"location": "sub/../../x.bin"}, "not a relative path"),
           ("unknown external key", {"location": "w.bin", "basepath": "/"}, "unknown external-data key"),
           ("missing data file", {"location": "does-not-exist.bin"}, "cannot open external data"),
           ("offset past the end", {"location": "onnx-data.bin", "offset": 10_000, "length": 256}, "beyond"),
           ("negative offset", {"location": "onnx-data.bin", "offset": -8, "length": 256}, "beyond"),
           ("length past the end", {"location": "onnx-data.bin", "offset": 0, "length": 1 << 40}, "beyond"),
           ("offset not an integer", {"location": "onnx-data.bin", "offset": "0x10"}, "not integers"),
           ("length differs from the tensor", {"location": "onnx-data.bin", "offset": 0, "length": 128},
            "bytes"),
           ("empty location", {"location": ""}, "not a relative path"),
           ("location is a folder", {"location": "."}, "not a regular file"),
           ("location not UTF-8 (fuzz)", {"location": "x"}, "location"),
           ("location with a NUL byte (atheris)", {"location": "onnx-data.bin\x00.txt"},
            "not a relative path")]
    for what, info, frag in ext:
        data = _onnx_model(info).SerializeToString()
        if "UTF-8" in what:  # protobuf keeps invalid UTF-8 as bytes (it raised TypeError in onnx_import)
            data = data.replace(b"\x12\x01x", b"\x12\x01\xff", 1)  # same length: framing intact
        c.add("onnx", f"external {what}", data, ".onnx", MF, frag, "initializer 'W'")
    (FILES / "onnx").mkdir(parents=True, exist_ok=True)
    (FILES / "onnx" / "onnx-data.bin").write_bytes(data_ok)  # the data file the range faults point at
    undefined = _onnx_model({"location": "onnx-data.bin"})
    undefined.graph.initializer[0].data_type = 0  # raised KeyError in onnx's dtype table (atheris)
    c.add("onnx", "external data of type UNDEFINED (atheris)", undefined.SerializeToString(), ".onnx", MF,
          "element type", "initializer 'W'")
    link = FILES / "onnx" / "onnx-link.bin"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to("onnx-data.bin")
    c.add("onnx", "external through a symlink",
          _onnx_model({"location": "onnx-link.bin"}).SerializeToString(), ".onnx", MF, "symbolic link",
          "initializer 'W'")
    c.add("onnx", "unsupported operator", _onnx_model(op="Erf").SerializeToString(), ".onnx", UO, "Erf")
    bad_init = _onnx_model()
    bad_init.graph.initializer[0].dims[:] = [4, 17]
    c.add("onnx", "initializer dims disagree with its data", bad_init.SerializeToString(), ".onnx", MF)
    dangling = _onnx_model(extra_nodes=[helper.make_node("Relu", ["nowhere"], ["z"])])
    c.add("onnx", "node reads an undefined tensor", dangling.SerializeToString(), ".onnx", MF)
    neg = _onnx_model()
    neg.graph.input[0].type.tensor_type.shape.dim[1].dim_value = -16
    c.add("onnx", "negative input dimension", neg.SerializeToString(), ".onnx", "TinyoptError")
    typ = _onnx_model()
    typ.graph.input[0].type.tensor_type.elem_type = TensorProto.STRING
    c.add("onnx", "string input", typ.SerializeToString(), ".onnx", "TinyoptError")


# -- .pt checkpoints ---------------------------------------------------------------------------------
def gen_pt(c: Corpus) -> None:
    import os

    import torch

    def saved(obj, **kw) -> bytes:
        buf = io.BytesIO()
        torch.save(obj, buf, **kw)
        return buf.getvalue()

    torch.manual_seed(0)
    lin = torch.nn.Linear(3, 2)
    good = saved(lin.state_dict())
    c.add("valid", "linear state_dict", good, ".pt")
    refused = "pickled Python objects"
    c.add("pt", "whole pickled module", saved(lin), ".pt", MF, refused)
    c.add("pt", "legacy format whole module", saved(lin, _use_new_zipfile_serialization=False), ".pt", MF,
          refused)
    c.add("pt", "global os system reference", saved({"w": torch.zeros(1), "f": os.system}), ".pt", MF,
          refused)
    c.add("pt", "raw pickle with GLOBAL opcode", pickle.dumps(os.system, protocol=2), ".pt", MF)
    c.add("pt", "raw pickle reduce call", b"\x80\x02cbuiltins\neval\nX\x04\x00\x00\x001+1\x85R.", ".pt", MF)
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(lin), buf)
    c.add("pt", "torchscript archive", buf.getvalue(), ".pt", MF)
    c.add("pt", "empty file", b"", ".pt", MF)
    c.add("pt", "random bytes", np.random.default_rng(2).integers(0, 256, 500, dtype=np.uint8).tobytes(),
          ".pt", MF)
    for cut in (30, len(good) // 2, len(good) - 10):
        c.add("pt", f"truncated to {cut} bytes", good[:cut], ".pt", MF)
    c.add("pt", "a list of tensors", saved([torch.zeros(2)]), ".pt", MF, "not a state_dict")
    c.add("pt", "a plain integer", saved(7), ".pt", MF, "not a state_dict")
    c.add("pt", "empty dict", saved({}), ".pt", MF, "not a state_dict")
    c.add("pt", "non-tensor value", saved({"weight": torch.zeros(2), "step": 3}), ".pt", MF, "not a tensor")
    c.add("pt", "NaN weight", saved({"weight": torch.tensor([1.0, float("nan")])}), ".pt", DE, "NaN",
          "tensor 'weight'")
    c.add("pt", "inf weight", saved({"weight": torch.tensor([float("inf")])}), ".pt", DE, "NaN",
          "tensor 'weight'")
    zbuf = io.BytesIO(good)  # a zip whose data.pkl is replaced by garbage
    with zipfile.ZipFile(zbuf) as z:
        items = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, blob in items:
            z.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)),
                       b"\x80\x02garbage" if name.endswith("data.pkl") else blob)
    c.add("pt", "zip with corrupt data.pkl", out.getvalue(), ".pt", MF)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, blob in items:
            if not name.endswith("/0"):
                z.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), blob)
    c.add("pt", "zip missing a storage record", out.getvalue(), ".pt", MF)


# -- YAML --------------------------------------------------------------------------------------------
SPEC = ("name: t\ninput: [8, 8, 1]\nlayers:\n  - {type: conv2d, filters: 4, kernel: 3}\n  - {type: flatten}\n"
        "  - {type: dense, units: 3}\n")


def gen_yaml(c: Corpus) -> None:
    c.add("valid", "spec", SPEC.encode(), ".yaml")
    c.add("valid", "recipe", b"seed: 0\nsteps:\n  - prune: {ratio: 0.5}\n", ".yaml")
    cases = [
        ("python object tag", "a: !!python/object/apply:os.system ['echo hi']\n", CE, "python/object",
         "line 1"),
        ("python name tag", "x: !!python/name:os.system\n", CE, "python/name", "line 1"),
        ("custom local tag", "name: t\nlayers: !include other.yaml\n", CE, "not allowed", "line 2"),
        ("alias bomb", "a: &a [x, x, x, x, x, x, x, x]\n" + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n"
            for i in range(8)),
         CE, "aliases", None),
        ("nested 100 deep", "a: " + "[" * 100 + "]" * 100 + "\n", CE, "nested deeper", None),
        ("unclosed bracket", "name: t\ninput: [8, 8\nlayers: []\n", CE, "not valid YAML", "line"),
        ("tab indentation", "name: t\nlayers:\n\t- type: dense\n", CE, "not valid YAML", "line 3"),
        ("duplicate colon mapping", "a: b: c\n", CE, "not valid YAML", "line 1"),
        ("NUL byte", "name: t\x00\n", CE, "NUL", None),
        ("top-level list", "- a\n- b\n", CE, "not a mapping", None),
        ("empty document", "", CE, "empty", None),
        ("spec unknown top key", SPEC + "layer: []\n", CE, "unknown top-level key", None),
        ("spec negative input", SPEC.replace("[8, 8, 1]", "[8, -8, 1]"), CE, "non-positive", None),
        ("spec input of strings", SPEC.replace("[8, 8, 1]", "[a, b]"), CE, "input", None),
        ("spec empty layers", "name: t\ninput: [4]\nlayers: []\n", CE, "non-empty list", None),
        ("spec zero filters", SPEC.replace("filters: 4", "filters: 0"), CE, "positive integer", "layer 0"),
        ("spec unknown layer type", SPEC.replace("conv2d", "conv9d"), UO, "conv9d", "layer 0"),
        ("spec kernel larger than input", SPEC.replace("kernel: 3", "kernel: 30"), MF, "larger than",
         "node 0"),
        ("spec boolean units", SPEC.replace("units: 3", "units: true"), CE, "units", "layer 2"),
        ("spec integer key in a layer (fuzz)", SPEC.replace("kernel: 3}", "kernel, 3}"), CE, "unknown key",
         "layer 0"),
        ("spec null top-level key (atheris)", "&n: [8, -8, 1]\nlayers:\n  -{type: fla\n", CE,
         "unknown top-level key", None),
        ("spec input dimension of 94 digits (atheris)", SPEC.replace("[8, 8, 1]", "[8, " + "8" * 94 + ", 1]"),
         CE, "larger than", None),
        ("spec filters of 10**30", SPEC.replace("filters: 4", "filters: " + "1" + "0" * 30), CE,
         "larger than", "layer 0"),
        ("spec integer top-level key", SPEC + "1: 2\nfoo: 3\n", CE, "unknown top-level key", None),
        ("recipe unknown step", "steps:\n  - prun: {ratio: 0.5}\n", CE, "unknown step", "step 1"),
        ("recipe empty steps", "steps: []\n", CE, "non-empty list", "recipe"),
        ("recipe unknown key", "steps: [prune]\nsed: 1\n", CE, "unknown key", "recipe"),
        ("recipe string seed", "steps: [prune]\nseed: abc\n", CE, "seed", None),
        ("project unknown key", "name: p\ndata: {source: digits}\ntrainin: {}\n", CE, "trainin", None),
        ("project section not a mapping", "name: p\ndata: 3\n", CE, "must be a mapping", None),
        ("project bad source", "name: p\ndata: {source: digitz}\n", CE, "digitz", None),
        ("project seed not integer", "name: p\nseed: 1.5\n", CE, "seed", None),
    ]
    for what, text, err, frag, where in cases:
        c.add("yaml", what, text.encode("utf-8"), ".yaml", err, frag or None, where)
    c.add("yaml", "not UTF-8", b"name: \xff\xfe caf\xe9\n", ".yaml", CE, "UTF-8")
    c.add("yaml", "UTF-16 with BOM", "name: t\n".encode("utf-16"), ".yml", CE)
    flat = "name: t\ninput: [8, 8, 1]\nlayers:\n  - {type: flatten}\n"
    conv = "name: t\ninput: [8, 8, 1]\nlayers:\n  - {type: conv2d, filters: 4, kernel: 3}\n"
    more = [
        ("spec unknown activation", SPEC.replace("units: 3", "units: 3, activation: swish"), CE,
         "unknown activation", "layer 2"),
        ("spec from an unknown layer", SPEC.replace("units: 3", "units: 3, from: nowhere"), CE,
         "names no earlier layer", "layer 2"),
        ("spec maxpool after flatten", flat + "  - {type: maxpool2d}\n", CE, "maxpool2d needs", "layer 1"),
        ("spec global_avgpool after flatten", flat + "  - {type: global_avgpool}\n", CE,
         "global_avgpool needs", "layer 1"),
        ("spec add without from", conv + "  - {type: add}\n", CE, "needs 'from", "layer 1"),
        ("spec concat from an unknown layer", conv + "  - {type: concat, from: [ghost]}\n", CE, "ghost",
         "layer 1"),
        ("spec padding full", SPEC.replace("kernel: 3}", "kernel: 3, padding: full}"), CE, "padding must be",
         "layer 0"),
    ]
    for what, text, err, frag, where in more:
        c.add("yaml", what, text.encode("utf-8"), ".yaml", err, frag, where)


# -- wav ---------------------------------------------------------------------------------------------
def _wav(rate=8000, width=2, channels=1, frames=64) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(np.random.default_rng(3).integers(-1000, 1000, frames * channels).astype("<i2")
                      .tobytes()[:frames * channels * width])
    return buf.getvalue()


def _riff(chunks: list[tuple[bytes, bytes]], riff_size: int | None = None) -> bytes:
    body = b"WAVE" + b"".join(cid + struct.pack("<I", len(d)) + d + (b"\0" if len(d) & 1 else b"")
                              for cid, d in chunks)
    return b"RIFF" + struct.pack("<I", len(body) if riff_size is None else riff_size) + body


def _fmt(fmt=1, channels=1, rate=8000, bits=16) -> bytes:
    align = channels * bits // 8
    return struct.pack("<HHIIHH", fmt, channels, rate, rate * align, align, bits)


def gen_wav(c: Corpus) -> None:
    good = _wav()
    c.add("valid", "pcm16 mono", good, ".wav")
    pcm = bytes(128)
    cases = [
        ("empty file", b"", "magic"),
        ("bad magic", b"RIFX" + good[4:], "magic"),
        ("not WAVE", good[:8] + b"AVI " + good[12:], "magic"),
        ("riff size larger than the file", good[:4] + struct.pack("<I", len(good) * 4) + good[8:],
         "declares"),
        ("truncated data", good[:-40], "declares"),
        ("header only", good[:12], None),
        ("zero channels", _riff([(b"fmt ", _fmt(channels=0)), (b"data", pcm)]), None),
        ("24-bit samples", _riff([(b"fmt ", _fmt(bits=24)), (b"data", pcm[:126])]), None),
        ("float format", _riff([(b"fmt ", _fmt(fmt=3, bits=32)), (b"data", pcm)]), None),
        ("no fmt chunk", _riff([(b"data", pcm)]), None),
        ("no data chunk", _riff([(b"fmt ", _fmt())]), None),
        ("short fmt chunk", _riff([(b"fmt ", _fmt()[:8]), (b"data", pcm)]), None),
        ("chunk size past the end", _riff([(b"fmt ", _fmt())]) + b"data" + struct.pack("<I", 10**6) + pcm,
         None),
        ("zero sample width", _riff([(b"fmt ", _fmt(bits=0)), (b"data", pcm)]), None),
        ("zero sample rate", _riff([(b"fmt ", _fmt(rate=0)), (b"data", pcm)]), None),
        ("odd data for 16-bit", _riff([(b"fmt ", _fmt()), (b"data", pcm[:127])]), None),
        ("random bytes", np.random.default_rng(4).integers(0, 256, 200, dtype=np.uint8).tobytes(), "magic"),
        ("odd fmt chunk skips past the RIFF end (atheris)",  # wave's Chunk.skip raised a bare RuntimeError
         b"RIFF\x1c\x00\x00\x00WAVEfmt \x11\x00\x00\x00\x01\x00\x01\x00@\x1f\x00\x00\x80>\x00" + b"|" * 105
         + b"\x00\x02\x00\x10\x00", None),
    ]
    for what, data, frag in cases:
        c.add("wav", what, data, ".wav", DE, frag)


# -- CSV ---------------------------------------------------------------------------------------------
CSV = "timestamp,ax,ay,az,label\n" + "".join(
    f"{i},{i * 0.1:.1f},{-i * 0.2:.1f},1.0,{'walk' if i < 6 else 'run'}\n" for i in range(12))


def gen_csv(c: Corpus) -> None:
    c.add("valid", "accelerometer log", CSV.encode(), ".csv")
    lines = CSV.splitlines(keepends=True)

    def with_line(n: int, text: str) -> bytes:  # replace 1-based line n
        return "".join(text if i + 1 == n else ln for i, ln in enumerate(lines)).encode()

    cases = [
        ("empty file", b"", "empty", None),
        ("ragged row", with_line(4, "2,0.2,-0.4,walk\n"), "fields", "line 4"),
        ("extra field", with_line(7, "5,0.5,-1.0,1.0,walk,9\n"), "fields", "line 7"),
        ("text in number column", with_line(3, "1,abc,-0.2,1.0,walk\n"), "not a number", "line 3, column 2"),
        ("NaN value", with_line(5, "3,nan,-0.6,1.0,walk\n"), "nan", "line 5, column 2"),
        ("inf value", with_line(9, "7,0.7,-inf,1.0,run\n"), "inf", "line 9, column 3"),
        ("empty cell", with_line(6, "4,,-0.8,1.0,walk\n"), "not a number", "line 6, column 2"),
        ("empty label", with_line(8, "6,0.6,-1.2,1.0,\n"), "empty label", "line 8, column 5"),
        ("no label column", CSV.replace(",label", ",class").encode(), "no label column", "line 1"),
        ("header only", lines[0].encode(), "", None),
        ("NUL byte in a cell", with_line(4, "2,0.\x002,-0.4,1.0,walk\n"), "", "line 4"),
        ("not UTF-8", with_line(5, "3,0.3,-0.6,1.0,w\xe4lk\n").replace("w\xe4lk".encode(), b"w\xe4lk"),
         "UTF-8", None),
        ("unterminated quote", with_line(3, '1,"0.1,-0.2,1.0,walk\n'), "", None),
        ("field larger than the csv limit", with_line(3, "1," + "9" * 200_000 + ",-0.2,1.0,walk\n"), "",
         "line 3"),
        ("binary garbage", np.random.default_rng(5).integers(0, 256, 300, dtype=np.uint8).tobytes(), "",
         None),
    ]
    for what, data, frag, where in cases:
        c.add("csv", what, data, ".csv", DE, frag or None, where)


# -- IDX ---------------------------------------------------------------------------------------------
def _idx(dims, code=0x08, body: bytes | None = None) -> bytes:
    head = bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    return head + (bytes(int(np.prod(dims))) if body is None else body)


def gen_idx(c: Corpus) -> None:
    good = _idx([3, 4, 4])
    c.add("valid", "uint8 3x4x4", good, "-ubyte")
    c.add("valid", "gzipped labels", gzip.compress(_idx([5], body=bytes(range(5))), mtime=0), "-ubyte.gz")
    cases = [
        ("empty file", b"", "bad magic"),
        ("bad magic", b"\x01\x02" + good[2:], "bad magic"),
        ("unknown element type", bytes([0, 0, 0x07, 3]) + good[4:], "element type"),
        ("zero dimensions", bytes([0, 0, 8, 0]), "dimensions"),
        ("header truncated", good[:9], "truncated"),
        ("body truncated", good[:-5], "bytes follow"),
        ("body padded", good + b"\0\0", "bytes follow"),
        ("dims overflow 64 bits", _idx([65536, 65536, 65536, 65536], body=b""), ""),
        ("dims product wraps to a small count",
         _idx([2**32 - 1, 2**32 - 1, 2**32 - 1, 2**32 - 1], body=b"\0"), ""),
        ("huge single dimension", _idx([2**32 - 1], body=b"\0" * 8), "bytes follow"),
        ("int32 body wrong length", _idx([3], code=0x0C, body=b"\0" * 10), "bytes follow"),
        ("255 dimensions of 1", bytes([0, 0, 8, 255]) + struct.pack(">I", 1) * 255 + b"\0\0", "dimensions"),
        ("255 dimensions and a matching body (fuzz)",
         bytes([0, 0, 8, 255]) + struct.pack(">I", 1) * 255 + b"\0", "dimensions"),
        ("corrupt gzip", b"\x1f\x8b\x08\x00" + bytes(20), "gzip"),
        ("truncated gzip", gzip.compress(good, mtime=0)[:-6], "gzip"),
        ("gzip of garbage", gzip.compress(b"hello world", mtime=0), "bad magic"),
    ]
    for what, data, frag in cases:
        c.add("idx", what, data, "-ubyte", DE, frag or None)


# -- .npy / .npz -------------------------------------------------------------------------------------
def _npy(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def gen_npy(c: Corpus) -> None:
    good = _npy(np.zeros((2, 8, 8, 1), np.int8))
    c.add("valid", "int8 batch", good, ".npy")
    hdr = b"\x93NUMPY\x01\x00"

    def raw_header(text: str, body: bytes = b"") -> bytes:
        h = text.encode("latin-1")
        h += b" " * ((64 - (10 + len(h) + 1) % 64) % 64) + b"\n"
        return hdr + struct.pack("<H", len(h)) + h + body

    cases = [
        ("empty file", b""),
        ("bad magic", b"\x93NUMPZ" + good[6:]),
        ("truncated body", good[:-10]),
        ("truncated header", good[:12]),
        ("object array (pickle)", _npy(np.array([{"a": 1}], dtype=object))),
        ("header not a dict", raw_header("[1, 2, 3]")),
        ("unknown dtype", raw_header("{'descr': '<q9', 'fortran_order': False, 'shape': (2,), }", bytes(16))),
        ("huge shape",
         raw_header("{'descr': '|i1', 'fortran_order': False, 'shape': (1000000, 1000000, 1000), }")),
        ("negative shape",
         raw_header("{'descr': '|i1', 'fortran_order': False, 'shape': (-4,), }", bytes(4))),
        ("header with an unbalanced paren (fuzz)",
         raw_header("{'descr': '|i1', 'fortran_order': False, 'sh_order'2, 8, 8, 1), }", bytes(128))),
        ("header with a bytes key (atheris)",
         raw_header("{'descr': '|i1', b'fortran_grder': False, 'shape': (2, 8, 8, "
                      "1), }", bytes(128))),
        ("header with a call", raw_header("{'descr': __import__('os').system('true'), 'shape': (1,)}")),
        ("version 9", b"\x93NUMPY\x09\x00" + good[8:]),
        ("an npz saved as npy", b"PK\x03\x04" + bytes(40)),
    ]
    for what, data in cases:
        c.add("npy", what, data, ".npy", DE)
    npz = io.BytesIO()
    np.savez(npz, x_train=np.zeros((2, 3), np.float32), y_train=np.array([0, 1]),
             x_val=np.zeros((1, 3), np.float32), y_val=np.array([1]))
    c.add("valid", "training npz", npz.getvalue(), ".npz")
    bad = [("npz truncated", npz.getvalue()[:100], None),
           ("npz random", np.random.default_rng(6).integers(0, 256, 100, dtype=np.uint8).tobytes(), None)]
    for what, arrays, frag in (("npz labels negative", dict(y_train=np.array([-1, 0])), "non-negative"),
                               ("npz label count differs", dict(y_train=np.array([0, 1, 2])), "samples"),
                               ("npz NaN input", dict(x_train=np.full((2, 3), np.nan, np.float32)), "NaN"),
                               ("npz float labels", dict(y_val=np.array([0.5])), "integer")):
        base = dict(x_train=np.zeros((2, 3), np.float32), y_train=np.array([0, 1]),
                    x_val=np.zeros((1, 3), np.float32), y_val=np.array([1]))
        base.update(arrays)
        buf = io.BytesIO()
        np.savez(buf, **base)
        bad.append((what, buf.getvalue(), frag))
    for what, data, frag in bad:
        c.add("npy", what, data, ".npz", DE, frag)


# -- compressed-model container ----------------------------------------------------------------------
def _record(name: bytes, kind: int, body: bytes, crc: int | None = None) -> bytes:
    rec = struct.pack("<H", len(name)) + name + struct.pack("<BI", kind, len(body)) + body
    return rec + struct.pack("<I", zlib.crc32(rec[2:]) if crc is None else crc)


def _raw(dtype_code: int, dims, data: bytes) -> bytes:
    return struct.pack("<BB", dtype_code, len(dims)) + struct.pack(f"<{len(dims)}I", *dims) + data


def gen_container(c: Corpus) -> None:
    head = b"TOPZ" + struct.pack("<BI", 1, 1)
    body = _raw(0, [2, 2], np.arange(4, dtype="<f4").tobytes())
    good = head + _record(b"fc.weight", 0, body)
    c.add("valid", "one raw layer", good, ".topz")
    two = b"TOPZ" + struct.pack("<BI", 1, 2)
    cases = [
        ("bad magic", b"TOPX" + good[4:], "bad magic", None),
        ("header truncated", good[:7], "truncated", None),
        ("version 3", b"TOPZ" + struct.pack("<BI", 3, 1) + good[9:], "version 3", None),
        ("record count larger than the records", b"TOPZ" + struct.pack("<BI", 1, 5) + good[9:], "ends before",
         "record 1"),
        ("crc mismatch", head + _record(b"fc.weight", 0, body, crc=1234), "CRC32", "record 0"),
        ("name length past the end", head + struct.pack("<H", 60000) + b"fc" + bytes(16), "name length",
         "record 0"),
        ("body length past the end",
         head + struct.pack("<H", 2) + b"fc" + struct.pack("<BI", 0, 10**9) + bytes(8), "body length",
         "record 0"),
        ("unknown record kind", head + _record(b"fc", 7, body), "record kind 7", "record 0"),
        ("duplicate layer name", two + _record(b"fc", 0, body) + _record(b"fc", 0, body), "duplicate",
         "record 1"),
        ("trailing bytes", good + b"junk", "unexpected bytes", None),
        ("unknown raw dtype", head + _record(b"fc", 0, _raw(9, [2], bytes(8))), "dtype code 9", "record 0"),
        ("raw shape disagrees with data", head + _record(b"fc", 0, _raw(0, [3, 3], bytes(16))), "needs",
         "record 0"),
        ("raw dims truncated", head + _record(b"fc", 0, b"\x00\x04\x01\x00"), "truncated", "record 0"),
        ("name not UTF-8", head + _record(b"\xff\xfe", 0, body), "UTF-8", "record 0"),
        ("shared record garbage", head + _record(b"fc", 1, bytes(range(40))), "", "record 0"),
        ("shared record empty", head + _record(b"fc", 1, b""), "", "record 0"),
        ("raw dims overflow", head + _record(b"fc", 0, _raw(0, [2**32 - 1] * 4, b"")), "needs", "record 0"),
        ("raw record of one byte", head + _record(b"fc", 0, b"\x00"), "header truncated", "record 0"),
        ("metadata record in a version 1 file", head + _record(b"tinyopt", 2, b"{}"), "record kind 2",
         "record 0"),
        ("metadata not JSON", b"TOPZ" + struct.pack("<BI", 2, 1) + _record(b"tinyopt", 2, b"{nope"),
         "not UTF-8 JSON", "record 0"),
    ]
    for what, data, frag, where in cases:
        c.add("container", what, data, ".topz", MF, frag or None, where)


# -- more valid seeds ----------------------------------------------------------------------------------
def gen_valid_more(c: Corpus) -> None:
    """Good files for the operators, layer kinds and sample formats the first seeds lack (made last so the
    earlier seeds keep their numbers): TFLite PAD / CONCATENATION / MEAN and QUANTIZE / DEQUANTIZE, a spec
    with residual and concat branches, a 32-bit stereo wav, an .npz that is not a training set."""
    import tflite_mutations as tm

    ops = _tfl([("x", [1, 4, 4, 2], F32, None, None),
                ("pads", [4, 2], I32, _i32([[0, 0], [1, 1], [1, 1], [0, 0]]),
                    None),
                ("p", [1, 6, 6, 2], F32, None, None), ("c", [1, 6, 6, 4], F32, None, None),
                ("axes", [2], I32, _i32([1, 2]), None), ("y", [1, 4], F32, None, None)],
               [(PAD, [0, 1], [2], None), (CONCATENATION, [2, 2], [3], _concat(3)),
                (MEAN, [3, 4], [5], {"type": OPT_REDUCER, "fields": {"KeepDims": False}})], [0], [5])
    c.add("valid", "float pad concat mean", tm.encode(ops), ".tflite")
    qdq = _tfl([("x", [1, 4], F32, None, None), ("q", [1, 4], I8, None, (0.05, 0)),
                ("y", [1, 4], F32, None, None)],
               [(QUANTIZE, [0], [1], None), (DEQUANTIZE, [1], [2], None)], [0], [2])
    c.add("valid", "quantize dequantize", tm.encode(qdq), ".tflite")
    spec = ("name: branches\ninput: [8, 8, 1]\nlayers:\n"
            "  - {type: conv2d, name: a, filters: 4, kernel: 3, padding: same}\n  - {type: relu, name: r}\n"
            "  - {type: conv2d, filters: 4, kernel: 3, padding: same}\n  - {type: add, from: r}\n"
            "  - {type: concat, from: [r]}\n  - {type: dropout, rate: 0.1}\n  - {type: maxpool2d}\n"
            "  - {type: global_avgpool}\n  - {type: dense, units: 3, activation: softmax}\n")
    c.add("valid", "spec with residual and concat", spec.encode(), ".yaml")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(4)
        w.setframerate(16000)
        w.writeframes(np.random.default_rng(7).integers(-2**30, 2**30, 2 * 32).astype("<i4").tobytes())
    c.add("valid", "pcm32 stereo", buf.getvalue(), ".wav")
    buf = io.BytesIO()
    np.savez(buf, weights=np.arange(6, dtype=np.float32).reshape(2, 3), steps=np.array([1, 2]))
    c.add("valid", "npz of plain arrays", buf.getvalue(), ".npz")


def main() -> int:
    if FILES.exists():
        shutil.rmtree(FILES)
    c = Corpus()
    for gen in (gen_tflite, gen_onnx, gen_pt, gen_yaml, gen_wav, gen_csv, gen_idx, gen_npy, gen_container,
                gen_valid_more):
        gen(c)
    (HERE / "manifest.json").write_text(json.dumps(c.entries, indent=1, sort_keys=True) + "\n")
    print(" ".join(f"{k}={v}" for k, v in sorted(c.counts.items())), f"total={len(c.entries)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
