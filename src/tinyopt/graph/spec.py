"""YAML architecture spec → Graph (shapes and parameter counts, no weights).

```yaml
name: exam
input: [128, 128, 1]        # H, W, C (or [N] for a vector); batch omitted
layers:
  - {type: conv2d, filters: 16, kernel: 3, activation: relu}   # stride 1, padding valid by default
  - {type: maxpool2d, pool: 2}
  - {type: dense, units: 3, activation: softmax}
```
"""

from __future__ import annotations

import os

from tinyopt._suggest import did_you_mean
from tinyopt._yaml import load_yaml_file
from tinyopt.errors import ConfigError, UnsupportedOpError
from tinyopt.graph.ir import Graph, Node, Tensor
from tinyopt.graph.shapes import infer_node

_COMMON = {"type", "name", "activation", "from"}
LAYER_KEYS: dict[str, set[str]] = {
    "conv2d": {"filters", "kernel", "stride", "padding", "dilation", "use_bias"},
    "depthwise_conv2d": {"kernel", "stride", "padding", "dilation", "depth_multiplier", "use_bias"},
    "dense": {"units", "use_bias"},
    "maxpool2d": {"pool", "stride", "padding"},
    "avgpool2d": {"pool", "stride", "padding"},
    "global_avgpool": set(),
    "flatten": set(),
    "batchnorm": {"epsilon"},
    "relu": set(), "relu6": set(), "softmax": set(), "sigmoid": set(), "tanh": set(),
    "dropout": {"rate"},
    "add": {"from"},
    "concat": {"from", "axis"},
}
_ALIASES = {"conv": "conv2d", "depthwise": "depthwise_conv2d", "dwconv2d": "depthwise_conv2d",
            "linear": "dense", "fc": "dense", "maxpool": "maxpool2d", "avgpool": "avgpool2d",
            "global_average_pooling": "global_avgpool", "gap": "global_avgpool", "bn": "batchnorm",
            "batch_norm": "batchnorm", "concatenate": "concat", "logistic": "sigmoid"}
_FUSABLE = {"none": "NONE", "linear": "NONE", None: "NONE", "relu": "RELU", "relu6": "RELU6"}
_SEPARATE = {"softmax": "SOFTMAX", "sigmoid": "LOGISTIC", "tanh": "TANH"}


def _pair(value, key, loc, path):
    if isinstance(value, bool) or value is None:
        raise ConfigError(f"'{key}' must be a positive integer or a pair, got {value!r}", path=path, where=loc,
                          fix=f"write e.g. '{key}: 3' or '{key}: [3, 3]'")
    if isinstance(value, int):
        value = (value, value)
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise ConfigError(f"'{key}' must be a positive integer or a pair, got {value!r}", path=path, where=loc,
                          fix=f"write e.g. '{key}: 3' or '{key}: [3, 3]'")
    if min(value) <= 0:
        raise ConfigError(f"'{key}' must be positive, got {value!r}", path=path, where=loc,
                          fix=f"use a {key} of at least 1")
    return tuple(value)


MAX_SIZE = 1 << 24  # any one dimension, filter count or kernel size; far above microcontroller models


def _positive_int(layer, key, loc, path, default=None):
    v = layer.get(key, default)
    if v is None:
        raise ConfigError(f"missing '{key}'", path=path, where=loc, fix=f"add '{key}: <positive integer>'")
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise ConfigError(f"'{key}' must be a positive integer, got {v!r}", path=path, where=loc,
                          fix=f"use a {key} of at least 1")
    if v > MAX_SIZE:
        raise ConfigError(f"'{key}' is {v}, larger than {MAX_SIZE}", path=path, where=loc, fix=f"use a real {key}")
    return v


def load_spec(path: str | os.PathLike, input_shape: tuple[int, ...] | None = None) -> Graph:
    doc = load_yaml_file(path)
    return spec_to_graph(doc, str(path), input_shape)


