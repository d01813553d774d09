"""The step configs: one small dataclass per compression step, checked when it is made.

A recipe is a list of these; YAML, Python keywords and ``tinyopt compress --set`` use the same words:

- ``sparsity``: the fraction of weights (or channels) pruning removes (the project file's word too);
- ``weight_bits`` / ``activation_bits``: bit widths (as ``ptq.QuantConfig`` names them);
- ``calibration_samples``: how many training samples calibrate activation ranges (a count of samples,
  not of batches, in recipes and project files alike).

Older words (``ratio``, ``bits``, ``act_bits``, ``calib_batches``) still load, with a DeprecationWarning
naming the new word. A config is checked in ``__post_init__``: an unknown method, mode, observer or
criterion is refused when the recipe is loaded, with the nearest valid word, not halfway through a run.
This module does not import torch: ``tinyopt validate`` and recipe loading stay fast.
"""

from __future__ import annotations

import dataclasses
from dataclasses import InitVar, dataclass, field
from typing import ClassVar

from tinyopt._notes import deprecated
from tinyopt._suggest import hint
from tinyopt.errors import ConfigError

# Names shared with the modules that implement them (tests check they agree with those modules).
OBSERVERS = ("minmax", "moving_average", "percentile", "mse", "kl")
CRITERIA = ("l1", "l2", "random", "taylor")
WEIGHT_FORMATS = ("float16", "ternary", "binary")
LR_SCHEDULES = ("constant", "cosine")


def check_choice(value, allowed, where: str, key: str) -> None:
    """Refuse a value outside ``allowed``, naming the nearest valid one."""
    if value not in allowed:
        raise ConfigError(f"{key} '{value}' is not valid", where=where,
                          fix=f"use one of {', '.join(map(str, allowed))}{hint(value, allowed)}")


def check_fraction(value, where: str, key: str = "sparsity") -> float:
    """A fraction in [0, 1): what pruning can remove (1.0 would remove everything)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ConfigError(f"{key} {value!r} is outside [0, 1)", where=where,
                          fix="give the fraction of weights to remove, e.g. 0.5 (1.0 would remove "
                              "everything)")
    return float(value)


def check_bit_width(bits, where: str, *, formats: bool = True) -> None:
    """An integer width 1-16, or (for weights) 'float16', 'ternary', 'binary'."""
    if formats and bits in WEIGHT_FORMATS:
        return
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 16:
        extra = " (or 'float16', 'ternary', 'binary')" if formats else ""
        raise ConfigError(f"bits={bits!r} is outside 1-16", where=where,
                          fix=f"use an integer bit width from 1 to 16{extra}")


def check_count(value, where: str, key: str, minimum: float = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ConfigError(f"{key} {value!r} must be a number >= {minimum:g}", where=where,
                          fix=f"give {key} >= {minimum:g}")


def renamed(old: str, new: str, where: str) -> None:
    """The one deprecation message for a renamed key (the CLI prints it as a one-line note)."""
    deprecated(f"{where}: '{old}' is deprecated, write '{new}'", stacklevel=4)


class Config:
    """Mixin for step configs: data only, round-trips through plain dicts, checked when made.

    ``_step`` names the step in messages; ``_renamed`` maps an old key to its new word.
    """

    _step: ClassVar[str] = "step"
    _renamed: ClassVar[dict[str, str]] = {}

    def __post_init__(self, *_old) -> None:
        self.check()

    def check(self) -> None:
        """Refuse impossible values (subclasses add their rules)."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def fields(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, d: dict | None, where: str | None = None):
        d = {} if d is None else d
        if not isinstance(d, dict):
            raise ConfigError(f"options must be a mapping, got {type(d).__name__}", where=where,
                              fix="write 'key: value' pairs, e.g. {sparsity: 0.5}")
        names = cls.fields()
        out = {}
        for k, v in d.items():
            if k in cls._renamed and cls._renamed[k] in names:
                renamed(k, cls._renamed[k], where or cls._step)
                if cls._renamed[k] in d:
                    raise ConfigError(f"both '{k}' and '{cls._renamed[k]}' are given", where=where,
                                      fix=f"keep only '{cls._renamed[k]}'")
                k = cls._renamed[k]
            elif k not in names:
                raise ConfigError(f"unknown key '{k}'", where=where,
                                  fix=f"valid keys: {', '.join(names)}{hint(k, [*names, *cls._renamed])}")
            out[k] = v
        try:
            return cls(**out)
        except ConfigError as e:
            if where and e.where != where:  # say which step of the recipe it is
                e.where = where if e.where in (None, cls._step) else f"{where}: {e.where}"
                e.args = (e.format(),)
            raise


