"""The torch-free pre-scan of .pt files: real state_dicts pass and are read as torch reads them (torch is
the oracle); anything naming other classes, any other shape than names -> tensors, missing or mis-sized
storage records and (for validate) NaN/inf are refused before torch (or pickle) executes a single opcode."""

import io
import os
import pickle
import zipfile

import pytest
import torch

from tinyopt.compress.pickle_scan import prescan_checkpoint, scan_pickle
from tinyopt.errors import ModelFormatError


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_a_real_state_dict_passes(tmp_path):
    torch.save(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2)).state_dict(),
               tmp_path / "ok.pt")
    prescan_checkpoint(tmp_path / "ok.pt")


def test_a_payload_inside_a_torch_archive_is_refused_unexecuted(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(1), "x": Payload(str(marker))}, path)  # torch.save pickles it as is
    with pytest.raises(ModelFormatError, match=r"pickled Python objects .*'posix mkdir'"):
        prescan_checkpoint(path)
    assert not marker.exists()


def test_stack_global_and_raw_pickles_are_refused(tmp_path):
    with pytest.raises(ModelFormatError, match="class reference built"):
        scan_pickle(pickle.dumps(Payload("x"), protocol=4), "p.pkl")
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(Payload("x"), protocol=2))
    with pytest.raises(ModelFormatError, match="pickled Python objects"):
        prescan_checkpoint(raw)


def test_torchscript_and_broken_archives(tmp_path):
    ts = tmp_path / "ts.pt"
    with zipfile.ZipFile(ts, "w") as z:
        z.writestr("m/constants.pkl", b"")
        z.writestr("m/data.pkl", b"")
    with pytest.raises(ModelFormatError, match="TorchScript"):
        prescan_checkpoint(ts)
    two = tmp_path / "two.pt"
    with zipfile.ZipFile(two, "w") as z:
        z.writestr("a/data.pkl", b"")
        z.writestr("b/data.pkl", b"")
    with pytest.raises(ModelFormatError, match="2 data.pkl records"):
        prescan_checkpoint(two)
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(3)}, buf)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ModelFormatError, match="not a PyTorch checkpoint"):
        prescan_checkpoint(cut)


# -- the structural walk: what a state_dict must look like, decided from the opcodes alone ---------------
import collections  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402

import tinyopt._pickle_scan as scan_mod  # noqa: E402
from tinyopt.compress.checkpoint import read_state_dict  # noqa: E402
from tinyopt.errors import DataError  # noqa: E402


def _save(tmp_path, obj, name="c.pt", **kw):
    path = tmp_path / name
    torch.save(obj, path, **kw)
    return path


def _rezip(src, dst, edit):
    """Copy a torch.save archive record by record; ``edit(name, data)`` returns new bytes, or None to drop."""
    with zipfile.ZipFile(src) as z:
        items = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    with zipfile.ZipFile(dst, "w") as z:
        for name, data in items:
            new = edit(name, data)
            if new is not None:
                z.writestr(name, new)
    return dst


def _archive(tmp_path, pkl: bytes, records=None, name="h.pt"):
    """A torch.save-shaped archive around a hand-written data.pkl."""
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/byteorder", "little")
        for key, data in (records or {}).items():
            z.writestr(f"archive/data/{key}", data)
        z.writestr("archive/version", "3\n")
    return path


class _Store:  # stands for a storage: the pickler below writes it as torch.save's persistent reference
    def __init__(self, key, numel, cls=torch.FloatStorage):
        self.key, self.numel, self.cls = key, numel, cls


