"""Oracles shared by the math, comparison and reduction operator tests: TFLM on a converted graph, the
generated C library against the numpy runtime, ONNX Runtime and PyTorch against the framework doors."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from runtime._reference import assert_matches_reference, qtensor, random_int8
from tinyopt.export.tflite import single_op_model
from tinyopt.graph.ir import Graph, Tensor
from tinyopt.runtime import Interpreter

HAVE_CC = shutil.which("cc") is not None
needs_cc = pytest.mark.skipif(not HAVE_CC, reason="no host C compiler (cc)")


def const_i32(name: str, values) -> Tensor:
    a = np.asarray(values, np.int32).reshape(-1)
    return Tensor(name, a.shape, "int32", data=a)


def to_nhwc(a: np.ndarray) -> np.ndarray:
    """A framework batch (N, C, H, W) / (N, C, L) in the graph's layout (the doors' rule)."""
    if a.ndim == 4:
        return np.ascontiguousarray(a.transpose(0, 2, 3, 1))
    if a.ndim == 3:
        return np.ascontiguousarray(a.transpose(0, 2, 1)[:, None])
    return a


def from_graph_layout(got: np.ndarray, want_shape) -> np.ndarray:
    """Our output (N, graph shape) in the framework's order when it is 4-D NCHW, else reshaped."""
    if len(want_shape) == 4 and got.ndim == 4:
        return got.transpose(0, 3, 1, 2)
    if len(want_shape) == 3 and got.ndim == 4 and got.shape[1] == 1:
        return got[:, 0].transpose(0, 2, 1)
    return got.reshape(want_shape)


def random_reduction(op: str, seed: int, int8: bool, same_quant: bool = False):
    """A one-node reduction graph: rank 2-5, a random subset of axes (negative and repeated ones
    included), keep_dims either way; the input rows for it."""
    rng = np.random.default_rng(seed)
    rank = int(rng.integers(2, 6))
    shape = (1, *(int(d) for d in rng.integers(1, 7, size=rank - 1)))
    keep = bool(rng.random() < 0.5)
    first = 0 if keep else 1  # the batch axis goes only with keep_dims (the runtime's tensors have batch 1)
    k = int(rng.integers(1, rank - first + 1))
    axes = [int(a) for a in rng.choice(np.arange(first, rank), size=k, replace=False)]
    axes = [a - rank if rng.random() < 0.3 else a for a in axes]
    if rng.random() < 0.2:
        axes.append(axes[0])  # a duplicate: ResolveAxis drops it
    if int8:
        s_in, z_in = float(rng.uniform(0.005, 0.2)), int(rng.integers(-20, 21))
        s_out, z_out = (s_in, z_in) if same_quant else (float(rng.uniform(0.005, 0.3)),
                                                        int(rng.integers(-30, 31)))
        x, y = qtensor("x", shape, s_in, z_in), qtensor("y", (1,), s_out, z_out)
        xs = random_int8(rng, (4, *shape[1:]))
    else:
        x, y = Tensor("x", shape), Tensor("y", (1,))
        xs = rng.normal(size=(4, *shape[1:])).astype(np.float32)
    g = single_op_model(op, [x, const_i32("axes", axes)], y, dict(keep_dims=keep))
    return g, xs, axes, keep


# -- the C library ----------------------------------------------------------------------------------

def c_library_outputs(graph: Graph, xs: np.ndarray, tmp: Path) -> np.ndarray:
    """The generated library (host build, -std=c99 -Wall -Werror) on each row of ``xs``."""
    from tinyopt.export.c import generate_sources, write_library
    from tinyopt.export.c.board import build_host, run_host

    lib = generate_sources(graph)
    write_library(lib.files, tmp / "lib")
    exe = build_host(tmp / "lib", tmp / "infer")
    return run_host(exe, xs.reshape(len(xs), -1), lib.output_bytes)


def assert_c_equals_runtime(graph: Graph, xs: np.ndarray, tmp: Path) -> None:
    ours = Interpreter(graph).run(xs)[0].reshape(len(xs), -1)
    c = c_library_outputs(graph, xs, tmp)
    bad = np.argwhere(c != ours)
    assert bad.size == 0, f"{len(bad)} mismatches, first at {bad[0].tolist()}: C {c[tuple(bad[0])]} " \
                          f"numpy {ours[tuple(bad[0])]}"