def _old(self, pairs) -> None:
    """Python keywords under their old names: move each given value to its new field, with a warning."""
    for old, new, value in pairs:
        if value is not None:
            renamed(old, new, self._step)
            setattr(self, new, value)


@dataclass
class FinetuneConfig(Config):
    """Plain fine-tuning (optionally with L1/L2 regularization that pushes weights towards zero)."""

    epochs: float = 1.0
    lr: float = 1e-3
    l1: float = 0.0
    l2: float = 0.0

    _step = "finetune"

    def check(self) -> None:
        check_count(self.epochs, self._step, "epochs")


@dataclass
class PruneConfig(Config):
    """Remove ``sparsity`` of the weights (unstructured) or of the channels (structured)."""

    method: str = "unstructured"  # unstructured | structured
    sparsity: float = 0.5
    scope: str = "layer"  # layer | global (unstructured)
    criterion: str = "l1"  # l1 | l2 | random | taylor
    schedule: str = "one_shot"  # one_shot | iterative | polynomial | constant
    rounds: int = 3  # iterative
    epochs: float = 1.0  # fine-tuning after (or, for polynomial/constant, during) pruning
    lr: float = 1e-3
    layers: dict | None = None  # per-layer sparsity (unstructured), e.g. from a sensitivity scan
    sensitivity: bool = False  # unstructured one-shot: per-layer sparsity from a scan reaching `sparsity`
    ratio: InitVar[float | None] = None  # deprecated: sparsity

    _step = "prune"
    _renamed = {"ratio": "sparsity"}

    def __post_init__(self, ratio=None) -> None:
        _old(self, [("ratio", "sparsity", ratio)])
        self.check()

    def check(self) -> None:
        w = self._step
        check_choice(self.method, ("unstructured", "structured"), w, "method")
        check_choice(self.scope, ("layer", "global"), w, "scope")
        check_choice(self.criterion, CRITERIA, w, "criterion")
        check_choice(self.schedule, ("one_shot", "iterative", "polynomial", "constant"), w, "schedule")
        check_fraction(self.sparsity, w)
        for name, s in (self.layers or {}).items():
            check_fraction(s, f"{w}.layers.{name}")
        check_count(self.rounds, w, "rounds", 1)
        check_count(self.epochs, w, "epochs")


