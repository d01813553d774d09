"""Labelled image folders: ``root/<class>/*.png`` (one sub-folder per class, as torchvision's ImageFolder).

Images are decoded with Pillow, converted to grey (``L``) when every file is grey and to RGB otherwise,
and scaled to [0, 1] as float32 (N, H, W, C): channels last, as every tinyopt loader returns them.
All images must have one size unless ``size`` resizes them (bilinear): silently mixing sizes would
mean cropping or padding choices the user did not make.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tinyopt.data.dataset import Dataset
from tinyopt.errors import DataError

SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".pgm", ".ppm", ".pbm", ".tif", ".tiff", ".webp")
MAX_FILES = 200_000
MAX_PIXELS = 4096 * 4096  # per image: a decompression bomb is refused before it is decoded


def image_files(root: Path) -> dict[str, list[Path]]:
    """Class name -> its image files (sorted), for every sub-folder of ``root`` holding images."""
    out = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(f for f in sub.rglob("*") if f.suffix.lower() in SUFFIXES and f.is_file())
        if files:
            out[sub.name] = files
    return out


def load_image_folder(folder: str | os.PathLike, size: tuple[int, int] | None = None) -> Dataset:
    """Every image under ``folder/<class>/`` as (N, H, W, C) float32 in [0, 1]; classes sorted by name."""
    root = Path(folder)
    if not root.is_dir():
        raise DataError("is not a folder", path=folder,
                        fix="point at a folder with one sub-folder of images per class")
    from tinyopt._extras import require

    require("PIL", "reading images")  # Pillow, in the [data] extra
    from PIL import Image

    by_class = image_files(root)
    if not by_class:
        raise DataError("no images in class sub-folders", path=folder,
                        fix=f"put images ({', '.join(SUFFIXES[:4])}, ...) in one sub-folder per class: "
                            f"{root}/cat/1.png")
    total = sum(len(v) for v in by_class.values())
    if total > MAX_FILES:
        raise DataError(f"{total} images, more than {MAX_FILES}", path=folder, fix="use a smaller folder")
    files = [f for fs in by_class.values() for f in fs]
    labels = [label for label, fs in enumerate(by_class.values()) for _ in fs]
    images = [_open(Image, f) for f in files]
    grey = all(im.mode in ("1", "L", "I", "I;16", "F") for im in images)
    arrays = []
    for im, f in zip(images, files):
        if size is not None:
            im = im.resize((int(size[1]), int(size[0])), Image.BILINEAR)
        elif im.size != images[0].size:
            w, h = images[0].size
            raise DataError(f"{im.size[0]}x{im.size[1]} pixels, the first image is {w}x{h}", path=f,
                            fix="resize the images to one size (or give a size to load_image_folder)")
        a = np.asarray(im.convert("L" if grey else "RGB"), dtype=np.float32) / 255.0
        arrays.append(a[..., None] if grey else a)
    return Dataset(np.stack(arrays), np.asarray(labels, np.int64), list(by_class), str(folder))


def _open(pil, f: Path):
    """One decoded image (``pil``: Pillow's Image module); a bomb or foreign bytes is a DataError naming
    the file."""
    try:
        with pil.open(f) as im:
            if im.width * im.height > MAX_PIXELS:
                raise DataError(f"{im.width}x{im.height} pixels, more than {MAX_PIXELS}", path=f,
                                fix="resize the image")
            im.load()
            return im.copy()
    except DataError:
        raise
    except Exception as e:  # Pillow raises many types on foreign or truncated bytes
        raise DataError(f"not a readable image ({type(e).__name__}: {str(e)[:80]})", path=f,
                        fix="remove or re-save the file") from None


__all__ = ["SUFFIXES", "image_files", "load_image_folder"]