class _Layout:  # pickles exactly like a tensor in torch.save, with any layout we ask for
    def __init__(self, store, offset, size, stride, requires_grad=False):
        self.args = (store, offset, size, stride, requires_grad, collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


class _TorchLikePickler(pickle.Pickler):
    def persistent_id(self, obj):
        return ("storage", obj.cls, obj.key, "cpu", obj.numel) if isinstance(obj, _Store) else None


def _pkl(obj) -> bytes:
    buf = io.BytesIO()
    _TorchLikePickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def _torch_loads(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def _sequential():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.ReLU(),
                               torch.nn.Flatten(), torch.nn.Linear(8, 3))


def _mixed_dtypes():
    return {f"t_{dt}".replace("torch.", ""): torch.arange(6).reshape(2, 3).to(dt)
            for dt in (torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32,
                       torch.int16, torch.int8, torch.uint8, torch.bool, torch.complex64)}


def _views_and_ties():
    torch.manual_seed(1)
    base, lin = torch.randn(4, 5), torch.nn.Linear(2, 2)
    return {"t": base.t(), "rows": base[1:3], "cols": base[:, ::2], "tied_a": lin.weight.detach(),
            "tied_b": lin.weight.detach(), "scalar": torch.tensor(3.5), "empty": torch.zeros(0, 3)}


def _wrapped_with_optimizer():
    m = _sequential()
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    m(torch.ones(1, 1, 4, 4)).sum().backward()
    opt.step()
    return {"state_dict": m.state_dict(), "epoch": 3, "optimizer": opt.state_dict(), "note": None}


STORAGE_DTYPE = {"Float": torch.float32, "Double": torch.float64, "Half": torch.float16,
                 "BFloat16": torch.bfloat16, "Long": torch.int64, "Int": torch.int32, "Short": torch.int16,
                 # torch's storage names
                 "Char": torch.int8, "Byte": torch.uint8, "Bool": torch.bool, "ComplexFloat": torch.complex64}

REAL = {
    "module state_dict (OrderedDict, _metadata, BatchNorm num_batches_tracked)":
        lambda: _sequential().state_dict(),
    "explicit OrderedDict": lambda: collections.OrderedDict([("a", torch.ones(2, 3)),
                                                             ("b", torch.arange(4))]),
    "dict of Parameters": lambda: {"w": torch.nn.Parameter(torch.ones(3)),
                                   "frozen": torch.nn.Parameter(torch.zeros(1), requires_grad=False)},
    "every plain dtype": _mixed_dtypes,
    "views, slices and tied tensors": _views_and_ties,
    "{'state_dict': ..., 'optimizer': ...} wrapper": _wrapped_with_optimizer,
}


@pytest.mark.parametrize("case", list(REAL))
def test_real_state_dicts_pass_and_the_scan_reads_them_as_torch_does(tmp_path, case):
    obj = REAL[case]()
    path = _save(tmp_path, obj)
    index = prescan_checkpoint(path, finite=True)
    loaded = _torch_loads(path)  # the oracle: torch's own reading of the file
    if "state_dict" in loaded:
        loaded = loaded["state_dict"]
    assert list(index) == list(loaded)
    for k, (kind, shape) in index.items():
        assert STORAGE_DTYPE[kind] == loaded[k].dtype, k
        assert shape == tuple(loaded[k].shape), k
    ours = read_state_dict(path)  # loads exactly as torch does (the scan only adds refusals)
    assert list(ours) == list(loaded)
    for k in loaded:
        assert ours[k].dtype == loaded[k].dtype and torch.equal(ours[k], loaded[k]), k


def test_a_module_state_dict_still_loads_into_its_model(tmp_path):
    from tinyopt.compress.checkpoint import load_checkpoint

    src = _sequential()
    path = _save(tmp_path, src.state_dict(), pickle_protocol=3)  # protocol 3 reads the same as 2
    dst = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.ReLU(),
                              torch.nn.Flatten(), torch.nn.Linear(8, 3))
    load_checkpoint(path, dst)
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v), k


