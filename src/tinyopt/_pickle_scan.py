"""Look inside a ``.pt`` checkpoint before torch unpickles anything (and without importing torch).

``torch.load(weights_only=True)`` is the second line of defence (and has been bypassed before); the first
is ours. The pickle inside a ``torch.save`` archive is walked opcode by opcode and never executed. A
symbolic stack stands in for the objects. Every class it names must be one a plain ``state_dict`` needs,
and the walk keeps track of the structure it builds. The top level must be a non-empty dict or
OrderedDict (or ``{"state_dict": <that>, ...}``) mapping strings to tensors rebuilt from storages that
the archive holds, each tensor within its storage. Anything else is refused here, naming the key. Only a
structurally valid ``state_dict`` reaches torch. With ``finite=True`` the float tensors' bytes are also
read with numpy (dtype and layout from the pickle) and NaN/inf is refused, still without torch.

This module imports nothing but the standard library and numpy, on purpose: torch takes seconds to import,
and ``tinyopt validate`` must refuse a bad file long before that (``tinyopt.compress`` is light to import,
its names resolve lazily, but its modules import torch).
"""

from __future__ import annotations

import io
import os
import pickletools
import zipfile
from pathlib import Path

from tinyopt.errors import DataError, ModelFormatError

# storage class -> (numpy dtype code, bytes per element, is a real float type)
_STORAGE_DTYPES = {
    "Float": ("f4", 4, True), "Double": ("f8", 8, True), "Half": ("f2", 2, True),
    "BFloat16": ("u2", 2, True),  # numpy has no bfloat16: its bits are checked as uint16
    "Long": ("i8", 8, False), "Int": ("i4", 4, False), "Short": ("i2", 2, False), "Char": ("i1", 1, False),
    "Byte": ("u1", 1, False), "Bool": ("u1", 1, False),
    "ComplexFloat": ("c8", 8, False), "ComplexDouble": ("c16", 16, False),  # not "floating point" in torch
}
_STORAGE_CLASSES = {f"torch {n}Storage": n for n in _STORAGE_DTYPES} | {"torch UntypedStorage": "Byte"}
_REBUILD = {  # rebuild function -> accepted argument counts
    "torch._utils _rebuild_tensor_v2": (6, 7),
    "torch._utils _rebuild_tensor": (4,),
    "torch._utils _rebuild_parameter": (3,),
    "torch._utils _rebuild_parameter_with_state": (4,),
}
_DTYPE_GLOBALS = frozenset(f"torch {n}" for n in ("float32", "float16", "bfloat16", "float64", "int64",
                                                  "int32",
                                                   "int16", "int8", "uint8", "bool"))
ALLOWED_GLOBALS = frozenset({"collections OrderedDict", *_REBUILD, *_DTYPE_GLOBALS, *_STORAGE_CLASSES})
# The opcodes torch's weights-only unpickler implements; torch.save (protocol 2) writes a subset of these.
_CONSTANTS = frozenset({"BININT", "BININT1", "BININT2", "LONG1", "BINFLOAT", "BINUNICODE", "SHORT_BINSTRING"})
MAX_OPS = 5_000_000
_CHUNK = 1 << 22  # elements read at a time when checking a contiguous tensor for NaN/inf
_HINT = "save with torch.save(model.state_dict(), path); tinyopt never unpickles objects from user files"
_RESAVE = "give a file written by torch.save(model.state_dict(), path)"


# -- symbolic objects: what the pickle would build, without building it --------------------------------
class _Dict:
    __slots__ = ("items", "ordered")
    __hash__ = None  # unhashable, like the dict it stands for

    def __init__(self, ordered: bool):
        self.items: dict = {}
        self.ordered = ordered


class _List:
    __slots__ = ("items",)
    __hash__ = None

    def __init__(self):
        self.items: list = []


class _Set:
    __slots__ = ()
    __hash__ = None


class _Global:
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name


class _Storage:
    __slots__ = ("kind", "key", "numel", "pos")

    def __init__(self, kind: str, key: str, numel: int, pos: int):
        self.kind, self.key, self.numel, self.pos = kind, key, numel, pos


