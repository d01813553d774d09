"""Latency and energy per inference.

Two models:

1. The seeds' *rate model*: FLOPs ÷ the device's FP32 FLOPS, or int8 ops ÷ its int8 OPS, where the
   work is the conv/dense FLOPs (= 2 × MACs; an int8 MAC is 2 ops too). This is the exam's arithmetic.
2. A *calibrated cycle model* per runtime class: cycles = Σ MACs × cycles_per_mac[class]
   + other ops × cycles_per_other_op + nodes × per-op overhead, scaled by the core's cycle factor and
   divided by the clock. Its constants are solved from published MLPerf Tiny latencies (``calibrate``)
   and stored in the device catalog with their source.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyopt import ops
from tinyopt.analysis.cost import LayerCost
from tinyopt.devices import Device, Runtime
from tinyopt.errors import ConfigError

CLASSES = ("conv", "depthwise", "fc")


def rate_latency_s(flops: int, device: Device, dtype: str) -> float | None:
    """Seeds' rate model: work ÷ rate (FP32 FLOPS for float, int8 OPS for int8); None when unknown."""
    rate = device.int8_ops if dtype == "int8" else device.fp32_flops
    return None if not rate else flops / rate


@dataclass
class CycleBreakdown:
    mac_cycles: dict
    other_cycles: float
    overhead_cycles: float
    cycle_factor: float

    @property
    def total(self) -> float:
        return (sum(self.mac_cycles.values()) + self.other_cycles + self.overhead_cycles) * self.cycle_factor


def mac_counts(rows: list[LayerCost]) -> dict[str, int]:
    """MACs per op class: conv (CONV_2D), depthwise (DEPTHWISE_CONV_2D), fc (FULLY_CONNECTED).

    Three classes because the kernels differ in kind: a conv reuses each weight over the output map,
    a depthwise conv has short inner loops, a dense layer reads every weight once (memory bound).
    """
    out = dict.fromkeys(CLASSES, 0)
    for r in rows:
        kind = ops.get(r.type).latency_class
        if kind:
            out[kind] += r.macs
    return out


def cycles(rows: list[LayerCost], runtime: Runtime, cycle_factor: float = 1.0) -> CycleBreakdown:
    macs = mac_counts(rows)
    return CycleBreakdown(
        mac_cycles={k: v * runtime.cycles_per_mac[k] for k, v in macs.items()},
        other_cycles=sum(r.other_ops for r in rows) * runtime.cycles_per_other_op,
        overhead_cycles=len(rows) * runtime.per_op_overhead_cycles,
        cycle_factor=cycle_factor)


def calibrated_latency_s(rows: list[LayerCost], device: Device, runtime: Runtime) -> float | None:
    """Cycle-model latency on ``device`` (needs its core and clock); None when they are unknown."""
    if not device.clock_mhz or device.cycle_factor is None:
        return None
    return cycles(rows, runtime, device.cycle_factor).total / (device.clock_mhz * 1e6)


def calibrate(points: list[tuple[list[LayerCost], float]], clock_hz: float, cycles_per_other_op: float,
              per_op_overhead_cycles: float) -> dict[str, float]:
    """Solve cycles_per_mac of the three MAC classes from measured latencies (seconds) of models.

    With three models whose conv/depthwise/fc mixes differ, the linear system is square and solved
    exactly; with more, in the least-squares sense. Raises ConfigError if it is singular or a solved
    constant is not positive (the measurements contradict the fixed assumptions).
    """
    a, b = [], []
    for rows, seconds in points:
        macs = mac_counts(rows)
        fixed = sum(r.other_ops for r in rows) * cycles_per_other_op + len(rows) * per_op_overhead_cycles
        a.append([macs[c] for c in CLASSES])
        b.append(seconds * clock_hz - fixed)
    sol, _, rank, _ = np.linalg.lstsq(np.array(a, dtype=float), np.array(b, dtype=float), rcond=None)
    if rank < len(CLASSES) or (sol <= 0).any():
        raise ConfigError(f"calibration gives non-physical cycles per MAC {sol.tolist()}", where="calibrate",
                          fix="use models with different conv/depthwise/dense mixes and consistent latencies")
    return {c: float(v) for c, v in zip(CLASSES, sol)}


