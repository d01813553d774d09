"""The C of row-streamed segments (``stream.py``): each segment's program table and the switch that runs
a layer's kernel on a band of rows, and the static helpers the band calls share."""

from __future__ import annotations

from string import Template

import numpy as np

from tinyopt.export.c import emit, stream
from tinyopt.export.c.plan import Plan


def segment_source(plan: Plan, seg, prefix: str, ptr) -> str:
    """invoke's code for a streamed segment: its program (band calls and line-buffer moves, simulated by
    ``stream.build_segment``) as a table, and one case per node that runs its kernel on a band of rows."""
    sched, pl = plan.schedule, plan.planner
    j = plan.segments.index(seg)
    graph = sched.graph
    table = np.asarray(seg.program, np.int64)
    ctype = "uint8_t" if table.max(initial=0) < 256 else "uint16_t"

    def rows(t: str, at: str) -> str:  # row ``at`` (a table field) of tensor t, whole or line buffer
        base = f"arena + {pl.offset_of(f'rows_{seg.ring_of[t]}')}" if t in seg.ring_of else ptr(t)
        return f"{base} + {at} * {seg.row_bytes[t]}"

    binary = any(len([t for t in graph.nodes[k].inputs if t and t in plan.root]) > 1 for k in seg.nodes)
    e_out = "e[5]" if binary else "e[4]"  # the table has a second input's row only when a node reads one
    sums = f"(int32_t *)(void *)(arena + {pl.offset_of(f'sums_{j}')})" if seg.acc_bytes else ""
    col = f"arena + {pl.offset_of(f'im2col_s{j}')}" if seg.col_bytes else "NULL"
    cases = []
    for c, k in enumerate(seg.nodes):
        n, p, i = graph.nodes[k], sched.prepared[k], sched.orig[k]
        ins = [plan.root[t] for t in n.inputs if t and t in plan.root]
        out = rows(plan.root[n.outputs[0]], e_out)
        struct, fn = f"{prefix}_{p.struct}", f"{prefix}_{p.entry}"
        if p.stream == "sum":
            _, _, w, ch = graph.tensors[n.inputs[0]].shape
            body = [f"{prefix}_sum_rows({rows(ins[0], 'e[3]')}, (e[2] - e[1]) * {w}, {ch}, {sums});"]
        elif p.stream == "pad":  # the band's input rows [lo, hi) land below its rows of top padding
            y = graph.tensors[n.outputs[0]]
            top, row = stream.pad_top(p, y), seg.row_bytes[plan.root[n.outputs[0]]]
            h = graph.tensors[n.inputs[0]].shape[1]
            body = [f"{struct} q = {prefix}_n{i};", "int32_t count[5];",
                    (f"const int lo = e[1] < {top} ? 0 : e[1] - {top}," if top else "const int lo = e[1],")
                    + f" hi = e[2] - {top} < {h} ? e[2] - {top} : {h};",
                    "memcpy(count, q.count, sizeof count);", "count[2] = hi > lo ? hi - lo : 0;",
                    "q.count = count;",
                    f"q.start += (lo - e[1]) * {row};", f"q.out_size = (e[2] - e[1]) * {row};",
                    emit.c_call(fn, ["&q", rows(ins[0], "e[3]"), out]).strip()]
        elif p.stream == "rows":
            size = f"(e[2] - e[1]) * {seg.row_bytes[plan.root[n.outputs[0]]]}"
            body = [f"{struct} q = {prefix}_n{i};", f"q.size = {size};",
                    emit.c_call(fn, ["&q", rows(ins[0], "e[3]"), rows(ins[1], "e[4]"), out]).strip()]
        elif p.signature == "rows_col":  # conv and depthwise: one helper makes the band and calls the kernel
            other = rows(ins[1], "e[4]") if len(ins) > 1 else "NULL"
            body = [emit.c_call(f"{prefix}_conv_band", [
                f"&{prefix}_n{i}", fn, "e[1]", "e[2]", rows(ins[0], "e[3]"), out,
                "row_scratch" if k in seg.shared else "NULL", col if p.col_bytes else "NULL", other]).strip()]
        else:
            span = (p.ints["filter_h"] - 1) * p.ints.get("dilation_h", 1)
            body = [f"{struct} q = {prefix}_n{i};",
                    f"{prefix}_band(&q.in_h, &q.out_h, &q.padding_h, e[1], e[2], {p.ints['stride_h']}, "
                    f"{span});",
                    emit.c_call(fn, ["&q", rows(ins[0], "e[3]"), out]).strip()]
        body.append(f"{prefix.upper()}_AFTER_NODE({i});")
        cases.append(f"        case {c}: {{ /* node {i}: {n.op} */\n"
                     + "".join(f"            {b}\n" for b in body) + "            break;\n        }")
    for t in sorted(seg.rings):
        c = len(seg.nodes) + sorted(seg.rings).index(t)
        ring, rb = f"arena + {pl.offset_of(f'rows_{t}')}", seg.row_bytes[t]
        cases.append(f"        case {c}: /* line buffer of {emit.c_identifier(t)[:40]}: drop dead rows */\n"
                     f"            memmove({ring}, {ring} + e[1] * {rb}, (size_t)e[3] * {rb});\n"
                     "            break;")
    keep = [0, 1, 2, 3, 4, 5] if binary else [0, 1, 2, 3, 5]
    body = ",\n".join("        {" + ", ".join(str(int(row[c])) for c in keep) + "}" for row in seg.program)
    names = ", ".join(str(sched.orig[k]) for k in seg.nodes)
    lines = [f"    {{ /* nodes {names} streamed in bands of {seg.band} row(s) (line buffers: "
             + ", ".join(f"{seg.rings[t]} rows" for t in sorted(seg.rings)) + ") */",
             f"        static const {ctype} program[{len(seg.program)}][{len(keep)}] = {{\n{body}\n"
             "        };",
             "        size_t step;"]
    if seg.scratch_bytes:  # an in-place 1x1 conv: the M4 twin loop needs no scratch, the portable loop a row
        lines += [f"#if defined({prefix.upper()}_HAVE_MM2X2_ASM)",
                  "        int8_t *const row_scratch = NULL;",
                  "#else", f"        static int8_t row_scratch[{seg.scratch_bytes}];", "#endif"]
    if seg.acc_bytes:
        lines.append(f"        memset({sums}, 0, {seg.acc_bytes});")
    lines.append(f"        for (step = 0; step < {len(seg.program)}; ++step) {{\n"
                 f"            const {ctype} *e = program[step];\n            switch (e[0]) {{")
    lines += ["    " + c.replace("\n", "\n    ") for c in cases]
    lines.append("            default:\n                break;\n            }\n        }")
    if seg.acc_bytes:
        k = seg.nodes[-1]
        p, i = sched.prepared[k], sched.orig[k]
        out = ptr(graph.nodes[k].outputs[0])
        lines.append(f"        {prefix}_{p.entry}_sums(&{prefix}_n{i}, {sums}, {out});")
    lines.append("    }")
    return "\n".join(lines)


