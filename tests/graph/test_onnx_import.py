"""ONNX importer: zoo models exported by torch.onnx and hand-built graphs compute what ONNX Runtime
computes; external data is read only from inside the model's folder; bad files fail in one line."""

import os
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from test_passes import n_params, run_float

from tinyopt import zoo
from tinyopt.errors import ModelFormatError, UnsupportedOpError
from tinyopt.graph import load_model
from tinyopt.graph.onnx_import import load_onnx
from tinyopt.graph.passes import fold_batchnorm
from tinyopt.graph.torch_import import from_torch

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def to_nhwc(a: np.ndarray) -> np.ndarray:
    if a.ndim == 4:
        return np.ascontiguousarray(a.transpose(0, 2, 3, 1))
    if a.ndim == 3:
        return np.ascontiguousarray(a.transpose(0, 2, 1)[:, None])
    return a


def ort_run(path, x: np.ndarray) -> np.ndarray:
    """ONNX Runtime, one row at a time (exports have a fixed batch of 1)."""
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return np.concatenate([s.run(None, {name: x[i:i + 1].astype(np.float32)})[0] for i in range(len(x))])


def assert_matches_ort(path, x: np.ndarray, nhwc_input=False, nhwc_output=False, atol=1e-4):
    """load_onnx(path) on x equals ONNX Runtime on x: the runtime on the batch, the float64 reference on row
    0."""
    from tinyopt.runtime import Interpreter

    g = load_onnx(path)
    want = ort_run(path, x)
    if want.ndim == 4 and not nhwc_output:
        want = want.transpose(0, 2, 3, 1)
    xg = x if nhwc_input else to_nhwc(x)
    got = Interpreter(g).run(xg.astype(np.float32))[0]
    np.testing.assert_allclose(got, want, atol=atol, rtol=0)
    np.testing.assert_allclose(run_float(g, xg[:1])[0], want[0], atol=atol, rtol=0)
    return g


def export(m, shape, path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m.eval(), torch.zeros(1, *shape), str(path), dynamo=False, **kw)
    return path


SMALL = {"mobilenet_v1": {"input_size": 32}}


# mobilenet: torch door
@pytest.mark.parametrize("name", ["digits_cnn", "lenet5", "cnn1d", "dscnn", "resnet8", "mlp"])
def test_zoo_exports_match_onnxruntime_and_the_torch_door(tmp_path, name):
    torch.manual_seed(0)
    m = zoo.build(name, **SMALL.get(name, {})).eval()
    for mod in m.modules():  # non-trivial BN statistics
        if isinstance(mod, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 1.5)
    x = np.random.default_rng(0).normal(size=(2, *m.input_shape)).astype(np.float32)
    # BN kept (TrainingMode.PRESERVE on an eval model): same graph params as the PyTorch door
    kept = assert_matches_ort(export(m, m.input_shape, tmp_path / "kept.onnx",
                                     training=torch.onnx.TrainingMode.PRESERVE), x)
    assert n_params(kept) == n_params(from_torch(m, m.input_shape, fold_bn=False))
    # BN fused by the exporter (its default) and by the PyTorch door: the same numbers through both doors
    fused = assert_matches_ort(export(m, m.input_shape, tmp_path / "fused.onnx"), x)
    via_torch = from_torch(m, m.input_shape)
    assert n_params(fused) == n_params(via_torch) == n_params(fold_batchnorm(kept))
    assert "BATCH_NORM" not in {n.op for n in fused.nodes}
    with torch.no_grad():
        want = m(torch.from_numpy(x)).numpy()
    from tinyopt.runtime import Interpreter

    np.testing.assert_allclose(Interpreter(fused).run(to_nhwc(x))[0], want, atol=1e-4, rtol=0)


def test_load_model_dispatches_onnx(tmp_path):
    torch.manual_seed(0)
    path = export(zoo.build("digits_cnn"), (1, 8, 8), tmp_path / "d.onnx")
    g = load_model(path)
    assert g.source == str(path) and g.tensors[g.inputs[0]].shape == (1, 8, 8, 1)


# -- hand-built graphs ----------------------------------------------------------------------------

