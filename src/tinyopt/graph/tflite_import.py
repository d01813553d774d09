"""TFLite flatbuffer → Graph, strict: every offset, index, shape and quantization field is checked.

The file is read with our own bounds-checked flatbuffer reader (``_tflite_reader``), so a corrupt,
truncated or hostile file gives a one-line ``ModelFormatError`` naming the tensor or operator and a
fix, never a ``struct.error`` or a giant allocation. Constant data stays in TFLite layout; only tensors
that an operator or the graph's inputs/outputs use are imported.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from tinyopt import ops
from tinyopt.errors import ModelFormatError, UnsupportedOpError
from tinyopt.graph._tflite_reader import Corrupt, Reader, Table
from tinyopt.graph._tflite_schema import (
    ACTIVATION_NAMES,
    BUILTIN_NAMES,
    FILE_IDENTIFIER,
    NUMPY_DTYPE,
    PADDING_NAMES,
    QUANTIZED_ACTIVATION_DTYPES,
    SCHEMA_VERSION,
    TENSOR_TYPE_NAMES,
    TYPE_TO_DTYPE,
    ZERO_POINT_RANGE,
    Slot,
)
from tinyopt.graph._tflite_variables import RESOURCE_OPS, ResourceVariables
from tinyopt.graph.ir import Graph, Node, QuantParams, Tensor
from tinyopt.graph.shapes import infer_node

INT4_TYPE = TENSOR_TYPE_NAMES.index("INT4")  # read as int8 values with an int4 encoding (graph.encoding)

__all__ = ["OptionsReader", "load_tflite", "readable_ops", "tflite_bytes_to_graph"]
MAX_ELEMENTS = 2**28          # per tensor: a 1 GB float tensor is no microcontroller model
MAX_RANK = 8
MAX_FILE_BYTES = 2**31        # flatbuffers address 2 GB; MCU models are a few hundred KB
MAX_KERNEL = 1 << 16          # stride, dilation, filter sizes
COPY_SLACK = 16 << 20         # constant bytes copied beyond twice the file size are shared views
CORRUPT_FIX = "the file is damaged or is not a TFLite model; export or download it again"

def _short(name: str, limit: int = 60) -> str:
    """Converter tensor names can be hundreds of characters; errors show the head and the tail."""
    return name if len(name) <= limit else f"{name[:limit // 2 - 2]}...{name[-(limit // 2 - 1):]}"


def load_tflite(path: str | os.PathLike, opaque: bool = False) -> Graph:
    """Read a ``.tflite`` file into a validated Graph (name = file stem, ``source`` = the path).

    ``opaque``: keep operators tinyopt does not know (custom ops, builtins without a record) as opaque
    nodes with the shapes the file stores, so that analysis can count everything else; without it the
    first one is refused."""
    p = Path(path)
    if not p.exists():
        raise ModelFormatError("file not found", path=path, fix="check the path and the file name")
    if p.is_dir():
        raise ModelFormatError("is a folder, not a model file", path=path,
                               fix="give the .tflite file inside it")
    size = p.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ModelFormatError(f"the file is {size} bytes, larger than the 2 GB a TFLite "
                               "flatbuffer can address",
                               path=path, fix="give a microcontroller-sized .tflite model")
    try:
        data = p.read_bytes()
    except OSError as err:
        raise ModelFormatError(f"cannot read the file ({err.strerror})", path=path,
                               fix="check the file's permissions") from None
    return tflite_bytes_to_graph(data, str(p), opaque=opaque)


def tflite_bytes_to_graph(data: bytes, source: str = "<bytes>", opaque: bool = False) -> Graph:
    """Parse TFLite flatbuffer bytes; ``source`` names the model in errors and in ``graph.source``."""
    return _Importer(bytes(data), source, opaque).run()


class _Importer:
    def __init__(self, data: bytes, source: str, opaque: bool = False):
        self.data = data
        self.source = source
        self.opaque = opaque
        self.r = Reader(data)
        self._buffer_cache: dict[int, memoryview] = {}
        self._suffix: dict[str, int] = {}
        self._copied = 0

    # -- errors ---------------------------------------------------------------------------------
    def fail(self, msg: str, where: str | None = None, fix: str = CORRUPT_FIX) -> NoReturn:
        raise ModelFormatError(msg, path=self.source, where=where, fix=fix)

    @contextlib.contextmanager
    def at(self, where: str):
        try:
            yield
        except Corrupt as err:
            raise ModelFormatError(str(err), path=self.source, where=where, fix=CORRUPT_FIX) from None

    # -- top level ------------------------------------------------------------------------------
    def run(self) -> Graph:
        subgraphs, stateful = self._read_model_header()
        sg = subgraphs[0]
        with self.at("subgraph 0"):
            self.tensor_tables = sg.tables(Slot.SUBGRAPH_TENSORS, "the tensor list")
            inputs = sg.array(Slot.SUBGRAPH_INPUTS, "<i4", "the subgraph inputs")
            outputs = sg.array(Slot.SUBGRAPH_OUTPUTS, "<i4", "the subgraph outputs")
            op_tables = sg.tables(Slot.SUBGRAPH_OPERATORS, "the operator list")
        for kind, idx in (("input", inputs), ("output", outputs)):
            if idx.size == 0:
                self.fail(f"the model declares no {kind}s", "subgraph 0")
            for t in idx:
                self._check_tensor_index(int(t), f"subgraph 0 {kind}s")
        variables = ResourceVariables(self, subgraphs) if stateful or len(subgraphs) != 1 else None
        raw_ops = []
        for j, t in enumerate(op_tables):
            if variables is not None and (name := self.peek_op_name(j, t)) in RESOURCE_OPS:
                variables.visit(j, t, name)
            else:
                raw = self._read_operator(j, t)
                raw_ops.append(variables.rename(raw) if variables is not None else raw)
        if variables is not None and variables.init_subgraph is None:
            self.fail(f"the model has {len(subgraphs)} subgraphs and no CALL_ONCE", "model header",
                      fix="export a single-subgraph model (no control flow such as IF or WHILE)")
        states = set(variables.state.values()) if variables is not None else set()

        used = sorted({int(t) for t in inputs} | {int(t) for t in outputs} | states
                      | {t for _, ins, outs, _ in raw_ops for t in (*ins, *outs) if t >= 0})
        graph = Graph(Path(self.source).stem if not self.source.startswith("<") else "model",
                      source=self.source)
        self.names: dict[int, str] = {}
        outputs_of_ops = {t for _, _, outs, _ in raw_ops for t in outs}
        for i in used:
            tensor = self._read_tensor(i, graph)
            if tensor.constant and (i in outputs_of_ops or i in set(inputs.tolist())):
                self.fail("has constant data but is a graph input or an operator output",
                          f"tensor {i} '{_short(tensor.name)}'")
            graph.add_tensor(tensor)
            self.names[i] = tensor.name
        for t in outputs:  # an output that is a weight or the input itself: nothing to compute or compile
            if int(t) not in outputs_of_ops:
                self.fail("is a graph output but no operator computes it", f"tensor {int(t)} "
                          f"'{_short(self.names[int(t)])}'",
                          "export the model again; outputs come from operators")
        graph.inputs = [self.names[int(t)] for t in inputs]
        graph.outputs = [self.names[int(t)] for t in outputs]
        for j, (name, ins, outs, opts) in enumerate(raw_ops):
            in_names = [self.names[t] if t >= 0 else "" for t in ins]
            out_names = [self.names[t] for t in outs]
            if isinstance(opts, _Custom):  # a custom operator a record reads as its own
                r = OptionsReader(self, None, f"operator {j} ({name})")
                node = opts.rec.from_tflite_custom(r, opts.code, opts.options, graph, in_names, out_names)
                graph.add_node(node)
                continue
            node = Node(self.names[outs[0]], name, in_names, out_names)
            node.attrs = {} if ops.is_opaque(name) else self._attrs(j, node, opts, graph)
            graph.add_node(node)
        if variables is not None:
            variables.finish(graph)
        self._fold_constants(graph)
        graph.toposort()  # files from converters are in order already and pass unchanged
        graph.validate()
        self._check_shapes(graph)
        return graph

    def _read_model_header(self) -> tuple[list, bool]:
        """The file's identifier and schema version, its operator codes, buffers and metadata; returns the
        subgraphs and whether resource variables (a CALL_ONCE init subgraph) are in use."""
        n = len(self.data)
        if n == 0:
            self.fail("the file is empty", fix="export the model again")
        if n < 8:
            self.fail(f"the file is {n} bytes, too short to be a TFLite model")
        ident = self.data[4:8]
        if ident != FILE_IDENTIFIER:
            self.fail(f"not a TFLite model: file identifier is {ident!r}, expected b'TFL3'",
                      fix="give a .tflite file written by the TFLite converter or by tinyopt")
        with self.at("model header"):
            model = self.r.root()
            version = model.scalar(Slot.MODEL_VERSION, "u32")
            if version != SCHEMA_VERSION:
                self.fail(f"schema version {version} is not supported (expected {SCHEMA_VERSION})",
                          "model header", fix="convert the model with a current TFLite converter")
            subgraphs = model.tables(Slot.MODEL_SUBGRAPHS, "the subgraph list")
            self.opcodes = model.tables(Slot.MODEL_OPERATOR_CODES, "the operator code list")
            self.buffers = model.tables(Slot.MODEL_BUFFERS, "the buffer list")
            metadata = model.tables(Slot.MODEL_METADATA, "the metadata list")
        self.luts = self._lut_tensors(metadata)
        self.op_names = [self._opcode_name(i, oc) for i, oc in enumerate(self.opcodes)]
        stateful = "CALL_ONCE" in self.op_names  # resource variables: see _tflite_variables
        if len(subgraphs) != 1 and not stateful:
            self.fail(f"the model has {len(subgraphs)} subgraphs; tinyopt supports exactly one",
                      "model header",
                      fix="export a single-subgraph model (no control flow such as IF or WHILE; CALL_ONCE "
                          "initialising resource variables is read)")
        return subgraphs, stateful

    def _lut_tensors(self, metadata) -> dict[int, tuple[int, int]]:
        """Tensor index -> (value buffer, index bits) of TFLM's lookup-table compressed tensors (its
        COMPRESSION_METADATA entry: a tflite.micro.compression.Metadata flatbuffer, schema version 1)."""
        from tinyopt.graph.encoding import MAX_CODEBOOK_BITS, METADATA_NAME

        out: dict[int, tuple[int, int]] = {}
        for k, md in enumerate(metadata):
            with self.at(f"metadata {k}"):
                if md.string(Slot.METADATA_NAME, "the metadata name") != METADATA_NAME:
                    continue
                buf = self._buffer(md.scalar(Slot.METADATA_BUFFER, "u32"), f"metadata {k}")
            where = METADATA_NAME
            with self.at(where):
                root = Reader(bytes(buf)).root()
                version = root.scalar(0, "u32", 1)
                if version != 1:
                    self.fail(f"compression schema version {version}; tinyopt reads version 1", where,
                              fix="compress the model with a tflite-micro release that writes version 1")
                subgraphs = root.tables(1, "its subgraph list")
                for lut in subgraphs[0].tables(0, "its lookup-table tensors") if subgraphs else []:
                    tensor, value_buffer = lut.scalar(0, "i32"), lut.scalar(1, "u32")
                    bits = lut.scalar(2, "u8")
                    if not 1 <= bits <= MAX_CODEBOOK_BITS or tensor < 0:
                        self.fail(f"lookup-table entry for tensor {tensor} with "
                                  f"{bits}-bit indices is invalid", where)
                    out[tensor] = (value_buffer, bits)
        return out

    def _compressed(self, i: int, raw, int4: bool, shape: list[int], dtype: str, qtable, where: str):
        """(int8 data, encoding, stored bytes) of an INT4 tensor or a lookup-table compressed one."""
        from tinyopt.graph import encoding as enc
        from tinyopt.graph.ir import Encoding

        count = math.prod(shape)
        if int4:
            want = (count + 1) // 2
            if len(raw) != want:
                self.fail(f"buffer holds {len(raw)} bytes but {count} int4 values need {want}", where)
            data = enc.unpack_int4(raw, count).reshape(shape)
            return data, Encoding(4, False, bool(np.count_nonzero(data) <= count // 2)), len(raw)
        if dtype != "int8":
            self.fail(f"is a lookup-table compressed {dtype} tensor; tinyopt reads int8 ones", where,
                      "compress only the int8 weights of the model")
        value_buffer, bits = self.luts[i]
        values = self._buffer(value_buffer, f"{where}: its value table")
        quant = self._read_quant(qtable, shape, dtype, where) if qtable is not None else None
        axis = int(quant.axis or 0) if quant is not None and quant.per_channel else None
        try:
            data = enc.decode_lut(raw, values, tuple(shape), bits, axis)
        except ValueError as e:
            self.fail(f"its lookup-table compression is inconsistent: {e}", where)
        stride = len(values) // (1 if axis is None else shape[axis])
        sparse = bool(np.count_nonzero(data) <= count // 2)
        return data, Encoding(enc.index_bits(stride), True, sparse), len(raw) + len(values)

    def _fold_constants(self, graph: Graph) -> None:
        """Operators of constants only, computed now (the converter's DEQUANTIZE of float16 weights, DENSIFY
        of sparse ones): their outputs become plain constants that keep what the file stores them in."""
        for node in list(graph.nodes):
            ins = [graph.tensors[t] for t in node.inputs if t]
            if not ins or not all(t.constant and t.data is not None for t in ins):
                continue
            values = ops.get(node.op).fold_constant(graph, node)
            if values is None:
                continue
            stored = sum(t.nbytes for t in ins)
            for name, v in zip(node.outputs, values):
                if name in graph.outputs:
                    break  # a graph output stays computed
                out = graph.tensors[name]
                out.data, out.constant = np.asarray(v).reshape(out.shape), True
                out.stored_bytes = stored if len(node.outputs) == 1 else None
            else:
                graph.nodes.remove(node)

    def _unique(self, graph: Graph, base: str) -> str:
        """``base`` or ``base_<k>`` not yet in the graph; amortized O(1) even for thousands of repeats."""
        if base not in graph.tensors:
            return base
        k = self._suffix.get(base, 1)
        while f"{base}_{k}" in graph.tensors:
            k += 1
        self._suffix[base] = k + 1
        return f"{base}_{k}"

    # -- operator codes and operators -----------------------------------------------------------
    def _opcode_name(self, i: int, oc: Table) -> str:
        with self.at(f"operator code {i}"):
            deprecated = oc.scalar(Slot.OPCODE_DEPRECATED_BUILTIN, "i8")
            code = max(deprecated, oc.scalar(Slot.OPCODE_BUILTIN, "i32"))
            if code == 32:  # CUSTOM
                return f"CUSTOM '{oc.string(Slot.OPCODE_CUSTOM, 'the custom code')}'"
        if 0 <= code < len(BUILTIN_NAMES):
            return BUILTIN_NAMES[code]
        return f"unknown builtin code {code}"

    def peek_op_name(self, j: int, op: Table) -> str:
        """The operator's name, nothing else read or checked yet."""
        with self.at(f"operator {j}"):
            oi = op.scalar(Slot.OP_OPCODE_INDEX, "u32")
        if oi >= len(self.opcodes):
            self.fail(f"opcode index {oi} is out of range (the model has {len(self.opcodes)} operator codes)",
                      f"operator {j}")
        return self.op_names[oi]

    def _check_tensor_index(self, t: int, where: str) -> None:
        if not 0 <= t < len(self.tensor_tables):
            self.fail(f"tensor index {t} is out of range (the subgraph has "
                      f"{len(self.tensor_tables)} tensors)",
                      where)

    def _read_operator(self, j: int, op: Table):
        where = f"operator {j}"
        with self.at(where):
            oi = op.scalar(Slot.OP_OPCODE_INDEX, "u32")
            if oi >= len(self.opcodes):
                self.fail(f"opcode index {oi} is out of range (the model has "
                          f"{len(self.opcodes)} operator codes)", where)
            name = self.op_names[oi]
            ins = [int(t) for t in op.array(Slot.OP_INPUTS, "<i4", "the operator inputs")]
            outs = [int(t) for t in op.array(Slot.OP_OUTPUTS, "<i4", "the operator outputs")]
            opts_type = op.scalar(Slot.OP_OPTIONS_TYPE, "u8")
            opts = op.table(Slot.OP_OPTIONS, "the builtin options") if opts_type else None
        custom = re.fullmatch(r"CUSTOM '(.*)'", name, re.S)
        code = custom.group(1) if custom else None
        rec = ops.doors().tflite_custom.get(code) if code is not None else None
        # its record checks the operands and reads the raw custom options
        if rec is not None and code is not None:
            for t in (*ins, *outs):
                if t != -1:
                    self._check_tensor_index(t, f"operator {j} ({name})")
            if not outs:
                self.fail("has no outputs", f"operator {j} ({name})")
            with self.at(where):
                options = bytes(op.bytes(Slot.OP_CUSTOM_OPTIONS, "the custom options"))
            return name, ins, outs, _Custom(rec, code, options)
        rec = ops.find(name)
        if rec is None or rec.builtin is None:
            if not self.opaque:
                raise UnsupportedOpError(f"operator {name} is not supported", path=self.source, where=where,
                                         fix=f"replace it in the model; supported operators are "
                                             f"{', '.join(readable_ops())}")
            rec = ops.opaque(name)
        self._check_operands(rec, name, ins, outs, opts_type, f"operator {j} ({name})")
        return name, ins, outs, opts

    def _check_operands(self, rec, name: str, ins: list[int], outs: list[int], opts_type: int,
                        where: str) -> None:
        """Operand indices in range, counts within the record's arity, required inputs present, no tensor
        both read and written, and the options table of the record's union type."""
        for t in ins:
            if t != -1:
                self._check_tensor_index(t, where)
        for t in outs:
            self._check_tensor_index(t, where)
        lo, hi = rec.outputs
        if not lo <= len(outs) <= hi:
            self.fail(f"has {len(outs)} outputs, expected {lo}" + (f" to {hi}" if hi != lo else ""), where)
        lo, hi = rec.arity
        if not lo <= len(ins) <= hi:
            self.fail(f"has {len(ins)} inputs, expected {lo}" + (f" to {hi}" if hi != lo else ""), where)
        for pos, t in enumerate(ins):
            if t == -1 and pos not in rec.optional_inputs:
                self.fail(f"input {pos} is absent (-1) but is required", where)
        if set(ins) & set(outs):
            self.fail(f"tensor {sorted(set(ins) & set(outs))[0]} is both an input and an output", where)
        want = rec.options.type if rec.options else 0
        if opts_type not in (0, want) and not ops.is_opaque(name):
            self.fail(f"carries builtin options of union type {opts_type}, expected {want}", where)

    # -- tensors --------------------------------------------------------------------------------
    def _buffer(self, b: int, where: str) -> memoryview:
        if b in self._buffer_cache:
            return self._buffer_cache[b]
        if b >= len(self.buffers):
            self.fail(f"buffer index {b} is out of range (the model has {len(self.buffers)} buffers)", where)
        buf = self.buffers[b]
        with self.at(f"{where}: buffer {b}"):
            offset = buf.scalar(Slot.BUFFER_OFFSET, "u64")
            size = buf.scalar(Slot.BUFFER_SIZE, "u64")
            if offset > 1:  # data stored after the flatbuffer (models over 2 GB)
                if offset + size > len(self.data):
                    raise Corrupt(f"external data (bytes {offset}..{offset + size}) lies outside the "
                                  f"{len(self.data)}-byte file")
                view = memoryview(self.data)[offset:offset + size]
            else:
                view = buf.bytes(Slot.BUFFER_DATA, "the buffer data")
        self._buffer_cache[b] = view
        return view

    def _read_tensor(self, i: int, graph: Graph) -> Tensor:
        t = self.tensor_tables[i]
        with self.at(f"tensor {i}"):
            raw_name = t.string(Slot.TENSOR_NAME, "the tensor name")
        where = f"tensor {i} '{_short(raw_name)}'"
        with self.at(where):
            shape = t.array(Slot.TENSOR_SHAPE, "<i4", "the tensor shape").tolist()
            ttype = t.scalar(Slot.TENSOR_TYPE, "i8")
            b = t.scalar(Slot.TENSOR_BUFFER, "u32")
            has_sparsity = t.has(Slot.TENSOR_SPARSITY)
            sparse = t.table(Slot.TENSOR_SPARSITY, "the sparsity parameters") if has_sparsity else None
            qtable = t.table(Slot.TENSOR_QUANTIZATION, "the quantization parameters")
            variable = t.scalar(Slot.TENSOR_IS_VARIABLE, "bool", False)
        fix_shape = "re-export the model with static, positive shapes"
        if len(shape) > MAX_RANK:
            self.fail(f"has rank {len(shape)}, more than {MAX_RANK}", where, fix_shape)
        for d in shape:
            if d <= 0:
                self.fail(f"has a {'negative' if d < 0 else 'zero'} dimension in shape {shape}", where,
                          fix_shape)
        elements = math.prod(shape)
        if elements > MAX_ELEMENTS:
            self.fail(f"shape {shape} has {elements} elements, more than the limit of {MAX_ELEMENTS}", where,
                      "use a smaller model; microcontroller tensors are far below this limit")
        int4 = ttype == INT4_TYPE  # weights stored two per byte: read as the int8 values they hold
        if ttype not in TYPE_TO_DTYPE and not int4:
            kind = (TENSOR_TYPE_NAMES[ttype] if 0 <= ttype < len(TENSOR_TYPE_NAMES)
                    else f"unknown code {ttype}")
            self.fail(f"has tensor type {kind}, which tinyopt does not support", where,
                      "use float32, float16, int8, uint8, int16, int32, int64 or bool tensors")
        dtype = "int8" if int4 else TYPE_TO_DTYPE[ttype]
        if variable:  # a state tensor: TFLM resets it to zero (the zero point) and ignores stored values
            b = 0
        raw = self._buffer(b, where) if b else memoryview(b"")
        data = None
        stored = None
        encoding = None
        if sparse is not None:
            if not len(raw):
                self.fail("is a sparse tensor without values", where)
            with self.at(f"{where}: sparsity"):
                data, stored = self._densify(sparse, raw, dtype, shape, where)
        elif len(raw) and (int4 or i in self.luts):
            data, encoding, stored = self._compressed(i, raw, int4, shape, dtype, qtable, where)
        elif int4:
            self.fail("is an INT4 tensor without values; tinyopt reads INT4 constants only", where,
                      "store int4 weights only")
        elif len(raw):
            data = self._dense(raw, b, shape, dtype, where)
        quant = self._read_quant(qtable, shape, dtype, where) if qtable is not None else None
        if quant is None and data is None and dtype in QUANTIZED_ACTIVATION_DTYPES:
            self.fail(f"is an {dtype} activation without quantization parameters", where,
                      "quantize the model fully (scale and zero point on every integer activation)")
        name = self._unique(graph, raw_name or f"tensor_{i}")
        return Tensor(name, tuple(shape), dtype, data=data, quant=quant, constant=data is not None,
                      stored_bytes=stored, variable=variable, encoding=encoding)

    def _dense(self, raw: memoryview, b: int, shape: list[int], dtype: str, where: str) -> np.ndarray:
        """A plain constant from buffer ``b``, its size and values checked."""
        elements = math.prod(shape)
        want = elements * NUMPY_DTYPE[dtype].itemsize
        if len(raw) != want:
            self.fail(f"buffer {b} holds {len(raw)} bytes but shape {shape} of {dtype} needs {want}", where)
        data = np.frombuffer(raw, NUMPY_DTYPE[dtype], elements).reshape(shape)
        # Copies are bounded by the file size: tensors that share one buffer past that budget get
        # read-only views instead, so a small hostile file cannot make us copy a buffer 1,000 times.
        if self._copied + want <= 2 * len(self.data) + COPY_SLACK:
            data = data.copy()
            self._copied += want
        if data.dtype.kind == "f" and not np.isfinite(data).all():
            bad = int(np.count_nonzero(~np.isfinite(data)))
            self.fail(f"holds {bad} NaN or infinite value(s) in its constant data", where,
                      "retrain or re-export the model; its weights diverged")
        return data

    def _sparse_dims(self, metas: list[Table], where: str) -> tuple[list[tuple[str, Any, Any]], int]:
        """Per traversal position ("dense", size, None) or ("sparse", segments, indices), and the bytes the
        index arrays take in the file."""
        vectors = {1: "<i4", 2: "<u2", 3: "u1"}  # SparseIndexVector: Int32Vector, Uint16Vector, Uint8Vector
        dims: list[tuple[str, Any, Any]] = []
        stored = 0
        for k, m in enumerate(metas):
            if m.scalar(0, "i8") == 0:  # DENSE
                dims.append(("dense", int(m.scalar(1, "i32")), None))
                continue
            seg_t, idx_t = m.scalar(2, "u8"), m.scalar(4, "u8")
            if seg_t not in vectors or idx_t not in vectors:
                self.fail(f"dimension {k} has no segment/index vector", where)
            seg_table, idx_table = m.table(3, "the array segments"), m.table(5, "the array indices")
            if seg_table is None or idx_table is None:
                self.fail(f"dimension {k} has no segment/index vector", where)
            segs = seg_table.array(0, vectors[seg_t], "the segments")
            idx = idx_table.array(0, vectors[idx_t], "the indices")
            stored += segs.nbytes + idx.nbytes  # as stored, before widening
            dims.append(("sparse", segs.astype(np.int64), idx.astype(np.int64)))
        return dims, stored

    def _densify(self, sp: Table, raw: memoryview, dtype: str, shape: list[int], where: str):
        """A sparse constant (TFLite's SparsityParameters: a traversal order over the dimensions, optional
        blocking, each dimension DENSE or compressed as segments + indices) as a dense array, and the bytes
        the file stores for it (values and index arrays)."""
        order = [int(v) for v in sp.array(0, "<i4", "the traversal order")]
        block_map = [int(v) for v in sp.array(1, "<i4", "the block map")]
        metas = sp.tables(2, "the dimension metadata")
        rank = len(shape)
        if sorted(order) != list(range(rank + len(block_map))) or len(metas) != len(order) \
                or any(not 0 <= d < rank for d in block_map):
            self.fail(f"has inconsistent sparsity parameters (traversal order {order}, block map "
                      f"{block_map}, {len(metas)} dimension metadata for rank {rank})", where)
        dims, index_bytes = self._sparse_dims(metas, where)
        stored = len(raw) + index_bytes
        # blocked dims: the first `rank` traversal dims index blocks, the rest index inside a block
        block_sizes = []
        for b in range(len(block_map)):
            pos = order.index(rank + b)
            if dims[pos][0] != "dense":
                self.fail("has a sparse block dimension", where)
            block_sizes.append(dims[pos][1])
        full = np.zeros(math.prod(shape), NUMPY_DTYPE[dtype])
        values = np.frombuffer(raw, NUMPY_DTYPE[dtype])
        coords = [0] * len(order)
        consumed = 0

        def visit(level: int, parent: int) -> None:
            nonlocal consumed
            kind, a, b = dims[level]
            if kind == "dense":
                children = [(i, parent * a + i) for i in range(a)]
            else:
                if parent + 1 >= len(a) or a[parent] > a[parent + 1] or a[parent + 1] > len(b):
                    self.fail("has array segments out of range", where)
                children = [(int(b[j]), j) for j in range(a[parent], a[parent + 1])]
            for coord, child in children:
                coords[order[level]] = coord
                if level + 1 < len(order):
                    visit(level + 1, child)
                    continue
                index = []
                for d in range(rank):
                    c = coords[d]
                    if d in block_map:
                        b_i = block_map.index(d)
                        c = c * block_sizes[b_i] + coords[rank + b_i]
                    if not 0 <= c < shape[d]:
                        self.fail(f"has an index {c} outside dimension {d} of {shape}", where)
                    index.append(c)
                if consumed >= len(values):
                    self.fail("has fewer values than its indices address", where)
                full[np.ravel_multi_index(index, shape)] = values[consumed]
                consumed += 1

        visit(0, 0)
        if consumed != len(values):
            self.fail(f"holds {len(values)} values but its indices address {consumed}", where)
        return full.reshape(shape), stored

    def _read_quant(self, q: Table, shape: list[int], dtype: str, where: str) -> QuantParams | None:
        with self.at(f"{where}: quantization"):
            if q.scalar(Slot.QUANT_DETAILS_TYPE, "u8"):
                self.fail("uses custom quantization details, which tinyopt does not support", where,
                          "use affine (scale, zero point) quantization")
            scale = q.array(Slot.QUANT_SCALE, "<f4", "the scales")
            zero = q.array(Slot.QUANT_ZERO_POINT, "<i8", "the zero points")
            axis = q.scalar(Slot.QUANT_DIMENSION, "i32")
        if scale.size == 0 and zero.size == 0:
            return None  # min/max only (float model statistics): no affine quantization
        fix = "re-quantize the model"
        if scale.size != zero.size:
            self.fail(f"has {scale.size} scales but {zero.size} zero points", where, fix)
        if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            bad = scale[~(np.isfinite(scale) & (scale > 0))][0]
            self.fail(f"has quantization scale {bad}; scales must be positive and finite", where, fix)
        if dtype in ZERO_POINT_RANGE:
            lo, hi = ZERO_POINT_RANGE[dtype]
            if np.any(zero < lo) or np.any(zero > hi):
                bad = zero[(zero < lo) | (zero > hi)][0]
                self.fail(f"has zero point {bad}, outside the {dtype} range [{lo}, {hi}]", where, fix)
        if axis < 0 or (axis >= len(shape) and (len(shape) > 0 or scale.size > 1)):
            self.fail(f"has quantized dimension {axis}, out of range for shape {shape}", where, fix)
        if scale.size > 1 and scale.size != shape[axis]:
            self.fail(f"has {scale.size} per-channel scales but dimension {axis} of shape "
                      f"{shape} is {shape[axis]}", where, fix)
        return QuantParams(scale, zero, axis=axis)

    # -- options → attrs ------------------------------------------------------------------------
    def _attrs(self, j: int, node: Node, opts: Table | None, graph: Graph) -> dict:
        rec = ops.get(node.op)
        where = f"operator {j} ({node.op}) '{_short(node.name)}'"
        ins = graph.node_inputs(node)
        out = graph.tensors[node.outputs[0]]
        with self.at(where):
            attrs = rec.read_tflite(OptionsReader(self, opts, where), ins, out)
        bad = rec.check_dtypes(ins, out)
        if bad:
            self.fail(bad, where, "re-export the model; TFLite kernels do not accept this dtype combination")
        return attrs

    def _check_shapes(self, graph: Graph) -> None:
        """Recompute every output shape from the inputs; a stored shape that disagrees means corruption."""
        for i, node in enumerate(graph.nodes):
            stored = [graph.tensors[o].shape for o in node.outputs]
            infer_node(graph, node, index=i)
            for o, before in zip(node.outputs, stored):
                computed = graph.tensors[o].shape
                if computed != before:
                    self.fail(f"output '{o}' is stored with shape {list(before)} but its inputs give "
                              f"{list(computed)}", f"operator {i} ({node.op}) '{_short(node.name)}'")


