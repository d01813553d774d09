"""MSB-first bit packing shared by the Huffman coder, the sparse index coder and the container.

Bits are held as a string of '0'/'1' while building: joining short code strings is the fastest exact
way in pure Python, and the final ``int(..., 2).to_bytes`` packs them in one call.
"""

from __future__ import annotations

from tinyopt.errors import ModelFormatError


class BitWriter:
    def __init__(self):
        self._parts: list[str] = []
        self.n_bits = 0

    def write(self, value: int, width: int) -> None:
        """Append ``value`` as an unsigned ``width``-bit field (width 0 writes nothing)."""
        if width == 0:
            return
        if value < 0 or value >> width:
            raise ValueError(f"{value} does not fit in {width} bits")
        self._parts.append(format(value, f"0{width}b"))
        self.n_bits += width

    def write_codes(self, codes: list[str]) -> None:
        """Append already-formatted code strings (the hot path of Huffman encoding)."""
        s = "".join(codes)
        self._parts.append(s)
        self.n_bits += len(s)

    def to_bytes(self) -> bytes:
        """The bits, zero-padded at the end to a whole byte."""
        s = "".join(self._parts)
        s += "0" * (-len(s) % 8)
        return int(s, 2).to_bytes(len(s) // 8, "big") if s else b""


class BitReader:
    """Reads fields back; every read is bounds-checked so a corrupt stream raises, never loops."""

    def __init__(self, data: bytes, *, where: str = "", path: str | None = None):
        self.bits = format(int.from_bytes(data, "big"), f"0{8 * len(data)}b") if data else ""
        self.pos = 0
        self.where = where
        self.path = path

    @property
    def remaining(self) -> int:
        return len(self.bits) - self.pos

    def fail(self, what: str):
        raise ModelFormatError(what, path=self.path, where=self.where or None,
                               fix="the file is corrupt or truncated; write it again")

    def read(self, width: int) -> int:
        if width == 0:
            return 0
        if width > self.remaining:
            self.fail(f"bit stream ends {width - self.remaining} bits early")
        v = int(self.bits[self.pos:self.pos + width], 2)
        self.pos += width
        return v
