"""Does it fit, and why: one ``analyze`` call from a Graph (and optionally a device) to a verdict.

Memory models: *textbook* = parameter count × dtype width + the largest single activation,
all in SRAM (the seeds' exam); *planned* = the arena of the runtime that runs the model, in SRAM, weights
in flash: TFLM's (greedy-planned head + persistent tail; CMSIS-NN's scratch buffers with ``cmsis-nn``) or
the generated C library's ``TINYOPT_ARENA_BYTES`` (``tinyopt.analysis.arena``). The runtime is the one
asked for, else the device's, else TFLM with its reference kernels; the report says which.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tinyopt import ops
from tinyopt.analysis import cost as _cost
from tinyopt.analysis.arena import ARENA_RUNTIMES, DEFAULT_RUNTIME, RuntimeArena, runtime_arena
from tinyopt.analysis.latency import battery_life_h, calibrated_latency_s, energy_mj, rate_latency_s
from tinyopt.analysis.memory import ArenaPlan, plan_arena
from tinyopt.analysis.training import training_memory
from tinyopt.devices import Device, code_size_table, get_runtime
from tinyopt.errors import ConfigError
from tinyopt.graph.ir import DTYPE_BYTES, Graph

KB = 1024
MEMORY_MODELS = ("textbook", "planned")
PRUNE_STEPS = (0.75, 0.5, 0.25, 0.125)


def kb(nbytes: float) -> str:
    """Bytes as KB (1024 B) with two decimals and thousands separators: 1380876 → '1,348.51 KB'."""
    return f"{nbytes / KB:,.2f} KB"


@dataclass
class Analysis:
    """Everything ``tinyopt analyze`` reports. Sizes are exact bytes; ``to_dict`` is the JSON contract."""

    model: str
    source: str | None
    dtype: str
    model_dtype: str
    memory: str
    params: int
    macs: int
    flops: int
    other_ops: int
    param_bytes: int
    textbook_param_bytes: int
    largest_activation_bytes: int
    largest_activation_tensor: str
    textbook_total_bytes: int
    arena_bytes: int           # the arena of ``arena.runtime``: what the planned verdict uses
    flash_bytes: int
    flash_breakdown: dict
    layers: list[_cost.LayerCost]
    plan: ArenaPlan            # the activation buffers' plan (TFLM's head plan for a TFLM runtime)
    arena: RuntimeArena | None = None
    device: Device | None = None
    runtime: str | None = None
    latency_s: float | None = None
    latency_model: str | None = None
    latency_rate_s: float | None = None
    latency_calibrated_s: float | None = None
    energy_mj: float | None = None
    battery_life_h: float | None = None
    battery: dict | None = None
    fits: bool | None = None
    reasons: list[str] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)
    training: dict = field(default_factory=dict)
    explain: list[str] = field(default_factory=list)

    @property
    def ram_bytes(self) -> int:
        """SRAM the chosen memory model needs."""
        return self.textbook_total_bytes if self.memory == "textbook" else self.arena_bytes

    def to_dict(self) -> dict:
        return {
            "model": self.model, "source": self.source, "dtype": self.dtype, "model_dtype": self.model_dtype,
            "memory": self.memory, "kb": 1024,
            "params": self.params, "macs": self.macs, "flops": self.flops, "other_ops": self.other_ops,
            "param_bytes": self.param_bytes, "textbook_param_bytes": self.textbook_param_bytes,
            "largest_activation_bytes": self.largest_activation_bytes,
            "largest_activation_tensor": self.largest_activation_tensor,
            "textbook_total_bytes": self.textbook_total_bytes, "arena_bytes": self.arena_bytes,
            "arena_runtime": None if self.arena is None else self.arena.runtime,
            "arena": None if self.arena is None else self.arena.to_dict(),
            "ram_bytes": self.ram_bytes, "flash_bytes": self.flash_bytes,
            "flash_breakdown": self.flash_breakdown,
            "device": None if self.device is None else self.device.name, "runtime": self.runtime,
            "latency_s": self.latency_s, "latency_model": self.latency_model,
            "latency_rate_s": self.latency_rate_s, "latency_calibrated_s": self.latency_calibrated_s,
            "energy_mj": self.energy_mj, "battery_life_h": self.battery_life_h, "battery": self.battery,
            "fits": self.fits, "reasons": list(self.reasons), "suggestions": list(self.suggestions),
            "training": self.training, "layers": [r.to_dict() for r in self.layers],
            "arena_plan": {**self.plan.to_dict(),
                           "runtime": None if self.arena is None else self.arena.runtime},
            "explain": list(self.explain),
        }


def _check_options(dtype, memory):
    if dtype is not None and dtype not in _cost.DTYPES:
        raise ConfigError(f"unknown dtype '{dtype}'", where="--dtype", fix="use float32 or int8")
    if memory not in MEMORY_MODELS:
        raise ConfigError(f"unknown memory model '{memory}'", where="--memory", fix="use textbook or planned")


def quant_param_bytes(graph: Graph, dtype: str | None) -> int:
    """Flash bytes of quantization parameters (float32 scale + int32 zero point per entry, as a C table).

    Real quantized tensors count their own entries; "as if int8" assumes TFLM's spec: per-channel for
    conv/dense weights and their biases, per-tensor for activations.
    """
    if dtype is None:
        return sum(t.quant.scale.size * 8 for t in graph.tensors.values() if t.quant is not None)
    if dtype != "int8":
        return 0
    n = 0
    for node in graph.nodes:
        axis = ops.get(node.op).weight_axis
        if axis is not None:
            channels = graph.tensors[node.inputs[1]].shape[axis]
            n += channels * (2 if len(node.inputs) > 2 and node.inputs[2] else 1)
    n += len(graph.activations())
    return n * 8


def encoded_weight_bytes(graph: Graph, runtime: str | None) -> tuple[int, str | None]:
    """(bytes to add to the weights at their dtype, how they are stored) for a graph whose weights carry an
    encoding (a compressed model's, issue #17): the C library's layouts for ``tinyopt-c``, the ``.tflite``
    form (INT4, lookup tables) TFLM reads otherwise; (0, None) for any other graph."""
    from tinyopt.export.c import compressed
    from tinyopt.graph import encoding as enc

    if not compressed.is_compressed(graph):
        return 0, None
    if runtime == "tinyopt-c":
        delta = 0
        for i, c in compressed.cached_choose(graph).items():
            t = graph.tensors[graph.nodes[i].inputs[1]]
            delta += c.weight_bytes - _cost.tensor_bytes(t, t.dtype)
        return delta, "the C library's compressed layouts (export.c.compressed, tinyopt-c)"
    users: dict[str, list[str]] = {}
    for n in graph.nodes:
        if len(n.inputs) > 1 and n.inputs[1]:
            users.setdefault(n.inputs[1], []).append(n.op)
    delta = 0
    for t in graph.tensors.values():
        if t.encoding is not None and t.stored_bytes is None and t.data is not None:
            form, bits = enc.tflite_form(t, users.get(t.name, []))
            delta += enc.tflite_bytes(t, form, bits) - t.size
    return delta, ".tflite INT4 and lookup-table tensors as TFLM reads them"


def flash_estimate(graph: Graph, rows: list[_cost.LayerCost], dtype: str | None,
                   runtime: str | None = None) -> dict:
    """Flash = parameters at their dtype (encoded weights as the runtime stores them) + other constants +
    quantization params + code (catalog estimate)."""
    from tinyopt.graph.ir import param_tensor_names

    params = param_tensor_names(graph)
    other = sum(t.nbytes for t in graph.constants() if t.name not in params)
    table = code_size_table()
    ops = sorted({n.op for n in graph.nodes})
    code = table["runtime_base"] + sum(table.get(op, table["default"]) for op in ops)
    delta, basis = encoded_weight_bytes(graph, runtime) if dtype in (None, "int8") else (0, None)
    weights = sum(r.param_bytes for r in rows) + delta
    quant = quant_param_bytes(graph, dtype)
    out: dict[str, int | str] = {"weights": weights, "other_constants": other, "quant_params": quant,
                                 "code": code, "total": weights + other + quant + code}
    if basis:
        out["weights_stored_as"] = basis
    return out


def _textbook_width(dtype: str) -> float:
    return DTYPE_BYTES[dtype]


def as_converted(graph: Graph, dtype: str | None) -> Graph:
    """The graph an int8 conversion would emit: BatchNorm folded into the layer before it and ReLU/ReLU6
    fused, as TFLite and our converter do. Other dtypes, and graphs already int8, are returned as they are."""
    if dtype != "int8" or _cost.model_dtype(graph) in ("int8", "int16"):
        return graph
    if not any(ops.get(n.op).folds_into_weights or ops.get(n.op).fusable_as for n in graph.nodes):
        return graph
    from tinyopt.graph.passes import fold_batchnorm, fuse_activations

    return fuse_activations(fold_batchnorm(graph))


def arena_runtime(runtime: str | None, device: Device | None) -> tuple[str, str]:
    """(runtime whose arena the verdict uses, why that one): the one asked for, else the device's, else
    TFLM with its reference kernels."""
    if runtime is not None:
        name, why = runtime, "asked for"
    elif device is not None and device.runtime:
        name, why = device.runtime, f"{device.name}'s runtime"
    else:
        return DEFAULT_RUNTIME, "the default"
    if name != "tinyopt-c":
        name = get_runtime(name).name  # aliases (x-cube-ai, ...) and the unknown-runtime message
    if name not in ARENA_RUNTIMES:
        raise ConfigError(f"no arena model for runtime '{name}'", where="--runtime",
                          fix=f"use one of {', '.join(ARENA_RUNTIMES)}")
    return name, why


def measure(graph: Graph, dtype: str | None = None, runtime: str = DEFAULT_RUNTIME,
            optimize: str = "balanced") -> dict:
    """The device-independent figures of a graph (what the verdict's what-ifs re-run); ``runtime`` is
    the runtime whose arena is priced (``optimize``: the C library's plan mode)."""
    graph = as_converted(graph, dtype)
    eff = dtype or _cost.model_dtype(graph)
    rows = _cost.layer_costs(graph, dtype)
    tot = _cost.totals(rows)
    act_name, act_bytes = _cost.largest_activation(graph, dtype)
    # Textbook parameter bytes: count × one width when priced "as if" a dtype (the seeds' convention),
    # else every tensor at its own dtype (int32 biases of an int8 file, int8 weights of a hybrid file).
    tb_params = int(round(tot.params * _textbook_width(eff))) if dtype else tot.param_bytes
    arena = runtime_arena(graph, runtime, dtype, optimize)
    plan = arena.plan if arena.plan is not None else plan_arena(graph, dtype)
    flash = flash_estimate(graph, rows, dtype, runtime)
    return {"graph": graph, "dtype": eff, "rows": rows, "totals": tot, "largest": (act_name, act_bytes),
            "textbook_params": tb_params, "textbook_total": tb_params + act_bytes,
            "plan": plan, "arena": arena, "flash": flash}


def _ram(m: dict, memory: str) -> int:
    return m["textbook_total"] if memory == "textbook" else m["arena"].bytes


def _budget_checks(m: dict, device: Device, memory: str) -> list[tuple[str, int, int]]:
    """(what, needed, available) for every budget the device declares."""
    checks = []
    if device.sram_bytes:
        what = ("textbook memory (params + largest activation)" if memory == "textbook"
                else f"{m['arena'].runtime} arena")
        checks.append((f"RAM: {what}", _ram(m, memory), device.sram_bytes))
    if device.flash_bytes:
        checks.append(("flash: weights + quant params + code", m["flash"]["total"], device.flash_bytes))
    return checks


def _fits(m: dict, device: Device, memory: str) -> bool | None:
    checks = _budget_checks(m, device, memory)
    return None if not checks else all(need <= have for _, need, have in checks)


def _suggest(graph: Graph, m: dict, device: Device, memory: str, dtype: str | None) -> list[str]:
    """What would make it fit: int8, structured pruning, both. Each figure is recomputed, not scaled."""
    from tinyopt.analysis.whatif import scale_filters

    out = []
    budget = " and ".join(f"{kb(h)} {w.split(':')[0]}" for w, _, h in _budget_checks(m, device, memory))

    def describe(label: str, mm: dict) -> str:
        parts = [f"RAM {kb(_ram(mm, memory))}"]
        if device.flash_bytes:
            parts.append(f"flash {kb(mm['flash']['total'])}")
        verdict = "fits" if _fits(mm, device, memory) else "does not fit"
        return f"{label}: needs {', '.join(parts)} of {budget}: {verdict}"

    plan_mode = m["arena"].optimize or "balanced"
    int8 = None
    if m["dtype"] != "int8":
        int8 = measure(graph, "int8", m["arena"].runtime, plan_mode)
        out.append(describe("int8", int8))
    for with_int8 in ((False, True) if int8 is not None else (False,)):
        best = None
        for keep in PRUNE_STEPS:
            g = scale_filters(graph, keep)
            if g is None:
                break
            mm = measure(g, "int8" if with_int8 else dtype, m["arena"].runtime, plan_mode)
            if _fits(mm, device, memory):
                best = (keep, g, mm)
                break
        if best is not None:
            keep, g, mm = best
            label = f"prune conv/dense filters to {keep * 100:g} %"
            label += f" ({mm['totals'].params:,} params)" + (" + int8" if with_int8 else "")
            out.append(describe(label, mm))
        elif scale_filters(graph, PRUNE_STEPS[-1]) is not None:
            out.append(f"pruning conv/dense filters to {PRUNE_STEPS[-1] * 100:g} %"
                       f"{' + int8' if with_int8 else ''} is not enough")
    return out


def _estimate_latency(a: Analysis, m: dict, device: Device, runtime: str | None, rt_arena: str,
                      library_graph: Graph, dtype: str | None) -> None:
    """Fill ``a``'s latency fields: the rate model, the runtime's cycle model when one is asked for or the
    device names one, or the C library's own estimate (``library_graph``: what deploy would build)."""
    eff, tot = m["dtype"], m["totals"]
    a.latency_rate_s = rate_latency_s(tot.flops, device, eff)
    # the cycle model of the runtime asked for or the device's (none for the C library: rate model)
    if rt_arena != "tinyopt-c" and (runtime is not None or device.runtime):
        rt = get_runtime(rt_arena)
        cal_int8 = calibrated_latency_s(m["rows"], device, rt)
        if eff == "int8":
            a.latency_calibrated_s = cal_int8
        elif cal_int8 is not None and a.latency_rate_s:
            # No float kernel is calibrated: scale the float rate model by the correction the
            # int8 cycle model makes to the int8 rate model for this same network (per-op overheads,
            # kernel mix), so float and int8 figures come from one model and stay comparable.
            rate_int8 = rate_latency_s(tot.flops, device, "int8")
            if rate_int8:
                a.latency_calibrated_s = a.latency_rate_s * cal_int8 / rate_int8
    if rt_arena == "tinyopt-c":  # the built library's own estimated cycles
        from tinyopt.analysis.latency import c_library_latency_s

        est = c_library_latency_s(library_graph, device, dtype, m["arena"].optimize or "balanced")
        if est is not None:
            a.latency_calibrated_s, a.latency_model = est[0], est[1]
    if a.latency_model is not None:
        a.latency_s = a.latency_calibrated_s
    elif a.latency_calibrated_s is not None:
        a.latency_s, a.latency_model = a.latency_calibrated_s, f"calibrated ({a.runtime})"
    elif a.latency_rate_s is not None:
        a.latency_s, a.latency_model = a.latency_rate_s, "rate"


def analyze(graph: Graph, device: Device | str | None = None, dtype: str | None = None,
            memory: str = "planned", runtime: str | None = None, suggest: bool = True,
            battery_mah: float | None = None, battery_v: float = 3.0, inferences_per_s: float = 1.0,
            train_batch: int = 1, optimize: str = "balanced") -> Analysis:
    """Measure ``graph`` and, with a device, decide whether it fits and what would make it fit.

    ``device`` is a ``Device`` or a catalog name. ``dtype=None`` prices every tensor at its own dtype;
    ``'int8'``/``'float32'`` prices the model "as if" converted (int8: BN folded and ReLU fused as the
    converter does, weights and activations 1 byte, biases int32, per-channel quant params).
    ``train_batch`` sizes the training-memory estimate. ``optimize`` is the C library's plan mode
    (``speed``, ``balanced``, ``ram``: as ``deploy --optimize``) when the runtime is ``tinyopt-c``.
    """
    from tinyopt.analysis.explain import explain_lines

    _check_options(dtype, memory)
    if isinstance(device, str):
        from tinyopt.devices import get_device

        device = get_device(device)
    rt_arena, _why = arena_runtime(runtime, device)
    m = measure(graph, dtype, rt_arena, optimize)
    trained, graph = graph, m["graph"]  # as converted: BN folded and activations fused when priced as int8
    eff, tot = m["dtype"], m["totals"]
    arena: RuntimeArena = m["arena"]
    arena.basis += f" ({_why})"
    a = Analysis(
        model=graph.name, source=graph.source, dtype=eff, model_dtype=_cost.model_dtype(graph), memory=memory,
        params=tot.params, macs=tot.macs, flops=tot.flops, other_ops=tot.other_ops,
        param_bytes=tot.param_bytes, textbook_param_bytes=m["textbook_params"],
        largest_activation_bytes=m["largest"][1], largest_activation_tensor=m["largest"][0],
        textbook_total_bytes=m["textbook_total"], arena_bytes=m["arena"].bytes,
        flash_bytes=m["flash"]["total"], flash_breakdown=m["flash"], layers=m["rows"], plan=m["plan"],
        arena=arena, device=device, runtime=rt_arena)
    # Training happens on the float model as written (BN unfolded), whatever dtype inference is priced at.
    trained_params = tot.params if trained is graph else _cost.totals(_cost.layer_costs(trained)).params
    a.training = {opt: training_memory(trained, trained_params, opt, train_batch).to_dict()
                  for opt in ("sgd", "momentum", "adam")}
    if device is not None:
        _estimate_latency(a, m, device, runtime, rt_arena, trained if eff == "int8" else graph, dtype)
        a.energy_mj = energy_mj(a.latency_s, device)
        if battery_mah is not None and a.energy_mj is not None:
            a.battery_life_h = battery_life_h(a.energy_mj, inferences_per_s, battery_mah, battery_v,
                                              device.sleep_mw or 0.0, a.latency_s or 0.0)
            busy = min((a.latency_s or 0.0) * inferences_per_s, 1.0)
            a.battery = {"mah": battery_mah, "v": battery_v, "inferences_per_s": inferences_per_s,
                         "sleep_mw": device.sleep_mw or 0.0,
                         "average_mw": a.energy_mj * inferences_per_s + (device.sleep_mw or 0.0) * (1 - busy)}
        a.fits = _fits(m, device, memory)
        for what, need, have in _budget_checks(m, device, memory):
            if need <= have:
                a.reasons.append(f"{what} needs {kb(need)} ≤ {kb(have)}: fits ({kb(have - need)} free, "
                                 f"{need / have:.0%} used)")
            else:
                a.reasons.append(f"{what} needs {kb(need)} > {kb(have)}: over by {kb(need - have)} "
                                 f"({need / have:.2f}× the budget)")
        if not a.reasons:
            a.reasons.append(f"device '{device.name}' declares no SRAM or flash size: memory not checked")
        if suggest and a.fits is False:
            a.suggestions = _suggest(graph, m, device, memory, dtype)
    a.explain = explain_lines(graph, a, m)
    return a
