"""Small ONNX graphs built with ``onnx.helper``, one per supported operator and per error branch.

The corpus's ONNX files are mostly corrupt; these valid (and validly-built but unsupported) graphs make
the fuzzers and the coverage replay reach the per-operator conversion code in ``graph/onnx_import.py``.
Every graph is built here by script, deterministically (weights from ``default_rng(0)``).
"""

from __future__ import annotations

import numpy as np


def _model(nodes, inits, in_shape, out_shape, opset=13, ins_extra=()):
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    tensors = [numpy_helper.from_array(v if v is not None else rng.normal(size=s).astype(np.float32), k)
               for k, (v, s) in inits.items()]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape or in_shape)
    g = helper.make_graph(nodes, "seed", [x, *ins_extra], [y], tensors)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    if out_shape is None:  # the output shape as ONNX infers it (the input's when inference fails)
        from onnx import shape_inference

        probe = helper.make_model(helper.make_graph(nodes, "seed", [x, *ins_extra], [], tensors),
                                  opset_imports=[helper.make_opsetid("", opset)])
        try:
            vi = {v.name: v for v in shape_inference.infer_shapes(probe).graph.value_info}
        except Exception:  # an invalid seed keeps the input's shape
            vi = {}
        if "y" in vi and vi["y"].type.tensor_type.HasField("shape"):
            m.graph.output[0].CopyFrom(vi["y"])
    return m.SerializeToString()


def _w(shape):
    return (None, shape)


def _c(arr):
    return (np.asarray(arr), None)


