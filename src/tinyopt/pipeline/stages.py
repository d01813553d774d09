"""The impulse's stages as functions from config (and upstream arrays) to arrays and numbers.

Each stage is cached by ``pipeline.cache``; this module only computes. Heavy libraries are imported
inside the functions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyopt.data.dataset import Dataset, Splits, split, split_by_group
from tinyopt.errors import ConfigError


def load_data(dcfg: dict, project_file: str | None, seed: int) -> Splits:
    """Load the configured source and split it (random stratified, FSDD's official split, or tail)."""
    from tinyopt.data.doors import load_dataset
    from tinyopt.pipeline.config import resolve_path

    path = resolve_path(dcfg["path"], project_file) if dcfg.get("path") else None
    opts = {k: dcfg[k] for k in ("x_key", "y_key", "sample_rate", "duration", "window", "window_stride",
                                 "columns", "label_column", "image_size") if k in dcfg}
    # one door per source (tinyopt.data.doors); projects read MNIST's t10k files, as they always have
    ds = load_dataset(dcfg["source"], path, mnist_split="t10k", **opts)
    if dcfg.get("limit"):
        ds = ds.subset(np.arange(min(int(dcfg["limit"]), len(ds))))
    return split_dataset(ds, dcfg, seed)


def split_dataset(ds: Dataset, dcfg: dict, seed: int) -> Splits:
    how = dcfg["split"]
    if how == "official":
        return split_by_group(ds, test_groups=range(5), val=float(dcfg["val"]), seed=seed)
    if how == "tail":
        n_test = int(dcfg["test"]) if dcfg["test"] >= 1 else int(round(len(ds) * dcfg["test"]))
        if not 0 < n_test < len(ds):
            raise ConfigError(f"data.test = {dcfg['test']} leaves no training or no test data "
                              f"({len(ds)} examples)", fix="give a count between 1 and the dataset size")
        head = ds.subset(np.arange(len(ds) - n_test))
        rest = split(head, val=float(dcfg["val"]), test=0.0, seed=seed)
        return Splits(rest.train, rest.val, ds.subset(np.arange(len(ds) - n_test, len(ds))))
    return split(ds, val=float(dcfg["val"]), test=float(dcfg["test"]), seed=seed)


def make_block(fcfg: dict, sample_rate: int | None):
    """The feature block object for ``features.block``."""
    block = fcfg["block"]
    if block == "raw":
        from tinyopt.features.raw import Raw

        return Raw()
    if block == "normalized":
        from tinyopt.features.raw import Normalized

        return Normalized()
    from tinyopt.features import spectral

    if sample_rate is None:
        raise ConfigError(f"features.block '{block}' needs audio with a sample rate",
                          fix="use data.source: wav, or features.block: raw")
    kw = dict(sample_rate=sample_rate, frame_length=fcfg["frame_length"], frame_stride=fcfg["frame_stride"],
              fft_length=fcfg["fft_length"], pre_emphasis=fcfg["pre_emphasis"])
    if block == "spectrogram":
        return spectral.Spectrogram(noise_floor_db=fcfg["noise_floor_db"], **kw)
    mel = dict(num_filters=fcfg["num_filters"], low_frequency=fcfg["low_frequency"],
               high_frequency=fcfg["high_frequency"], **kw)
    if block == "mfe":
        return spectral.MFE(noise_floor_db=fcfg["noise_floor_db"], **mel)
    return spectral.MFCC(num_coefficients=fcfg["num_coefficients"], win_size=fcfg["win_size"], **mel)


def features(splits: Splits, fcfg: dict) -> tuple[Splits, object]:
    """Fit the block on the training split, transform all three; features keep a channel axis last."""
    rate = splits.train.meta.get("sample_rate")
    block = make_block(fcfg, rate).fit(splits.train.x)
    out = []
    for _, ds in splits.items():
        f = block.transform(ds.x)
        if f.ndim == 3 and fcfg["block"] in ("spectrogram", "mfe", "mfcc"):
            f = f[..., None]  # (N, frames, coeffs, 1): an image for a 2-D CNN
        out.append(Dataset(f, ds.y, ds.classes, ds.source, ds.group, dict(ds.meta)))
    return Splits(*out), block


def save_splits(folder: Path, splits: Splits) -> None:
    from tinyopt._io import atomic_path

    arrays = {}
    for name, ds in splits.items():
        arrays[f"x_{name}"] = ds.x
        arrays[f"y_{name}"] = ds.y
    with atomic_path(folder / "arrays.npz", suffix=".npz") as tmp:
        np.savez(tmp, **arrays)


def read_splits(folder: Path, classes: list[str], source: str, meta: dict | None = None) -> Splits:
    with np.load(folder / "arrays.npz", allow_pickle=False) as z:
        return Splits(*(Dataset(z[f"x_{k}"], z[f"y_{k}"], list(classes), source, None, dict(meta or {}))
                        for k in ("train", "val", "test")))
