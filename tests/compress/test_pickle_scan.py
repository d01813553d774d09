"""The torch-free pre-scan of .pt files: allowed state_dicts pass, anything naming other classes is
refused before torch (or pickle) executes a single opcode."""

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
    torch.save(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2)).state_dict(), tmp_path / "ok.pt")
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
