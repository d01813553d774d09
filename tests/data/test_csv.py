import numpy as np
import pytest

from tinyopt.data.csv import load_csv_windows
from tinyopt.errors import DataError


def write(path, text):
    path.write_text(text)
    return path


def test_windows_per_segment(tmp_path):
    rows = ["timestamp,ax,ay,label"]
    rows += [f"{i},{i},{-i},walk" for i in range(10)] + [f"{i},{i},{i},idle" for i in range(10, 15)]
    p = write(tmp_path / "log.csv", "\n".join(rows) + "\n")
    ds = load_csv_windows(p, window=4, stride=2)
    # walk: 10 rows → starts 0,2,4,6 (4 windows); idle: 5 rows → start 10 only (1 window)
    assert ds.x.shape == (5, 4, 2) and ds.classes == ["idle", "walk"]
    assert ds.y.tolist() == [1, 1, 1, 1, 0]
    np.testing.assert_array_equal(ds.x[1, :, 0], [2, 3, 4, 5])
    np.testing.assert_array_equal(ds.x[4, :, 1], [10, 11, 12, 13])


def test_ragged_row(tmp_path):
    p = write(tmp_path / "a.csv", "ax,ay,label\n1,2,a\n3,b\n")
    with pytest.raises(DataError, match=r"a.csv: line 3: 2 fields but the header has 3"):
        load_csv_windows(p, window=1)


def test_nan_and_text_cells(tmp_path):
    p = write(tmp_path / "a.csv", "ax,ay,label\n1,2,a\n3,nan,a\n")
    with pytest.raises(DataError, match=r"line 3, column 2: nan in column 'ay'"):
        load_csv_windows(p, window=1)
    p = write(tmp_path / "b.csv", "ax,ay,label\n1,2,a\nx1,2,a\n")
    with pytest.raises(DataError, match=r"line 3, column 1: 'x1' in number column 'ax' is not a number"):
        load_csv_windows(p, window=1)


def test_missing_columns(tmp_path):
    p = write(tmp_path / "a.csv", "ax,ay,label\n1,2,a\n")
    with pytest.raises(DataError, match=r"line 1: missing column\(s\) az"):
        load_csv_windows(p, window=1, columns=["ax", "az"])
    p = write(tmp_path / "b.csv", "ax,ay\n1,2\n")
    with pytest.raises(DataError, match="no label column 'label'"):
        load_csv_windows(p, window=1)


def test_window_longer_than_every_segment(tmp_path):
    p = write(tmp_path / "a.csv", "ax,label\n1,a\n2,a\n")
    with pytest.raises(DataError, match="no segment is at least 3 rows long"):
        load_csv_windows(p, window=3)
