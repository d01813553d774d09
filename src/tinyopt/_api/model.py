"""``tinyopt.load``: every door in (a file, a PyTorch module, ``zoo:<name>``, ``file.py:factory``) →
``Model``.

A ``Model`` is the IR ``Graph`` (NHWC) plus what the user handed in: the PyTorch module, the reference it
was loaded from, and the *own declared layout* of each input and output. Data crosses the public boundary
in that own layout (a PyTorch module or an NCHW ONNX file: ``(N, C, H, W)``; a ``.tflite``: ``(N, H, W, C)``);
the transposes to and from the IR happen here and nowhere else. Data in the other layout is refused with the
exact ``np.transpose`` that fixes it: a reshape across layouts runs and silently scrambles the data.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from tinyopt._api.display import Result, Table
from tinyopt._extras import translated
from tinyopt.errors import ConfigError, DataError, ModelFormatError
from tinyopt.graph.ir import Graph


def is_reference(text: str) -> bool:
    """``zoo:<name>`` or ``path/to/file.py:factory`` (a PyTorch model named by text)."""
    from tinyopt._modelref import is_torch_ref

    return is_torch_ref(text)


def is_torch_module(obj) -> bool:
    """True for a ``torch.nn.Module``, without importing torch when the caller never did."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def resolve_reference(ref: str):
    """The ``torch.nn.Module`` that ``zoo:<name>`` or ``file.py:factory`` names (the factory is called
    without arguments: the user's own code, run as ``python file.py`` would), and its label."""
    from tinyopt._extras import require
    from tinyopt._modelref import ModelRef

    require("torch", f"the PyTorch model {ref}")
    r = ModelRef.parse(ref)
    return r.build(), r.label


# -- layouts ------------------------------------------------------------------------------------------
# A layout names how an array at the public boundary relates to the graph tensor (batch first in both):
# None = the same axes; "NCHW" = graph (N, H, W, C); "NCL" = graph (N, 1, L, C) (from_torch's rule).
_TO_GRAPH = {"NCHW": (0, 2, 3, 1)}
_FROM_GRAPH = {"NCHW": (0, 3, 1, 2)}
_NAMES = {None: {4: "NHWC", 3: "NLC"}, "NCHW": {4: "NCHW"}, "NCL": {4: "NCL"}}


def own_shape(graph_shape: tuple[int, ...], layout: str | None) -> tuple[int, ...]:
    """The shape without batch that the user's arrays have for a graph tensor of ``graph_shape``."""
    if layout == "NCHW":
        _, h, w, c = graph_shape
        return (c, h, w)
    if layout == "NCL":
        _, _, length, c = graph_shape
        return (c, length)
    return tuple(graph_shape[1:])


def layout_name(graph_shape: tuple[int, ...], layout: str | None) -> str:
    return _NAMES.get(layout, {}).get(len(graph_shape), "")


def to_graph(x: np.ndarray, layout: str | None) -> np.ndarray:
    if layout == "NCHW":
        return np.ascontiguousarray(x.transpose(_TO_GRAPH["NCHW"]))
    if layout == "NCL":
        return np.ascontiguousarray(x.transpose(0, 2, 1)[:, None])
    return x


def from_graph(y: np.ndarray, layout: str | None) -> np.ndarray:
    if layout == "NCHW" and y.ndim == 4:
        return np.ascontiguousarray(y.transpose(_FROM_GRAPH["NCHW"]))
    if layout == "NCL" and y.ndim == 4:
        return np.ascontiguousarray(y[:, 0].transpose(0, 2, 1))
    return y


def _transpose_fix(given: tuple[int, ...], want: tuple[int, ...]) -> str | None:
    """The ``np.transpose`` axes that turn batch-first ``given`` into ``want`` (channels moved), if any."""
    for axes in ((0, 3, 1, 2), (0, 2, 3, 1), (0, 2, 1)):
        if len(axes) == len(given) == len(want) and tuple(given[a] for a in axes) == tuple(want):
            return f"np.transpose(x, {axes})"
    return None


def _as_array(x, what: str, source: str | None) -> np.ndarray:
    if is_torch_module(x):
        raise DataError(f"{what} is a torch.nn.Module, not data", path=source,
                        fix="pass an array or a tensor")
    if hasattr(x, "detach") and hasattr(x, "numpy"):  # a torch tensor
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as e:
        raise DataError(f"{what} is not an array ({e})", path=source,
                        fix="pass a numpy array or a tensor") from None
    if arr.dtype == object:
        raise DataError(f"{what} is not an array of numbers", path=source,
                        fix="pass a numpy array or a tensor")
    return arr


