"""C generator: host builds compiled with strict flags, outputs bit-exact with TFLM; refusals."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from tflite_micro.python.tflite_micro import runtime

from conftest import KWS_INT8, RESNET_INT8, need
from tinyopt.errors import ConfigError, UnsupportedOpError
from tinyopt.export.c import arduino_files, generate_sources, write_library
from tinyopt.export.c.board import build_host, run_host
from tinyopt.export.c.generate import MANIFEST
from tinyopt.export.tflite import graph_to_tflite_bytes, single_op_model
from tinyopt.graph import load_model
from tinyopt.graph.ir import QuantParams, Tensor

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="no host C compiler (cc)")


def tflm_outputs(model: bytes, xs: np.ndarray) -> np.ndarray:
    """The oracle: TFLM's interpreter, one input at a time."""
    interp = runtime.Interpreter.from_bytes(model)
    shape = tuple(interp.get_input_details(0)["shape"])
    out = []
    for x in xs:
        interp.set_input(x.reshape(shape), 0)
        interp.invoke()
        out.append(interp.get_output(0).reshape(-1).copy())
    return np.stack(out)


def c_outputs(graph, xs: np.ndarray, tmp: Path, **kw) -> np.ndarray:
    lib = generate_sources(graph, **kw)
    write_library(lib.files, tmp / "lib")
    exe = build_host(tmp / "lib", tmp / "infer")  # -std=c99 -Wall -Wextra -Werror -pedantic
    return run_host(exe, xs.reshape(len(xs), -1), lib.output_bytes)


@pytest.mark.parametrize("path", [KWS_INT8, RESNET_INT8], ids=["kws", "resnet8"])
def test_mlperf_models_bit_exact_with_tflm_on_200_inputs(path, tmp_path):
    graph = load_model(need(path))
    n = 200
    xs = np.random.default_rng(7).integers(-128, 128, size=(n, graph.tensors[graph.inputs[0]].size),
                                           dtype=np.int8)
    ours = c_outputs(graph, xs, tmp_path)
    ref = tflm_outputs(path.read_bytes(), xs)
    assert ours.shape == ref.shape
    assert int((ours != ref).any(axis=1).sum()) == 0
    assert len({r.tobytes() for r in ref}) > 1  # the inputs exercise more than one output


def _q(scale, zp, axis=None):
    return QuantParams(np.asarray(scale, np.float32), np.asarray(zp), axis)


def _conv_model(op: str, x_shape, kernel, out_c, attrs, seed):
    rng = np.random.default_rng(seed)
    c_in = x_shape[-1]
    if op == "CONV_2D":
        w = rng.integers(-127, 128, size=(out_c, *kernel, c_in), dtype=np.int8)
    else:
        w = rng.integers(-127, 128, size=(1, *kernel, out_c), dtype=np.int8)
    sw = rng.uniform(0.002, 0.02, out_c).astype(np.float32)
    sx, zx, sy, zy = 0.05, int(rng.integers(-20, 20)), 0.7, int(rng.integers(-10, 10))
    bias = rng.integers(-3000, 3000, size=out_c).astype(np.int32)
    return single_op_model(op, [Tensor("x", x_shape, "int8", quant=_q(sx, zx)),
                                Tensor("w", w.shape, "int8", data=w,
                                       quant=_q(sw, np.zeros(out_c), 0 if op == "CONV_2D" else 3)),
                                Tensor("b", (out_c,), "int32", data=bias,
                                       quant=_q(sx * sw, np.zeros(out_c), 0))],
                           Tensor("y", (), "int8", quant=_q(sy, zy)), attrs)


