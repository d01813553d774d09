"""ONNX door: ``load_onnx(path)`` reads a float ONNX model into an NHWC Graph.

Safety first: the protobuf is parsed without following external-data references; those are then
resolved by us, only to regular files inside the model's own folder (no absolute paths, no ``..``, no
symlinks, no hard-linked files, no unknown keys, no reads beyond the end of the file).

Shape arithmetic that exporters emit (Shape → Gather → Concat → Reshape, or the Pad amounts of a
``ZeroPad2d``) is folded to constants with numpy before conversion; the layout rules (NCHW → NHWC at
the door, permuted dense columns after a flatten) are the PyTorch importer's, shared via ``NchwBuilder``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from tinyopt import ops
from tinyopt.errors import ConfigError, ModelFormatError, UnsupportedOpError
from tinyopt.graph.ir import Graph
from tinyopt.graph.torch_import import ONNX_PASS_THROUGH, NchwBuilder, Val, layout_view

FOLD_LIMIT = 1 << 22  # elements of one constant computed while folding shape arithmetic
EXTERNAL_KEYS = {"location", "offset", "length", "checksum"}
_FOLDABLE = {"Constant", "ConstantOfShape", "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Reshape",
             "Slice", "Transpose", "Cast", "Add", "Sub", "Mul", "Div", "Identity", "Range", "Flatten",
             "Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "Not", "And", "Or", "Where", "Neg",
             "Abs", "Min", "Max", "ReduceProd", "Expand", "Size"}
_FOLD_NUMPY: dict[str, Callable[..., Any]] = {"Equal": np.equal, "Greater": np.greater, "Less": np.less,
                                              "GreaterOrEqual": np.greater_equal,
               "LessOrEqual": np.less_equal, "And": np.logical_and, "Or": np.logical_or,
                                              "Not": np.logical_not,
               "Neg": np.negative, "Abs": np.abs, "Where": np.where}


# -- reading the file safely ------------------------------------------------------------------------

def _read_model(path: Path):
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, TypeError, RuntimeError, UnicodeDecodeError) as e:
        raise ModelFormatError(f"not a readable ONNX model ({type(e).__name__}: "
                               f"{str(e).splitlines()[0] if str(e) else 'protobuf decode failed'})",
                               path=path,
                               fix="export the model to ONNX again; the file "
                                   "is corrupt or not ONNX") from None
    if not model.graph.node:
        raise ModelFormatError("the ONNX graph has no nodes (corrupt, truncated or not an ONNX model)",
                               path=path, fix="export the model to ONNX again")
    return model


def _external_tensors(model):
    """Every TensorProto that may carry external data: initializers and Constant node values."""
    yield from model.graph.initializer
    for n in model.graph.node:
        for a in n.attribute:
            if a.HasField("t"):
                yield a.t


def _inside_folder(loc: str, folder: str, path: Path, where: str) -> str:
    """The real path of external data ``loc``: relative, inside ``folder``, through no symbolic link."""
    parts = loc.replace("\\", "/").split("/")
    if (not loc or "\x00" in loc or os.path.isabs(loc) or loc.startswith(("/", "\\"))
            or (len(loc) > 1 and loc[1] == ":") or ".." in parts):
        raise ModelFormatError(f"external data location '{loc}' is not a relative path "
                               "inside the model's folder", path=path, where=where,
                               fix="keep the data file next to the .onnx file and refer to it by name")
    names = [p for p in parts if p not in ("", ".")]
    cur = folder
    for p in names:
        cur = os.path.join(cur, p)
        if os.path.islink(cur):
            raise ModelFormatError(f"external data location '{loc}' goes through a symbolic link",
                                   path=path, where=where, fix="copy the data file into the model's folder")
    real = os.path.realpath(os.path.join(folder, *names))
    if os.path.commonpath([real, folder]) != folder:
        raise ModelFormatError(f"external data location '{loc}' leaves the model's folder", path=path,
                               where=where, fix="keep the data file next to the .onnx file")
    return real


def _resolve_external_data(model, path: Path) -> None:
    """Load external tensor data, only from regular files inside the model's folder."""
    from onnx import TensorProto, helper

    folder = os.path.realpath(path.parent)
    for t in _external_tensors(model):
        if t.data_location != TensorProto.EXTERNAL:
            continue
        where = f"initializer '{t.name}'"
        info = {}
        for e in t.external_data:
            if e.key not in EXTERNAL_KEYS:
                raise ModelFormatError(f"unknown external-data key '{e.key}'", path=path, where=where,
                                       fix=f"use only {', '.join(sorted(EXTERNAL_KEYS))}")
            info[e.key] = e.value
        loc = _text(info.get("location", ""))  # invalid UTF-8 arrives as bytes
        real = _inside_folder(loc, folder, path, where)
        try:
            offset = int(info.get("offset", 0))
            length = int(info["length"]) if "length" in info else None
        except ValueError:
            raise ModelFormatError("external data offset/length "
                                   f"{info.get('offset')!r}/{info.get('length')!r} are not integers",
                                   path=path, where=where, fix="export the model again") from None
        try:
            fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError as e:
            raise ModelFormatError(f"cannot open external data '{loc}': {e.strerror}", path=path, where=where,
                                   fix="put the data file next to the .onnx file") from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # before fdopen, which raises IsADirectoryError for a folder
            os.close(fd)
            raise ModelFormatError(f"external data '{loc}' is not a regular file", path=path, where=where,
                                   fix="point location at a data file")
        with os.fdopen(fd, "rb") as f:
            if st.st_nlink > 1:
                raise ModelFormatError(f"external data '{loc}' has {st.st_nlink} hard links", path=path,
                                       where=where, fix="copy the data file so it has a single link")
            if length is None:
                length = st.st_size - offset
            if offset < 0 or length < 0 or offset + length > st.st_size:
                raise ModelFormatError(f"external data range offset {offset} + length {length} is beyond the "
                                       f"{st.st_size}-byte file '{loc}'", path=path, where=where,
                                       fix="export the model again; the data file is truncated")
            f.seek(offset)
            data = f.read(length)
        try:
            itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize
        except (KeyError, TypeError, ValueError):  # e.g. data_type 0 (UNDEFINED)
            raise ModelFormatError(f"external data of unknown element type {t.data_type}", path=path,
                                   where=where, fix="export the model again") from None
        if len(data) != int(np.prod(t.dims, dtype=np.int64)) * itemsize:
            raise ModelFormatError(f"external data holds {len(data)} bytes, the tensor needs "
                                   f"{int(np.prod(t.dims, dtype=np.int64)) * itemsize}", path=path,
                                   where=where, fix="export the model again")
        t.raw_data = data
        t.data_location = TensorProto.DEFAULT
        del t.external_data[:]


