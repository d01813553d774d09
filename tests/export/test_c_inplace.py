"""The in-place plan (overlapping rows, reversed row order, fused residual ADDs, reordered branches) computes
exactly what a plan with every tensor in its own buffer computes, and both equal TFLM, on random networks."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tinyopt.export.c import generate_sources, write_library
from tinyopt.export.c.board import build_host, run_host
from tinyopt.export.tflite import graph_to_tflite_bytes
from tinyopt.graph.ir import Graph, Node, QuantParams, Tensor

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="no host C compiler (cc)")


def _q(scale, zp, axis=None):
    return QuantParams(np.asarray(scale, np.float32), np.asarray(zp), axis)


def random_network(seed: int) -> Graph:
    """conv/depthwise layers with random kernels, strides and padding, and residual ADDs between
    same-shaped tensors (a shortcut that skips one or two layers)."""
    rng = np.random.default_rng(seed)
    g = Graph(f"random{seed}", source=f"<random network {seed}>")
    h, w, c = int(rng.integers(5, 11)), int(rng.integers(4, 9)), int(rng.choice([1, 3, 4, 8]))
    x = g.add_tensor(Tensor("x", (1, h, w, c), "int8", quant=_q(0.05, int(rng.integers(-20, 20)))))
    g.inputs = [x.name]
    history = [x]
    for i in range(int(rng.integers(3, 7))):
        cur = history[-1]
        _, h, w, c = cur.shape
        kind = rng.choice(["conv", "dw", "pw", "add"])
        same = [t for t in history[:-1] if t.shape == cur.shape]
        if kind == "add" and not same:
            kind = "pw"
        s_out = float(rng.uniform(0.03, 0.08))
        y = Tensor(f"t{i}", (1, 1, 1, 1), "int8", quant=_q(s_out, int(rng.integers(-30, 30))))
        if kind == "add":
            g.add_tensor(y)
            g.add_node(Node(f"add{i}", "ADD", [cur.name, same[-1].name], [y.name], {"activation": "RELU"}))
        else:
            k = 1 if kind == "pw" else int(rng.choice([1, 3, 5]))
            stride = 1 if kind == "pw" else int(rng.choice([1, 1, 2]))
            pad = "SAME" if kind == "pw" else str(rng.choice(["SAME", "VALID"]))
            if pad == "VALID" and (k > h or k > w):
                pad = "SAME"
            oc = c if kind == "dw" else int(rng.choice([c, 4, 8, 6]))
            shape = (oc, k, k, c) if kind != "dw" else (1, k, k, oc)
            wq = rng.integers(-127, 128, size=shape, dtype=np.int8)
            ws = rng.uniform(0.002, 0.01, oc).astype(np.float32)
            s_in = float(cur.quant.scale[0])
            g.add_tensor(Tensor(f"w{i}", shape, "int8", data=wq,
                                quant=_q(ws, np.zeros(oc), 0 if kind != "dw" else 3)))
            g.add_tensor(Tensor(f"b{i}", (oc,), "int32", data=rng.integers(-2000, 2000, oc).astype(np.int32),
                                quant=_q(s_in * ws, np.zeros(oc), 0)))
            g.add_tensor(y)
            attrs = {"stride": (stride, stride), "padding": pad,
                     "activation": str(rng.choice(["NONE", "RELU"]))}
            op = "DEPTHWISE_CONV_2D" if kind == "dw" else "CONV_2D"
            if kind == "dw":
                attrs["depth_multiplier"] = 1
            g.add_node(Node(f"{kind}{i}", op, [cur.name, f"w{i}", f"b{i}"], [y.name], attrs))
        g.infer_shapes()
        history.append(y)
    g.outputs = [history[-1].name]
    return g.validate()


# seeds chosen (from the first 40) to cover: rows stored bottom-up (1, 4, 18), residual ADDs fused into a
# conv that also works in place (20, 22, 33) or not (9), and chains of in-place ADDs (28)
@pytest.mark.parametrize("seed", [1, 4, 9, 18, 20, 22, 28, 33])
def test_in_place_plan_equals_plain_plan_and_tflm(seed, tmp_path):
    g = random_network(seed)
    xs = np.random.default_rng(seed).integers(-128, 128, size=(20, g.tensors["x"].size), dtype=np.int8)
    outs = []
    for name, kw in [("inplace", {}), ("plain", {"inplace": False, "reorder": False})]:
        lib = generate_sources(g, **kw)
        write_library(lib.files, tmp_path / name)
        outs.append(run_host(build_host(tmp_path / name, tmp_path / f"{name}.exe"), xs, lib.output_bytes))
        if name == "inplace":
            lib.plan.planner.check_no_overlap()
            assert lib.plan.planner.in_place_nodes()  # the case really exercises overlapping rows
            assert lib.arena_bytes <= generate_sources(g, inplace=False, reorder=False).arena_bytes
    assert np.array_equal(outs[0], outs[1])
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(graph_to_tflite_bytes(g))
    ref = []
    for x in xs:
        interp.set_input(x.reshape(g.tensors["x"].shape), 0)
        interp.invoke()
        ref.append(interp.get_output(0).reshape(-1).copy())
    assert np.array_equal(outs[0], np.stack(ref))
