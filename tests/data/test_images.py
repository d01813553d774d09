"""Image folders: one sub-folder per class, grey or RGB, one size (or resized), bad files named."""

import numpy as np
import pytest

from tinyopt.data.images import load_image_folder
from tinyopt.errors import DataError

Image = pytest.importorskip("PIL.Image", reason="Pillow (the [data] extra) is not installed")


def _save(path, arr, mode):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(arr, np.uint8), mode).save(path)


def test_grey_classes_sorted_and_scaled(tmp_path):
    _save(tmp_path / "b" / "1.png", np.full((3, 5), 255), "L")
    _save(tmp_path / "a" / "1.png", np.zeros((3, 5)), "L")
    _save(tmp_path / "a" / "2.bmp", np.full((3, 5), 51), "L")
    ds = load_image_folder(tmp_path)
    assert ds.classes == ["a", "b"] and ds.x.shape == (3, 3, 5, 1) and list(ds.y) == [0, 0, 1]
    assert ds.x[1, 0, 0, 0] == pytest.approx(51 / 255) and ds.x[2].min() == 1.0  # 255 -> 1.0


def test_rgb_when_any_is_colour_and_resize(tmp_path):
    _save(tmp_path / "x" / "1.png", np.zeros((4, 4)), "L")
    _save(tmp_path / "y" / "1.png", np.dstack([np.full((6, 6), 255), np.zeros((6, 6)), np.zeros((6, 6))]),
          "RGB")
    with pytest.raises(DataError, match="6x6 pixels, the first image is 4x4"):
        load_image_folder(tmp_path)
    ds = load_image_folder(tmp_path, size=(4, 4))
    assert ds.x.shape == (2, 4, 4, 3) and ds.x[1, ..., 0].min() == 1.0 and ds.x[1, ..., 1].max() == 0.0


def test_bad_files_and_empty_folders(tmp_path):
    with pytest.raises(DataError, match="no images in class sub-folders"):
        load_image_folder(tmp_path)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="broken.png: not a readable image"):
        load_image_folder(tmp_path)
