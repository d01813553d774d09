"""A small flatbuffer reader that checks every offset, vtable and vector against the buffer.

Python's ``flatbuffers`` package has no verifier: a corrupt offset surfaces as a raw ``struct.error``,
an ``IndexError`` or a silently clamped slice. Every read here goes through ``_need``, so a bad file
raises ``Corrupt`` (a plain message) that the importer turns into a ``ModelFormatError`` naming the
tensor or operator being read. Nothing is allocated before its size has been checked against the file.
"""

from __future__ import annotations

import struct

import numpy as np

_U8, _I8 = struct.Struct("<B"), struct.Struct("<b")
_U16, _I32, _U32 = struct.Struct("<H"), struct.Struct("<i"), struct.Struct("<I")
_I64, _U64, _F32 = struct.Struct("<q"), struct.Struct("<Q"), struct.Struct("<f")
_SCALARS = {"u8": _U8, "i8": _I8, "bool": _U8, "u16": _U16, "i32": _I32, "u32": _U32, "i64": _I64,
            "u64": _U64, "f32": _F32}


class Corrupt(Exception):
    """A structural fault in the flatbuffer; the caller adds the file and the place."""


class Reader:
    """Bounds-checked access to a flatbuffer held in ``data``."""

    def __init__(self, data: bytes):
        self.data = data
        self.size = len(data)

    def _need(self, pos: int, nbytes: int, what: str) -> None:
        if pos < 0 or nbytes < 0 or pos + nbytes > self.size:
            raise Corrupt(f"{what} (bytes {pos}..{pos + nbytes}) lies outside the {self.size}-byte file")

    def scalar(self, pos: int, kind: str, what: str = "value"):
        fmt = _SCALARS[kind]
        self._need(pos, fmt.size, what)
        value = fmt.unpack_from(self.data, pos)[0]
        return bool(value) if kind == "bool" else value

    def root(self) -> Table:
        self._need(0, 8, "the root offset and file identifier")
        return self.table(self.scalar(0, "u32"), "the root table")

    def table(self, pos: int, what: str) -> Table:
        self._need(pos, 4, what)
        vtable = pos - self.scalar(pos, "i32")
        self._need(vtable, 4, f"the vtable of {what}")
        vt_len = self.scalar(vtable, "u16")
        obj_len = self.scalar(vtable + 2, "u16")
        if vt_len < 4 or vt_len % 2:
            raise Corrupt(f"the vtable of {what} has an invalid length {vt_len}")
        if obj_len < 4:
            raise Corrupt(f"{what} has an invalid size {obj_len}")
        self._need(vtable, vt_len, f"the vtable of {what}")
        self._need(pos, obj_len, what)
        return Table(self, pos, vtable, vt_len, obj_len, what)


class Table:
    """One flatbuffer table; fields are addressed by schema slot, absent fields give the default."""

    def __init__(self, reader: Reader, pos: int, vtable: int, vt_len: int, obj_len: int, what: str):
        self.r, self.pos, self.vtable, self.vt_len, self.obj_len, self.what = (
            reader, pos, vtable, vt_len, obj_len, what)

    def _field(self, slot: int, nbytes: int) -> int:
        """Absolute position of a field, or 0 when it is absent."""
        entry = 4 + 2 * slot
        if entry + 2 > self.vt_len:
            return 0
        rel = self.r.scalar(self.vtable + entry, "u16")
        if rel == 0:
            return 0
        if rel + nbytes > self.obj_len:
            raise Corrupt(f"field {slot} of {self.what} lies outside its table")
        return self.pos + rel

    def has(self, slot: int) -> bool:
        return self._field(slot, 1) != 0

    def scalar(self, slot: int, kind: str, default=0):
        pos = self._field(slot, _SCALARS[kind].size)
        return default if not pos else self.r.scalar(pos, kind, f"field {slot} of {self.what}")

    def _target(self, slot: int, what: str) -> int | None:
        pos = self._field(slot, 4)
        if not pos:
            return None
        return pos + self.r.scalar(pos, "u32", what)

    def table(self, slot: int, what: str) -> Table | None:
        target = self._target(slot, what)
        return None if target is None else self.r.table(target, what)

    def vector(self, slot: int, elem_size: int, what: str) -> tuple[int, int] | None:
        """(start, count) of a vector field after checking it fits in the file, or None if absent."""
        target = self._target(slot, what)
        if target is None:
            return None
        count = self.r.scalar(target, "u32", f"the length of {what}")
        self.r._need(target + 4, count * elem_size, f"{what} of {count} elements")
        return target + 4, count

    def array(self, slot: int, dtype: str, what: str) -> np.ndarray:
        """A scalar vector as a fresh numpy array (empty when absent)."""
        dt = np.dtype(dtype)
        vec = self.vector(slot, dt.itemsize, what)
        if vec is None:
            return np.zeros(0, dt)
        start, count = vec
        return np.frombuffer(self.r.data, dt, count, start).copy()

    def bytes(self, slot: int, what: str) -> memoryview:
        vec = self.vector(slot, 1, what)
        if vec is None:
            return memoryview(b"")
        start, count = vec
        return memoryview(self.r.data)[start:start + count]

    def string(self, slot: int, what: str) -> str:
        return bytes(self.bytes(slot, what)).decode("utf-8", errors="replace")

    def tables(self, slot: int, what: str) -> list[Table]:
        """A vector of tables; each element is bounds-checked when it is read."""
        vec = self.vector(slot, 4, what)
        if vec is None:
            return []
        start, count = vec
        out = []
        for i in range(count):
            at = start + 4 * i
            out.append(self.r.table(at + self.r.scalar(at, "u32"), f"{what}[{i}]"))
        return out

    def count(self, slot: int, what: str) -> int:
        vec = self.vector(slot, 4, what)
        return 0 if vec is None else vec[1]
