"""The arena per runtime against the runtimes themselves: TFLM's predicted arena is the smallest one
tflite-micro's Python package accepts (probed in a child process each time), tinyopt-c's is the generated
TINYOPT_ARENA_BYTES, and the parts follow TFLM's and CMSIS-NN's rules worked by hand."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tinyopt import zoo
from tinyopt.analysis.arena import (
    TflmPlanner,
    _cmsis_conv_scratch,
    _cmsis_depthwise_scratch,
    c_library_arena,
    runtime_arena,
    tflm_arena,
    tflm_kernel_memory,
)
from tinyopt.analysis.memory import GreedyPlanner
from tinyopt.export.tflite import graph_to_tflite_bytes, single_op_model
from tinyopt.graph.ir import QuantParams, Tensor

MLPERF = os.path.join("..", "shared", "models", "mlperf-tiny")
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tflm_accepts(model: bytes, arena_size: int) -> bool:
    """Does tflite-micro allocate and invoke ``model`` in an ``arena_size``-byte arena? Asked in a forked
    child: a too small arena can crash the interpreter instead of failing cleanly."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            import faulthandler

            faulthandler.disable()  # a crash here is an answer (too small), not a report for pytest
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1), os.dup2(devnull, 2)
            from tflite_micro.python.tflite_micro import runtime

            it = runtime.Interpreter.from_bytes(model, arena_size=arena_size)
            d = it.get_input_details(0)
            it.set_input(np.zeros(d["shape"], d["dtype"]), 0)
            it.invoke()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def assert_smallest_arena(graph, model: bytes | None = None) -> int:
    """TFLM accepts the predicted arena and refuses one 17 bytes smaller: the smallest arena it accepts is
    within 16 bytes under the prediction (equal to it but for dense layers, see arena._Allocations)."""
    pytest.importorskip("tflite_micro")
    model = graph_to_tflite_bytes(graph) if model is None else model
    pred = runtime_arena(graph, "tflm-reference").bytes
    assert tflm_accepts(model, pred), f"TFLM refuses the predicted {pred} B"
    assert not tflm_accepts(model, pred - 17), f"TFLM accepts {pred - 17} B: the prediction is too high"
    return pred


@pytest.mark.parametrize("name", ["kws_ref_model.tflite", "pretrainedResnet_quant.tflite"])
def test_mlperf_int8_models(name):
    path = os.path.join(MLPERF, name)
    if not os.path.exists(path):
        pytest.skip(f"{path} not found (../shared is not mounted)")
    import tinyopt

    graph = tinyopt.load(path).graph
    with open(path, "rb") as f:
        pred = assert_smallest_arena(graph, f.read())
    # DESIGN.md
    assert pred == {"kws_ref_model.tflite": 24_272, "pretrainedResnet_quant.tflite": 55_984}[name]


def converted(name: str, **kwargs):
    import torch

    from tinyopt.convert import convert_torch

    torch.manual_seed(0)
    model = zoo.build(name, **kwargs).eval()
    shape = zoo.input_shape(name, **kwargs)
    calib = np.random.default_rng(1).normal(0, 1, (8, *shape)).astype(np.float32)
    return model, shape, convert_torch(model, calib, shape)


@pytest.mark.parametrize("name", sorted(zoo.ZOO))
def test_converted_zoo_models(name):
    _, _, g = converted(name)
    assert_smallest_arena(g)


def _act(name, shape, dtype="int8", scale=0.05, zp=3):
    return Tensor(name, shape, dtype, quant=QuantParams(scale, zp) if dtype == "int8" else None)


