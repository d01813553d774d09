"""TFLite importer: the four MLPerf Tiny models against values read independently (the ``tflite``
package's generated bindings, LiteRT's tensor details), and every kind of bad file."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import tflite

from conftest import KWS_FLOAT, KWS_INT8, RESNET_FLOAT, RESNET_INT8, need
from tinyopt.errors import ModelFormatError, TinyoptError, UnsupportedOpError
from tinyopt.graph import load_model
from tinyopt.graph.ir import iter_param_tensors
from tinyopt.graph.tflite_import import load_tflite, tflite_bytes_to_graph

sys.path.insert(0, str(Path(__file__).parent))
import tflite_mutations as tm

KWS_OPS = ["CONV_2D"] + ["DEPTHWISE_CONV_2D", "CONV_2D"] * 4 + ["AVERAGE_POOL_2D", "RESHAPE",
                                                                "FULLY_CONNECTED",
                                                                  "SOFTMAX"]
RESNET_OPS = (["CONV_2D"] * 3 + ["ADD"] + ["CONV_2D"] * 3 + ["ADD"] + ["CONV_2D"] * 3 + ["ADD"]
              + ["AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"])
# Parameters by hand. DS-CNN KWS: conv 64*10*4*1+64 = 2624; 4 x (depthwise 3*3*64+64 = 640, pointwise
# 64*64+64 = 4160) = 19200; dense 64*12+12 = 780 -> 22604.
# ResNet-8: 16*27+16 = 448; 2 x (16*144+16) = 4640; 32*144+32 = 4640; 32*288+32 = 9248; 32*16+32 = 544;
# 64*288+64 = 18496; 64*576+64 = 36928; 64*32+64 = 2112; 64*10+10 = 650 -> 77706.
MODELS = [(KWS_INT8, KWS_OPS, 22604, (1, 49, 10, 1), (1, 12)),
          (KWS_FLOAT, KWS_OPS, 22604, (1, 49, 10, 1), (1, 12)),
          (RESNET_INT8, RESNET_OPS, 77706, (1, 32, 32, 3), (1, 10)),
          (RESNET_FLOAT, RESNET_OPS, 77706, (1, 32, 32, 3), (1, 10))]
IDS = ["kws-int8", "kws-float", "resnet-int8", "resnet-float"]


def _bindings(path: Path):
    m = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
    return m, m.Subgraphs(0)


@pytest.mark.parametrize(("path", "ops", "params", "in_shape", "out_shape"), MODELS, ids=IDS)
def test_mlperf_model_structure(path, ops, params, in_shape, out_shape):
    g = load_tflite(need(path))
    assert [n.op for n in g.nodes] == ops
    assert g.name == path.stem and g.source == str(path)
    assert g.tensors[g.inputs[0]].shape == in_shape and g.tensors[g.outputs[0]].shape == out_shape
    counted = {t.name: t.size for n in g.nodes for t in iter_param_tensors(g, n)}
    assert sum(counted.values()) == params


@pytest.mark.parametrize("path", [m[0] for m in MODELS], ids=IDS)
def test_tensors_match_the_generated_bindings(path):
    """Every used tensor's shape, dtype, data and quantization equals what the ``tflite`` bindings read."""
    g = load_tflite(need(path))
    m, sg = _bindings(path)
    dtypes = {0: "float32", 2: "int32", 9: "int8"}
    seen = 0
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        name = t.Name().decode()
        if name not in g.tensors:
            continue
        seen += 1
        ours = g.tensors[name]
        assert ours.shape == tuple(t.ShapeAsNumpy().tolist())
        assert ours.dtype == dtypes[t.Type()]
        raw = m.Buffers(t.Buffer()).DataAsNumpy()
        if m.Buffers(t.Buffer()).DataLength():
            expected = np.frombuffer(raw.tobytes(),
                                     np.dtype(ours.dtype).newbyteorder("<")).reshape(ours.shape)
            np.testing.assert_array_equal(ours.data, expected)
        else:
            assert ours.data is None and not ours.constant
        q = t.Quantization()
        if q is not None and q.ScaleLength():
            np.testing.assert_array_equal(ours.quant.scale, q.ScaleAsNumpy())
            np.testing.assert_array_equal(ours.quant.zero_point, q.ZeroPointAsNumpy())
            assert ours.quant.axis == q.QuantizedDimension()
        else:
            assert ours.quant is None
    assert seen == len(g.tensors)


