"""RESHAPE against TFLM (60 seeded shapes; int8 and float32) and its doors: channels-first tensors
flattened in part, their spatial axes regrouped, squeezed and unsqueezed (ONNX Squeeze/Unsqueeze of
non-batch axes, torch squeeze/unsqueeze/flatten/view), plain tensors viewed as images, and the grouped
channel view of a shuffle — each against torch and ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ops._data_movement import (
    act,
    ci,
    export_onnx,
    matches_tflm,
    onnx_matches,
    ops_of,
    rows,
    torch_matches,
)
from tinyopt.errors import UnsupportedOpError
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.torch_import import from_torch

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("seed", range(60))
def test_matches_tflm(seed):
    rng = np.random.default_rng(seed)
    dims = [int(d) for d in rng.integers(1, 5, size=int(rng.integers(1, 4)))]
    shape = (1, *dims)
    flat = rng.permutation([d for d in dims] + [1] * int(rng.integers(0, 2)))
    new = (1, *(int(d) for d in flat)) if rng.random() < 0.7 else (1, int(np.prod(dims)))
    is_int = seed % 2 == 1
    g = single_op_model("RESHAPE", [act("x", shape, is_int), ci("s", new)], act("y", (1,), is_int),
                        {"new_shape": tuple(new)})
    x = rows(rng, shape, is_int)
    out = matches_tflm(g, x)[0]
    np.testing.assert_array_equal(out.reshape(len(x), -1), x.reshape(len(x), -1))  # the same bytes


class Views(torch.nn.Module):
    """Channels-first reshapes a network meets: flatten of the spatial axes (a sequence), unsqueeze back to
    an image, view to H x W, flatten of channels and rows together, and a vector viewed as an image."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 4, 3, padding=1)
        self.seq = torch.nn.Conv1d(4, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4 * 3 * 4, 24)
        self.head = torch.nn.Conv2d(2, 3, 1)

    def forward(self, x):
        y = self.conv(x)                                  # (N, 4, 3, 4)
        s = self.seq(y.flatten(2))                        # (N, 4, 12): spatial axes as a sequence
        z = s.unsqueeze(2).squeeze(2).view(-1, 4, 3, 4)   # back to an image
        w = z.flatten(1, 2)                               # (N, 12, 4): channels and rows together
        v = self.fc(w.flatten(1)).view(-1, 2, 3, 4)       # a vector viewed as an image
        return self.head(v) + z[:, :3]


def test_views_match_torch_and_onnx(tmp_path):
    g = torch_matches(Views(), (2, 3, 4))
    assert "TRANSPOSE" in ops_of(g)  # the flatten of channels with rows, the vector read as (C, H, W)
    for opset in (11, 13):
        onnx_matches(export_onnx(Views(), (2, 3, 4), tmp_path / f"v{opset}.onnx", opset), (2, 3, 4))


def test_onnx_unsqueeze_and_squeeze_of_inner_axes(tmp_path):
    class Axes(torch.nn.Module):
        def forward(self, x):  # (N, C, L) → (N, C, L, 1) is 4-D with W = 1, then back
            return torch.relu(x.unsqueeze(-1)).squeeze(-1) * 2

    onnx_matches(export_onnx(Axes(), (3, 5), tmp_path / "a.onnx"), (3, 5))
    torch_matches(Axes(), (3, 5))


def test_channel_shuffle_view_is_one_gather():
    class Shuffle(torch.nn.Module):
        def forward(self, x):
            b, c, h, w = x.size()
            y = x.view(b, 2, 3, h, w).transpose(1, 2).reshape(b, 3, 2, h, w)  # regrouped after the shuffle
            return y.permute(0, 2, 1, 3, 4).reshape(b, c, h, w)

    assert ops_of(torch_matches(Shuffle(), (6, 2, 3))) == ["GATHER"]


def test_an_operator_on_the_grouped_view_is_refused():
    class Bad(torch.nn.Module):
        def forward(self, x):
            return torch.relu(x.view(1, 2, 3, 4, 5)).view(1, 6, 4, 5)

    with pytest.raises(UnsupportedOpError, match="channels viewed as groups") as e:
        from_torch(Bad(), (6, 4, 5))
    assert "Fix: reshape them back to (N, C, H, W) first" in str(e.value)


def test_a_reshape_of_the_batch_axis_is_an_unbatched_value():
    """x.view(-1) at batch one: the framework value has no batch axis, the graph keeps one in front (in the
    framework's order: an (N, C, L) input is transposed out of its NHWC graph tensor first) and every row of
    the runtime is one batch-one call of the model."""
    from tinyopt.runtime import Interpreter

    class Flat(torch.nn.Module):
        def forward(self, x):
            return x.view(-1) * 2.0

    g = from_torch(Flat(), (3, 2))
    assert g.tensors[g.outputs[0]].shape == (1, 6) and ops_of(g).count("TRANSPOSE") == 1
    x = np.random.default_rng(0).normal(size=(4, 3, 2)).astype(np.float32)
    got = Interpreter(g).run(x.transpose(0, 2, 1)[:, None])[0]  # (N, C, L) as the graph's (N, 1, L, C)
    want = np.stack([Flat()(torch.from_numpy(x[r: r + 1])).numpy() for r in range(4)])
    np.testing.assert_allclose(got, want, atol=1e-6)
