"""Corrupt-model generators for the TFLite importer tests and the hardening corpus.

``decode`` reads a ``.tflite`` file into plain, editable dicts with the ``tflite`` package's generated
bindings, and ``encode`` writes such a dict back with that package's builder functions. Neither uses
tinyopt's reader or writer, so a mutation made here is an independent witness of what the importer
must reject. ``MUTATIONS`` lists named structural faults, each with the error class and a message
fragment the importer must give; ``truncations`` and ``byte_mutations`` cut and flip bytes;
``random_edits`` changes fields of a well-formed file (reaching the semantic checks); ``corpus`` mixes
them all deterministically and ``write_corpus`` puts N files on disk (e.g. 250 for CLI hardening:
every file must load or exit 2 with one line). ``externalize`` moves a buffer after the flatbuffer.

    import tflite_mutations as tm            # after sys.path.insert(0, "<repo>/tests/graph")
    paths = tm.write_corpus(tmp / "bad", [kws_bytes, resnet_bytes], size=250, seed=0)
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import flatbuffers
import numpy as np
import tflite
from tflite.BuiltinOptions import BuiltinOptions

from tinyopt.errors import ModelFormatError, TinyoptError, UnsupportedOpError

_OPTION_CLASSES = {v: k for k, v in vars(BuiltinOptions).items() if not k.startswith("_")}
TYPE_INT8, TYPE_INT32, TYPE_FLOAT32 = 9, 2, 0


# -- decode / encode ------------------------------------------------------------------------------
def _options(op) -> dict | None:
    kind = op.BuiltinOptionsType()
    if not kind:
        return None
    cls_name = _OPTION_CLASSES[kind]
    obj = getattr(importlib.import_module(f"tflite.{cls_name}"), cls_name)()
    tab = op.BuiltinOptions()
    obj.Init(tab.Bytes, tab.Pos)
    fields = {}
    for fn in dir(importlib.import_module(f"tflite.{cls_name}")):
        prefix = f"{cls_name}Add"
        if fn.startswith(prefix):
            field = fn[len(prefix):]
            if hasattr(obj, f"{field}AsNumpy"):
                arr = getattr(obj, f"{field}AsNumpy")()
                fields[field] = np.array(arr) if isinstance(arr, np.ndarray) else None
            else:
                fields[field] = getattr(obj, field)()
    return {"type": kind, "fields": fields}


def decode(data: bytes) -> dict:
    """A .tflite file as nested dicts and lists (one entry per schema table)."""
    m = tflite.Model.GetRootAsModel(data, 0)
    model = {"version": m.Version(), "description": m.Description(), "opcodes": [], "buffers": [],
             "subgraphs": []}
    for i in range(m.OperatorCodesLength()):
        oc = m.OperatorCodes(i)
        model["opcodes"].append({"deprecated": oc.DeprecatedBuiltinCode(), "builtin": oc.BuiltinCode(),
                                 "version": oc.Version(), "custom": oc.CustomCode()})
    for i in range(m.BuffersLength()):
        b = m.Buffers(i)
        model["buffers"].append(b.DataAsNumpy().tobytes() if b.DataLength() else b"")
    for s in range(m.SubgraphsLength()):
        sg = m.Subgraphs(s)
        tensors, ops = [], []
        for i in range(sg.TensorsLength()):
            t = sg.Tensors(i)
            q = t.Quantization()
            quant = None
            if q is not None and q.ScaleLength():
                quant = {"scale": q.ScaleAsNumpy().astype(np.float32).tolist(),
                         "zero_point": q.ZeroPointAsNumpy().astype(np.int64).tolist(),
                         "axis": q.QuantizedDimension()}
            tensors.append({"name": t.Name(), "shape": t.ShapeAsNumpy().tolist() if t.ShapeLength() else [],
                            "type": t.Type(), "buffer": t.Buffer(), "quant": quant})
        for j in range(sg.OperatorsLength()):
            op = sg.Operators(j)
            ops.append({"opcode": op.OpcodeIndex(), "inputs": op.InputsAsNumpy().tolist(),
                        "outputs": op.OutputsAsNumpy().tolist(), "options": _options(op)})
        model["subgraphs"].append({"tensors": tensors, "operators": ops, "name": sg.Name(),
                                   "inputs": sg.InputsAsNumpy().tolist(),
                                   "outputs": sg.OutputsAsNumpy().tolist()})
    return model


def _ints(b, values, dtype="<i4") -> int:
    return b.CreateNumpyVector(np.asarray(values, dtype=dtype))


def _tables(b, start_vector, offsets) -> int:
    start_vector(b, len(offsets))
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def _encode_options(b, opts: dict) -> int:
    cls_name = _OPTION_CLASSES[opts["type"]]
    mod = importlib.import_module(f"tflite.{cls_name}")
    vectors = {k: _ints(b, v, v.dtype.str) for k, v in opts["fields"].items() if isinstance(v, np.ndarray)}
    getattr(mod, f"{cls_name}Start")(b)
    for field, value in opts["fields"].items():
        if value is None:
            continue
        getattr(mod, f"{cls_name}Add{field}")(b, vectors.get(field, value))
    return getattr(mod, f"{cls_name}End")(b)


def encode(model: dict) -> bytes:
    """Write a ``decode`` dict back to flatbuffer bytes with the ``tflite`` package's builders."""
    Buffer, Model, Operator, OperatorCode, QuantizationParameters, SubGraph, Tensor = (
        importlib.import_module(f"tflite.{name}") for name in
        ("Buffer", "Model", "Operator", "OperatorCode", "QuantizationParameters", "SubGraph", "Tensor"))

    b = flatbuffers.Builder(1 << 16)
    buffers = []
    for data in model["buffers"]:
        external = isinstance(data, dict)  # {"offset", "size"}: data stored after the flatbuffer
        vec = b.CreateByteVector(bytes(data)) if data and not external else None
        Buffer.BufferStart(b)
        if vec is not None:
            Buffer.BufferAddData(b, vec)
        if external:
            Buffer.BufferAddOffset(b, data["offset"])
            Buffer.BufferAddSize(b, data["size"])
        buffers.append(Buffer.BufferEnd(b))
    subgraphs = []
    for sg in model["subgraphs"]:
        tensors = []
        for t in sg["tensors"]:
            name = b.CreateString(t["name"] or b"")
            shape = _ints(b, t["shape"])
            quant = None
            if t["quant"] is not None:
                scale = _ints(b, t["quant"]["scale"], "<f4")
                zero = _ints(b, t["quant"]["zero_point"], "<i8")
                QuantizationParameters.QuantizationParametersStart(b)
                QuantizationParameters.QuantizationParametersAddScale(b, scale)
                QuantizationParameters.QuantizationParametersAddZeroPoint(b, zero)
                QuantizationParameters.QuantizationParametersAddQuantizedDimension(b, t["quant"]["axis"])
                quant = QuantizationParameters.QuantizationParametersEnd(b)
            Tensor.TensorStart(b)
            Tensor.TensorAddShape(b, shape)
            Tensor.TensorAddType(b, t["type"])
            Tensor.TensorAddBuffer(b, t["buffer"])
            Tensor.TensorAddName(b, name)
            if quant is not None:
                Tensor.TensorAddQuantization(b, quant)
            tensors.append(Tensor.TensorEnd(b))
        ops = []
        for op in sg["operators"]:
            ins, outs = _ints(b, op["inputs"]), _ints(b, op["outputs"])
            opts = _encode_options(b, op["options"]) if op["options"] else None
            Operator.OperatorStart(b)
            Operator.OperatorAddOpcodeIndex(b, op["opcode"])
            Operator.OperatorAddInputs(b, ins)
            Operator.OperatorAddOutputs(b, outs)
            if opts is not None:
                Operator.OperatorAddBuiltinOptionsType(b, op["options"]["type"])
                Operator.OperatorAddBuiltinOptions(b, opts)
            ops.append(Operator.OperatorEnd(b))
        tvec = _tables(b, SubGraph.SubGraphStartTensorsVector, tensors)
        ovec = _tables(b, SubGraph.SubGraphStartOperatorsVector, ops)
        ins, outs = _ints(b, sg["inputs"]), _ints(b, sg["outputs"])
        name = b.CreateString(sg["name"] or b"main")
        SubGraph.SubGraphStart(b)
        SubGraph.SubGraphAddTensors(b, tvec)
        SubGraph.SubGraphAddInputs(b, ins)
        SubGraph.SubGraphAddOutputs(b, outs)
        SubGraph.SubGraphAddOperators(b, ovec)
        SubGraph.SubGraphAddName(b, name)
        subgraphs.append(SubGraph.SubGraphEnd(b))
    opcodes = []
    for oc in model["opcodes"]:
        custom = b.CreateString(oc["custom"]) if oc["custom"] else None
        OperatorCode.OperatorCodeStart(b)
        OperatorCode.OperatorCodeAddDeprecatedBuiltinCode(b, oc["deprecated"])
        if custom is not None:
            OperatorCode.OperatorCodeAddCustomCode(b, custom)
        OperatorCode.OperatorCodeAddVersion(b, oc["version"])
        OperatorCode.OperatorCodeAddBuiltinCode(b, oc["builtin"])
        opcodes.append(OperatorCode.OperatorCodeEnd(b))
    ocvec = _tables(b, Model.ModelStartOperatorCodesVector, opcodes)
    sgvec = _tables(b, Model.ModelStartSubgraphsVector, subgraphs)
    bvec = _tables(b, Model.ModelStartBuffersVector, buffers)
    Model.ModelStart(b)
    Model.ModelAddVersion(b, model["version"])
    Model.ModelAddOperatorCodes(b, ocvec)
    Model.ModelAddSubgraphs(b, sgvec)
    Model.ModelAddBuffers(b, bvec)
    b.Finish(Model.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def externalize(model: dict, buffer: int) -> bytes:
    """Move one buffer's bytes after the flatbuffer (the >2 GB layout: Buffer.offset/size).

    Encoded twice: the u64 offset field has a fixed width, so the second encoding has the same length.
    """
    payload = bytes(model["buffers"][buffer])
    model = copy.deepcopy(model)
    model["buffers"][buffer] = {"offset": 2**40, "size": len(payload)}
    start = -(-len(encode(model)) // 16) * 16
    model["buffers"][buffer] = {"offset": start, "size": len(payload)}
    head = encode(model)
    return head + bytes(start - len(head)) + payload


# -- structural mutations -------------------------------------------------------------------------
@dataclass(frozen=True)
class Mutation:
    """Edit a decoded model in place; the importer must raise ``error`` with ``fragment`` in its text."""

    name: str
    edit: Callable[[dict], None]
    error: type[TinyoptError]
    fragment: str


def _sg(m):
    return m["subgraphs"][0]


def _first(m, pred):
    """Index of the first tensor matching ``pred(tensor, index)``."""
    return next(i for i, t in enumerate(_sg(m)["tensors"]) if pred(t, i))


def _weight(m) -> int:
    return _first(m, lambda t, i: t["buffer"] and m["buffers"][t["buffer"]] and len(t["shape"]) == 4)


def _int8_activation(m) -> int:
    return _first(m, lambda t, i: t["type"] == TYPE_INT8 and not m["buffers"][t["buffer"]])


def _set(path_fn, value):
    def edit(m):
        obj, key = path_fn(m)
        obj[key] = value
    return edit


def _both_in_and_out(m):
    op = _sg(m)["operators"][0]
    op["inputs"][0] = op["outputs"][0]


def _two_subgraphs(m):
    m["subgraphs"].append(copy.deepcopy(m["subgraphs"][0]))


def _unsupported_op(m):
    # SKIP_GRAM (never supported)
    m["opcodes"].append({"deprecated": 30, "builtin": 30, "version": 1, "custom": None})
    _sg(m)["operators"][1]["opcode"] = len(m["opcodes"]) - 1


def _drop_quant(m):
    _sg(m)["tensors"][_int8_activation(m)]["quant"] = None


def _scale(value):
    def edit(m):
        _sg(m)["tensors"][_int8_activation(m)]["quant"]["scale"] = [value]
    return edit


def _zero_point(value):
    def edit(m):
        _sg(m)["tensors"][_int8_activation(m)]["quant"]["zero_point"] = [value]
    return edit


def _axis(value):
    def edit(m):
        _sg(m)["tensors"][_weight(m)]["quant"]["axis"] = value
    return edit


def _scale_count(m):
    q = _sg(m)["tensors"][_weight(m)]["quant"]
    q["scale"], q["zero_point"] = q["scale"][:-1], q["zero_point"][:-1]


def _buffer_size(m):
    t = _sg(m)["tensors"][_weight(m)]
    m["buffers"][t["buffer"]] = m["buffers"][t["buffer"]][:-1]


def _shape(value):
    def edit(m):
        _sg(m)["tensors"][_int8_activation(m)]["shape"][1] = value
    return edit


def _shape_mismatch(m):
    out = _sg(m)["operators"][0]["outputs"][0]
    _sg(m)["tensors"][out]["shape"][1] += 1


def _cycle(m):
    ops = _sg(m)["operators"]
    ops[0]["inputs"][0] = ops[1]["outputs"][0]


MUTATIONS: tuple[Mutation, ...] = (
    Mutation("buffer index out of range", _set(lambda m: (_sg(m)["tensors"][_weight(m)], "buffer"), 10_000),
             ModelFormatError, "buffer index 10000 is out of range"),
    Mutation("opcode index out of range", _set(lambda m: (_sg(m)["operators"][2], "opcode"), 99),
             ModelFormatError, "operator 2: opcode index 99 is out of range"),
    Mutation("operator input index out of range",
             _set(lambda m: (_sg(m)["operators"][1]["inputs"], 1), 5000), ModelFormatError,
             "tensor index 5000 is out of range"),
    Mutation("operator output index out of range",
             _set(lambda m: (_sg(m)["operators"][1]["outputs"], 0), -7), ModelFormatError,
             "tensor index -7 is out of range"),
    Mutation("graph input index out of range", _set(lambda m: (_sg(m)["inputs"], 0), 777), ModelFormatError,
             "tensor index 777 is out of range"),
    Mutation("negative dimension", _shape(-3), ModelFormatError, "negative dimension"),
    Mutation("zero dimension", _shape(0), ModelFormatError, "zero dimension"),
    Mutation("huge dimensions", _shape(2**30), ModelFormatError, "more than the limit"),
    Mutation("int8 activation without quantization", _drop_quant, ModelFormatError,
             "int8 activation without quantization parameters"),
    Mutation("scale zero", _scale(0.0), ModelFormatError, "scales must be positive and finite"),
    Mutation("scale NaN", _scale(float("nan")), ModelFormatError, "scales must be positive and finite"),
    Mutation("scale infinite", _scale(float("inf")), ModelFormatError, "scales must be positive and finite"),
    Mutation("zero point out of int8 range", _zero_point(300), ModelFormatError, "outside the int8 range"),
    Mutation("quantized axis out of range", _axis(4), ModelFormatError,
             "quantized dimension 4, out of range"),
    Mutation("negative quantized axis", _axis(-1), ModelFormatError, "quantized dimension -1"),
    Mutation("scale count differs from the axis dimension", _scale_count, ModelFormatError,
             "per-channel scales"),
    Mutation("buffer size differs from shape x dtype", _buffer_size, ModelFormatError, "bytes but shape"),
    Mutation("tensor both input and output of one op", _both_in_and_out, ModelFormatError,
             "both an input and an output"),
    Mutation("unsupported operator", _unsupported_op, UnsupportedOpError, "operator 1: operator SKIP_GRAM"),
    Mutation("two subgraphs", _two_subgraphs, ModelFormatError, "2 subgraphs"),
    Mutation("schema version", _set(lambda m: (m, "version"), 2), ModelFormatError, "schema version 2"),
    Mutation("stored shape disagrees with inputs", _shape_mismatch, ModelFormatError, "is stored with shape"),
    Mutation("cycle", _cycle, ModelFormatError, "cycle"),
    Mutation("unknown tensor type", _set(lambda m: (_sg(m)["tensors"][_int8_activation(m)], "type"), 42),
             ModelFormatError, "unknown code 42"),
)


# -- byte-level mutations -------------------------------------------------------------------------
def truncations(data: bytes, count: int = 8, seed: int = 0) -> Iterator[tuple[str, bytes]]:
    """Cut points: inside the header, just after it, random points, and one byte short of the end."""
    rng = np.random.default_rng(seed)
    points = sorted({1, 4, 7, 8, 16, len(data) // 2, len(data) - 1,
                     *rng.integers(9, len(data) - 1, size=max(count - 7, 0)).tolist()})
    for p in points:
        yield f"truncated to {p} bytes", data[:p]


def byte_mutations(data: bytes, count: int, seed: int = 0) -> Iterator[tuple[str, bytes]]:
    """Random corruptions of a valid file: byte flips in the metadata region, zeroed and 0xFF runs,
    random bytes with a valid identifier. The importer must load them or raise a TinyoptError."""
    rng = np.random.default_rng(seed)
    for k in range(count):
        buf = bytearray(data)
        kind = k % 4
        if kind == 0:
            for pos in rng.integers(0, len(buf), size=int(rng.integers(1, 8))):
                buf[pos] = int(rng.integers(0, 256))
            yield f"random byte flips #{k}", bytes(buf)
        elif kind == 1:
            pos = int(rng.integers(8, len(buf) - 8))
            buf[pos:pos + 8] = b"\xff" * 8
            yield f"0xFF run at {pos}", bytes(buf)
        elif kind == 2:
            pos = int(rng.integers(8, len(buf) - 4))
            buf[pos:pos + 4] = (int(rng.integers(0, 2**32))).to_bytes(4, "little")
            yield f"random u32 at {pos}", bytes(buf)
        else:
            noise = rng.integers(0, 256, size=int(rng.integers(8, 4096)), dtype=np.uint8).tobytes()
            yield f"random bytes #{k}", noise[:4] + b"TFL3" + noise[8:]


def corpus(models: list[bytes], size: int, seed: int = 0) -> Iterator[tuple[str, bytes]]:
    """``size`` corrupt files from the given valid models, deterministic for a seed: every structural
    mutation on every model it applies to, truncations, then random field edits and random byte
    mutations in turn until ``size`` files. Some random ones stay valid (a flipped weight byte)."""
    made = 0
    for mi, data in enumerate(models):
        for mut in MUTATIONS:
            if made >= size:
                return
            m = decode(data)
            try:
                mut.edit(m)
            except (StopIteration, KeyError, IndexError, TypeError):
                continue  # the mutation does not apply to this model (e.g. no int8 tensors)
            made += 1
            yield f"model {mi}: {mut.name}", encode(m)
        for name, bad in truncations(data, seed=seed + mi):
            if made >= size:
                return
            made += 1
            yield f"model {mi}: {name}", bad
    rest = size - made
    if rest <= 0 or not models:
        return
    per = -(-rest // (2 * len(models)))
    streams = []
    for mi, data in enumerate(models):
        streams.append((mi, random_edits(data, per, seed=seed + 200 + mi)))
        streams.append((mi, byte_mutations(data, per, seed=seed + 100 + mi)))
    while made < size and streams:
        for entry in list(streams):
            mi, stream = entry
            item = next(stream, None)
            if item is None:
                streams.remove(entry)
                continue
            made += 1
            yield f"model {mi}: {item[0]}", item[1]
            if made >= size:
                return


def write_corpus(folder, models: list[bytes], size: int = 250, seed: int = 0) -> list:
    """Write ``corpus(...)`` as ``NNN-<what>.tflite`` files (for CLI-level checks: exit code 2, one line)."""
    import re
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (name, data) in enumerate(corpus(models, size, seed)):
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60]
        path = folder / f"{i:03d}-{slug}.tflite"
        path.write_bytes(data)
        paths.append(path)
    return paths


# -- random field edits -----------------------------------------------------------------------------
_INTERESTING = (-(2**31), -2, -1, 0, 1, 2, 3, 7, 64, 127, 128, 255, 2**16, 2**31 - 1)


def _pick(rng, values):
    return values[int(rng.integers(0, len(values)))]


def random_edit(model: dict, rng: np.random.Generator) -> str:
    """Change one field of a decoded model to an interesting value; returns what was changed.

    Unlike byte flips these keep the flatbuffer well formed, so they reach the importer's semantic
    checks (indices, shapes, options, quantization) rather than its bounds checks.
    """
    sg = _sg(model)
    kind = int(rng.integers(0, 9))
    value = int(_pick(rng, _INTERESTING))
    if kind == 0:
        t = _pick(rng, sg["tensors"])
        if t["shape"]:
            t["shape"][int(rng.integers(0, len(t["shape"])))] = value
        return f"tensor shape dim = {value}"
    if kind == 1:
        t = _pick(rng, sg["tensors"])
        t["type"] = int(rng.integers(-3, 20))
        return f"tensor type = {t['type']}"
    if kind == 2:
        _pick(rng, sg["tensors"])["buffer"] = int(rng.integers(0, len(model["buffers"]) + 3))
        return "tensor buffer"
    if kind == 3:
        op = _pick(rng, sg["operators"])
        key = _pick(rng, ("inputs", "outputs"))
        if op[key]:
            op[key][int(rng.integers(0, len(op[key])))] = int(rng.integers(-2, len(sg["tensors"]) + 2))
        return f"operator {key}"
    if kind == 4:
        op = _pick(rng, sg["operators"])
        op["opcode"] = int(rng.integers(0, len(model["opcodes"]) + 2))
        return "operator opcode"
    if kind == 5:
        op = _pick(rng, sg["operators"])
        fields = op["options"]["fields"] if op["options"] else {}
        keys = sorted(k for k, v in fields.items() if v is not None and not isinstance(v, np.ndarray))
        if keys:
            key = _pick(rng, keys)
            old = fields[key]
            fields[key] = (float(value) if isinstance(old, float) else bool(value & 1)
                           if isinstance(old, bool)
                           else int(np.clip(value, -128, 127)) if abs(int(old)) < 128 and rng.random() < 0.5
                           else value)
            return f"option {key} = {fields[key]}"
        return "no options"
    if kind == 6:
        t = _pick(rng, [t for t in sg["tensors"] if t["quant"]] or sg["tensors"])
        if t["quant"]:
            field = _pick(rng, ("scale", "zero_point", "axis"))
            if field == "axis":
                t["quant"]["axis"] = value
            elif field == "scale":
                t["quant"]["scale"][0] = _pick(rng, (0.0, -1.0, float("nan"), float("inf"), 1e-30, 1e30))
            else:
                t["quant"]["zero_point"][0] = value
            return f"quant {field}"
        return "no quant"
    if kind == 7:
        key = _pick(rng, ("inputs", "outputs"))
        sg[key] = [int(rng.integers(-1, len(sg["tensors"]) + 1))] if rng.random() < 0.8 else []
        return f"subgraph {key}"
    op = _pick(rng, sg["operators"])
    key = _pick(rng, ("inputs", "outputs"))
    op[key] = op[key][:-1] if rng.random() < 0.5 else op[key] + [int(rng.integers(0, len(sg["tensors"])))]
    return f"operator {key} count"


def random_edits(data: bytes, count: int, seed: int = 0, edits: int = 2) -> Iterator[tuple[str, bytes]]:
    """``count`` models, each with ``edits`` random field edits applied to a fresh decode of ``data``."""
    rng = np.random.default_rng(seed)
    base = decode(data)
    for k in range(count):
        m = copy.deepcopy(base)
        what = [random_edit(m, rng) for _ in range(edits)]
        try:
            yield f"#{k}: {'; '.join(what)}", encode(m)
        except (OverflowError, ValueError, TypeError, AttributeError):
            continue  # a value the tflite builders cannot write (e.g. a bool slot); skip it