def test_int8_io_quantization_matches_litert():
    from ai_edge_litert.interpreter import Interpreter

    for path in (need(KWS_INT8), need(RESNET_INT8)):
        g = load_tflite(path)
        it = Interpreter(model_path=str(path))
        for ours, theirs in ((g.tensors[g.inputs[0]], it.get_input_details()[0]),
                             (g.tensors[g.outputs[0]], it.get_output_details()[0])):
            scale, zero = theirs["quantization"]
            assert ours.dtype == "int8" and theirs["dtype"] == np.int8
            assert math.isclose(float(ours.quant.scale[0]), scale, rel_tol=1e-7)
            assert int(ours.quant.zero_point[0]) == zero
            assert ours.shape == tuple(theirs["shape"].tolist())


def test_kws_attributes_match_the_options_tables():
    g = load_tflite(need(KWS_INT8))
    _, sg = _bindings(KWS_INT8)
    conv = tflite.Conv2DOptions()
    tab = sg.Operators(0).BuiltinOptions()
    conv.Init(tab.Bytes, tab.Pos)
    first = g.nodes[0]
    assert first.attrs["stride"] == (conv.StrideH(), conv.StrideW()) == (2, 2)
    assert first.attrs["padding"] == ("SAME", "VALID")[conv.Padding()]
    assert first.attrs["activation"] == "RELU" and first.attrs["dilation"] == (1, 1)
    dw = g.nodes[1]
    assert dw.attrs["depth_multiplier"] == 1 and dw.attrs["stride"] == (1, 1)
    pool = g.nodes[9]
    assert pool.attrs == {"filter": (25, 5), "stride": (25, 5), "padding": "VALID", "activation": "NONE"}
    reshape = g.nodes[10]
    # Options are absent; the new shape comes from the constant int32 operand, kept as an input.
    assert reshape.attrs["new_shape"] == (-1, 64)
    assert g.tensors[reshape.inputs[1]].dtype == "int32" and g.tensors[reshape.inputs[1]].constant
    assert g.nodes[11].attrs == {"activation": "NONE", "keep_num_dims": False}
    assert g.nodes[12].attrs == {"beta": 1.0}
    # Per-channel weights: 64 scales along axis 0 (conv) and axis 3 (depthwise).
    assert g.tensors[first.inputs[1]].quant.scale.size == 64 and g.tensors[first.inputs[1]].quant.axis == 0
    assert g.tensors[dw.inputs[1]].quant.axis == 3


def test_load_model_dispatches_tflite_and_bytes_agree():
    g = load_model(need(RESNET_INT8))
    h = tflite_bytes_to_graph(RESNET_INT8.read_bytes(), str(RESNET_INT8))
    assert [n.op for n in g.nodes] == [n.op for n in h.nodes] and list(g.tensors) == list(h.tensors)
    assert [n.op for n in g.nodes][3] == "ADD" and g.nodes[3].attrs == {"activation": "RELU"}


def test_unused_opcodes_are_ignored():
    """The int8 ResNet lists QUANTIZE/DEQUANTIZE operator codes that no operator uses."""
    m, _ = _bindings(need(RESNET_INT8))
    assert m.OperatorCodesLength() == 8
    assert "QUANTIZE" not in {n.op for n in load_tflite(RESNET_INT8).nodes}


# -- bad input ------------------------------------------------------------------------------------
def _one_line(err: TinyoptError, path: str) -> str:
    text = str(err)
    assert "\n" not in text and text.startswith(path) and "Fix:" in text
    return text


def test_missing_file(tmp_path):
    with pytest.raises(ModelFormatError, match="file not found"):
        load_tflite(tmp_path / "absent.tflite")


