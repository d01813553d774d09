"""``tinyopt validate FILE...``: check downloaded files with the strict loaders before using them.

Any file tinyopt reads is accepted: models (``.tflite``, ``.onnx``, ``.yaml`` specs), projects and
recipes (``.yaml``), checkpoints (``.pt``/``.pth``, tensors only), data (``.wav``, ``.csv``, IDX,
``.npy``, ``.npz``) and compressed-model containers (``TOPZ`` magic). Each good file prints
``<path>: ok (<kind>)``; the first bad one prints its one-line error (starting with the path) on stderr
and the command exits 2. Nothing is written.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from tinyopt.errors import DataError, TinyoptError

_IDX_SUFFIXES = ("-ubyte", ".idx", "-ubyte.gz", ".idx.gz", ".idx1", ".idx3")


def _kind(path: Path) -> str:
    """The loader for a file: by suffix, else by its first bytes."""
    name = path.name.lower()
    suffix = path.suffix.lower()
    if suffix in (".tflite", ".onnx"):
        return "model"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    if suffix in (".pt", ".pth"):
        return "checkpoint"
    if suffix in (".wav", ".csv", ".npy", ".npz"):
        return suffix[1:]
    if suffix in (".topz", ".tpz") or name.endswith(_IDX_SUFFIXES):
        return "container" if suffix in (".topz", ".tpz") else "idx"
    with path.open("rb") as f:
        head = f.read(4)
    if head == b"TOPZ":
        return "container"
    if head[:2] in (b"\x1f\x8b", b"\x00\x00"):
        return "idx"
    raise DataError(f"unknown file type '{suffix or path.name}'", path=path,
                    fix="give a .tflite, .onnx, .yaml, .pt, .wav, .csv, .npy, .npz, IDX or container file")


def _yaml(path: Path) -> str:
    """A YAML file is a spec (``layers``), a recipe (``steps``) or a project (anything else)."""
    from tinyopt._yaml import load_yaml_file

    doc = load_yaml_file(path)
    if "layers" in doc:
        from tinyopt.graph.spec import spec_to_graph

        spec_to_graph(doc, str(path))
        return "architecture spec"
    if "steps" in doc:
        from tinyopt.compress.recipe import Recipe

        Recipe.from_dict(doc, source=str(path))
        return "recipe"
    from tinyopt.pipeline.config import validate

    validate(doc, str(path))
    return "project"


def check_state_dict(path: Path) -> int:
    """A ``.pt`` checkpoint holds only tensors (read with ``weights_only=True``), all finite."""
    from tinyopt._pickle_scan import prescan_checkpoint  # not via tinyopt.compress: that imports torch

    prescan_checkpoint(path, finite=True)  # hostile, wrong-shape and non-finite files refused without torch
    from tinyopt.compress.checkpoint import read_state_dict

    obj = read_state_dict(path)
    for k, v in obj.items():
        if v.is_floating_point() and not bool(v.isfinite().all()):
            raise DataError("contains NaN or inf", path=path, where=f"tensor '{k[:60]}'",
                            fix="use a checkpoint from a training run that did not diverge")
    return len(obj)


def _npz(path: Path) -> str:
    import zipfile

    import numpy as np

    from tinyopt.data.sources import NPZ_KEYS, read_split_npz  # torch-free

    try:
        with np.load(path, allow_pickle=False) as z:
            names = list(z.files)
            for k in names:
                z[k]  # reads and checks each member's header and size
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, KeyError, NotImplementedError) as e:
        first = str(e).splitlines()[0][:100] if str(e) else type(e).__name__
        raise DataError(f"not a readable .npz of plain arrays ({first})", path=path,
                        fix="save with numpy.savez(path, name=array, ...)") from None
    if all(k in names for k in NPZ_KEYS):
        read_split_npz(path)
        return "training data (.npz)"
    return f".npz of {len(names)} arrays"


def validate_file(path: str | os.PathLike) -> str:
    """Load ``path`` with its strict loader; returns what it is, raises ``TinyoptError`` if it is bad."""
    p = Path(path)
    if not p.exists():
        raise DataError("file not found", path=path, fix="check the path")
    if not p.is_file():
        raise DataError("is not a regular file", path=path, fix="give a file, not a folder")
    kind = _kind(p)
    if kind == "model":
        from tinyopt.graph.load import load_model

        g = load_model(p)
        return f"model, {len(g.nodes)} operators"
    if kind == "yaml":
        return _yaml(p)
    if kind == "checkpoint":
        return f"state_dict, {check_state_dict(p)} tensors"
    if kind == "wav":
        from tinyopt.data.wav import read_wav

        x, rate = read_wav(p)
        return f"wav, {len(x)} samples at {rate} Hz"
    if kind == "csv":
        from tinyopt.data.csv import load_csv_windows

        ds = load_csv_windows(p, window=1)
        return f"csv, {len(ds.x)} rows"
    if kind == "idx":
        from tinyopt.data.idx import load_idx

        return f"IDX array {list(load_idx(p).shape)}"
    if kind == "npy":
        from tinyopt._api.arrays import load_npy

        arr = load_npy(str(p))
        return f"array {arr.dtype}{list(arr.shape)}"
    if kind == "npz":
        return _npz(p)
    from tinyopt.compress.container import load_compressed

    return f"compressed model, {len(load_compressed(p))} layers"


def register(app: typer.Typer) -> None:
    @app.command()
    def validate(files: list[str] = typer.Argument(...,
                                                   help="files to check (any format tinyopt reads)")) -> None:
        """Check FILEs with the strict loaders: 'ok' per good file, exit 2 on the first bad one."""
        for f in files:
            try:
                what = validate_file(f)
            except TinyoptError as e:
                if not e.path:  # some validators name only the key; the user needs the file first
                    e.path = str(f)
                elif not e.path.startswith(str(f)) and not str(f).startswith(e.path):
                    e.where = "; ".join(x for x in (e.path, e.where) if x)
                    e.path = str(f)
                print(e.format(), file=sys.stderr)
                raise typer.Exit(2) from None
            typer.echo(f"{f}: ok ({what})")