def as_batch(x, want: tuple[int, ...], layout: str, what: str, source: str | None) -> np.ndarray:
    """``x`` as an array of rows shaped ``want`` (the model's own layout); other layouts are refused with
    the ``np.transpose`` that fixes them, never with a reshape."""
    arr = _as_array(x, what, source)
    if arr.ndim == len(want) + 1 and tuple(arr.shape[1:]) == tuple(want):
        return arr
    msg = f"{what} must have shape (N, {', '.join(map(str, want))}), got {list(arr.shape)}"
    own = f"the model's own layout ({layout})" if layout else "the model's own layout"
    fix = _transpose_fix(tuple(arr.shape), (arr.shape[0], *want)) if arr.ndim >= 3 else None
    if fix:
        raise DataError(msg, path=source, fix=f"the data is in another layout than {own}: transpose it with "
                        f"{fix}; never reshape across layouts")
    raise DataError(msg, path=source, fix=f"give batch-first arrays (N rows) in {own}")


# -- the model --------------------------------------------------------------------------------------
class Model(Result):
    """A model tinyopt can analyze, check, convert, run and deploy (what ``tinyopt.load`` returns).

    ``graph`` is the IR (built from the module on first use for a PyTorch model); ``module`` the PyTorch
    module or None; ``inputs``/``outputs`` list each tensor's name, shape without batch in the model's own
    layout, the layout's name and the dtype.
    """

    def __init__(self, graph: Graph | None = None, *, module=None, source: str | None = None,
                 name: str | None = None, input_shape: tuple[int, ...] | None = None,
                 input_layouts: list | None = None, output_layouts: list | None = None, compressed=None):
        if graph is None and module is None:
            raise ValueError("a Model needs a graph or a module")
        self._graph = graph
        self.module = module
        self.compressed = compressed  # a tinyopt compress output: its record (int8 ranges, data) goes on
        self.source = source or (graph.source if graph is not None else None) or "in memory"
        self.name = name or (graph.name if graph is not None else type(module).__name__)
        self.input_shape = None if input_shape is None else tuple(int(d) for d in input_shape)
        self._input_layouts = input_layouts
        self._output_layouts = output_layouts
        self._interpreter = None

    # -- the graph, built lazily for PyTorch modules ------------------------------------------
    @property
    def graph(self) -> Graph:
        if self._graph is None:
            from tinyopt.graph.torch_import import from_torch

            self._graph = from_torch(self.module, self.input_shape, name=self.name)
            self._graph.source = self._graph.source or self.source
        return self._graph

    @property
    def input_layouts(self) -> list:
        if self._input_layouts is None:
            g = self.graph
            torch_layout = (None if self.module is None
                            else {3: "NCHW", 2: "NCL"}.get(len(self.input_shape or ())))
            self._input_layouts = [torch_layout if len(g.tensors[n].shape) == 4 else None for n in g.inputs]
        return self._input_layouts

    @property
    def output_layouts(self) -> list:
        if self._output_layouts is None:
            g = self.graph
            first = self.input_layouts[0] if self.module is not None and self.input_layouts else None
            self._output_layouts = [first if len(g.tensors[n].shape) == 4 else None for n in g.outputs]
        return self._output_layouts

    def _io(self, names: list[str], layouts: list) -> list[dict]:
        g = self.graph
        return [{"name": n, "shape": list(own_shape(g.tensors[n].shape, lay)),
                 "layout": layout_name(g.tensors[n].shape, lay), "dtype": g.tensors[n].dtype}
                for n, lay in zip(names, layouts)]

    @property
    def inputs(self) -> list[dict]:
        return self._io(self.graph.inputs, self.input_layouts)

    @property
    def outputs(self) -> list[dict]:
        return self._io(self.graph.outputs, self.output_layouts)

    @property
    def dtype(self) -> str:
        from tinyopt.analysis.cost import model_dtype

        return model_dtype(self.graph)

    @property
    def has_weights(self) -> bool:
        """False for an architecture spec (shapes only): it can be analyzed, not run or converted."""
        return not any(t.constant and t.data is None for t in self.graph.tensors.values())

    @property
    def interpreter(self):
        """The numpy runtime for this model's graph, prepared once (bit-exact with TFLM for int8)."""
        if getattr(self, "_interpreter", None) is None:
            from tinyopt.runtime import Interpreter

            if not self.has_weights:
                raise ConfigError("the model has no weights (an architecture spec)", path=self.source,
                                  fix="give a .tflite/.onnx file or a PyTorch model")
            self._interpreter = Interpreter(self.graph)
        return self._interpreter

    # -- data at the boundary -----------------------------------------------------------------
    def graph_inputs(self, x, what: str = "input") -> list[np.ndarray]:
        """Arrays in the model's own layout (one, or a list for several inputs) → the graph's layout."""
        xs = list(x) if isinstance(x, (list, tuple)) else [x]
        g = self.graph
        if len(xs) != len(g.inputs):
            raise DataError(f"the model has {len(g.inputs)} input(s), got {len(xs)} array(s)",
                            path=self.source, fix="give one array per model input")
        out = []
        for arr, name, lay in zip(xs, g.inputs, self.input_layouts):
            gshape = g.tensors[name].shape
            arr = as_batch(arr, own_shape(gshape, lay), layout_name(gshape, lay), f"{what} '{name}'",
                           self.source)
            out.append(to_graph(arr, lay))
        return out

    def own_outputs(self, ys: list[np.ndarray]) -> list[np.ndarray]:
        return [from_graph(y, lay) for y, lay in zip(ys, self.output_layouts)]

    # -- display ---------------------------------------------------------------------------------
    def tables(self) -> list[Table]:
        kind = "PyTorch module" if self.module is not None else "graph"
        rows = [[d["name"][:48], "×".join(map(str, d["shape"])) or "scalar", d["layout"], d["dtype"]]
                for d in self.inputs]
        rows_out = [[d["name"][:48], "×".join(map(str, d["shape"])) or "scalar", d["layout"], d["dtype"]]
                    for d in self.outputs]
        g = self.graph
        return [Table(f"{self.name} ({self.source}): {kind}, {len(g.nodes)} operators, {self.dtype}"
                      + ("" if self.has_weights else ", no weights (architecture only)"),
                      ["", "tensor", "shape (no batch)", "layout", "dtype"],
                      [["input", *r] for r in rows] + [["output", *r] for r in rows_out])]

    def to_dict(self) -> dict:
        return {"name": self.name, "source": self.source, "dtype": self.dtype,
                "operators": len(self.graph.nodes), "inputs": self.inputs, "outputs": self.outputs,
                "has_weights": self.has_weights}


