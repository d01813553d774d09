"""The project file: one YAML mapping with the impulse's stages, checked key by key.

Every section has a fixed set of keys with defaults; an unknown key is an error that names the key, its
line of the file, and the nearest valid key (``tinyopt._suggest``), because a misspelt ``epoch: 50`` that is
silently ignored costs an afternoon.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

from tinyopt._notes import deprecated
from tinyopt._suggest import did_you_mean
from tinyopt._yaml import load_yaml_file
from tinyopt.errors import ConfigError

# section -> key -> default. ``None`` means "no value unless given".
SCHEMA: dict[str, dict] = {
    "name": "project",
    "seed": 0,
    "data": {
        "source": "digits",          # digits | mnist | wav | csv | npz | images (one sub-folder per class)
        "path": None,
        "split": "random",           # random | official (FSDD index 0-4 test) | tail (last N test)
        "val": 0.1,                  # fraction of the training part kept for validation
        "test": 0.2,                 # fraction (random) or count (tail) for test
        "limit": None,               # keep the first N examples of the source (mnist: 10000)
        "sample_rate": None,         # wav: required rate in Hz (other rates are an error)
        "duration": None,            # wav: seconds per example (pad/crop), default the longest file
        "columns": None,             # csv: value columns (default all but the label column)
        "label_column": "label",     # csv
        "window": None,              # csv: samples per window
        "window_stride": None,       # csv: samples between window starts (default = window)
        "x_key": "x", "y_key": "y",  # npz
        "image_size": None,          # images: [H, W] to resize to (default: all images must have one size)
    },
    "features": {
        "block": "raw",              # raw | normalized | spectrogram | mfe | mfcc
        "frame_length": 0.02,        # seconds
        "frame_stride": 0.02,        # seconds
        "fft_length": 256,
        "num_filters": 32,
        "num_coefficients": 13,
        "low_frequency": 0.0,
        "high_frequency": None,      # default: Nyquist
        "pre_emphasis": 0.98,
        "noise_floor_db": -52.0,     # MFE/spectrogram: clip log energies below this
        "win_size": 101,             # MFCC: frames of the local mean normalisation window (0 = off)
    },
    "model": {
        "zoo": "digits_cnn",         # a tinyopt.zoo name
        "args": {},                  # keyword arguments of zoo.build
    },
    "training": {
        "epochs": 20,
        "lr": 0.01,
        "batch_size": 64,
        "weight_decay": 0.0,
        "augment": False,            # random time shift / translation of one position
    },
    "optimize": {
        "prune": None,               # {sparsity: 0.5, epochs: 5, lr: 0.002} (structured, channels)
        "quantize": None,            # {mode: qat|ptq, epochs: 3, lr: 0.0005, calibration_samples: 256}
    },
    "target": {
        "device": "nano33ble",
        "sram_kb": None,             # override the device's SRAM (KB = 1024 B)
        "flash_kb": None,            # override the device's flash
        "feature_ram_bytes": None,   # RAM kept free for feature buffers (default: computed)
    },
    "deploy": {
        "formats": ["tflite", "c"],
        "prefix": None,              # C symbol prefix (default: the project name)
    },
}

PRUNE_KEYS = {"sparsity": 0.5, "epochs": 5, "lr": 0.002}
QUANTIZE_KEYS = {"mode": "qat", "epochs": 3, "lr": 0.0005, "calibration_samples": 256}
# old word -> the word recipes, Python keywords and the CLI share (tinyopt.compress.configs)
RENAMED = {"prune": {"ratio": "sparsity"}, "quantize": {"calibration": "calibration_samples"}}
SOURCES = ("digits", "mnist", "wav", "csv", "npz", "images")
SPLITS = ("random", "official", "tail")
BLOCKS = ("raw", "normalized", "spectrogram", "mfe", "mfcc")
FORMATS = ("tflite", "c")


def _line_of(path: str, key: str, section: str | None) -> str | None:
    """Best-effort 'line N' of ``key:`` in the file (inside ``section`` when given) for the message."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return None
    inside = section is None
    for i, line in enumerate(lines, 1):
        stripped = line.strip()
        if section is not None and not line.startswith((" ", "\t")) and stripped:
            inside = stripped.split(":")[0] == section
            continue
        if inside and stripped.split(":")[0].strip() == key:
            return f"line {i}"
    return None


def _unknown(key: str, valid, where: str, path: str, section: str | None = None):
    near = did_you_mean(key, valid)
    hint = f"did you mean '{near[0]}'?" if near else f"valid keys: {', '.join(sorted(map(str, valid)))}"
    line = _line_of(path, str(key), section)
    raise ConfigError(f"unknown key '{key}' in {where}; {hint}", path=path, where=line,
                      fix=f"rename it to '{near[0]}'" if near else "remove it")