def test_folder(tmp_path):
    with pytest.raises(ModelFormatError, match="folder"):
        load_tflite(tmp_path)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.tflite"
    p.write_bytes(b"")
    with pytest.raises(ModelFormatError, match="empty") as e:
        load_tflite(p)
    _one_line(e.value, str(p))


def test_truncated_files(tmp_path):
    data = need(KWS_INT8).read_bytes()
    cuts = list(tm.truncations(data, count=12, seed=3))
    assert len(cuts) >= 10
    for _, bad in cuts:
        p = tmp_path / "cut.tflite"
        p.write_bytes(bad)
        with pytest.raises(ModelFormatError) as e:
            load_tflite(p)
        _one_line(e.value, str(p))


def test_random_bytes():
    rng = np.random.default_rng(7)
    for size in (3, 8, 100, 5000):
        with pytest.raises(ModelFormatError, match="too short|identifier"):
            tflite_bytes_to_graph(rng.integers(0, 256, size, dtype=np.uint8).tobytes(), "noise.tflite")


def test_random_bytes_with_valid_identifier():
    rng = np.random.default_rng(8)
    for _ in range(50):
        noise = bytearray(rng.integers(0, 256, int(rng.integers(8, 3000)), dtype=np.uint8).tobytes())
        noise[4:8] = b"TFL3"
        with pytest.raises(TinyoptError):
            tflite_bytes_to_graph(bytes(noise), "noise.tflite")


def test_wrong_file_identifier():
    data = bytearray(need(KWS_INT8).read_bytes())
    data[4:8] = b"ONNX"
    with pytest.raises(ModelFormatError, match="file identifier is b'ONNX'") as e:
        tflite_bytes_to_graph(bytes(data), "model.tflite")
    _one_line(e.value, "model.tflite")


def test_root_offset_outside_the_file():
    data = bytearray(need(KWS_INT8).read_bytes())
    data[0:4] = (len(data) + 100).to_bytes(4, "little")
    with pytest.raises(ModelFormatError, match="outside the"):
        tflite_bytes_to_graph(bytes(data), "model.tflite")


def test_vector_length_past_the_end():
    """A vector whose length runs past the file is refused before anything is allocated."""
    data = bytearray(need(KWS_INT8).read_bytes())
    m = tflite.Model.GetRootAsModel(bytes(data), 0)
    tab = m.Subgraphs(0).Tensors(17)._tab  # the first conv weight: shape vector at slot 0
    start = tab.Vector(tab.Offset(4))
    data[start - 4:start] = (0x7FFFFFFF).to_bytes(4, "little")
    with pytest.raises(ModelFormatError,
                       match="tensor 17 'functional_1/conv2d/Conv2D': the tensor shape "
                             "of 2147483647 elements"):
        tflite_bytes_to_graph(bytes(data), "model.tflite")


@pytest.mark.parametrize("mutation", tm.MUTATIONS, ids=[m.name for m in tm.MUTATIONS])
def test_structural_mutations(mutation):
    model = tm.decode(need(KWS_INT8).read_bytes())
    mutation.edit(model)
    with pytest.raises(mutation.error) as e:
        tflite_bytes_to_graph(tm.encode(model), "kws.tflite")
    assert mutation.fragment in _one_line(e.value, "kws.tflite")


def test_mutation_helper_round_trips_unchanged():
    """decode → encode without edits gives a model that loads identically (the helper is sound)."""
    data = need(RESNET_INT8).read_bytes()
    a, b = tflite_bytes_to_graph(data, "a"), tflite_bytes_to_graph(tm.encode(tm.decode(data)), "a")
    assert [(n.op, n.attrs) for n in a.nodes] == [(n.op, n.attrs) for n in b.nodes]
    assert all(np.array_equal(a.tensors[k].data, b.tensors[k].data) for k in a.tensors
               if a.tensors[k].constant)


def test_unsupported_op_lists_supported_ops():
    model = tm.decode(need(KWS_INT8).read_bytes())
    tm.MUTATIONS[[m.name for m in tm.MUTATIONS].index("unsupported operator")].edit(model)
    with pytest.raises(UnsupportedOpError, match="supported operators are .*CONV_2D, .*DEPTHWISE_CONV_2D"):
        tflite_bytes_to_graph(tm.encode(model), "kws.tflite")


