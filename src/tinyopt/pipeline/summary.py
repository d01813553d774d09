"""The closing table of a run, printed with rich."""

from __future__ import annotations

COLUMNS = [("variant", "variant"), ("accuracy", "accuracy"), ("params", "params"),
           ("flash_bytes", "flash B"), ("ram_bytes", "RAM B"), ("latency_ms", "latency ms"),
           ("energy_mj", "energy mJ"), ("fits", "fits")]


def _cell(key, v) -> str:
    if v is None:
        return "–"
    if key == "accuracy":
        return f"{100 * v:.2f} %"
    if key == "energy_mj":
        return f"{v:.4g}"
    if key == "fits":
        return "[green]yes[/]" if v else "[red]no[/]"
    if isinstance(v, float):
        return f"{v:,.3f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def print_summary(console, res) -> None:
    from rich.table import Table

    if res.data:
        d = res.data
        counts = [sum(r[k] for k in ("train", "val", "test")) for r in d["balance"]]
        console.print(f"data: {d['source']}: {len(d['classes'])} classes ({min(counts)}–{max(counts)} "
                      f"examples each), " + ", ".join(f"{k} {v:,}" for k, v in d["sizes"].items())
                      + f"; features {'×'.join(map(str, d['feature_shape']))}")
    table = Table(title="variants on the test split", title_justify="left")
    cols = [(k, h) for k, h in COLUMNS if any(k in v for v in res.variants)]
    for k, h in cols:
        table.add_column(h, justify="left" if k == "variant" else "right")
    for v in res.variants:
        table.add_row(*(_cell(k, v.get(k)) for k, _ in cols))
    console.print(table)
    for name, v in res.verify.items():
        ok = "[green]0 mismatches[/]" if v["mismatches"] == 0 else f"[red]{v['mismatches']} mismatches[/]"
        console.print(f"{name}: tinyopt int8 runtime vs TFLM on {v['examples']} test examples: {ok}")
    if res.feature_ram_bytes:
        console.print(f"RAM kept free for the feature buffers: {res.feature_ram_bytes:,} B "
                      "(checked in the fit)")
    if res.deploy.get("features_path"):
        console.print(f"feature extraction in C: {res.out / res.deploy['features_path']} (same "
                      "numbers as training)")
    if res.deploy.get("path"):
        console.print(f"C library: {res.out / res.deploy['path']} ({res.deploy['files']} files, arena "
                      f"{res.deploy['arena_bytes']:,} B)")
    for note in res.notes:
        console.print(f"[yellow]note:[/] {note}")
    if res.report:
        console.print(f"report: {res.report}")