def save(nodes, inits, in_shape, out_shape, path, opset=17, in_name="x"):
    graph = helper.make_graph(nodes, "hand",
                              [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, in_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
                              [numpy_helper.from_array(np.asarray(v, np.float32)
                                                       if np.asarray(v).dtype.kind == "f"
else np.asarray(v), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.save(model, str(path))
    return path


def test_gemm_matmul_add_clip_softmax(tmp_path):
    rng = np.random.default_rng(1)
    inits = {"w1": rng.normal(size=(6, 5)), "c1": rng.normal(size=(5,)), "w2": rng.normal(size=(5, 4)),
             "b2": rng.normal(size=(4,)), "lo": np.array(0.0, np.float32), "hi": np.array(6.0, np.float32)}
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "c1"], ["a"], alpha=0.5, beta=2.0),  # transB=0: w1 is [I, O]
        helper.make_node("Clip", ["a", "lo", "hi"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["m"]),
        helper.make_node("Add", ["m", "b2"], ["z"]),
        helper.make_node("Softmax", ["z"], ["y"], axis=-1),
    ]
    g = assert_matches_ort(save(nodes, inits, [1, 6], [1, 4], tmp_path / "m.onnx"),
                           rng.normal(size=(3, 6)) * 4)
    assert [n.op for n in g.nodes] == ["FULLY_CONNECTED", "RELU6", "FULLY_CONNECTED", "SOFTMAX"]
    fc2 = g.nodes[2]
    # Add -> bias
    np.testing.assert_array_equal(g.tensors[fc2.inputs[2]].data, inits["b2"].astype(np.float32))
    np.testing.assert_allclose(g.tensors[g.nodes[0].inputs[1]].data, 0.5 * inits["w1"].T, rtol=1e-6)


def test_nhwc_input_transpose_pad_same_upper_reduce_mean_squeeze(tmp_path):
    rng = np.random.default_rng(2)
    inits = {"w": rng.normal(size=(4, 3, 3, 3)), "dw": rng.normal(size=(4, 1, 3, 3)),
             "pads": np.array([0, 0, 1, 2, 0, 0, 1, 0], np.int64), "axes": np.array([2, 3], np.int64),
             "sq": np.array([2, 3], np.int64), "fc": rng.normal(size=(4, 4)),
             "half": np.array(0.5, np.float32), "shift": rng.normal(size=(1, 4, 1, 1))}
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]),  # NHWC input, absorbed
        helper.make_node("Pad", ["t", "pads"], ["p"], mode="constant"),
        helper.make_node("Conv", ["p", "w"], ["c"], strides=[2, 2], auto_pad="SAME_UPPER"),
        helper.make_node("Add", ["c", "shift"], ["cs"]),  # per-channel constant, NCHW-broadcast
        helper.make_node("Conv", ["cs", "dw"], ["d"], group=4, pads=[1, 1, 1, 1]),
        helper.make_node("Mul", ["d", "half"], ["h"]),
        helper.make_node("Sigmoid", ["h"], ["s"]),
        helper.make_node("ReduceMean", ["s", "axes"], ["r"], keepdims=1),
        helper.make_node("Squeeze", ["r", "sq"], ["q"]),
        helper.make_node("Gemm", ["q", "fc"], ["y"], transB=1),
    ]
    path = save(nodes, inits, [1, 9, 7, 3], [1, 4], tmp_path / "n.onnx", opset=18)
    g = assert_matches_ort(path, rng.normal(size=(2, 9, 7, 3)), nhwc_input=True)
    assert g.tensors[g.inputs[0]].shape == (1, 9, 7, 3)
    assert "DEPTHWISE_CONV_2D" in {n.op for n in g.nodes}