def _single_ops():
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, (8, 3, 3, 4)).astype(np.int8)
    conv = [_act("x", (1, 10, 10, 4)),
            Tensor("w", w.shape, "int8", data=w, quant=QuantParams(np.full(8, 0.01), np.zeros(8), 0)),
            Tensor("b", (8,), "int32", data=np.zeros(8, np.int32),
                   quant=QuantParams(np.full(8, 5e-4), np.zeros(8), 0))]
    wd = rng.integers(-127, 128, (5, 16)).astype(np.int8)
    dense = [_act("x", (1, 16)),
             Tensor("w", wd.shape, "int8", data=wd, quant=QuantParams(np.full(5, 0.01), np.zeros(5), 0)),
             Tensor("b", (5,), "int32", data=np.zeros(5, np.int32),
                    quant=QuantParams(np.full(5, 5e-4), np.zeros(5), 0))]
    pool = dict(filter=(2, 2), stride=(2, 2), padding="VALID")
    same = QuantParams(0.05, 3)
    return {
        "conv": ("CONV_2D", conv, dict(stride=(1, 1), padding="SAME"), None),
        "dense": ("FULLY_CONNECTED", dense, {}, None),
        "add": ("ADD", [_act("x", (1, 6, 6, 5)), _act("x2", (1, 6, 6, 5))], {}, None),
        "mul": ("MUL", [_act("x", (1, 6, 6, 5)), _act("x2", (1, 6, 6, 5))], {}, None),
        "average_pool": ("AVERAGE_POOL_2D", [_act("x", (1, 8, 8, 6))], pool, same),
        "max_pool": ("MAX_POOL_2D", [_act("x", (1, 8, 8, 6))], pool, same),
        "mean": ("MEAN",
                 [_act("x", (1, 8, 8, 6)), Tensor("ax", (2,), "int32", data=np.array([1, 2], np.int32))],
                 dict(keep_dims=True), None),
        "pad": ("PAD", [_act("x", (1, 4, 4, 6)),
                        Tensor("p", (4, 2), "int32",
                               data=np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32))],
                {}, same),
        "concatenation": ("CONCATENATION", [_act("x", (1, 4, 4, 6)), _act("x2", (1, 4, 4, 3))], dict(axis=3),
                          same),
        "softmax": ("SOFTMAX", [_act("x", (1, 10))], dict(beta=1.0), QuantParams(1 / 256, -128)),
        "tanh": ("TANH", [_act("x", (1, 10))], {}, QuantParams(1 / 128, 0)),
        "relu6": ("RELU6", [_act("x", (1, 10))], {}, None),
        "quantize": ("QUANTIZE", [_act("x", (1, 10), "float32")], {}, None),
        "float_dense": ("FULLY_CONNECTED", [_act("x", (1, 16), "float32"),
                                            Tensor("w", (5, 16), "float32", data=wd.astype(np.float32))], {},
                        "float"),
    }


@pytest.mark.parametrize("case", sorted(_single_ops()))
def test_each_kind_of_operator(case):
    op, inputs, attrs, out_q = _single_ops()[case]
    out = Tensor("y", (), "float32") if out_q == "float" else Tensor("y", (), "int8",
                                                                     quant=out_q or QuantParams(0.07, -2))
    assert_smallest_arena(single_op_model(op, inputs, out, attrs))


def test_as_if_int8_is_the_converted_models_arena():
    """A float model priced as int8 gets the arena of the model tinyopt's converter makes from it: for TFLM
    and for the C library (whose int8 twin is made with placeholder ranges: the arena depends on shapes)."""
    from tinyopt.analysis.fit import analyze
    from tinyopt.export.c.generate import generate_sources
    from tinyopt.graph.torch_import import from_torch

    for name in ("dscnn", "mobilenet_v1"):
        model, shape, g8 = converted(name)
        float_graph = from_torch(model, shape)
        assert analyze(float_graph, dtype="int8").arena_bytes == runtime_arena(g8).bytes
        c = analyze(float_graph, dtype="int8", runtime="tinyopt-c")
        assert c.arena_bytes == generate_sources(g8).arena_bytes == c_library_arena(g8)[0]


def test_c_library_refuses_a_float_pricing():
    from tinyopt.errors import ConfigError
    from tinyopt.graph.torch_import import from_torch

    model, shape, _ = converted("lenet5")
    with pytest.raises(ConfigError, match="int8 and 16x8 models only.*--dtype int8"):
        runtime_arena(from_torch(model, shape), "tinyopt-c")


def test_bare_metal_relu_by_hand():
    """One int8 RELU on 1×10, TFLM built for a Cortex-M (4-byte pointers), by hand. From the arena's end:
    allocator 36, planner 44, MicroAllocator 36, builtin-data allocator 8, SubgraphAllocations 8,
    2 TfLiteEvalTensor × 12, NodeAndRegistration 32 (188 B), then ReluOpData 28 at 16-byte alignment.
    Planning needs, from the start, the scratch-request list and the planner's arrays: align16(12 × 12 +
    4 + 2 × 24) = 208 B, then 40 B for each of the 2 buffers up to the 16-aligned tail: 248 B. In a 504 B
    arena the OpData lands at align16(504 − 188 − 28) = 288 and 288 − 208 = 80 B are left: it fits; at
    503 it lands at 272 and 64 B are left: too few. (Prepare needs 144 + 2 × (32 + 12 + 8) = 248 B under
    the same tail: less.) The planned head: two overlapping 16 B buffers, 32 B."""
    g = single_op_model("RELU", [_act("x", (1, 10))], _act("y", ()))
    a = tflm_arena(g, abi="arm32")
    assert (a.head_bytes, a.bytes, a.limited_by) == (32, 504, "planner")
    # afterwards the I/O structs, on an aligned end: OpData to 224, + pointer array 4 (at 16) + TfLiteTensor
    # 32 + quantization 12 + zero point 8, twice: 224 → 240 → 292 → 304 → 356
    assert a.tail_bytes == 356


