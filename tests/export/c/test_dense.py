"""Dense (FULLY_CONNECTED int8) layers in the C library against TFLM: the portable kernel on the host and
the Cortex-M4 6-filter loop (tinyopt_fc6q) under qemu, on sizes that reach every entry of the loop (one
block of 4 inputs, an odd block count, every remainder of the 8-pair unrolling, several passes) and every
partial last group (out_features not a multiple of 6), per-tensor and per-channel scales; in_features not a
multiple of 4 keep the portable loop on the M4 too. The same layers without their col buffer (the loops on
the int8 input: tinyopt_fc6b, tinyopt_fc2b) equal the runtime and TFLM, and cost what col_free_extra says."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from tflite_micro.python.tflite_micro import runtime

from tinyopt.export.c import generate_sources, write_library
from tinyopt.export.c.board import APT, build_host, build_m4, run_host, run_qemu
from tinyopt.export.c.params import pack_twins, twins_fit
from tinyopt.export.tflite import graph_to_tflite_bytes, single_op_model
from tinyopt.graph.ir import QuantParams, Tensor
from tinyopt.ops.fully_connected import FC6_MIN_MACS, GROUP, col_free_extra, pack_twin_groups
from tinyopt.runtime import Interpreter

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="no host C compiler (cc)")
HAVE_ARM = shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")

# (in_features, out_features, per_channel). Pair loop (under FC6_MIN_MACS): 1, 2, 5, 9, 17, 33 blocks of 4
# inputs, 1-13 outputs. 6-filter loop: 1, 2, 3, 15, 16, 17, 33, 100 and 196 blocks (every entry of the
# 16-block unrolling but a few), every count of filters left after the groups (0-5). Portable on the M4
# too: in_features not a multiple of 4, and 2,048 inputs (sums past the twin words' 2^23 bound).
SHAPES = [(4, 1, False), (8, 5, True), (20, 7, True), (36, 13, True), (68, 12, False), (132, 9, True),
          (4, 1030, False), (8, 515, True), (12, 343, False), (60, 70, True), (64, 66, False), (68, 61, True),
          (132, 33, False), (400, 20, True), (784, 11, False), (21, 7, True), (30, 3, False), (2048, 6, True)]


def _q(scale, zp, axis=None):
    return QuantParams(np.asarray(scale, np.float32), np.asarray(zp), axis)


def dense_model(k: int, o: int, per_channel: bool, seed: int, rows: int = 1):
    rng = np.random.default_rng(seed)
    w = rng.integers(-127, 128, size=(o, k), dtype=np.int8)
    w_s = rng.uniform(0.004, 0.02, size=o) if per_channel else np.array(0.01)
    in_s, out_s = 0.05, 0.05 * 0.01 * 73 * 73 * np.sqrt(k) / 40  # outputs spread over the int8 range
    bias = rng.integers(-5000, 5000, size=o, dtype=np.int32)
    zeros, axis = np.zeros(np.size(w_s), np.int64), 0 if per_channel else None
    bq = _q(in_s * np.asarray(w_s, np.float64), zeros)
    return single_op_model("FULLY_CONNECTED", [
        Tensor("x", (rows, k), "int8", quant=_q(in_s, int(rng.integers(-20, 20)))),
        Tensor("w", w.shape, "int8", data=w, quant=_q(w_s, zeros, axis)),
        Tensor("b", (o,), "int32", data=bias, quant=bq)],
        Tensor("y", (), "int8", quant=_q(out_s, int(rng.integers(-10, 10)))), {"activation": "NONE"})


def tflm(model: bytes, xs: np.ndarray) -> np.ndarray:
    interp = runtime.Interpreter.from_bytes(model)
    out = []
    for x in xs:
        interp.set_input(x.reshape(tuple(interp.get_input_details(0)["shape"])), 0)
        interp.invoke()
        out.append(interp.get_output(0).reshape(-1).copy())
    return np.stack(out)


@pytest.mark.parametrize("k,o,per_channel,rows",
                         [(*s, 1) for s in SHAPES] + [(64, 70, True, 3), (36, 9, False, 2)])
def test_dense_host_and_m4_equal_tflm(k, o, per_channel, rows, tmp_path):
    """Host = TFLM and M4 = TFLM; rows > 1: several input vectors, each widened into the same buffer."""
    g = dense_model(k, o, per_channel, seed=k * 31 + o, rows=rows)
    lib = generate_sources(g)
    # the M4 loops take every layer of whole blocks but the 2,048-input one: its sums pass 2^23 (twins_fit)
    assert ("wpairs" in lib.prepared[0].arrays) == (k % 4 == 0 and k != 2048)
    if k == 2048:
        w = g.tensors["w"].data.astype(np.int64)
        assert not twins_fit(w, np.zeros(o, np.int64)) and twins_fit(w[:, :1024] // 2, np.zeros(o, np.int64))
    write_library(lib.files, tmp_path / "lib")
    xs = np.random.default_rng(k + o).integers(-128, 128, size=(4, lib.input_bytes), dtype=np.int8)
    ref = tflm(graph_to_tflite_bytes(g), xs)
    assert len(np.unique(ref)) > min(o, 4)  # not saturated: the requantization is exercised
    host = run_host(build_host(tmp_path / "lib", tmp_path / "host"), xs, lib.output_bytes)
    assert np.array_equal(host, ref)
    if not HAVE_ARM:
        pytest.skip(f"Cortex-M toolchain or qemu absent: {APT}")
    outs, _ = run_qemu(build_m4(tmp_path / "lib", tmp_path / "m4", xs).elf, lib.output_bytes)
    assert np.array_equal(outs, ref)


def test_twin_groups_layout():
    """Words per group and block: pairs' (v0, v2) lanes then (v1, v3), each lane 256 a + b; the filters
    after the groups pair by pair (an odd last one with a zero twin), each pair's words in turn; the
    starting accumulators are the pairs' biases, [m, r, s] per real filter."""
    w = np.arange(-28, 28).reshape(7, 8)  # 2 blocks; a group of 6, then filter 6 and a zero twin
    words, rq = pack_twin_groups(w, np.arange(7), [1 << 30] * 7, [-2] * 7, 3, 1, -128, 127)
    assert len(words) == 2 * GROUP + 2 * 2 and len(rq) == 4 * GROUP + 2 + 3
    lanes = np.stack([words & 0xFFFF, (words >> 16) & 0xFFFF]).T.astype(np.int64)
    lanes = np.where(lanes >= 32768, lanes - 65536, lanes).tolist()
    assert lanes[0] == [256 * w[0, 0] + w[1, 0], 256 * w[0, 2] + w[1, 2]]  # block 0, pair 0, (v0, v2)
    assert lanes[2] == [256 * w[4, 0] + w[5, 0], 256 * w[4, 2] + w[5, 2]]  # pair 2
    assert lanes[3] == [256 * w[0, 1] + w[1, 1], 256 * w[0, 3] + w[1, 3]]  # then the (v1, v3) words
    assert lanes[6] == [256 * w[0, 4] + w[1, 4], 256 * w[0, 6] + w[1, 6]]  # block 1
    assert lanes[12] == [256 * w[6, 0], 256 * w[6, 2]] and lanes[15] == [256 * w[6, 5], 256 * w[6, 7]]
    # r = 2^(s-1) + offset * 2^s with s = 2: 2 + 3 * 4
    assert rq[:6].tolist() == [256 * 0 + 1, 1, 256 * 2 + 3, 3, 256 * 4 + 5, 5]
    assert rq[6:9].tolist() == [1 << 30, 14, 2]
    assert rq[24:].tolist() == [256 * 6, 0, 1 << 30, 14, 2]
    pairs, rq2 = pack_twin_groups(w, np.arange(7), [1 << 30] * 7, [-2] * 7, 3, 1, -128, 127, grouped=False)
    assert len(pairs) == 4 * 4 and rq2.tolist() == [1, 1, 515, 3, 1029, 5, 1536, 0] + [1 << 30, 14, 2] * 7
    assert pairs[:4].tolist() == pack_twins(w[:2], 1).tolist()  # pair 0's 2 blocks x 2 words first


