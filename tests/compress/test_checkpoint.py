"""Checkpoint and .npz loading: the safe paths and each refusal."""

import numpy as np
import pytest
import torch
from torch import nn

from tinyopt.compress.checkpoint import load_checkpoint, load_npz, save_state_dict
from tinyopt.errors import DataError, ModelFormatError


def test_round_trip_and_wrapped_state_dict(tmp_path):
    torch.manual_seed(0)
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    save_state_dict(tmp_path / "a.pt", a.state_dict())
    load_checkpoint(tmp_path / "a.pt", b)
    assert torch.equal(a.weight, b.weight)
    torch.save({"state_dict": a.state_dict(), "epoch": torch.tensor(3)}, tmp_path / "w.pt")
    load_checkpoint(tmp_path / "w.pt", nn.Linear(3, 2))


def test_shape_mismatch_names_the_key(tmp_path):
    torch.save(nn.Linear(4, 2).state_dict(), tmp_path / "x.pt")
    with pytest.raises(ModelFormatError, match=r"x.pt: weight: .*shape \(2, 4\), the model expects \(2, 3\)"):
        load_checkpoint(tmp_path / "x.pt", nn.Linear(3, 2))


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "t.pt").write_bytes(b"hello")
    with pytest.raises(ModelFormatError, match="not a PyTorch checkpoint"):
        load_checkpoint(tmp_path / "t.pt", nn.Linear(3, 2))
    with pytest.raises(ModelFormatError, match="not found"):
        load_checkpoint(tmp_path / "none.pt", nn.Linear(3, 2))


def test_npz_checks(tmp_path):
    x = np.zeros((4, 28, 28), np.uint8)
    x[0, 0, 0] = 255
    y = np.arange(4)
    np.savez(tmp_path / "ok.npz", x_train=x, y_train=y, x_val=x, y_val=y)
    xt, yt, xv, yv = load_npz(tmp_path / "ok.npz", (1, 28, 28))
    assert xt.shape == (4, 1, 28, 28) and float(xt.max()) == 1.0 and yt.dtype == torch.int64
    np.savez(tmp_path / "miss.npz", x_train=x, y_train=y)
    with pytest.raises(DataError, match="missing array 'x_val'"):
        load_npz(tmp_path / "miss.npz")
    np.savez(tmp_path / "shape.npz", x_train=x, y_train=y, x_val=x, y_val=y)
    with pytest.raises(DataError, match="model takes"):
        load_npz(tmp_path / "shape.npz", (3, 32, 32))
    np.savez(tmp_path / "lab.npz", x_train=x, y_train=y.astype(np.float32), x_val=x, y_val=y)
    with pytest.raises(DataError, match="integer class indices"):
        load_npz(tmp_path / "lab.npz")
    np.savez(tmp_path / "obj.npz", x_train=np.array([{"a": 1}], dtype=object), y_train=y, x_val=x, y_val=y)
    with pytest.raises(DataError, match="not a readable .npz"):
        load_npz(tmp_path / "obj.npz")


def test_structured_pruned_checkpoint_reloads_into_a_fresh_zoo_model(tmp_path):
    from tinyopt.compress.prune import prune_structured
    from tinyopt.zoo import build

    for name in ("digits_cnn", "dscnn", "resnet8"):
        torch.manual_seed(0)
        m = build(name).eval()
        x = torch.randn(2, *m.input_shape)
        p = prune_structured(m, x[:1], 0.5).eval()
        save_state_dict(tmp_path / "p.pt", p.state_dict())
        with pytest.raises(ModelFormatError, match="does not match the architecture"):
            load_checkpoint(tmp_path / "p.pt", build(name))
        fresh = load_checkpoint(tmp_path / "p.pt", build(name), resize=True).eval()
        assert torch.allclose(fresh(x), p(x), atol=1e-6), name
