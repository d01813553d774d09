"""Deployment: the int8 graph as a C99 library (static arena, no malloc), written atomically."""

from __future__ import annotations

from pathlib import Path


def deploy_c(graph, out: Path, prefix: str, fs, notes: list[str]) -> dict:
    """Generate the library into ``out/<prefix>``; float graphs have no C backend and are noted."""
    if graph.tensors[graph.inputs[0]].dtype != "int8":
        notes.append("C library skipped: the deployed model is float32 and the C generator emits int8 "
                     "kernels (add optimize.quantize)")
        return {}
    from tinyopt.export.c import generate_sources, write_library

    lib = generate_sources(graph, prefix=prefix)
    dest = write_library(lib.files, out / prefix, force=True,
                         meta={"model": graph.name, "arena_bytes": lib.arena_bytes})
    plan = lib.plan
    plans = [{"arena_bytes": int(a), "instructions": round(plan.base_instructions + e), "chosen": bool(c)}
             for a, e, c in getattr(plan, "considered", [])]
    return {"path": str(dest.relative_to(out.parent)), "files": len(lib.files),
            "arena_bytes": int(lib.arena_bytes), "input_bytes": int(lib.input_bytes),
            "output_bytes": int(lib.output_bytes), "macs": int(lib.macs), "plans": plans}


def deploy_features_c(cfg: dict, data_meta: dict, out: Path, prefix: str) -> dict:
    """The audio feature block as C beside the model library (``out/<prefix>_features``), when the
    project computes spectral features; raw/normalized inputs need no code."""
    if cfg["features"]["block"] not in ("spectrogram", "mfe", "mfcc"):
        return {}
    import numpy as np

    from tinyopt._io import atomic_dir
    from tinyopt.features.codegen import generate_c
    from tinyopt.pipeline.stages import make_block

    n = int(data_meta["meta"]["samples"])
    block = make_block(cfg["features"], data_meta["meta"]["sample_rate"]).fit(np.zeros((1, n), np.float32))
    files = generate_c(block, n, prefix=prefix)
    dest = out / f"{prefix}_features"
    with atomic_dir(dest) as tmp:
        for name, text in files.items():
            (tmp / name).write_text(text, encoding="utf-8")
    return {"features_path": str(dest.relative_to(out.parent)), "features_files": sorted(files)}
