"""Compressed weights in the C library (export/c/compressed.py, kernels/cmat*.c, cdw.c): every layout stores
exactly the graph's int8 values (numpy decode), and the library built from it equals the numpy runtime bit
for bit on the host and on the Cortex-M4 under qemu; the per-layer choice keeps to its budget."""

from __future__ import annotations

import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest

from runtime._reference import qtensor, random_int8
from tinyopt.errors import ConfigError
from tinyopt.export.c import compressed, generate_sources, write_library
from tinyopt.export.c.board import build_host, build_m4, run_host, run_qemu
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Encoding
from tinyopt.runtime import Interpreter

HAVE_CC = shutil.which("cc") is not None
HAVE_M4 = shutil.which("arm-none-eabi-gcc") is not None and shutil.which("qemu-system-arm") is not None


# -- weights of each kind -------------------------------------------------------------------------------

def int4(rng, shape):
    return rng.integers(-8, 8, size=shape).astype(np.int8)


def int2(rng, shape):
    return rng.integers(-2, 2, size=shape).astype(np.int8)


def shared(rng, shape):  # 11 values shared by the whole tensor (k-means weight sharing)
    return rng.integers(-127, 128, size=11)[rng.integers(0, 11, size=shape)].astype(np.int8)


def pruned(rng, shape, keep=0.15, lo=-127, hi=128):
    w = rng.integers(lo, hi, size=shape)
    w[rng.random(shape) >= keep] = 0
    return w.astype(np.int8)


def pruned4(rng, shape):
    return pruned(rng, shape, 0.1, -8, 8)


def pruned_shared(rng, shape):
    return np.where(rng.random(shape) < 0.85, 0, shared(rng, shape)).astype(np.int8)


def pruned_long_gaps(rng, shape):  # rows with gaps over 255 columns: filler entries
    w = np.zeros(shape, np.int8)
    w.reshape(shape[0], -1)[:, ::300] = rng.integers(-127, 128, size=w.reshape(shape[0], -1)[:, ::300].shape)
    return w


# -- one-layer models -------------------------------------------------------------------------------------

def fc_model(rng, out, depth, weights, rows=1, activation="NONE"):
    w = weights(rng, (out, depth))
    s = rng.uniform(0.004, 0.02, out)
    return single_op_model("FULLY_CONNECTED", [
        qtensor("x", (1, rows, depth), 0.05, int(rng.integers(-20, 20))),
        qtensor("w", w.shape, s, np.zeros(out), data=w, axis=0),
        qtensor("b", (out,), s * 0.05, np.zeros(out), data=rng.integers(-900, 900, out).astype(np.int32),
                dtype="int32", axis=0)],
        qtensor("y", (1, rows, out), 0.1, int(rng.integers(-10, 10))),
        {"activation": activation, "keep_num_dims": True})


def conv_model(rng, out, cin, kernel, weights, hw=(7, 6), stride=(1, 1), padding="SAME", dilation=(1, 1),
               activation="RELU"):
    w = weights(rng, (out, *kernel, cin))
    s = rng.uniform(0.004, 0.02, out)
    return single_op_model("CONV_2D", [
        qtensor("x", (1, *hw, cin), 0.05, int(rng.integers(-20, 20))),
        qtensor("w", w.shape, s, np.zeros(out), data=w, axis=0),
        qtensor("b", (out,), s * 0.05, np.zeros(out), data=rng.integers(-900, 900, out).astype(np.int32),
                dtype="int32", axis=0)],
        qtensor("y", (1, 1, 1, out), 0.1, int(rng.integers(-10, 10))),
        {"padding": padding, "stride": stride, "dilation": dilation, "activation": activation})


def dw_model(rng, cin, kernel, weights, multiplier=1, hw=(7, 6), stride=(1, 1), padding="SAME"):
    c = cin * multiplier
    w = weights(rng, (1, *kernel, c))
    s = rng.uniform(0.004, 0.02, c)
    return single_op_model("DEPTHWISE_CONV_2D", [
        qtensor("x", (1, *hw, cin), 0.05, int(rng.integers(-20, 20))),
        qtensor("w", w.shape, s, np.zeros(c), data=w, axis=3),
        qtensor("b", (c,), s * 0.05, np.zeros(c), data=rng.integers(-900, 900, c).astype(np.int32),
                dtype="int32", axis=0)],
        qtensor("y", (1, 1, 1, c), 0.1, int(rng.integers(-10, 10))),
        {"padding": padding, "stride": stride, "depth_multiplier": multiplier, "activation": "NONE"})


