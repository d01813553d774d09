"""Deployment: the int8 graph as a C99 library (static arena, no malloc), written atomically."""

from __future__ import annotations

from pathlib import Path


def deploy_c(graph, out: Path, prefix: str, fs, notes: list[str]) -> dict:
    """Generate the library into ``out/<prefix>``; float graphs have no C backend and are noted."""
    if graph.tensors[graph.inputs[0]].dtype != "int8":
        notes.append("C library skipped: the deployed model is float32 and the C generator emits int8 kernels "
                     "(add optimize.quantize)")
        return {}
    from tinyopt.export.c import generate_sources, write_library

    lib = generate_sources(graph, prefix=prefix)
    dest = write_library(lib.files, out / prefix, force=True,
                         meta={"model": graph.name, "arena_bytes": lib.arena_bytes})
    return {"path": str(dest.relative_to(out.parent)), "files": len(lib.files), "arena_bytes": int(lib.arena_bytes),
            "input_bytes": int(lib.input_bytes), "output_bytes": int(lib.output_bytes), "macs": int(lib.macs)}
