"""MIRROR_PAD against TFLM (60 seeded shapes, pads and modes, int8 and float32), its C kernel against the
runtime, and the doors: ONNX Pad mode=reflect against ONNX Runtime, ReflectionPad2d against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

from ops._oracles import assert_c_equals_runtime, needs_cc
from runtime._reference import assert_matches_reference, qtensor, random_int8
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Tensor


def _case(seed: int):
    rng = np.random.default_rng(seed)
    rank = int(rng.integers(2, 5))
    shape = (1, *(int(d) for d in rng.integers(2, 7, size=rank - 1)))
    mode = int(rng.integers(0, 2))
    # at most size - 1 on each side: TFLM's MirrorPad refuses a SYMMETRIC pad as wide as the axis
    pads = [[0, 0]] + [[int(rng.integers(0, d)), int(rng.integers(0, d))] for d in shape[1:]]
    return rng, shape, mode, np.asarray(pads, np.int32)


def _graph(shape, mode, pads, int8: bool):
    p = Tensor("p", pads.shape, "int32", data=pads)
    if int8:
        return single_op_model("MIRROR_PAD", [qtensor("x", shape, 0.04, -6), p], qtensor("y", (1,), 0.04, -6),
                               {"mode": mode})
    return single_op_model("MIRROR_PAD", [Tensor("x", shape), p], Tensor("y", (1,)), {"mode": mode})


@pytest.mark.parametrize("seed", range(60))
def test_mirror_pad_matches_tflm(seed):
    rng, shape, mode, pads = _case(seed)
    g = _graph(shape, mode, pads, int8=seed % 2 == 1)
    xs = (random_int8(rng, (4, *shape[1:])) if seed % 2
          else rng.normal(size=(4, *shape[1:])).astype(np.float32))
    out = assert_matches_reference(g, xs)[0]
    want = np.stack([np.pad(x[None], pads.tolist(),
                            mode="reflect" if mode == 0 else "symmetric")[0] for x in xs])
    np.testing.assert_array_equal(out, want)  # and numpy's own definition, row by row


@needs_cc
@pytest.mark.parametrize("seed", range(6))
def test_c_kernel_equals_runtime(seed, tmp_path):
    rng, shape, mode, pads = _case(100 + seed)
    g = _graph(shape, mode, pads, int8=True)
    assert_c_equals_runtime(g, random_int8(rng, (8, *shape[1:])), tmp_path)


def test_onnx_reflect_pad_and_torch_reflection_pad(tmp_path):
    import onnx
    import torch
    from onnx import TensorProto, helper, numpy_helper

    from tinyopt.graph.onnx_import import load_onnx
    from tinyopt.graph.torch_import import from_torch
    from tinyopt.runtime import Interpreter

    rng = np.random.default_rng(7)
    pads = numpy_helper.from_array(np.array([0, 0, 0, 5], np.int64), "pads")
    graph = helper.make_graph([helper.make_node("Pad", ["x", "pads"], ["y"], mode="reflect")], "stft_pad",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 21])], [pads])
    path = tmp_path / "reflect.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    g = load_onnx(path)
    assert [n.op for n in g.nodes] == ["MIRROR_PAD"]
    x = rng.normal(size=(3, 16)).astype(np.float32)
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = np.concatenate([sess.run(None, {"x": r[None]})[0] for r in x])
    np.testing.assert_allclose(Interpreter(g).run(x)[0], want, rtol=0, atol=0)
    m = torch.nn.Sequential(torch.nn.ReflectionPad2d((1, 2, 2, 0))).eval()
    gt = from_torch(m, (3, 5, 6))
    xt = torch.randn(2, 3, 5, 6, generator=torch.Generator().manual_seed(1))
    got = Interpreter(gt).run(xt.numpy().transpose(0, 2, 3, 1))[0].transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(got, m(xt).numpy())
