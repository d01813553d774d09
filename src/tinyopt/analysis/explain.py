"""``--explain``: every figure as a worked solution, formula with the numbers substituted.

Example (the seeds' exam): ``conv2d_0 params = (3×3×1+1)×16 = 160``.
"""

from __future__ import annotations

from tinyopt import ops
from tinyopt.analysis.cost import MAC_OPS, activation_dtype, node_macs, short_name
from tinyopt.graph.ir import DTYPE_BYTES, Graph


def _n(x) -> str:
    return f"{x:,}"


def _dims(shape) -> str:
    return "×".join(_n(d) for d in shape)


def _kb(nbytes) -> str:
    return f"{nbytes / 1024:,.2f} KB"


def param_formula(graph: Graph, node) -> str | None:
    """The parameter count of a node as a formula, e.g. '(3×3×1+1)×16 = 160' (its record's)."""
    return ops.get(node.op).param_formula(graph, node)


def mac_formula(graph: Graph, node) -> str | None:
    return ops.get(node.op).mac_formula(graph, node)


def arena_lines(a) -> list[str]:
    """The arena the verdict uses, as a sum of its parts."""
    plan, r = a.plan, a.arena
    if r is None or r.head_bytes is None:
        head = f"{_n(a.arena_bytes)} B = {_kb(a.arena_bytes)}"
        if r is not None:
            return [f"arena ({r.runtime}) = {head}: {r.basis}"]
        return [f"planned arena = {head} (greedy by size, 16-byte aligned, {len(plan.tensors)} buffers; "
                f"without sharing {_n(plan.planner.sum_bytes())} B)"]
    scratch = sum(1 for t in plan.tensors if " scratch " in t)
    parts = " + ".join(f"{k} {_n(v)}" for k, v in r.tail_parts.items())
    out = [f"{r.runtime} arena head = {_n(r.head_bytes)} B (TFLM's greedy plan of "
           f"{len(plan.tensors) - scratch} tensors and {scratch} scratch buffers, 16-byte aligned; without "
           f"sharing {_n(plan.planner.sum_bytes())} B)",
           f"{r.runtime} arena tail = {parts} = {_n(r.tail_bytes)} B",
           f"{r.runtime} arena = smallest arena that takes head, tail and each Prepare's temporaries = "
           f"{_n(r.bytes)} B = {_kb(r.bytes)} (tflite-micro's Python build; 32-bit Cortex-M build "
           f"{_n(r.bare_metal_bytes)} B)"]
    return out


