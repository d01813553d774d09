"""tinyopt.convert: float or fake-quantized models → int8 Graphs following TFLM's quantization spec."""

from tinyopt.convert.calibrate import calibrate, choose_activation_qparams
from tinyopt.convert.convert import convert_graph, convert_torch, prepare_float_graph, torch_to_graph_layout
from tinyopt.convert.quantize import quantize_bias, quantize_graph, quantize_weight

__all__ = ["calibrate", "choose_activation_qparams", "convert_graph", "convert_torch", "prepare_float_graph",
           "quantize_bias", "quantize_graph", "quantize_weight", "torch_to_graph_layout"]
