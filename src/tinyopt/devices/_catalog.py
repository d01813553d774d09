"""Device catalog: boards as data (``catalog.yaml``), looked up by name or alias, or built from flags."""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

from tinyopt.errors import ConfigError

CATALOG_PATH = Path(__file__).with_name("catalog.yaml")
KB = 1024


@dataclass(frozen=True)
class Runtime:
    """Cost constants of one inference runtime class (see ``catalog.yaml``, ``runtimes``)."""

    name: str
    cycles_per_mac: dict
    cycles_per_other_op: float
    per_op_overhead_cycles: float
    source: str = ""
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Device:
    """A board: memory budgets, compute rates, power. ``None`` means unknown (not checked).

    ``sram_bytes``/``flash_bytes`` are exact bytes (catalog KB × 1024). ``fp32_flops`` and ``int8_ops``
    are per second, for the rate model; ``core`` + ``clock_mhz`` feed the calibrated cycle model.
    """

    name: str
    title: str = ""
    sram_bytes: int | None = None
    flash_bytes: int | None = None
    fp32_flops: float | None = None
    int8_ops: float | None = None
    clock_mhz: float | None = None
    core: str | None = None
    mcu: str | None = None
    fpu: str | None = None
    dsp: bool | None = None
    active_mw: float | None = None
    sleep_mw: float | None = None
    runtime: str | None = None
    external: str | None = None
    source: str = ""
    aliases: tuple[str, ...] = field(default_factory=tuple)
    custom: bool = False

    @property
    def cycle_factor(self) -> float | None:
        core = _catalog()["cores"].get(self.core or "")
        return None if core is None else float(core["cycle_factor"])

    def to_dict(self) -> dict:
        d = asdict(self)
        d["aliases"] = list(self.aliases)
        d["sram_kb"] = None if self.sram_bytes is None else self.sram_bytes / KB
        d["flash_kb"] = None if self.flash_bytes is None else self.flash_bytes / KB
        return d


def _norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


