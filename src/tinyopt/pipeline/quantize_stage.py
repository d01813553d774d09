"""Quantization stage: QAT (or PTQ) of a torch model, conversion to an int8 Graph, saved as ``.tflite``."""

from __future__ import annotations

from pathlib import Path


def available() -> bool:
    try:
        import tinyopt.convert as conv

        return hasattr(conv, "convert")
    except ImportError:
        return False


def build(model, fs, qcfg: dict, seed: int, folder: Path, on_epoch=None) -> dict:
    raise NotImplementedError