# -- convert ---------------------------------------------------------------------------------------

def convert_and_match_tflm(graph: Graph, calib: np.ndarray, xs: np.ndarray) -> Graph:
    """``convert_graph`` to int8 (int8 I/O); our runtime equals TFLM on the written .tflite, every value.
    Returns the int8 graph."""
    from tinyopt.convert import convert_graph

    q = convert_graph(graph, calib)
    x = q.tensors[q.inputs[0]]
    s, z = float(x.quant.scale[0]), int(x.quant.zero_point[0])
    xq = np.clip(np.round(xs / s) + z, -128, 127).astype(np.int8)
    assert_matches_reference(q, xq)
    return q


def dequantized(q: Graph, out: np.ndarray) -> np.ndarray:
    t = q.tensors[q.outputs[0]]
    return (out.astype(np.float64) - float(t.quant.zero_point[0])) * float(t.quant.scale[0])


# -- ONNX -------------------------------------------------------------------------------------------

def onnx_file(tmp: Path, nodes, x_shape, inits=(), opset: int = 17, name: str = "m.onnx") -> Path:
    """A one-input ONNX model: input 'x' of ``x_shape``, output 'y' (the last node's output)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    model = onnx.shape_inference.infer_shapes(model)  # the output's shape, as an exporter writes it
    path = tmp / name
    onnx.save(model, str(path))
    return path


def ort_run(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return np.concatenate([s.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))])


def assert_onnx_matches_ort(path: Path, x: np.ndarray, atol: float = 1e-5) -> Graph:
    """load_onnx(path) run by our interpreter equals ONNX Runtime on ``x`` (framework layout)."""
    from tinyopt.graph.onnx_import import load_onnx

    g = load_onnx(path)
    want = ort_run(path, x)
    got = Interpreter(g).run(to_nhwc(x))[0]
    np.testing.assert_allclose(from_graph_layout(got, want.shape), want, atol=atol, rtol=1e-5)
    return g


def export_onnx(module, shape, path: Path, opset: int = 17) -> Path:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), torch.zeros(1, *shape), str(path), dynamo=False, opset_version=opset)
    return path


# -- PyTorch ----------------------------------------------------------------------------------------

def assert_torch_matches(module, shape, batch: int = 3, atol: float = 1e-5, seed: int = 1) -> Graph:
    """from_torch(module) run by our interpreter equals the module's own output."""
    import torch

    from tinyopt.graph.torch_import import from_torch

    module.eval()
    g = from_torch(module, shape)
    x = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        want = module(x).numpy()
    got = Interpreter(g).run(to_nhwc(x.numpy()))[0]
    np.testing.assert_allclose(from_graph_layout(got, want.shape), want, atol=atol, rtol=1e-5)
    return g


def random_broadcast_pair(rng: np.random.Generator, max_rank: int = 5) -> tuple[tuple, tuple]:
    """Two shapes that broadcast (TFLite's right-aligned rules), batch 1 on the longer; either may be
    shorter or have unit axes."""
    rank = int(rng.integers(1, max_rank + 1))
    out = (1, *(int(d) for d in rng.integers(1, 6, size=rank - 1)))

    def operand():
        keep = int(rng.integers(1, rank + 1))  # trailing axes it has
        dims = [d if rng.random() < 0.6 else 1 for d in out[rank - keep:]]
        return tuple(dims)

    a, b = operand(), operand()
    if rng.random() < 0.5:
        a = out  # one operand often has the full shape
    if len(a) < len(b):
        a, b = b, a
    a = (1,) * (rank - len(a)) + a  # the activation side keeps the batch axis
    return a, b