def test_pools_concat_global_pool_and_unfusable_add(tmp_path):
    rng = np.random.default_rng(7)
    inits = {"w": rng.normal(size=(3, 2, 3)), "fc": rng.normal(size=(6, 4)), "c": rng.normal(size=(1, 4)),
             "m": rng.normal(size=(4, 4)), "b": rng.normal(size=(4,)), "ax": np.array([2], np.int64)}
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c1"], pads=[1, 1]),  # 1-D conv: (N, C, L) -> [1, 1, L, C]
        helper.make_node("MaxPool", ["c1"], ["p1"], kernel_shape=[2], strides=[2], ceil_mode=1),
        helper.make_node("AveragePool", ["c1"], ["p2"], kernel_shape=[3], strides=[2], pads=[1, 1],
                         count_include_pad=1),
        helper.make_node("Concat", ["p1", "p2"], ["cat"], axis=1),
        helper.make_node("Dropout", ["cat"], ["dr"]),
        helper.make_node("Unsqueeze", ["dr", "ax"], ["u"]),  # (N, 6, L) -> (N, 6, 1, L)
        helper.make_node("GlobalAveragePool", ["u"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Identity", ["f"], ["i"]),
        helper.make_node("Gemm", ["i", "fc", "c"], ["h"]),  # bias of shape (1, O)
        helper.make_node("MatMul", ["h", "m"], ["mm"]),
        helper.make_node("Add", ["mm", "b"], ["a"]),  # mm is read twice: the add cannot become the bias
        helper.make_node("Add", ["a", "mm"], ["y"]),
    ]
    path = save(nodes, inits, [1, 2, 9], [1, 4], tmp_path / "p.onnx")
    g = assert_matches_ort(path, rng.normal(size=(2, 2, 9)))
    assert "MEAN" in {n.op for n in g.nodes}
    nodes[5] = helper.make_node("Identity", ["dr"], ["u"])
    nodes[6] = helper.make_node("ReduceMean", ["u", "ax"], ["g"], keepdims=1)
    path = save(nodes, inits, [1, 2, 9], [1, 4], tmp_path / "p2.onnx", opset=18)
    g = assert_matches_ort(path, rng.normal(size=(2, 2, 9)))
    assert [n.op for n in g.nodes].count("ADD") == 2
    assert g.tensors[g.inputs[0]].shape == (1, 1, 9, 2)


def test_exporter_shape_arithmetic_is_folded(tmp_path):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(2, 3, 3, stride=2)
            self.pad = torch.nn.ZeroPad2d((0, 1, 0, 1))
            self.fc = torch.nn.Linear(3 * 4 * 4, 5)

        def forward(self, x):
            y = torch.relu(self.conv(self.pad(x)))
            return self.fc(y.view(y.size(0), -1))  # Shape -> Gather -> Unsqueeze -> Concat -> Reshape

    torch.manual_seed(0)
    path = export(Net(), (2, 8, 8), tmp_path / "v.onnx")
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"Shape", "Gather"} <= ops or "Reshape" in ops
    g = assert_matches_ort(path, np.random.default_rng(3).normal(size=(2, 2, 8, 8)))
    assert [n.op for n in g.nodes] == ["CONV_2D", "RELU", "RESHAPE", "FULLY_CONNECTED"]  # PAD became SAME


# -- external data ----------------------------------------------------------------------------------

def external_model(folder, name="m.onnx", location="w.bin"):
    """A one-Gemm model whose weight lives in ``folder/location``; returns (path, weight)."""
    rng = np.random.default_rng(4)
    w = rng.normal(size=(3, 4)).astype(np.float32)
    path = save([helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)], {"w": w}, [1, 4], [1, 3],
                folder / name)
    model = onnx.load(str(path))
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=location, size_threshold=0)
    return path, w


def rewrite_external(path, **entries):
    model = onnx.load(str(path), load_external_data=False)
    t = model.graph.initializer[0]
    del t.external_data[:]
    for k, v in entries.items():
        t.external_data.add(key=k, value=str(v))
    onnx.save(model, str(path))
    return path


def test_external_data_inside_the_folder_loads(tmp_path):
    path, w = external_model(tmp_path)
    assert (tmp_path / "w.bin").stat().st_size == w.nbytes
    g = assert_matches_ort(path, np.random.default_rng(5).normal(size=(2, 4)))
    np.testing.assert_array_equal(g.tensors[g.nodes[0].inputs[1]].data, w)


