"""The report's figures, each a function from plain numbers to a matplotlib Figure (Agg backend).

Inputs are lists and dicts, not tinyopt objects, so every plot can be tested with hand-made numbers and
reused by any command that has the figures.
"""

from __future__ import annotations

import numpy as np

PALETTE = ["#2f5bea", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f"]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False,
                         "axes.grid": True, "grid.alpha": 0.25, "svg.hashsalt": "tinyopt"})
    return plt


def layer_bars(layers: list[dict], flash_limit: int | None = None, ram_limit: int | None = None):
    """Three panels per layer: parameter bytes (against flash), MACs, activation bytes (against SRAM).

    ``layers``: dicts with ``name``, ``param_bytes``, ``macs``, ``act_bytes``. Limits are drawn as dashed
    lines when a layer comes within a decade of them, otherwise noted in the title (a 1 MB line would
    squash 1 KB bars flat).
    """
    plt = _plt()
    names = [str(r["name"]) for r in layers]
    y = np.arange(len(names))
    fig, axes = plt.subplots(1, 3, figsize=(12, 0.32 * len(names) + 1.6), sharey=True)
    panels = [("param_bytes", "parameter bytes", flash_limit, "flash"), ("macs", "MACs", None, None),
              ("act_bytes", "output activation bytes", ram_limit, "SRAM")]
    for ax, (key, label, limit, lname), color in zip(axes, panels, PALETTE):
        vals = np.array([float(r.get(key, 0) or 0) for r in layers])
        ax.barh(y, vals, color=color, height=0.65)
        title = label
        if limit:
            if vals.max(initial=0) * 10 >= limit:
                ax.axvline(limit, color="#b3261e", ls="--", lw=1.2)
                ax.text(limit, -0.9, f" {lname} {limit / 1024:,.0f} KB", color="#b3261e", fontsize=8)
            else:
                title += f"\n(largest {vals.max(initial=0) / limit:.2%} of {lname} {limit / 1024:,.0f} KB)"
        ax.set_title(title, fontsize=9)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
    axes[0].set_yticks(y, names)
    axes[0].invert_yaxis()
    fig.tight_layout()
    return fig


def arena_plan(buffers: list[dict], arena_bytes: int | None = None, ram_limit: int | None = None, *,
               head_bytes: int | None = None, runtime: str | None = None):
    """The arena over time: each buffer a rectangle from its first to last use (x, operator index) at its
    offset (y, bytes). ``buffers``: dicts with ``name``, ``offset``, ``size``, ``first``, ``last``.
    ``runtime`` names whose arena it is; with ``head_bytes`` (TFLM) the buffers are its head and the band
    above them up to ``arena_bytes`` is the persistent tail."""
    plt = _plt()
    from matplotlib.patches import Rectangle

    fig, ax = plt.subplots(figsize=(8, 3.6))
    top = 0
    for i, b in enumerate(buffers):
        w = b["last"] - b["first"] + 1
        ax.add_patch(Rectangle((b["first"] - 0.45, b["offset"]), w - 0.1, b["size"], alpha=0.85,
                               facecolor=PALETTE[i % len(PALETTE)], edgecolor="white", lw=0.8))
        if b["size"] > 0.06 * max(arena_bytes or 1, 1):
            ax.text(b["first"] - 0.4, b["offset"] + b["size"] / 2, str(b["name"])[:18], fontsize=7,
                    va="center", color="white")
        top = max(top, b["offset"] + b["size"])
    end = max([b["last"] for b in buffers], default=0)
    ax.set_xlim(-0.6, end + 0.6)
    peak = arena_bytes or top
    if head_bytes is not None and arena_bytes and arena_bytes > head_bytes:
        ax.axhspan(head_bytes, arena_bytes, color="#8a93a6", alpha=0.35, lw=0)
        ax.text(-0.5, (head_bytes + arena_bytes) / 2, f"persistent tail {arena_bytes - head_bytes:,} B "
                "(structs, OpData, per-channel multipliers; a smaller arena fails)", fontsize=7, va="center")
    ax.axhline(peak, color="#1d2433", lw=1, ls=":")
    label = f"{runtime} arena" if runtime else "arena"
    ax.text(end + 0.5, peak, f"{label} {peak:,} B", ha="right", va="bottom", fontsize=8)
    ymax = peak * 1.15 if peak else 1
    if ram_limit and ram_limit <= ymax * 3:
        ax.axhline(ram_limit, color="#b3261e", ls="--", lw=1.2)
        ymax = max(ymax, ram_limit * 1.05)
    ax.set_ylim(0, ymax)
    ax.set_xlabel("operator (execution order)")
    ax.set_ylabel("arena offset (bytes)")
    ax.set_title(f"{runtime + ' ' if runtime else ''}arena plan: buffers alive over time", fontsize=9)
    fig.tight_layout()
    return fig


