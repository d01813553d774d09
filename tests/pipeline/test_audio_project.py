"""A wav folder through MFCC features into a small DS-CNN: the audio path of `tinyopt run`."""

import wave

import numpy as np

from tinyopt.pipeline.config import validate
from tinyopt.pipeline.runner import run_project


def tones(folder, rate=8000, seconds=0.25):
    """Two 'words': a 300 Hz and a 1,200 Hz tone, 8 recordings each, FSDD-style names."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    t = np.arange(int(rate * seconds)) / rate
    for label, hz in (("low", 300), ("high", 1200)):
        for i in range(8):
            x = 0.5 * np.sin(2 * np.pi * hz * (1 + 0.02 * rng.standard_normal()) * t)
            x += 0.01 * rng.standard_normal(len(t))
            with wave.open(str(folder / f"{label}_spk_{i}.wav"), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(rate)
                w.writeframes((x * 32767).astype("<i2").tobytes())


def test_wav_mfcc_dscnn(tmp_path):
    tones(tmp_path / "wavs")
    cfg = validate({
        "name": "tones",
        "data": {"source": "wav", "path": str(tmp_path / "wavs"), "split": "official", "val": 0.0,
                 "sample_rate": 8000},
        "features": {"block": "mfcc", "frame_length": 0.02, "frame_stride": 0.02, "num_filters": 16,
                     "num_coefficients": 10, "win_size": 0},
        "model": {"zoo": "dscnn", "args": {"filters": 8, "blocks": 1, "dropout": False}},
        "training": {"epochs": 8, "lr": 0.02, "batch_size": 4},
        "optimize": {"quantize": {"mode": "ptq", "calibration": 16}},
        "deploy": {"formats": ["tflite", "c"]},
    }, "tones.yaml")
    res = run_project(cfg, tmp_path / "out", report=False)
    # 2,000 samples → 1 + (2000 - 160) // 160 = 12 frames of 10 coefficients
    assert res.data["feature_shape"] == [12, 10, 1]
    # RAM kept for features: the int16 window (2 × 2,000 B) + the float32 matrix (4 × 12 × 10 B) = 4,480 B
    assert res.feature_ram_bytes == 4480
    # official split: recording index 0-4 of each word is the test set
    assert res.data["sizes"] == {"train": 6, "val": 0, "test": 10}
    assert [v["variant"] for v in res.variants] == ["float", "int8"]
    assert res.verify["int8"] == {"examples": 10, "mismatches": 0}
    assert res.variants[0]["accuracy"] == 1.0  # two tones 2 octaves apart
    # the model library and, beside it, the same MFCC block in C (checked against numpy in tests/features)
    assert (tmp_path / "out" / "deploy" / "tones" / "tones_model.c").is_file()
    header = (tmp_path / "out" / "deploy" / "tones_features" / "tones_features.h").read_text()
    assert "#define TONES_N_FRAMES 12" in header and "#define TONES_N_OUT 10" in header
