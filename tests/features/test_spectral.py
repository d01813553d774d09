"""Feature blocks against independent computations: scipy.signal.stft for the power spectrum, the mel
formula by hand, an explicit cosine sum for the DCT, and a loop for the sliding mean."""

import numpy as np
import pytest
from scipy import signal

from tinyopt.errors import ConfigError, DataError
from tinyopt.features.raw import Normalized
from tinyopt.features.spectral import MFCC, MFE, Spectrogram, hz_to_mel, mel_filterbank, sliding_mean

RATE = 8000


def test_power_spectrum_matches_scipy_stft():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(1600)
    sp = Spectrogram(RATE, frame_length=0.02, frame_stride=0.01, fft_length=256,
                     pre_emphasis=0.0).fit(x[None])
    p = sp.power(x[None])[0]
    # scipy: 160-sample periodic Hann frames every 80 samples, zero-padded to 256, no scaling, no padding
    # ("spectrum" scaling divides by the window sum, which we multiply back)
    _, _, z = signal.stft(x, fs=RATE, window="hann", nperseg=160, noverlap=80, nfft=256, boundary=None,
                          padded=False, scaling="spectrum", detrend=False, return_onesided=True)
    ref = (np.abs(z * signal.get_window("hann", 160).sum()) ** 2 / 256).T
    np.testing.assert_allclose(p, ref, rtol=1e-6, atol=1e-9)
    assert p.shape == (1 + (1600 - 160) // 80, 129)  # 19 frames


def test_pre_emphasis_by_hand():
    x = np.array([[1.0, 2.0, 4.0, 8.0]])
    sp = Spectrogram(4, frame_length=1.0, frame_stride=1.0, fft_length=4, pre_emphasis=0.5)
    p = sp.power(x)[0, 0]
    # y = [1, 2 - 0.5, 4 - 1, 8 - 2] = [1, 1.5, 3, 6]; periodic Hann(4) = [0, .5, 1, .5] → [0, .75, 3, 3]
    y = np.array([0, 0.75, 3, 3])
    np.testing.assert_allclose(p, np.abs(np.fft.rfft(y)) ** 2 / 4)
    np.testing.assert_allclose(p[0], 6.75 ** 2 / 4)  # DC: the sum squared over N


def test_mel_scale_and_filter_by_hand():
    assert hz_to_mel(700.0) == pytest.approx(2595 * np.log10(2))  # 781.17
    assert hz_to_mel(1000.0) == pytest.approx(999.99, abs=0.01)
    fb = mel_filterbank(2, 16, 16000, low=0, high=8000)
    # edges at mel 0, m/3, 2m/3, m with m = 2595·log10(1 + 8000/700) = 2840.023:
    # 700·(10^(mel/2595) − 1) = 0, 921.456, 3055.884, 8000 Hz. Bin 2 of 16 at 16 kHz is 2000 Hz:
    # rising edge of filter 2: (2000 − 921.456) / (3055.884 − 921.456) = 0.50531,
    # falling edge of filter 1: (3055.884 − 2000) / 2134.428 = 0.49469.
    assert fb[1, 2] == pytest.approx(0.50531, abs=1e-5)
    assert fb[0, 2] == pytest.approx(0.49469, abs=1e-5)
    assert fb[0, 0] == 0 and fb[1, 8] == pytest.approx(0, abs=1e-6)  # the ends of the range
    assert fb.shape == (2, 9) and fb.max() <= 1.0


def test_mfe_peaks_in_the_filter_of_a_pure_tone():
    t = np.arange(RATE) / RATE
    x = 0.5 * np.sin(2 * np.pi * 1000 * t)
    mfe = MFE(RATE, num_filters=20, fft_length=256).fit(x[None])
    e = mfe.energies(x[None])[0].mean(0)
    fb = mel_filterbank(20, 256, RATE)
    assert e.argmax() == fb[:, 32].argmax()  # bin 32 = 1000 Hz at 8 kHz / 256
    out = mfe.transform(x[None])
    assert out.min() >= 0 and out.max() <= 1 and out.shape == (1, 99, 20)


def test_mfcc_equals_explicit_cosine_sum():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4000)) * 0.1
    m = MFCC(RATE, num_filters=16, num_coefficients=5, win_size=0).fit(x)
    logs = np.log(m.energies(x) + 1e-10)
    n, k = 16, np.arange(5)
    # orthonormal DCT-II: c_k = s_k Σ_n x_n cos(π k (2n + 1) / 2N), s_0 = √(1/N), s_k = √(2/N)
    cos = np.cos(np.pi * k[None, :] * (2 * np.arange(n)[:, None] + 1) / (2 * n))
    s = np.where(k == 0, np.sqrt(1 / n), np.sqrt(2 / n))
    np.testing.assert_allclose(m.transform(x), (logs @ cos) * s, rtol=1e-4, atol=1e-4)
    assert m.transform(x).shape == (2, 25, 5)  # 1 + (4000 - 160) // 160 = 25 frames


def test_sliding_mean_against_a_loop():
    rng = np.random.default_rng(2)
    c = rng.standard_normal((7, 3))
    got = sliding_mean(c, 3)
    padded = np.pad(c, ((1, 1), (0, 0)), mode="symmetric")
    want = np.stack([padded[i:i + 3].mean(0) for i in range(7)])
    np.testing.assert_allclose(got, want)
    m = MFCC(RATE, win_size=101).fit(rng.standard_normal((1, 8000)))
    # with the window wider than the signal every frame loses almost the same mean: columns ~centred
    assert np.abs(m.transform(rng.standard_normal((1, 8000))).mean(1)).max() < 1.0


def test_bad_parameters():
    with pytest.raises(ConfigError, match="not a power of two"):
        Spectrogram(RATE, fft_length=200).fit(np.zeros((1, 800)))
    with pytest.raises(ConfigError, match="num_coefficients 40"):
        MFCC(RATE, num_filters=32, num_coefficients=40).fit(np.zeros((1, 800)))
    with pytest.raises(ConfigError, match="mel range"):
        MFE(RATE, high_frequency=6000).fit(np.zeros((1, 800)))
    with pytest.raises(DataError, match="shorter than one 160-sample frame"):
        MFCC(RATE).fit(np.zeros((1, 100)))


def test_normalized_learns_on_train_only():
    train = np.array([[0.0, 10.0], [2.0, 30.0]])
    n = Normalized().fit(train)
    np.testing.assert_allclose(n.mean_, [1, 20])
    np.testing.assert_allclose(n.std_, [1, 10])
    np.testing.assert_allclose(n.transform(np.array([[3.0, 0.0]])), [[2.0, -2.0]])


def test_an_empty_split_gives_an_empty_feature_array():
    m = MFCC(RATE).fit(np.zeros((1, 8000)))
    assert m.transform(np.zeros((0, 8000))).shape == (0, 50, 13)  # 8,000 samples / 160 per frame
