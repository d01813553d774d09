"""The numpy interpreter: prepare every node once, then run whole batches through integer kernels.

Every activation tensor in a Graph has batch dimension 1; at run time its array is
``(N, *shape[1:])`` and each kernel is vectorised over N. For int8 graphs the result of every row is
bit-exact with TFLM's reference kernels running that row alone.
"""

from __future__ import annotations

import numpy as np

from tinyopt import ops
from tinyopt.errors import DataError, UnsupportedOpError
from tinyopt.graph.ir import Graph
from tinyopt.ops._record import OpData
from tinyopt.runtime.prepare import prepare_node


class Interpreter:
    """Run a float or int8 ``Graph`` on batches of inputs.

    ``Interpreter(graph).run(x)`` takes one array (or a list, one per graph input) shaped
    ``(N, *input_shape[1:])`` in the input's dtype and returns the list of output arrays.
    """

    def __init__(self, graph: Graph):
        self.graph = graph
        graph.validate()
        self.records: list[ops.Op] = []
        for i, node in enumerate(graph.nodes):
            rec = ops.find(node.op)
            if rec is None:
                raise UnsupportedOpError(f"operator {node.op} is not supported by the tinyopt runtime",
                                         path=graph.source, where=f"node {i} '{node.name}'",
                                         fix="replace it with a supported operator; `tinyopt check MODEL` "
                                             "lists what each target supports")
            self.records.append(rec)
        for t in graph.activations():
            if t.shape and t.shape[0] != 1:
                raise UnsupportedOpError(f"activation '{t.name}' has leading dimension "
                                         f"{t.shape[0]}, not batch 1",
                                         path=graph.source, where=f"tensor '{t.name}'",
                                         fix="export the model with batch size 1")
        self.params = [prepare_node(graph, node) for node in graph.nodes]
        self.reset()
        self._consts = [self._dequantized_weights(node, p) for node, p in zip(graph.nodes, self.params)]

    def _dequantized_weights(self, node, p: OpData) -> dict[int, np.ndarray]:
        """Hybrid models (float activations, int8 weights, as dynamic-range quantization writes them):
        the float kernels get the weights dequantized once, ``scale * (q - zero_point)`` per channel."""
        out: dict[int, np.ndarray] = {}
        if p.dtype != "float32":
            return out
        for i, name in enumerate(node.inputs):
            t = self.graph.tensors[name] if name else None
            if t is None or t.data is None or t.dtype not in ("int8", "int32") or t.quant is None:
                continue
            rec = ops.get(node.op)
            if rec.weight_axis is None or i not in (1, rec.bias_input):
                continue
            shape = [1] * t.data.ndim
            axis = t.quant.axis if t.quant.per_channel and t.quant.axis is not None else None
            if axis is not None:
                shape[axis] = -1
            scale = t.quant.scale.astype(np.float32).reshape(shape if axis is not None else [1] * t.data.ndim)
            zp = t.quant.zero_point.reshape(scale.shape)
            out[i] = ((t.data.astype(np.int64) - zp) * scale).astype(np.float32)
        return out

    # -- inputs ---------------------------------------------------------------------------------
    def input_details(self) -> list[tuple[str, tuple[int, ...], str]]:
        return [(n, self.graph.tensors[n].shape, self.graph.tensors[n].dtype) for n in self.graph.inputs]

    def check_inputs(self, inputs) -> list[np.ndarray]:
        """Arrays shaped (N, *input_shape[1:]) in each input's dtype, or a DataError saying which is wrong."""
        if isinstance(inputs, np.ndarray):
            inputs = [inputs]
        inputs = list(inputs)
        where = self.graph.source
        if len(inputs) != len(self.graph.inputs):
            raise DataError(f"the model has {len(self.graph.inputs)} input(s), got {len(inputs)} array(s)",
                            path=where, fix="give one array per model input")
        out = []
        n = None
        for arr, (name, shape, dtype) in zip(inputs, self.input_details()):
            arr = np.asarray(arr)
            want = (shape[1:] if shape else ())
            if arr.ndim != len(want) + 1 or tuple(arr.shape[1:]) != tuple(want):
                raise DataError(f"input '{name}' must have shape (N, {', '.join(map(str, want))}), "
                                f"got {list(arr.shape)}", path=where,
                                fix=f"reshape the data to (N, *{list(want)}); N is the number of rows")
            if arr.dtype != np.dtype(dtype):
                raise DataError(f"input '{name}' must be {dtype}, got {arr.dtype}", path=where,
                                fix=f"convert the data to {dtype}" + (
                                    "" if np.dtype(dtype).kind == "f" else
                                    f" (quantize: round(x / scale) + zero_point with the input's scale and "
                                    f"zero point, clipped to the {dtype} range)"))
            if n is not None and arr.shape[0] != n:
                raise DataError("the input arrays have different numbers of rows", path=where,
                                fix="give every input the same N")
            n = arr.shape[0]
            out.append(arr)
        return out

    # -- running --------------------------------------------------------------------------------
    def run(self, inputs, batch_size: int = 512) -> list[np.ndarray]:
        """Outputs (N, *output_shape[1:]) for inputs (N, *input_shape[1:]); rows go through the graph
        ``batch_size`` at a time so that memory stays bounded for large N."""
        arrays = self.check_inputs(inputs)
        n = arrays[0].shape[0]
        if getattr(self.graph, "variables", None):
            return self._run_stateful(arrays)
        if n <= batch_size:
            env = self.run_all(arrays)
            return [env[name] for name in self.graph.outputs]
        parts = [self.run([a[i: i + batch_size] for a in arrays],
                          batch_size) for i in range(0, n, batch_size)]
        return [np.concatenate([p[k] for p in parts]) for k in range(len(self.graph.outputs))]

    def reset(self) -> None:
        """Back to the variables' initial values, as before a model's first invoke."""
        self.state = {v.state: v.init.copy() for v in getattr(self.graph, "variables", [])}

    def _run_stateful(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """A model with variables (a streaming model): each row is one invoke after the previous row, the
        state carried from one to the next and kept for the next ``run``, as TFLM keeps it between invokes."""
        rows = []
        for i in range(arrays[0].shape[0]):
            env = self.run_all([a[i: i + 1] for a in arrays])
            rows.append([env[name] for name in self.graph.outputs])
            self.state = {v.state: env[v.update] for v in self.graph.variables}
        return [np.concatenate([r[k] for r in rows]) for k in range(len(self.graph.outputs))]

    def run_all(self, inputs) -> dict[str, np.ndarray]:
        """Every activation tensor by name (calibration reads the ranges of all of them)."""
        arrays = self.check_inputs(inputs)
        g = self.graph
        env: dict[str, np.ndarray] = dict(zip(g.inputs, arrays))
        if self.state:
            n = arrays[0].shape[0]
            env.update({k: np.repeat(v, n, axis=0) if v.shape[0] != n else v for k, v in self.state.items()})
        for node, rec, p, consts in zip(g.nodes, self.records, self.params, self._consts):
            ins: list[np.ndarray | None] = []
            for i, name in enumerate(node.inputs):
                if not name:
                    ins.append(None)
                elif i in consts:
                    ins.append(consts[i])
                else:
                    ins.append(env[name] if name in env else g.tensors[name].data)
            y = rec.eval(p, ins)  # one array, or a list of one per output (SPLIT, UNPACK)
            env.update(zip(node.outputs, y if isinstance(y, list) else [y]))
        return env

    def __call__(self, inputs) -> list[np.ndarray]:
        return self.run(inputs)