def spec_to_graph(doc: dict, path: str = "<spec>", input_shape: tuple[int, ...] | None = None) -> Graph:
    unknown = set(doc) - {"name", "input", "layers", "dtype"}
    if unknown:
        key = sorted(unknown, key=str)[0]  # YAML keys may be numbers or null: compare and match as text
        near = did_you_mean(key, ["name", "input", "layers", "dtype"], cutoff=0.6)
        raise ConfigError(f"unknown top-level key '{key}'", path=path,
                          fix=f"did you mean '{near[0]}'?" if near else "allowed keys: name, input, layers")
    shape = input_shape or doc.get("input")
    if shape is None:
        raise ConfigError("missing 'input'", path=path, fix="add 'input: [H, W, C]' (or [N] for a vector)")
    if (not isinstance(shape, (list, tuple)) or not shape or len(shape) > 3
            or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape)):
        raise ConfigError(f"'input' must be a list of 1 to 3 integers, got {shape!r}", path=path,
                          fix="write 'input: [H, W, C]' (or [N] for a vector)")
    if min(shape) <= 0:
        raise ConfigError(f"'input' has a non-positive size {list(shape)}", path=path,
                          fix="give every input dimension a positive size")
    if max(shape) > MAX_SIZE:  # numpy's int64 shape arithmetic would overflow long before memory runs out
        raise ConfigError(f"'input' dimension {max(shape)} is larger than {MAX_SIZE}", path=path,
                          fix="give the real input size")
    layers = doc.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ConfigError("'layers' must be a non-empty list", path=path, fix="list the layers under 'layers:'")
    dtype = doc.get("dtype", "float32")

    g = Graph(str(doc.get("name", "model")), source=path)
    cur = g.add_tensor(Tensor("input", (1, *shape), dtype)).name
    g.inputs = [cur]
    named: dict[str, str] = {}

    def const(name, shp):
        return g.add_tensor(Tensor(g.unique_name(name), shp, dtype, constant=True)).name

    def act_out(name):
        return g.add_tensor(Tensor(g.unique_name(name), (1,), dtype)).name

    for i, layer in enumerate(layers):
        if not isinstance(layer, dict):
            raise ConfigError(f"layer {i} is not a mapping", path=path, where=f"layer {i}",
                              fix="write each layer as {type: ..., ...}")
        raw_type = str(layer.get("type", "")).lower()
        kind = _ALIASES.get(raw_type, raw_type)
        lname = str(layer.get("name", f"{kind}_{i}"))
        loc = f"layer {i} '{lname}'"
        if kind not in LAYER_KEYS:
            near = did_you_mean(raw_type, LAYER_KEYS, cutoff=0.6)
            hint = f"did you mean '{near[0]}'? " if near else ""
            raise UnsupportedOpError(f"unknown layer type '{layer.get('type')}'", path=path, where=loc,
                                     fix=f"{hint}supported types: {', '.join(LAYER_KEYS)}")
        extra = set(layer) - LAYER_KEYS[kind] - _COMMON
        if extra:
            key = sorted(extra, key=str)[0]
            near = did_you_mean(key, sorted(LAYER_KEYS[kind] | _COMMON), cutoff=0.6)
            raise ConfigError(f"unknown key '{key}' for a {kind} layer", path=path, where=loc,
                              fix=f"did you mean '{near[0]}'?" if near else
                              f"allowed keys: {', '.join(sorted(LAYER_KEYS[kind] | _COMMON))}")
        act = layer.get("activation")
        act = act.lower() if isinstance(act, str) else act
        if act not in _FUSABLE and act not in _SEPARATE:
            raise ConfigError(f"unknown activation {act!r}", path=path, where=loc,
                              fix="use relu, relu6, softmax, sigmoid, tanh or none")
        fused = _FUSABLE.get(act, "NONE")
        if kind not in ("add", "concat") and "from" in layer:  # branch: this layer reads an earlier one
            ref = layer["from"]
            if not isinstance(ref, str) or ref not in named:
                raise ConfigError(f"'from: {ref}' names no earlier layer", path=path, where=loc,
                                  fix=f"known layers: {', '.join(named) or 'none'}")
            cur = named[ref]
        x = g.tensors[cur]
        out = act_out(lname)
        node: Node
        if kind in ("conv2d", "depthwise_conv2d"):
            if len(x.shape) != 4:
                raise ConfigError(f"{kind} needs an H×W×C input, got {list(x.shape[1:])}", path=path, where=loc,
                                  fix="give 'input' as [H, W, C] or remove the flatten before it")
            kh, kw = _pair(layer.get("kernel"), "kernel", loc, path)
            attrs = {"stride": _pair(layer.get("stride", 1), "stride", loc, path),
                     "dilation": _pair(layer.get("dilation", 1), "dilation", loc, path),
                     "padding": _padding(layer, loc, path), "activation": fused}
            cin = x.shape[3]
            if kind == "conv2d":
                cout = _positive_int(layer, "filters", loc, path)
                w = const(f"{lname}/weight", (cout, kh, kw, cin))
                op = "CONV_2D"
            else:
                m = _positive_int(layer, "depth_multiplier", loc, path, 1)
                cout = cin * m
                attrs["depth_multiplier"] = m
                w = const(f"{lname}/weight", (1, kh, kw, cout))
                op = "DEPTHWISE_CONV_2D"
            ins = [cur, w, const(f"{lname}/bias", (cout,)) if layer.get("use_bias", True) else ""]
            node = Node(lname, op, ins, [out], attrs)
        elif kind == "dense":
            units = _positive_int(layer, "units", loc, path)
            w = const(f"{lname}/weight", (units, x.shape[-1]))
            if len(x.shape) > 2:
                raise ConfigError(f"dense needs a flat input, got shape {list(x.shape[1:])}", path=path, where=loc,
                                  fix="add '{type: flatten}' or '{type: global_avgpool}' before it")
            ins = [cur, w, const(f"{lname}/bias", (units,)) if layer.get("use_bias", True) else ""]
            node = Node(lname, "FULLY_CONNECTED", ins, [out], {"activation": fused})
        elif kind in ("maxpool2d", "avgpool2d"):
            if len(x.shape) != 4:
                raise ConfigError(f"{kind} needs an H×W×C input", path=path, where=loc,
                                  fix="remove the flatten before it")
            pool = _pair(layer.get("pool", 2), "pool", loc, path)
            stride = _pair(layer.get("stride", pool), "stride", loc, path)
            op = "MAX_POOL_2D" if kind == "maxpool2d" else "AVERAGE_POOL_2D"
            node = Node(lname, op, [cur], [out], {"filter": pool, "stride": stride,
                                                  "padding": _padding(layer, loc, path), "activation": fused})
        elif kind == "global_avgpool":
            if len(x.shape) != 4:
                raise ConfigError("global_avgpool needs an H×W×C input", path=path, where=loc,
                                  fix="remove the flatten before it")
            node = Node(lname, "MEAN", [cur], [out], {"axes": (1, 2), "keep_dims": False})
        elif kind == "flatten":
            node = Node(lname, "RESHAPE", [cur], [out], {"new_shape": (1, x.size // x.shape[0])})
        elif kind == "batchnorm":
            c = x.shape[-1]
            ins = [cur] + [const(f"{lname}/{p}", (c,)) for p in ("gamma", "beta", "mean", "var")]
            node = Node(lname, "BATCH_NORM", ins, [out], {"epsilon": float(layer.get("epsilon", 1e-3))})
        elif kind in ("relu", "relu6", "softmax", "sigmoid", "tanh"):
            op = {"relu": "RELU", "relu6": "RELU6", "softmax": "SOFTMAX", "sigmoid": "LOGISTIC",
                  "tanh": "TANH"}[kind]
            node = Node(lname, op, [cur], [out], {"beta": 1.0} if op == "SOFTMAX" else {})
        elif kind == "dropout":
            g.tensors.pop(out)  # identity at inference: no node
            named[lname] = cur
            continue
        else:  # add / concat
            refs = layer.get("from")
            refs = [refs] if isinstance(refs, str) else refs
            if not refs or not isinstance(refs, list):
                raise ConfigError(f"{kind} needs 'from: <layer name>'", path=path, where=loc,
                                  fix="name the earlier layer whose output joins this one")
            srcs = []
            for r in refs:
                if r not in named:
                    raise ConfigError(f"'from: {r}' names no earlier layer", path=path, where=loc,
                                      fix=f"known layers: {', '.join(named) or 'none'}")
                srcs.append(named[r])
            if kind == "add":
                node = Node(lname, "ADD", [cur, srcs[0]], [out], {"activation": fused})
            else:
                node = Node(lname, "CONCATENATION", [cur, *srcs], [out],
                            {"axis": int(layer.get("axis", -1)), "activation": fused})
        g.add_node(node)
        infer_node(g, node, index=i)
        cur = out
        if act in _SEPARATE:
            out2 = act_out(f"{lname}/{act}")
            sep = Node(f"{lname}/{act}", _SEPARATE[act], [cur], [out2],
                       {"beta": 1.0} if act == "softmax" else {})
            g.add_node(sep)
            infer_node(g, sep, index=i)
            cur = out2
        named[lname] = cur
    g.outputs = [cur]
    return g.validate()


def _padding(layer, loc, path):
    p = str(layer.get("padding", "valid")).upper()
    if p not in ("SAME", "VALID"):
        raise ConfigError(f"padding must be 'same' or 'valid', got {layer.get('padding')!r}", path=path,
                          where=loc, fix="write 'padding: same' or 'padding: valid'")
    return p
