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
from typing import NoReturn

from tinyopt import ops
from tinyopt._suggest import did_you_mean
from tinyopt._yaml import load_yaml_file
from tinyopt.errors import ConfigError, UnsupportedOpError
from tinyopt.graph.ir import Graph, Tensor
from tinyopt.graph.shapes import infer_node

_COMMON = {"type", "name", "activation", "from"}
_PASS_THROUGH = {"dropout": {"rate"}}  # identity at inference: no node
_NO_ACTIVATION = ("none", "linear", None)


def layer_keys() -> dict[str, set[str]]:
    """YAML layer type → its keys, from the operator records (plus the pass-through layers)."""
    keys = {kind: set(rec.spec_layers[kind]) for kind, rec in ops.doors().spec_layers.items()}
    return {**keys, **_PASS_THROUGH}


def _aliases() -> dict[str, str]:
    return {a: kind for rec in ops.records() for a, kind in rec.spec_aliases.items()}


def _fusable() -> dict:
    """YAML ``activation:`` values fused into the layer: none, and the layer types of fusable activations."""
    fused = {kind: r.fusable_as for r in ops.records() if r.fusable_as for kind in r.spec_layers}
    return {**dict.fromkeys(_NO_ACTIVATION, "NONE"), **fused}


def _separate_activations() -> dict[str, ops.Op]:
    """YAML ``activation:`` values that append their own layer (softmax, sigmoid, tanh)."""
    return {r.spec_activation: r for r in ops.records() if r.spec_activation}


def _pair(value, key, loc, path):
    if isinstance(value, bool) or value is None:
        raise ConfigError(f"'{key}' must be a positive integer or a pair, got {value!r}", path=path,
                          where=loc, fix=f"write e.g. '{key}: 3' or '{key}: [3, 3]'")
    if isinstance(value, int):
        value = (value, value)
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise ConfigError(f"'{key}' must be a positive integer or a pair, got {value!r}", path=path,
                          where=loc, fix=f"write e.g. '{key}: 3' or '{key}: [3, 3]'")
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
        raise ConfigError(f"'{key}' is {v}, larger than {MAX_SIZE}", path=path, where=loc,
                          fix=f"use a real {key}")
    return v


def load_spec(path: str | os.PathLike, input_shape: tuple[int, ...] | None = None) -> Graph:
    doc = load_yaml_file(path)
    return spec_to_graph(doc, str(path), input_shape)


def _input_shape(shape, path: str) -> tuple[int, ...]:
    """The spec's ``input`` (H, W, C or N), checked."""
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
    return tuple(shape)


