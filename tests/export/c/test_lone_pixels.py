"""Lone pixels on the Cortex-M4 loops (kernels/conv2d_lone.c, the depthwise column loop's odd last column):
layers of odd output width streamed in 1-row bands (every band ends on a lone pixel) and run whole, with
strides, dilation, padding, partial filter groups and a fused residual ADD; the M4 build equals the host
build and TFLM. The defines that leave unreached depthwise code out of a library (stream_c.kernel_defines),
and the instruction estimate's pixels of work per band, by hand."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
from test_stream import _conv, _force_streaming, _host, _q, _tflm

from tinyopt.export.c import generate_sources, stream_c, write_library
from tinyopt.export.c.params import prepare
from tinyopt.export.c.stream import COLUMN_COPY, LONE_COLUMN, LONE_PIXEL, band_pixels
from tinyopt.graph.ir import Graph, Node, Tensor

HAVE_ARM = shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm") and shutil.which("cc")
arm = pytest.mark.skipif(not HAVE_ARM, reason="Cortex-M toolchain, qemu or a host compiler absent")

# (input h, w, c), then layers (kind, kernel, stride, dilation, padding, output channels)
CASES = {
    # 3x3 conv on 5 columns, its 1x1 partner in place over its rows (6 filters: a partial group), a conv
    # of 3 filters at stride 2 (out_w 3), dilation 2
    "conv": ((9, 5, 4), [("conv", 3, 1, 1, "SAME", 8), ("pw", 1, 1, 1, "SAME", 8), ("pw", 1, 1, 1, "SAME", 6),
                         ("conv", 3, 2, 1, "SAME", 3), ("conv", 3, 1, 2, "SAME", 4)]),
    # depthwise spans: 17 columns (16 + a lone one), stride_w 2 to 9 columns, 'valid' to 7, 1 column
    "depthwise": ((8, 17, 8), [("dw", 3, 1, 1, "SAME", 8), ("dw", 3, 2, 1, "SAME", 8),
                               ("dw", 3, 1, 1, "VALID", 8), ("pw", 1, 1, 1, "SAME", 8)]),
    "one column": ((7, 1, 4), [("pw", 1, 1, 1, "SAME", 8), ("dw", 3, 1, 1, "SAME", 8),
                               ("conv", 3, 1, 1, "SAME", 4)]),
    # 3 input channels (patch rows cut by the padding word by word), a 1x1 conv of stride 2 (rows of pairs
    # widened by the loop itself, then the lone pixel), 5x5 'valid'
    "rgb": ((11, 9, 3), [("conv", 3, 1, 1, "SAME", 8), ("pw", 1, 2, 1, "SAME", 8),
                         ("conv", 5, 1, 1, "VALID", 4)]),
}


def _stack(name: str, seed: int) -> Graph:
    (h, w, c), layers = CASES[name]
    rng = np.random.default_rng(seed)
    g = Graph(f"lone {name}", source=f"<lone pixels: {name}>")
    cur = g.add_tensor(Tensor("x", (1, h, w, c), "int8", quant=_q(0.05, -3)))
    g.inputs = ["x"]
    for i, (kind, k, stride, dilation, pad, oc) in enumerate(layers):
        cur = g.tensors[_conv(g, rng, i, cur, kind, k, stride, dilation, pad, oc).name]
    g.outputs = [cur.name]
    return g.validate()


def _residual(seed: int) -> Graph:
    """A 1x1 conv on 7 columns whose output an ADD sums with the conv's input: the ADD fuses into the
    conv, so each lone pixel's outputs go through the fused ADD."""
    rng = np.random.default_rng(seed)
    g = Graph("lone residual", source="<lone pixels: residual>")
    x = g.add_tensor(Tensor("x", (1, 6, 7, 8), "int8", quant=_q(0.05, 2)))
    g.inputs = ["x"]
    a = _conv(g, rng, 0, x, "conv", 3, 1, 1, "SAME", 8)
    b = _conv(g, rng, 1, g.tensors[a.name], "pw", 1, 1, 1, "SAME", 8)
    y = g.add_tensor(Tensor("y", (1, 1, 1, 1), "int8", quant=_q(0.07, -5)))
    g.add_node(Node("add", "ADD", [b.name, a.name], [y.name], {"activation": "NONE"}))
    g.infer_shapes()
    g.outputs = ["y"]
    return g.validate()


