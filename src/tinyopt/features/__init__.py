"""tinyopt.features: the feature blocks of an impulse (raw, normalized, spectrogram, MFE, MFCC) with Edge
Impulse's parameters, and the spectral blocks generated as C for the board."""

from tinyopt.features.codegen import generate_c
from tinyopt.features.raw import Normalized, Raw
from tinyopt.features.spectral import MFCC, MFE, Spectrogram, mel_filterbank

__all__ = ["MFCC", "MFE", "Normalized", "Raw", "Spectrogram", "generate_c", "mel_filterbank"]