def load_onnx(path: str | os.PathLike, opaque: bool = False, input_shapes: list | None = None,
              input_values: dict | None = None) -> Graph:
    """Read ``path`` (external data resolved safely), infer shapes, convert to an NHWC float Graph.

    ``opaque``: keep ONNX operators tinyopt does not convert as opaque nodes (shapes from ONNX's shape
    inference) so that analysis counts the rest; without it the first one is refused.
    ``input_shapes``: per graph input, its size without the batch in the model's own layout, for inputs whose
    file leaves dimensions dynamic (a dynamic batch alone is taken as 1).
    ``input_values``: inputs fixed at a value (a sample rate, a mode flag): they become constants, so the
    control flow they decide folds away."""
    import onnx

    p = Path(path)
    model = _read_model(p)
    _resolve_external_data(model, p)
    _freeze_inputs(model, p, input_values or {})
    _fix_input_dims(model, p, input_shapes)
    try:
        onnx.checker.check_model(model)
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError, RuntimeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelFormatError(f"invalid ONNX model: {first}", path=p,
                               fix="export the model to ONNX again (opset 11 or newer)") from None
    return _OnnxConverter(model, p, opaque).run()


def _freeze_inputs(model, path: Path, values: dict) -> None:
    """Graph inputs given a value become initializers of their declared type and shape."""
    from onnx import helper, numpy_helper

    init = {t.name for t in model.graph.initializer}
    inputs = {i.name: i for i in model.graph.input if i.name not in init}
    for name, value in values.items():
        if name not in inputs:
            raise ConfigError(f"--input-value names '{name}', which is not a model input", path=path,
                              fix=f"model inputs: {', '.join(inputs)}")
        tt = inputs[name].type.tensor_type
        dims = [d.dim_value for d in tt.shape.dim]
        arr = np.asarray(value, dtype=helper.tensor_dtype_to_np_dtype(tt.elem_type))
        if any(d <= 0 for d in dims) or int(np.prod(dims)) != arr.size:
            if arr.size != 1 or dims:
                raise ConfigError(f"input '{name}' has shape {dims}; {arr.size} value(s) given", path=path,
                                  fix="give one value per element (a scalar input takes one)")
        model.graph.initializer.append(numpy_helper.from_array(arr.reshape(dims), name))
        model.graph.input.remove(inputs[name])