CONV_BAND_HELPER = """
typedef void (*${prefix}_conv_fn)(const ${prefix}_conv_params *, const int8_t *, int8_t *, int8_t *,
                                 int8_t *, int, const int8_t *);

/* A conv or depthwise layer's output rows [r0, r1) from the input band starting at its row lo (see
 * ${prefix}_band): a copy of its parameters describes the band as an image. */
static void ${prefix}_conv_band(const ${prefix}_conv_params *p, ${prefix}_conv_fn fn, int r0, int r1,
                                const int8_t *in, int8_t *out, int8_t *scratch, int8_t *col,
                                const int8_t *other)
{
    ${prefix}_conv_params q = *p;
    ${prefix}_band(&q.in_h, &q.out_h, &q.padding_h, r0, r1, q.stride_h, (q.filter_h - 1) * q.dilation_h);
    fn(&q, in, out, scratch, col, 0, other);
}
"""

BAND_HELPER = """
/* Output rows [r0, r1) of a windowed layer as a shorter image: its input band starts at row lo of the real
 * input, the rows above lo that the window reaches are padding (padding_h), those below the band too. */
static void ${prefix}_band(int *in_h, int *out_h, int *padding_h, int r0, int r1, int stride, int span)
{
    int lo = r0 * stride - *padding_h, hi = (r1 - 1) * stride - *padding_h + span + 1;
    if (lo < 0) {
        lo = 0;
    }
    if (hi > *in_h) {
        hi = *in_h;
    }
    *padding_h += lo - r0 * stride;
    *in_h = hi - lo;
    *out_h = r1 - r0;
}
"""


def lone_depthwise_rows(plan: Plan) -> bool:
    """A streamed depthwise layer on the M4 pair loop runs bands of odd height: lone rows, worth the loop's
    column-pair variant."""
    return any(seg.band % 2 and plan.schedule.prepared[k].ints.get("dw_pairs")
               for seg in plan.segments for k in seg.nodes)


def kernel_defines(plan: Plan) -> list[str]:
    """The kernels.h defines (after the prefix) that keep depthwise code no call of this library reaches
    out of it (kernels/depthwise_conv2d.h): ``DW_COLUMNS`` (the column loops) when a layer on the pair loop
    streams in bands of odd height; ``DW_NO_ROWS`` when every such layer runs bands of one row, on the
    column loops (strides 1 and 2); ``DW_NO_PORTABLE`` when every depthwise layer runs the pair loop (none
    off it, none with a fused ADD, which takes the portable path)."""
    sched = plan.schedule
    dw = {k: p for k, p in sched.prepared.items() if "depthwise_conv2d" in p.files}
    pairs = {k: p for k, p in dw.items() if p.ints.get("dw_pairs") and k not in sched.fused}
    out = ["DW_COLUMNS"] if lone_depthwise_rows(plan) else []

    def one_row(k: int) -> bool:
        seg, i = plan.segment_of(k), pairs[k].ints
        return (seg is not None and seg.band == 1 or i["out_h"] == 1) and i["stride_w"] <= 2

    if out and all(one_row(k) for k in pairs):
        out.append("DW_NO_ROWS")
    if dw and len(pairs) == len(dw):
        out.append("DW_NO_PORTABLE")
    return out


def band_helpers(plan: Plan, prefix: str) -> list[str]:
    """The static helpers a streamed library's band calls use (none without windowed layers)."""
    kinds = [plan.schedule.prepared[k] for g in plan.segments for k in g.nodes]
    windows = [p for p in kinds if p.stream == "window"]
    out = [Template(BAND_HELPER).substitute(prefix=prefix).strip()] if windows else []
    if any(p.signature == "rows_col" for p in windows):
        out.append(Template(CONV_BAND_HELPER).substitute(prefix=prefix).strip())
    return out