@dataclass
class QuantizeConfig(Config):
    """Quantize weights (and activations): post-training, dynamic, quantization-aware or weights only."""

    mode: str = "ptq"  # ptq | dynamic | qat | weights
    weight_bits: object = 8  # 1-16, float16, ternary, binary (or {layer: bits})
    activation_bits: int | None = 8  # None keeps activations in float
    observer: str = "minmax"  # minmax | moving_average | percentile | mse | kl
    per_channel: bool = True
    bias_correction: bool = False
    calibration_samples: int = 512  # training samples that calibrate the activation ranges (ptq, qat)
    epochs: float = 1.0  # qat
    lr: float = 1e-4
    lr_schedule: str = "constant"  # qat: constant | cosine (decays to zero over the epochs)
    distill: float = 0.0  # qat: share of the loss that is the KL divergence to the float model's outputs
    bits: InitVar[object] = None  # deprecated: weight_bits
    act_bits: InitVar[int | None] = None  # deprecated: activation_bits

    _step = "quantize"
    _renamed = {"bits": "weight_bits", "act_bits": "activation_bits"}

    def __post_init__(self, bits=None, act_bits=None) -> None:
        _old(self, [("bits", "weight_bits", bits), ("act_bits", "activation_bits", act_bits)])
        self.check()

    def check(self) -> None:
        w = self._step
        check_choice(self.mode, ("ptq", "dynamic", "qat", "weights"), w, "mode")
        check_choice(self.observer, OBSERVERS, w, "observer")
        per_layer = self.weight_bits if isinstance(self.weight_bits, dict) else {None: self.weight_bits}
        for layer, b in per_layer.items():
            check_bit_width(b, f"{w}.weight_bits" + (f".{layer}" if layer else ""))
        if self.activation_bits is not None:
            check_bit_width(self.activation_bits, f"{w}.activation_bits", formats=False)
        check_count(self.calibration_samples, w, "calibration_samples", 1)
        check_count(self.epochs, w, "epochs")
        check_choice(self.lr_schedule, LR_SCHEDULES, w, "lr_schedule")
        if isinstance(self.distill, bool) or not isinstance(self.distill, (int, float)) \
                or not 0.0 <= self.distill <= 1.0:
            raise ConfigError(f"distill {self.distill!r} is outside [0, 1]", where=w,
                              fix="give the share of the loss taken from the float model, e.g. 0.5")


@dataclass
class MixedPrecisionConfig(Config):
    """A bit width per layer from measured sensitivity, under the size of a uniform ``budget_bits``."""

    budget_bits: float = 4.0  # size budget: the size of the model with every weight at this width
    candidates: list = field(default_factory=lambda: [2, 3, 4, 5, 6, 8])
    activation_bits: int | None = 8
    epochs: float = 1.0  # QAT after choosing the widths
    lr: float = 1e-4
    act_bits: InitVar[int | None] = None  # deprecated: activation_bits

    _step = "mixed_precision"
    _renamed = {"act_bits": "activation_bits"}

    def __post_init__(self, act_bits=None) -> None:
        _old(self, [("act_bits", "activation_bits", act_bits)])
        self.check()

    def check(self) -> None:
        w = self._step
        if not self.candidates:
            raise ConfigError("no candidate widths", where=w, fix="give candidates such as [2, 4, 8]")
        for b in self.candidates:
            check_bit_width(b, f"{w}.candidates", formats=False)
        check_count(self.budget_bits, w, "budget_bits", min(self.candidates))
        if self.activation_bits is not None:
            check_bit_width(self.activation_bits, f"{w}.activation_bits", formats=False)
        check_count(self.epochs, w, "epochs")


@dataclass
class ClusterConfig(Config):
    """Weight sharing (Deep Compression): ``layers`` maps a module name to its index bits and overrides
    ``conv_bits`` / ``dense_bits`` (the paper: conv 8, dense 5); a layer mapped to 0 is left alone."""

    conv_bits: int = 8
    dense_bits: int = 5
    init: str = "linear"  # linear | density | random
    layers: dict | None = None
    epochs: float = 1.0  # centroid fine-tuning
    lr: float = 1e-4

    _step = "cluster"

    def check(self) -> None:
        w = self._step
        check_choice(self.init, ("linear", "density", "random"), w, "init")
        for key in ("conv_bits", "dense_bits"):
            check_bit_width(getattr(self, key), f"{w}.{key}", formats=False)
        for name, b in (self.layers or {}).items():
            if b != 0:
                check_bit_width(b, f"{w}.layers.{name}", formats=False)
        check_count(self.epochs, w, "epochs")


@dataclass
class HuffmanConfig(Config):
    """Huffman-code the shared weights (after ``cluster``): the exact bytes of each layer's record."""

    conv_gap_bits: int = 8  # relative-index width (the paper: conv 8, dense 5)
    dense_gap_bits: int = 5
    codebook_dtype: str = "float32"  # float32 | float16
    path: str | None = None  # also write the .topz container here

    _step = "huffman"

    def check(self) -> None:
        check_choice(self.codebook_dtype, ("float32", "float16"), self._step, "codebook_dtype")
        for key in ("conv_gap_bits", "dense_gap_bits"):
            check_bit_width(getattr(self, key), f"{self._step}.{key}", formats=False)


