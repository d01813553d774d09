"""SUB with the constant first (c - x, e.g. a detector's box decoding): both doors keep the order, and the
converted model equals TFLM and the C library equals the runtime."""

from __future__ import annotations

import numpy as np
import torch

from ops._oracles import (
    assert_c_equals_runtime,
    assert_onnx_matches_ort,
    assert_torch_matches,
    convert_and_match_tflm,
    needs_cc,
    onnx_file,
    to_nhwc,
)


class ConstMinus(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return 1.5 - torch.relu(self.conv(x))


def test_onnx_constant_minus_tensor(tmp_path):
    from onnx import helper

    c = np.array([0.5, -1.0, 2.0, 3.0], np.float32).reshape(1, 4, 1, 1)  # per channel, first operand
    path = onnx_file(tmp_path, [helper.make_node("Sub", ["c", "x"], ["y"])], (1, 4, 5, 5), inits=[("c", c)])
    x = np.random.default_rng(0).normal(size=(3, 4, 5, 5)).astype(np.float32)
    g = assert_onnx_matches_ort(path, x)
    assert [n.op for n in g.nodes] == ["SUB"] and g.tensors[g.nodes[0].inputs[0]].constant


@needs_cc
def test_torch_scalar_minus_tensor_converts_and_deploys(tmp_path):
    torch.manual_seed(0)
    g = assert_torch_matches(ConstMinus(), (3, 6, 6))
    sub = next(n for n in g.nodes if n.op == "SUB")
    assert g.tensors[sub.inputs[0]].constant  # 1.5 - y, not y - 1.5
    rng = np.random.default_rng(1)
    calib = to_nhwc(rng.normal(size=(16, 3, 6, 6)).astype(np.float32))
    q = convert_and_match_tflm(g, calib, calib[:6])
    x = q.tensors[q.inputs[0]]
    xq = np.clip(np.round(calib[:6] / x.quant.scale[0]) + x.quant.zero_point[0], -128, 127).astype(np.int8)
    assert_c_equals_runtime(q, xq, tmp_path)