def _strides(seed: int) -> Graph:
    """Depthwise layers on the pair loop with unequal strides: (1, 3) (no column loop for a stride of 3:
    its lone rows run as pairs of rows), (2, 1) and (1, 2), the last two on the stride-2 entry."""
    rng = np.random.default_rng(seed)
    g = Graph("lone strides", source="<lone pixels: strides>")
    cur = g.add_tensor(Tensor("x", (1, 9, 23, 8), "int8", quant=_q(0.05, 1)))
    g.inputs = ["x"]
    for i, stride in enumerate([(1, 3), (2, 1), (1, 2)]):
        y = g.tensors[_conv(g, rng, i, cur, "dw", 3, 1, 1, "SAME", 8).name]
        g.nodes[-1].attrs["stride"] = stride
        g.infer_shapes()
        cur = y
    g.outputs = [cur.name]
    return g.validate()


def _m4(lib, tmp_path, xs):
    from tinyopt.export.c.board import build_m4, run_qemu

    m4 = build_m4(tmp_path / "lib", tmp_path / "m4", xs)
    return run_qemu(m4.elf, lib.output_bytes)[0]


@arm
@pytest.mark.parametrize("band", [1, 3, None], ids=["1-row bands", "3-row bands", "whole"])
@pytest.mark.parametrize("name", [*CASES, "residual", "strides"])
def test_lone_pixels_on_the_m4_equal_host_and_tflm(name, band, tmp_path, monkeypatch):
    special = {"residual": _residual, "strides": _strides}
    g = special[name](4) if name in special else _stack(name, sorted(CASES).index(name))
    xs = np.random.default_rng(1).integers(-128, 128, size=(3, g.tensors["x"].size), dtype=np.int8)
    if band is not None:
        _force_streaming(monkeypatch, band)
    lib, host = _host(g, xs, tmp_path, "lib", **({"optimize": "speed"} if band is None else {}))
    assert bool(lib.plan.segments) == (band is not None)
    # every case but the depthwise strides has a conv of odd output width
    assert ("tinyopt_conv2d_lone.c" in lib.files) == (name != "strides")
    assert np.array_equal(host, _tflm(g, xs))
    assert np.array_equal(_m4(lib, tmp_path, xs), host)


def test_only_odd_widths_carry_the_single_pixel_loop():
    g = _stack("conv", 0)
    prepared = {i: prepare(g, i, n) for i, n in enumerate(g.nodes)}
    odd = {i: p.ints["out_w"] % 2 == 1 for i, p in prepared.items()}
    assert all(odd.values())
    assert {p.entry for p in prepared.values()} == {"conv2d_lone"}
    rng = np.random.default_rng(0)
    even = Graph("even")
    x = even.add_tensor(Tensor("x", (1, 6, 8, 4), "int8", quant=_q(0.05, 0)))
    even.inputs = ["x"]
    even.outputs = [_conv(even, rng, 0, x, "conv", 3, 1, 1, "SAME", 8).name]
    lib = generate_sources(even.validate(), optimize="ram")
    assert "tinyopt_conv2d_lone.c" not in lib.files and "tinyopt_conv2d.c" in lib.files


def test_stride_2_depthwise_layers_bring_their_loops():
    """The stride-2 pair loops are in their own file: a library carries it only for a depthwise layer on the
    pair loop with a stride of 2 (KWS's are all stride 1)."""
    g = _strides(0)
    entries = [prepare(g, i, n).entry for i, n in enumerate(g.nodes)]
    assert entries == ["depthwise_conv2d", "depthwise_conv2d_s2", "depthwise_conv2d_s2"]
    assert "tinyopt_depthwise_s2.c" in generate_sources(g).files
    assert "tinyopt_depthwise_s2.c" not in generate_sources(_stack("one column", 0)).files