def random_binary(op: str, seed: int, int8: bool, same_quant: bool = False, attrs: dict | None = None,
                  max_rank: int = 5, positive_b: bool = False):
    """A one-node broadcasting binary graph (input 2 a constant on some seeds; as an activation it keeps a
    leading batch axis) and its input rows. ``positive_b``: input 2 above its zero point (a divisor)."""
    rng = np.random.default_rng(seed)
    sa, sb = random_broadcast_pair(rng, max_rank)
    constant = bool(rng.random() < 0.3)
    if not constant and len(sb) < len(sa):
        sb = (1, *sb)
    rows_b = (4, *sb[1:])
    if int8:
        qs = [(float(rng.uniform(0.01, 0.2)), int(rng.integers(-20, 21))) for _ in range(3)]
        if same_quant:
            qs = [qs[0]] * 3
        lo = qs[1][1] + 1 if positive_b else -128
        data = rng.integers(lo, 128, size=sb).astype(np.int8) if constant else None
        a, b, y = qtensor("a", sa, *qs[0]), qtensor("b", sb, *qs[1], data=data), qtensor("y", (1,), *qs[2])
        xa = random_int8(rng, (4, *sa[1:]))
        xb = rng.integers(lo, 128, size=rows_b).astype(np.int8)
    else:
        def draw(shape):
            if positive_b:
                return (rng.uniform(0.5, 2, size=shape) * rng.choice([-1, 1], size=shape)).astype(np.float32)
            return rng.normal(size=shape).astype(np.float32)

        a, b, y = Tensor("a", sa), Tensor("b", sb, data=draw(sb) if constant else None), Tensor("y", (1,))
        xa, xb = rng.normal(size=(4, *sa[1:])).astype(np.float32), draw(rows_b)
    g = single_op_model(op, [a, b], y, attrs)
    return g, [xa] if constant else [xa, xb]


def branch_graph(op: str, x_shape, axes, attrs: dict | None = None, int8: bool = True, swap: bool = False,
                 qx=(0.05, -3), qy=None, reducer: str = "REDUCE_MAX", qr=None) -> Graph:
    """x -> ``reducer`` over ``axes`` (keep_dims) -> r; ``op``(x, r) (or (r, x)): a one-input, one-output
    graph in which a binary operator broadcasts one activation onto another (what the C library runs)."""
    from tinyopt.graph.ir import Node

    g = Graph("branch")
    qy = qy or qx
    mk = (lambda n, s, q: qtensor(n, s, *q)) if int8 else (lambda n, s, q: Tensor(n, s))
    g.add_tensor(mk("x", x_shape, qx))
    g.add_tensor(const_i32("axes", axes))
    g.add_tensor(mk("r", (1,), qr or qx))
    g.add_tensor(mk("y", (1,), qy))
    g.add_node(Node("r", reducer, ["x", "axes"], ["r"], {"keep_dims": True}))
    g.add_node(Node("y", op, ["r", "x"] if swap else ["x", "r"], ["y"], dict(attrs or {})))
    g.inputs, g.outputs = ["x"], ["y"]
    return g.infer_shapes().validate()


def random_unary(op: str, seed: int, int8: bool = False, low: float | None = None, qout=None):
    """A one-node element-wise graph of rank 1-5 and its rows (float values above ``low`` if given; int8
    values at or above the input zero point when ``low`` is given)."""
    rng = np.random.default_rng(seed)
    rank = int(rng.integers(1, 6))
    shape = (1, *(int(d) for d in rng.integers(1, 7, size=rank - 1)))
    if int8:
        s, z = float(rng.uniform(0.005, 0.2)), int(rng.integers(-100, 60))
        so, zo = qout or (float(rng.uniform(0.01, 0.5)), int(rng.integers(-128, 0)))
        x, y = qtensor("x", shape, s, z), qtensor("y", (1,), so, zo)
        xs = rng.integers(z if low is not None else -128, 128, size=(6, *shape[1:])).astype(np.int8)
        xs[0].flat[0] = z if low is not None else xs[0].flat[0]  # the zero point itself
    else:
        x, y = Tensor("x", shape), Tensor("y", (1,))
        xs = (rng.uniform(low, low + 4, size=(6, *shape[1:])) if low is not None
              else rng.normal(size=(6, *shape[1:])) * 2).astype(np.float32)
    return single_op_model(op, [x], y), xs


def weights_summing_to(acc: int) -> np.ndarray:
    """int8 weights (127s, the remainder, then zeros) whose sum is ``acc`` >= 0: a row of ones times them
    accumulates exactly acc, which is how the rounding-tie tests reach a chosen accumulator."""
    w = np.zeros(2 * (acc // 127 + 1), np.int64)
    w[: acc // 127], w[acc // 127] = 127, acc % 127
    return w
