"""Graph → Graph rewrites that keep the float function the same (no torch here).

Each pass copies its input and returns a new validated Graph, so callers can compare before and after.
- ``fold_batchnorm``: BN after CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED folded into weight and bias;
- ``fuse_activations``: RELU / RELU6 after a layer that has a fused-activation slot moved into it;
- ``remove_identities``: RESHAPEs that keep the shape, all-zero PADs, one-input CONCATENATIONs,
  RESHAPE chains;
- ``fold_pad_into_conv``: zero PAD + VALID conv whose pads equal TFLite's SAME → one SAME conv.
Folding needs the weight values; on a spec graph (shapes only) it folds shapes and leaves data None.
"""

from __future__ import annotations

import numpy as np

from tinyopt import ops
from tinyopt.graph.ir import Graph, Node, Tensor
from tinyopt.graph.shapes import same_padding


def _single_private_consumer(g: Graph, tensor: str, consumers: dict[str, list[Node]]) -> Node | None:
    """The only consumer of ``tensor`` when nobody else (graph outputs included) sees it."""
    users = consumers.get(tensor, [])
    if len(users) != 1 or tensor in g.outputs:
        return None
    return users[0]


def _merge_forward(g: Graph, producer: Node, node: Node) -> None:
    """Drop ``node`` (a consumer of ``producer``'s only output) and let ``producer`` write its output."""
    old = producer.outputs[0]
    producer.outputs[0] = node.outputs[0]
    g.nodes.remove(node)
    del g.tensors[old]


def _bypass(g: Graph, node: Node) -> None:
    """Remove a node whose output equals its first input: consumers read the input instead."""
    src, dst = node.inputs[0], node.outputs[0]
    g.nodes.remove(node)
    if dst in g.outputs:
        producers = g.producers()
        p = producers.get(src)
        users = [n for n in g.nodes if src in n.inputs]
        if p is not None and not users and src not in g.outputs:  # rename to keep the output name
            p.outputs[p.outputs.index(src)] = dst
            del g.tensors[src]
            return
        g.outputs = [src if o == dst else o for o in g.outputs]
    for n in g.nodes:
        n.inputs = [src if t == dst else t for t in n.inputs]
    del g.tensors[dst]


def _drop_unused_constants(g: Graph) -> Graph:
    used = {t for n in g.nodes for t in n.inputs if t} | set(g.inputs) | set(g.outputs)
    for name in [n for n, t in g.tensors.items() if t.constant and n not in used]:
        del g.tensors[name]
    return g


def fold_batchnorm(graph: Graph) -> Graph:
    """Fold BATCH_NORM into the weighted layer that feeds it (conv, depthwise, dense: a record with a
    ``weight_axis`` and a ``bias_input``).

    With s = gamma / sqrt(var + eps): W' = W * s (per output channel), b' = (b - mean) * s + beta.
    Computed in float64 and stored as float32. A BN that follows anything else, or whose producer has
    a fused activation or other consumers, stays.
    """
    g = graph.copy()
    consumers = g.consumers()
    producers = g.producers()
    for bn in [n for n in g.nodes if ops.get(n.op).folds_into_weights]:
        p = producers.get(bn.inputs[0])
        if p is None:
            continue
        rec = ops.get(p.op)
        if (rec.weight_axis is None or rec.bias_input is None
                or p.attrs.get("activation", "NONE") != "NONE"
                or _single_private_consumer(g, bn.inputs[0], consumers) is not bn):
            continue
        gamma, beta, mean, var = (g.tensors[t] for t in bn.inputs[1:5])
        w = g.tensors[p.inputs[1]]
        bi = rec.bias_input  # 2 for most layers; a transposed convolution's bias is operand 3
        b = g.tensors[p.inputs[bi]] if len(p.inputs) > bi and p.inputs[bi] else None
        axis = rec.weight_axis
        cout = w.shape[axis]
        new_w = new_b = None
        gd, bed, md, vd, wd = (t.data for t in (gamma, beta, mean, var, w))
        bias = b.data if b is not None else np.zeros(cout)
        if gd is not None and bed is not None and md is not None and vd is not None and wd is not None \
                and bias is not None:  # otherwise only the shapes change
            s = gd.astype(np.float64) / np.sqrt(vd.astype(np.float64) + bn.attrs.get("epsilon", 1e-3))
            wd = wd.astype(np.float64) * s.reshape([-1 if k == axis else 1 for k in range(wd.ndim)])
            new_w = wd.astype(np.float32)
            new_b = ((bias.astype(np.float64) - md) * s + bed).astype(np.float32)  # float64 throughout
        w_name = g.unique_name(f"{p.name}/weight_folded")
        g.add_tensor(Tensor(w_name, w.shape, w.dtype, data=new_w, constant=True))
        b_name = g.unique_name(f"{p.name}/bias_folded")
        g.add_tensor(Tensor(b_name, (cout,), w.dtype, data=new_b, constant=True))
        p.inputs = [*p.inputs, *[""] * (bi + 1 - len(p.inputs))]
        p.inputs[1], p.inputs[bi] = w_name, b_name
        _merge_forward(g, p, bn)
        consumers = g.consumers()
        producers = g.producers()
    return _drop_unused_constants(g).validate()