@pytest.mark.parametrize("k,o,entry", [(64, 12, "fully_connected_pairs"), (784, 6, "fully_connected_fc6"),
                                       (32, 64, "fully_connected_pairs"), (21, 7, "fully_connected")])
def test_small_layers_run_pair_by_pair(k, o, entry):
    """Layers under FC6_MIN_MACS (KWS's and ResNet-8's heads) take the pair loop, so the 6-filter loop's
    code is not linked; others the 6-filter loop; in_features not a multiple of 4 the portable loop."""
    assert (k * o >= FC6_MIN_MACS) == (entry == "fully_connected_fc6") or entry == "fully_connected"
    assert generate_sources(dense_model(k, o, False, seed=1)).prepared[0].entry == entry


def _two_dense(encoded: bool):
    """x (256) -> dense 256 -> 64 (16,384 MACs; 4-bit weights, encoded or not) -> dense 64 -> 12 (int8)."""
    from tinyopt.graph.ir import Encoding, Graph, Node

    rng = np.random.default_rng(3)
    g = Graph("two", source="<two dense layers>")
    q = _q(0.05, 0)
    g.add_tensor(Tensor("x", (1, 256), "int8", quant=q))
    for name, (o, k) in {"1": (64, 256), "2": (12, 64)}.items():
        w = rng.integers(-8, 8, size=(o, k)) if name == "1" else rng.integers(-127, 128, size=(o, k))
        g.add_tensor(Tensor(f"w{name}", w.shape, "int8", data=w.astype(np.int8), quant=_q(0.01, 0),
                            encoding=Encoding(4, False, False) if encoded and name == "1" else None))
        g.add_tensor(Tensor(f"b{name}", (o,), "int32", data=np.zeros(o, np.int32), quant=_q(0.0005, 0)))
        g.add_tensor(Tensor(f"y{name}", (1, o), "int8", quant=q))
        g.add_node(Node(f"d{name}", "FULLY_CONNECTED", ["x" if name == "1" else "y1", f"w{name}", f"b{name}"],
                        [f"y{name}"], {"activation": "NONE"}))
    g.inputs, g.outputs = ["x"], ["y2"]
    return g.validate()


