"""``check_support``: what it says a runtime runs must be what that runtime then runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tinyopt.analysis.cost import model_dtype
from tinyopt.convert import convert_graph, torch_to_graph_layout
from tinyopt.graph.torch_import import from_torch
from tinyopt.runtime.support import check_support, graph_level_problems

SHAPE = (3, 10, 10)


class SqrtNet(torch.nn.Module):
    """A conv, then SQRT and EXP (TFLM runs them in float only: convert keeps them as float islands)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x):
        y = torch.sqrt(torch.relu(self.conv(x)) + 1.0).mean(dim=(2, 3))
        return self.fc(torch.exp(y * 0.1))


def _converted(activations: str, io: str = "int8"):
    torch.manual_seed(0)
    calib = np.random.default_rng(0).random((8, *SHAPE)).astype(np.float32)
    return convert_graph(from_torch(SqrtNet().eval(), SHAPE), torch_to_graph_layout(calib, SHAPE),
                         activations=activations, io=io)


def test_int8_float_islands_are_supported_by_the_c_library_and_it_builds_them():
    from tinyopt.export.c.generate import generate_sources

    g = _converted("int8")
    rows = check_support(g, "tinyopt-c")
    island = [r for r in rows if r.op in ("DEQUANTIZE", "SQRT", "EXP", "QUANTIZE")]
    assert len(island) == 6 and all(r.supported and "lookup table" in r.reason for r in island)
    assert all(r.supported for r in rows)
    assert generate_sources(g).arena_bytes > 0  # what check calls supported, the generator builds


def test_int16_float_islands_name_tflm_not_a_conversion():
    g = _converted("int16")
    rows = {r.op: r for r in check_support(g, "tinyopt-c")}
    assert not rows["SQRT"].supported
    assert "convert the model first" not in rows["SQRT"].reason  # it is converted already
    assert "--runtime tflm-reference" in rows["SQRT"].reason and "int16" in rows["SQRT"].reason
    assert rows["CONV_2D"].supported
    assert all(r.supported for r in check_support(g, "tflm"))  # TFLM runs the island in float


@pytest.mark.parametrize("activations,io,expected", [("int8", "int8", "int8"), ("int8", "float", "int8"),
                                                     ("int16", "int8", "int16")])
def test_model_dtype_is_the_layers_dtype(activations, io, expected):
    # float I/O (QUANTIZE in front, DEQUANTIZE behind) and the float islands inside do not make it float
    assert model_dtype(_converted(activations, io)) == expected
    assert model_dtype(from_torch(SqrtNet().eval(), SHAPE)) == "float32"


def test_int32_output_of_an_integer_model_names_tflm_not_a_conversion():
    """An integer model whose output the C library has no buffer type for (ARG_MAX's int32 indices): it is
    converted already, so the fix cannot be 'convert the model'."""
    from tinyopt.export.tflite import single_op_model
    from tinyopt.graph.ir import QuantParams, Tensor

    x = Tensor("x", (1, 4), "int8", quant=QuantParams(np.array([0.1]), np.array([-3])))
    axis = Tensor("axis", (1,), "int32", data=np.array([1], np.int32))
    g = single_op_model("ARG_MAX", [x, axis], Tensor("y", (1,), "int32"))
    (problem,) = graph_level_problems(g, "tinyopt-c")
    assert "is int32" in problem and "deploy this model with TFLM" in problem
    assert "convert the model" not in problem
