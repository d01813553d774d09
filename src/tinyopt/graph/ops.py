"""Operator names and their attribute conventions in the IR (TFLite builtin names).

| op | inputs | attrs |
| --- | --- | --- |
| CONV_2D | x, weight [O,KH,KW,I], bias [O]? | stride (sh, sw), padding SAME/VALID, dilation (dh, dw), activation |
| DEPTHWISE_CONV_2D | x, weight [1,KH,KW,I*M], bias? | stride, padding, dilation, depth_multiplier, activation |
| FULLY_CONNECTED | x, weight [O,I], bias? | activation, keep_num_dims (bool) |
| MAX_POOL_2D / AVERAGE_POOL_2D | x | filter (fh, fw), stride, padding, activation |
| MEAN | x, axes (int32 const) | keep_dims |
| ADD / MUL / SUB | a, b | activation |
| CONCATENATION | x0, x1, ... | axis, activation |
| RESHAPE | x, shape (int32 const)? | new_shape (tuple) |
| PAD | x, paddings (int32 [R,2] const) | |
| SOFTMAX | x | beta |
| LOGISTIC, TANH, RELU, RELU6, QUANTIZE, DEQUANTIZE | x | |
| BATCH_NORM | x, gamma, beta, mean, var | epsilon |

``activation`` is one of NONE, RELU, RELU6, RELU_N1_TO_1, TANH (TFLite's fused activations).
"""

from __future__ import annotations

ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1", "TANH")

# Input positions that hold trainable parameters (counted as "params").
PARAM_INPUTS: dict[str, tuple[int, ...]] = {
    "CONV_2D": (1, 2),
    "DEPTHWISE_CONV_2D": (1, 2),
    "FULLY_CONNECTED": (1, 2),
    "BATCH_NORM": (1, 2, 3, 4),
}

SUPPORTED_OPS = (
    "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D", "AVERAGE_POOL_2D", "MEAN",
    "ADD", "SUB", "MUL", "CONCATENATION", "RESHAPE", "PAD", "SOFTMAX", "LOGISTIC", "TANH", "RELU",
    "RELU6", "QUANTIZE", "DEQUANTIZE", "BATCH_NORM",
)