def calibrate_cycle_factor(points: list[tuple[list[LayerCost], float]], runtime: Runtime,
                           clock_hz: float) -> float:
    """A core's cycle factor: measured cycles on it ÷ the calibration core's modelled cycles, summed over
    models (so longer runs weigh more). ``points`` are (rows, measured seconds on that core)."""
    measured = sum(seconds * clock_hz for _, seconds in points)
    modelled = sum(cycles(rows, runtime, 1.0).total for rows, _ in points)
    if not modelled > 0:
        raise ConfigError("the models have no modelled cycles", where="calibrate_cycle_factor",
                          fix="calibrate on models with conv or dense layers")
    return measured / modelled


def energy_mj(latency_s: float | None, device: Device) -> float | None:
    """Energy per inference: active power (mW) × latency (s) = mJ."""
    if latency_s is None or not device.active_mw:
        return None
    return device.active_mw * latency_s


def battery_life_h(energy_per_inference_mj: float, inferences_per_s: float, battery_mah: float,
                   battery_v: float, sleep_mw: float = 0.0, latency_s: float = 0.0) -> float:
    """Hours a battery lasts running ``inferences_per_s`` inferences and sleeping in between.

    Average power = energy × rate + sleep power × idle fraction; capacity = mAh × V × 3.6 J.
    """
    for key, v in (("battery capacity", battery_mah), ("battery voltage", battery_v)):
        if not v > 0:
            raise ConfigError(f"{key} must be positive, got {v!r}", where="battery",
                              fix=f"give a {key} above 0")
    if inferences_per_s < 0 or energy_per_inference_mj < 0:
        raise ConfigError("the inference rate and energy must not be negative", where="battery",
                          fix="give a rate of 0 or more inferences per second")
    busy = min(latency_s * inferences_per_s, 1.0)
    avg_mw = energy_per_inference_mj * inferences_per_s + (sleep_mw or 0.0) * (1.0 - busy)
    if avg_mw <= 0:
        return float("inf")
    capacity_mj = battery_mah * battery_v * 3600.0  # mAh × V = mWh; × 3600 s = mJ
    return capacity_mj / avg_mw / 3600.0


_C_CYCLES: dict[str, int] = {}  # graph fingerprint -> estimated Cortex-M4 cycles of its C library


def c_library_latency_s(graph, device, dtype: str | None, optimize: str = "balanced",
                        ) -> tuple[float, str] | None:
    """(seconds, basis) of tinyopt's C library on ``device``: the Cortex-M4 cycle estimate of the library
    built for MPS2 AN386 and run under qemu (``export.c.board.estimate_graph``: the executed instruction
    stream timed per instruction class from the M4 TRM), times the device core's cycle factor, at its clock.
    None where the model cannot be built (float priced as float) or the toolchain/qemu is missing (the
    caller falls back to the calibrated model)."""
    import hashlib

    from tinyopt.analysis.arena import _synthetic_int8
    from tinyopt.analysis.cost import model_dtype
    from tinyopt.errors import TinyoptError

    if device is None or not device.clock_mhz or device.cycle_factor is None:
        return None
    g = graph
    if model_dtype(graph) not in ("int8", "int16"):
        if dtype != "int8":
            return None
        g = _synthetic_int8(graph)
    try:
        from tinyopt.export.tflite import graph_to_tflite_bytes

        key = hashlib.sha256(graph_to_tflite_bytes(g)).hexdigest() + optimize
    except TinyoptError:
        return None
    if key not in _C_CYCLES:
        from tinyopt.export.c.board import estimate_graph

        try:
            est, _ = estimate_graph(g, optimize=optimize)
        except TinyoptError:
            return None
        _C_CYCLES[key] = int(est.cycles)
    cycles = _C_CYCLES[key] * device.cycle_factor
    return cycles / (device.clock_mhz * 1e6), (f"tinyopt-c: {_C_CYCLES[key]:,} estimated "
                                               f"Cortex-M4 cycles of the {optimize} plan's "
                                                f"built library (qemu trace) x {device.cycle_factor:g} for "
                                                f"{device.core} at {device.clock_mhz:g} MHz")