def _with_defines(lib, defines: list[str]) -> dict:
    """The library's files with exactly ``defines`` of the depthwise ones in kernels.h."""
    guard = "#define TINYOPT_KERNELS_H\n"
    h = re.sub(r"#define TINYOPT_DW_\w+ 1\n", "", lib.files["tinyopt_kernels.h"])
    return {**lib.files, "tinyopt_kernels.h": h.replace(guard, guard + "".join(
        f"#define TINYOPT_{d} 1\n" for d in defines), 1)}


@arm
@pytest.mark.parametrize("name,band,defines", [
    ("depthwise", 1, ["DW_COLUMNS", "DW_NO_ROWS", "DW_NO_PORTABLE"]),
    ("depthwise", 3, ["DW_COLUMNS", "DW_NO_PORTABLE"]),
    ("strides", 1, ["DW_COLUMNS", "DW_NO_PORTABLE"]),  # stride_w 3: its lone rows need the row loop
    ("strides", None, ["DW_NO_PORTABLE"]),
    ("dilated", 1, ["DW_COLUMNS", "DW_NO_ROWS"])])  # a dilated depthwise layer: the portable path
def test_kernel_defines_leave_out_code_no_call_reaches(name, band, defines, tmp_path, monkeypatch):
    """stream_c.kernel_defines: with its defines in kernels.h the M4 build is smaller than with the column
    loops' alone, and still = host = TFLM."""
    from tinyopt.export.c.board import build_host, build_m4, run_host, run_qemu

    if name == "dilated":
        g = _stack("depthwise", 2)
        g.nodes[0].attrs["dilation"] = (2, 2)
        g.infer_shapes()
        g.validate()
    else:
        g = _strides(4) if name == "strides" else _stack(name, 3)
    xs = np.random.default_rng(2).integers(-128, 128, size=(3, g.tensors["x"].size), dtype=np.int8)
    if band is not None:
        _force_streaming(monkeypatch, band)
    lib = generate_sources(g, **({"optimize": "speed"} if band is None else {}))
    assert stream_c.kernel_defines(lib.plan) == defines
    write_library(_with_defines(lib, [d for d in defines if d == "DW_COLUMNS"]), tmp_path / "all")
    write_library(_with_defines(lib, defines), tmp_path / "lib")
    host = run_host(build_host(tmp_path / "lib", tmp_path / "host"), xs, lib.output_bytes)
    assert np.array_equal(host, _tflm(g, xs))
    m4 = build_m4(tmp_path / "lib", tmp_path / "m4", xs)
    assert np.array_equal(run_qemu(m4.elf, lib.output_bytes)[0], host)
    assert m4.flash_bytes < build_m4(tmp_path / "all", tmp_path / "m4all", xs).flash_bytes


def test_band_pixels_by_hand():
    """The estimate's pixels of M4 work per band, for 5-column layers (as KWS's): a 1-row band of a twin-loop
    conv is 4 pixels in pairs and one alone (LONE_PIXEL more); 2 rows pair evenly. A depthwise lone row on
    the column loop: 5 pixels, its band copied for one row (COLUMN_COPY per pixel) and the odd column alone
    (LONE_COLUMN); without the column loop a lone row runs as a pair of rows (10 pixels)."""
    g = _stack("depthwise", 0)
    dw = prepare(g, 0, g.nodes[0])
    pw = prepare(g, 3, g.nodes[3])
    assert dw.ints["dw_pairs"] and "wpairs" in pw.arrays
    assert band_pixels(pw, 1, 5, True) == pytest.approx(5 + LONE_PIXEL)
    assert band_pixels(pw, 2, 5, True) == 10
    assert band_pixels(dw, 1, 5, True) == pytest.approx(5 * (1 + COLUMN_COPY) + LONE_COLUMN)
    assert band_pixels(dw, 1, 5, False) == 10
    assert band_pixels(dw, 3, 4, True) == pytest.approx(8 + 4 * (1 + COLUMN_COPY))
    s3 = prepare(_strides(0), 0, _strides(0).nodes[0])
    assert s3.ints["stride_w"] == 3 and band_pixels(s3, 1, 8, True) == 16  # no column loop: a pair of rows