def readable_ops() -> tuple[str, ...]:
    """The TFLite builtins tinyopt reads."""
    return tuple(r.name for r in ops.records() if r.builtin is not None)


@dataclasses.dataclass(frozen=True)
class _Custom:
    """A custom operator's record, its code and its raw custom options."""

    rec: ops.Op
    code: str
    options: bytes


class OptionsReader:
    """What an operator record's ``read_tflite`` reads the builtin options table through: declared fields,
    raw slots, and the checks that name the operator when they fail."""

    def __init__(self, importer: _Importer, opts: Table | None, where: str):
        self.imp = importer
        self.opts = opts
        self.where = where
        self.source = importer.source

    def fail(self, msg: str, fix: str = CORRUPT_FIX) -> NoReturn:
        self.imp.fail(msg, self.where, fix)

    def get(self, slot: int, kind: str, default=0):
        return default if self.opts is None else self.opts.scalar(slot, kind, default)

    def has(self, slot: int) -> bool:
        return self.opts is not None and self.opts.has(slot)

    def array(self, slot: int, dtype: str, what: str) -> np.ndarray:
        if self.opts is None:
            self.fail(f"has no builtin options table, so no {what}")
        return self.opts.array(slot, dtype, what)

    def fields(self, fields) -> dict:
        """The attributes of declared option fields (``ops._record.Field``), checked."""
        attrs: dict[str, Any] = {}
        for f in fields:
            if f.kind == "activation":
                code = self.get(f.slots[0], "i8")
                if not 0 <= code < len(ACTIVATION_NAMES):
                    raise UnsupportedOpError(f"fused activation code {code} is not supported",
                                             path=self.source, where=self.where,
                                             fix=f"use one of {', '.join(ACTIVATION_NAMES)}")
                attrs[f.attr] = ACTIVATION_NAMES[code]
            elif f.kind == "padding":
                code = self.get(f.slots[0], "i8")
                if not 0 <= code < len(PADDING_NAMES):
                    self.fail(f"padding code {code} is not SAME (0) or VALID (1)")
                attrs[f.attr] = PADDING_NAMES[code]
            elif len(f.slots) == 2:
                values = tuple(self.get(s, f.kind, f.stored_default) for s in f.slots)
                if f.positive and any(not 1 <= v <= MAX_KERNEL for v in values):
                    self.fail(f"{f.attr} {values} must be between 1 and {MAX_KERNEL}")
                attrs[f.attr] = values
            else:
                attrs[f.attr] = self.get(f.slots[0], f.kind, f.stored_default)
        return attrs

    def ranks(self, ins: list[Tensor | None], ranks: tuple) -> None:
        for k, (t, rank) in enumerate(zip(ins, ranks)):
            if t is not None and rank is not None and len(t.shape) != rank:
                self.fail(f"input {k} '{_short(t.name)}' has shape {list(t.shape)}, expected rank {rank}")

    def bias(self, ins: list[Tensor | None], channels: int) -> None:
        if len(ins) > 2 and ins[2] is not None and ins[2].shape != (channels,):
            self.fail(f"bias '{_short(ins[2].name)}' has shape {list(ins[2].shape)}, expected [{channels}]")

    def const_int(self, t: Tensor, what: str) -> np.ndarray:
        if t.data is None or t.dtype not in ("int32", "int64"):
            self.fail(f"{what} '{_short(t.name)}' must be a constant int32 tensor",
                      "re-export the model with constant shape operands")
        return t.data