WRONG_SHAPE = [  # (object torch.save writes, the phrase the refusal must contain, where it points)
    ([torch.zeros(2)], "holds a list, not a state_dict", None),
    ((torch.zeros(2),), "holds a tuple, not a state_dict", None),
    (7, "holds an int, not a state_dict", None),
    (None, "holds a NoneType, not a state_dict", None),
    ({}, "holds an empty dict, not a state_dict", None),
    (collections.OrderedDict(), "holds an empty OrderedDict, not a state_dict", None),
    ({"w": torch.zeros(2), "step": 3}, "entry 'step' is an int, not a tensor", "key 'step'"),
    ({"w": torch.zeros(2), "lr": 0.1}, "entry 'lr' is a float, not a tensor", "key 'lr'"),
    ({"w": torch.zeros(2), "name": "x"}, "entry 'name' is a str, not a tensor", "key 'name'"),
    ({"w": torch.zeros(2), "d": torch.float32}, "entry 'd' is a torch.dtype, not a tensor", "key 'd'"),
    ({"w": [torch.zeros(2)]}, "entry 'w' is a list, not a tensor", "key 'w'"),
    ({"layer1": {"w": torch.zeros(2)}}, "entry 'layer1' is a dict (a nested mapping), not a tensor",
     "key 'layer1'"),
    ({"w": torch.zeros(2), 3: torch.zeros(1)}, "entry 1 has the int key 3, not a tensor name", "entry 1"),
    ({"state_dict": {}, "epoch": 1}, "holds an empty dict, not a state_dict", None),
    ({"state_dict": 5}, "entry 'state_dict' is an int, not a tensor", "key 'state_dict'"),
]


@pytest.mark.parametrize("obj,phrase,where", WRONG_SHAPE, ids=[w[1] for w in WRONG_SHAPE])
def test_valid_pickles_of_the_wrong_shape_are_refused_by_the_scan(tmp_path, obj, phrase, where):
    path = _save(tmp_path, obj)
    _torch_loads(path)  # torch would read each of these: the refusal is about shape, not safety
    with pytest.raises(ModelFormatError) as e:
        prescan_checkpoint(path)
    assert phrase in e.value.message and e.value.where == where
    assert e.value.format().startswith(str(path)) and " Fix: " in e.value.format()
    with pytest.raises(ModelFormatError, match=phrase.replace("(", r"\(").replace(")", r"\)")):
        read_state_dict(path)  # the loader refuses the same way (the scan runs first)


def test_storage_records_must_exist_with_their_exact_size(tmp_path):
    good = _save(tmp_path, {"w": torch.arange(4.0)}, "good.pt")
    missing = _rezip(good, tmp_path / "missing.pt", lambda n, b: None if n.endswith("data/0") else b)
    short = _rezip(good, tmp_path / "short.pt", lambda n, b: b[:8] if n.endswith("data/0") else b)
    # torch names the folder after the file
    for path, phrase in ((missing, "storage record 'good/data/0' is missing"),
                         # 4 float32 = 16 bytes
                         (short, "holds 8 bytes, the pickle says 4 elements of 4 bytes")):
        with pytest.raises(RuntimeError):  # torch refuses these too, once imported
            _torch_loads(path)
        with pytest.raises(ModelFormatError, match=phrase) as e:
            prescan_checkpoint(path)
        assert e.value.where == "tensor 'w'"


def test_a_tensor_reaching_past_its_storage_is_refused(tmp_path):
    four = np.arange(4, dtype="<f4").tobytes()
    # size 5 with stride 1 from offset 0 reads elements 0..4; the storage holds 0..3
    past = _archive(tmp_path, _pkl({"w": _Layout(_Store("0", 4), 0, (5,), (1,))}), {"0": four}, "past.pt")
    with pytest.raises(RuntimeError, match="not resizable"):  # torch too, once imported
        _torch_loads(past)
    with pytest.raises(ModelFormatError, match=r"reaches element 4 of a storage of 4") as e:
        prescan_checkpoint(past)
    assert e.value.where == "tensor 'w'"
    # offset 2, size (2, 2), stride (0, 1): last element 2 + 0 + 1 = 3, inside
    inside = _archive(tmp_path, _pkl({"w": _Layout(_Store("0", 4), 2, (2, 2), (0, 1))}), {"0": four}, "in.pt")
    assert prescan_checkpoint(inside) == {"w": ("Float", (2, 2))}
    assert _torch_loads(inside)["w"].tolist() == [[2.0, 3.0], [2.0, 3.0]]
    neg = _archive(tmp_path, _pkl({"w": _Layout(_Store("0", 4), 0, (2,), (-1,))}), {"0": four}, "neg.pt")
    with pytest.raises(ModelFormatError, match="malformed layout"):
        prescan_checkpoint(neg)


