"""Folders of wav files labelled by name: ``<label>/<any>.wav`` or ``<label>_<speaker>_<index>.wav``.

The second form is the Free Spoken Digit Dataset's; its recording index (the last ``_`` field) is kept
as the example's group so that the official split (index 0–4 test) can be applied.

Read with Python's ``wave`` module, and checked against the real file: the RIFF size field, the data
chunk's declared size against the bytes present, one sample rate for the whole set (another rate is an
error naming the file; resampling silently would change what the model hears).
"""

from __future__ import annotations

import os
import struct
import wave
from pathlib import Path

import numpy as np

from tinyopt.data.dataset import Dataset
from tinyopt.errors import DataError

MAX_FILES = 200_000


def _riff_check(path: Path, raw: bytes) -> int | None:
    if len(raw) < 12 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise DataError("not a RIFF/WAVE file (bad header magic)", path=path,
                        fix="convert it to PCM wav or remove it from the folder")
    declared = struct.unpack("<I", raw[4:8])[0] + 8
    if declared > len(raw):
        raise DataError(f"the RIFF header declares {declared} bytes but the file has {len(raw)}", path=path,
                        fix="the file is truncated; record or download it again")
    pos, data_size = 12, None  # walk the chunks: every declared size must fit inside the file
    while pos + 8 <= min(declared, len(raw)):
        cid, size = raw[pos:pos + 4], struct.unpack("<I", raw[pos + 4:pos + 8])[0]
        if cid == b"data" and data_size is None:
            data_size = size
        if pos + 8 + size > len(raw):
            raise DataError(f"chunk '{cid.decode('latin-1')}' at byte {pos} declares {size} bytes but only "
                            f"{len(raw) - pos - 8} follow", path=path,
                            fix="the file is truncated or its header is corrupt; record it again")
        pos += 8 + size + (size & 1)
    return data_size


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Mono float32 samples in [-1, 1] and the sample rate; multi-channel files are averaged."""
    p = Path(path)
    raw = p.read_bytes()
    data_size = _riff_check(p, raw)
    try:
        with wave.open(str(p), "rb") as w:
            rate, width, channels, n = w.getframerate(), w.getsampwidth(), w.getnchannels(), w.getnframes()
            data = w.readframes(n)
    # RuntimeError: wave's chunk skip past the end
    except (wave.Error, EOFError, struct.error, RuntimeError) as e:
        raise DataError(f"unreadable wav header ({e})", path=p,
                        fix="save it as uncompressed PCM wav (8/16/32-bit)") from None
    if width not in (1, 2, 4) or channels < 1:
        raise DataError(f"{8 * width}-bit samples with {channels} channel(s) are not supported", path=p,
                        fix="save it as 16-bit PCM")
    if rate <= 0:
        raise DataError(f"sample rate {rate} Hz", path=p, fix="write the real sample rate into the header")
    if data_size is not None and data_size % (width * channels):
        raise DataError(f"the data chunk holds {data_size} bytes, not a whole number of "
                        f"{width * channels}-byte frames", path=p,
                        fix="the file is truncated or corrupt; record it again")
    if len(data) != n * width * channels:
        raise DataError(f"header declares {n} frames ({n * width * channels} bytes) but {len(data)} bytes "
                        "are present", path=p, fix="the file is truncated; record it again")
    if width == 1:
        x = (np.frombuffer(data, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        x = np.frombuffer(data, "<i2").astype(np.float32) / 32768.0
    else:
        x = np.frombuffer(data, "<i4").astype(np.float32) / 2147483648.0
    if channels > 1:
        x = x.reshape(-1, channels).mean(1)
    return x, rate


def _label_of(root: Path, f: Path) -> tuple[str, int | None]:
    if f.parent != root:
        return f.parent.name, None
    parts = f.stem.split("_")
    if len(parts) < 2:
        raise DataError("cannot tell the label from the file name", path=f,
                        fix="name files <label>_<speaker>_<index>.wav or put them in a folder per label")
    group = int(parts[-1]) if parts[-1].isdigit() else None
    return parts[0], group


def load_wav_folder(folder: str | os.PathLike, sample_rate: int | None = None,
                    duration: float | None = None) -> Dataset:
    """All ``*.wav`` below ``folder`` as (N, samples) float32, zero-padded or cut to ``duration`` s."""
    root = Path(folder)
    if not root.is_dir():
        raise DataError("is not a folder", path=folder, fix="point data.path at the folder of wav files")
    files = sorted(root.rglob("*.wav"))[:MAX_FILES + 1]
    if not files:
        raise DataError("no .wav files in the folder", path=folder,
                        fix="put <label>_<speaker>_<index>.wav files (or <label>/*.wav) there")
    if len(files) > MAX_FILES:
        raise DataError(f"more than {MAX_FILES} wav files", path=folder, fix="use a smaller folder")
    signals, labels, groups = [], [], []
    rate0 = sample_rate
    for f in files:
        x, rate = read_wav(f)
        if rate0 is None:
            rate0 = rate
        if rate != rate0:
            raise DataError(f"sample rate {rate} Hz, but the data set is {rate0} Hz", path=f,
                            fix=f"resample it to {rate0} Hz (e.g. sox in.wav -r {rate0} "
                                "out.wav) or remove it")
        label, group = _label_of(root, f)
        signals.append(x)
        labels.append(label)
        groups.append(-1 if group is None else group)
    n = int(round(duration * rate0)) if duration else max(len(s) for s in signals)
    x = np.zeros((len(signals), n), np.float32)
    for i, s in enumerate(signals):
        x[i, :min(n, len(s))] = s[:n]
    classes = sorted(set(labels), key=lambda c: (not c.isdigit(), int(c) if c.isdigit() else 0, c))
    index = {c: i for i, c in enumerate(classes)}
    g = np.asarray(groups)
    return Dataset(x, np.array([index[c] for c in labels]), classes, str(folder),
                   None if (g < 0).any() else g, {"sample_rate": int(rate0), "samples": n})
