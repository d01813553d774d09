import struct
import wave

import numpy as np
import pytest
from tests.conftest import FSDD, need

from tinyopt.data.dataset import split_by_group
from tinyopt.data.wav import load_wav_folder, read_wav
from tinyopt.errors import DataError


def write_wav(path, samples, rate=8000, width=2):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, "<i2").tobytes())


def test_samples_scale_and_padding(tmp_path):
    write_wav(tmp_path / "3_ann_0.wav", [0, 16384, -32768])
    write_wav(tmp_path / "4_ann_7.wav", [1000])
    write_wav(tmp_path / "4_bob_1.wav", [2, 4])
    write_wav(tmp_path / "3_bob_2.wav", [5])
    ds = load_wav_folder(tmp_path)
    assert ds.classes == ["3", "4"]
    # sorted names: 3_ann_0, 3_bob_2, 4_ann_7, 4_bob_1; padded to the longest (3 samples)
    np.testing.assert_array_equal(ds.x[0], [0.0, 0.5, -1.0])  # 16384 / 32768 = 0.5
    np.testing.assert_array_equal(ds.x[2], [1000 / 32768, 0, 0])
    assert ds.y.tolist() == [0, 0, 1, 1] and ds.group.tolist() == [0, 2, 7, 1]
    assert ds.meta["sample_rate"] == 8000
    cut = load_wav_folder(tmp_path, duration=2 / 8000)
    assert cut.x.shape == (4, 2)


def test_label_subfolders(tmp_path):
    for label in ("yes", "no"):
        (tmp_path / label).mkdir()
        write_wav(tmp_path / label / "a.wav", [1, 2])
    ds = load_wav_folder(tmp_path)
    assert ds.classes == ["no", "yes"] and ds.group is None


def test_empty_folder(tmp_path):
    with pytest.raises(DataError, match="no .wav files"):
        load_wav_folder(tmp_path)


def test_other_sample_rate_names_the_file(tmp_path):
    write_wav(tmp_path / "1_a_0.wav", [1, 2], rate=8000)
    write_wav(tmp_path / "2_a_0.wav", [1, 2], rate=16000)
    with pytest.raises(DataError, match=r"2_a_0.wav: sample rate 16000 Hz, but the data set is 8000 Hz"):
        load_wav_folder(tmp_path)
    with pytest.raises(DataError, match="1_a_0.wav: sample rate 8000 Hz, but the data set is 16000"):
        load_wav_folder(tmp_path, sample_rate=16000)


def test_corrupt_headers(tmp_path):
    p = tmp_path / "1_a_0.wav"
    write_wav(p, list(range(100)))
    raw = bytearray(p.read_bytes())
    # the data chunk claims 1,000 bytes more than the file holds (a truncated download)
    pos = raw.index(b"data")
    size = struct.unpack("<I", raw[pos + 4:pos + 8])[0]
    raw[pos + 4:pos + 8] = struct.pack("<I", size + 1000)
    raw[4:8] = struct.pack("<I", len(raw) - 8)
    p.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="chunk 'data' at byte 36 declares 1200 bytes but only 200 follow"):
        read_wav(p)
    p.write_bytes(b"RIFX" + bytes(raw[4:]))
    with pytest.raises(DataError, match="bad header magic"):
        read_wav(p)
    p.write_bytes(bytes(raw[:20]))
    with pytest.raises(DataError, match="RIFF header declares"):
        read_wav(p)


def test_fsdd_official_split():
    ds = load_wav_folder(need(FSDD), duration=1.0)
    assert ds.x.shape == (3000, 8000) and ds.meta["sample_rate"] == 8000
    s = split_by_group(ds, test_groups=range(5), val=0.1)
    # 10 digits × 6 speakers × 5 recordings (index 0-4) = 300 test examples
    assert len(s.test) == 300 and len(s.train) + len(s.val) == 2700


def test_eight_bit_and_stereo(tmp_path):
    with wave.open(str(tmp_path / "a_s_0.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(bytes([128, 192, 0]))  # unsigned 8-bit: (v - 128) / 128 = 0, 0.5, -1
    with wave.open(str(tmp_path / "b_s_0.wav"), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.array([16384, 0, -16384, -16384], "<i2").tobytes())  # L/R pairs, averaged
    np.testing.assert_array_equal(read_wav(tmp_path / "a_s_0.wav")[0], [0.0, 0.5, -1.0])
    np.testing.assert_array_equal(read_wav(tmp_path / "b_s_0.wav")[0], [0.25, -0.5])


def test_a_name_without_a_label(tmp_path):
    write_wav(tmp_path / "recording.wav", [1])
    with pytest.raises(DataError, match="recording.wav: cannot tell the label from the file name"):
        load_wav_folder(tmp_path)