def spec_to_graph(doc: dict, path: str = "<spec>", input_shape: tuple[int, ...] | None = None) -> Graph:
    unknown = set(doc) - {"name", "input", "layers", "dtype"}
    if unknown:
        key = sorted(unknown, key=str)[0]  # YAML keys may be numbers or null: compare and match as text
        near = did_you_mean(key, ["name", "input", "layers", "dtype"], cutoff=0.6)
        raise ConfigError(f"unknown top-level key '{key}'", path=path,
                          fix=f"did you mean '{near[0]}'?" if near else "allowed keys: name, input, layers")
    shape = _input_shape(input_shape or doc.get("input"), path)
    layers = doc.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ConfigError("'layers' must be a non-empty list", path=path,
                          fix="list the layers under 'layers:'")
    dtype = doc.get("dtype", "float32")

    g = Graph(str(doc.get("name", "model")), source=path)
    cur = g.add_tensor(Tensor("input", (1, *shape), dtype)).name
    g.inputs = [cur]
    sb = SpecBuilder(g, path, dtype)
    keys, aliases, separate, fusable = layer_keys(), _aliases(), _separate_activations(), _fusable()
    table = ops.doors().spec_layers

    for i, layer in enumerate(layers):
        if not isinstance(layer, dict):
            raise ConfigError(f"layer {i} is not a mapping", path=path, where=f"layer {i}",
                              fix="write each layer as {type: ..., ...}")
        raw_type = str(layer.get("type", "")).lower()
        kind = aliases.get(raw_type, raw_type)
        lname = str(layer.get("name", f"{kind}_{i}"))
        loc = sb.loc = f"layer {i} '{lname}'"
        if kind not in keys:
            near = did_you_mean(raw_type, list(keys), cutoff=0.6)
            hint = f"did you mean '{near[0]}'? " if near else ""
            raise UnsupportedOpError(f"unknown layer type '{layer.get('type')}'", path=path, where=loc,
                                     fix=f"{hint}supported types: {', '.join(keys)}")
        extra = set(layer) - keys[kind] - _COMMON
        if extra:
            key = sorted(extra, key=str)[0]
            near = did_you_mean(key, sorted(keys[kind] | _COMMON), cutoff=0.6)
            raise ConfigError(f"unknown key '{key}' for a {kind} layer", path=path, where=loc,
                              fix=f"did you mean '{near[0]}'?" if near else
                              f"allowed keys: {', '.join(sorted(keys[kind] | _COMMON))}")
        act = layer.get("activation")
        act = act.lower() if isinstance(act, str) else act
        if act not in fusable and act not in separate:
            raise ConfigError(f"unknown activation {act!r}", path=path, where=loc,
                              fix=f"use {', '.join(a for a in fusable if a not in _NO_ACTIVATION)}, "
                                  f"{', '.join(separate)} or none")
        fused = fusable.get(act, "NONE")
        if "from" not in keys[kind] and "from" in layer:
            ref = layer["from"]  # branch: this layer reads an earlier one
            if not isinstance(ref, str) or ref not in sb.named:
                raise ConfigError(f"'from: {ref}' names no earlier layer", path=path, where=loc,
                                  fix=f"known layers: {', '.join(sb.named) or 'none'}")
            cur = sb.named[ref]
        if kind in _PASS_THROUGH:
            sb.named[lname] = cur
            continue
        node = table[kind].from_spec(sb, kind, layer, g.tensors[cur], lname, fused)
        g.add_node(node)
        infer_node(g, node, index=i)
        cur = node.outputs[0]
        if act in separate:
            sep = separate[act].from_spec(sb, act, {}, g.tensors[cur], f"{lname}/{act}", "NONE")
            g.add_node(sep)
            infer_node(g, sep, index=i)
            cur = sep.outputs[0]
        sb.named[lname] = cur
    g.outputs = [cur]
    return g.validate()


class SpecBuilder:
    """What a record's ``from_spec`` builds a layer with: checked values, constants without data, errors
    that name the spec file and the layer."""

    def __init__(self, g: Graph, path: str, dtype: str):
        self.g, self.path, self.dtype = g, path, dtype
        self.loc = ""
        self.named: dict[str, str] = {}  # layer name → its output tensor

    def fail(self, msg: str, fix: str) -> NoReturn:
        raise ConfigError(msg, path=self.path, where=self.loc, fix=fix)

    def pair(self, value, key: str) -> tuple[int, int]:
        return _pair(value, key, self.loc, self.path)

    def padding(self, layer: dict) -> str:
        return _padding(layer, self.loc, self.path)

    def positive_int(self, layer: dict, key: str, default=None) -> int:
        return _positive_int(layer, key, self.loc, self.path, default)

    def const(self, name: str, shape) -> str:
        return self.g.add_tensor(Tensor(self.g.unique_name(name), tuple(shape), self.dtype,
                                        constant=True)).name

    def out(self, name: str) -> str:
        return self.g.add_tensor(Tensor(self.g.unique_name(name), (1,), self.dtype)).name

    def sources(self, layer: dict) -> list[str]:
        """The tensors named by ``from:`` (a join: add, concat)."""
        refs = layer.get("from")
        refs = [refs] if isinstance(refs, str) else refs
        if not refs or not isinstance(refs, list):
            self.fail(f"{layer.get('type')} needs 'from: <layer name>'",
                      "name the earlier layer whose output joins this one")
        for r in refs:
            if r not in self.named:
                self.fail(f"'from: {r}' names no earlier layer",
                          f"known layers: {', '.join(self.named) or 'none'}")
        return [self.named[r] for r in refs]


def _padding(layer, loc, path):
    p = str(layer.get("padding", "valid")).upper()
    if p not in ("SAME", "VALID"):
        raise ConfigError(f"padding must be 'same' or 'valid', got {layer.get('padding')!r}", path=path,
                          where=loc, fix="write 'padding: same' or 'padding: valid'")
    return p
