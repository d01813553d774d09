"""Pick, for each client, the most accurate model version that meets its budgets — with the reasoning.

The seeds' exam is the canonical case: a base model (93 %), a pruned variant (−5 pp, 6.62 MFLOPs instead
of 39.04) and int8 quantization (−3 pp, run at 80 MOPS instead of 10 MFLOPS). Versions are either listed
explicitly or generated as every combination of a base and its optional techniques.

```yaml
device: {fp32_flops: 10e6, int8_ops: 80e6}     # or a catalog name: device: nano33ble
base: {name: base, accuracy: 93, flops: 39.04e6}
options:
  pruned: {accuracy_delta: -5, flops: 6.62e6}
  int8:   {accuracy_delta: -3, dtype: int8}
```
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field

from tinyopt._yaml import load_yaml_file
from tinyopt.errors import BudgetError, ConfigError


@dataclass
class Version:
    name: str
    accuracy: float                 # percent
    flops: float | None = None      # operations per inference (2 x MACs)
    dtype: str = "float32"
    latency_s: float | None = None  # stated or computed
    ram_bytes: int | None = None
    flash_bytes: int | None = None
    how: str = ""                   # how the latency was obtained, for the explanation


@dataclass
class Client:
    name: str
    max_latency_s: float | None = None
    max_ram_bytes: int | None = None
    max_flash_bytes: int | None = None


@dataclass
class Choice:
    client: Client
    version: Version | None
    reasons: list[str] = field(default_factory=list)


def _num(value, key, where, path):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"'{key}' must be a number, got {value!r}", path=path, where=where,
                          fix=f"write e.g. '{key}: 1.5e6'") from None
    if not v == v or v < 0 or v == float("inf"):
        raise ConfigError(f"'{key}' must be a finite non-negative number, got {value!r}", path=path,
                          where=where, fix=f"give a real {key}")
    return v


def latency_of(v: Version, fp32_flops: float | None, int8_ops: float | None) -> Version:
    """Seeds' rate model: operations ÷ the device's rate for the version's arithmetic."""
    if v.latency_s is not None:
        v.how = v.how or f"stated latency {v.latency_s:g} s"
        return v
    rate = int8_ops if v.dtype == "int8" else fp32_flops
    unit = "int8 OPS" if v.dtype == "int8" else "FP32 FLOPS"
    if v.flops is None or not rate:
        raise ConfigError(f"version '{v.name}' has no latency and no flops/{unit} to compute it",
                          fix="give 'latency_s', or 'flops' and the device's rates")
    v.latency_s = v.flops / rate
    v.how = f"{v.flops / 1e6:.2f} M ops / {rate / 1e6:g} M {unit} = {v.latency_s:.3f} s"
    return v


def load_versions(path: str | os.PathLike) -> tuple[list[Version], dict]:
    doc = load_yaml_file(path)
    allowed = {"device", "versions", "base", "options", "clients"}
    extra = set(doc) - allowed
    if extra:
        raise ConfigError(f"unknown key '{sorted(extra)[0]}'", path=path,
                          fix=f"allowed keys: {sorted(allowed)}")
    device = _device(doc.get("device"), path)
    versions: list[Version] = []
    for i, item in enumerate(doc.get("versions") or []):
        versions.append(_version(item, f"versions[{i}]", path))
    if "base" in doc:
        base = _version(doc["base"], "base", path)
        options = doc.get("options") or {}
        if not isinstance(options, dict):
            raise ConfigError("'options' must be a mapping of technique name to its effect", path=path,
                              fix="write e.g. 'options: {int8: {accuracy_delta: -3, dtype: int8}}'")
        names = list(options)
        for r in range(len(names) + 1):
            for combo in itertools.combinations(names, r):
                v = Version(" + ".join((base.name, *combo)), base.accuracy, base.flops,
                            base.dtype, base.latency_s, base.ram_bytes, base.flash_bytes)
                for opt in combo:
                    _apply_option(v, opt, options[opt], path)
                versions.append(v)
    if not versions:
        raise ConfigError("no model versions given", path=path,
                          fix="add 'versions:' or 'base:' with 'options:'")
    for v in versions:
        latency_of(v, device.get("fp32_flops"), device.get("int8_ops"))
    return versions, doc


def _device(spec, path) -> dict:
    if spec is None:
        return {}
    if isinstance(spec, str):
        from tinyopt.devices import get_device

        d = get_device(spec)
        return {"fp32_flops": d.fp32_flops, "int8_ops": d.int8_ops}
    if not isinstance(spec, dict):
        raise ConfigError("'device' must be a catalog name or a mapping", path=path,
                          fix="write 'device: {fp32_flops: 10e6, int8_ops: 80e6}'")
    return {k: _num(v, k, "device", path) for k, v in spec.items() if k in ("fp32_flops", "int8_ops")}


_VERSION_KEYS = {"name", "accuracy", "flops", "dtype", "latency_s", "ram_kb", "flash_kb"}