def test_cmsis_nn_scratch_buffers_by_hand():
    # 3x3 conv over 8 channels: im2col of two columns of 3·3·8 = 72 int16 values: 2 × 72 × 2 = 288 B
    assert _cmsis_conv_scratch(dict(pad=(1, 1), kh=3, kw=3, dilation=(1, 1), in_c=8)) == 288
    # 3x5 over 3 channels: 45 values, padded to 48: 192 B; a 1x1 without padding: none (GCC build)
    assert _cmsis_conv_scratch(dict(pad=(0, 0), kh=3, kw=5, dilation=(1, 1), in_c=3)) == 192
    assert _cmsis_conv_scratch(dict(pad=(0, 0), kh=1, kw=1, dilation=(1, 1), in_c=64)) == 0
    # depthwise 5x5 on 16 channels: 16·25 int16 = 800 B; 3x3 with padding 1 has its own kernel: none
    dw = dict(in_c=16, out_c=16, batch=1, dilation=(1, 1), kh=5, kw=5, pad=(2, 2))
    assert _cmsis_depthwise_scratch(dw) == 800
    assert _cmsis_depthwise_scratch({**dw, "kh": 3, "kw": 3, "pad": (1, 1)}) == 0
    # average pooling: one int32 sum per channel
    g = single_op_model("AVERAGE_POOL_2D", [_act("x", (1, 8, 8, 6))], _act("y", ()),
                        dict(filter=(2, 2), stride=(2, 2), padding="VALID"))
    assert tflm_kernel_memory(g, g.nodes[0], "cmsis-nn", "arm32", "real").scratch == [24]
    assert tflm_kernel_memory(g, g.nodes[0], "reference", "arm32", "real").scratch == []


def test_cmsis_nn_arena_holds_its_scratch_buffers():
    _, _, g = converted("lenet5")  # 5x5 convs: im2col buffers
    ref, cm = runtime_arena(g, "tflm-reference"), runtime_arena(g, "cmsis-nn")
    assert cm.scratch_bytes > 0 and ref.scratch_bytes == 0
    assert cm.head_bytes >= ref.head_bytes and cm.bytes > ref.bytes
    assert cm.bare_metal_bytes < cm.bytes and ref.bare_metal_bytes < ref.bytes  # 4-byte pointers


def test_planner_places_the_last_of_equal_buffers_first():
    """TFLM lists buffers from the back and bubble-sorts them by size, so among equal sizes the one added
    last is placed first (offset 0); tinyopt's own planner keeps the order of first use."""
    for cls, expected in ((TflmPlanner, [32, 16, 0]), (GreedyPlanner, [0, 16, 32])):
        p = cls()
        for _ in range(3):
            p.add_buffer(16, 0, 2)
        assert [p.offset_of(i) for i in range(3)] == expected
        p.check_no_overlap()


@pytest.mark.parametrize("softmax", [False, True])
def test_converted_16x8_models(softmax):
    """16x8 (int16 activations): SOFTMAX's Prepare keeps two 513-entry int16 tables (exp, 1/(1+x))."""
    import torch

    from tinyopt.convert import convert_graph, torch_to_graph_layout
    from tinyopt.graph.torch_import import from_torch

    torch.manual_seed(0)
    layers = [torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
              torch.nn.Linear(8, 4)]
    model = torch.nn.Sequential(*layers, *([torch.nn.Softmax(dim=1)] if softmax else [])).eval()
    calib = np.random.default_rng(1).normal(0, 1, (8, 3, 12, 12)).astype(np.float32)
    g = convert_graph(from_torch(model, (3, 12, 12)), torch_to_graph_layout(calib, (3, 12, 12)),
                      activations="int16")
    assert {t.dtype for t in g.activations()} == {"int16"}
    pred = assert_smallest_arena(g)
    tail = runtime_arena(g, "tflm-reference").tail_parts["per-channel multipliers and shifts"]
    # conv: 2 x 4 x 8 channels = 64 B and dense: 2 x 4 x 4 = 32 B, each rounded up to TFLM's 16-byte
    # alignment; softmax: 2 x 1,026 B tables, each aligned to 1,040
    assert tail == 64 + 32 + (2 * 1040 if softmax else 0)
    assert pred == runtime_arena(g, "tflm-reference").bytes


def test_streaming_model_with_resource_variables():
    """CALL_ONCE's init subgraph, a handle, read and assignment per variable, the variable's own buffer, and
    the value READ_VARIABLE returns planned like an activation."""
    from graph._streaming import streaming_graph

    g = streaming_graph()
    assert_smallest_arena(g)
    # 40 B, 8 B: 16-aligned
    assert runtime_arena(g, "tflm-reference").tail_parts["resource variables"] == 16 + 48 + 16