def compressed_graph(g):
    """Mark the weight encoded, which makes the generator choose compressed layouts."""
    g.tensors["w"].encoding = Encoding(8, False, True)
    return g


def library(g, layout, tmp: Path):
    with compressed.force(layout):
        lib = generate_sources(g)
    write_library(lib.files, tmp / "lib")
    return lib


def host_outputs(g, layout, xs, tmp: Path):
    lib = library(g, layout, tmp)
    out = run_host(build_host(tmp / "lib", tmp / "infer"), xs.reshape(len(xs), -1), lib.output_bytes)
    return lib, out


LAYOUTS = {"i8": pruned, "p4": int4, "p2": int2, "lut": shared, "sparse:i8": pruned, "sparse:n4": pruned4,
           "sparse:c4": pruned_shared, "sparse:c8": pruned}

CASES = {  # name -> model factory (rng, weights)
    "fc-1": lambda r, w: fc_model(r, 5, 1, w),
    "fc-33x3rows": lambda r, w: fc_model(r, 7, 33, w, rows=3),
    "fc-300": lambda r, w: fc_model(r, 9, 300, w, activation="RELU"),
    "conv-3x3-s2": lambda r, w: conv_model(r, 6, 3, (3, 3), w, hw=(9, 7), stride=(2, 2)),
    "conv-1x1": lambda r, w: conv_model(r, 5, 20, (1, 1), w),
    "conv-5x2-valid-dil2": lambda r, w: conv_model(r, 4, 6, (5, 2), w, hw=(12, 8), padding="VALID",
                                                   dilation=(2, 2)),
    "conv-1x1-s2": lambda r, w: conv_model(r, 3, 17, (1, 1), w, hw=(6, 6), stride=(2, 2)),
}


def test_no_encoding_keeps_the_dense_kernels():
    g = fc_model(np.random.default_rng(0), 8, 16, int4)
    lib = generate_sources(g)
    assert [p.kind for p in lib.prepared.values()] == ["fully_connected"]  # the int8 dense kernel file
    assert compressed.choose(g) == {}


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("case", list(CASES))
def test_layout_stores_the_int8_values(layout, case):
    rng = np.random.default_rng(zlib.crc32(f"{layout}/{case}".encode()))
    g = compressed_graph(CASES[case](rng, LAYOUTS[layout]))
    node = g.nodes[0]
    w = compressed.weight_matrix(g, node)
    with compressed.force(layout):
        choice = compressed.cached_choose(g)[0]
    assert choice.packed is not None
    assert f"{choice.layout}:{choice.packed.variant}".startswith(layout.split(":")[0])
    np.testing.assert_array_equal(compressed.decode(choice.packed, w.shape), w)


@pytest.mark.skipif(not HAVE_CC, reason="no host C compiler (cc)")
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("case", list(CASES))
def test_host_library_equals_runtime(layout, case, tmp_path):
    rng = np.random.default_rng(zlib.crc32(f"{case}/{layout}".encode()))
    g = compressed_graph(CASES[case](rng, LAYOUTS[layout]))
    xs = random_int8(rng, (5, *g.tensors["x"].shape[1:]))
    lib, out = host_outputs(g, layout, xs, tmp_path)
    assert lib.prepared[0].entry.endswith(layout.split(":")[0])
    np.testing.assert_array_equal(out, Interpreter(g).run([xs])[0].reshape(len(xs), -1))


@pytest.mark.skipif(not HAVE_CC, reason="no host C compiler (cc)")
def test_sparse_rows_with_gaps_over_255_columns(tmp_path):
    rng = np.random.default_rng(3)
    g = compressed_graph(fc_model(rng, 4, 700, pruned_long_gaps))
    with compressed.force("sparse:i8"):
        packed = compressed.cached_choose(g)[0].packed
    assert packed.entries > np.count_nonzero(g.tensors["w"].data)  # fillers bridge the gaps
    xs = random_int8(rng, (3, 1, 700))
    _, out = host_outputs(g, "sparse:i8", xs, tmp_path)
    np.testing.assert_array_equal(out, Interpreter(g).run([xs])[0].reshape(3, -1))


