"""A tiny streaming model with one resource variable, for the tests of variables end to end."""

from __future__ import annotations

import numpy as np

from tinyopt.graph.ir import Graph, Node, QuantParams, Tensor, Variable


def streaming_graph(frames: int = 2, width: int = 4, out: int = 3) -> Graph:
    """A frame of ``width`` features joins the last ``frames`` frames (the state); a dense layer reads all of
    them; the newest ``frames`` become the next state. Its output depends on earlier invokes."""
    rng = np.random.default_rng(0)
    q = QuantParams(np.array([0.1]), np.array([0]))
    g = Graph("streaming", source="<test>")
    g.add_tensor(Tensor("x", (1, 1, width), "int8", quant=q))
    g.add_tensor(Tensor("state", (1, frames, width), "int8", quant=q, variable=True))
    g.add_tensor(Tensor("window", (1, frames + 1, width), "int8", quant=q))
    for name, value in (("begin", [0, 1, 0]), ("end", [1, frames + 1, width]), ("strides", [1, 1, 1])):
        g.add_tensor(Tensor(name, (3,), "int32", data=np.array(value, np.int32), constant=True))
    g.add_tensor(Tensor("next_state", (1, frames, width), "int8", quant=q))
    g.add_tensor(Tensor("flat", (1, (frames + 1) * width), "int8", quant=q))
    g.add_tensor(Tensor("new_shape", (2,), "int32", data=np.array([1, (frames + 1) * width], np.int32),
                        constant=True))
    w = rng.integers(-127, 128, (out, (frames + 1) * width)).astype(np.int8)
    g.add_tensor(Tensor("w", w.shape, "int8", data=w, constant=True,
                        quant=QuantParams(np.full(out, 0.02), np.zeros(out, np.int64), 0)))
    g.add_tensor(Tensor("b", (out,), "int32", data=rng.integers(-50, 50, out).astype(np.int32), constant=True,
                        quant=QuantParams(np.full(out, 0.002), np.zeros(out, np.int64), 0)))
    g.add_tensor(Tensor("y", (1, out), "int8", quant=QuantParams(np.array([0.05]), np.array([-3]))))
    g.add_node(Node("window", "CONCATENATION", ["state", "x"], ["window"], {"axis": 1}))
    g.add_node(Node("next_state", "STRIDED_SLICE", ["window", "begin", "end", "strides"], ["next_state"]))
    g.add_node(Node("flat", "RESHAPE", ["window", "new_shape"], ["flat"],
                    {"new_shape": (1, (frames + 1) * width)}))
    g.add_node(Node("y", "FULLY_CONNECTED", ["flat", "w", "b"], ["y"]))
    g.inputs, g.outputs = ["x"], ["y"]
    g.variables = [Variable("stream/state", "state", "next_state", np.full((1, frames, width), 7, np.int8))]
    return g.validate()


def frames(n: int = 24, width: int = 4) -> np.ndarray:
    return np.random.default_rng(1).integers(-128, 128, (n, 1, width)).astype(np.int8)
