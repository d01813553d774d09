"""Data doors: each --data word reaches its loader, folders are told apart by what they hold, loader data
are moved to channels first by a transpose and only unit axes are ever reshaped."""

import gzip
import struct
import wave

import numpy as np
import pytest

from conftest import MNIST, need
from tinyopt.data.doors import fit_samples, load_dataset, open_data, parse_spec, to_model_layout
from tinyopt.errors import DataError


def _idx(path, arr, code):
    head = struct.pack(">BBBB", 0, 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(head + arr.astype(">u1").tobytes())


def _wav(path, samples, rate=8000):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.asarray(samples) * 32767).astype("<i2").tobytes())


def test_digits_split_is_stratified_and_seeded():
    a, b = open_data("digits", seed=3), open_data("digits", seed=3)
    assert a.x_train.shape[1:] == (8, 8, 1) and a.channels_last
    assert len(a.x_train) + len(a.x_val) == 1797 and np.array_equal(a.y_val, b.y_val)
    # val 0.2 of each class, rounded per class: 36 + 36 + 35 + 37 + 36 + 36 + 36 + 36 + 35 + 36 = 359
    assert len(a.x_val) == sum(int(round(n * 0.2)) for n in np.bincount(np.concatenate([a.y_train, a.y_val])))
    m = a.to_model_layout()
    assert m.x_train.shape[1:] == (1, 8, 8) and np.array_equal(m.x_train[:, 0], a.x_train[..., 0])


def test_folders_are_told_apart_by_content(tmp_path):
    (tmp_path / "m").mkdir()
    _idx(tmp_path / "m" / "t10k-images-idx3-ubyte.gz", np.arange(4 * 28 * 28).reshape(4, 28, 28) % 256, 8)
    _idx(tmp_path / "m" / "t10k-labels-idx1-ubyte.gz", np.array([0, 1, 0, 1]), 8)
    (tmp_path / "w" / "yes").mkdir(parents=True)
    _wav(tmp_path / "w" / "yes" / "a.wav", np.zeros(80))
    (tmp_path / "i" / "cat").mkdir(parents=True)
    from PIL import Image

    Image.new("L", (4, 4)).save(tmp_path / "i" / "cat" / "1.png")
    assert parse_spec(str(tmp_path / "m")) == ("mnist", str(tmp_path / "m"))
    assert parse_spec(str(tmp_path / "w")) == ("wav", str(tmp_path / "w"))
    assert parse_spec(str(tmp_path / "i")) == ("images", str(tmp_path / "i"))
    assert parse_spec(f"images:{tmp_path / 'w'}") == ("images", str(tmp_path / "w"))  # said explicitly
    assert parse_spec("digits") == ("digits", None) and parse_spec("x.npz")[0] == "npz"
    ds = load_dataset("mnist", tmp_path / "m")
    assert ds.x.shape == (4, 28, 28, 1) and ds.x[0, 0, 1, 0] == pytest.approx(1 / 255)
    (tmp_path / "e").mkdir()
    with pytest.raises(DataError, match="no MNIST IDX files, .wav files or class sub-folders"):
        parse_spec(str(tmp_path / "e"))
    with pytest.raises(DataError, match="not a data source name"):
        parse_spec(str(tmp_path / "nothing"))


def test_mnist_door_on_the_real_test_set():
    d = open_data(str(need(MNIST)), seed=0)
    assert len(d.x_train) + len(d.x_val) == 10_000 and d.x_train.shape[1:] == (28, 28, 1)


def test_npz_doors(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "split.npz", x_train=rng.random((20, 1, 4, 4)), y_train=np.arange(20) % 2,
             x_val=rng.random((6, 1, 4, 4)), y_val=np.arange(6) % 2)
    d = open_data(str(tmp_path / "split.npz"))
    assert not d.channels_last and d.x_train.shape == (20, 1, 4, 4)  # already the model's layout
    np.savez(tmp_path / "xy.npz", x=rng.random((40, 4, 4, 3)), y=np.arange(40) % 2)
    d = open_data(str(tmp_path / "xy.npz"), seed=0, val=0.25)
    assert d.channels_last and len(d.x_val) == 10 and d.to_model_layout().x_train.shape[1:] == (3, 4, 4)
    np.savez(tmp_path / "odd.npz", a=np.zeros(3))
    with pytest.raises(DataError, match="odd.npz.*arrays \\['a'\\]"):
        open_data(str(tmp_path / "odd.npz"))


def test_project_file_door_applies_its_features(tmp_path):
    (tmp_path / "w").mkdir()
    rng = np.random.default_rng(0)
    for label in ("0", "1"):
        for i in range(6):
            _wav(tmp_path / "w" / f"{label}_s_{i}.wav", rng.normal(0, 0.1, 800))
    (tmp_path / "p.yaml").write_text("data: {source: wav, path: w, val: 0.25, test: 0.0}\n"
                                     "features: {block: mfcc, frame_length: 0.02, frame_stride: 0.02}\n")
    d = open_data(str(tmp_path / "p.yaml"))
    # 800 samples at 8 kHz = 0.1 s: 5 frames of 20 ms, 13 coefficients, a channel axis last
    assert d.x_train.shape[1:] == (5, 13, 1) and len(d.x_train) + len(d.x_val) == 12


def test_fit_samples_only_moves_unit_axes():
    x = np.arange(2 * 64, dtype=np.float32).reshape(2, 1, 8, 8)
    assert fit_samples(x, (1, 8, 8), "s").shape == (2, 1, 8, 8)
    assert fit_samples(x[:, 0], (1, 8, 8), "s").shape == (2, 1, 8, 8)  # a unit channel axis added
    flat = fit_samples(x, (64,), "s")  # one channel: every flatten order is the same
    assert np.array_equal(flat[1], x[1].ravel())
    rgb = np.zeros((2, 3, 4, 4), np.float32)
    with pytest.raises(DataError, match="ambiguous"):
        fit_samples(rgb, (48,), "s")
    with pytest.raises(DataError, match="s: samples have shape \\(3, 4, 4\\).*takes \\(4, 4, 3\\)"):
        fit_samples(rgb, (4, 4, 3), "s")  # a transpose, never a reshape
    hwc = np.arange(2 * 4 * 4 * 3).reshape(2, 4, 4, 3)
    assert np.array_equal(to_model_layout(hwc)[1, 2], hwc[1, ..., 2])
