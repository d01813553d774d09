"""A Conv on a value the door holds in the framework's own (N, C, H, W) order, not as an NHWC image: a
reshape and a transpose make it (a detector head's distribution-focal-loss conv)."""

from __future__ import annotations

import numpy as np

from ops._oracles import assert_onnx_matches_ort, onnx_file


def test_conv_after_reshape_and_transpose_equals_onnx_runtime(tmp_path):
    from onnx import helper

    w = np.random.default_rng(0).normal(size=(2, 6, 1, 1)).astype(np.float32)
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["r"]),                 # (1, 24, 5) -> (1, 4, 6, 5)
             helper.make_node("Transpose", ["r"], ["t"], perm=[0, 2, 1, 3]),    # (1, 6, 4, 5): C = 6
             helper.make_node("Softmax", ["t"], ["s"], axis=1),
             helper.make_node("Conv", ["s", "w"], ["y"], kernel_shape=[1, 1])]
    shape = np.array([1, 4, 6, 5], np.int64)
    path = onnx_file(tmp_path, nodes, (1, 24, 5), inits=[("shape", shape), ("w", w)])
    x = np.random.default_rng(1).normal(size=(3, 24, 5)).astype(np.float32)
    g = assert_onnx_matches_ort(path, x)
    assert "CONV_2D" in [n.op for n in g.nodes]



def test_concatenation_of_a_conv_map_and_a_plain_vector_equals_onnx_runtime(tmp_path):
    """A conv's output reshaped to (N, C, L) (a channels-first view of the NHWC tensor) joined to a value in
    framework order (a 2-D value unsqueezed): a detector head's boxes joined to its scores."""
    from onnx import helper

    w = np.random.default_rng(2).normal(size=(4, 3, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Reshape", ["c", "maps"], ["m"]),
             helper.make_node("Reshape", ["x", "vecs"], ["v2"]),
             helper.make_node("Unsqueeze", ["v2", "axes"], ["v"]),
             helper.make_node("Sigmoid", ["v"], ["s"]),
             helper.make_node("Concat", ["s", "m"], ["y"], axis=1)]
    inits = [("w", w), ("maps", np.array([1, 4, 64], np.int64)), ("vecs", np.array([3, 64], np.int64)),
             ("axes", np.array([0], np.int64))]
    path = onnx_file(tmp_path, nodes, (1, 3, 8, 8), inits=inits)
    x = np.random.default_rng(3).normal(size=(2, 3, 8, 8)).astype(np.float32)
    g = assert_onnx_matches_ort(path, x)
    assert "CONCATENATION" in [n.op for n in g.nodes]