class _Tensor:
    __slots__ = ("storage", "offset", "size", "stride", "parameter", "pos")

    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple, pos: int, parameter=False):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride
        self.pos, self.parameter = pos, parameter

    @property
    def last(self) -> int:
        """Index of the last storage element the tensor reads (-1 when it has no elements)."""
        if any(s == 0 for s in self.size):
            return -1
        return self.offset + sum((s - 1) * st for s, st in zip(self.size, self.stride))


def _a(kind: str) -> str:
    return f"an {kind}" if kind[:1].lower() in "aeiou" else f"a {kind}"


def _kind(v) -> str:
    """The Python type name the unpickled object would have (for messages)."""
    if isinstance(v, _Dict):
        return "OrderedDict" if v.ordered else "dict"
    if isinstance(v, _Tensor):
        return "Parameter" if v.parameter else "Tensor"
    if isinstance(v, _Global):  # a class, a dtype or a rebuild function named by GLOBAL
        return "torch.dtype" if v.name in _DTYPE_GLOBALS else "function" if v.name in _REBUILD else "type"
    return {_List: "list", _Set: "set", _Storage: "TypedStorage"}.get(type(v), type(v).__name__)


class _Refused(Exception):
    """A structural fault found during the walk (turned into a ModelFormatError with the path)."""


# -- the walk --------------------------------------------------------------------------------------------
def _counts(t) -> bool:
    """A tuple of non-negative ints (a tensor's size or stride)."""
    return isinstance(t, tuple) and all(type(x) is int and x >= 0 for x in t)


def _call(func, args, pos: int):
    """REDUCE/NEWOBJ: what calling ``func(*args)`` would give, for the few callables a state_dict uses."""
    if not isinstance(func, _Global) or not isinstance(args, tuple):
        raise _Refused(f"a call at byte {pos} does not name an allowed function")
    name = func.name
    if name == "collections OrderedDict":
        if args:
            raise _Refused(f"OrderedDict is built from arguments at byte {pos} (torch.save writes none)")
        return _Dict(ordered=True)
    if name not in _REBUILD:
        raise _Refused(f"the pickle calls '{name}' at byte {pos}, which a state_dict never does")
    if len(args) not in _REBUILD[name]:
        raise _Refused(f"the pickle calls '{name}' with {len(args)} arguments at byte {pos}")
    if "parameter" in name:
        if not isinstance(args[0], _Tensor):
            raise _Refused(f"a parameter at byte {pos} wraps {_a(_kind(args[0]))}, not a tensor")
        if type(args[1]) is not bool:
            raise _Refused(f"a parameter at byte {pos} has requires_grad {_a(_kind(args[1]))}, not a bool")
        t = args[0]
        return _Tensor(t.storage, t.offset, t.size, t.stride, pos, parameter=True)
    storage, offset, size, stride = args[:4]
    if not isinstance(storage, _Storage):
        raise _Refused(f"a tensor at byte {pos} is rebuilt from {_a(_kind(storage))}, not "
                       "from a storage record")
    if (type(offset) is not int or offset < 0 or not _counts(size) or not _counts(stride)
            or len(size) != len(stride)):
        raise _Refused(f"a tensor at byte {pos} has a malformed layout (offset {offset!r}, size {size!r}, "
                       f"stride {stride!r})")
    if len(args) >= 6 and type(args[4]) is not bool:  # torch sets tensor.requires_grad from it
        raise _Refused(f"a tensor at byte {pos} has requires_grad {_a(_kind(args[4]))}, not a bool")
    meta = args[6] if len(args) == 7 else None
    if not (meta is None or isinstance(meta, _Dict)
            or (type(meta) in (bool, int, float, str, tuple) and not meta)):
        raise _Refused(f"a tensor at byte {pos} has metadata {_a(_kind(meta))}, not a dict")
    return _Tensor(storage, offset, size, stride, pos)


def _persistent(pid, pos: int) -> _Storage:
    """BINPERSID: torch.save's ``('storage', <storage class>, key, location, numel)`` reference (the
    location is not checked: tinyopt loads with ``map_location="cpu"``, which ignores it)."""
    ok = (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _Global)
          and pid[1].name in _STORAGE_CLASSES and isinstance(pid[2], str) and type(pid[4]) is int
          and pid[4] >= 0)
    if not ok:
        raise _Refused(f"a persistent reference at byte {pos} is not a torch.save storage record")
    return _Storage(_STORAGE_CLASSES[pid[1].name], pid[2], pid[4], pos)


