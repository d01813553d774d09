"""Human-readable rendering of an ``Analysis`` (rich tables), for ``tinyopt analyze``."""

from __future__ import annotations

from typing import Literal

from tinyopt.analysis.cost import short_name
from tinyopt.analysis.fit import Analysis, analyze, kb

__all__ = ["Analysis", "analyze", "render"]


def _num(x) -> str:
    return "-" if x is None else f"{x:,}"


def _ms(s: float | None) -> str:
    return "-" if s is None else f"{s * 1e3:,.2f} ms"


def _arena_rows(a: Analysis) -> list[tuple[str, str]]:
    """The arena of the runtime the verdict uses, and where its bytes go."""
    r = a.arena
    if r is None:
        return [("planned activation arena", kb(a.arena_bytes))]
    rows = [(f"arena for {r.runtime}", kb(r.bytes))]
    if r.head_bytes is not None and r.tail_bytes is not None and r.bare_metal_bytes is not None:
        rows += [("  head: tensors + scratch buffers (greedy plan)", kb(r.head_bytes)),
                 ("  tail: structs, OpData, per-channel multipliers", kb(r.tail_bytes)),
                 ("  same runtime on a 32-bit Cortex-M build", kb(r.bare_metal_bytes))]
    return rows


def render(a: Analysis, console, explain: bool = False, plan: bool = False) -> None:
    """Print the layer table, the totals, the verdict and (optionally) the worked solution and the plan."""
    from rich.table import Table

    title = f"{a.model} ({a.source or 'in memory'}) — dtype {a.dtype}"
    if a.dtype != a.model_dtype:
        title += f" (as if converted from {a.model_dtype})"
    t = Table(title=title, title_justify="left")
    columns: tuple[tuple[str, Literal["left", "right"]], ...] = (
        ("layer", "left"), ("type", "left"), ("output", "left"), ("params", "right"), ("MACs", "right"),
        ("other ops", "right"), ("param bytes", "right"), ("activation bytes", "right"))
    for col, just in columns:
        t.add_column(col, justify=just)
    for r in a.layers:
        t.add_row(short_name(r.name), r.type, "×".join(str(d) for d in r.output_shape), _num(r.params),
                  _num(r.macs), _num(r.other_ops), _num(r.param_bytes), _num(r.activation_bytes))
    t.add_row("total", "", "", _num(a.params), _num(a.macs), _num(a.other_ops), _num(a.param_bytes), "",
              style="bold")
    console.print(t)

    s = Table(title="Summary (KB = 1024 bytes)", title_justify="left", show_header=False)
    s.add_column("figure")
    s.add_column("value", justify="right")
    rows = [
        ("parameters", _num(a.params)),
        ("MACs / FLOPs (2×MACs)", f"{a.macs:,} / {a.flops:,} ({a.flops / 1e6:,.2f} M)"),
        ("parameter memory (textbook, count × width)", kb(a.textbook_param_bytes)),
        ("parameter memory (real dtypes)", kb(a.param_bytes)),
        (f"largest activation ({short_name(a.largest_activation_tensor)})", kb(a.largest_activation_bytes)),
        ("textbook total (params + largest activation)", kb(a.textbook_total_bytes)),
        *_arena_rows(a),
        ("flash (weights + quant params + code estimate)", kb(a.flash_bytes)),
    ]
    if a.device is not None:
        d = a.device
        rows += [
            ("device", f"{d.name} ({d.title})"),
            ("SRAM / flash", f"{kb(d.sram_bytes) if d.sram_bytes else '-'} / "
                             f"{kb(d.flash_bytes) if d.flash_bytes else '-'}"),
            (f"latency ({a.latency_model or 'unknown'})", _ms(a.latency_s)),
            ("latency, rate model", _ms(a.latency_rate_s)),
            ("latency, calibrated cycle model", _ms(a.latency_calibrated_s)),
            ("energy per inference", "-" if a.energy_mj is None else f"{a.energy_mj:,.4f} mJ"),
        ]
        if a.battery_life_h is not None:
            rows.append(("battery life", f"{a.battery_life_h:,.1f} h ({a.battery_life_h / 24:,.1f} days)"))
    tr = a.training["adam"]
    rows.append((f"training memory (Adam, batch {tr['batch']})", kb(tr["total_bytes"])))
    for k, v in rows:
        s.add_row(k, v)
    console.print(s)

    if a.device is not None:
        verdict = {True: "[bold green]FITS[/]", False: "[bold red]DOES NOT FIT[/]",
                   None: "not checked"}[a.fits]
        memory = a.memory if a.memory == "textbook" or a.arena is None else f"{a.arena.runtime} arena"
        console.print(f"Verdict on {a.device.name} ({memory}): {verdict}")
        for reason in a.reasons:
            console.print(f"  - {reason}")
        if a.suggestions:
            console.print("What would make it fit:")
            for suggestion in a.suggestions:
                console.print(f"  - {suggestion}")
    if explain:
        console.print("Worked solution:")
        for line in a.explain:
            console.print(f"  {line}")
    if a.arena is not None:
        console.print(f"Arena: {a.arena.basis}.")
    if plan:
        what = (f"{a.arena.runtime} head" if a.arena is not None
                and a.arena.head_bytes is not None else "activations")
        console.print(f"Arena plan, {what} (rows: node steps; columns: arena offsets):")
        console.print(a.plan.planner.plan_text(), markup=False)
