"""Look inside a ``.pt`` checkpoint before torch unpickles anything.

``torch.load(weights_only=True)`` is the second line of defence (and has been bypassed before); the first
is ours: the pickle inside a ``torch.save`` archive is read opcode by opcode, without executing it, and
every class it names must be one a plain ``state_dict`` needs. This needs no torch import, so a hostile
file is refused in milliseconds.
"""

from __future__ import annotations

import io
import os
import pickletools
import zipfile
from pathlib import Path

from tinyopt.errors import ModelFormatError

_STORAGES = ("Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool",
             "ComplexFloat", "ComplexDouble")
ALLOWED_GLOBALS = frozenset({
    "collections OrderedDict",
    "torch._utils _rebuild_tensor_v2",
    "torch._utils _rebuild_parameter",
    "torch._utils _rebuild_parameter_with_state",
    "torch._utils _rebuild_tensor",
    "torch float32", "torch float16", "torch bfloat16", "torch float64", "torch int64", "torch int32",
    "torch int16", "torch int8", "torch uint8", "torch bool",
    "torch UntypedStorage",
    *(f"torch {name}Storage" for name in _STORAGES),
})
MAX_OPS = 5_000_000
_HINT = "save with torch.save(model.state_dict(), path); tinyopt never unpickles objects from user files"


def scan_pickle(data: bytes | io.BytesIO, path: str | os.PathLike) -> None:
    """Raise ``ModelFormatError`` unless ``data`` is a well-formed pickle naming only allowed classes
    (a stream is read up to the pickle's STOP, so consecutive pickles can be scanned one by one)."""
    n = 0
    stream = data if isinstance(data, io.BytesIO) else io.BytesIO(data)
    try:
        for op, arg, pos in pickletools.genops(stream):
            n += 1
            if n > MAX_OPS:
                raise ModelFormatError(f"the pickle has more than {MAX_OPS:,} opcodes", path=path, fix=_HINT)
            if op.name in ("GLOBAL", "INST"):
                if str(arg) not in ALLOWED_GLOBALS:
                    raise ModelFormatError(f"refused: the file contains pickled Python objects (it references "
                                           f"'{arg}' at byte {pos}; the file was not loaded)", path=path,
                                           fix=_HINT)
            elif op.name == "STACK_GLOBAL":
                raise ModelFormatError("refused: the file contains pickled Python objects (a class "
                                       f"reference built at byte {pos}; the file was not loaded)", path=path, fix=_HINT)
    except ModelFormatError:
        raise
    except Exception as e:  # pickletools raises ValueError and friends on malformed streams
        raise ModelFormatError(f"not a PyTorch checkpoint: invalid pickle stream ({type(e).__name__}: {str(e)[:80]})", path=path,
                               fix="give a file written by torch.save(model.state_dict(), path)") from None


def prescan_checkpoint(path: str | os.PathLike) -> None:
    """Check a checkpoint's container and pickle before any unpickling (see the module docstring)."""
    p = Path(path)
    if not p.is_file():
        raise ModelFormatError("checkpoint not found", path=path, fix="check the path")
    with open(p, "rb") as f:
        head = f.read(4)
    if head[:1] == b"\x80" and p.stat().st_size <= 64 << 20:  # a raw or legacy-format pickle: say what is in it
        stream = io.BytesIO(p.read_bytes())
        for _ in range(5):  # legacy files are a run of pickles (magic, protocol, sys info, object, keys)
            try:
                scan_pickle(stream, path)
            except ModelFormatError as e:
                if "pickled Python objects" in e.message:
                    raise
                break
    if head != b"PK\x03\x04":
        raise ModelFormatError("not a PyTorch checkpoint: no torch.save zip archive (empty, truncated, legacy "
                               "format or foreign bytes)",
                               path=path, fix="save with torch.save(model.state_dict(), path) (PyTorch ≥ 1.6)")
    try:
        with zipfile.ZipFile(p) as z:
            names = z.namelist()
            if any(n.endswith("constants.pkl") or "/code/" in n for n in names):
                raise ModelFormatError("refused: this is a TorchScript archive (code, not weights)", path=path,
                                       fix="load it in your own trusted code and save model.state_dict()")
            pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
            if len(pkl) != 1:
                raise ModelFormatError(f"the archive has {len(pkl)} data.pkl records, not one", path=path,
                                       fix="save with torch.save(model.state_dict(), path)")
            info = z.getinfo(pkl[0])
            if info.file_size > 64 << 20:
                raise ModelFormatError(f"data.pkl is {info.file_size:,} bytes; a state_dict's index is small",
                                       path=path, fix="save with torch.save(model.state_dict(), path)")
            data = z.read(pkl[0])
    except ModelFormatError:
        raise
    except Exception as e:  # zipfile raises BadZipFile, zlib errors, EOFError, ...
        raise ModelFormatError(f"not a PyTorch checkpoint: corrupt zip archive ({type(e).__name__}: {str(e)[:80]})", path=path,
                               fix="save the checkpoint again") from None
    scan_pickle(data, path)
