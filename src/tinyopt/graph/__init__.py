"""The graph IR and its importers: YAML spec, TFLite, ONNX, PyTorch."""

from tinyopt.graph.ir import DTYPE_BYTES, Graph, Node, QuantParams, Tensor, iter_param_tensors
from tinyopt.graph.load import load_model

__all__ = ["DTYPE_BYTES", "Graph", "Node", "QuantParams", "Tensor", "iter_param_tensors", "load_model"]