def test_the_6_filter_loop_only_when_a_large_layer_runs_on_it():
    """A small layer takes the 6-filter loop when the library carries it anyway (a large layer on the int8
    twin words), and pairs when the large layer is compressed: the loop's file stays out of the library."""
    plain = generate_sources(_two_dense(False))
    assert [p.entry for p in plain.prepared.values()] == ["fully_connected_fc6"] * 2
    assert "tinyopt_fully_connected_fc6.c" in plain.files
    packed = generate_sources(_two_dense(True), max_slowdown=10.0)  # the encoded layer stays compressed
    entries = [p.entry for p in packed.prepared.values()]
    assert entries[0].startswith("cfc_") and entries[1] != "fully_connected_fc6", entries
    assert "tinyopt_fully_connected_fc6.c" not in packed.files


DENSE_CALL = re.compile(r"(tinyopt_fully_connected_(?:fc6|pairs)\()([^;]*)\);")


def col_free_library(g, d: Path):
    """The ram plan's library of ``g``, written to ``d``: every dense layer runs without its col buffer (it
    saves that buffer's bytes at the layer's step), its call passing NULL."""
    lib = generate_sources(g, optimize="ram")
    write_library(lib.files, d)
    dense = {k for k, p in lib.prepared.items() if p.kind == "fully_connected"}
    assert dense and lib.plan.no_col >= dense and not lib.plan.col
    calls = DENSE_CALL.findall((d / "tinyopt_model.c").read_text())
    assert len(calls) == len(dense) and all(args.split(", ")[4] == "NULL" for _, args in calls), calls
    return lib


# (in_features, out_features, per_channel, rows): 1 block (depth 4, the 6-filter loop's lone odd block), 2
# blocks (depth 8), odd block counts (3, 17, 33), 4 and 7 passes of 16 pairs of blocks (400, 784 inputs),
# 6k filters (66) and 6k + 1 ... 6k + 5 (61, 20, 33, 70, 515), several rows on either loop; pair-loop
# layers (under FC6_MIN_MACS) with 1-13 filters, odd block counts and several rows.
COL_FREE = [(4, 1030, False, 1), (8, 515, True, 1), (12, 343, False, 1), (64, 66, False, 1),
            (68, 61, True, 1), (132, 33, False, 1), (60, 70, True, 1), (400, 20, True, 1),
            (784, 11, False, 1), (64, 70, True, 3), (132, 33, False, 4), (4, 1, False, 1), (8, 5, True, 1),
            (20, 7, True, 1), (36, 13, True, 1), (132, 9, True, 1), (36, 9, False, 2), (12, 6, False, 5)]


