"""Audio feature blocks with the parameters Edge Impulse exposes: spectrogram, MFE and MFCC.

Pipeline per example (1-D signal in [-1, 1]):
pre-emphasis ``y[n] = x[n] - a·x[n-1]`` → frames of ``frame_length`` s every ``frame_stride`` s (the
incomplete tail is dropped) → periodic Hann window → power spectrum ``|rfft(frame, fft_length)|² /
fft_length`` → (MFE, MFCC) triangular mel filters on the HTK scale ``2595·log10(1 + f/700)`` →
MFE: dB, clipped at ``noise_floor_db`` and scaled to [0, 1] so int8 quantization keeps all its levels;
MFCC: natural log, orthonormal DCT-II, first ``num_coefficients``, minus a sliding mean over ``win_size``
frames (cepstral mean normalisation, robust to microphone gain).

Each block has ``fit`` (nothing to learn; it records the output shape) and ``transform`` (N, T) → (N,
frames, coefficients), float32.
"""

from __future__ import annotations

import numpy as np

from tinyopt.errors import ConfigError, DataError


def hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(num_filters: int, fft_length: int, sample_rate: int, low: float = 0.0,
                   high: float | None = None) -> np.ndarray:
    """(num_filters, fft_length // 2 + 1) triangular weights, peak 1 at each centre frequency.

    Edges are ``num_filters + 2`` points equally spaced in mel between ``low`` and ``high``; a bin at
    frequency f gets ``min((f - left)/(centre - left), (right - f)/(right - centre))`` clipped at 0.
    """
    high = sample_rate / 2 if high is None or high <= 0 else float(high)
    if not 0 <= low < high <= sample_rate / 2:
        raise ConfigError(f"mel range {low}–{high} Hz is not inside 0–{sample_rate / 2:g} Hz",
                          where="features", fix="set low_frequency < high_frequency ≤ sample_rate / 2")
    edges = mel_to_hz(np.linspace(hz_to_mel(low), hz_to_mel(high), num_filters + 2))
    freqs = np.arange(fft_length // 2 + 1) * sample_rate / fft_length
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs - left) / (centre - left)
    down = (right - freqs) / (right - centre)
    return np.maximum(0.0, np.minimum(up, down)).astype(np.float32)


def frames(signal: np.ndarray, frame_len: int, stride: int) -> np.ndarray:
    """(..., T) → (..., n_frames, frame_len) view; ``n_frames = 1 + (T - frame_len) // stride``."""
    t = signal.shape[-1]
    if t < frame_len:
        raise DataError(f"a {t}-sample signal is shorter than one {frame_len}-sample frame", where="features",
                        fix="use a shorter frame_length or longer examples")
    view = np.lib.stride_tricks.sliding_window_view(signal, frame_len, axis=-1)
    return view[..., ::stride, :]


def dct_ii_ortho(n: int, k: int) -> np.ndarray:
    """(n, k) matrix of the orthonormal DCT-II: ``x @ D`` gives the first ``k`` coefficients."""
    from scipy.fft import dct

    return dct(np.eye(n), type=2, norm="ortho", axis=-1)[:, :k].astype(np.float64)


def sliding_mean(x: np.ndarray, win: int) -> np.ndarray:
    """Mean over ``win`` frames centred on each frame (symmetric padding at the ends), axis -2."""
    if win <= 1:
        return np.zeros_like(x)
    half = win // 2
    pad = [(0, 0)] * x.ndim
    pad[-2] = (half, win - 1 - half)
    xp = np.pad(x, pad, mode="symmetric")
    c = np.cumsum(xp, axis=-2, dtype=np.float64)
    c = np.concatenate([np.zeros_like(c[..., :1, :]), c], axis=-2)
    return (c[..., win:, :] - c[..., :-win, :]) / win