_NEW = {"EMPTY_DICT": lambda: _Dict(ordered=False), "EMPTY_LIST": _List, "EMPTY_SET": _Set,
        "EMPTY_TUPLE": tuple, "NONE": lambda: None, "NEWTRUE": lambda: True, "NEWFALSE": lambda: False}


def walk_pickle(  # noqa: C901 - one branch per pickle opcode, as the weights-only unpickler has
        data: bytes, path: str | os.PathLike) -> tuple[object, list[_Storage], list[_Tensor]]:
    """Run ``data`` (a ``torch.save`` data.pkl) on a symbolic stack, the way torch's weights-only
    unpickler would, and return the top-level object with every storage and tensor it references.
    Nothing is imported or called."""
    stack: list = []
    metastack: list[list] = []  # MARK starts a new list, as in pickle's own unpickler
    memo: dict = {}
    storages: list[_Storage] = []
    loaded: dict[str, _Storage] = {}
    tensors: list[_Tensor] = []
    pos = proto = 0
    try:
        for n, (op, arg, pos) in enumerate(pickletools.genops(io.BytesIO(data))):
            if n >= MAX_OPS:
                raise ModelFormatError(f"the pickle has more than {MAX_OPS:,} opcodes", path=path, fix=_HINT)
            name = op.name
            if name in _CONSTANTS:
                stack.append(arg)
            elif name in _NEW:
                stack.append(_NEW[name]())
            elif name in ("BINPUT", "LONG_BINPUT"):
                memo[arg] = stack[-1]
            elif name in ("BINGET", "LONG_BINGET"):
                if arg not in memo:
                    raise _Refused(f"the pickle reads memo slot {arg} at byte {pos} before writing it")
                stack.append(memo[arg])
            elif name == "MARK":
                metastack.append(stack)
                stack = []
            elif name in ("TUPLE", "SETITEMS", "APPENDS"):
                items, stack = stack, metastack.pop()
                if name == "TUPLE":
                    stack.append(tuple(items))
                elif name == "SETITEMS":
                    _setitems(stack[-1], items, name, pos)
                elif not isinstance(stack[-1], _List):
                    raise _Refused(f"opcode {name} at byte {pos} applies to "
                                   f"{_a(_kind(stack[-1]))}, not a list")
                else:
                    stack[-1].items.extend(items)
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                k = int(name[-1])
                if len(stack) < k:
                    raise IndexError("stack underflow")
                stack[-k:] = [tuple(stack[-k:])]
            elif name == "SETITEM":
                v = stack.pop()
                k = stack.pop()
                _setitems(stack[-1], [k, v], name, pos)
            elif name == "APPEND":
                item = stack.pop()
                if not isinstance(stack[-1], _List):
                    raise _Refused(f"opcode APPEND at byte {pos} applies to "
                                   f"{_a(_kind(stack[-1]))}, not a list")
                stack[-1].items.append(item)
            elif name == "GLOBAL":
                if str(arg) not in ALLOWED_GLOBALS:
                    raise ModelFormatError("refused: the file contains pickled Python objects (it "
                                           f"references '{arg}' at byte {pos}; the file was not loaded)",
                                           path=path, fix=_HINT)
                stack.append(_Global(str(arg)))
            elif name == "REDUCE":
                args = stack.pop()
                stack[-1] = _call(stack[-1], args, pos)
                if isinstance(stack[-1], _Tensor):
                    tensors.append(stack[-1])
            elif name == "NEWOBJ":
                args = stack.pop()
                cls = stack.pop()
                if not (isinstance(cls, _Global) and cls.name == "collections OrderedDict"):
                    what = cls.name if isinstance(cls, _Global) else _kind(cls)
                    raise _Refused(f"the pickle creates a '{what}' object at byte {pos}")
                stack.append(_call(cls, args, pos))
            elif name == "BUILD":
                state = stack.pop()
                if not (isinstance(stack[-1], _Dict) and stack[-1].ordered and isinstance(state, _Dict)):
                    raise _Refused(f"the pickle sets the state of {_a(_kind(stack[-1]))} at byte {pos} (only "
                                   "an OrderedDict's metadata may be set)")
            elif name == "BINPERSID":
                s = _persistent(stack.pop(), pos)
                # torch reads a key once and hands later references the same storage (its numel and
                # dtype, whatever theirs say), except empty storages, which it does not cache
                s = loaded.setdefault(s.key, s) if s.numel else s
                if s.pos == pos:
                    storages.append(s)
                stack.append(s)
            elif name == "PROTO":
                proto = arg
            elif name == "STOP":
                return stack.pop(), storages, tensors
            elif name == "STACK_GLOBAL":
                raise ModelFormatError("refused: the file contains pickled Python objects (a class reference "
                                       f"built at byte {pos}; the file was not loaded)", path=path, fix=_HINT)
            elif name in ("INST", "OBJ") or name.startswith("EXT"):
                what = f"'{arg}'" if name == "INST" else "a class"
                raise ModelFormatError(f"refused: the file contains pickled Python objects ({name} of {what} "
                                       f"at byte {pos}; the file was not loaded)", path=path, fix=_HINT)
            else:
                raise ModelFormatError(f"not a state_dict checkpoint: the pickle uses opcode {name} at byte "
                                       f"{pos} (pickle protocol {proto}), which torch's weights-only "
                                       "loader does not read",
                                       path=path,
                                       fix="save with torch.save(model.state_dict(), path) and its default "
                                       "pickle_protocol (2)")
    except ModelFormatError:
        raise
    except _Refused as e:
        raise ModelFormatError(f"not a state_dict checkpoint: {e}", path=path, fix=_RESAVE) from None
    except (IndexError, KeyError, TypeError) as e:  # stack underflow, unhashable key, ...
        raise ModelFormatError(f"not a PyTorch checkpoint: invalid pickle stream near byte {pos} "
                               f"({type(e).__name__}: {str(e)[:60]})", path=path, fix=_RESAVE) from None
    except Exception as e:  # pickletools raises ValueError and friends on malformed streams
        raise ModelFormatError("not a PyTorch checkpoint: invalid pickle stream "
                               f"({type(e).__name__}: {str(e)[:80]})", path=path, fix=_RESAVE) from None
    raise ModelFormatError("not a PyTorch checkpoint: the pickle has no STOP", path=path, fix=_RESAVE)