def lower_unsupported(graph: Graph) -> Graph:
    """IR-only operators that conversion cannot keep (a BATCH_NORM no layer absorbed) replaced by their
    records' ``lower``: the same float function in TFLite operators."""
    g = graph.copy()
    out = []
    for n in g.nodes:
        rec = ops.get(n.op)
        new = rec.lower(g, n) if rec.builtin is None else None
        out.extend(new if new else [n])
    g.nodes = out
    return _drop_unused_constants(g).validate()


def fuse_activations(graph: Graph) -> Graph:
    """Move standalone activations that TFLite can fuse (RELU, RELU6: records with ``fusable_as``) into the
    ``activation`` attribute of the layer that produces their input (records with ``fused_activation``)."""
    g = graph.copy()
    for node in [n for n in g.nodes if ops.get(n.op).fusable_as]:
        producers, consumers = g.producers(), g.consumers()
        p = producers.get(node.inputs[0])
        if (p is None or not ops.get(p.op).fused_activation or p.attrs.get("activation", "NONE") != "NONE"
                or _single_private_consumer(g, node.inputs[0], consumers) is not node):
            continue
        p.attrs["activation"] = ops.get(node.op).fusable_as
        _merge_forward(g, p, node)
    return g.validate()


def remove_identities(graph: Graph) -> Graph:
    """Remove nodes that compute their input unchanged (each record's ``is_identity``: a RESHAPE that keeps
    the shape, an all-zero PAD, a one-input CONCATENATION) and collapse chains of aliasing ops (RESHAPE)."""
    g = graph.copy()
    changed = True
    while changed:
        changed = False
        producers, consumers = g.producers(), g.consumers()
        for n in g.nodes:
            out = g.tensors[n.outputs[0]]
            rec = ops.get(n.op)
            if rec.is_identity(g, n):
                _bypass(g, n)
                changed = True
                break
            p = producers.get(n.inputs[0]) if rec.aliases_input else None
            if p is not None and p.op == n.op and _single_private_consumer(g, p.outputs[0], consumers) is n:
                n.inputs[0] = p.inputs[0]
                if len(n.inputs) < 2 and "new_shape" not in n.attrs:
                    n.attrs["new_shape"] = out.shape
                g.nodes.remove(p)
                del g.tensors[p.outputs[0]]
                changed = True
                break
    return _drop_unused_constants(g).validate()


def fold_pad_into_conv(graph: Graph) -> Graph:
    """Zero PAD of H and W (a record's ``zero_pads``) feeding a VALID conv (``absorbs_pad``) → the conv with
    SAME padding, when TFLite's SAME pads are exactly those (the rest keep their PAD: SAME would pad
    differently)."""
    g = graph.copy()
    for pad in list(g.nodes):
        p = ops.get(pad.op).zero_pads(g, pad)
        if p is None:
            continue
        producers, consumers = g.producers(), g.consumers()
        conv = _single_private_consumer(g, pad.outputs[0], consumers)
        if (conv is None or not ops.get(conv.op).absorbs_pad or conv.inputs[0] != pad.outputs[0]
                or conv.attrs.get("padding") != "VALID" or p is None):
            continue
        x = g.tensors[pad.inputs[0]]
        if p.shape[0] != 4 or p[0].any() or p[3].any():
            continue
        _, kh, kw, _ = g.tensors[conv.inputs[1]].shape
        (sh, sw), (dh, dw) = conv.attrs.get("stride", (1, 1)), conv.attrs.get("dilation", (1, 1))
        h, w = x.shape[1:3]
        want = (same_padding(h, kh, sh, dh, -(-h // sh)), same_padding(w, kw, sw, dw, -(-w // sw)))
        if (tuple(p[1]), tuple(p[2])) != want:
            continue
        conv.inputs[0] = pad.inputs[0]
        conv.attrs["padding"] = "SAME"
        g.nodes.remove(pad)
        del g.tensors[pad.outputs[0]]
        del producers
    return _drop_unused_constants(g).validate()


__all__ = ["fold_batchnorm", "fold_pad_into_conv", "fuse_activations", "lower_unsupported",
           "remove_identities"]