@pytest.mark.skipif(not HAVE_ARM, reason=f"Cortex-M toolchain or qemu absent: {APT}")
@pytest.mark.parametrize("k,o,per_channel,rows", COL_FREE)
def test_m4_without_col_equals_runtime_and_tflm(k, o, per_channel, rows, tmp_path):
    """col NULL: the M4 loops read the int8 input directly, several rows one after the other, = the runtime
    = TFLM; the host build too."""
    g = dense_model(k, o, per_channel, seed=k * 17 + o + rows, rows=rows)
    lib = col_free_library(g, tmp_path / "lib")
    p = lib.prepared[0]
    assert p.entry == ("fully_connected_fc6" if k * o >= FC6_MIN_MACS else "fully_connected_pairs")
    assert p.col_free_extra is not None
    xs = np.random.default_rng(k * o + rows).integers(-128, 128, size=(6, lib.input_bytes), dtype=np.int8)
    one_row = dense_model(k, o, per_channel, seed=k * 17 + o + rows)  # the same layer, batch 1: each row
    ref = Interpreter(one_row).run(xs.reshape(-1, k))[0].reshape(len(xs), -1)
    assert np.array_equal(ref, tflm(graph_to_tflite_bytes(g), xs))
    assert len(np.unique(ref)) > min(o, 4)
    outs, _ = run_qemu(build_m4(tmp_path / "lib", tmp_path / "m4", xs).elf, lib.output_bytes)
    assert np.array_equal(outs, ref)
    host = run_host(build_host(tmp_path / "lib", tmp_path / "host"), xs, lib.output_bytes)
    assert np.array_equal(host, ref)  # the portable loop ignores col


@pytest.mark.skipif(not HAVE_ARM, reason=f"Cortex-M toolchain or qemu absent: {APT}")
@pytest.mark.parametrize("k,o,rows", [(640, 128, 1), (128, 640, 2), (28, 300, 1), (132, 3, 8), (64, 12, 4)])
def test_col_free_extra_is_what_the_m4_counts(k, o, rows, tmp_path):
    """col_free_extra (the planner's price of dropping col) against qemu's instruction counts of the same
    layer built with and without col: within 2 SysTick ticks (10 instructions) per row. Deterministic
    counts (-icount), not timings."""
    g = dense_model(k, o, False, seed=5, rows=rows)
    xs = np.random.default_rng(0).integers(-128, 128, size=(1, k * rows), dtype=np.int8)
    lib = generate_sources(g, optimize="speed")
    write_library(lib.files, tmp_path / "col")
    assert "NULL, 0, NULL);" not in (tmp_path / "col" / "tinyopt_model.c").read_text()  # col given
    out_col, with_col = run_qemu(build_m4(tmp_path / "col", tmp_path / "m4c", xs).elf, lib.output_bytes)
    free = col_free_library(g, tmp_path / "free")
    out_free, without = run_qemu(build_m4(tmp_path / "free", tmp_path / "m4f", xs).elf, lib.output_bytes)
    assert np.array_equal(out_col, out_free)
    est = free.prepared[0].col_free_extra
    grouped = k * o >= FC6_MIN_MACS
    assert est == col_free_extra(rows, k, o, grouped)
    assert abs(int(without[0] - with_col[0]) - est) <= 10 * rows, (int(without[0] - with_col[0]), est)


