"""A point of the search space → an architecture spec the analyzer can judge before any training."""

from __future__ import annotations


def hidden_widths(params: dict) -> list[int]:
    """Conv filters per block after structured pruning keeps ``1 - prune`` of each layer."""
    keep = 1.0 - float(params.get("prune", 0.0))
    width, depth = int(params.get("width", 8)), int(params.get("depth", 2))
    return [max(1, round(width * 2**i * keep)) for i in range(depth)]


def candidate_spec(params: dict, input_shape: tuple[int, ...], num_classes: int,
                   name: str = "candidate") -> dict:
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
            layers.append({"type": "conv2d", "filters": f, "kernel": k, "padding": "same",
                           "activation": "relu"})
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


def candidate_model(params: dict, input_shape: tuple[int, ...], num_classes: int, prune: bool = True
                    ) -> tuple[str, dict]:
    """The zoo builder and arguments of the same network (``prune=False``: the full-width one that is
    trained before structured pruning)."""
    p = dict(params) if prune else {**params, "prune": 0.0}
    keep = 1.0 - float(p.get("prune", 0.0))
    dense = int(p.get("dense", 0))
    dense = max(1, round(dense * keep)) if dense else 0
    widths = hidden_widths(p)
    if len(input_shape) == 3:
        h, w, c = input_shape
        return "cnn", {"filters": widths, "kernel": int(p.get("kernel", 3)), "dense": dense,
                       "input_hw": [int(h), int(w)], "in_channels": int(c), "num_classes": num_classes}
    hidden = [4 * f for f in widths] + ([dense] if dense else [])
    return "mlp", {"input_size": int(input_shape[0]), "hidden": hidden, "num_classes": num_classes}