def _fix_input_dims(model, path: Path, input_shapes: list | None) -> None:
    """Give every graph input static dimensions before shape inference: the batch 1, the others from
    ``input_shapes`` (which must agree with the dimensions the file fixes)."""
    init = {t.name for t in model.graph.initializer}
    ins = [i for i in model.graph.input if i.name not in init]
    if input_shapes is not None and len(input_shapes) > len(ins):
        raise ConfigError(f"{len(input_shapes)} input shapes for a model with {len(ins)} input(s)", path=path,
                          fix="give one shape per model input")
    for k, i in enumerate(ins):
        dims = i.type.tensor_type.shape.dim
        name = _text(i.name)
        given = input_shapes[k] if input_shapes is not None and k < len(input_shapes) else None
        if given is not None and not dims and tuple(given) == ():
            continue  # a scalar input
        if given is not None:
            given = [int(v) for v in given]
            if len(given) != len(dims) - 1 or min(given, default=1) <= 0:
                raise ConfigError(f"input '{name}' has {len(dims)} dimensions (batch first); the input shape "
                                  f"{given} does not give the {len(dims) - 1} after the batch", path=path,
                                  fix="give the size without the batch, in the model's own layout")
            for j, (d, v) in enumerate(zip(dims[1:], given), 1):
                if d.HasField("dim_value") and d.dim_value > 0 and d.dim_value != v:
                    raise ConfigError(f"input '{name}' fixes dimension {j} at {d.dim_value}, the input shape "
                                      f"says {v}", path=path, fix="give the size the model declares there")
                d.dim_value = v
        for j, d in enumerate(dims):
            if d.HasField("dim_value") and d.dim_value > 0:
                continue
            if j == 0:
                d.dim_value = 1  # dynamic batch
                continue
            own = ",".join(str(x.dim_value) if x.dim_value > 0 else "?" for x in dims[1:])
            raise ModelFormatError(f"input '{name}' has a dynamic dimension {j} ('{_text(d.dim_param)}')",
                                   path=path,
                                   fix=f"give its size: --input-shape with every size after the batch "
                                   f"in the model's own layout ({own}); Python: input_shape=(...)")


# -- conversion ---------------------------------------------------------------------------------------

def _text(s) -> str:
    """A protobuf string field as text (a corrupt file can hold invalid UTF-8, which arrives as bytes)."""
    return s.decode("utf-8", "replace") if isinstance(s, bytes) else str(s)


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