def weight_histograms(series: dict[str, np.ndarray], bins: int = 81):
    """Overlaid weight distributions, e.g. float / pruned / int8 (dequantized): pruning shows as a spike
    at zero, quantization as a comb of levels. Log y-axis so the tails stay visible."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(series), figsize=(4 * len(series), 2.8), squeeze=False)
    lo = min((float(np.min(v)) for v in series.values() if np.size(v)), default=-1)
    hi = max((float(np.max(v)) for v in series.values() if np.size(v)), default=1)
    edges = np.linspace(lo, hi, bins + 1)
    for ax, (name, vals), color in zip(axes[0], series.items(), PALETTE):
        vals = np.asarray(vals).ravel()
        counts, _ = np.histogram(vals, bins=edges)
        ax.stairs(counts, edges, fill=True, color=color, alpha=0.9)  # one artist, not one patch per bin
        zeros = float(np.mean(vals == 0)) if vals.size else 0.0
        ax.set_yscale("log")
        ax.set_ylim(bottom=0.8)
        ax.set_title(f"{name}  ({vals.size:,} weights, {zeros:.0%} zero)", fontsize=9)
        ax.set_xlabel("weight value")
    fig.tight_layout()
    return fig


def tradeoff(variants: list[dict]):
    """Accuracy against model size (flash bytes) and latency, one point per variant."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, key, label in ((axes[0], "flash_bytes", "flash (bytes)"),
                           (axes[1], "latency_ms", "latency (ms)")):
        for i, v in enumerate(variants):
            x, y = v.get(key), v.get("accuracy")
            if x is None or y is None:
                continue
            ax.scatter([x], [100 * y], s=70, color=PALETTE[i % len(PALETTE)], zorder=3,
                       marker="o" if v.get("fits", True) else "x")
            ax.annotate(v["variant"], (x, 100 * y), textcoords="offset points", xytext=(6, 4), fontsize=8)
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy (%)")
        ax.margins(0.25)
    axes[0].set_title("accuracy vs size", fontsize=9)
    axes[1].set_title("accuracy vs latency", fontsize=9)
    fig.tight_layout()
    return fig


def confusion(matrix: np.ndarray, classes: list[str], title: str = "confusion matrix"):
    """Counts with row-normalised colour (true class per row), numbers written in each cell."""
    plt = _plt()
    m = np.asarray(matrix)
    norm = m / np.maximum(m.sum(1, keepdims=True), 1)
    size = 1.2 + 0.42 * len(classes)
    fig, ax = plt.subplots(figsize=(size + 0.8, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.grid(False)
    if len(classes) <= 20:
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                if m[i, j]:
                    ax.text(j, i, str(int(m[i, j])), ha="center", va="center", fontsize=7,
                            color="white" if norm[i, j] > 0.55 else "#1d2433")
    ax.set_xticks(range(len(classes)), classes, rotation=45 if max(map(len, classes)) > 2 else 0)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of true class")
    fig.tight_layout()
    return fig


def training_curves(histories: dict[str, list[dict]], title: str = "training"):
    """Loss (solid) and validation accuracy (dashed, right axis) per epoch, one colour per stage."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.4, 2.9))
    ax2 = ax.twinx()
    ax2.grid(False)
    for (name, history), color in zip(histories.items(), PALETTE):
        ep = [h["epoch"] for h in history]
        ax.plot(ep, [h["loss"] for h in history], color=color, label=f"{name} loss")
        if any("val_accuracy" in h for h in history):
            ax2.plot(ep, [100 * h.get("val_accuracy", np.nan) for h in history], color=color, ls="--")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (solid)")
    ax2.set_ylabel("val accuracy % (dashed)")
    ax.legend(fontsize=8, loc="center right")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def class_balance(rows: list[dict]):
    """Stacked bars of examples per class in train / val / test."""
    plt = _plt()
    names = [str(r["class"]) for r in rows]
    fig, ax = plt.subplots(figsize=(max(4, 0.45 * len(names) + 1.5), 2.6))
    bottom = np.zeros(len(rows))
    for part, color in zip(("train", "val", "test"), PALETTE):
        vals = np.array([r.get(part, 0) for r in rows], dtype=float)
        ax.bar(names, vals, bottom=bottom, color=color, label=part)
        bottom += vals
    ax.set_ylabel("examples")
    ax.legend(fontsize=8, ncols=3, loc="lower right")
    ax.set_title("class balance", fontsize=9)
    fig.tight_layout()
    return fig


def feature_example(feat: np.ndarray, title: str):
    """One example's feature matrix (frames × coefficients) as an image, time on the x-axis."""
    plt = _plt()
    f = np.asarray(feat)
    f = f.reshape(f.shape[0], -1) if f.ndim > 1 else f[None]
    fig, ax = plt.subplots(figsize=(5, 2.6))
    im = ax.imshow(f.T, aspect="auto", origin="lower", cmap="magma")
    ax.grid(False)
    ax.set_xlabel("frame")
    ax.set_ylabel("coefficient")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    return fig


def plan_tradeoff(plans: list[dict], title: str = "C library plans"):
    """Arena bytes against estimated Cortex-M4 instructions, one point per plan the generator tried
    (``{"arena_bytes", "instructions", "chosen"}``), the chosen one marked; the lower-left edge is what
    streaming buys."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    tried = [p for p in plans if not p.get("chosen")]
    ax.scatter([p["instructions"] for p in tried], [p["arena_bytes"] for p in tried], s=14, color=PALETTE[0],
               alpha=0.5, label="plans tried")
    for p in plans:
        if p.get("chosen"):
            ax.scatter([p["instructions"]], [p["arena_bytes"]], s=90, marker="*", color=PALETTE[1], zorder=3,
                       label="chosen")
    ax.set_xlabel("estimated Cortex-M4 instructions")
    ax.set_ylabel("arena (bytes)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