@pytest.mark.skipif(not HAVE_CC, reason="no host C compiler (cc)")
@pytest.mark.parametrize("layout, weights", [("cdw8", pruned), ("cdw4", int4)])
@pytest.mark.parametrize("shape", [(8, (3, 3), 1, (2, 2)), (3, (5, 1), 2, (1, 1)), (4, (2, 3), 1, (1, 2))])
def test_depthwise_host_equals_runtime(layout, weights, shape, tmp_path):
    cin, kernel, multiplier, stride = shape
    rng = np.random.default_rng(cin * 7 + multiplier)
    g = compressed_graph(dw_model(rng, cin, kernel, weights, multiplier, hw=(7, 6), stride=stride))
    xs = random_int8(rng, (4, 7, 6, cin))
    lib, out = host_outputs(g, layout, xs, tmp_path)
    assert lib.prepared[0].entry == "cdw"
    np.testing.assert_array_equal(out, Interpreter(g).run([xs])[0].reshape(4, -1))


@pytest.mark.skipif(not HAVE_M4, reason="arm-none-eabi-gcc or qemu-system-arm is not installed")
@pytest.mark.parametrize("layout, model", [
    ("p4", lambda r: conv_model(r, 8, 16, (1, 1), int4, hw=(5, 6))),
    ("p2", lambda r: conv_model(r, 6, 5, (3, 3), int2, hw=(6, 5), stride=(2, 1))),
    ("i8", lambda r: fc_model(r, 10, 37, pruned, rows=2)),
    ("lut", lambda r: conv_model(r, 5, 4, (3, 2), shared)),
    ("sparse:c4", lambda r: conv_model(r, 7, 12, (3, 3), pruned_shared, hw=(6, 7))),
    ("sparse:n4", lambda r: fc_model(r, 12, 200, pruned4)),
    ("cdw4", lambda r: dw_model(r, 8, (3, 3), int4, hw=(6, 5))),
    ("cdw8", lambda r: dw_model(r, 3, (3, 3), pruned, multiplier=2, hw=(5, 5))),
])
def test_cortex_m4_equals_runtime(layout, model, tmp_path):
    rng = np.random.default_rng(11)
    g = compressed_graph(model(rng))
    xs = random_int8(rng, (3, *g.tensors["x"].shape[1:]))
    lib = library(g, layout, tmp_path)
    out, _ = run_qemu(build_m4(tmp_path / "lib", tmp_path / "m4", xs.reshape(3, -1)).elf, lib.output_bytes)
    np.testing.assert_array_equal(out, Interpreter(g).run([xs])[0].reshape(3, -1))


def _two_layers(rng):
    """conv (4-bit weights) -> dense (pruned, shared): both compressible, the choice decides."""
    from tinyopt.graph.ir import Graph, Node, QuantParams, Tensor

    g = Graph("two", source="<two layers>")
    conv = conv_model(rng, 8, 4, (3, 3), int4, hw=(8, 8))
    for t in conv.tensors.values():
        g.add_tensor(t)
    g.add_node(conv.nodes[0])
    w = pruned_shared(rng, (10, 8 * 8 * 8))
    s = np.float32(0.01)
    g.add_tensor(Tensor("w2", w.shape, "int8", data=w, quant=QuantParams(s, 0),
                        encoding=Encoding(4, True, True)))
    g.add_tensor(Tensor("b2", (10,), "int32", data=np.zeros(10, np.int32), quant=QuantParams(0.001, 0)))
    g.add_tensor(Tensor("r", (1, 512), "int8", quant=g.tensors["y"].quant))
    g.add_tensor(Tensor("shape", (2,), "int32", data=np.array([1, 512], np.int32)))
    g.add_tensor(Tensor("z", (1, 10), "int8", quant=QuantParams(0.2, 3)))
    g.add_node(Node("r", "RESHAPE", ["y", "shape"], ["r"]))
    g.add_node(Node("z", "FULLY_CONNECTED", ["r", "w2", "b2"], ["z"], {"activation": "NONE"}))
    g.inputs, g.outputs = ["x"], ["z"]
    return g.validate()


