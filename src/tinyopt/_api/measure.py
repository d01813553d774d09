"""``tinyopt.analyze``, ``tinyopt.check`` and ``tinyopt.devices()``: measure a model without changing it."""

from __future__ import annotations

import copy

from tinyopt._api.display import Result, Table, console, jsonable, num
from tinyopt._api.model import Model, load
from tinyopt._api.vocab import renamed_keywords, runtime_alias, runtime_name
from tinyopt._extras import translated
from tinyopt.errors import ConfigError


def _kb(nbytes) -> str:
    return "-" if nbytes is None else f"{nbytes / 1024:,.2f} KB"


def _ms(s) -> str:
    return "-" if s is None else f"{s * 1e3:,.2f} ms"


class Report(Result):
    """What ``tinyopt analyze`` reports. Every key of ``to_dict()`` (the ``--json`` object, key for key and
    value for value) is also an attribute: ``report.arena_bytes``, ``report.fits``, ``report.layers``.
    ``analysis`` is the underlying ``tinyopt.analysis.Analysis`` (objects instead of plain values)."""

    def __init__(self, analysis):
        self.analysis = analysis
        self._data = jsonable(analysis.to_dict())

    def to_dict(self) -> dict:
        return copy.deepcopy(self._data)

    def __getattr__(self, name: str):
        data = self.__dict__.get("_data")
        if data is not None and name in data:
            return data[name]
        raise AttributeError(f"'Report' has no attribute '{name}'")

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *self._data})

    WIDTH = 140

    def text(self, width: int | None = None, explain: bool = False, plan: bool = False) -> str:
        """The tables ``tinyopt analyze`` prints (``explain``: every figure with its formula)."""
        from tinyopt.analysis.report import render

        con = console(width or self.WIDTH)
        render(self.analysis, con, explain=explain, plan=plan)
        return con.file.getvalue().rstrip("\n")

    def tables(self) -> list[Table]:
        d = self._data
        layers = Table(f"{d['model']} ({d['source'] or 'in memory'}), dtype {d['dtype']}",
                       ["layer", "type", "output", "params", "MACs", "param bytes", "activation bytes"],
                       [[r.get("name", "")[:40], r.get("type"),
                         "×".join(map(str, r.get("output_shape") or [])), num(r.get("params")),
                         num(r.get("macs")), num(r.get("param_bytes")), num(r.get("activation_bytes"))]
                        for r in d["layers"]],
                       right=("params", "MACs", "param bytes", "activation bytes"))
        rows = [["parameters", num(d["params"])],
                ["MACs / FLOPs (2×MACs)", f"{num(d['macs'])} / {num(d['flops'])}"],
                ["parameter memory (real dtypes)", _kb(d["param_bytes"])],
                ["largest activation", _kb(d["largest_activation_bytes"])],
                ["textbook total (params + largest activation)", _kb(d["textbook_total_bytes"])],
                ["planned activation arena" + (f" ({d['runtime']})" if d.get("runtime") else ""),
                 _kb(d["arena_bytes"])],
                ["flash (weights + quant params + code estimate)", _kb(d["flash_bytes"])]]
        if d.get("device"):
            energy = "-" if d.get("energy_mj") is None else f"{d['energy_mj']:,.4f} mJ"
            rows += [["device", d["device"]],
                     [f"latency ({d.get('latency_model') or 'unknown'})", _ms(d["latency_s"])],
                     ["energy per inference", energy]]
        summary = Table("Summary (KB = 1024 bytes)", ["figure", "value"], rows, right=("value",),
                        show_header=False)
        out = [layers, summary]
        if d.get("device"):
            verdict = {True: "FITS", False: "DOES NOT FIT", None: "not checked"}[d["fits"]]
            notes = list(d["reasons"]) + [f"what would make it fit: {s}" for s in d["suggestions"]]
            out.append(Table(f"Verdict on {d['device']} ({d['memory']} memory): {verdict}", [], notes=notes))
        return out