@pytest.mark.skipif(not HAVE_ARM, reason=f"Cortex-M toolchain or qemu absent: {APT}")
@pytest.mark.parametrize("k,o,shift", [(68, 61, 1), (132, 33, 2), (36, 13, 3), (20, 7, 1)])
def test_m4_without_col_reads_an_unaligned_input(k, o, shift, tmp_path):
    """The planner may put an int8 tensor at any byte: the col-free loops' word loads of x (LDR, never
    LDRD or LDM) take an input 1-3 bytes past a word, here a copy the call is edited to read."""
    g = dense_model(k, o, True, seed=k + o, rows=2)
    lib = col_free_library(g, tmp_path / "lib")
    model = tmp_path / "lib" / "tinyopt_model.c"

    def unaligned(m):
        args = m.group(2).split(", ")
        copy = f"(int8_t *)unaligned_copy + {shift}"
        call = f"{m.group(1)}{', '.join([args[0], copy, *args[2:]])});"
        return (f"{{ static int32_t unaligned_copy[{2 * k // 4 + 1}]; memcpy({copy}, {args[1]}, {2 * k}); "
                f"{call} }}")

    src, n = DENSE_CALL.subn(unaligned, model.read_text())
    assert n == 1
    model.write_text(src)
    xs = np.random.default_rng(k).integers(-128, 128, size=(3, lib.input_bytes), dtype=np.int8)
    outs, _ = run_qemu(build_m4(tmp_path / "lib", tmp_path / "m4", xs).elf, lib.output_bytes)
    assert np.array_equal(outs, tflm(graph_to_tflite_bytes(g), xs))


# (input scale, weight scale, output scale, acc, TFLM's output). TFLM multiplies the per-tensor scales in
# double: 13431 * 0.0325899 * 0.0165087 / 0.3705885 = 19.49902 and 17962 * 0.0663951 * 0.0163542 / 0.2254886
# = 86.49610, whose doubly rounded requantization (high multiply to 2^-9 / 2^-7 units, then a rounding shift)
# lands on 19 and 87 with the double product's multiplier (1596262583, 1323675884) but on 20 and 86 with the
# float32 product's (1596262630, 1323675820): the high multiply rounds to 9983.5 +- a hair the other way.
TIES = [(0.032589931041002274, 0.01650870405137539, 0.370588481426239, 13431, 19),
        (0.06639506667852402, 0.01635424792766571, 0.2254885882139206, 17962, 87)]


@pytest.mark.parametrize("in_s,w_s,out_s,acc,want", TIES)
def test_per_tensor_multiplier_is_tflms_on_a_rounding_tie(in_s, w_s, out_s, acc, want, tmp_path):
    """Per-tensor scales: the multiplier from the double product of the scales, as TFLM's: outputs +-acc
    (through the weights, x all 1, and through the bias, x at its zero point) equal TFLM's +-want in the
    runtime, the host library and on the M4."""
    k = 2 * (acc // 127 + 1)
    row = np.zeros(k, np.int64)
    row[: acc // 127], row[acc // 127] = 127, acc % 127  # sums to acc
    w = np.stack([row, -row, np.zeros(k, np.int64), np.zeros(k, np.int64)]).astype(np.int8)
    bias = np.array([0, 0, acc, -acc], np.int32)
    g = single_op_model("FULLY_CONNECTED", [
        Tensor("x", (1, k), "int8", quant=_q(in_s, 0)),
        Tensor("w", w.shape, "int8", data=w, quant=_q(w_s, np.zeros(1, np.int64))),
        Tensor("b", (4,), "int32", data=bias, quant=_q(np.float64(in_s) * w_s, np.zeros(1, np.int64)))],
        Tensor("y", (), "int8", quant=_q(out_s, 0)), {"activation": "NONE"})
    xs = np.stack([np.ones(k, np.int8), np.zeros(k, np.int8)])
    ref = tflm(graph_to_tflite_bytes(g), xs)
    assert ref.tolist() == [[want, -want, want, -want], [0, 0, want, -want]]
    assert np.array_equal(Interpreter(g).run(xs)[0], ref)
    lib = generate_sources(g)
    write_library(lib.files, tmp_path / "lib")
    host = run_host(build_host(tmp_path / "lib", tmp_path / "host"), xs, lib.output_bytes)
    assert np.array_equal(host, ref)
    if HAVE_ARM:
        outs, _ = run_qemu(build_m4(tmp_path / "lib", tmp_path / "m4", xs).elf, lib.output_bytes)
        assert np.array_equal(outs, ref)