def _setitems(target, items: list, name: str, pos: int) -> None:
    if not isinstance(target, _Dict) or len(items) % 2:
        what = (f"applies to {_a(_kind(target))}, not a dict" if len(items) % 2 == 0
                else "has a key without a value")
        raise _Refused(f"opcode {name} at byte {pos} {what}")
    for i in range(0, len(items), 2):
        target.items[items[i]] = items[i + 1]


def scan_pickle(data: bytes | io.BytesIO, path: str | os.PathLike) -> None:
    """Raise ``ModelFormatError`` unless ``data`` is a well-formed pickle naming only allowed classes
    (a stream is read up to the pickle's STOP, so consecutive pickles can be scanned one by one).
    Only the classes are checked, not the structure: this is for legacy and raw pickles."""
    n = 0
    stream = data if isinstance(data, io.BytesIO) else io.BytesIO(data)
    try:
        for op, arg, pos in pickletools.genops(stream):
            n += 1
            if n > MAX_OPS:
                raise ModelFormatError(f"the pickle has more than {MAX_OPS:,} opcodes", path=path, fix=_HINT)
            if op.name in ("GLOBAL", "INST"):
                if str(arg) not in ALLOWED_GLOBALS:
                    raise ModelFormatError("refused: the file contains pickled Python objects (it "
                                           f"references '{arg}' at byte {pos}; the file was not loaded)",
                                           path=path, fix=_HINT)
            elif op.name == "STACK_GLOBAL":
                raise ModelFormatError("refused: the file contains pickled Python objects (a class "
                                       f"reference built at byte {pos}; the file was not loaded)", path=path,
                                       fix=_HINT)
    except ModelFormatError:
        raise
    except Exception as e:  # pickletools raises ValueError and friends on malformed streams
        raise ModelFormatError("not a PyTorch checkpoint: invalid pickle stream "
                               f"({type(e).__name__}: {str(e)[:80]})", path=path,
                               fix=_RESAVE) from None


