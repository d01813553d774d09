"""Resource variables (a streaming model's state): written as TFLite writes them (CALL_ONCE of an init
subgraph, VAR_HANDLE / READ_VARIABLE / ASSIGN_VARIABLE), read back into ``Graph.variables``, and run by
the numpy runtime invoke after invoke exactly as TFLM runs the file."""

from __future__ import annotations

import numpy as np
import pytest

from graph._streaming import frames, streaming_graph
from tinyopt.errors import ModelFormatError
from tinyopt.export.tflite import graph_to_tflite_bytes
from tinyopt.graph.tflite_import import tflite_bytes_to_graph
from tinyopt.runtime import Interpreter


def test_written_file_reads_back_with_its_variable():
    g = tflite_bytes_to_graph(graph_to_tflite_bytes(streaming_graph()))
    assert [(v.name, v.init.tolist())
            for v in g.variables] == [("stream/state", np.full((1, 2, 4), 7).tolist())]
    state = g.tensors[g.variables[0].state]
    assert state.variable and state.shape == (1, 2, 4) and g.inputs == ["x"] and len(g.outputs) == 1
    assert [n.op for n in g.nodes] == ["CONCATENATION", "STRIDED_SLICE", "RESHAPE", "FULLY_CONNECTED"]


def test_runtime_carries_the_state_as_tflm_does():
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    data = graph_to_tflite_bytes(streaming_graph())
    xs = frames()
    tflm = runtime.Interpreter.from_bytes(data, arena_size=20000)
    ref = []
    for x in xs:
        tflm.set_input(x[None], 0)
        tflm.invoke()
        ref.append(tflm.get_output(0).copy())
    ref = np.concatenate(ref)
    it = Interpreter(tflite_bytes_to_graph(data))
    ours = np.concatenate([it.run(xs[:10])[0], it.run(xs[10:])[0]])  # the state survives between runs
    np.testing.assert_array_equal(ours, ref)
    # the state matters: each frame alone (the state reset before it) gives other outputs
    alone = []
    for x in xs:
        it.reset()
        alone.append(it.run(x[None])[0])
    assert not np.array_equal(np.concatenate(alone), ref)


def test_an_inconsistent_variable_is_refused_before_writing():
    g = streaming_graph()
    g.variables[0].init = np.zeros((1, 3, 4), np.int8)  # not the state's size
    with pytest.raises(ModelFormatError, match="variable 'stream/state' is inconsistent"):
        graph_to_tflite_bytes(g)


def test_c_library_keeps_the_state_as_tflm_does(tmp_path):
    """The library copies each state into the arena before the first node and its update out after the last,
    from the initial value on: invoked frame after frame in one process it equals the runtime (= TFLM)."""
    import shutil

    if shutil.which("cc") is None:
        pytest.skip("no host C compiler (cc)")
    from ops._oracles import c_library_outputs

    g = streaming_graph()
    xs = frames()
    want = Interpreter(g).run(xs)[0]
    got = c_library_outputs(g, xs, tmp_path)
    np.testing.assert_array_equal(got.reshape(want.shape), want)


def test_c_library_writes_a_uint8_output(tmp_path):
    """A final QUANTIZE to uint8 (microWakeWord's models end so): the library's output is those bytes."""
    import shutil

    if shutil.which("cc") is None:
        pytest.skip("no host C compiler (cc)")
    from ops._oracles import c_library_outputs
    from tinyopt.graph.ir import Node, QuantParams, Tensor

    g = streaming_graph()
    g.add_tensor(Tensor("p", (1, 3), "uint8", quant=QuantParams(np.array([0.05]), np.array([120]))))
    g.add_node(Node("p", "QUANTIZE", ["y"], ["p"]))
    g.outputs = ["p"]
    g.validate()
    xs = frames()
    want = Interpreter(g).run(xs)[0]
    assert want.dtype == np.uint8 and want.max() > 127  # values a signed byte would misread
    got = c_library_outputs(g, xs, tmp_path).view(np.uint8)
    np.testing.assert_array_equal(got.reshape(want.shape), want)


def test_analyze_counts_the_c_librarys_state_beside_its_arena():
    from tinyopt.analysis.arena import runtime_arena
    from tinyopt.export.c.generate import generate_sources

    g = streaming_graph()
    a = runtime_arena(g, "tinyopt-c")
    # the library's arena plus the 2 x 4 int8 state bytes it keeps in a static buffer
    assert a.bytes == generate_sources(g).arena_bytes + 8 and "state kept between invokes" in a.basis
