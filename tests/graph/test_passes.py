"""Graph passes keep the float function: checked with an independent float64 reference evaluator.

``run_float`` below is the test-side oracle for float Graphs (written from the TFLite op definitions,
independent of the project's runtime); the importer tests use it too.
"""

import numpy as np
import pytest

from tinyopt.graph.ir import Graph, Node, Tensor, iter_param_tensors
from tinyopt.graph.passes import fold_batchnorm, fold_pad_into_conv, fuse_activations, remove_identities
from tinyopt.graph.shapes import same_padding
from tinyopt.graph.spec import spec_to_graph

# -- the reference evaluator ---------------------------------------------------------------------


def _act(y, a):
    return {"NONE": y, None: y, "RELU": np.maximum(y, 0), "RELU6": np.clip(y, 0, 6),
            "RELU_N1_TO_1": np.clip(y, -1, 1), "TANH": np.tanh(y)}[a]


def _pads(n, x, kh, kw):
    sh, sw = n.attrs.get("stride", (1, 1))
    dh, dw = n.attrs.get("dilation", (1, 1))
    h, w = x.shape[1:3]
    if n.attrs.get("padding") == "SAME":
        return same_padding(h, kh, sh, dh, -(-h // sh)), same_padding(w, kw, sw, dw, -(-w // sw))
    return (0, 0), (0, 0)


def _windows(x, kh, kw, n, fill=0.0):
    """Yield (i, j, patch) with patch[:, oh, ow, c] = padded input under kernel tap (i, j)."""
    (pt, pb), (pl, pr) = _pads(n, x, kh, kw)
    sh, sw = n.attrs.get("stride", (1, 1))
    dh, dw = n.attrs.get("dilation", (1, 1))
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=fill)
    oh = (xp.shape[1] - (kh - 1) * dh - 1) // sh + 1
    ow = (xp.shape[2] - (kw - 1) * dw - 1) // sw + 1
    for i in range(kh):
        for j in range(kw):
            yield i, j, xp[:, i * dh: i * dh + (oh - 1) * sh + 1: sh, j * dw: j * dw + (ow - 1) * sw + 1: sw,
                           :]


def _eval_node(n: Node, ins):
    x = ins[0]
    op, act = n.op, n.attrs.get("activation", "NONE")
    if op == "CONV_2D":
        w = ins[1]
        y = sum(p @ w[:, i, j, :].T for i, j, p in _windows(x, w.shape[1], w.shape[2], n))
        y = y + (ins[2] if len(ins) > 2 and ins[2] is not None else 0)
    elif op == "DEPTHWISE_CONV_2D":
        w, m = ins[1], n.attrs.get("depth_multiplier", 1)
        xr = np.repeat(x, m, axis=-1)
        y = sum(p * w[0, i, j, :] for i, j, p in _windows(xr, w.shape[1], w.shape[2], n))
        y = y + (ins[2] if len(ins) > 2 and ins[2] is not None else 0)
    elif op == "FULLY_CONNECTED":
        w = ins[1]
        y = x.reshape(-1, w.shape[1]) @ w.T + (ins[2] if len(ins) > 2 and ins[2] is not None else 0)
    elif op == "MAX_POOL_2D":
        y = np.max(np.stack([p for _, _, p in _windows(x, *n.attrs["filter"], n, fill=-np.inf)]), axis=0)
    elif op == "AVERAGE_POOL_2D":  # SAME divides by the number of in-bounds taps
        s = sum(p for _, _, p in _windows(x, *n.attrs["filter"], n))
        c = sum(p for _, _, p in _windows(np.ones_like(x), *n.attrs["filter"], n))
        y = s / c
    elif op == "MEAN":
        y = x.mean(axis=tuple(n.attrs["axes"]), keepdims=bool(n.attrs.get("keep_dims")))
    elif op in ("ADD", "SUB", "MUL"):
        y = {"ADD": np.add, "SUB": np.subtract, "MUL": np.multiply}[op](x, ins[1])
    elif op == "CONCATENATION":
        y = np.concatenate(ins, axis=n.attrs.get("axis", -1))
    elif op == "RESHAPE":
        y = x.reshape(n.attrs["new_shape"])
    elif op == "PAD":
        y = np.pad(x, np.asarray(ins[1]).reshape(-1, 2))
    elif op == "SOFTMAX":
        e = np.exp(n.attrs.get("beta", 1.0) * (x - x.max(axis=-1, keepdims=True)))
        y = e / e.sum(axis=-1, keepdims=True)
    elif op == "LOGISTIC":
        y = 1 / (1 + np.exp(-x))
    elif op in ("TANH", "RELU", "RELU6"):
        y, act = x, op
    elif op == "BATCH_NORM":
        g, b, m, v = ins[1:5]
        y = (x - m) / np.sqrt(v + n.attrs["epsilon"]) * g + b
    else:
        raise NotImplementedError(op)
    return _act(y, act)


def run_float(g: Graph, x: np.ndarray) -> np.ndarray:
    """Evaluate a float Graph in float64 on one NHWC (graph-layout) input; returns the first output."""
    env = {k: t.data.astype(np.float64) if t.data.dtype.kind == "f" else t.data
           for k, t in g.tensors.items() if t.data is not None}
    env[g.inputs[0]] = np.asarray(x, dtype=np.float64).reshape(g.tensors[g.inputs[0]].shape)
    for n in g.nodes:
        env[n.outputs[0]] = _eval_node(n, [env[t] if t else None for t in n.inputs])
        assert env[n.outputs[0]].shape == g.tensors[n.outputs[0]].shape, n.name
    return env[g.outputs[0]]


def n_params(g: Graph) -> int:
    return sum(t.size for n in g.nodes for t in iter_param_tensors(g, n))


# -- hand-built graphs -----------------------------------------------------------------------------


def _rng_graph(seed=0, producer="CONV_2D", act_between=False):
    rng = np.random.default_rng(seed)
    g = Graph("t")
    g.add_tensor(Tensor("x", (1, 6, 5, 3)))
    g.inputs = ["x"]
    if producer == "CONV_2D":
        w, b, c = rng.normal(size=(4, 3, 3, 3)), rng.normal(size=4), 4
        attrs = {"stride": (1, 1), "padding": "SAME", "dilation": (1, 1), "activation": "NONE"}
    elif producer == "DEPTHWISE_CONV_2D":
        w, b, c = rng.normal(size=(1, 3, 3, 6)), None, 6
        attrs = {"stride": (2, 2), "padding": "SAME", "dilation": (1, 1), "depth_multiplier": 2,
                 "activation": "NONE"}
    else:
        g.add_tensor(Tensor("flat", (1, 90)))
        g.add_node(Node("flat", "RESHAPE", ["x"], ["flat"], {"new_shape": (1, 90)}))
        w, b, c, attrs = rng.normal(size=(7, 90)), rng.normal(size=7), 7, {"activation": "NONE"}
    g.add_tensor(Tensor("w", w.shape, data=w.astype(np.float32)))
    ins = ["flat" if producer == "FULLY_CONNECTED" else "x", "w"]
    if b is not None:
        g.add_tensor(Tensor("b", b.shape, data=b.astype(np.float32)))
        ins.append("b")
    shape = (1, 7) if producer == "FULLY_CONNECTED" else (1, 6, 5, 4) if c == 4 else (1, 3, 3, 6)
    g.add_tensor(Tensor("y", shape))
    g.add_node(Node("layer", producer, ins, ["y"], attrs))
    for k, v in (("gamma", rng.uniform(0.5, 2, c)), ("beta", rng.normal(size=c)),
                 ("mean", rng.normal(size=c)), ("var", rng.uniform(0.1, 3, c))):
        g.add_tensor(Tensor(k, (c,), data=v.astype(np.float32)))
    src = "y"
    if act_between:
        g.add_tensor(Tensor("r", shape))
        g.add_node(Node("relu0", "RELU", ["y"], ["r"]))
        src = "r"
    g.add_tensor(Tensor("z", shape))
    g.add_node(Node("bn", "BATCH_NORM", [src, "gamma", "beta", "mean", "var"], ["z"], {"epsilon": 1e-3}))
    g.add_tensor(Tensor("out", shape))
    g.add_node(Node("relu", "RELU", ["z"], ["out"]))
    g.outputs = ["out"]
    return g.infer_shapes().validate()


@pytest.mark.parametrize("producer", ["CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"])
def test_fold_batchnorm_matches_unfolded_evaluation(producer):
    g = _rng_graph(1, producer)
    x = np.random.default_rng(2).normal(size=(1, 6, 5, 3))
    folded = fold_batchnorm(g)
    assert [n.op for n in folded.nodes if n.op == "BATCH_NORM"] == []
    assert folded.nodes[-1].op == "RELU"
    np.testing.assert_allclose(run_float(folded, x), run_float(g, x), atol=1e-5, rtol=1e-5)
    # params: the BN's 4*C arrays go; a bias of C appears where there was none
    c = g.tensors["gamma"].size
    had_bias = "b" in g.tensors
    assert n_params(folded) == n_params(g) - 4 * c + (0 if had_bias else c)
    assert fold_batchnorm(folded).summary() == folded.summary()  # idempotent
    assert "gamma" in g.tensors and g.tensors["w"].data is not folded.tensors[folded.nodes[-2].inputs[1]].data


def test_fold_batchnorm_hand_numbers():
    # 1x1 conv, one channel: w=2, b=1; BN gamma=3, beta=0.5, mean=1, var=3, eps=1 -> s = 3/sqrt(4) = 1.5
    # folded w = 3, folded b = (1 - 1) * 1.5 + 0.5 = 0.5; input 4 -> 3*4 + 0.5 = 12.5
    g = Graph("hand")
    g.add_tensor(Tensor("x", (1, 1, 1, 1)))
    g.inputs = ["x"]
    for k, v in (("w", [[[[2.0]]]]), ("b", [1.0]), ("g", [3.0]), ("be", [0.5]), ("m", [1.0]), ("v", [3.0])):
        g.add_tensor(Tensor(k, np.shape(v), data=np.array(v, np.float32)))
    g.add_tensor(Tensor("y", (1, 1, 1, 1)))
    g.add_tensor(Tensor("z", (1, 1, 1, 1)))
    g.add_node(Node("c", "CONV_2D", ["x", "w", "b"], ["y"], {"padding": "VALID"}))
    g.add_node(Node("bn", "BATCH_NORM", ["y", "g", "be", "m", "v"], ["z"], {"epsilon": 1.0}))
    g.outputs = ["z"]
    f = fold_batchnorm(g)
    w, b = (f.tensors[t].data for t in f.nodes[0].inputs[1:])
    assert w.ravel().tolist() == [3.0] and b.tolist() == [0.5]
    assert f.outputs == ["z"] and run_float(f, np.array([4.0])).item() == 12.5


def test_fold_batchnorm_leaves_bn_after_activation():
    g = _rng_graph(3, "CONV_2D", act_between=True)
    assert [n.op for n in fold_batchnorm(g).nodes] == [n.op for n in g.nodes]


def test_fold_batchnorm_on_a_spec_folds_shapes():
    doc = {"input": [8, 8, 1], "layers": [{"type": "conv2d", "filters": 4, "kernel": 3, "use_bias": False},
                                          {"type": "batchnorm"}, {"type": "relu"}, {"type": "flatten"},
                                          {"type": "dense", "units": 2}]}
    g = spec_to_graph(doc)
    f = fold_batchnorm(g)
    # conv 4*3*3*1 = 36 (+ BN 4*4 = 16) -> 36 + folded bias 4; dense 144*2+2 = 290
    assert n_params(g) == 36 + 16 + 290 and n_params(f) == 36 + 4 + 290
    assert "BATCH_NORM" not in [n.op for n in f.nodes]


def test_fuse_activations_then_same_output():
    g = fold_batchnorm(_rng_graph(4, "CONV_2D"))
    x = np.random.default_rng(5).normal(size=(1, 6, 5, 3))
    f = fuse_activations(g)
    assert [n.op for n in f.nodes] == ["CONV_2D"] and f.nodes[0].attrs["activation"] == "RELU"
    assert f.outputs == ["out"]
    np.testing.assert_allclose(run_float(f, x), run_float(g, x), atol=1e-12)


def test_fuse_activations_respects_other_consumers():
    g = Graph("branch")
    g.add_tensor(Tensor("x", (1, 2, 2, 1)))
    g.inputs = ["x"]
    for t in ("a", "r", "s"):
        g.add_tensor(Tensor(t, (1, 2, 2, 1)))
    g.add_node(Node("add", "ADD", ["x", "x"], ["a"], {"activation": "NONE"}))
    g.add_node(Node("relu", "RELU", ["a"], ["r"]))
    g.add_node(Node("add2", "ADD", ["r", "a"], ["s"], {"activation": "NONE"}))  # 'a' used twice
    g.outputs = ["s"]
    assert [n.op for n in fuse_activations(g).nodes] == ["ADD", "RELU", "ADD"]


def test_remove_identities():
    g = Graph("ids")
    g.add_tensor(Tensor("x", (1, 2, 2, 3)))
    g.inputs = ["x"]
    g.add_tensor(Tensor("p", (4, 2), "int32", data=np.zeros((4, 2), np.int32)))
    for t, s in (("a", (1, 2, 2, 3)), ("b", (1, 2, 2, 3)), ("c", (1, 12)), ("d", (1, 3, 4)), ("e", (1, 12))):
        g.add_tensor(Tensor(t, s))
    g.add_node(Node("pad0", "PAD", ["x", "p"], ["a"]))
    g.add_node(Node("same", "RESHAPE", ["a"], ["b"], {"new_shape": (1, 2, 2, 3)}))
    g.add_node(Node("r1", "RESHAPE", ["b"], ["c"], {"new_shape": (1, 12)}))
    g.add_node(Node("r2", "RESHAPE", ["c"], ["d"], {"new_shape": (1, 3, 4)}))
    g.add_node(Node("r3", "RESHAPE", ["d"], ["e"], {"new_shape": (1, 12)}))
    g.outputs = ["e"]
    f = remove_identities(g)
    assert [n.op for n in f.nodes] == ["RESHAPE"] and f.nodes[0].inputs == ["x"] and f.outputs == ["e"]
    assert "p" not in f.tensors
    x = np.arange(12.0)
    np.testing.assert_array_equal(run_float(f, x), run_float(g, x))


def test_fold_pad_into_conv_only_when_it_is_same():
    rng = np.random.default_rng(7)

    def graph(pads):
        g = Graph("pad")
        g.add_tensor(Tensor("x", (1, 8, 8, 2)))
        g.inputs = ["x"]
        g.add_tensor(Tensor("p", (4, 2), "int32", data=np.array(pads, np.int32)))
        g.add_tensor(Tensor("w", (3, 3, 3, 2), data=rng.normal(size=(3, 3, 3, 2)).astype(np.float32)))
        g.add_tensor(Tensor("xp", (1, 1, 1, 1)))
        g.add_tensor(Tensor("y", (1, 1, 1, 1)))
        g.add_node(Node("pad", "PAD", ["x", "p"], ["xp"]))
        g.add_node(Node("conv", "CONV_2D", ["xp", "w"], ["y"], {"stride": (2, 2), "padding": "VALID"}))
        g.outputs = ["y"]
        return g.infer_shapes().validate()

    x = rng.normal(size=(1, 8, 8, 2))
    # stride 2, k 3 on 8: SAME out 4, total pad (4-1)*2+3-8 = 1 -> (0, 1): folds
    same = graph([[0, 0], [0, 1], [0, 1], [0, 0]])
    f = fold_pad_into_conv(same)
    assert [n.op for n in f.nodes] == ["CONV_2D"] and f.nodes[0].attrs["padding"] == "SAME"
    np.testing.assert_allclose(run_float(f, x), run_float(same, x), atol=1e-12)
    # PyTorch's symmetric (1, 1) is not SAME here: the PAD stays
    sym = graph([[0, 0], [1, 1], [1, 1], [0, 0]])
    assert [n.op for n in fold_pad_into_conv(sym).nodes] == ["PAD", "CONV_2D"]


def test_batch_norm_no_layer_absorbs_is_lowered_to_mul_add():
    """A BN after an ADD (nothing to fold into) becomes MUL + ADD with the same float function, so the graph
    converts to int8."""
    from tinyopt.graph.passes import lower_unsupported
    from tinyopt.runtime import Interpreter

    rng = np.random.default_rng(2)
    g = Graph("bn", source="bn")
    g.add_tensor(Tensor("x", (1, 3, 3, 4)))
    g.add_tensor(Tensor("y", (1, 3, 3, 4)))
    g.add_tensor(Tensor("z", (1, 3, 3, 4)))
    vals = {"gamma": rng.uniform(0.5, 2, 4), "beta": rng.normal(size=4), "mean": rng.normal(size=4),
            "var": rng.uniform(0.5, 2, 4)}
    for k, v in vals.items():
        g.add_tensor(Tensor(k, (4,), data=v.astype(np.float32)))
    g.add_node(Node("y", "ADD", ["x", "x"], ["y"], {"activation": "NONE"}))
    g.add_node(Node("z", "BATCH_NORM", ["y", "gamma", "beta", "mean", "var"], ["z"], {"epsilon": 1e-3}))
    g.inputs, g.outputs = ["x"], ["z"]
    low = lower_unsupported(g)
    assert [n.op for n in low.nodes] == ["ADD", "MUL", "ADD"]
    x = rng.normal(size=(5, 3, 3, 4)).astype(np.float32)
    want = (2 * x - vals["mean"]) / np.sqrt(vals["var"] + 1e-3) * vals["gamma"] + vals["beta"]  # by hand
    np.testing.assert_allclose(Interpreter(low).run(x)[0], want, rtol=1e-5, atol=1e-5)