def test_opaque_import_keeps_unknown_operators_for_analysis():
    """With opaque=True a custom op (and a builtin without a record) stays in the graph with the shapes the
    file stores; everything else is counted as usual and the runtime refuses the unknown op by name."""
    from tinyopt.analysis.cost import layer_costs
    from tinyopt.runtime import Interpreter

    data = need(KWS_INT8).read_bytes()
    model = tm.decode(data)
    model["opcodes"].append({"deprecated": 32, "builtin": 32, "version": 1, "custom": "MyOp"})
    model["subgraphs"][0]["operators"][4]["opcode"] = len(model["opcodes"]) - 1
    g = tflite_bytes_to_graph(tm.encode(model), "kws.tflite", opaque=True)
    ref = tflite_bytes_to_graph(data, "kws.tflite")
    assert g.nodes[4].op == "CUSTOM 'MyOp'"
    assert [g.tensors[o].shape for o in g.nodes[4].outputs] == [ref.tensors[o].shape
                                                                for o in ref.nodes[4].outputs]
    rows, ref_rows = layer_costs(g), layer_costs(ref)
    assert rows[4].macs == 0 and ref_rows[4].macs > 0  # the unknown op counts nothing...
    assert sum(r.macs for r in rows) == sum(r.macs for r in ref_rows) - ref_rows[4].macs  # ...the rest all
    with pytest.raises(UnsupportedOpError, match="CUSTOM 'MyOp' is not supported"):
        Interpreter(g)


def test_custom_op_is_named():
    model = tm.decode(need(KWS_INT8).read_bytes())
    model["opcodes"].append({"deprecated": 32, "builtin": 32, "version": 1, "custom": "MyOp"})
    model["subgraphs"][0]["operators"][4]["opcode"] = len(model["opcodes"]) - 1
    with pytest.raises(UnsupportedOpError, match="operator 4: operator CUSTOM 'MyOp' is not supported"):
        tflite_bytes_to_graph(tm.encode(model), "kws.tflite")


def test_float_model_mutations():
    """Float models have no int8 tensors; the shape and buffer faults still apply."""
    model = tm.decode(need(RESNET_FLOAT).read_bytes())
    sg = model["subgraphs"][0]
    sg["tensors"][8]["shape"] = [16, 3, 3, 4]  # conv weight: 16*3*3*4*4 bytes != its 1728-byte buffer
    with pytest.raises(ModelFormatError, match="tensor 8 'model/conv2d/Conv2D': buffer 9 holds 1728 bytes"):
        tflite_bytes_to_graph(tm.encode(model), "resnet.tflite")


def test_byte_corruption_never_escapes_as_a_raw_exception():
    """Random flips may hit weight bytes (still a valid model) or structure (a TinyoptError): nothing else."""
    models = [need(KWS_INT8).read_bytes(), need(RESNET_INT8).read_bytes()]
    outcomes = {"loaded": 0, "rejected": 0}
    for _, bad in tm.corpus(models, 100, seed=11):
        try:
            tflite_bytes_to_graph(bad, "fuzz.tflite")
            outcomes["loaded"] += 1
        except TinyoptError:
            outcomes["rejected"] += 1
    assert outcomes["rejected"] >= 40 and sum(outcomes.values()) == 100


def test_reshape_to_a_scalar_is_refused():
    """shapes.py has no scalar rule; the importer says so instead of failing inside shape inference."""
    from tinyopt.export.tflite import graph_to_tflite_bytes, single_op_model
    from tinyopt.graph.ir import Tensor

    g = single_op_model("RESHAPE", [Tensor("x", (1, 1, 1, 1))], Tensor("y", ()), {"new_shape": (1, 1)})
    model = tm.decode(graph_to_tflite_bytes(g))
    model["subgraphs"][0]["operators"][0]["options"]["fields"]["NewShape"] = np.zeros(0, np.int32)
    model["subgraphs"][0]["tensors"][1]["shape"] = []
    with pytest.raises(UnsupportedOpError, match="RESHAPE to a scalar"):
        tflite_bytes_to_graph(tm.encode(model), "r.tflite")