def _merge(user: dict, schema: dict, where: str, path: str, section: str | None) -> dict:
    out = copy.deepcopy(schema)
    for k, v in user.items():
        if k not in schema:
            _unknown(k, schema, where, path, section)
        out[k] = v
    return out


def _choice(value, choices, key: str, path: str):
    if value not in choices:
        near = did_you_mean(value, choices, cutoff=0.4)
        hint = f" (did you mean '{near[0]}'?)" if near else ""
        raise ConfigError(f"{key}: '{value}' is not one of {', '.join(choices)}{hint}", path=path,
                          fix=f"set {key} to one of {', '.join(choices)}")


def _renamed(sub: dict, section: str, path: str) -> dict:
    """Old keys of ``optimize.<section>`` under their new words (a deprecation note each)."""
    out = dict(sub)
    for old, new in RENAMED[section].items():
        if old in out:
            if new in out:
                raise ConfigError(f"optimize.{section} has both '{old}' and '{new}'", path=path,
                                  where=_line_of(path, old, None), fix=f"keep only '{new}'")
            deprecated(f"{path}: optimize.{section}.{old} is deprecated, write {new}")
            out[new] = out.pop(old)
    return out


def _optimize_steps(optimize: dict, path: str) -> None:
    """optimize.prune / optimize.quantize in place: off (None), on with defaults (true) or a checked
    mapping with its defaults filled."""
    for name, keys in (("prune", PRUNE_KEYS), ("quantize", QUANTIZE_KEYS)):
        sub = optimize[name]
        if sub is None or sub is False:
            optimize[name] = None
            continue
        if sub is True:
            sub = {}
        if not isinstance(sub, dict):
            raise ConfigError(f"optimize.{name} must be a mapping", path=path,
                              fix=f"write e.g. {name}: {{{', '.join(f'{a}: {b}' for a, b in keys.items())}}}")
        optimize[name] = _merge(_renamed(sub, name, path), keys, f"optimize.{name}", path, None)


def validate(raw: dict, path: str = "<project>") -> dict:
    """Fill defaults and check names and choices; returns a new plain dict."""
    if not isinstance(raw, dict):
        raise ConfigError("the project must be a mapping", path=path, fix="write 'key: value' pairs")
    cfg = {}
    for k in raw:
        if k not in SCHEMA:
            _unknown(k, SCHEMA, "the project", path)
    for k, default in SCHEMA.items():
        v = raw.get(k)
        if isinstance(default, dict):
            if v is None:
                v = {}
            if not isinstance(v, dict):
                raise ConfigError(f"section '{k}' must be a mapping, got {type(v).__name__}", path=path,
                                  fix=f"write '{k}:' followed by indented 'key: value' lines")
            cfg[k] = _merge(v, default, f"section '{k}'", path, k)
        else:
            cfg[k] = copy.deepcopy(default) if v is None else v
    _optimize_steps(cfg["optimize"], path)
    _choice(cfg["data"]["source"], SOURCES, "data.source", path)
    _choice(cfg["data"]["split"], SPLITS, "data.split", path)
    _choice(cfg["features"]["block"], BLOCKS, "features.block", path)
    if cfg["optimize"]["quantize"]:
        _choice(cfg["optimize"]["quantize"]["mode"], ("qat", "ptq"), "optimize.quantize.mode", path)
    formats = cfg["deploy"]["formats"] or []
    for f in formats:
        _choice(f, FORMATS, "deploy.formats", path)
    if not isinstance(cfg["seed"], int):
        raise ConfigError(f"seed must be an integer, got {cfg['seed']!r}", path=path, fix="e.g. seed: 0")
    if cfg["data"]["source"] != "digits" and not cfg["data"]["path"]:
        raise ConfigError(f"data.source '{cfg['data']['source']}' needs data.path", path=path,
                          fix="set data.path to the dataset file or folder")
    if cfg["deploy"]["prefix"] is None:
        cfg["deploy"]["prefix"] = "".join(c if c.isalnum() else "_" for c in str(cfg["name"])).lower()
    return cfg


def resolve_path(value: str, project_file: str | None) -> Path:
    """A data path relative to the project file's folder, else to the current folder; the first that
    exists wins (examples name ``../shared`` relative to the repository root they are run from)."""
    p = Path(os.path.expanduser(value))
    if p.is_absolute():
        return p
    candidates = [Path(os.path.normpath(c)) for c in
                  ([Path(project_file).parent / p] if project_file else []) + [Path.cwd() / p]]
    for c in candidates:
        if c.exists():
            return c
    return candidates[-1]


def load_project(path: str | os.PathLike) -> dict:
    raw = load_yaml_file(path)
    cfg = validate(raw, str(path))
    cfg["_file"] = str(path)
    return cfg
