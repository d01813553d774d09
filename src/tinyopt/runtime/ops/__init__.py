"""One module per operator (TFLM's layout); ``KERNELS`` maps a TFLite op name to its ``run``."""

from __future__ import annotations

from tinyopt.runtime.ops import (
    add,
    average_pool2d,
    batch_norm,
    concatenation,
    conv2d,
    depthwise_conv2d,
    dequantize,
    fully_connected,
    logistic,
    max_pool2d,
    mean,
    mul,
    pad,
    quantize,
    relu,
    relu6,
    reshape,
    softmax,
    sub,
    tanh,
)

KERNELS = {
    "CONV_2D": conv2d.run,
    "DEPTHWISE_CONV_2D": depthwise_conv2d.run,
    "FULLY_CONNECTED": fully_connected.run,
    "ADD": add.run,
    "SUB": sub.run,
    "MUL": mul.run,
    "AVERAGE_POOL_2D": average_pool2d.run,
    "MAX_POOL_2D": max_pool2d.run,
    "MEAN": mean.run,
    "RESHAPE": reshape.run,
    "PAD": pad.run,
    "CONCATENATION": concatenation.run,
    "SOFTMAX": softmax.run,
    "LOGISTIC": logistic.run,
    "TANH": tanh.run,
    "QUANTIZE": quantize.run,
    "DEQUANTIZE": dequantize.run,
    "RELU": relu.run,
    "RELU6": relu6.run,
    "BATCH_NORM": batch_norm.run,
}

__all__ = ["KERNELS"]