class _OnnxConverter:
    def __init__(self, model, path: Path, opaque: bool = False):
        from onnx import numpy_helper

        self.model = model
        self.path = path
        self.opaque = opaque
        self.b = NchwBuilder(model.graph.name or path.stem, str(path), "onnx")
        self.consts: dict[str, np.ndarray] = {}
        for init in model.graph.initializer:
            try:
                self.consts[init.name] = numpy_helper.to_array(init)
            except (ValueError, TypeError) as e:
                raise ModelFormatError(f"initializer '{_text(init.name)}' cannot be read: {e}", path=path,
                                       fix="export the model to ONNX again; the file is corrupt") from None
        self.env: dict[str, Val] = {}
        self.uses: dict[str, int] = {}
        for n in model.graph.node:
            for t in n.input:
                self.uses[t] = self.uses.get(t, 0) + 1
        self.outputs = {o.name for o in model.graph.output}
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
        self.inferred = {vi.name: vi for vi in (*model.graph.value_info, *model.graph.output)}

    # -- inputs and outputs
    def _inputs(self):
        ins = [i for i in self.model.graph.input if i.name not in self.consts]
        if not ins:
            raise UnsupportedOpError("the model has no input", path=self.path,
                                     fix="export a model that takes at least one input tensor")
        for i in ins:  # several: recurrent state, side inputs
            self._input(i)

    def _input(self, i):
        dims = []
        for k, d in enumerate(i.type.tensor_type.shape.dim):
            if d.HasField("dim_value") and d.dim_value > 0:
                dims.append(d.dim_value)
            elif k == 0:
                dims.append(1)  # dynamic batch
            else:
                raise ModelFormatError(f"input '{i.name}' has a dynamic dimension {k} ('{d.dim_param}')",
                                       path=self.path, fix="export with a fixed input size")
        if int(np.prod(dims, dtype=np.float64)) > 1 << 28:
            raise ModelFormatError(f"input '{_text(i.name)}' of shape {dims} is implausibly large",
                                   path=self.path, fix="export the model with its real input size")
        consumers = [n for n in self.model.graph.node if i.name in n.input]
        nhwc = len(dims) == 4 and consumers and all(
            n.op_type == "Transpose" and list(_attrs(n).get("perm", [])) == [0, 3, 1, 2] for n in consumers)
        # a (N, T, features) sequence read only by recurrent layers (torch.onnx puts a time-major Transpose
        # before them) is no (N, C, L) map: kept in its own order, it reaches the layer without a TRANSPOSE
        sequence = len(dims) == 3 and consumers and all(
            n.op_type in ("LSTM", "GRU") and n.input[0] == i.name or
            n.op_type == "Transpose" and list(_attrs(n).get("perm", [])) == [1, 0, 2] for n in consumers)
        nhwc = nhwc or sequence
        self.b.where = f"input '{i.name}'"
        # a leading axis that is not a batch of one (a recurrent state [2, batch, 128]) is kept whole; an
        # image's fixed batch is taken as one image at a time, as before
        lead = "ordered" if dims[0] != 1 and len(dims) != 4 else None
        self.env[i.name] = self.b.input(_text(i.name), tuple(dims), "plain" if nhwc else lead)

    def run(self) -> Graph:
        self._inputs()
        self._nodes(self.model.graph.node, "")
        outs = []
        for o in self.model.graph.output:
            if o.name not in self.env:
                raise UnsupportedOpError(f"output '{o.name}' is a constant, not computed from the input",
                                         path=self.path,
                                         fix="export a model whose outputs depend on its input")
            outs.append(self.env[o.name])
        self.b.where = "outputs"
        return self.b.finish(outs)

    def _nodes(self, nodes, scope: str) -> None:
        """Convert ``nodes`` in order (``scope`` names the inlined If branch in messages)."""
        for k, node in enumerate(nodes):
            label = _text(node.name or (node.output[0] if node.output else f"#{k}"))
            self.b.where = f"{scope}node {k} '{label}' ({node.op_type})"
            try:
                if node.op_type in _FOLDABLE and all(not t or t in self.consts or
                                                     (node.op_type in ("Shape", "Size") and t in self.env)
                                                     for t in node.input):
                    self.consts[node.output[0]] = self._fold(node)
                    continue
                if node.op_type == "If":
                    self._inline_if(node, label)
                    continue
                if node.domain not in ("", "ai.onnx"):
                    out = self._opaque(node, label,
                                       f"operator {node.domain}.{node.op_type} from a custom domain")
                else:
                    out = self._convert(node, label.replace("/", "_").strip("_") or f"node{k}")
            except (IndexError, KeyError, ValueError, TypeError, ArithmeticError) as e:
                # the checker passed, but attribute values or operand shapes do not fit the operator
                raise ModelFormatError(f"malformed operator ({type(e).__name__}: {e})", path=self.path,
                                       where=self.b.where, fix="export the model to ONNX again") from None
            out = self.b.settle(out)
            if isinstance(out, (list, tuple)):  # several outputs
                self.env.update({o: v for o, v in zip(node.output, out) if o})
            else:
                self.env[node.output[0]] = out

    def _inline_if(self, node, label: str) -> None:
        """An If whose condition folds to a constant is the branch it takes (exporters emit them for shape
        checks); one that depends on the input is refused."""
        from onnx import numpy_helper

        if node.input[0] not in self.consts:
            self.b.unsupported("an If whose condition is computed from the input at run time",
                               "export the model for one fixed branch (e.g. one sample rate)")
        a = _attrs(node)
        branch = (a["then_branch"] if bool(np.asarray(self.consts[node.input[0]]).ravel()[0])
                  else a["else_branch"])
        for init in branch.initializer:
            self.consts[init.name] = numpy_helper.to_array(init)
        self.inferred.update({vi.name: vi for vi in (*branch.value_info, *branch.output)})
        for n in branch.node:
            for t in n.input:
                self.uses[t] = self.uses.get(t, 0) + 1
        self._nodes(branch.node, f"If '{label}' branch {branch.name or ''}: ")
        for out, inner in zip(node.output, branch.output):
            if inner.name in self.env:
                self.env[out] = self.env[inner.name]
            elif inner.name in self.consts:
                self.consts[out] = self.consts[inner.name]
            else:
                raise ModelFormatError(f"If branch output '{inner.name}' is never computed", path=self.path,
                                       where=self.b.where, fix="export the model to ONNX again")

    def _opaque(self, node, label: str, what: str):
        """An ONNX operator tinyopt does not convert: refused, or (``opaque``) kept with ONNX's inferred
        output shapes so that analysis counts everything else."""
        if not self.opaque:
            return self.b.unsupported(what)
        vals = [self.env[t] for t in node.input if t in self.env]
        like = vals[0] if vals else None
        shapes = []
        for o in node.output:
            vi = self.inferred.get(o)
            dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1
                    for d in vi.type.tensor_type.shape.dim] if vi is not None else None
            if dims is None:
                return self.b.unsupported(f"{what} (and ONNX cannot infer its output shape)")
            shapes.append(tuple(dims))
        name = f"{node.domain + '.' if node.domain not in ('', 'ai.onnx') else ''}{node.op_type}"
        outs = self.b.opaque(label.replace("/", "_").strip("_") or name, f"onnx:{name}",
                             [v.name for v in vals], shapes, like.layout if like is not None else "plain")
        return outs if len(outs) > 1 else outs[0]

    def const(self, name: str, what: str) -> np.ndarray:
        if name not in self.consts:
            self.b.unsupported(f"{what} '{name}' is computed at run time, not a constant",
                               "export with constant folding (do_constant_folding=True)")
        return self.consts[name]

    def val(self, name: str) -> Val:
        if name not in self.env:
            raise ModelFormatError(f"input '{name}' is neither produced by an earlier "
                                   "node nor an initializer",
                                   path=self.path, where=self.b.where, fix="export the model to ONNX again")
        return self.env[name]

    # -- constant folding (numpy, on shapes and small arrays)
    def _fold(self, node) -> np.ndarray:  # noqa: C901 - one branch per foldable ONNX operator (_FOLDABLE)
        from onnx import helper, numpy_helper

        a = _attrs(node)
        # every named input is a constant here (``_nodes`` folds only then); None marks an absent optional
        # one (or Shape/Size's computed input), which each branch checks before using
        c: list[Any] = [self.consts.get(t) if t else None for t in node.input]
        op = node.op_type
        if op == "Constant":
            if "value" in a:
                return numpy_helper.to_array(a["value"])
            for k in ("value_float", "value_int", "value_floats", "value_ints"):
                if k in a:
                    return np.array(a[k], dtype=np.float32 if "float" in k else np.int64)
            self.b.unsupported("a Constant without a dense value")
        if op == "ConstantOfShape":
            v = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
            shape = tuple(int(d) for d in np.asarray(c[0]).ravel())
            self._check_fold_size(int(np.prod(shape, dtype=np.float64)) if shape else 1)
            return np.full(shape, v.reshape(-1)[0], dtype=v.dtype)
        if op == "Shape":
            dims = np.array(self.env[node.input[0]].shape if node.input[0] in self.env else c[0].shape,
                            np.int64)
            return dims[a.get("start", 0):a.get("end", None)]
        if op == "Size":
            shape = self.env[node.input[0]].shape if node.input[0] in self.env else c[0].shape
            return np.array(int(np.prod(shape, dtype=np.int64)), np.int64)
        if op == "Gather":
            return np.take(c[0], c[1], axis=a.get("axis", 0))
        if op in ("Unsqueeze", "Squeeze"):
            return c[0].reshape(self.squeezed(op, c[0].shape, a, c))
        if op == "Concat":
            return np.concatenate([np.atleast_1d(x) for x in c], axis=a.get("axis", 0))
        if op == "Reshape":
            return c[0].reshape(self.target_shape(c[0].shape, c[1], a.get("allowzero", 0)))
        if op == "Flatten":
            ax = a.get("axis", 1)
            return c[0].reshape(int(np.prod(c[0].shape[:ax])), -1)
        if op == "Slice":
            starts, ends = c[1], c[2]
            axes = c[3] if len(c) > 3 and c[3] is not None else np.arange(len(starts))
            steps = c[4] if len(c) > 4 and c[4] is not None else np.ones(len(starts), np.int64)
            sl = [slice(None)] * c[0].ndim
            for s, e, ax, st in zip(starts, ends, axes, steps):
                sl[int(ax)] = slice(int(s), int(max(min(e, 2**62), -2**62)), int(st))
            return c[0][tuple(sl)]
        if op == "Transpose":
            return np.transpose(c[0], a.get("perm"))
        if op == "Cast":
            return c[0].astype(helper.tensor_dtype_to_np_dtype(a["to"]))
        if op in ("Add", "Sub", "Mul", "Div"):
            f = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}.get(op)
            if f is None:
                f = np.floor_divide if c[0].dtype.kind in "iu" else np.divide
            return f(c[0], c[1]).astype(np.result_type(c[0], c[1]))
        if op in _FOLD_NUMPY:
            return np.asarray(_FOLD_NUMPY[op](*c))
        if op in ("Min", "Max"):
            f = np.minimum if op == "Min" else np.maximum
            out = c[0]
            for v in c[1:]:
                out = f(out, v)
            return np.asarray(out)
        if op == "ReduceProd":
            axes = a.get("axes")
            return np.prod(c[0], axis=None if axes is None else tuple(axes),
                           keepdims=bool(a.get("keepdims", 1)))
        if op == "Expand":  # a constant broadcast both ways (exporters size their chunks with one)
            shape = np.broadcast_shapes(c[0].shape, tuple(int(d) for d in np.asarray(c[1]).ravel()))
            self._check_fold_size(int(np.prod(shape, dtype=np.float64)))
            return np.broadcast_to(c[0], shape).copy()
        if op == "Range":
            start, limit, delta = (np.asarray(v).item() for v in c[:3])
            self._check_fold_size(int(np.ceil((limit - start) / delta)) if delta else 2**63)
            return np.arange(start, limit, delta, dtype=np.asarray(c[0]).dtype)
        return c[0]  # Identity

    def _check_fold_size(self, n: int) -> None:
        """Shape arithmetic is small; a huge constant means a corrupt (or hostile) file, not a model."""
        if n > FOLD_LIMIT or n < 0:
            raise ModelFormatError(f"a folded constant of {n} elements exceeds the {FOLD_LIMIT} limit",
                                   path=self.path, where=self.b.where, fix="export the model to ONNX again")

    def squeezed(self, op: str, shape, a: dict, c: list) -> tuple[int, ...]:
        """Output shape of Squeeze / Unsqueeze (axes: attribute before opset 13, input after)."""
        axes = a.get("axes") if self.opset < 13 else (c[1].tolist() if len(c) > 1 and c[1] is not None
                                                      else None)
        if op == "Squeeze":
            rank = len(shape)
            drop = {i for i, d in enumerate(shape)
                    if d == 1} if axes is None else {int(x) % rank for x in axes}
            return tuple(d for i, d in enumerate(shape) if i not in drop)
        if axes is None:
            self.b.unsupported("Unsqueeze without axes")
        out = list(shape)
        for ax in sorted(int(x) % (len(shape) + len(axes)) for x in axes):
            out.insert(ax, 1)
        return tuple(out)

    def target_shape(self, in_shape, shape, allowzero) -> tuple[int, ...]:
        shape = [int(s) for s in np.asarray(shape).ravel()]
        if not allowzero:
            shape = [in_shape[i] if s == 0 and i < len(in_shape) else s for i, s in enumerate(shape)]
        if -1 in shape:
            known = int(np.prod([s for s in shape if s != -1]))
            shape[shape.index(-1)] = int(np.prod(in_shape)) // max(known, 1)
        return tuple(shape)

    # -- operators
    def _convert(self, node, name: str) -> Val:
        a, op = _attrs(node), node.op_type
        ins = list(node.input)
        if op in ONNX_PASS_THROUGH:
            if op == "Dropout" and len(node.output) > 1 and self.uses.get(node.output[1]):
                self.b.unsupported("a Dropout whose mask output is used")
            return self.val(ins[0])
        if op == "Cast":  # graph activations are float: a cast to float computes its input
            from onnx import TensorProto

            if a.get("to") in (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16):
                return self.val(ins[0])
            self.b.unsupported(f"a Cast of an activation to element type {a.get('to')}",
                               "cast activations to float only (integer activations are made by convert)")
        if op == "Transpose":
            x = self.val(ins[0])
            view = layout_view(x, [int(p) for p in a.get("perm", [])])
            if view is not None:
                return view
        rec = ops.doors().onnx.get(op)
        if rec is None:
            return self._opaque(node, name, f"ONNX operator {op} is not supported")
        return rec.from_onnx(self, node, name, a, ins)

    def fail(self, msg: str, fix: str) -> NoReturn:
        raise ModelFormatError(msg, path=self.path, where=self.b.where, fix=fix)

    def pads(self, a, x: Val, kernel, strides, dil, k) -> tuple[int, int, int, int]:
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            per = []
            for size, kk, s, d in zip(x.shape[2:], kernel, strides, dil):
                out = -(-size // s)
                total = max((out - 1) * s + (kk - 1) * d + 1 - size, 0)
                small, big = total // 2, total - total // 2
                per.append((small, big) if auto == "SAME_UPPER" else (big, small))
            return (0, 0, *per[0]) if k == 1 else (*per[0], *per[1])
        if auto == "VALID":
            return (0, 0, 0, 0)
        p = list(a.get("pads", [0] * 2 * k))
        return (0, 0, p[0], p[1]) if k == 1 else (p[0], p[2], p[1], p[3])

    def bias_slot(self, x: Val, c: np.ndarray) -> bool:
        """Make ``c`` the bias of the FULLY_CONNECTED producing ``x`` if it has none and no other reader."""
        node = next((n for n in self.b.g.nodes if x.name in n.outputs), None)
        from tinyopt.ops.fully_connected import FullyConnected

        if node is None or node.op != FullyConnected.name or (len(node.inputs) > 2 and node.inputs[2]):
            return False
        names = [k for k, v in self.env.items() if v is x]  # the MatMul output and its Identity aliases
        if sum(self.uses.get(k, 0) for k in names) != 1 or set(names) & self.outputs:
            return False
        node.inputs = [node.inputs[0], node.inputs[1], self.b.const(f"{node.name}/bias", c.ravel())]
        return True
