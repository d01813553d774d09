"""A point of the search space → an architecture spec the analyzer can judge before any training."""

from __future__ import annotations


def hidden_widths(params: dict) -> list[int]:
    """Conv filters per block after structured pruning keeps ``1 - prune`` of each layer."""
    keep = 1.0 - float(params.get("prune", 0.0))
    width, depth = int(params.get("width", 8)), int(params.get("depth", 2))
    return [max(1, round(width * 2**i * keep)) for i in range(depth)]


def candidate_spec(params: dict, input_shape: tuple[int, ...], num_classes: int, name: str = "candidate") -> dict:
    """YAML-spec dict (see ``tinyopt.graph.spec``) of the pruned candidate.

    Image inputs (H, W, C) get ``depth`` blocks of conv (same padding, ReLU) + 2×2 max-pool while the
    map is at least 4 pixels wide; vector inputs get ``depth`` dense layers. Then an optional dense
    layer and the classifier.
    """
    keep = 1.0 - float(params.get("prune", 0.0))
    layers: list[dict] = []
    if len(input_shape) == 3:
        side = min(input_shape[:2])
        k = int(params.get("kernel", 3))
        for f in hidden_widths(params):
            layers.append({"type": "conv2d", "filters": f, "kernel": k, "padding": "same", "activation": "relu"})
            if side >= 4:
                layers.append({"type": "maxpool2d", "pool": 2})
                side //= 2
        layers.append({"type": "flatten"})
    else:
        for f in hidden_widths(params):
            layers.append({"type": "dense", "units": 4 * f, "activation": "relu"})
    dense = int(params.get("dense", 0))
    if dense:
        layers.append({"type": "dense", "units": max(1, round(dense * keep)), "activation": "relu"})
    layers.append({"type": "dense", "units": num_classes, "activation": "softmax"})
    return {"name": name, "input": list(input_shape), "layers": layers}
