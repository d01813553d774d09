"""Row-streamed segments (export/c/stream.py) compute exactly what whole tensors compute: the streamed
library equals the speed plan's library, tinyopt's numpy runtime and TFLM on random networks that put bands
at image borders, odd band sizes, strides 1 and 2, dilation 2, 'same'/'valid'/explicit PAD, residual ADDs
and a global average pool (or MEAN) at the end."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tinyopt.export.c import generate_sources, write_library
from tinyopt.export.c.board import build_host, run_host
from tinyopt.export.c.stream import build_segment
from tinyopt.export.tflite import graph_to_tflite_bytes
from tinyopt.graph.ir import Graph, Node, QuantParams, Tensor
from tinyopt.runtime import Interpreter

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="no host C compiler (cc)")


def _q(scale, zp, axis=None):
    return QuantParams(np.asarray(scale, np.float32), np.asarray(zp), axis)


def _conv(g: Graph, rng, i: int, cur: Tensor, kind: str, k: int, stride: int, dilation: int, pad: str,
          oc: int) -> Tensor:
    c = cur.shape[3]
    shape = (oc, k, k, c) if kind != "dw" else (1, k, k, oc)
    ws = rng.uniform(0.002, 0.01, oc).astype(np.float32)
    g.add_tensor(Tensor(f"w{i}", shape, "int8", data=rng.integers(-127, 128, size=shape, dtype=np.int8),
                        quant=_q(ws, np.zeros(oc), 0 if kind != "dw" else 3)))
    g.add_tensor(Tensor(f"b{i}", (oc,), "int32", data=rng.integers(-2000, 2000, oc).astype(np.int32),
                        quant=_q(float(cur.quant.scale[0]) * ws, np.zeros(oc), 0)))
    y = g.add_tensor(Tensor(f"t{i}", (1, 1, 1, 1), "int8", quant=_q(float(rng.uniform(0.03, 0.08)),
                                                                     int(rng.integers(-30, 30)))))
    attrs = {"stride": (stride, stride), "padding": pad, "activation": str(rng.choice(["NONE", "RELU"])),
             "dilation": (dilation, dilation)}
    if kind == "dw":
        attrs["depth_multiplier"] = 1
    op = "DEPTHWISE_CONV_2D" if kind == "dw" else "CONV_2D"
    g.add_node(Node(f"{kind}{i}", op, [cur.name, f"w{i}", f"b{i}"], [y.name], attrs))
    g.infer_shapes()
    return y


def random_network(seed: int) -> Graph:
    """Convolutions with random kernels (1, 3, 5), strides, dilations and padding ('same', 'valid', an
    explicit PAD node), residual ADDs between same-shaped tensors, and for even seeds a global average pool
    (AVERAGE_POOL_2D or MEAN) closing the network."""
    rng = np.random.default_rng(seed)
    g = Graph(f"stream{seed}", source=f"<random streamed network {seed}>")
    h, w, c = int(rng.integers(7, 16)), int(rng.integers(3, 9)), int(rng.choice([1, 3, 4, 8]))
    x = g.add_tensor(Tensor("x", (1, h, w, c), "int8", quant=_q(0.05, int(rng.integers(-20, 20)))))
    g.inputs = [x.name]
    history = [x]
    for i in range(int(rng.integers(4, 8))):
        cur = history[-1]
        _, h, w, c = cur.shape
        kind = str(rng.choice(["conv", "dw", "pw", "add"]))
        same = [t for t in history[:-1] if t.shape == cur.shape]
        if kind == "add" and not same:
            kind = "dw"
        if kind == "add":
            y = g.add_tensor(Tensor(f"t{i}", (1, 1, 1, 1), "int8",
                                    quant=_q(float(rng.uniform(0.03, 0.08)), int(rng.integers(-30, 30)))))
            g.add_node(Node(f"add{i}", "ADD", [cur.name, same[-1].name], [y.name], {"activation": "RELU"}))
            g.infer_shapes()
        else:
            k = 1 if kind == "pw" else int(rng.choice([1, 3, 5]))
            stride = 1 if kind == "pw" or h < 6 else int(rng.choice([1, 1, 2]))
            dilation = 2 if k == 3 and stride == 1 and rng.random() < 0.3 else 1
            pad = "SAME" if kind == "pw" else str(rng.choice(["SAME", "VALID", "PAD"]))
            if pad == "PAD":  # an explicit PAD node (as torch models convert) in front of a 'valid' conv
                pads = rng.integers(0, 3, size=(2, 2))
                g.add_tensor(Tensor(f"p{i}", (4, 2), "int32",
                                    data=np.array([[0, 0], *pads, [0, 0]], np.int32)))
                padded = g.add_tensor(Tensor(f"padded{i}", (1, 1, 1, 1), "int8", quant=cur.quant))
                g.add_node(Node(f"pad{i}", "PAD", [cur.name, f"p{i}"], [padded.name]))
                g.infer_shapes()
                cur, pad = g.tensors[padded.name], "VALID"
                _, h, w, c = cur.shape
            if pad == "VALID" and ((k - 1) * dilation + 1 > h - 2 or (k - 1) * dilation + 1 > w):
                pad = "SAME"
            oc = c if kind == "dw" else int(rng.choice([c, 4, 8, 6]))
            y = _conv(g, rng, i, cur, kind, k, stride, dilation, pad, oc)
        history.append(g.tensors[y.name])
    _, h, w, c = history[-1].shape
    if seed % 4 == 0:
        y = g.add_tensor(Tensor("pooled", (1, 1, 1, c), "int8", quant=history[-1].quant))
        g.add_node(Node("gap", "AVERAGE_POOL_2D", [history[-1].name], [y.name],
                        {"filter": (h, w), "stride": (1, 1), "padding": "VALID", "activation": "NONE"}))
    elif seed % 4 == 2:  # a global average pool as torch's adaptive pooling converts: MEAN over H and W
        g.add_tensor(Tensor("axes", (2,), "int32", data=np.array([1, 2], np.int32)))
        y = g.add_tensor(Tensor("pooled", (1, 1, 1, c), "int8", quant=_q(float(rng.uniform(0.01, 0.05)),
                                                                          int(rng.integers(-10, 10)))))
        g.add_node(Node("mean", "MEAN", [history[-1].name, "axes"], [y.name], {"keep_dims": True}))
    if seed % 2 == 0:
        g.infer_shapes()
        history.append(g.tensors[y.name])
    g.outputs = [history[-1].name]
    return g.validate()


def _force_streaming(monkeypatch, band: int) -> None:
    """Make the generator stream the longest run of streamable nodes in bands of ``band`` rows, whether
    or not that saves RAM (small random networks often gain nothing)."""
    from tinyopt.export.c import generate, plan, stream

    def forced(graph, prepared, **kw):
        sched = plan.make_schedule(graph, prepared)
        speed = plan._speed_plan(sched, True, True)
        root = plan.tensor_roots(sched, speed.order)
        for a, b in sorted(stream.valid_runs(sched, speed.order, root), key=lambda r: r[0] - r[1]):
            after = stream.live_after(sched, speed.order, b, root)
            seg = stream.build_segment(sched, speed.order[a:b + 1], band, root, after)
            if seg is not None:
                return plan.build_plan(sched, speed.order, segments=[seg])
        return speed

    monkeypatch.setattr(generate, "best_plan", forced)


def _host(g: Graph, xs: np.ndarray, tmp_path, name: str, **kw):
    lib = generate_sources(g, **kw)
    write_library(lib.files, tmp_path / name)
    return lib, run_host(build_host(tmp_path / name, tmp_path / f"{name}.exe"), xs, lib.output_bytes)


def _tflm(g: Graph, xs: np.ndarray) -> np.ndarray:
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(graph_to_tflite_bytes(g))
    out = []
    for x in xs:
        interp.set_input(x.reshape(g.tensors["x"].shape), 0)
        interp.invoke()
        out.append(interp.get_output(0).reshape(-1).copy())
    return np.stack(out)


@pytest.mark.parametrize("seed", range(16))
def test_streamed_library_equals_speed_plan_runtime_and_tflm(seed, tmp_path, monkeypatch):
    g = random_network(seed)
    xs = np.random.default_rng(seed).integers(-128, 128, size=(12, g.tensors["x"].size), dtype=np.int8)
    speed, whole = _host(g, xs, tmp_path, "speed", optimize="speed")
    assert not speed.plan.segments
    _force_streaming(monkeypatch, band=1 + seed % 3)
    ram, streamed = _host(g, xs, tmp_path, "streamed")
    assert ram.plan.segments, "the case must really stream"
    ram.plan.planner.check_no_overlap()
    assert np.array_equal(streamed, whole)
    ref = Interpreter(g).run(xs.reshape(len(xs), *g.tensors["x"].shape[1:]))[0].reshape(len(xs), -1)
    assert np.array_equal(streamed, ref)
    assert np.array_equal(streamed, _tflm(g, xs))


@pytest.mark.parametrize("band", [1, 2, 3, 5])
def test_every_band_height_gives_the_same_outputs(band, tmp_path, monkeypatch):
    """Odd and even bands, and bands that do not divide the image height (14 rows)."""
    g = random_network(2)
    xs = np.random.default_rng(7).integers(-128, 128, size=(6, g.tensors["x"].size), dtype=np.int8)
    _, whole = _host(g, xs, tmp_path, "speed", optimize="speed")
    _force_streaming(monkeypatch, band)
    lib, streamed = _host(g, xs, tmp_path, f"band{band}")
    assert lib.plan.segments and all(s.band == band for s in lib.plan.segments)
    assert np.array_equal(streamed, whole)


def test_segment_output_overlaps_its_dying_input(tmp_path):
    """A streamed stem (conv 3x3 'same' from 8 to 32 channels, depthwise 3x3, pointwise back to 8) in front
    of a dense head: the stem's whole output is placed over the input rows it no longer reads, and the
    library still equals the speed plan and TFLM."""
    rng = np.random.default_rng(5)
    g = Graph("stem", source="<stem and head>")
    x = g.add_tensor(Tensor("x", (1, 24, 8, 8), "int8", quant=_q(0.05, 3)))  # 1,536 B
    g.inputs = ["x"]
    a = _conv(g, rng, 0, x, "conv", 3, 1, 1, "SAME", 32)  # expands 4x: no whole-tensor plan runs it in place
    b = _conv(g, rng, 1, g.tensors[a.name], "dw", 3, 1, 1, "SAME", 32)
    c = _conv(g, rng, 2, g.tensors[b.name], "pw", 1, 1, 1, "SAME", 8)
    flat = g.add_tensor(Tensor("flat", (1, 24 * 8 * 8), "int8", quant=g.tensors[c.name].quant))
    g.add_tensor(Tensor("shape", (2,), "int32", data=np.array([1, 24 * 8 * 8], np.int32)))
    g.add_node(Node("flatten", "RESHAPE", [c.name, "shape"], [flat.name], {"new_shape": (1, 24 * 8 * 8)}))
    w = rng.integers(-127, 128, size=(10, 24 * 8 * 8), dtype=np.int8)
    zeros = np.zeros(10)
    g.add_tensor(Tensor("wd", w.shape, "int8", data=w, quant=_q(np.full(10, 0.002, np.float32), zeros, 0)))
    g.add_tensor(Tensor("bd", (10,), "int32", data=np.zeros(10, np.int32),
                        quant=_q(np.full(10, 1e-4), zeros, 0)))
    y = g.add_tensor(Tensor("y", (1, 10), "int8", quant=_q(0.1, 0)))
    g.add_node(Node("head", "FULLY_CONNECTED", [flat.name, "wd", "bd"], [y.name], {"activation": "NONE"}))
    g.outputs = ["y"]
    g.infer_shapes()
    g.validate()
    xs = np.random.default_rng(1).integers(-128, 128, size=(8, x.size), dtype=np.int8)
    _, whole = _host(g, xs, tmp_path, "speed", optimize="speed")
    lib, streamed = _host(g, xs, tmp_path, "ram", optimize="ram")
    (seg,) = lib.plan.segments
    assert seg.nodes == [0, 1, 2] and seg.bounds["x"] < lib.plan.planner.buffers["x"].size
    assert 2 in lib.plan.planner.in_place_nodes()  # the stem's output overlaps the input
    lib.plan.planner.check_no_overlap()
    assert np.array_equal(streamed, whole)
    assert np.array_equal(streamed, _tflm(g, xs))


def test_ram_mode_streams_when_that_saves_ram(tmp_path):
    g = random_network(2)
    xs = np.random.default_rng(3).integers(-128, 128, size=(6, g.tensors["x"].size), dtype=np.int8)
    speed, whole = _host(g, xs, tmp_path, "speed", optimize="speed")
    ram, streamed = _host(g, xs, tmp_path, "ram", optimize="ram")
    assert ram.plan.segments and ram.arena_bytes < speed.arena_bytes
    assert np.array_equal(streamed, whole)


def test_line_buffers_hold_the_window_rows_by_hand():
    """conv 3x3 stride 1 'same' then conv 3x3 stride 2 'same' on 8 rows, one row per band. TF's 'same'
    pads the stride-2 layer at the bottom only (total 1), so its output row r reads rows 2r..2r+2: the
    first tensor's line buffer holds those 3 rows. Program, by hand: the first conv computes rows 0, 1, 2
    (input rows from 0, 0, 1: its top row is padding), the second conv row 0 from buffer row 0; then row 3
    needs room: rows 0 and 1 are dead, row 2 moves down to buffer row 0."""
    from tinyopt.export.c.params import prepare
    from tinyopt.export.c.plan import make_schedule, tensor_roots

    rng = np.random.default_rng(0)
    g = Graph("hand")
    x = g.add_tensor(Tensor("x", (1, 8, 4, 4), "int8", quant=_q(0.05, 0)))
    g.inputs = ["x"]
    a = _conv(g, rng, 0, x, "conv", 3, 1, 1, "SAME", 4)
    b = _conv(g, rng, 1, g.tensors[a.name], "conv", 3, 2, 1, "SAME", 4)
    g.outputs = [b.name]
    prepared = {i: prepare(g, i, n) for i, n in enumerate(g.nodes)}
    sched = make_schedule(g, prepared)
    root = tensor_roots(sched, [0, 1])
    seg = build_segment(sched, [0, 1], 1, root, {b.name})
    assert seg.rings == {a.name: 3}
    move = 2  # the case number of the line buffer's move (after the two nodes)
    assert seg.program[:6] == [(0, 0, 1, 0, 0, 0), (0, 1, 2, 0, 0, 1), (0, 2, 3, 1, 0, 2), (1, 0, 1, 0, 0, 0),
                               (move, 2, 0, 1, 0, 0), (0, 3, 4, 2, 0, 1)]


@pytest.mark.skipif(not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")),
                    reason="Cortex-M toolchain or qemu absent")
@pytest.mark.parametrize("seed,band", [(3, 1), (6, 1), (10, 2), (7, 1), (11, 2), (14, 1)])
def test_streamed_m4_build_equals_host(seed, band, tmp_path, monkeypatch):
    """The Cortex-M4 paths on bands: the depthwise pair loop on lone rows, the twin loop's 1x1 conv in place
    over a line buffer (seeds 3, 6, 10: pair-loop depthwise layers; 7, 11, 14: a 1x1 conv in place)."""
    from tinyopt.export.c.board import build_m4, run_qemu

    g = random_network(seed)
    _force_streaming(monkeypatch, band)
    xs = np.random.default_rng(seed).integers(-128, 128, size=(3, g.tensors["x"].size), dtype=np.int8)
    lib, host = _host(g, xs, tmp_path, "lib")
    m4 = build_m4(tmp_path / "lib", tmp_path / "m4", xs)
    out, _ = run_qemu(m4.elf, lib.output_bytes)
    assert np.array_equal(out, host)


@pytest.mark.skipif(not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")),
                    reason="Cortex-M toolchain or qemu absent")
@pytest.mark.parametrize("stride,width", [(1, 7), (2, 9), (2, 36)])
def test_lone_depthwise_rows_on_column_pairs_m4(stride, width, tmp_path, monkeypatch):
    """1-row bands of 3x3 depthwise layers on the M4 run the pair loop on neighbouring columns (stride_w 1
    and 2, an odd last column alone, spans of 16 columns and a remainder): = host = TFLM."""
    from tinyopt.export.c.board import build_m4, run_qemu

    rng = np.random.default_rng(stride + width)
    g = Graph("dwcols")
    x = g.add_tensor(Tensor("x", (1, 9, width, 8), "int8", quant=_q(0.05, -4)))
    g.inputs = ["x"]
    a = _conv(g, rng, 0, x, "pw", 1, 1, 1, "SAME", 8)
    b = _conv(g, rng, 1, g.tensors[a.name], "dw", 3, stride, 1, "SAME", 8)
    c = _conv(g, rng, 2, g.tensors[b.name], "dw", 3, 1, 1, "VALID", 8)
    g.outputs = [c.name]
    g.validate()
    _force_streaming(monkeypatch, 1)
    xs = np.random.default_rng(0).integers(-128, 128, size=(3, x.size), dtype=np.int8)
    lib, host = _host(g, xs, tmp_path, "lib")
    assert "TINYOPT_DW_COLUMNS 1" in lib.files["tinyopt_kernels.h"]
    m4 = build_m4(tmp_path / "lib", tmp_path / "m4", xs)
    out, _ = run_qemu(m4.elf, lib.output_bytes)
    assert np.array_equal(out, host) and np.array_equal(host, _tflm(g, xs))