def test_choice_keeps_the_instruction_budget():
    g = _two_layers(np.random.default_rng(5))
    loose = compressed.choose(g, 10.0)
    tight = compressed.choose(g, 1.0)
    dense = sum(c.dense_instructions for c in loose.values())
    assert sum(c.instructions for c in tight.values()) <= 1.0 * dense
    assert sum(c.instructions for c in loose.values()) <= 10.0 * dense
    # the loose budget stores less: every layer takes its smallest layout
    assert sum(c.weight_bytes + c.const_bytes for c in loose.values()) < \
        sum(c.weight_bytes + c.const_bytes for c in tight.values())
    assert loose[2].layout == "sparse"
    with pytest.raises(ConfigError, match="below 1"):
        compressed.choose(g, 0.5)


def test_explain_and_flash_name_every_compressed_layer():
    g = _two_layers(np.random.default_rng(5))
    text = compressed.explain(g, 10.0)
    assert "CONV_2D" in text and "FULLY_CONNECTED" in text and "sparse rows" in text
    f = compressed.flash_bytes(g, 10.0)
    rows = compressed.weight_table(g, 10.0)
    assert f["weights"] == sum(r["weight_bytes"] for r in rows) < f["int8_weights"] == 8 * 9 * 4 + 10 * 512
    # a sparse row stores 1 byte of column step and half a byte of value per entry, plus 2 bytes of count
    sparse = compressed.cached_choose(g, 10.0)[2].packed
    assert (sparse.nbytes == (sparse.entries + 1) // 2 + sparse.entries + 2 * 10
            + sparse.arrays["table"][1].size)


def test_geometry_past_16_bits_is_refused_by_name():
    from tinyopt.errors import UnsupportedOpError

    rng = np.random.default_rng(0)
    g = compressed_graph(conv_model(rng, 2, 1, (1, 1), int4, hw=(1, 33000)))
    with compressed.force("p4"), pytest.raises(UnsupportedOpError, match="in_w = 33000.*16-bit"):
        generate_sources(g)


@pytest.mark.skipif(not HAVE_CC, reason="no host C compiler (cc)")
@pytest.mark.parametrize("layout, model", [
    ("sparse:c4", lambda r: conv_model(r, 5, 6, (3, 3), pruned_shared, stride=(2, 1))),
    ("p4", lambda r: conv_model(r, 4, 9, (1, 1), int4)),
    ("lut", lambda r: fc_model(r, 6, 45, shared, rows=2)),
    ("sparse:i8", lambda r: fc_model(r, 4, 700, pruned_long_gaps)),
    ("cdw4", lambda r: dw_model(r, 5, (3, 3), int4, multiplier=2)),
])
def test_kernels_under_address_and_undefined_behaviour_sanitizers(layout, model, tmp_path):
    import subprocess

    from tinyopt.export.c.board import WARN_FLAGS

    rng = np.random.default_rng(21)
    g = compressed_graph(model(rng))
    lib = library(g, layout, tmp_path)
    src = sorted(str(p) for p in (tmp_path / "lib").glob("*.c"))
    exe = tmp_path / "san"
    san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-O0", "-g1"]
    try:
        subprocess.run(["cc", *WARN_FLAGS, *san, "-I", str(tmp_path / "lib"), *src,
                        str(tmp_path / "lib" / "examples" / "main.c"), "-o", str(exe)], check=True,
                       capture_output=True, timeout=300)
    except subprocess.CalledProcessError as e:
        if b"sanitize" in e.stderr and b"unrecognized" in e.stderr:
            pytest.skip("the host compiler has no sanitizers")
        raise
    xs = random_int8(rng, (4, *g.tensors["x"].shape[1:]))
    np.testing.assert_array_equal(run_host(exe, xs.reshape(4, -1), lib.output_bytes),
                                  Interpreter(g).run([xs])[0].reshape(4, -1))