CASES = {
    "conv-3x3-same-s2": ("CONV_2D", (1, 9, 7, 3), (3, 3), 5,
                         {"stride": (2, 2), "padding": "SAME", "activation": "RELU6"}),
    "conv-5x2-valid-dil2": ("CONV_2D", (1, 12, 8, 6), (5, 2), 7,
                            {"stride": (1, 2), "padding": "VALID", "dilation": (2, 2), "activation": "NONE"}),
    "conv-1x1": ("CONV_2D", (1, 5, 5, 9), (1, 1), 6, {"padding": "SAME", "activation": "RELU"}),
    "dw-3x3-same-m2": ("DEPTHWISE_CONV_2D", (1, 6, 5, 3), (3, 3), 6,
                       {"padding": "SAME", "depth_multiplier": 2, "activation": "RELU"}),
    "dw-3x3-s2": ("DEPTHWISE_CONV_2D", (1, 9, 9, 8), (3, 3), 8,
                  {"stride": (2, 2), "padding": "SAME", "depth_multiplier": 1, "activation": "NONE"}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_conv_kernels_bit_exact_with_tflm(case, tmp_path):
    op, x_shape, kernel, out_c, attrs = CASES[case]
    g = _conv_model(op, x_shape, kernel, out_c, attrs, seed=len(case))
    xs = np.random.default_rng(3).integers(-128, 128, size=(40, int(np.prod(x_shape))), dtype=np.int8)
    assert np.array_equal(c_outputs(g, xs, tmp_path), tflm_outputs(graph_to_tflite_bytes(g), xs))


def test_pool_add_dense_softmax_bit_exact_with_tflm(tmp_path):
    rng = np.random.default_rng(5)
    xs = rng.integers(-128, 128, size=(60, 2 * 6 * 4), dtype=np.int8)
    q = _q(0.1, 3)
    for op, attrs in [("MAX_POOL_2D",
                       {"filter": (2, 3), "stride": (2, 2), "padding": "SAME", "activation": "RELU"}),
                      ("AVERAGE_POOL_2D",
                       {"filter": (3, 3), "stride": (1, 2), "padding": "SAME", "activation": "NONE"})]:
        g = single_op_model(op, [Tensor("x", (1, 2, 6, 4), "int8", quant=q)],
                            Tensor("y", (), "int8", quant=q), attrs)
        assert np.array_equal(c_outputs(g, xs, tmp_path / op), tflm_outputs(graph_to_tflite_bytes(g), xs)), op
    w = rng.integers(-127, 128, size=(10, 48), dtype=np.int8)
    g = single_op_model("FULLY_CONNECTED", [Tensor("x", (1, 48), "int8", quant=q),
                                            Tensor("w", w.shape, "int8", data=w, quant=_q(0.01, 0)),
                                            Tensor("b", (10,), "int32",
                                                   data=np.arange(10, dtype=np.int32) * 50,
                                                   quant=_q(0.001, 0))],
                        Tensor("y", (), "int8", quant=_q(0.9, -5)), {"activation": "NONE"})
    assert np.array_equal(c_outputs(g, xs, tmp_path / "fc"), tflm_outputs(graph_to_tflite_bytes(g), xs))
    g = single_op_model("SOFTMAX", [Tensor("x", (1, 48), "int8", quant=_q(0.13, 7))],
                        Tensor("y", (), "int8", quant=_q(1 / 256, -128)), {"beta": 1.0})
    assert np.array_equal(c_outputs(g, xs, tmp_path / "sm"), tflm_outputs(graph_to_tflite_bytes(g), xs))


def test_several_graph_inputs_and_outputs_lie_back_to_back(tmp_path):
    """Two inputs (a feature and a state) and two outputs: invoke takes one buffer of both inputs and fills
    one buffer of both outputs, at the offsets model.h defines; every byte equals the numpy runtime."""
    from tinyopt.graph.ir import Graph, Node
    from tinyopt.runtime import Interpreter

    g = Graph("two", source="two.tflite")
    for name, scale, zp in (("a", 0.1, 3), ("b", 0.05, -7), ("y", 0.2, 1), ("z", 0.07, -2)):
        g.add_tensor(Tensor(name, (1, 6), "int8", quant=_q(scale, zp)))
    g.add_node(Node("y", "ADD", ["a", "b"], ["y"], {"activation": "NONE"}))
    g.add_node(Node("z", "QUANTIZE", ["a"], ["z"]))  # a requantized: a second output
    g.inputs, g.outputs = ["a", "b"], ["y", "z"]
    lib = generate_sources(g.infer_shapes().validate())
    h = lib.files["tinyopt_model.h"]
    assert "#define TINYOPT_INPUT1_OFFSET 6" in h and "#define TINYOPT_OUTPUT1_OFFSET 6" in h
    assert lib.input_bytes == lib.output_bytes == 12
    write_library(lib.files, tmp_path / "lib")
    rng = np.random.default_rng(3)
    a, b = (rng.integers(-128, 128, size=(9, 6)).astype(np.int8) for _ in range(2))
    got = run_host(build_host(tmp_path / "lib", tmp_path / "two"), np.concatenate([a, b], axis=1), 12)
    y, z = Interpreter(g).run([a, b])
    np.testing.assert_array_equal(got, np.concatenate([y, z], axis=1))


def test_unsupported_operator_named_with_index_and_nothing_written(tmp_path):
    from tinyopt import ops

    g = load_model(need(KWS_INT8))
    g.nodes[12].op = ops.opaque("CUSTOM 'NoKernel'").name  # an operator the C library cannot run
    with pytest.raises(UnsupportedOpError) as e:
        generate_sources(g)
    assert "node 12" in str(e.value) and "NoKernel" in str(e.value) and "Fix:" in str(e.value)
    assert not (tmp_path / "out").exists()


def test_folder_not_ours_is_refused_unless_forced(tmp_path):
    lib = generate_sources(load_model(need(KWS_INT8)))
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not written by tinyopt"):
        write_library(lib.files, out)
    assert (out / "notes.txt").read_text() == "keep me"
    write_library(lib.files, out, force=True)
    assert not (out / "notes.txt").exists() and (out / MANIFEST).is_file()
    write_library(lib.files, out)  # ours now: replaced without --force
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["generator"] == "tinyopt" and "tinyopt_model.h" in manifest["files"]


def test_generated_code_contract():
    lib = generate_sources(load_model(need(KWS_INT8)), prefix="kws")
    h, c = lib.files["kws_model.h"], lib.files["kws_model.c"]
    assert "int kws_invoke(const int8_t *input, int8_t *output);" in h
    assert f"#define KWS_ARENA_BYTES {lib.arena_bytes}" in h
    assert "#define KWS_INPUT_BYTES 490" in h and "#define KWS_OUTPUT_BYTES 12" in h  # 49*10*1, 12 classes
    for name, text in lib.files.items():
        if name.endswith((".c", ".h")):
            code = re.sub(r"/\*.*?\*/", "", text, flags=re.S)  # comments may mention them
            assert not re.search(r"\b(malloc|calloc|free|float|double)\b", code), name
            assert "tinyopt_" not in code, name  # every symbol carries the user's prefix
        if name.endswith(".c") and not name.startswith("examples/"):
            assert "main(" not in text, name
    assert "generated by tinyopt" in c and c.count("static int32_t kws_arena_words[") == 1  # one arena
    assert "static const int8_t kws_n0_weights[2560]" in c  # 64 filters x 10 x 4 x 1
    # MACs: conv 25*5*64*40 + 4 x (dw 25*5*64*9 + pw 25*5*64*64) + fc 64*12
    assert lib.macs == 320000 + 4 * (72000 + 512000) + 768


def test_prefixed_library_compiles_and_matches(tmp_path):
    graph = load_model(need(KWS_INT8))
    xs = np.random.default_rng(11).integers(-128, 128, size=(8, 490), dtype=np.int8)
    a = c_outputs(graph, xs, tmp_path / "a", prefix="kws")
    b = c_outputs(graph, xs, tmp_path / "b", inplace=False, reorder=False)
    assert np.array_equal(a, b)  # in-place plan and plain plan compute the same


def test_arduino_layout():
    graph = load_model(need(KWS_INT8))
    files = arduino_files(generate_sources(graph), graph)
    assert "library.properties" in files and "src/tinyopt_model.h" in files
    assert "examples/tinyopt_infer/tinyopt_infer.ino" in files
    props = dict(line.split("=", 1) for line in files["library.properties"].splitlines())
    assert props["includes"] == "tinyopt_model.h" and props["architectures"] == "*"
    assert not any(k.startswith("examples/main") for k in files)


def test_converted_zoo_model_with_mean_bit_exact_with_tflm(tmp_path):
    import torch

    from tinyopt.convert.convert import convert_torch
    from tinyopt.zoo import build

    torch.manual_seed(0)
    model = build("cnn1d")
    shape = tuple(model.input_shape)
    graph = convert_torch(model, torch.randn(16, *shape), shape)
    assert "MEAN" in {n.op for n in graph.nodes}
    xs = np.random.default_rng(1).integers(-128, 128, size=(200, graph.tensors[graph.inputs[0]].size),
                                           dtype=np.int8)
    assert np.array_equal(c_outputs(graph, xs, tmp_path), tflm_outputs(graph_to_tflite_bytes(graph), xs))


def test_same_model_from_two_folders_gives_the_same_files(tmp_path):
    src = Path(__file__).resolve().parents[1] / "corpus" / "files" / "valid" / "000-tiny-int8-model.tflite"
    libs = []
    for d in ("a", "b/c"):
        (tmp_path / d).mkdir(parents=True)
        (tmp_path / d / "m.tflite").write_bytes(src.read_bytes())
        libs.append(generate_sources(load_model(tmp_path / d / "m.tflite")).files)
    assert libs[0] == libs[1]
    assert "m.tflite" in libs[0]["tinyopt_model.c"]


def test_output_slot_in_the_arena_or_the_callers_buffer(tmp_path):
    """One output lives in the arena: invoke(x, NULL) leaves it in tinyopt_output_buffer(), invoke(x, buf)
    also copies it to buf, invoke(x, slot) needs no copy; all three equal TFLM. With several outputs the
    slot is NULL and a NULL output buffer is refused (status 1)."""
    import ctypes

    path = need(KWS_INT8)
    graph = load_model(path)
    lib = generate_sources(graph)
    assert lib.caller_output_bytes == 0 and not lib.plan.external
    write_library(lib.files, tmp_path / "lib")
    c = ctypes.CDLL(str(build_host(tmp_path / "lib", tmp_path / "kws.so", shared=True)))
    c.tinyopt_invoke.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    c.tinyopt_output_buffer.restype = ctypes.c_void_p
    slot = c.tinyopt_output_buffer()
    xs = np.random.default_rng(11).integers(-128, 128, size=(4, 490), dtype=np.int8)
    ref = tflm_outputs(path.read_bytes(), xs)
    for x, want in zip(xs, ref):
        buf = np.zeros(12, np.int8)
        assert c.tinyopt_invoke(x.ctypes.data, None) == 0
        assert np.array_equal(np.ctypeslib.as_array((ctypes.c_int8 * 12).from_address(slot)), want)
        assert c.tinyopt_invoke(x.ctypes.data, buf.ctypes.data) == 0 and np.array_equal(buf, want)
        assert c.tinyopt_invoke(x.ctypes.data, slot) == 0
        assert np.array_equal(np.ctypeslib.as_array((ctypes.c_int8 * 12).from_address(slot)), want)
    assert "tinyopt_output_buffer(void)" in lib.files["tinyopt_model.h"]


def test_several_outputs_have_no_slot(tmp_path):
    from tinyopt.graph.ir import Graph, Node

    g = Graph("two", source="two.tflite")
    for name in ("a", "y", "z"):
        g.add_tensor(Tensor(name, (1, 6), "int8", quant=_q(0.1, 3)))
    g.add_node(Node("y", "QUANTIZE", ["a"], ["y"]))
    g.add_node(Node("z", "QUANTIZE", ["a"], ["z"]))
    g.inputs, g.outputs = ["a"], ["y", "z"]
    lib = generate_sources(g.infer_shapes().validate())
    assert lib.caller_output_bytes == 12
    assert "return NULL;" in lib.files["tinyopt_model.c"]
    assert "if (input == NULL || output == NULL)" in lib.files["tinyopt_model.c"]