@translated
def analyze(model, device=None, *, dtype: str | None = None, runtime: str | None = None,
            memory: str = "planned", example_input=None, input_shape: tuple[int, ...] | None = None,
            sram_kb: float | None = None, flash_kb: float | None = None, fp32_flops: float | None = None,
            int8_ops: float | None = None, battery_mah: float | None = None, battery_v: float = 3.0,
            inferences_per_s: float = 1.0, train_batch: int = 1, input_values: dict | None = None,
            optimize: str = "balanced", **old) -> Report:
    """Does ``model`` fit ``device``, and why: params, MACs, FLOPs, memory, flash, latency, energy, verdict.

    ``model`` is anything ``tinyopt.load`` takes (a torch module with ``example_input``). ``device`` is a
    catalog name (``tinyopt devices``) or a ``Device``; ``sram_kb``/``flash_kb``/``fp32_flops``/``int8_ops``
    override its figures or, without a device, describe a custom one. ``input_values`` fixes ONNX inputs at
    a value (a sample rate: control flow on it folds away). ``dtype`` prices the model as if
    converted (``"int8"``/``"float32"``; default: its own). ``runtime`` is what executes it
    (``tflm-reference``, ``cmsis-nn``, ``tinyopt-c``; default: the device's); ``optimize`` the C library's
    plan for ``tinyopt-c`` (``speed``, ``balanced``, ``ram``, as ``deploy``). Sizes are exact bytes;
    ``to_dict()`` equals ``tinyopt analyze --json``.
    """
    from tinyopt.analysis.fit import analyze as run_analysis
    from tinyopt.devices import Device, custom_device, get_device

    kw = renamed_keywords(old, {"rate": "inferences_per_s"}, "analyze")
    inferences_per_s = kw.get("inferences_per_s", inferences_per_s)
    if dtype not in (None, "float32", "int8"):  # checked before the model loads (torch takes seconds)
        raise ConfigError(f"unknown dtype '{dtype}'", where="--dtype", fix="use float32 or int8")
    if memory not in ("textbook", "planned"):
        raise ConfigError(f"unknown memory model '{memory}'", where="--memory", fix="use textbook or planned")
    m = load(model, example_input, input_shape=input_shape, opaque=True, input_values=input_values)
    dev = get_device(device) if isinstance(device, str) else device
    if dev is not None and not isinstance(dev, Device):
        raise TypeError(f"device must be a catalog name or a Device, got {type(device).__name__}")
    if any(v is not None for v in (sram_kb, flash_kb, fp32_flops, int8_ops)):
        dev = custom_device(dev, sram_kb=sram_kb, flash_kb=flash_kb, fp32_flops=fp32_flops, int8_ops=int8_ops)
    rt = None if runtime is None else runtime_alias(runtime)
    from tinyopt._api.run import _check_plan_options

    _check_plan_options(optimize, None)
    if optimize != "balanced" and rt != "tinyopt-c":
        raise ConfigError(f"--optimize {optimize} chooses the C library's plan", where="--optimize",
                          fix="add --runtime tinyopt-c (other runtimes have one plan)")
    if m.compressed is not None and (dtype == "int8" or rt == "tinyopt-c"):
        # a tinyopt compress output priced as deployed: its int8 graph, whose weights keep their encodings
        # (flash counts them as the C library or the .tflite stores them)
        from tinyopt._api.transform import convert

        m = convert(m)
    result = run_analysis(m.graph, dev, dtype=dtype, memory=memory, runtime=rt, battery_mah=battery_mah,
                          battery_v=battery_v, inferences_per_s=inferences_per_s, train_batch=train_batch,
                          optimize=optimize)
    return Report(result)