def test_a_storage_key_read_twice_keeps_its_first_size(tmp_path):
    four = np.arange(4, dtype="<f4").tobytes()  # 16 bytes: 4 float32
    # torch reads key '0' once, at its first reference; later references share it whatever numel they say
    first_full = {"a": _Layout(_Store("0", 4), 0, (4,), (1,)), "b": _Layout(_Store("0", 2), 2, (2,), (1,))}
    path = _archive(tmp_path, _pkl(first_full), {"0": four}, "shared.pt")
    assert _torch_loads(path)["b"].tolist() == [2.0, 3.0]
    assert prescan_checkpoint(path) == {"a": ("Float", (4,)), "b": ("Float", (2,))}
    first_short = {"b": _Layout(_Store("0", 2), 0, (2,), (1,)), "a": _Layout(_Store("0", 4), 0, (4,), (1,))}
    path = _archive(tmp_path, _pkl(first_short), {"0": four}, "short_first.pt")
    with pytest.raises(RuntimeError, match="record size"):
        _torch_loads(path)
    with pytest.raises(ModelFormatError, match="holds 16 bytes, the pickle says 2 elements of 4 bytes"):
        prescan_checkpoint(path)


def _patch_record(path, record_suffix, at, new: bytes):
    """Overwrite bytes of a stored record in place, leaving its CRC-32 stale (as a damaged download would)."""
    with zipfile.ZipFile(path) as z:
        info = next(i for i in z.infolist() if i.filename.endswith(record_suffix))
    raw = bytearray(path.read_bytes())
    head = info.header_offset
    name_len = int.from_bytes(raw[head + 26:head + 28], "little")
    extra_len = int.from_bytes(raw[head + 28:head + 30], "little")
    start = head + 30 + name_len + extra_len
    raw[start + at:start + at + len(new)] = new
    path.write_bytes(bytes(raw))


def test_records_are_read_as_torch_reads_them_without_crc(tmp_path):
    flipped = _save(tmp_path, {"w": torch.ones(4)}, "flipped.pt")
    _patch_record(flipped, "data/0", 4, np.array([2.5], "<f4").tobytes())
    assert _torch_loads(flipped)["w"].tolist() == [1.0, 2.5, 1.0, 1.0]  # torch does not check CRCs
    assert prescan_checkpoint(flipped, finite=True) == {"w": ("Float", (4,))}
    nan = _save(tmp_path, {"w": torch.ones(4)}, "nan_in_place.pt")
    _patch_record(nan, "data/0", 8, np.array([np.nan], "<f4").tobytes())
    assert _torch_loads(nan)["w"].isnan().tolist() == [False, False, True, False]
    with pytest.raises(DataError, match="tensor 'w'"):
        prescan_checkpoint(nan, finite=True)


def test_container_faults_torch_refuses_are_refused_first(tmp_path):
    good = _save(tmp_path, {"w": torch.ones(2)}, "good.pt")
    with zipfile.ZipFile(good, "a") as z:
        z.writestr("elsewhere/extra", b"x")
    with pytest.raises(RuntimeError, match="not in a subdirectory"):
        _torch_loads(good)
    with pytest.raises(ModelFormatError,
                       match="record 'elsewhere/extra' is outside the archive folder 'good/'"):
        prescan_checkpoint(good)
    grad = _archive(tmp_path, _pkl({"w": _Layout(_Store("0", 1), 0, (1,), (1,), requires_grad=1)}),
                    {"0": bytes(4)}, "grad.pt")
    with pytest.raises(RuntimeError, match="requires_grad must be a bool"):
        _torch_loads(grad)
    with pytest.raises(ModelFormatError, match="requires_grad an int, not a bool"):
        prescan_checkpoint(grad)


