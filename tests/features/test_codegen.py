"""The generated C feature code, compiled with -std=c99 -Wall -Werror and run, against the numpy blocks."""

import shutil
import subprocess

import numpy as np
import pytest
from tests.conftest import FSDD, need

from tinyopt.features.codegen import generate_c
from tinyopt.features.spectral import MFCC, MFE, Spectrogram

MAIN = """#include <stdio.h>
#include "t_features.h"
static float sig[T_N_SAMPLES], out[T_N_FRAMES * T_N_OUT];
int main(void) {
    if (fread(sig, sizeof(float), T_N_SAMPLES, stdin) != T_N_SAMPLES) return 1;
    t_features(sig, out);
    fwrite(out, sizeof(float), T_N_FRAMES * T_N_OUT, stdout);
    return 0;
}
"""


def run_c(block, x, tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (cc/gcc) on this machine")
    for name, text in generate_c(block, len(x), prefix="t").items():
        (tmp_path / name).write_text(text)
    (tmp_path / "main.c").write_text(MAIN)
    exe = tmp_path / "feat"
    subprocess.run([cc, "-std=c99", "-Wall", "-Werror", "-O2", "-o", str(exe), str(tmp_path / "main.c"),
                    str(tmp_path / "t_features.c"), "-lm"], check=True, capture_output=True, text=True)
    r = subprocess.run([str(exe)], input=x.astype("<f4").tobytes(), capture_output=True, check=True)
    return np.frombuffer(r.stdout, "<f4")


@pytest.mark.parametrize("block", [
    MFCC(8000, frame_length=0.02, frame_stride=0.02, num_filters=32, num_coefficients=13, win_size=101),
    MFCC(16000, frame_length=0.025, frame_stride=0.01, fft_length=256, num_filters=20, num_coefficients=10,
         low_frequency=300, win_size=0),  # 400-sample frames truncated to the 256-point FFT, as numpy does
    MFE(8000, frame_length=0.032, frame_stride=0.016, num_filters=40, fft_length=256),
    Spectrogram(8000, frame_length=0.02, frame_stride=0.01, fft_length=128),
], ids=["mfcc-cmn", "mfcc-16k", "mfe", "spectrogram"])
def test_c_equals_numpy(block, tmp_path):
    rng = np.random.default_rng(3)
    rate = block.sample_rate
    t = np.arange(rate // 2) / rate
    x = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
    want = block.fit(x[None]).transform(x[None])[0]
    got = run_c(block, x, tmp_path).reshape(want.shape)
    span = float(np.ptp(want)) or 1.0
    assert np.abs(got - want).max() <= 1e-4 * span  # float32 FFT against numpy's float64 (seen: 2e-6)


def test_c_on_a_real_recording(tmp_path):
    from tinyopt.data.wav import read_wav

    x, rate = read_wav(need(FSDD) / "7_jackson_0.wav")
    x = np.pad(x, (0, max(0, 8000 - len(x))))[:8000]
    block = MFCC(rate, frame_stride=0.02).fit(x[None])
    want = block.transform(x[None])[0]
    got = run_c(block, x, tmp_path).reshape(want.shape)
    assert want.shape == (50, 13)
    assert np.abs(got - want).max() <= 1e-4 * float(np.ptp(want))