def _version(item, where, path) -> Version:
    if not isinstance(item, dict):
        raise ConfigError("a version must be a mapping", path=path, where=where,
                          fix="write {name: ..., accuracy: ..., flops: ...}")
    extra = set(item) - _VERSION_KEYS
    if extra:
        raise ConfigError(f"unknown key '{sorted(extra)[0]}'", path=path, where=where,
                          fix=f"allowed keys: {sorted(_VERSION_KEYS)}")
    if "accuracy" not in item:
        raise ConfigError("missing 'accuracy'", path=path, where=where, fix="give the accuracy in percent")
    dtype = str(item.get("dtype", "float32"))
    if dtype not in ("float32", "int8"):
        raise ConfigError(f"dtype must be float32 or int8, got {dtype!r}", path=path, where=where,
                          fix="write 'dtype: int8' or 'dtype: float32'")
    opt = {k: _num(item[k], k, where, path) for k in ("flops", "latency_s", "ram_kb",
                                                      "flash_kb") if k in item}
    return Version(str(item.get("name", where)), _num(item["accuracy"], "accuracy", where, path),
                   opt.get("flops"), dtype, opt.get("latency_s"),
                   int(opt["ram_kb"] * 1024) if "ram_kb" in opt else None,
                   int(opt["flash_kb"] * 1024) if "flash_kb" in opt else None)


def _apply_option(v: Version, name: str, eff, path) -> None:
    allowed = {"accuracy_delta", "flops", "dtype", "ram_factor", "flash_factor"}
    if not isinstance(eff, dict) or set(eff) - allowed:
        raise ConfigError(f"option '{name}' must map to keys among {sorted(allowed)}", path=path,
                          where=f"options.{name}", fix="e.g. {accuracy_delta: -3, dtype: int8}")
    v.accuracy += float(eff.get("accuracy_delta", 0.0))
    if "flops" in eff:
        v.flops = _num(eff["flops"], "flops", f"options.{name}", path)
    if "dtype" in eff:
        v.dtype = str(eff["dtype"])
    for attr, key in (("ram_bytes", "ram_factor"), ("flash_bytes", "flash_factor")):
        if key in eff and getattr(v, attr) is not None:
            setattr(v, attr, int(getattr(v, attr) * float(eff[key])))


def parse_client(text: str) -> Client:
    """``NAME=LATENCY_S`` with optional ``,ram_kb=N,flash_kb=N``."""
    head, *rest = text.split(",")
    if "=" not in head:
        raise ConfigError(f"client '{text}' is not NAME=LATENCY_S", fix="write e.g. --client fast=0.2")
    name, lat = head.split("=", 1)
    c = Client(name.strip(), _num(lat, "latency", f"client {name}", None))
    for part in rest:
        key, _, val = part.partition("=")
        if key.strip() not in ("ram_kb", "flash_kb"):
            raise ConfigError(f"unknown client budget '{key}'", where=f"client {name}",
                              fix="use ram_kb=N or flash_kb=N")
        setattr(c, f"max_{key.strip()[:-3]}_bytes", int(_num(val, key, f"client {name}", None) * 1024))
    return c


def select(versions: list[Version], clients: list[Client]) -> list[Choice]:
    """For each client, the most accurate version within every budget (ties: the faster one)."""
    choices = []
    for c in clients:
        ok, why = [], []
        for v in versions:
            fails = []
            if c.max_latency_s is not None and v.latency_s > c.max_latency_s:
                fails.append(f"latency {v.latency_s:.3f} s > {c.max_latency_s:g} s")
            if c.max_ram_bytes is not None and v.ram_bytes is not None and v.ram_bytes > c.max_ram_bytes:
                fails.append(f"RAM {v.ram_bytes / 1024:.1f} KB > {c.max_ram_bytes / 1024:.1f} KB")
            if (c.max_flash_bytes is not None and v.flash_bytes is not None
                    and v.flash_bytes > c.max_flash_bytes):
                fails.append(f"flash {v.flash_bytes / 1024:.1f} KB > {c.max_flash_bytes / 1024:.1f} KB")
            verdict = "fits" if not fails else "fails: " + "; ".join(fails)
            why.append(f"{v.name}: {v.accuracy:g} %, {v.how} → {verdict}")
            if not fails:
                ok.append(v)
        best = max(ok, key=lambda v: (v.accuracy, -v.latency_s)) if ok else None
        if best:
            why.append(f"chosen: {best.name} ({best.accuracy:g} %), the most accurate that fits")
        choices.append(Choice(c, best, why))
    return choices


def require_all_served(choices: list[Choice], versions: list[Version]) -> None:
    """Raise ``BudgetError`` naming the binding constraint when some client gets no version."""
    for ch in choices:
        if ch.version is not None:
            continue
        c = ch.client
        if c.max_latency_s is not None and all(v.latency_s > c.max_latency_s for v in versions):
            fastest = min(versions, key=lambda v: v.latency_s)
            msg = (f"no version meets latency ≤ {c.max_latency_s:g} s; the fastest, '{fastest.name}', "
                   f"takes {fastest.latency_s:.3f} s")
            fix = f"relax the latency budget to at least {fastest.latency_s:.3f} s, or add a smaller version"
        else:
            msg = "no version meets every budget at once (" + "; ".join(ch.reasons[-1:]) + ")"
            fix = "relax the RAM/flash budget or add a smaller version"
        raise BudgetError(msg, where=f"client {c.name}", fix=fix)
