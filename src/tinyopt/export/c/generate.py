"""From an int8 Graph to the files of a C99 library: plan the arena, prepare every node, fill the templates.

``generate_sources`` is pure (returns ``{relative path: text}``); ``write_library`` puts them in a folder
atomically and refuses to overwrite a folder that tinyopt did not write.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from string import Template

import numpy as np

from tinyopt._io import atomic_dir
from tinyopt.errors import ConfigError, UnsupportedOpError
from tinyopt.export.c import emit, stream_c
from tinyopt.export.c.params import OpParams, prepare
from tinyopt.export.c.plan import Plan, best_plan
from tinyopt.graph.ir import Graph

MANIFEST = "tinyopt_manifest.json"
HEADERS = ("fixedpoint.h", "kernels.h", "simd.h")


@dataclass
class Library:
    """What was generated: the files and the numbers a report needs."""

    files: dict
    plan: Plan
    prepared: dict
    arena_bytes: int
    input_bytes: int
    output_bytes: int
    macs: int
    prefix: str

    @property
    def caller_output_bytes(self) -> int:
        """The output buffer a caller needs besides the library's RAM: none when the output lives in the
        arena (``<prefix>_output_buffer()``), all of it for a model with several outputs."""
        return self.output_bytes if self.plan.external else 0


def _resource(*parts: str) -> str:
    return resources.files("tinyopt.export.c").joinpath(*parts).read_text(encoding="utf-8")


def _template(name: str) -> Template:
    return Template(_resource("templates", name))


def node_macs(p: OpParams) -> int:
    """Multiply-accumulates of one prepared node (its record's count; 0 for ops without MACs).

    >>> node_macs(OpParams("fully_connected", {"batches": 1, "out_c": 12, "accum_depth": 64}, macs=768))
    768
    """
    return p.macs


def _kernel_headers(prepared: dict) -> list[str]:
    """Per-kernel headers (``kernels/<file>.h``: a newer kernel's parameter struct and entry point, so adding
    an operator does not touch the shared kernels.h) of the kernels the library uses."""
    kernels = resources.files("tinyopt.export.c").joinpath("kernels")
    stems = sorted({f for p in prepared.values() for f in p.files})
    return [f"{s}.h" for s in stems if kernels.joinpath(f"{s}.h").is_file()]


def _offsets(sizes: list[int]) -> list[int]:
    """Each tensor's start when they lie back to back in one buffer.

    >>> _offsets([10, 4, 6])
    [0, 10, 14]
    """
    out, at = [], 0
    for s in sizes:
        out.append(at)
        at += s
    return out


# the library's I/O and activation element types (uint8: I/O only, a final QUANTIZE to uint8)
CTYPES = {"int8": "int8_t", "int16": "int16_t", "uint8": "uint8_t"}


def _describe(t) -> str:
    return (f"{t.dtype} {list(t.shape)}, scale {float(t.quant.scale[0]):.9g}, zero point "
            f"{int(t.quant.zero_point[0])}")


def io_ctype(graph: Graph, names) -> str:
    """The C element type of the graph inputs (or outputs) ``names``: one dtype, checked by ``check_graph``.

    >>> from tinyopt.graph.ir import Tensor
    >>> g = Graph("g"); _ = g.add_tensor(Tensor("x", (1, 2), "int16"))
    >>> io_ctype(g, ["x"])
    'int16_t'
    """
    return CTYPES[graph.tensors[names[0]].dtype]


def _io_comment(graph: Graph) -> str:
    """The I/O lines of model.h: each input and output with its shape and quantization."""
    if len(graph.inputs) == len(graph.outputs) == 1:
        return (f"/* Input: {_describe(graph.tensors[graph.inputs[0]])}.\n"
                f" * Output: {_describe(graph.tensors[graph.outputs[0]])}. */")
    lines = [f"Input {k} at byte {off}: {_describe(graph.tensors[t])}." for k, (t, off) in
             enumerate(zip(graph.inputs, _offsets([graph.tensors[t].nbytes for t in graph.inputs])))]
    lines += [f"Output {k} at byte {off}: {_describe(graph.tensors[t])}." for k, (t, off) in
              enumerate(zip(graph.outputs, _offsets([graph.tensors[t].nbytes for t in graph.outputs])))]
    return "/*\n" + emit.c_comment_block(["Several inputs/outputs: each lies back to back in the one buffer "
                                          "invoke takes.", *lines]) + "\n */"


def _io_defines(graph: Graph, upper: str) -> str:
    if len(graph.inputs) == len(graph.outputs) == 1:
        return ""
    out = []
    for kind, names in (("INPUT", graph.inputs), ("OUTPUT", graph.outputs)):
        sizes = [graph.tensors[t].nbytes for t in names]
        for k, (off, size) in enumerate(zip(_offsets(sizes), sizes)):
            out += [f"#define {upper}_{kind}{k}_OFFSET {off}", f"#define {upper}_{kind}{k}_BYTES {size}"]
    return "\n".join(out) + "\n"


def _input_copies(graph: Graph, plan, prefix: str) -> str:
    """invoke's copy of the caller's input(s) into the arena (skipped when it already is the input slot)."""
    pl = plan.planner
    src = "input" if io_ctype(graph, graph.inputs) == "int8_t" else "(const int8_t *)input"  # bytes
    if len(graph.inputs) == 1:
        off = pl.offset_of(plan.root[graph.inputs[0]])
        return (f"    if ({src} != arena + {off}) {{\n"
                f"        memcpy(arena + {off}, input, {prefix.upper()}_INPUT_BYTES);\n    }}")
    sizes = [graph.tensors[t].nbytes for t in graph.inputs]
    return "\n".join(f"    memcpy(arena + {pl.offset_of(plan.root[t])}, {src} + {start}, {size});"
                     for t, start, size in zip(graph.inputs, _offsets(sizes), sizes))


def check_graph(graph: Graph) -> None:
    """int8 (or, for a 16x8 model, int16) inputs and outputs, every node known: fail before anything is
    written. The inputs share one dtype, and the outputs one: invoke takes one pointer for each."""
    roots = [graph.outputs.count(t) for t in graph.outputs]
    if max(roots) > 1 or set(graph.inputs) & set(graph.outputs):
        raise UnsupportedOpError("a tensor is a graph output twice, or both input and output",
                                 path=graph.source, fix="give each graph output its own tensor")
    for name in (*graph.inputs, *graph.outputs):
        t = graph.tensors[name]
        if t.dtype not in CTYPES:
            integer = any(graph.tensors[n].dtype in CTYPES for n in (*graph.inputs, *graph.outputs))
            fix = ("convert the model to int8 (or 16x8) with integer input and output" if not integer else
                   f"the C library reads and writes {', '.join(sorted(CTYPES))} only: deploy this "
                   "model with TFLM (tinyopt deploy --target tflite), or export it without the "
                   f"{t.dtype} conversion at its {'input' if name in graph.inputs else 'output'}")
            raise UnsupportedOpError(f"graph input/output '{name}' is {t.dtype}", path=graph.source, fix=fix)
    for kind, names in (("inputs", graph.inputs), ("outputs", graph.outputs)):
        dtypes = sorted({graph.tensors[t].dtype for t in names})
        if len(dtypes) > 1:
            raise UnsupportedOpError(f"the graph {kind} mix {' and '.join(dtypes)}", path=graph.source,
                                     fix=f"give every graph {kind[:-1]} one dtype (invoke takes one buffer)")
    if not graph.nodes:
        raise UnsupportedOpError("the graph has no operators", path=graph.source, fix="give a real model")


def _node_source(prefix: str, i: int, p: OpParams, extra: dict | None = None) -> str:
    """Constant arrays and the parameter struct of node ``i``. Where the M4 assembly loops read their own
    layout (packed requantization "rq", int16 depthwise "lanes"), the struct has two variants: the
    assembly build stores only that layout and the portable build only the arrays it replaces, so no
    constant is in flash twice."""
    fields = {**p.ints, **(extra or {})}

    def arrays(keys) -> tuple[list[str], dict]:
        parts, names = [], {}
        for key in keys:
            ctype, arr = p.arrays[key]
            name = names[key] = f"{prefix}_n{i}_{key}"
            # LDRD/LDM need word alignment
            attribute = f"{prefix.upper()}_ALIGN4" if ctype == "int8_t" else ""
            parts.append(emit.c_array(name, ctype, np.asarray(arr), attribute=attribute))
        return parts, names

    struct = f"{prefix}_{p.struct}"
    asm_only = [k for k in ("rq", "lanes", "wpairs") if k in p.arrays]
    portable_only = [*(("bias", "multiplier", "shift") if "rq" in p.arrays else ()),
                     *(("weights",) if "lanes" in p.arrays or "wpairs" in p.arrays else ())]
    common, names = arrays([k for k in p.arrays if k not in asm_only and k not in portable_only])
    if not asm_only:
        return "\n\n".join([*common, emit.c_struct(struct, f"{prefix}_n{i}", {**fields, **names})])
    asm, asm_names = arrays(asm_only)
    portable, portable_names = arrays(portable_only)
    m4 = {**fields, **names, **asm_names, **{k: "NULL" for k in portable_only}}
    other = {**fields, **names, **portable_names, **{k: "NULL" for k in asm_only}}
    return "\n\n".join([
        *common, f"#if defined({prefix.upper()}_HAVE_MM2X2_ASM)", *asm,
        emit.c_struct(struct, f"{prefix}_n{i}", m4), "#else", *portable,
        emit.c_struct(struct, f"{prefix}_n{i}", other), "#endif"])


# one pass over the plan's steps writing each call site; its branches are the kernels' call signatures
def generate_sources(graph: Graph, prefix: str = "tinyopt", inplace: bool = True,  # noqa: C901
                     reorder: bool = True, max_slowdown: float | None = None, optimize: str = "balanced",
                     max_ram: int | None = None) -> Library:
    """The library's files as text. Raises ``UnsupportedOpError`` naming the first node we cannot compile.
    ``optimize`` (``speed``, ``balanced``, ``ram``) and ``max_ram`` (arena bytes) choose the plan
    (``plan.best_plan``); ``inplace=False`` gives every tensor its own buffer and streams nothing.
    ``max_slowdown``: the instruction budget within which a graph with encoded weights keeps them
    compressed (``export.c.compressed.choose``; default 1.5 times the dense kernels)."""
    from tinyopt.export.c import compressed

    if not re.fullmatch(r"[a-z][a-z0-9_]*", prefix):
        raise ConfigError(f"symbol prefix {prefix!r} is not a lower-case C identifier",
                          fix="use letters, digits and underscores, starting with a letter")
    from tinyopt.ops.lookup_table import fuse_float_islands

    graph = fuse_float_islands(graph)  # float-only operators convert kept in float: int8 tables here
    check_graph(graph)
    variables = getattr(graph, "variables", [])
    if variables:  # a state is read and its update kept whole: no row streaming around them
        optimize = "speed"
    with compressed.budget(max_slowdown):
        prepared = {i: prepare(graph, i, n) for i, n in enumerate(graph.nodes)}
    plan = best_plan(graph, prepared, inplace=inplace, reorder=reorder,
                     optimize=optimize if inplace else "speed", max_ram=max_ram)
    sched = plan.schedule
    pl = plan.planner
    ext_roots = {plan.root[t] for t in plan.external}
    in_place = pl.in_place_nodes()
    out_offsets = _offsets([graph.tensors[t].nbytes for t in graph.outputs])
    # several outputs: back to back
    out_at = {plan.root[t]: off for t, off in zip(graph.outputs, out_offsets)}

    out_ct = io_ctype(graph, graph.outputs)

    def ptr(tensor: str) -> str:
        """The tensor's address at a call site, typed as its kernel takes it (int16_t * for int16)."""
        r = plan.root[tensor]
        if r in ext_roots:  # the caller's output buffer, typed as the outputs are: offsets in elements
            at = out_at[r] // (2 if out_ct == "int16_t" else 1)
            out = "(int8_t *)output" if out_ct == "uint8_t" else "output"  # uint8 bytes from an int8 kernel
            return out if at == 0 else f"{out} + {at}"
        at = f"arena + {pl.offset_of(r)}"
        return f"(int16_t *)({at})" if graph.tensors[tensor].dtype == "int16" else at

    calls, constants = [], []
    for j, v in enumerate(variables):  # the state kept between invokes, from its initial value on
        st = graph.tensors[v.state]
        ct = CTYPES[st.dtype]
        values = ", ".join(str(int(x)) for x in np.asarray(v.init).reshape(-1))
        constants.append(f"/* variable {emit.c_identifier(v.name)[:60]}: {list(st.shape)} {st.dtype} */\n"
                         f"static {ct} {prefix}_state{j}[{st.size}] = {{{values}}};")
        calls.append(f"    memcpy({ptr(v.state)}, {prefix}_state{j}, {st.nbytes});")
    for k in plan.order:
        n, p, i = sched.graph.nodes[k], sched.prepared[k], sched.orig[k]
        if p.aliases:
            if plan.root[n.outputs[0]] != plan.root[n.inputs[0]]:  # a graph input reshaped into the output
                calls.append(f"    /* node {i}: {n.op}, a copy of the input into the output */")
                calls.append(f"    memcpy({ptr(n.outputs[0])}, {ptr(n.inputs[0])}, "
                             f"{graph.tensors[n.outputs[0]].nbytes});")
            continue
        seg = plan.segment_of(k)
        fusion = sched.fused.get(k)
        if fusion is not None and not p.fused_asm:
            # this kernel's fused ADD runs on its portable C path: no packed M4 arrays
            p = replace(p, arrays={k: v for k, v in p.arrays.items() if k not in ("rq", "lanes", "wpairs")})
        extra = {key: "NULL" for key in p.optional if key not in p.arrays}
        if p.fuses_add:
            extra["add_conv_first"] = 0
        if fusion is not None:
            add_p = prepared[fusion.add_index]
            constants.append(emit.c_struct(f"{prefix}_{add_p.struct}", f"{prefix}_n{i}_add", add_p.ints))
            extra.update(add=f"&{prefix}_n{i}_add", add_conv_first=int(fusion.conv_first))
        constants.append(_node_source(prefix, i, p, extra))
        fn = f"{prefix}_{p.entry}"
        if seg is not None:
            if k == seg.nodes[-1]:
                calls.append(stream_c.segment_source(plan, seg, prefix, ptr))
            continue
        what = n.op + (f" + {fusion.op} (node {fusion.add_index})" if fusion else "")
        calls.append(f"    /* node {i}: {what} {emit.c_identifier(n.name)[:60]} */")
        if p.signature == "lists":  # any number of operands: two arrays of pointers
            data = [t for t in n.inputs if t and t in plan.root]
            ct_in = CTYPES[graph.tensors[data[0]].dtype] if data else "int8_t"
            ct_out = CTYPES[graph.tensors[n.outputs[0]].dtype]
            args = [f"&{prefix}_n{i}", emit.pointer_list(f"const {ct_in} *const", [ptr(t) for t in data]),
                    emit.pointer_list(f"{ct_out} *const", [ptr(t) for t in n.outputs])]
        else:
            ins = [ptr(t) for t in n.inputs[:2 if p.signature == "binary" else 1]]
            args = [f"&{prefix}_n{i}", *ins, ptr(n.outputs[0])]
        if p.signature in ("rows", "rows_col"):
            args.append(f"arena + {pl.offset_of(plan.scratch[k])}" if k in in_place else "NULL")
            if p.signature == "rows_col":
                args.append(f"arena + {pl.offset_of(plan.col[k])}" if k in plan.col else "NULL")
            args.append(str(int(pl.reverse_.get(k, False)) if k in in_place else 0))
            args.append(ptr(fusion.other) if fusion else "NULL")
        calls.append(emit.c_call(fn, args))
        calls.append(f"    {prefix.upper()}_AFTER_NODE({i});")

    for j, v in enumerate(variables):  # every read of the state is done: its update is the next state
        calls.append(f"    memcpy({prefix}_state{j}, {ptr(v.update)}, {graph.tensors[v.state].nbytes});")
    x = graph.tensors[graph.inputs[0]]
    in_ct = io_ctype(graph, graph.inputs)
    per_elem = {"int8_t": "", "int16_t": " / 2"}  # a typed buffer of BYTES: its element count
    input_bytes = sum(graph.tensors[t].nbytes for t in graph.inputs)
    in_at = f"{prefix}_arena + {pl.offset_of(plan.root[graph.inputs[0]])}"
    input_buffer = f"{prefix}_inputs" if len(graph.inputs) > 1 else (
        in_at if in_ct == "int8_t" else f"({in_ct} *)({in_at})")
    output_bytes = sum(graph.tensors[t].nbytes for t in graph.outputs)
    macs = sum(node_macs(p) for p in prepared.values())
    out_slot = "NULL"  # several outputs: the caller's buffer
    if not plan.external:
        out_slot = f"{prefix}_arena + {pl.offset_of(plan.root[graph.outputs[0]])}"
        out_slot = out_slot if out_ct == "int8_t" else f"({out_ct} *)({out_slot})"
    # the banner names the model file without its folder: one model deployed from two places gives the
    # same bytes
    subs = dict(
        banner=emit.BANNER, prefix=prefix,
        model=emit.c_comment_block([Path(str(graph.source)).name if graph.source else graph.name])[3:],
        PREFIX=prefix.upper(), arena_bytes=pl.peak_bytes, input_bytes=input_bytes, output_bytes=output_bytes,
        macs=macs, input_zp=int(x.quant.zero_point[0]), io_comment=_io_comment(graph),
        io_defines=_io_defines(graph, prefix.upper()),
        input_offset=pl.offset_of(plan.root[graph.inputs[0]]),
        input_buffer=input_buffer,
        input_staging="" if len(graph.inputs) == 1 else (
            f"/* Several inputs: the caller's buffer holds them back to back "
            f"(see {prefix.upper()}_INPUTk_OFFSET); this one is\n * {prefix}_input_buffer(). */\n"
            f"static {in_ct} {prefix}_inputs[{prefix.upper()}_INPUT_BYTES{per_elem[in_ct]}];\n"),
        input_ctype=in_ct, output_ctype=out_ct,
        input_copies=_input_copies(graph, plan, prefix),
        output_buffer=out_slot,
        output_required=" || output == NULL" if plan.external else "",
        output_copy="" if plan.external else (
            f"    if (output != NULL && output != {out_slot}) {{\n"
            f"        memcpy(output, {out_slot}, {prefix.upper()}_OUTPUT_BYTES);\n    }}\n"),
        output_null_note=" (or output: several outputs)" if plan.external else "",
        output_note=("the outputs are written into output, back to back." if plan.external else
                     "the output is\n * copied into output unless output is NULL or the output slot."),
        output_slot_note=("NULL for this model: its several outputs go to the\n * caller's buffer."
                          if plan.external else "Its contents are overwritten by the next inference."),
        plan_comment=emit.c_comment_block(pl.print_plan(width=32).splitlines()),
        constants="\n\n".join(constants + stream_c.band_helpers(plan, prefix)),
        calls="\n".join(calls),
        kernel_headers="".join(f'#include "{prefix}_{h}"\n' for h in _kernel_headers(prepared)),
    )
    files = {
        f"{prefix}_model.h": _template("model.h.in").substitute(subs),
        f"{prefix}_model.c": _template("model.c.in").substitute(subs),
        "examples/main.c": _template("example_main.c.in").substitute(subs),
    }
    for h in HEADERS:
        files[f"{prefix}_{h}"] = emit.rename_symbols(_resource("kernels", h), prefix)
    # loop variants a library carries only when its plan calls them
    variants = []
    dw = stream_c.kernel_defines(plan)  # the depthwise loops' variants (kernels/depthwise_conv2d.h)
    if dw:
        variants.append("/* the depthwise code this library's calls reach */\n"
                        + "".join(f"#define {prefix.upper()}_{d} 1\n" for d in dw))
    if not any(sched.prepared[k].kind == "fully_connected" for k in plan.no_col):  # fully_connected*.c
        variants.append(f"/* every dense layer widens its input into its col buffer: no int8-input loops */\n"
                        f"#define {prefix.upper()}_FC_COL_ALWAYS 1\n")
    if variants:
        guard = f"#define {prefix.upper()}_KERNELS_H\n"
        files[f"{prefix}_kernels.h"] = files[f"{prefix}_kernels.h"].replace(
            guard, guard + "".join("\n" + v for v in variants), 1)
    stems = {f for p in prepared.values() for f in p.files} | (
        {"pool_rows"} if any(s.acc_bytes for s in plan.segments) else set())
    for stem in sorted(stems):
        files[f"{prefix}_{stem}.c"] = emit.rename_symbols(_resource("kernels", f"{stem}.c"), prefix)
    for h in _kernel_headers(prepared):
        files[f"{prefix}_{h}"] = emit.rename_symbols(_resource("kernels", h), prefix)
    return Library(files, plan, prepared, pl.peak_bytes, input_bytes, output_bytes, macs, prefix)


def explain(lib: Library) -> str:
    """The arena plan and the execution steps: which node runs, where it writes, what it overwrites."""
    plan, pl = lib.plan, lib.plan.planner
    sched = plan.schedule
    in_place = pl.in_place_nodes()
    lines = [pl.print_plan(), ""]
    if plan.no_col:
        lines.append(f"{len(plan.no_col)} layer(s) run without their col buffer (see the steps)")
    if plan.segments:
        lines.append(f"row-streamed segments (estimated +{plan.extra_instructions:,.0f} Cortex-M4 "
                     f"instructions, {plan.extra_instructions / max(plan.base_instructions, 1):.1%} of the "
                     "whole-tensor plan's):")
        for j, seg in enumerate(plan.segments):
            bufs = ", ".join(f"{b}: {seg.rings[r]} rows x {seg.row_bytes[r]} B"
                             for b, r in enumerate(sorted(seg.rings)))
            lines.append(f"  segment {j}: nodes {sched.orig[seg.nodes[0]]}..{sched.orig[seg.nodes[-1]]} in "
                         f"bands of {seg.band} output row(s), {seg.calls} kernel calls; line buffers: {bufs}"
                         + (f"; int32 channel sums {seg.acc_bytes} B" if seg.acc_bytes else ""))
        lines.append("")
    lines.append("steps (node = index in the model file):")
    for step, k in enumerate(plan.order):
        n, i = sched.graph.nodes[k], sched.orig[k]
        f = sched.fused.get(k)
        what = f"{n.op}" + (f" + {f.op} node {f.add_index} (fused)" if f else "")
        out = plan.root[n.outputs[0]]
        seg = plan.segment_of(k)
        where = "caller's output" if out in {plan.root[t] for t in plan.external} else (
            f"line buffer {sorted(seg.rings).index(seg.ring_of[out])}"
            if seg is not None and out in seg.ring_of else f"offset {pl.offset_of(out)}")
        if n.outputs[0] in sched.graph.outputs and not plan.external:
            where = f"the output slot at {where}"
        note = ""
        if seg is not None:
            note = f", streamed (segment {plan.segments.index(seg)}, bands of {seg.band})" + (
                ", in place over its input's rows" if k in seg.shared else "") + (
                ", over the segment input's rows already read" if k in in_place else "")
        elif k in in_place:
            note = ", in place over its input, rows " + ("bottom-up" if pl.reverse_.get(k) else "top-down")
        if k in plan.no_col:
            note += (f", without its col buffer ({sched.prepared[k].col_bytes:,} B less; est. "
                     f"+{sched.prepared[k].col_free_extra:,.0f} instructions)")
        if sched.prepared[k].aliases:
            where, note = "no copy", " (aliases its input)"
        lines.append(f"  {step:>3}  node {i:>3} {what} -> {where}{note}")
    return "\n".join(lines)


def arduino_files(lib: Library, graph: Graph) -> dict:
    """The same sources laid out as an Arduino library: library.properties, src/, examples/<name>/."""
    subs = dict(banner=emit.BANNER, model=Path(str(graph.source or graph.name)).stem, prefix=lib.prefix,
                PREFIX=lib.prefix.upper(), library_name=f"{lib.prefix}_model",
                input_zp=int(graph.tensors[graph.inputs[0]].quant.zero_point[0]))
    files = {f"src/{k}": v for k, v in lib.files.items() if not k.startswith("examples/")}
    files["library.properties"] = _template("library.properties.in").substitute(subs)
    files[f"examples/{lib.prefix}_infer/{lib.prefix}_infer.ino"] = _template("sketch.ino.in").substitute(subs)
    return files


def _is_ours(path: Path) -> bool:
    return (path / MANIFEST).is_file()


def write_library(files: dict, out: str | os.PathLike, force: bool = False, meta: dict | None = None) -> Path:
    """Write ``files`` into ``out`` atomically, marking it as ours with a manifest.

    An existing folder that has no manifest (not written by tinyopt) is refused unless ``force``.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError("exists and is not a folder", path=out, fix="choose another --out path")
    if out.is_dir() and any(out.iterdir()) and not _is_ours(out) and not force:
        raise ConfigError("the output folder exists and was not written by tinyopt", path=out,
                          fix="choose an empty or new folder, or pass --force to replace it")
    manifest = {"generator": "tinyopt", "files": sorted(files), **(meta or {})}
    with atomic_dir(out) as tmp:
        for rel, text in files.items():
            p = tmp / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text, encoding="utf-8")
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return out
