"""Graph → ``.tflite`` flatbuffer (schema version 3) that TFLM and LiteRT load.

Written field by field with the ``flatbuffers`` Builder from the schema's slot numbers
(``graph/_tflite_schema.py``), so the only runtime dependency is ``flatbuffers``. The output is
deterministic: the same Graph gives the same bytes. Re-importing it with ``load_tflite`` gives back the
same ops, attributes, tensor names, shapes, dtypes, data and quantization, plus any operand the IR left
implicit and TFLite needs (a convolution's zero bias, MEAN's axes: see ``_complete_operands``). Every
written file is read back with the strict importer before it is returned.

Layout choices: buffer 0 is the empty sentinel and every non-constant tensor points to it; each constant
gets its own 16-byte aligned buffer; both ``deprecated_builtin_code`` and ``builtin_code`` are set (TFLM
reads the first for codes below 127); a ``serving_default`` signature lists the graph inputs/outputs.
A weight with an encoding (``Tensor.encoding``, a compressed model's) is stored as TFLM reads it
(``graph.encoding.tflite_form``): an INT4 tensor, or lookup-table indices whose value tables follow the
constants and whose ``COMPRESSION_METADATA`` is the last buffer.
Not written: shape signatures, min/max statistics and ``min_runtime_version`` metadata (no runtime needs
them; the files are 0-11 % smaller than the converter's).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import flatbuffers
import numpy as np

from tinyopt import ops
from tinyopt._io import atomic_write_bytes
from tinyopt.errors import ModelFormatError, UnsupportedOpError
from tinyopt.graph._tflite_schema import (
    ACTIVATION_CODE,
    BUILTIN_NAMES,
    DTYPE_TO_TYPE,
    FILE_IDENTIFIER,
    NUMPY_DTYPE,
    PADDING_CODE,
    PLACEHOLDER_FOR_GREATER_OP_CODES,
    SCHEMA_VERSION,
    TENSOR_TYPE_NAMES,
    Slot,
)
from tinyopt.graph._tflite_variables import RESOURCE_OPS
from tinyopt.graph.ir import Graph, Node, Tensor

RESOURCE_TYPE = 13  # TensorType RESOURCE: a variable's handle
CALL_ONCE_OPTIONS, VAR_HANDLE_OPTIONS = 103, 111  # BuiltinOptions union members

INT4_TYPE = TENSOR_TYPE_NAMES.index("INT4")  # an int4-encoded weight (graph.encoding.pack_int4)


__all__ = ["graph_to_tflite_bytes", "save_tflite", "single_op_model", "writable_ops"]


def writable_ops() -> tuple[str, ...]:
    """The operators that exist in TFLite (records with a builtin code)."""
    return tuple(r.name for r in ops.records() if r.builtin is not None)


def save_tflite(graph: Graph, path: str | os.PathLike) -> Path:
    """Write ``graph`` to ``path`` atomically (a failed write never leaves a partial file)."""
    return atomic_write_bytes(path, graph_to_tflite_bytes(graph))


def graph_to_tflite_bytes(graph: Graph) -> bytes:
    """Serialize a Graph with weights; raises ``ModelFormatError``/``UnsupportedOpError`` when it cannot."""
    from tinyopt.graph.tflite_import import tflite_bytes_to_graph

    graph.validate()
    data = _Writer(_complete_operands(graph)).build()
    # What we write, we must read back: the strict importer checks quantization, dtypes per op and every
    # shape again, and names the tensor or operator if the graph breaks a TFLite rule.
    tflite_bytes_to_graph(data, graph.source or graph.name)
    return data


def single_op_model(op: str, inputs: Sequence[Tensor | None], output: Tensor | Sequence[Tensor],
                    attrs: dict | None = None, name: str = "single_op") -> Graph:
    """A one-operator Graph for per-op tests: non-constant inputs become the graph inputs.

    ``output``'s shape (or each of a list of outputs) is recomputed from the inputs (``shapes.py``), so any
    placeholder shape will do; its dtype and quantization are kept. ``None`` marks an absent optional input (a
    bias); variable inputs (recurrent state) stay node operands, not graph inputs.
    Write it with ``graph_to_tflite_bytes`` and run it in TFLM or LiteRT:

    >>> import numpy as np
    >>> from tinyopt.graph.ir import QuantParams, Tensor
    >>> w = np.ones((2, 1, 1, 3), np.int8)
    >>> g = single_op_model(
    ...     "CONV_2D",
    ...     [Tensor("x", (1, 4, 4, 3), "int8", quant=QuantParams(0.5, 0)),
    ...      Tensor("w", w.shape, "int8", data=w, quant=QuantParams([0.01, 0.02], [0, 0], axis=0)),
    ...      Tensor("b", (2,), "int32", data=np.zeros(2, np.int32),
    ...             quant=QuantParams([0.005, 0.01], [0, 0], axis=0))],
    ...     Tensor("y", (), "int8", quant=QuantParams(0.1, 0)), {"stride": (1, 1), "padding": "SAME"})
    >>> g.tensors["y"].shape
    (1, 4, 4, 2)
    >>> graph_to_tflite_bytes(g)[4:8]
    b'TFL3'
    """
    outputs = [output] if isinstance(output, Tensor) else list(output)
    g = Graph(name, source=f"<single {op} model>")
    for t in [*[t for t in inputs if t is not None], *outputs]:
        g.add_tensor(t)
    g.add_node(Node(outputs[0].name, op, [t.name if t is not None else "" for t in inputs],
                    [t.name for t in outputs], dict(attrs or {})))
    g.inputs = [t.name for t in inputs if t is not None and not t.constant and not t.variable]
    g.outputs = [t.name for t in outputs]
    g.infer_shapes()
    return g.validate()


def _complete_operands(graph: Graph) -> Graph:
    """A copy of ``graph`` with the operands a TFLite file must carry but the IR may leave implicit (each
    record's ``complete_operands``: a convolution's zero bias, MEAN's axes as an int32 constant). The
    computation is unchanged; re-importing shows the added constants."""
    g = graph.copy()
    for n in g.nodes:
        ops.get(n.op).complete_operands(g, n)
    return g


class _Writer:
    def __init__(self, graph: Graph):
        self.g = graph
        self.where = graph.source or graph.name
        self._check()
        used: set[str] = set(graph.inputs) | set(graph.outputs)
        for n in graph.nodes:
            used.update(t for t in [*n.inputs, *n.outputs] if t)
        self.tensors = [t for t in graph.tensors.values() if t.name in used]
        self.index = {t.name: i for i, t in enumerate(self.tensors)}
        self.op_names: list[str] = []
        for n in graph.nodes:
            if n.op not in self.op_names:
                self.op_names.append(n.op)
        if getattr(graph, "variables", None):
            self.op_names += list(RESOURCE_OPS)
        const_bytes = sum(t.nbytes for t in self.tensors if t.data is not None)
        self.b = flatbuffers.Builder(const_bytes + 16 * len(self.tensors) + 65536)

    # -- checks ---------------------------------------------------------------------------------
    def _check(self) -> None:
        g = self.g
        for i, n in enumerate(g.nodes):
            rec = ops.find(n.op)
            if rec is None or rec.builtin is None:
                fix = (rec.missing_fix if rec is not None
                       and rec.missing_fix else f"use one of {', '.join(writable_ops())}")
                raise UnsupportedOpError(f"operator {n.op} cannot be written to TFLite", path=self.where,
                                         where=f"node {i} '{n.name}'", fix=fix)
            lo, hi = rec.outputs
            if not lo <= len(n.outputs) <= hi:
                raise ModelFormatError(f"has {len(n.outputs)} outputs; {n.op} has {lo} to {hi}",
                                       path=self.where, where=f"node {i} '{n.name}' ({n.op})",
                                       fix="repair the graph")
            for key, table in (("activation", ACTIVATION_CODE), ("padding", PADDING_CODE)):
                if key in n.attrs and n.attrs[key] not in table:
                    raise UnsupportedOpError(f"{key} {n.attrs[key]!r} has no TFLite encoding",
                                             path=self.where, where=f"node {i} '{n.name}' ({n.op})",
                                             fix=f"use one of {', '.join(table)}")
        for t in g.tensors.values():
            where = f"tensor '{t.name}'"
            if t.dtype not in DTYPE_TO_TYPE:
                raise ModelFormatError(f"dtype {t.dtype} cannot be written to TFLite", path=self.where,
                                       where=where, fix=f"use one of {', '.join(DTYPE_TO_TYPE)}")
            if t.constant and t.data is None:
                raise ModelFormatError("is a constant without values (an architecture spec has no weights)",
                                       path=self.where, where=where,
                                       fix="train or convert the model so every weight has "
                                           "values before exporting")
            if t.data is not None:
                self._check_data(t, np.asarray(t.data), where)

    def _check_data(self, t: Tensor, arr: np.ndarray, where: str) -> None:
        """Values must survive the cast to the tensor's dtype unchanged (no silent wrap-around)."""
        fail = None
        if arr.size != t.size:
            fail = (f"holds {arr.size} values but shape {list(t.shape)} needs {t.size}",
                    "fix the tensor's data or shape")
        elif arr.dtype.kind == "f" and not np.isfinite(arr).all():
            fail = ("holds NaN or infinite values", "retrain the model or clip its weights before exporting")
        elif t.dtype not in ("float32", "float16", "bool") and arr.size:
            info = np.iinfo(NUMPY_DTYPE[t.dtype])
            if arr.dtype.kind == "f" and not np.array_equal(arr, np.round(arr)):
                fail = (f"holds fractional values but is {t.dtype}", "quantize the tensor before exporting")
            elif arr.dtype.kind not in "biuf" or arr.min() < info.min or arr.max() > info.max:
                fail = (f"holds values in [{arr.min()}, {arr.max()}], outside the {t.dtype} range "
                        f"[{info.min}, {info.max}]", "re-quantize the tensor (clip to its dtype's range)")
        if fail:
            raise ModelFormatError(fail[0], path=self.where, where=where, fix=fail[1])

    # -- flatbuffer pieces ----------------------------------------------------------------------
    def _vec(self, values, dtype: str) -> int:
        return self.b.CreateNumpyVector(np.ascontiguousarray(values, dtype=dtype).ravel())

    def _table(self, fields: list[tuple]) -> int:
        """One table from (slot, kind, value, default) tuples; kind 'off' is an offset to a child."""
        b = self.b
        b.StartObject(max(f[0] for f in fields) + 1 if fields else 0)
        for slot, kind, value, default in fields:
            if kind == "off":
                if value:
                    b.PrependUOffsetTRelativeSlot(slot, value, 0)
            else:
                getattr(b, f"Prepend{kind}Slot")(slot, value, default)
        return b.EndObject()

    def _table_vector(self, offsets: list[int]) -> int:
        self.b.StartVector(4, len(offsets), 4)
        for off in reversed(offsets):
            self.b.PrependUOffsetTRelative(off)
        return self.b.EndVector()

    def _data(self, payload: bytes) -> int:
        b = self.b
        b.StartVector(1, len(payload), 16)  # schema: force_align 16
        b.head -= len(payload)
        b.Bytes[b.head:b.head + len(payload)] = payload
        return b.EndVector()

    # -- model ----------------------------------------------------------------------------------
    def _weight_users(self) -> dict[str, list[str]]:
        """Tensor -> the operators that take it as their weight (input 1); a tensor used any other way maps
        to no operator, so that it is stored plainly."""
        users: dict[str, list[str]] = {}
        other: set[str] = set()
        for n in self.g.nodes:
            for k, t in enumerate(n.inputs):
                if t and k == 1:
                    users.setdefault(t, []).append(n.op)
                elif t:
                    other.add(t)
        return {t: ([] if t in other else ops_) for t, ops_ in users.items()}

    def _payload(self, t: Tensor, users: dict, luts: list) -> bytes:
        """A constant's buffer bytes: plain, or as its encoding says TFLM reads it (``graph.encoding``):
        INT4 nibbles, or lookup-table indices whose tables ``luts`` collects."""
        from tinyopt.graph import encoding as enc

        form, bits = enc.tflite_form(t, users.get(t.name, []))
        if form == "int4":
            self.int4.add(t.name)
            return enc.pack_int4(t.data)
        if form == "lut":
            tables, idx = enc.lut_tables(np.asarray(t.data), enc.table_axis(t))
            luts.append((self.index[t.name], tables.astype(np.int8).tobytes(), bits))
            return enc.pack_bits(idx, bits)
        return np.ascontiguousarray(t.data, dtype=NUMPY_DTYPE[t.dtype]).tobytes()

    def build(self) -> bytes:
        b = self.b
        # Buffers: 0 is the empty sentinel; constants get 1, 2, ... in tensor order; then the value tables
        # of lookup-table tensors and TFLM's COMPRESSION_METADATA, when a weight is stored compressed.
        buffer_of: dict[str, int] = {}
        buffers = [self._table([])]
        users, luts = self._weight_users(), []
        self.int4: set[str] = set()
        for t in self.tensors:
            if t.data is not None:
                raw = self._payload(t, users, luts)
                buffer_of[t.name] = len(buffers)
                buffers.append(self._table([(Slot.BUFFER_DATA, "off", self._data(raw), 0)]))
        metadata = 0
        if luts:
            from tinyopt.graph.encoding import METADATA_NAME, lut_metadata

            entries = []
            for tensor, table, bits in luts:
                entries.append((tensor, len(buffers), bits))
                buffers.append(self._table([(Slot.BUFFER_DATA, "off", self._data(table), 0)]))
            buffers.append(self._table([(Slot.BUFFER_DATA, "off", self._data(lut_metadata(entries)), 0)]))
            name = b.CreateString(METADATA_NAME)
            metadata = self._table_vector([self._table([(Slot.METADATA_NAME, "off", name, 0),
                                                        (Slot.METADATA_BUFFER, "Uint32", len(buffers) - 1,
                                                         0)])])

        variables = getattr(self.g, "variables", [])
        init_buffers = []
        for v in variables:  # the values CALL_ONCE's init subgraph assigns
            init_buffers.append(len(buffers))
            raw = np.ascontiguousarray(v.init, dtype=NUMPY_DTYPE[self.g.tensors[v.state].dtype]).tobytes()
            buffers.append(self._table([(Slot.BUFFER_DATA, "off", self._data(raw), 0)]))
        buffers_vec = self._table_vector(buffers)

        states = {v.state for v in variables}  # written as READ_VARIABLE outputs, not as variable tensors
        tensors = [self._tensor(t, buffer_of.get(t.name, 0), t.name in states) for t in self.tensors]
        handles = [len(tensors) + k for k in range(len(variables))]
        tensors += [self._resource_tensor(f"{v.name}/handle") for v in variables]
        operators = [self._operator(n) for n in self.g.nodes]
        if variables:  # CALL_ONCE, a handle and a read per variable first; the assignments last
            operators = [self._resource_op("CALL_ONCE", [], []),
                         *[self._resource_op("VAR_HANDLE", [], [h], v.name)
                           for v, h in zip(variables, handles)],
                         *[self._resource_op("READ_VARIABLE", [h], [self.index[v.state]])
                           for v, h in zip(variables, handles)],
                         *operators,
                         *[self._resource_op("ASSIGN_VARIABLE", [h, self.index[v.update]], [])
                           for v, h in zip(variables, handles)]]
        inputs = self._vec([self.index[t] for t in self.g.inputs], "<i4")
        outputs = self._vec([self.index[t] for t in self.g.outputs], "<i4")
        sg_name = b.CreateString("main")
        subgraph = self._table([
            (Slot.SUBGRAPH_TENSORS, "off", self._table_vector(tensors), 0),
            (Slot.SUBGRAPH_INPUTS, "off", inputs, 0), (Slot.SUBGRAPH_OUTPUTS, "off", outputs, 0),
            (Slot.SUBGRAPH_OPERATORS, "off", self._table_vector(operators), 0),
            (Slot.SUBGRAPH_NAME, "off", sg_name, 0)])
        subgraphs = [subgraph] + ([self._init_subgraph(variables, init_buffers)] if variables else [])
        opcodes = []
        for name in self.op_names:
            if name in RESOURCE_OPS:  # no record: they only move state (see graph._tflite_variables)
                code = BUILTIN_NAMES.index(name)
                opcodes.append(self._table([
                    (Slot.OPCODE_DEPRECATED_BUILTIN, "Int8", min(code, PLACEHOLDER_FOR_GREATER_OP_CODES), 0),
                    (Slot.OPCODE_VERSION, "Int32", 1, 1), (Slot.OPCODE_BUILTIN, "Int32", code, 0)]))
                continue
            code = ops.get(name).builtin
            version = max(ops.get(name).version(self.g, n) for n in self.g.nodes if n.op == name)
            opcodes.append(self._table([
                (Slot.OPCODE_DEPRECATED_BUILTIN, "Int8", min(code, PLACEHOLDER_FOR_GREATER_OP_CODES), 0),
                (Slot.OPCODE_VERSION, "Int32", version, 1), (Slot.OPCODE_BUILTIN, "Int32", code, 0)]))
        signature = self._signature()
        description = b.CreateString("tinyopt")
        model = self._table([
            (Slot.MODEL_VERSION, "Uint32", SCHEMA_VERSION, 0),
            (Slot.MODEL_OPERATOR_CODES, "off", self._table_vector(opcodes), 0),
            (Slot.MODEL_SUBGRAPHS, "off", self._table_vector(subgraphs), 0),
            (Slot.MODEL_DESCRIPTION, "off", description, 0),
            (Slot.MODEL_BUFFERS, "off", buffers_vec, 0),
            (Slot.MODEL_METADATA, "off", metadata, 0),
            (Slot.MODEL_SIGNATURE_DEFS, "off", self._table_vector([signature]), 0)])
        b.Finish(model, file_identifier=FILE_IDENTIFIER)
        return bytes(b.Output())

    def _resource_tensor(self, name: str) -> int:
        return self._table([(Slot.TENSOR_TYPE, "Int8", RESOURCE_TYPE, 0),
                            (Slot.TENSOR_NAME, "off", self.b.CreateString(name), 0)])

    def _resource_op(self, name: str, inputs: list[int], outputs: list[int], var: str | None = None) -> int:
        """CALL_ONCE (of subgraph 1), VAR_HANDLE (of variable ``var``), READ_VARIABLE or ASSIGN_VARIABLE."""
        options, kind = 0, 0
        if name == "CALL_ONCE":
            options, kind = self._table([(0, "Int32", 1, 0)]), CALL_ONCE_OPTIONS
        elif name == "VAR_HANDLE":
            options, kind = self._table([(1, "off", self.b.CreateString(var or ""), 0)]), VAR_HANDLE_OPTIONS
        return self._table([
            (Slot.OP_OPCODE_INDEX, "Uint32", self.op_names.index(name), 0),
            (Slot.OP_INPUTS, "off", self._vec(inputs, "<i4"), 0),
            (Slot.OP_OUTPUTS, "off", self._vec(outputs, "<i4"), 0), (Slot.OP_OPTIONS_TYPE, "Uint8", kind, 0),
            (Slot.OP_OPTIONS, "off", options, 0)])

    def _init_subgraph(self, variables: list, init_buffers: list[int]) -> int:
        """What CALL_ONCE runs on the first invoke: each variable's handle assigned its initial value."""
        tensors, operators = [], []
        for k, (v, buf) in enumerate(zip(variables, init_buffers)):
            st = self.g.tensors[v.state]
            tensors += [self._resource_tensor(f"{v.name}/init_handle"),
                        self._tensor(Tensor(f"{v.name}/init", st.shape, st.dtype, quant=st.quant), buf, True)]
            operators += [self._resource_op("VAR_HANDLE", [], [2 * k], v.name),
                          self._resource_op("ASSIGN_VARIABLE", [2 * k, 2 * k + 1], [])]
        return self._table([
            (Slot.SUBGRAPH_TENSORS, "off", self._table_vector(tensors), 0),
            (Slot.SUBGRAPH_INPUTS, "off", self._vec([], "<i4"), 0),
            (Slot.SUBGRAPH_OUTPUTS, "off", self._vec([], "<i4"), 0),
            (Slot.SUBGRAPH_OPERATORS, "off", self._table_vector(operators), 0),
            (Slot.SUBGRAPH_NAME, "off", self.b.CreateString("init"), 0)])

    def _tensor(self, t: Tensor, buffer: int, plain: bool = False) -> int:
        """One tensor table; ``plain``: never written as a TFLite variable tensor (a resource variable's
        value read by READ_VARIABLE, or assigned by the init subgraph)."""
        b = self.b
        name = b.CreateString(t.name)
        shape = self._vec(list(t.shape), "<i4")
        quant = 0
        if t.quant is not None:
            q = t.quant
            scale = self._vec(q.scale, "<f4")
            zero = self._vec(q.zero_point, "<i8")
            quant = self._table([(Slot.QUANT_SCALE, "off", scale, 0), (Slot.QUANT_ZERO_POINT, "off", zero, 0),
                                 (Slot.QUANT_DIMENSION, "Int32", int(q.axis or 0), 0)])
        ttype = INT4_TYPE if t.name in self.int4 else DTYPE_TO_TYPE[t.dtype]
        return self._table([
            (Slot.TENSOR_SHAPE, "off", shape, 0), (Slot.TENSOR_TYPE, "Int8", ttype, 0),
            (Slot.TENSOR_BUFFER, "Uint32", buffer, 0), (Slot.TENSOR_NAME, "off", name, 0),
            (Slot.TENSOR_QUANTIZATION, "off", quant, 0),
            (Slot.TENSOR_IS_VARIABLE, "Bool", t.variable and not plain, False)])

    def _operator(self, n: Node) -> int:
        inputs = self._vec([self.index[t] if t else -1 for t in n.inputs], "<i4")
        outputs = self._vec([self.index[t] for t in n.outputs], "<i4")
        options = self._options(n)
        return self._table([
            (Slot.OP_OPCODE_INDEX, "Uint32", self.op_names.index(n.op), 0),
            (Slot.OP_INPUTS, "off", inputs, 0), (Slot.OP_OUTPUTS, "off", outputs, 0),
            (Slot.OP_OPTIONS_TYPE, "Uint8", ops.get(n.op).options.type if options else 0, 0),
            (Slot.OP_OPTIONS, "off", options, 0)])

    def _options(self, n: Node) -> int:
        """The builtin options table of a node (0 when the op has none), from its record."""
        return ops.get(n.op).write_tflite(self, self.g, n)

    # -- what records write through
    def table(self, fields: list[tuple]) -> int:
        return self._table(fields)

    def vector(self, values, dtype: str) -> int:
        return self._vec(values, dtype)

    def fields(self, fields, attrs: dict) -> int:
        """An options table from declared fields (``ops._record.Field``) and a node's attributes."""
        kinds = {"i8": "Int8", "i32": "Int32", "f32": "Float32", "bool": "Bool", "padding": "Int8",
                 "activation": "Int8"}
        rows = []
        for f in fields:
            value = attrs.get(f.attr, f.default)
            if f.kind == "padding":
                value = PADDING_CODE[value]
            elif f.kind == "activation":
                value = ACTIVATION_CODE[value]
            values = [int(v) for v in value] if len(f.slots) == 2 else [value]
            for slot, v in zip(f.slots, values):
                if f.kind == "f32":
                    v = float(v)
                elif f.kind == "bool":
                    v = bool(v)
                else:
                    v = int(v)
                rows.append((slot, kinds[f.kind], v, f.stored_default))
        return self._table(sorted(rows, key=lambda r: r[0]))

    def _signature(self) -> int:
        b = self.b

        def tensor_maps(names):
            maps = []
            for name in names:
                s = b.CreateString(name)
                maps.append(self._table([(Slot.TENSORMAP_NAME, "off", s, 0),
                                         (Slot.TENSORMAP_TENSOR_INDEX, "Uint32", self.index[name], 0)]))
            return self._table_vector(maps)

        inputs = tensor_maps(self.g.inputs)
        outputs = tensor_maps(self.g.outputs)
        key = b.CreateString("serving_default")
        return self._table([(Slot.SIGNATURE_INPUTS, "off", inputs, 0),
                            (Slot.SIGNATURE_OUTPUTS, "off", outputs, 0), (Slot.SIGNATURE_KEY, "off", key, 0),
                            (Slot.SIGNATURE_SUBGRAPH_INDEX, "Uint32", 0, 0)])