@pytest.mark.parametrize("entries,match", [
    ({"location": "../w.bin"}, "not a relative path inside"),
    ({"location": "sub/../../w.bin"}, "not a relative path inside"),
    ({"location": "/etc/passwd"}, "not a relative path inside"),
    ({"location": "w.bin", "basepath": "/tmp"}, "unknown external-data key 'basepath'"),
    ({"location": "w.bin", "offset": 44, "length": 8}, "offset 44 \\+ length 8 is beyond the 48-byte file"),
    ({"location": "w.bin", "length": 40}, "holds 40 bytes, the tensor needs 48"),
    ({"location": "w.bin", "offset": "x"}, "not integers"),
    ({"location": "missing.bin"}, "cannot open external data"),
])
def test_external_data_refused(tmp_path, entries, match):
    path, _ = external_model(tmp_path)
    rewrite_external(path, **entries)
    with pytest.raises(ModelFormatError, match=match) as e:
        load_onnx(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_external_data_symlink_and_hard_link_refused(tmp_path):
    path, _ = external_model(tmp_path)
    outside = tmp_path.parent / f"{tmp_path.name}_outside.bin"
    os.replace(tmp_path / "w.bin", outside)
    (tmp_path / "w.bin").symlink_to(outside)
    with pytest.raises(ModelFormatError, match="symbolic link"):
        load_onnx(path)
    (tmp_path / "w.bin").unlink()
    os.replace(outside, tmp_path / "w.bin")
    (tmp_path / "inside.bin").symlink_to(tmp_path / "w.bin")  # a link even to a file inside is refused
    rewrite_external(path, location="inside.bin")
    with pytest.raises(ModelFormatError, match="symbolic link"):
        load_onnx(path)
    os.link(tmp_path / "w.bin", tmp_path / "twin.bin")
    rewrite_external(path, location="w.bin")
    with pytest.raises(ModelFormatError, match="has 2 hard links"):
        load_onnx(path)


# -- bad files --------------------------------------------------------------------------------------

def test_random_bytes_and_truncated_files(tmp_path):
    bad = tmp_path / "noise.onnx"
    bad.write_bytes(np.random.default_rng(6).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ModelFormatError) as e:
        load_model(bad)
    assert str(bad) in str(e.value) and "\n" not in str(e.value) and "Fix:" in str(e.value)
    torch.manual_seed(0)
    good = export(zoo.build("digits_cnn"), (1, 8, 8), tmp_path / "good.onnx").read_bytes()
    for cut in (10, len(good) // 3, len(good) // 2, len(good) - 7):
        t = tmp_path / f"cut{cut}.onnx"
        t.write_bytes(good[:cut])
        with pytest.raises(ModelFormatError) as e:
            load_onnx(t)
        assert "\n" not in str(e.value)


def test_unsupported_op_is_named(tmp_path):
    path = save([helper.make_node("Relu", ["x"], ["r"], name="first"),
                 helper.make_node("Hardmax", ["r"], ["y"], name="hardmax", axis=-1)], {}, [1, 4], [1, 4],
                tmp_path / "u.onnx")
    with pytest.raises(UnsupportedOpError) as e:
        load_onnx(path)
    msg = str(e.value)
    assert "node 1 'hardmax' (Hardmax)" in msg and "ONNX operator Hardmax is not supported" in msg
    assert "Conv, " in msg and "Gemm, " in msg and "MatMul, " in msg


def test_opaque_keeps_unknown_ops_with_inferred_shapes(tmp_path):
    """For analysis: an unknown op stays as an opaque node (ONNX's inferred shape); the rest is counted."""
    from tinyopt.analysis.cost import layer_costs

    rng = np.random.default_rng(3)
    inits = {"w": rng.normal(size=(4, 6)), "w2": rng.normal(size=(6, 3))}
    path = save([helper.make_node("MatMul", ["x", "w"], ["a"]),
                 helper.make_node("Hardmax", ["a"], ["h"], axis=-1),
                 helper.make_node("MatMul", ["h", "w2"], ["y"])], inits, [1, 4], [1, 3], tmp_path / "o.onnx")
    g = load_onnx(path, opaque=True)
    assert [n.op for n in g.nodes] == ["FULLY_CONNECTED", "onnx:Hardmax", "FULLY_CONNECTED"]
    assert g.tensors[g.nodes[1].outputs[0]].shape == (1, 6)
    assert [r.macs for r in layer_costs(g)] == [24, 0, 18]


def test_if_with_a_constant_condition_is_its_branch(tmp_path):
    """An If whose condition folds (Shape -> Gather -> Equal) is replaced by the branch it takes."""
    rng = np.random.default_rng(4)
    then_g = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "then", [],
                               [helper.make_tensor_value_info("t", TensorProto.FLOAT, [1, 5])])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [],
                               [helper.make_tensor_value_info("e", TensorProto.FLOAT, [1, 5])])
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "one"], ["d"], axis=0),
             helper.make_node("Equal", ["d", "five"], ["cond"]),
             helper.make_node("If", ["cond"], ["y"], then_branch=then_g, else_branch=else_g)]
    path = save(nodes, {"one": np.array(1, np.int64), "five": np.array(5, np.int64)}, [1, 5], [1, 5],
                tmp_path / "if.onnx")
    g = assert_matches_ort(path, rng.normal(size=(3, 5)))
    assert [n.op for n in g.nodes] == ["RELU"]


def test_several_inputs(tmp_path):
    """A model with two inputs (e.g. a recurrent state beside the features) becomes a two-input graph."""
    from tinyopt.runtime import Interpreter

    rng = np.random.default_rng(5)
    graph = helper.make_graph([helper.make_node("Add", ["x", "h"], ["y"])], "two",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]),
                               helper.make_tensor_value_info("h", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    path = tmp_path / "two.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    g = load_onnx(path)
    assert len(g.inputs) == 2
    x, h = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(3, 4)).astype(np.float32)
    np.testing.assert_allclose(Interpreter(g).run([x, h])[0], x + h, rtol=1e-6)