HAND_WRITTEN = [  # data.pkl bytes (protocol 2 opcodes) and the phrase of the refusal
    (b"\x80\x02]}b.", "sets the state of a list"),  # EMPTY_LIST EMPTY_DICT BUILD
    (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n)\x81.",
     "creates a 'torch._utils _rebuild_tensor_v2' object"),
    # bytes 0-1 PROTO, 2 EMPTY_LIST, 3-8 BINUNICODE 'a', 9-10 BININT1, 11 SETITEM
    (b"\x80\x02]X\x01\x00\x00\x00aK\x01s.", "opcode SETITEM at byte 11 applies to a list, not a dict"),
    (b"\x80\x02}(X\x01\x00\x00\x00au.", "has a key without a value"),
    (b"\x80\x02h\x05.", "reads memo slot 5"),
    (b"\x80\x02ctorch\nFloatStorage\n)R.", "calls 'torch FloatStorage'"),
    (b"\x80\x02X\x06\x00\x00\x00moduleQ.", "not a torch.save storage record"),
    (b"\x80\x02R.", "invalid pickle stream"),  # REDUCE on an empty stack
    (b"\x80\x02}]K\x01s.", "invalid pickle stream"),  # a list as a dict key: unhashable
    (b"\x80\x02(K\x01R.", "invalid pickle stream"),  # REDUCE cannot reach below a MARK
]


@pytest.mark.parametrize("pkl,phrase", HAND_WRITTEN, ids=[h[1] for h in HAND_WRITTEN])
def test_hand_written_pickles_are_refused_by_name(tmp_path, pkl, phrase):
    with pytest.raises(ModelFormatError, match=phrase.replace("(", r"\(")):
        prescan_checkpoint(_archive(tmp_path, pkl))


@pytest.mark.filterwarnings("ignore::UserWarning")  # torch warns before refusing protocol 4
def test_a_tensor_from_a_non_storage_and_protocol_4_are_refused(tmp_path):
    bogus = _archive(tmp_path, _pkl({"w": _Layout(1, 0, (1,), (1,))}), name="b.pt")
    with pytest.raises(ModelFormatError, match="rebuilt from an int, not from a storage record"):
        prescan_checkpoint(bogus)
    p4 = _save(tmp_path, {"w": torch.zeros(2)}, "p4.pt", pickle_protocol=4)
    with pytest.raises(pickle.UnpicklingError):
        _torch_loads(p4)  # torch's weights-only loader reads protocol 2 opcodes only
    with pytest.raises(ModelFormatError, match=r"opcode FRAME at byte 2 \(pickle protocol 4\)"):
        prescan_checkpoint(p4)


# -- NaN / inf from the storage bytes, with numpy ------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_values_are_found_in_every_float_dtype(tmp_path, dtype, value):
    bad = torch.ones(5, dtype=dtype)
    bad[3] = value
    assert not bool(torch.isfinite(bad).all())  # the oracle agrees the tensor is not finite
    path = _save(tmp_path, {"ok": torch.ones(3, dtype=dtype), "bad": bad})
    prescan_checkpoint(path)  # structure alone is fine
    with pytest.raises(DataError, match="NaN or inf") as e:
        prescan_checkpoint(path, finite=True)
    assert e.value.where == "tensor 'bad'"


def test_only_the_elements_a_view_reads_are_checked(tmp_path):
    base = torch.ones(10)
    base[0] = float("nan")  # torch.save keeps the whole storage, NaN included
    grid = torch.ones(3, 4)
    grid[:, 1] = float("inf")
    cases = {"tail": (base[1:], True), "head": (base[:5], False), "even_cols": (grid[:, ::2], True),
             "odd_cols": (grid[:, 1::2], False), "transposed": (grid.t(), False)}
    for name, (view, finite) in cases.items():
        assert bool(torch.isfinite(view).all()) == finite  # the oracle
        path = _save(tmp_path, {name: view}, f"{name}.pt")
        if finite:
            prescan_checkpoint(path, finite=True)
        else:
            with pytest.raises(DataError, match=f"tensor '{name}'"):
                prescan_checkpoint(path, finite=True)