@lru_cache(maxsize=1)
def _catalog() -> dict:
    """The packaged catalog. It is our own file, so the C safe loader (libyaml) parses it when present:
    5× faster than the pure-Python one, which matters for `tinyopt analyze` start-up."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data = yaml.load(CATALOG_PATH.read_text(encoding="utf-8"), Loader=loader)  # safe loader
    if not isinstance(data, dict) or not {"cores", "runtimes", "devices", "code_size"} <= set(data):
        raise ConfigError("the device catalog is damaged", path=str(CATALOG_PATH),
                          fix="reinstall tinyopt")
    return data


def _positive(value, key: str, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"{key} must be a positive number, got {value!r}", path=str(CATALOG_PATH),
                          where=where, fix=f"give {key} as a positive number")
    return float(value)


def _device_from_entry(entry: dict) -> Device:
    cat = _catalog()
    where = f"device '{entry.get('name')}'"
    core = entry.get("core")
    clock = _positive(entry.get("clock_mhz"), "clock_mhz", where)
    fp32, int8 = entry.get("fp32_flops"), entry.get("int8_ops")
    if core is not None:
        if core not in cat["cores"]:
            raise ConfigError(f"unknown core '{core}'", path=str(CATALOG_PATH), where=where,
                              fix=f"use one of {', '.join(cat['cores'])}")
        c = cat["cores"][core]
        if fp32 is None and clock:
            fp32 = clock * 1e6 * c["fp32_flops_per_cycle"]
        if int8 is None and clock:
            int8 = clock * 1e6 * c["int8_ops_per_cycle"]
    sram = _positive(entry.get("sram_kb"), "sram_kb", where)
    flash = _positive(entry.get("flash_kb"), "flash_kb", where)
    return Device(
        name=entry["name"], title=entry.get("title", entry["name"]),
        sram_bytes=None if sram is None else int(round(sram * KB)),
        flash_bytes=None if flash is None else int(round(flash * KB)),
        fp32_flops=_positive(fp32, "fp32_flops", where), int8_ops=_positive(int8, "int8_ops", where),
        clock_mhz=clock, core=core, mcu=entry.get("mcu"), fpu=entry.get("fpu"), dsp=entry.get("dsp"),
        active_mw=_positive(entry.get("active_mw"), "active_mw", where),
        sleep_mw=entry.get("sleep_mw"), runtime=entry.get("runtime"), external=entry.get("external"),
        source=entry.get("source", ""), aliases=tuple(entry.get("aliases", ())),
    )


@lru_cache(maxsize=1)
def _devices() -> tuple[Device, ...]:
    return tuple(_device_from_entry(e) for e in _catalog()["devices"])


def list_devices() -> list[Device]:
    """Every catalog device, in catalog order."""
    return list(_devices())


def _index() -> dict[str, Device]:
    idx: dict[str, Device] = {}
    for d in _devices():
        for key in (d.name, *d.aliases):
            idx[_norm(key)] = d
    return idx


def get_device(name: str) -> Device:
    """Look a device up by name or alias, ignoring case and punctuation ("Nano33BLE" = "nano-33-ble")."""
    idx = _index()
    dev = idx.get(_norm(str(name)))
    if dev is None:
        names = [d.name for d in _devices()] + [a for d in _devices() for a in d.aliases]
        near = difflib.get_close_matches(str(name).lower(), names, n=3, cutoff=0.4)
        hint = f"did you mean {', '.join(repr(n) for n in near)}? " if near else ""
        raise ConfigError(f"unknown device '{name}'", where="--device",
                          fix=f"{hint}run 'tinyopt devices' for the list, or give --sram-kb/--flash-kb/"
                              "--fp32-flops/--int8-ops for a custom device")
    return dev


def custom_device(base: Device | None = None, *, sram_kb: float | None = None, flash_kb: float | None = None,
                  fp32_flops: float | None = None, int8_ops: float | None = None,
                  name: str | None = None) -> Device:
    """A device from flags, or ``base`` with some figures overridden. Sizes must be positive."""
    from dataclasses import replace

    for key, v in (("--sram-kb", sram_kb), ("--flash-kb", flash_kb), ("--fp32-flops", fp32_flops),
                   ("--int8-ops", int8_ops)):
        if v is not None and (isinstance(v, bool) or not v > 0):
            raise ConfigError(f"{key} must be positive, got {v!r}", where=key,
                              fix=f"give {key} a value above 0")
    base = base or Device(name=name or "custom", title="custom device (from flags)", custom=True)
    changes: dict = {}
    if sram_kb is not None:
        changes["sram_bytes"] = int(round(sram_kb * KB))
    if flash_kb is not None:
        changes["flash_bytes"] = int(round(flash_kb * KB))
    if fp32_flops is not None:
        changes["fp32_flops"] = float(fp32_flops)
    if int8_ops is not None:
        changes["int8_ops"] = float(int8_ops)
    if changes and not base.custom:
        changes.update(name=name or f"{base.name}+flags", custom=True)
    return replace(base, **changes)


def get_runtime(name: str) -> Runtime:
    runtimes = _catalog()["runtimes"]
    key = str(name).lower()
    for rname, r in runtimes.items():
        if key == rname or key in r.get("aliases", ()):
            return Runtime(name=rname, cycles_per_mac=dict(r["cycles_per_mac"]),
                           cycles_per_other_op=float(r["cycles_per_other_op"]),
                           per_op_overhead_cycles=float(r["per_op_overhead_cycles"]),
                           source=r.get("source", ""), aliases=tuple(r.get("aliases", ())))
    known = [*runtimes, *(a for r in runtimes.values() for a in r.get("aliases", ()))]
    raise ConfigError(f"unknown runtime '{name}'", where="--runtime", fix=f"use one of {', '.join(known)}")


def list_runtimes() -> list[str]:
    return list(_catalog()["runtimes"])


def code_size_table() -> dict[str, int]:
    return {k: int(v) for k, v in _catalog()["code_size"].items()}


def core_table() -> dict[str, dict]:
    return dict(_catalog()["cores"])