# -- check ------------------------------------------------------------------------------------------
class CheckReport(Result):
    """Per operator: supported by ``runtime`` or not, and why. ``supported`` is the verdict."""

    WIDTH = 160

    def __init__(self, model: Model, runtime: str, rows: list, problems: list[str]):
        self.model, self.runtime, self.rows, self.problems = model, runtime, rows, problems
        self.supported = all(r.supported for r in rows) and not problems

    def to_dict(self) -> dict:
        return jsonable({"model": self.model.source, "runtime": self.runtime, "supported": self.supported,
                         "problems": self.problems, "operators": [r.to_dict() for r in self.rows]})

    def tables(self) -> list[Table]:
        bad = sum(not r.supported for r in self.rows)
        notes = [f"model: {p}" for p in self.problems]
        notes.append(f"{len(self.rows) - bad} of {len(self.rows)} operators supported on {self.runtime}"
                     + ("" if self.supported else "; not deployable as is"))
        columns = ["#", "operator", "name", "dtype", "supported", "why"]
        return [Table(f"{self.model.source} on {self.runtime}", columns,
                      [[r.index, r.op, r.name[:40], r.dtype, "yes" if r.supported else "NO", r.reason]
                       for r in self.rows], notes=notes)]


@translated
def check(model, runtime: str = "tflm-reference", *, example_input=None,
          input_shape: tuple[int, ...] | None = None, input_values: dict | None = None, **old) -> CheckReport:
    """Is every operator of ``model`` supported by ``runtime`` (``tflm-reference``, ``cmsis-nn``,
    ``tinyopt-c``), and why not, before anything is deployed. CMSIS-NN runs inside TFLM (its kernels
    replace some reference ones, the rest fall back to them), so it supports what TFLM supports."""
    from tinyopt.runtime.support import check_support, graph_level_problems

    kw = renamed_keywords(old, {"target": "runtime"}, "check")
    rt = runtime_name(kw.get("runtime", runtime))
    m = load(model, example_input, input_shape=input_shape, opaque=True,  # lists every unknown operator
             input_values=input_values)
    support = "tinyopt-c" if rt == "tinyopt-c" else "tflm"
    return CheckReport(m, rt, check_support(m.graph, support), graph_level_problems(m.graph, support))


# -- devices ----------------------------------------------------------------------------------------
class DeviceTable(Result):
    """The board catalog: ``devices`` lists each ``Device``; ``to_dict()`` is ``tinyopt devices --json``."""

    WIDTH = 200
    COLUMNS = ("name", "board", "core", "MHz", "SRAM KB", "flash KB", "FPU", "DSP", "active mW",
               "FP32 MFLOPS", "int8 MOPS", "source")

    def __init__(self, devices: list):
        self.devices = devices

    def to_dict(self) -> dict:
        return jsonable({"kb": 1024, "devices": [d.to_dict() for d in self.devices]})

    def tables(self) -> list[Table]:
        def f(x, fmt="{:,.0f}"):
            return "-" if x is None else fmt.format(x)

        rows = [[d.name, d.title, d.core or "-", f(d.clock_mhz), f(d.sram_bytes and d.sram_bytes / 1024),
                 f(d.flash_bytes and d.flash_bytes / 1024), d.fpu or "-",
                 "-" if d.dsp is None else ("yes" if d.dsp else "no"), f(d.active_mw, "{:,.2f}"),
                 f(d.fp32_flops and d.fp32_flops / 1e6, "{:,.1f}"),
                 f(d.int8_ops and d.int8_ops / 1e6, "{:,.1f}"), d.source] for d in self.devices]
        return [Table("Devices (KB = 1024 bytes; FLOPS/OPS are estimates, see catalog.yaml)",
                      list(self.COLUMNS), rows,
                      right=("MHz", "SRAM KB", "flash KB", "active mW", "FP32 MFLOPS", "int8 MOPS"))]


def devices() -> DeviceTable:
    """The catalog's boards: core, clock, SRAM, flash, FPU, DSP, power and compute rates, with sources."""
    from tinyopt.devices import list_devices

    return DeviceTable(list_devices())


__all__ = ["CheckReport", "DeviceTable", "Report", "analyze", "check", "devices"]