# -- the structure a state_dict must have -----------------------------------------------------------------
def _state_dict_entries(top, path) -> dict[str, _Tensor]:
    """The tensors the loader would use (the same rules as ``read_state_dict``), or a refusal naming the
    first entry that is not a string -> tensor pair."""
    fix = "save only model.state_dict() (a flat mapping of names to tensors)"
    if isinstance(top, _Dict) and isinstance(top.items.get("state_dict"), _Dict):
        top = top.items["state_dict"]
    if not isinstance(top, _Dict):
        raise ModelFormatError(f"holds {_a(_kind(top))}, not a state_dict (a mapping of names to tensors)",
                               path=path, fix="save with torch.save(model.state_dict(), path)")
    if not top.items:
        raise ModelFormatError(f"holds an empty {_kind(top)}, not a state_dict (a mapping "
                               "of names to tensors)",
                               path=path,
                               fix="save with torch.save(model.state_dict(), path) after building the model")
    for i, (k, v) in enumerate(top.items.items()):
        if type(k) is not str:
            shown = f" {k!r}"[:40] if isinstance(k, (int, float, bytes, type(None))) else ""
            raise ModelFormatError(f"entry {i} has the {_kind(k)} key{shown}, not a tensor name (a string)",
                                   path=path, where=f"entry {i}", fix=fix)
        if not isinstance(v, _Tensor):
            inner = " (a nested mapping)" if isinstance(v, _Dict) else ""
            raise ModelFormatError(f"entry {k[:60]!r} is {_a(_kind(v))}{inner}, not a tensor", path=path,
                                   where=f"key {k[:60]!r}", fix=fix)
    return top.items


class _Records:
    """The records of a ``torch.save`` zip read the way torch's reader reads them: located through each
    member's local header and, for stored members, taken as raw bytes without a CRC check (torch checks
    none, so a CRC mismatch alone must not make us refuse what torch loads)."""

    def __init__(self, z: zipfile.ZipFile, f):
        self.z, self.f = z, f
        self.infos = {i.filename: i for i in z.infolist()}

    def start(self, name: str) -> int:
        """Where the member's bytes begin; refuses a member whose local header is not a zip header."""
        info = self.infos[name]
        self.f.seek(info.header_offset)
        head = self.f.read(30)
        if len(head) < 30 or head[:4] != b"PK\x03\x04":
            raise _Refused(f"record '{name}' has no valid local zip header")
        name_len, extra_len = int.from_bytes(head[26:28], "little"), int.from_bytes(head[28:30], "little")
        return info.header_offset + 30 + name_len + extra_len

    def read(self, name: str, offset: int = 0, size: int | None = None) -> bytes:
        info = self.infos[name]
        size = info.file_size - offset if size is None else size
        if info.compress_type != zipfile.ZIP_STORED:  # torch.save never compresses; zipfile handles the rest
            with self.z.open(name) as m:
                m.seek(offset)
                data = m.read(size)
        else:
            self.f.seek(self.start(name) + offset)
            data = self.f.read(size)
        if len(data) != size:
            raise _Refused(f"record '{name}' ends before its {info.file_size:,} bytes")
        return data


def _check_container(rec: _Records, prefix: str) -> None:
    """What torch's zip reader refuses: records outside the archive's folder, encrypted records, records
    without a local header."""
    for name, info in rec.infos.items():
        if not name.startswith(prefix):
            raise _Refused(f"record '{name[:60]}' is outside the archive folder '{prefix}'")
        if info.flag_bits & 1:
            raise _Refused(f"record '{name[:60]}' is encrypted")
        rec.start(name)