def _onnx_layouts(path: Path, graph: Graph) -> tuple[list, list]:
    """Each ONNX input/output's layout, from the shapes the file declares against the graph's (NHWC)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False).graph
    init = {t.name for t in proto.initializer}

    def dims(v) -> tuple[int, ...]:
        return tuple(d.dim_value for d in v.type.tensor_type.shape.dim)

    def fits(declared: tuple[int, ...], own: tuple[int, ...]) -> bool:  # 0: a dynamic size, fixed at load
        return len(declared) == len(own) and all(d in (0, o) for d, o in zip(declared, own))

    def layout(declared: tuple[int, ...], gshape: tuple[int, ...]):
        if len(declared) != len(gshape) and not (len(declared) == 3 and len(gshape) == 4):
            return None
        if len(gshape) == 4 and len(declared) == 4 and fits(declared[1:], own_shape(gshape, "NCHW")):
            return "NCHW"  # square C = H = W cannot tell; the importer reads 4-D inputs as NCHW then too
        if len(gshape) == 4 and len(declared) == 3 and fits(declared[1:], own_shape(gshape, "NCL")):
            return "NCL"
        return None

    ins = {v.name: v for v in proto.input if v.name not in init}  # inputs fixed at a value: not the graph's
    in_l = [layout(dims(ins[n]), graph.tensors[n].shape) if n in ins else None for n in graph.inputs]
    out_l = [layout(dims(v), graph.tensors[n].shape) for v, n in zip(proto.output, graph.outputs)]
    return in_l, out_l


def _torch_shape(module, label: str, example_input, input_shape) -> tuple[int, ...]:
    if example_input is not None:
        arr = example_input
        shape = tuple(arr.shape) if hasattr(arr, "shape") else None
        if not shape or len(shape) < 2:
            raise ConfigError(f"example_input must be a batch-first tensor like torch.zeros(1, C, H, W), got "
                              f"{type(arr).__name__}{list(shape) if shape else ''}", where=label,
                              fix="give a tensor with a batch dimension in the module's own (NCHW) layout")
        return tuple(int(d) for d in shape[1:])
    if input_shape is not None:
        return tuple(int(d) for d in input_shape)
    shape = getattr(module, "input_shape", None)
    if shape is None:
        raise ConfigError("a PyTorch model needs its input shape", where=label,
                          fix="give example_input=torch.zeros(1, C, H, W) (or --input-shape C,H,W on the "
                              "CLI): the module's own NCHW layout, as torch.export takes it")
    return tuple(int(d) for d in shape)


@translated
def load(model, example_input=None, *, input_shape: tuple[int, ...] | None = None,
         checkpoint: str | os.PathLike | None = None, opaque: bool = False,
         input_values: dict | None = None) -> Model:
    """A ``Model`` from a path (``.tflite``, ``.onnx``, ``.yaml`` spec, or what ``tinyopt compress`` wrote),
    a ``torch.nn.Module``, ``"zoo:<name>"`` or ``"path/to/file.py:factory"`` (a function or class returning
    a module, called without arguments).

    A PyTorch model needs its input: ``example_input`` is a tensor in the module's own layout with a batch
    dimension (``torch.zeros(1, 3, 32, 32)``), or ``input_shape`` the same without batch (``(3, 32, 32)``);
    zoo models know theirs. ``input_shape`` also sets a ``.yaml`` spec's input (its own H, W, C).
    ``checkpoint`` loads a ``state_dict`` (read with ``weights_only=True``) into a PyTorch model.
    ``opaque`` keeps operators tinyopt does not know (in a .tflite or .onnx file) as opaque nodes, so that
    analysis counts the rest and a check lists every one of them; otherwise the first is refused.
    ``input_values`` fixes ONNX inputs at a value (``{"sr": 16000}``): control flow they decide folds away.
    """
    from tinyopt._api.transform import Compressed

    if isinstance(model, Model):
        if model.module is None or (example_input is None and input_shape is None and checkpoint is None):
            if checkpoint is not None:
                raise ConfigError("a checkpoint applies to PyTorch models only", where=model.source,
                                  fix="drop the checkpoint: this model carries its weights")
            return model
        model = model.module
    if isinstance(model, Graph):
        return Model(model)
    if isinstance(model, Compressed):  # compress's result goes straight on: its module and input shape
        return load(model.model, example_input, input_shape=input_shape or model.input_shape,
                    checkpoint=checkpoint)
    if is_torch_module(model) or (isinstance(model, str) and is_reference(model)):
        return _load_torch(model, example_input, input_shape, checkpoint)
    if not isinstance(model, (str, os.PathLike)):
        raise ModelFormatError(f"cannot load a {type(model).__name__}", fix="give a model file path, a "
                               "torch.nn.Module, 'zoo:<name>' or 'path/to/file.py:factory'")
    return _load_file(model, input_shape, checkpoint, opaque, input_values)


def _load_torch(model, example_input, input_shape, checkpoint) -> Model:
    if isinstance(model, str):
        source = model
        module, label = resolve_reference(model)
    else:
        module, label, source = model, type(model).__name__, f"<{type(model).__name__} module>"
    if checkpoint is not None:
        from tinyopt.compress.checkpoint import load_checkpoint

        load_checkpoint(checkpoint, module)
    shape = _torch_shape(module, label, example_input, input_shape)
    return Model(module=module, source=source, name=label, input_shape=shape)


def _load_file(model: str | os.PathLike, input_shape, checkpoint, opaque: bool = False,
               input_values: dict | None = None) -> Model:
    from tinyopt.compress.artifact import is_output

    if is_output(model):  # what tinyopt compress wrote: the record says which model, shape and edits
        from tinyopt.compress.artifact import load_output

        if checkpoint is not None:
            raise ConfigError("a checkpoint with a compressed model", path=model,
                              fix="drop the checkpoint: the file carries its weights")
        cm = load_output(model)
        return Model(module=cm.build(), source=os.fspath(model), name=cm.model_ref.label,
                     input_shape=cm.input_shape, compressed=cm)
    if checkpoint is not None:
        raise ConfigError("a checkpoint applies to PyTorch models only (zoo:<name> or file.py:factory)",
                          path=model, fix="drop the checkpoint: a model file carries its weights")
    from tinyopt.graph.load import load_model

    path = Path(model)
    suffix = path.suffix.lower()
    spec = suffix in (".yaml", ".yml")
    onnx_file = suffix == ".onnx"
    graph = load_model(os.fspath(model), tuple(input_shape) if input_shape is not None and (spec or onnx_file)
                       else None, opaque=opaque, input_values=input_values)
    layouts = _onnx_layouts(path, graph) if suffix == ".onnx" else ([None] * len(graph.inputs), None)
    if input_shape is not None and not spec and not onnx_file:  # ONNX: its importer checks the file's sizes
        declared = own_shape(graph.tensors[graph.inputs[0]].shape, layouts[0][0])
        if tuple(input_shape) != declared:
            raise ConfigError(f"the file declares its input shape {list(declared)}, got input shape "
                              f"{list(input_shape)}", path=model,
                              fix="drop the input shape: the file sets it")
    return Model(graph, source=os.fspath(model), input_layouts=layouts[0], output_layouts=layouts[1])


__all__ = ["Model", "from_graph", "is_reference", "load", "own_shape", "resolve_reference", "to_graph"]