def explain_lines(graph: Graph, a, m: dict) -> list[str]:
    """Worked-solution lines for an ``Analysis`` ``a`` (``m`` is the measurement it came from)."""
    lines = [f"KB = 1024 bytes; dtype {a.dtype}"
             + ("" if a.dtype == a.model_dtype else f" (as if converted from {a.model_dtype})")]
    for node in graph.nodes:
        pf, mf = param_formula(graph, node), mac_formula(graph, node)
        label = short_name(node.name)
        if pf:
            lines.append(f"{label} params = {pf}")
        if mf:
            macs = node_macs(graph, node)
            lines.append(f"{label} MACs = {mf}; FLOPs = 2×{_n(macs)} = {_n(2 * macs)}")
    mac_rows = [r for r in a.layers if r.type in MAC_OPS]
    terms = [_n(r.params) for r in a.layers if r.params]
    lines.append("params = " + (" + ".join(terms) + " = " if len(terms) > 1 else "") + _n(a.params))
    terms = [_n(r.flops) for r in mac_rows]
    lines.append("FLOPs = " + (" + ".join(terms) + " = " if len(terms) > 1 else "") + f"{_n(a.flops)} "
                 f"({a.flops / 1e6:,.2f} M; other ops counted apart: {_n(a.other_ops)})")
    width = DTYPE_BYTES[a.dtype]
    if a.textbook_param_bytes == int(round(a.params * width)):
        lines.append(f"parameter memory (textbook) = {_n(a.params)} × {width:g} B = "
                     f"{_n(a.textbook_param_bytes)} B = {_kb(a.textbook_param_bytes)}")
    else:
        lines.append("parameter memory (textbook, each tensor at its own dtype) = "
                     f"{_n(a.textbook_param_bytes)} B = {_kb(a.textbook_param_bytes)}")
    if a.param_bytes != a.textbook_param_bytes:
        lines.append(f"parameter memory at real dtypes (int32 biases) = {_n(a.param_bytes)} B = "
                     f"{_kb(a.param_bytes)}")
    t = graph.tensors[a.largest_activation_tensor]
    aw = DTYPE_BYTES[activation_dtype(t, None if a.dtype == a.model_dtype else a.dtype)]
    lines.append(f"largest activation ({short_name(t.name)}) = {_dims(t.shape[1:] or t.shape)} × {aw:g} B = "
                 f"{_n(a.largest_activation_bytes)} B = {_kb(a.largest_activation_bytes)}")
    lines.append(f"textbook total = {_kb(a.textbook_param_bytes)} + {_kb(a.largest_activation_bytes)} = "
                 f"{_n(a.textbook_total_bytes)} B = {_kb(a.textbook_total_bytes)}")
    lines += arena_lines(a)
    f = a.flash_breakdown
    lines.append(f"flash = weights {_n(f['weights'])} + other constants {_n(f['other_constants'])} + quant "
                 f"params {_n(f['quant_params'])} + code {_n(f['code'])} (estimate) = {_n(f['total'])} B = "
                 f"{_kb(f['total'])}")
    if f.get("weights_stored_as"):
        lines.append(f"  encoded weights counted as stored by {f['weights_stored_as']}")
    d = a.device
    if d is not None:
        rate = d.int8_ops if a.dtype == "int8" else d.fp32_flops
        unit = "int8 OPS" if a.dtype == "int8" else "FP32 FLOPS"
        if a.latency_rate_s is not None:
            lines.append(f"latency (rate model) = {_n(a.flops)} ops ÷ {_n(int(rate))} {unit} = "
                         f"{a.latency_rate_s:.3f} s = {a.latency_rate_s * 1e3:,.1f} ms")
        if a.latency_calibrated_s is not None and a.runtime == "tinyopt-c":
            lines.append(f"latency ({a.latency_model}) = {a.latency_calibrated_s * 1e3:,.2f} ms")
        elif a.latency_calibrated_s is not None:
            from tinyopt.analysis.latency import mac_counts
            from tinyopt.devices import get_runtime

            rt = get_runtime(a.runtime)
            by_class = mac_counts(a.layers)
            terms = [f"{_n(n)} {c} MACs × {rt.cycles_per_mac[c]:g}" for c, n in by_class.items() if n]
            terms += [f"{_n(a.other_ops)} other ops × {rt.cycles_per_other_op:g}",
                      f"{len(a.layers)} nodes × {rt.per_op_overhead_cycles:g}"]
            cyc = a.latency_calibrated_s * d.clock_mhz * 1e6
            lines.append(f"latency (calibrated, {a.runtime} on {d.core} @ {d.clock_mhz:g} MHz) = "
                         f"({' + '.join(terms)}) cycles × core factor {d.cycle_factor:g} = {cyc:,.0f} cycles "
                         f"÷ {d.clock_mhz:g} MHz = {a.latency_calibrated_s * 1e3:,.2f} ms")
        if a.energy_mj is not None:
            lines.append(f"energy = {d.active_mw:g} mW × {a.latency_s:.4f} s = {a.energy_mj:,.3f} mJ")
        if a.battery_life_h is not None:
            b = a.battery
            busy = min(a.latency_s * b["inferences_per_s"], 1.0)
            lines.append(f"battery life = {b['mah']:g} mAh × {b['v']:g} V ÷ ({a.energy_mj:,.3f} mJ × "
                         f"{b['inferences_per_s']:g}/s + {b['sleep_mw']:g} mW × {1 - busy:.3f} idle) = "
                         f"{b['mah'] * b['v']:,.0f} mWh ÷ {b['average_mw']:,.4f} mW = "
                         f"{a.battery_life_h:,.1f} h")
        if d.sram_bytes:
            ram = a.ram_bytes
            verdict = "fits" if ram <= d.sram_bytes else "does not fit"
            rel = "≤" if ram <= d.sram_bytes else ">"
            what = a.memory if a.memory == "textbook" or a.arena is None else f"{a.arena.runtime} arena"
            lines.append(f"RAM ({what}) {_kb(ram)} {rel} SRAM {_kb(d.sram_bytes)} → {verdict}")
        if d.flash_bytes:
            rel = "≤" if a.flash_bytes <= d.flash_bytes else ">"
            lines.append(f"flash {_kb(a.flash_bytes)} {rel} {_kb(d.flash_bytes)}")
    tr = a.training["adam"]
    lines.append(f"training memory (Adam, batch {tr['batch']}) = weights {_n(tr['weights_bytes'])} + "
                 f"gradients {_n(tr['gradients_bytes'])} + 2 states {_n(tr['optimizer_bytes'])} + stored "
                 f"activations {_n(tr['activations_bytes'] // tr['batch'])} × {tr['batch']} = "
                 f"{_n(tr['total_bytes'])} B = {_kb(tr['total_bytes'])}")
    return lines