class Spectrogram:
    """Power spectrum per frame in dB, clipped at ``noise_floor_db`` and scaled to [0, 1]."""

    def __init__(self, sample_rate: int, frame_length: float = 0.02, frame_stride: float = 0.01,
                 fft_length: int = 256, pre_emphasis: float = 0.98, noise_floor_db: float = -52.0):
        self.sample_rate = sample_rate
        self.frame_length = frame_length
        self.frame_stride = frame_stride
        self.fft_length = fft_length
        self.pre_emphasis = pre_emphasis
        self.noise_floor_db = noise_floor_db

    def _check(self):
        self.frame_len_ = int(round(self.frame_length * self.sample_rate))
        self.stride_ = int(round(self.frame_stride * self.sample_rate))
        if self.frame_len_ < 2 or self.stride_ < 1:
            raise ConfigError(f"frame_length {self.frame_length} s / frame_stride {self.frame_stride} s are "
                              f"under one sample at {self.sample_rate} Hz", where="features",
                              fix="use e.g. frame_length: 0.02, frame_stride: 0.01")
        if self.fft_length < 2 or self.fft_length & (self.fft_length - 1):
            raise ConfigError(f"fft_length {self.fft_length} is not a power of two", where="features",
                              fix="use 128, 256, 512 ...")

    def fit(self, x: np.ndarray):
        self._check()
        self.output_shape_ = self.transform(np.asarray(x)[:1]).shape[1:]
        return self

    def power(self, x: np.ndarray) -> np.ndarray:
        """(N, T) signals → (N, frames, fft_length//2 + 1) power spectra."""
        from scipy.signal import get_window

        self._check()
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x[None]
        x = x.reshape(len(x), int(np.prod(x.shape[1:])))  # also for an empty split
        if self.pre_emphasis:
            x = np.concatenate([x[:, :1], x[:, 1:] - self.pre_emphasis * x[:, :-1]], axis=1)
        fr = frames(x, self.frame_len_, self.stride_) * get_window("hann", self.frame_len_, fftbins=True)
        return np.abs(np.fft.rfft(fr, n=self.fft_length, axis=-1)) ** 2 / self.fft_length

    def _scale_db(self, e: np.ndarray) -> np.ndarray:
        db = 10.0 * np.log10(np.maximum(e, 1e-30))
        floor = float(self.noise_floor_db)
        return np.clip((db - floor) / (-floor + 12.0), 0.0, 1.0)

    def transform(self, x: np.ndarray) -> np.ndarray:
        self._check()
        return self._scale_db(self.power(x)).astype(np.float32)


class MFE(Spectrogram):
    """Mel filterbank energies in dB, clipped at ``noise_floor_db`` and scaled to [0, 1]."""

    def __init__(self, sample_rate: int, frame_length: float = 0.02, frame_stride: float = 0.01,
                 fft_length: int = 256, num_filters: int = 40, low_frequency: float = 0.0,
                 high_frequency: float | None = None, pre_emphasis: float = 0.98,
                 noise_floor_db: float = -52.0):
        super().__init__(sample_rate, frame_length, frame_stride, fft_length, pre_emphasis, noise_floor_db)
        self.num_filters = num_filters
        self.low_frequency = low_frequency
        self.high_frequency = high_frequency

    def energies(self, x: np.ndarray) -> np.ndarray:
        fb = mel_filterbank(self.num_filters, self.fft_length, self.sample_rate, self.low_frequency,
                            self.high_frequency)
        return self.power(x) @ fb.T.astype(np.float64)

    def transform(self, x: np.ndarray) -> np.ndarray:
        self._check()
        return self._scale_db(self.energies(x)).astype(np.float32)


class MFCC(MFE):
    """Mel-frequency cepstral coefficients with sliding cepstral mean normalisation."""

    def __init__(self, sample_rate: int, frame_length: float = 0.02, frame_stride: float = 0.02,
                 fft_length: int = 256, num_filters: int = 32, num_coefficients: int = 13,
                 low_frequency: float = 0.0, high_frequency: float | None = None, pre_emphasis: float = 0.98,
                 win_size: int = 101):
        super().__init__(sample_rate, frame_length, frame_stride, fft_length, num_filters, low_frequency,
                         high_frequency, pre_emphasis)
        self.num_coefficients = num_coefficients
        self.win_size = win_size

    def _check(self):
        super()._check()
        if not 1 <= self.num_coefficients <= self.num_filters:
            raise ConfigError(f"num_coefficients {self.num_coefficients} must be between 1 and num_filters "
                              f"({self.num_filters})", where="features", fix="use e.g. 13 of 32 filters")

    def transform(self, x: np.ndarray) -> np.ndarray:
        self._check()
        logs = np.log(self.energies(x) + 1e-10)
        c = logs @ dct_ii_ortho(self.num_filters, self.num_coefficients)
        if self.win_size and self.win_size > 1:
            c = c - sliding_mean(c, self.win_size)
        return c.astype(np.float32)