def _check_records(z: zipfile.ZipFile, prefix: str, entries: dict[str, _Tensor], storages: list[_Storage],
                   tensors: list[_Tensor], path) -> None:
    """Every storage record exists with exactly numel x itemsize bytes and every tensor stays inside its
    storage: torch refuses both too, but only after it has been imported and has read the records."""
    sizes = {i.filename: i.file_size for i in z.infolist()}
    fix = "save the checkpoint again (the archive is incomplete or was edited)"
    named = {id(t): k for k, t in entries.items()}
    unnamed = [t for t in tensors if id(t) not in named]
    for t in [*entries.values(), *unnamed]:  # the state_dict's first, so the message can name the key
        s = t.storage
        where = f"tensor '{named[id(t)][:60]}'" if id(t) in named else f"tensor at pickle byte {t.pos}"
        rec = f"{prefix}data/{s.key}"
        if rec not in sizes:
            raise ModelFormatError(f"its storage record '{rec}' is missing from the archive", path=path,
                                   where=where, fix=fix)
        want = s.numel * _STORAGE_DTYPES[s.kind][1]
        if sizes[rec] != want:
            raise ModelFormatError(f"storage record '{rec}' holds {sizes[rec]:,} bytes, the pickle says "
                                   f"{s.numel:,} elements of {_STORAGE_DTYPES[s.kind][1]} bytes", path=path,
                                   where=where, fix=fix)
        if t.last >= s.numel:
            raise ModelFormatError(f"shape {list(t.size)} (offset {t.offset}, stride {list(t.stride)}) "
                                   f"reaches element {t.last:,} of a storage of {s.numel:,}", path=path,
                                   where=where, fix=fix)
    for s in storages:  # storages no tensor uses are still read by torch
        rec = f"{prefix}data/{s.key}"
        if sizes.get(rec) != s.numel * _STORAGE_DTYPES[s.kind][1]:
            raise ModelFormatError(f"storage record '{rec}' is missing or has the wrong size", path=path,
                                   where=f"pickle byte {s.pos}", fix=fix)


def _nonfinite(records: _Records, rec: str, t: _Tensor, little: bool) -> bool:
    """Whether the elements tensor ``t`` reads from record ``rec`` include NaN or inf, read with numpy
    in bounded chunks when the tensor is contiguous."""
    import numpy as np

    code, isz, _ = _STORAGE_DTYPES[t.storage.kind]
    dt = np.dtype(("<" if little else ">") + code)
    bf16 = t.storage.kind == "BFloat16"

    def bad(a) -> bool:  # bfloat16: exponent bits all ones means inf or NaN
        return bool(((a & 0x7F80) == 0x7F80).any()) if bf16 else not bool(np.isfinite(a).all())

    if t.last < 0:
        return False
    numel = 1
    contiguous = True
    for s, st in zip(reversed(t.size), reversed(t.stride)):
        contiguous &= s == 1 or st == numel
        numel *= s
    if contiguous:
        done = 0
        while done < numel:
            k = min(numel - done, _CHUNK)
            if bad(np.frombuffer(records.read(rec, (t.offset + done) * isz, k * isz), dt)):
                return True
            done += k
        return False
    span = np.frombuffer(records.read(rec, t.offset * isz, (t.last - t.offset + 1) * isz), dt)
    view = np.lib.stride_tricks.as_strided(span, shape=t.size, strides=[st * isz for st in t.stride],
                                           writeable=False)
    return bad(view)


# -- the entry point -------------------------------------------------------------------------------------
def _scan_legacy(p: Path, path) -> None:
    """A raw or legacy-format pickle: say what is in it when it pickles Python objects."""
    stream = io.BytesIO(p.read_bytes())
    for _ in range(5):  # legacy files are a run of pickles (magic, protocol, sys info, object, keys)
        try:
            scan_pickle(stream, path)
        except ModelFormatError as e:
            if "pickled Python objects" in e.message:
                raise
            break