@pytest.mark.parametrize(("tensor", "dtype", "fragment"), [
    (17, tm.TYPE_FLOAT32, "int8 input with float32 weights"),     # conv weight float under int8 input
    (3, tm.TYPE_INT8, "and int8 bias"),                          # conv bias int8 instead of int32
    (34, tm.TYPE_INT32, "mixes dtypes"),                         # softmax output int32
])
def test_dtype_combinations_kernels_reject(tensor, dtype, fragment):
    model = tm.decode(need(KWS_INT8).read_bytes())
    t = model["subgraphs"][0]["tensors"][tensor]
    itemsize = {tm.TYPE_FLOAT32: 4, tm.TYPE_INT32: 4, tm.TYPE_INT8: 1}
    if t["buffer"] and model["buffers"][t["buffer"]]:  # keep shape x dtype = buffer bytes
        n = int(np.prod(t["shape"]))
        model["buffers"][t["buffer"]] = bytes(n * itemsize[dtype])
    t["type"] = dtype
    with pytest.raises(ModelFormatError, match=fragment):
        tflite_bytes_to_graph(tm.encode(model), "kws.tflite")


def test_random_field_edits_never_escape_as_raw_exceptions():
    """Well-formed flatbuffers with 1-3 wrong fields reach the semantic checks: load or TinyoptError."""
    outcomes = {"loaded": 0, "rejected": 0}
    for _, bad in tm.random_edits(need(KWS_INT8).read_bytes(), 40, seed=5, edits=2):
        try:
            tflite_bytes_to_graph(bad, "fuzz.tflite")
            outcomes["loaded"] += 1
        except TinyoptError:
            outcomes["rejected"] += 1
    assert outcomes["rejected"] >= 20


def test_external_buffer_data_is_read_and_bounds_checked():
    model = tm.decode(need(KWS_INT8).read_bytes())
    weight = model["subgraphs"][0]["tensors"][17]  # first conv weight, 2560 bytes
    data = tm.externalize(model, weight["buffer"])
    g = tflite_bytes_to_graph(data, "ext.tflite")
    np.testing.assert_array_equal(g.tensors["functional_1/conv2d/Conv2D"].data,
                                  load_tflite(KWS_INT8).tensors["functional_1/conv2d/Conv2D"].data)
    with pytest.raises(ModelFormatError, match="external data .* lies outside the"):
        tflite_bytes_to_graph(data[:-100], "ext.tflite")


def test_duplicate_empty_and_undecodable_names_become_unique():
    model = tm.decode(need(KWS_INT8).read_bytes())
    tensors = model["subgraphs"][0]["tensors"]
    tensors[23]["name"] = tensors[22]["name"]
    tensors[24]["name"] = b""
    tensors[25]["name"] = b"bad\xff\xfename"
    g = tflite_bytes_to_graph(tm.encode(model), "names.tflite")
    names = [g.nodes[i].outputs[0] for i in range(4)]
    assert names[1] == names[0] + "_1" and names[2] == "tensor_24" and names[3] == "bad\ufffd\ufffdname"
    assert len(set(g.tensors)) == len(g.tensors) == 35


def test_tensor_written_by_two_operators():
    model = tm.decode(need(KWS_INT8).read_bytes())
    ops = model["subgraphs"][0]["operators"]
    ops[2]["outputs"] = list(ops[1]["outputs"])  # op 2 also writes op 1's output (and reads it: a cycle)
    ops[2]["inputs"][0] = ops[0]["outputs"][0]
    with pytest.raises(ModelFormatError, match="written more than once"):
        tflite_bytes_to_graph(tm.encode(model), "kws.tflite")


def test_graph_input_produced_by_an_operator():
    model = tm.decode(need(KWS_INT8).read_bytes())
    sg = model["subgraphs"][0]
    sg["inputs"] = [0, sg["operators"][0]["outputs"][0]]
    with pytest.raises(ModelFormatError, match="written more than once"):
        tflite_bytes_to_graph(tm.encode(model), "kws.tflite")


