"""prepare_node's integers by hand (the C generator reads the same dict), and its refusals."""

from __future__ import annotations

import numpy as np
import pytest

from runtime._reference import qtensor
from tinyopt.errors import ModelFormatError
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import QuantParams, Tensor
from tinyopt.runtime import prepare_node


def test_conv_parameters_by_hand():
    x = qtensor("x", (1, 7, 9, 2), 0.5, -3)
    w = qtensor("w", (2, 3, 3, 2), [0.25, 0.0078125], [0, 0], data=np.ones((2, 3, 3, 2), np.int8), axis=0)
    y = qtensor("y", (1, 1, 1, 2), 0.125, 7)
    g = single_op_model("CONV_2D", [x, w, None], y, dict(stride=(2, 2), padding="SAME", activation="RELU6"))
    p = prepare_node(g, g.nodes[0])
    # Effective scales 0.5 * 0.25 / 0.125 = 1.0 = 2^30 * 2^(1-31) and 0.5 * 2^-7 / 0.125 = 2^-5.
    assert p.output_multiplier.tolist() == [1 << 30, 1 << 30]
    assert p.output_shift.tolist() == [1, -4]
    assert (p.input_offset, p.output_offset) == (3, 7)
    # RELU6: quantize(0) = 7, quantize(6) = 7 + 48 = 55.
    assert (p.output_activation_min, p.output_activation_max) == (7, 55)
    # SAME, stride 2: out 4x5; total padding rows (4-1)*2+3-7 = 2 -> 1 before; cols (5-1)*2+3-9 = 2 -> 1.
    assert (p.out_h, p.out_w, p.padding_h, p.padding_w) == (4, 5, 1, 1)
    assert (p.padding_h_offset, p.padding_w_offset) == (0, 0)


def test_add_softmax_mean_parameters_by_hand():
    a, b = qtensor("a", (1, 4), 0.05, 1), qtensor("b", (1, 4), 0.1, -2)
    g = single_op_model("ADD", [a, b], qtensor("y", (1, 4), 0.2, 0), dict(activation="NONE"))
    p = prepare_node(g, g.nodes[0])
    # twice the larger scale = 0.2: 0.05/0.2 = 2^-2 and 0.1/0.2 = 2^-1; output 0.2 / (2^20 * 0.2) = 2^-20.
    assert (p.input1_multiplier, p.input1_shift) == (1 << 30, -1)
    assert (p.input2_multiplier, p.input2_shift) == (1 << 30, 0)
    assert (p.output_multiplier, p.output_shift, p.left_shift) == (1 << 30, -19, 20)
    assert (p.input1_offset, p.input2_offset) == (-1, 2)

    g = single_op_model("SOFTMAX", [qtensor("x", (1, 10), 0.1, 0)], qtensor("s", (1, 10), 1 / 256, -128),
                        dict(beta=1.0))
    p = prepare_node(g, g.nodes[0])
    # The scale is float32(0.1) = 0.100000001490116: beta * scale * 2^26 = 0.800000011920929 * 2^23, so
    # the multiplier is round(0.800000011920929 * 2^31) = 1717986944 (not 1717986918 as for an exact 0.1)
    # and the left shift 23; radius floor(31 * 2^26 / 2^23) = 248.
    assert (p.input_multiplier, p.input_left_shift, p.diff_min) == (1717986944, 23, -248)

    axes = Tensor("axes", (2,), "int32", data=np.array([1, 2], np.int32))
    g = single_op_model("MEAN", [qtensor("x", (1, 5, 5, 3), 0.5, 0), axes],
                        qtensor("m", (1, 1, 1, 3), 0.25, 0), dict(keep_dims=True))
    p = prepare_node(g, g.nodes[0])
    # 0.5 / 0.25 = 2 -> (2^30, 2); count 25: shift floor(log2 25) = 4, multiplier (2^30 << 4) // 25.
    assert (p.multiplier, p.shift, p.num_elements_in_axis) == (1 << 30, 2, 25)
    assert (p.mean_multiplier, p.mean_shift) == ((1 << 34) // 25, -2)


@pytest.mark.parametrize("quant,fragment", [
    (None, "has no quantization parameters"),
    (QuantParams([0.0], [0]), "invalid scale"),
    (QuantParams([float("nan")], [0]), "invalid scale"),
])
def test_bad_quantization_is_refused_naming_the_node(quant, fragment):
    x = Tensor("x", (1, 4), "int8", quant=quant)
    g = single_op_model("SOFTMAX", [qtensor("x0", (1, 4), 0.1, 0)], qtensor("y", (1, 4), 1 / 256, -128),
                        dict(beta=1.0))
    g.tensors["x0"] = Tensor("x0", x.shape, "int8", quant=quant)
    g.source = "m.tflite"
    with pytest.raises(ModelFormatError, match=rf"m.tflite: node 0 'y' \(SOFTMAX\): .*{fragment}"):
        prepare_node(g, g.nodes[0])
