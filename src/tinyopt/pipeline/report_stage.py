"""Assemble the HTML report of a run from the stages' numbers (figures from ``tinyopt.report.plots``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyopt import ops
from tinyopt.report import plots
from tinyopt.report.html import Report


def graph_weights(graph) -> np.ndarray:
    """All conv/dense weights of a Graph as float values (int8 ones dequantized per channel)."""
    vals = []
    for n in graph.nodes:
        if ops.get(n.op).weight_axis is None or len(n.inputs) < 2:
            continue
        t = graph.tensors[n.inputs[1]]
        if t.data is None:
            continue
        w = t.data.astype(np.float64)
        if t.quant is not None and t.dtype != "float32":
            scale = t.quant.scale.astype(np.float64)
            zp = t.quant.zero_point.astype(np.float64)
            if scale.size > 1:
                shape = [1] * w.ndim
                shape[t.quant.axis or 0] = -1
                scale, zp = scale.reshape(shape), zp.reshape(shape)
            w = (w - zp) * scale
        vals.append(w.ravel())
    return np.concatenate(vals) if vals else np.zeros(0)


def layer_rows(a: dict) -> list[dict]:
    return [{"name": f"{r['name'][:22]} ({r['type']})", "param_bytes": r["param_bytes"], "macs": r["macs"],
             "act_bytes": r["activation_bytes"]} for r in a["layers"]]


def arena_buffers(a: dict) -> list[dict]:
    return [{"name": b["tensor"], "offset": b["offset"], "size": b["size"], "first": b["first_used"],
             "last": b["last_used"]} for b in a["arena_plan"]["buffers"]]


def present(r: dict) -> dict:
    """A closing-table row as people read it: accuracy in percent, units in the headers."""
    return {"variant": r["variant"], "test accuracy": f"{100 * r['accuracy']:.2f} %", "params": r["params"],
            "flash (B)": r["flash_bytes"], "RAM (B)": r["ram_bytes"], "latency (ms)": r["latency_ms"],
            "energy (mJ)": r["energy_mj"], "fits": r["fits"], "artifact": r["artifact"]}


def _kb(n) -> str:
    return f"{n / 1024:,.1f} KB"


def write_report(path: Path, cfg: dict, device, data_meta: dict, fs, histories: dict, rows: list[dict],
                 evals: dict, analyses: dict, torch_models: dict, res) -> Path:
    final = rows[-1]
    fa = analyses[final["variant"]]
    base = rows[0]
    rep = Report(f"tinyopt · {cfg['name']}",
                 f"{data_meta['source']} → {cfg['features']['block']} features → {cfg['model']['zoo']} → "
                 f"{' + '.join(r['variant'] for r in rows[1:]) or 'float'} → {device.title or device.name}")
    verdict = "fits" if final["fits"] else "does not fit"
    runtime = fa.get("arena_runtime") or "planned"
    rep.cards([
        ("test accuracy", f"{100 * final['accuracy']:.2f} %",
         f"{final['variant']} · float {100 * base['accuracy']:.2f} %"),
        ("flash", _kb(final["flash_bytes"]), f"{final['flash_bytes'] / base['flash_bytes']:.0%} of float"),
        (f"RAM ({runtime} arena)", _kb(final["ram_bytes"]),
         f"{final['ram_bytes'] / base['ram_bytes']:.0%} of float"),
        ("latency", f"{final['latency_ms']:.3f} ms" if final["latency_ms"] is not None else "–",
         f"{fa.get('latency_model') or ''}"),
        ("verdict", verdict,
         f"{device.name}: SRAM {_kb(device.sram_bytes or 0)}, flash {_kb(device.flash_bytes or 0)}"),
    ])
    rep.section("Variants", "Every model the run produced, measured on the test split. Sizes and latency are "
                "`tinyopt analyze <artifact> --device " + device.name + "` on the written .tflite file.")
    rep.table([present(r) for r in rows])
    rep.figure(plots.tradeoff(rows), "accuracy against flash size and latency (× = does not fit)")
    if res.verify:
        rep.subheading("int8 runtime against TensorFlow Lite Micro")
        rep.table([{"variant": k, **v} for k, v in res.verify.items()], caption="examples whose int8 outputs "
                  "differ in any element between the tinyopt runtime and TFLM")
    if res.deploy:
        rep.subheading("C library")
        rep.table([{k: v for k, v in res.deploy.items() if not isinstance(v, list)}])
        if len(res.deploy.get("plans", [])) > 1:
            rep.figure(plots.plan_tradeoff(res.deploy["plans"], "C library plans"),
                       "arena against estimated Cortex-M4 instructions of every plan the generator tried "
                       "(row streaming trades instructions for RAM); the chosen one starred")
    for note in res.notes:
        rep.text(f"note: {note}")

    rep.subheading("Analysis of every variant (KB = 1024 bytes; flash = weights + quant params + code)")
    rep.table([{"variant": k, "MACs": a["macs"], "FLOPs": a["flops"], "param B": a["param_bytes"],
                "textbook RAM B": a["textbook_total_bytes"], "arena B": a["arena_bytes"],
                "weights B": a["flash_breakdown"]["weights"], "quant B": a["flash_breakdown"]["quant_params"],
                "code B": a["flash_breakdown"]["code"]} for k, a in analyses.items()],
              caption=f"textbook RAM = parameters + largest activation; arena = what {runtime} needs (for "
                      "TFLM: its greedy-planned tensors plus its persistent tail)")
    rep.section(f"Layers of the {final['variant']} model against {device.name}",
                "Bars per layer; dashed lines are the board's limits when a layer comes near them.")
    rep.figure(plots.layer_bars(layer_rows(fa), device.flash_bytes, device.sram_bytes),
               "parameter bytes, MACs and output activation bytes per layer")
    rep.table([{k: r[k] for k in ("name", "type", "params", "macs", "param_bytes", "activation_bytes")}
               for r in fa["layers"]])
    rep.figure(plots.arena_plan(arena_buffers(fa), fa["arena_bytes"], device.sram_bytes,
                                head_bytes=(fa.get("arena") or {}).get("head_bytes"),
                                runtime=fa.get("arena_runtime")),
               f"{runtime} arena: each buffer from its first to its last use")
    rep.subheading("Verdict")
    for r in fa["reasons"]:
        rep.text(r)
    if res.feature_ram_bytes:
        need = final["ram_bytes"] + res.feature_ram_bytes
        rep.text(f"with the feature buffers ({res.feature_ram_bytes:,} B: raw window and feature matrix) the "
                 f"application needs {need:,} B of {device.sram_bytes or 0:,} B SRAM")

    rep.section("Weights", "Distributions over all conv and dense weights: pruning removes whole channels, "
                "int8 quantization leaves 255 levels per channel.")
    series = {name: graph_weights(ev["graph"]) for name, ev in evals.items()}
    rep.figure(plots.weight_histograms(series), "weight values per variant (log count)")

    rep.section("Accuracy", "Per-class precision, recall and F1 on the test split.")
    rep.grid()
    for name in dict.fromkeys([base["variant"], final["variant"]]):
        cm = np.asarray(evals[name]["metrics"]["confusion"])
        rep.figure(plots.confusion(cm, data_meta["classes"], f"{name}: confusion matrix"),
                   f"{name}: rows true, columns predicted")
    rep.grid(False)
    m = evals[final["variant"]]["metrics"]
    if "precision" in m:
        rep.table([{"class": c, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                   for c, p, r, f, s in zip(data_meta["classes"], m["precision"], m["recall"], m["f1"],
                                            m["support"])], caption=f"{final['variant']} model")

    rep.section("Data and training", f"{data_meta['source']}: {len(data_meta['classes'])} classes, "
                + ", ".join(f"{k} {v}" for k, v in data_meta["sizes"].items()) + " examples.")
    rep.grid()
    rep.figure(plots.class_balance(data_meta["balance"]), "examples per class and split")
    hists = {k: h for k, h in histories.items() if h}
    rep.figure(plots.training_curves(hists, "training: " + " and ".join(hists) + " model"),
               "loss and validation accuracy per epoch")
    if fs.train.x.ndim == 4 and cfg["features"]["block"] in ("spectrogram", "mfe", "mfcc"):
        rep.figure(plots.feature_example(fs.train.x[0, ..., 0], f"{cfg['features']['block']} of one example"),
                   "features of the first training example")
    rep.grid(False)
    rep.save(path)
    return path