def test_non_finite_in_a_later_chunk_and_in_ignored_entries(tmp_path, monkeypatch):
    monkeypatch.setattr(scan_mod, "_CHUNK", 3)  # 10 elements read as 3 + 3 + 3 + 1
    last = torch.ones(10)
    last[9] = float("nan")
    with pytest.raises(DataError, match="tensor 'w'"):
        prescan_checkpoint(_save(tmp_path, {"w": last}, "last.pt"), finite=True)
    prescan_checkpoint(_save(tmp_path, {"w": torch.ones(10)}, "fine.pt"), finite=True)
    # tinyopt reads only the wrapped state_dict; a diverged EMA copy beside it is not its concern
    wrapped = _save(tmp_path, {"state_dict": {"w": torch.ones(2)}, "ema": torch.tensor([float("nan")])},
                    "w.pt")
    assert prescan_checkpoint(wrapped, finite=True) == {"w": ("Float", (2,))}


def _to_big_endian(src, dst):
    def edit(name, data):
        if name.endswith("byteorder"):
            return b"big"
        return np.frombuffer(data, "<f4").astype(">f4").tobytes() if name.endswith("data/0") else data

    return _rezip(src, dst, edit)


def test_big_endian_archives_are_read_in_their_byte_order(tmp_path):
    values = torch.tensor([1.0, float("nan"), 2.0])
    big = _to_big_endian(_save(tmp_path, {"w": values}, "le.pt"), tmp_path / "be.pt")
    back = _torch_loads(big)["w"]  # torch swaps the bytes back
    assert back.isnan().tolist() == [False, True, False] and back[0] == 1.0 and back[2] == 2.0
    with pytest.raises(DataError, match="tensor 'w'"):  # read as little-endian, 7f c0 00 00 would be finite
        prescan_checkpoint(big, finite=True)
    # and the reverse: a finite value whose big-endian bytes 00 00 c0 7f would be NaN if read little-endian
    tiny = torch.from_numpy(np.frombuffer(b"\x00\x00\xc0\x7f", ">f4").astype("<f4"))
    assert bool(torch.isfinite(tiny).all())
    tiny_be = _to_big_endian(_save(tmp_path, {"w": tiny}, "tiny.pt"), tmp_path / "tiny_be.pt")
    assert torch.equal(_torch_loads(tiny_be)["w"], tiny)
    prescan_checkpoint(tiny_be, finite=True)


# -- the refusal path of `tinyopt validate` never imports torch ---------------------------------------------
_PROBE = ("import sys\nfrom tinyopt.cli import main\ncode = main(['validate', sys.argv[1]])\n"
          "print(code, 'torch' in sys.modules)")


def _validate_in_a_fresh_process(path) -> tuple[str, str]:
    r = subprocess.run([sys.executable, "-c", _PROBE, str(path)], capture_output=True, text=True, timeout=300)
    return r.stdout.strip().splitlines()[-1], r.stderr


def test_validate_refuses_bad_checkpoints_without_importing_torch(tmp_path):
    nan = torch.ones(2)
    nan[1] = float("nan")
    good = _save(tmp_path, {"w": torch.ones(2)}, "good.pt")
    files = {
        "list.pt": (_save(tmp_path, [torch.zeros(2)], "list.pt"), "not a state_dict"),
        "nested.pt": (_save(tmp_path, {"a": {"w": torch.zeros(2)}}, "nested.pt"), "entry 'a' is a dict"),
        "nan.pt": (_save(tmp_path, {"w": nan}, "nan.pt"), "tensor 'w': contains NaN or inf"),
        "hole.pt": (_rezip(good, tmp_path / "hole.pt", lambda n, b: None if n.endswith("data/0") else b),
                    "missing"),
    }
    for name, (path, phrase) in files.items():
        last, err = _validate_in_a_fresh_process(path)
        assert last == "2 False", (name, last, err)
        assert err.startswith(str(path)) and phrase in err, (name, err)
    last, err = _validate_in_a_fresh_process(good)  # the probe does see torch when a file reaches it
    assert last == "0 True", err