def test_nan_weights_are_refused():
    model = tm.decode(need(RESNET_FLOAT).read_bytes())
    buf = bytearray(model["buffers"][9])  # model/conv2d/Conv2D, float32
    buf[4:8] = np.array([np.nan], "<f4").tobytes()
    model["buffers"][9] = bytes(buf)
    with pytest.raises(ModelFormatError, match="tensor 8 'model/conv2d/Conv2D': holds 1 NaN or infinite"):
        tflite_bytes_to_graph(tm.encode(model), "resnet.tflite")


def test_written_corpus_through_load_model(tmp_path):
    """The hardening corpus on disk: each file loads or gives a one-line error that starts with its path."""
    paths = tm.write_corpus(tmp_path / "corpus", [need(KWS_INT8).read_bytes()], size=40, seed=2)
    assert len(paths) == 40 and len({p.name for p in paths}) == 40
    rejected = 0
    for p in paths:
        try:
            load_model(p)
        except TinyoptError as err:
            _one_line(err, str(p))
            rejected += 1
    assert rejected >= 30


def test_thousands_of_operators_in_reverse_order_are_ordered():
    """1,500 RELUs stored last-to-first: reordered to a valid chain (in linear time: Kahn's algorithm)."""
    from tinyopt.export.tflite import _Writer
    from tinyopt.graph.ir import Graph, Node, Tensor

    n = 1500
    g = Graph("chain", source="chain.tflite")
    g.add_tensor(Tensor("t0", (1, 4)))
    for i in range(n):
        g.add_tensor(Tensor(f"t{i + 1}", (1, 4)))
        g.add_node(Node(f"t{i + 1}", "RELU", [f"t{i}"], [f"t{i + 1}"]))
    g.inputs, g.outputs = ["t0"], [f"t{n}"]
    g.nodes.reverse()
    h = tflite_bytes_to_graph(_Writer(g).build(), "chain.tflite")
    assert [x.name for x in h.nodes] == [f"t{i + 1}" for i in range(n)]


def test_many_duplicate_names_are_numbered_in_order():
    model = tm.decode(need(KWS_INT8).read_bytes())
    for t in model["subgraphs"][0]["tensors"]:
        t["name"] = b"same"
    g = tflite_bytes_to_graph(tm.encode(model), "same.tflite")
    assert g.inputs == ["same"] and sorted(g.tensors) == sorted(["same"]
                                                                + [f"same_{k}" for k in range(1, 35)])


def test_a_shared_buffer_is_not_copied_without_bound():
    """300 constants sharing one 256 KB buffer: values all correct, copies bounded by the file size."""
    from tinyopt.export.tflite import graph_to_tflite_bytes, single_op_model
    from tinyopt.graph.ir import Tensor

    values = np.arange(65536, dtype=np.float32).reshape(1, 65536)
    g = single_op_model("CONCATENATION", [Tensor("x", (1, 65536)), Tensor("c", (1, 65536), data=values)],
                        Tensor("y", ()), {"axis": 0, "activation": "NONE"})
    model = tm.decode(graph_to_tflite_bytes(g))
    sg = model["subgraphs"][0]
    const = next(i for i, t in enumerate(sg["tensors"]) if t["name"] == b"c")
    for k in range(300):
        sg["tensors"].append(dict(sg["tensors"][const], name=f"c{k}".encode()))
        sg["operators"][0]["inputs"].append(len(sg["tensors"]) - 1)
    out = next(i for i, t in enumerate(sg["tensors"]) if t["name"] == b"y")
    sg["tensors"][out]["shape"] = [302, 65536]
    data = tm.encode(model)
    h = tflite_bytes_to_graph(data, "shared.tflite")
    consts = [t for t in h.tensors.values() if t.constant]
    assert len(consts) == 301 and all(np.array_equal(t.data, values) for t in consts)
    copied = sum(t.data.nbytes for t in consts if t.data.flags.owndata)
    assert copied <= 2 * len(data) + (16 << 20) < 301 * values.nbytes