@dataclass
class DistillConfig(Config):
    """Knowledge distillation: the current model teaches ``student`` (``zoo:<name>`` or
    ``file.py:factory``, built with ``student_options``). ``features`` maps a student module name to the
    teacher module whose output it should imitate (``beta`` weighs that term)."""

    student: str = ""
    student_options: dict | None = None
    temperature: float = 4.0
    alpha: float = 0.9
    epochs: int = 10
    lr: float = 1e-3
    weight_decay: float = 0.0
    beta: float = 1.0
    features: dict = field(default_factory=dict)

    _step = "distill"

    def check(self) -> None:
        if not isinstance(self.temperature, (int, float)) or not self.temperature > 0:
            raise ConfigError(f"temperature = {self.temperature}", where="distill",
                              fix="use a temperature > 0")
        if not isinstance(self.alpha, (int, float)) or not 0 <= self.alpha <= 1:
            raise ConfigError(f"alpha = {self.alpha} is outside [0, 1]", where="distill",
                              fix="alpha weighs the soft loss; use a value in [0, 1] such as 0.9")
        if not isinstance(self.epochs, (int, float)) or self.epochs < 0:
            raise ConfigError(f"epochs = {self.epochs}", where="distill", fix="use epochs >= 0")


@dataclass
class LowRankConfig(Config):
    """Replace layers by two thinner ones from their SVD: rank by kept ``energy`` or by ``ratio`` (the
    share of the layer's weights the two factors may hold); ``layer_types`` picks dense and/or conv."""

    energy: float | None = None
    ratio: float | None = 0.5
    layers: list | None = None  # explicit module names (overrides layer_types)
    layer_types: list = field(default_factory=lambda: ["dense", "conv"])
    epochs: float = 1.0
    lr: float = 1e-3

    _step = "lowrank"

    def check(self) -> None:
        w = self._step
        for t in self.layer_types:
            check_choice(t, ("dense", "conv"), w, "layer_types")
        for key in ("energy", "ratio"):
            v = getattr(self, key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1):
                raise ConfigError(f"{key} = {v} is outside (0, 1]", where=w, fix="use a fraction such as 0.5")
        check_count(self.epochs, w, "epochs")


@dataclass
class FoldBNConfig(Config):
    """Fold BatchNorm into the preceding Conv/Linear: explicit ``groups`` or every pair in Sequentials."""

    groups: list | None = None

    _step = "fold_bn"


def old_names(cls: type, renames: dict[str, str]) -> type:
    """Read-only properties under the old names (``cfg.ratio`` → ``cfg.sparsity``, with a warning), so
    code reading a config by its old word keeps working; the constructor takes them as InitVars."""
    for old, new in renames.items():
        def get(self, old=old, new=new):
            renamed(old, new, type(self).__name__)
            return getattr(self, new)

        setattr(cls, old, property(get))
    return cls


for _cls in (PruneConfig, QuantizeConfig, MixedPrecisionConfig):
    old_names(_cls, _cls._renamed)

# step name -> config class: recipes are checked against these without importing torch
BUILTIN_CONFIGS: dict[str, type[Config]] = {
    c._step: c for c in (FinetuneConfig, PruneConfig, QuantizeConfig, MixedPrecisionConfig, ClusterConfig,
                         HuffmanConfig, DistillConfig, LowRankConfig, FoldBNConfig)
}

__all__ = ["BUILTIN_CONFIGS", "ClusterConfig", "Config", "DistillConfig", "FinetuneConfig", "FoldBNConfig",
           "HuffmanConfig", "LowRankConfig", "MixedPrecisionConfig", "PruneConfig", "QuantizeConfig",
           "check_choice", "check_fraction"]