@pytest.mark.parametrize("node,match", [
    (helper.make_node("Clip", ["x", "lo", "hi"], ["y"]), r"Clip\(-1.0, 1.0\)"),
    (helper.make_node("Softmax", ["x"], ["y"], axis=0), "softmax over axis 0"),
])
def test_unsupported_options(tmp_path, node, match):
    inits = {"lo": np.array(-1.0, np.float32), "hi": np.array(1.0, np.float32)}
    path = save([node], inits, [1, 4], [1, 4], tmp_path / "o.onnx")
    with pytest.raises(UnsupportedOpError, match=match):
        load_onnx(path)


def test_dynamic_spatial_size_refused(tmp_path):
    path = save([helper.make_node("Relu", ["x"], ["y"])], {}, ["N", 3, "H", 4], ["N", 3, "H", 4],
                tmp_path / "d.onnx")
    with pytest.raises(ModelFormatError, match="dynamic dimension 2"):
        load_onnx(path)


def test_byte_flips_give_a_graph_or_one_line_error(tmp_path):
    """A deterministic mutation corpus: every outcome is a valid Graph or a TinyoptError, never a crash."""
    from tinyopt.errors import TinyoptError

    torch.manual_seed(0)
    good = export(zoo.build("digits_cnn"), (1, 8, 8), tmp_path / "good.onnx").read_bytes()
    rng = np.random.default_rng(8)
    outcomes = {"graph": 0, "error": 0}
    for i in range(120):
        b = bytearray(good)
        for _ in range(int(rng.integers(1, 4))):
            b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
        p = tmp_path / f"m{i}.onnx"
        p.write_bytes(bytes(b))
        try:
            load_onnx(p).validate()
            outcomes["graph"] += 1
        except TinyoptError as e:
            assert "\n" not in str(e)
            outcomes["error"] += 1
    assert outcomes["graph"] and outcomes["error"]  # both kinds occur in this corpus


def test_huge_folded_constant_refused(tmp_path):
    # ConstantOfShape([2**40]) would allocate terabytes: refused before allocating
    nodes = [helper.make_node("Constant", [], ["s"],
                              value=numpy_helper.from_array(np.array([2**40], np.int64))),
             helper.make_node("ConstantOfShape", ["s"], ["z"]),
             helper.make_node("Relu", ["x"], ["y"])]
    path = save(nodes, {}, [1, 4], [1, 4], tmp_path / "big.onnx")
    with pytest.raises(ModelFormatError, match="exceeds the"):
        load_onnx(path)


def test_constant_first_operand(tmp_path):
    """Mul(c, x) is the same layer as Mul(x, c); c - x keeps the constant first."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    from tinyopt.graph.onnx_import import load_onnx

    def model(op):
        c = helper.make_tensor("c", TensorProto.FLOAT, [4], np.arange(1, 5, dtype=np.float32))
        g = helper.make_graph([helper.make_node(op, ["c", "x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [c])
        path = tmp_path / f"{op}.onnx"
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
        return path

    g = load_onnx(model("Mul"))
    assert [n.op for n in g.nodes] == ["MUL"]
    g = load_onnx(model("Sub"))
    assert [n.op for n in g.nodes] == ["SUB"] and g.tensors[g.nodes[0].inputs[0]].constant
    from tinyopt.runtime import Interpreter

    x = np.array([[1.0, 5.0, -2.0, 0.5]], np.float32)
    np.testing.assert_allclose(Interpreter(g).run(x)[0], np.arange(1, 5) - x)


def test_dynamic_input_dims_take_the_given_shape(tmp_path):
    """A file that leaves H and W dynamic (OCR, audio models): refused with the fix, then loaded at the size
    given in the model's own layout; a size the file fixes differently is refused."""
    from tinyopt.errors import ConfigError, ModelFormatError

    rng = np.random.default_rng(6)
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "dyn",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3, "h", "w"])])
    path = tmp_path / "dyn.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(ModelFormatError, match=r"dynamic dimension 2 \('h'\).*--input-shape.*\(3,\?,\?\)"):
        load_onnx(path)
    g = load_onnx(path, input_shapes=[(3, 8, 5)])
    assert g.tensors[g.inputs[0]].shape == (1, 8, 5, 3)  # NHWC inside, NCHW given
    from tinyopt.runtime import Interpreter

    x = rng.normal(size=(2, 8, 5, 3)).astype(np.float32)
    np.testing.assert_array_equal(Interpreter(g).run(x)[0], np.maximum(x, 0))
    with pytest.raises(ConfigError, match="fixes dimension 1 at 3"):
        load_onnx(path, input_shapes=[(4, 8, 5)])