def prescan_checkpoint(path: str | os.PathLike, *,
                       finite: bool = False) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Check a checkpoint's container, pickle and structure before any unpickling (see the module
    docstring). Returns the state_dict's ``{name: (storage dtype, shape)}``; with ``finite`` also refuses
    NaN/inf in its float tensors (``DataError``)."""
    p = Path(path)
    if not p.is_file():
        raise ModelFormatError("checkpoint not found", path=path, fix="check the path")
    with open(p, "rb") as f:
        head = f.read(4)
    if head[:1] == b"\x80" and p.stat().st_size <= 64 << 20:  # a raw or legacy-format pickle
        _scan_legacy(p, path)
    if head != b"PK\x03\x04":
        raise ModelFormatError("not a PyTorch checkpoint: no torch.save zip archive (empty, truncated, "
                               "legacy format or foreign bytes)",
                               path=path,
                               fix="save with torch.save(model.state_dict(), path) (PyTorch ≥ 1.6)")
    try:
        f = open(p, "rb")  # closed with the zip below
        z = zipfile.ZipFile(f)
    except Exception as e:  # zipfile raises BadZipFile, OSError, ...
        f.close()
        raise ModelFormatError("not a PyTorch checkpoint: corrupt zip archive "
                               f"({type(e).__name__}: {str(e)[:80]})",
                               path=path, fix="save the checkpoint again") from None
    with f, z:
        records = _Records(z, f)
        try:
            names = z.namelist()
            if any(n.endswith("constants.pkl") or "/code/" in n for n in names):
                raise ModelFormatError("refused: this is a TorchScript archive (code, not weights)",
                                       path=path,
                                       fix="load it in your own trusted code and save model.state_dict()")
            pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
            if len(pkl) != 1:
                raise ModelFormatError(f"the archive has {len(pkl)} data.pkl records, not one", path=path,
                                       fix="save with torch.save(model.state_dict(), path)")
            info = z.getinfo(pkl[0])
            if info.file_size > 64 << 20:
                raise ModelFormatError(f"data.pkl is {info.file_size:,} bytes; a state_dict's index is small",
                                       path=path, fix="save with torch.save(model.state_dict(), path)")
            prefix = pkl[0][: -len("data.pkl")]
            _check_container(records, prefix)
            data = records.read(pkl[0])
            order = records.read(prefix + "byteorder") if prefix + "byteorder" in names else b"little"
        except ModelFormatError:
            raise
        except _Refused as e:
            raise ModelFormatError(f"not a PyTorch checkpoint: corrupt zip archive ({e})", path=path,
                                   fix="save the checkpoint again") from None
        except Exception as e:  # zipfile raises BadZipFile, zlib errors, EOFError, ...
            raise ModelFormatError(f"not a PyTorch checkpoint: corrupt zip archive ({type(e).__name__}: "
                                   f"{str(e)[:80]})", path=path, fix="save the checkpoint again") from None
        if order not in (b"little", b"big"):
            raise ModelFormatError(f"unknown byte order {order[:20]!r} in '{prefix}byteorder'", path=path,
                                   fix="save the checkpoint again")
        top, storages, tensors = walk_pickle(data, path)
        entries = _state_dict_entries(top, path)
        _check_records(z, prefix, entries, storages, tensors, path)
        if finite:
            _check_finite(records, prefix, entries, order == b"little", path)
    return {k: (t.storage.kind, t.size) for k, t in entries.items()}


def _check_finite(records, prefix: str, entries: dict, little: bool, path) -> None:
    """Refuse NaN/inf in the float tensors' storages (``DataError``), read without unpickling."""
    for k, t in entries.items():
        if not _STORAGE_DTYPES[t.storage.kind][2]:
            continue
        try:
            found = _nonfinite(records, f"{prefix}data/{t.storage.key}", t, little)
        except _Refused as e:
            raise ModelFormatError(f"its storage cannot be read ({e})", path=path, where=f"tensor '{k[:60]}'",
                                   fix="save the checkpoint again") from None
        except Exception as e:  # zipfile and zlib raise many types on a damaged compressed member
            raise ModelFormatError(f"its storage cannot be read ({type(e).__name__}: {str(e)[:60]})",
                                   path=path, where=f"tensor '{k[:60]}'",
                                   fix="save the checkpoint again") from None
        if found:
            raise DataError("contains NaN or inf", path=path, where=f"tensor '{k[:60]}'",
                            fix="use a checkpoint from a training run that did not diverge")


__all__ = ["ALLOWED_GLOBALS", "MAX_OPS", "prescan_checkpoint", "scan_pickle", "walk_pickle"]