def onnx_seeds() -> list[bytes]:
    """Valid and unsupported-but-well-formed ONNX graphs (bytes), in a fixed order."""
    from onnx import helper

    n = helper.make_node
    nchw = [1, 4, 6, 6]
    out: list[bytes] = []

    def one(op, attrs=None, inits=None, inputs=None, in_shape=nchw, out_shape=None, opset=13, outputs=("y",)):
        inits = inits or {}
        node = n(op, inputs or ["x", *inits], list(outputs), **(attrs or {}))
        out.append(_model([node], inits, in_shape, out_shape, opset))

    # convolutions: plain, padded, SAME, VALID, grouped, depthwise, 1-D, no bias
    one("Conv", {"pads": [1, 1, 1, 1]}, {"w": _w((8, 4, 3, 3)), "b": _w((8,))})
    one("Conv", {"auto_pad": "SAME_UPPER", "strides": [2, 2]}, {"w": _w((8, 4, 3, 3))})
    one("Conv", {"auto_pad": "SAME_LOWER"}, {"w": _w((8, 4, 3, 3))})
    one("Conv", {"auto_pad": "VALID", "group": 2}, {"w": _w((8, 2, 3, 3)), "b": _w((8,))})
    one("Conv", {"group": 4, "pads": [1, 1, 1, 1]}, {"w": _w((4, 1, 3, 3)), "b": _w((4,))})
    one("Conv", {"pads": [1, 1], "dilations": [2]}, {"w": _w((8, 4, 3))}, in_shape=[1, 4, 10])
    one("Conv", {"auto_pad": "SAME_UPPER"}, {"w": _w((8, 4, 3))}, in_shape=[1, 4, 10])
    one("Conv", {}, {"w": _w((8, 3, 3, 3))})  # channel mismatch
    # dense layers
    fc = [1, 12]
    one("Gemm", {"transB": 1, "alpha": 0.5, "beta": 2.0}, {"w": _w((5, 12)), "c": _w((5,))}, in_shape=fc)
    one("Gemm", {}, {"w": _w((12, 5)), "c": _c(np.float32([1.0]))}, in_shape=fc)
    one("Gemm", {"transA": 1}, {"w": _w((12, 5))}, in_shape=fc)
    one("Gemm", {}, {"w": _w((12, 5)), "c": _w((3,))}, in_shape=fc)
    one("Gemm", {}, {"w": _w((12, 5))}, inputs=["x", "x"], in_shape=fc)  # weight not constant
    one("MatMul", {}, {"w": _w((12, 5, 2))}, in_shape=fc)
    out.append(_model([n("MatMul", ["x", "w"], ["h"]), n("Add", ["h", "c"], ["y"])],
                      {"w": _w((12, 5)), "c": _w((5,))}, fc, None))
    out.append(_model([n("MatMul", ["x", "w"], ["h"]), n("Identity", ["h"], ["i"]),
                       n("Add", ["i", "c"], ["y"])],
                      {"w": _w((12, 5)), "c": _w((5,))}, fc, None))
    out.append(_model([n("MatMul", ["x", "w"], ["h"]), n("Add", ["h", "c"], ["a"]),
                       n("Add", ["h", "a"], ["y"])],
                      {"w": _w((12, 5)), "c": _w((5,))}, fc, None))
    # element-wise
    for op in ("Add", "Sub", "Mul"):
        one(op, {}, {"c": _w((1, 4, 1, 1))})
        one(op, {}, {}, inputs=["x", "x"])
        one(op, {}, {"c": _c(np.float32([2.0]))}, inputs=["c", "x"])
    one("Add", {}, {}, inputs=["p", "q"])  # both operands unknown
    for op in ("Relu", "Sigmoid", "Tanh", "Identity", "Softmax"):
        one(op)
    one("Softmax", {"axis": 1}, opset=11, in_shape=[1, 10])
    one("Softmax", {"axis": 1}, opset=11)
    one("Dropout", {}, {}, outputs=("y",))
    one("Dropout", {}, {}, outputs=("y", "mask"))
    out.append(_model([n("Dropout", ["x"], ["d", "m"]), n("Add", ["d", "m"], ["y"])], {}, nchw, None))
    # Clip: attributes (opset 6) and inputs (opset 13), RELU6 / RELU / unsupported
    one("Clip", {"min": 0.0, "max": 6.0}, opset=6)
    one("Clip", {"min": 0.0}, opset=6)
    one("Clip", {}, {"lo": _c(np.float32(0)), "hi": _c(np.float32(6))})
    one("Clip", {}, {"lo": _c(np.float32(0)), "hi": _c(np.float32(3.4e38))})
    one("Clip", {}, {"lo": _c(np.float32(-1)), "hi": _c(np.float32(1))})
    one("Clip", {}, {"lo": _c(np.float32(0))})
    # pooling
    one("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2]})
    one("MaxPool", {"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER", "ceil_mode": 1})
    one("MaxPool", {"kernel_shape": [2, 2], "dilations": [2, 2]})
    one("MaxPool", {"kernel_shape": [2, 2]}, outputs=("y", "idx"))
    out.append(_model([n("MaxPool", ["x"], ["p", "i"], kernel_shape=[2, 2]), n("Add", ["p", "i"], ["y"])],
                      {}, nchw, None))
    one("AveragePool", {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1})
    one("AveragePool", {"kernel_shape": [2], "strides": [2]}, in_shape=[1, 4, 10])
    one("MaxPool", {})  # kernel_shape missing
    one("GlobalAveragePool")
    one("ReduceMean", {"axes": [2, 3], "keepdims": 0})
    one("ReduceMean", {"keepdims": 1})
    one("ReduceMean", {}, {"ax": _c(np.int64([2, 3]))}, opset=18)
    # shapes
    one("Flatten")
    one("Flatten", {"axis": 2})
    one("Reshape", {}, {"s": _c(np.int64([1, -1]))})
    one("Reshape", {}, {"s": _c(np.int64([0, 4, 36]))})
    one("Reshape", {}, {}, inputs=["x", "x"])  # shape computed at run time
    one("Squeeze", {}, {"ax": _c(np.int64([0]))}, in_shape=[1, 1, 12])
    one("Squeeze", {}, {"ax": _c(np.int64([1]))}, in_shape=[1, 1, 12])
    one("Squeeze", {"axes": [1]}, opset=11, in_shape=[1, 1, 12])
    one("Unsqueeze", {}, {"ax": _c(np.int64([2]))}, in_shape=[1, 12])
    one("Unsqueeze", {"axes": [2]}, opset=11, in_shape=[1, 12])
    one("Unsqueeze", {}, {}, opset=13, in_shape=[1, 12])
    one("Concat", {"axis": 1}, inputs=["x", "x"])
    one("Concat", {}, inputs=["x", "x"])  # axis missing
    one("BatchNormalization", {"epsilon": 1e-3},
        {k: _c(np.abs(np.arange(1, 5, dtype=np.float32))) for k in ("g", "b", "m", "v")})
    one("BatchNormalization", {"training_mode": 1},
        {k: _c(np.ones(4, np.float32)) for k in ("g", "b", "m", "v")})
    # Pad: inputs (opset 13, with axes at 18), attributes (opset 2), errors
    one("Pad", {}, {"p": _c(np.int64([0, 0, 1, 2, 0, 0, 2, 1]))})
    one("Pad", {}, {"p": _c(np.int64([0, 0, 1, 0, 0, 2]))}, in_shape=[1, 4, 10])
    one("Pad", {}, {"p": _c(np.int64([1, 1, 1, 1])), "v": _c(np.float32([0])), "ax": _c(np.int64([2, 3]))},
        opset=18)
    one("Pad", {"pads": [0, 0, 1, 1, 0, 0, 1, 1]}, opset=2)
    one("Pad", {"mode": "reflect"}, {"p": _c(np.int64([0, 0, 1, 1, 0, 0, 1, 1]))})
    one("Pad", {}, {"p": _c(np.int64([0, 1, 0, 0, 0, 0, 0, 0]))})
    one("Pad", {}, {"p": _c(np.int64([1, 1]))})
    # layout changes
    out.append(_model([n("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]), n("Relu", ["t"], ["r"]),
                       n("Transpose", ["r"], ["y"], perm=[0, 2, 3, 1])], {}, [1, 6, 6, 4], None))
    one("Transpose", {"perm": [0, 1, 3, 2]})
    # constant folding feeding a Reshape; custom domain; unsupported op; bad graphs
    out.append(_model([n("Shape", ["x"], ["s"]), n("Gather", ["s", "i"], ["g"]),
                       n("Unsqueeze", ["g", "z"], ["u"]), n("Concat", ["u", "m"], ["s2"], axis=0),
                       n("Cast", ["s2"], ["s3"], to=7), n("Reshape", ["x", "s3"], ["y"])],
                      {"i": _c(np.int64(0)), "z": _c(np.int64([0])), "m": _c(np.int64([-1]))}, nchw, None))
    out.append(_model([n("Constant", [], ["k"], value_floats=[1.0, 2.0, 3.0, 4.0]),
                       n("Constant", [], ["s"], value_ints=[1, 4, 1, 1]), n("Reshape", ["k", "s"], ["k4"]),
                       n("Mul", ["x", "k4"], ["y"])], {}, nchw, None))
    out.append(_model([n("Range", ["a", "l", "d"], ["r"]), n("ConstantOfShape", ["r"], ["c"]),
                       n("Flatten", ["c"], ["f"]), n("Sub", ["f", "f"], ["z"]), n("Div", ["z", "d"], ["q"]),
                       n("Slice", ["q", "st", "en"], ["sl"]), n("Transpose", ["sl"], ["tr"]),
                       n("Squeeze", ["tr"], ["sq"]), n("Identity", ["sq"], ["id"]),
                       n("Add", ["x", "id"], ["y"])],
                      {"a": _c(np.int64(1)), "l": _c(np.int64(3)), "d": _c(np.int64(1)),
                       "st": _c(np.int64([0])), "en": _c(np.int64([1]))}, [1, 1], None))
    out.append(_model([n("Range", ["a", "l", "d"], ["r"]), n("Add", ["x", "r"], ["y"])],
                      {"a": _c(np.int64(0)), "l": _c(np.int64(10**12)), "d": _c(np.int64(1))}, [1, 1], None))
    out.append(_model([n("Custom", ["x"], ["y"], domain="com.example")], {}, nchw, None))
    one("LSTM")
    one("Relu", in_shape=["n", 4, "h", 6])
    one("Relu", in_shape=[1, 1 << 15, 1 << 15])
    out.append(_model([n("Relu", ["x"], ["y"])], {}, nchw, None, ins_extra=[]))
    out.append(_model([n("Relu", ["x"], ["r"])], {"y": _w((1, 4))}, nchw, None))  # output is a constant
    from onnx import TensorProto

    # variants shaped so that the checker's shape inference passes and the converter decides
    one("Gemm", {"transA": 1}, {"w": _w((12, 5))}, in_shape=[12, 1])
    one("MatMul", {}, {"w": _w((2, 12, 5))}, in_shape=[1, 12])
    one("BatchNormalization", {"training_mode": 1},
        {k: _c(np.ones(4, np.float32)) for k in ("g", "b", "m", "v")}, opset=15)
    one("Squeeze", {}, {"ax": _c(np.int64([0]))}, in_shape=[1, 3, 12])
    custom = helper.make_model(helper.make_graph(
        [n("Custom", ["x"], ["y"], domain="com.example")], "seed",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, nchw)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, nchw)]),
        opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.example", 1)])
    custom.ir_version = 8
    out.append(custom.SerializeToString())
    x2 = helper.make_tensor_value_info("x2", TensorProto.FLOAT, nchw)
    out.append(_model([n("Add", ["x", "x2"], ["y"])], {}, nchw, None, ins_extra=[x2]))
    return out
