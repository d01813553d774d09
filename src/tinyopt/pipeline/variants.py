"""The optimisation variants of a run and how each one is measured.

float → (structured pruning + fine-tuning) → pruned; float / pruned → (QAT or PTQ, then convert) →
int8 / pruned+int8. Every variant is written as a ``.tflite`` artifact, and its figures (params, flash,
RAM, latency, energy, fit) come from ``tinyopt.analysis.analyze`` on that file read back, so they equal
what ``tinyopt analyze <artifact> --device <board>`` prints. Int8 accuracy is measured by running the
converted graph in the tinyopt runtime, and the same test set through TFLM must give identical outputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyopt.data.dataset import Splits
from tinyopt.pipeline.train import fit, to_torch_layout, torch_input_shape


def example_input(fs: Splits):
    import torch

    return torch.from_numpy(to_torch_layout(fs.train.x[:1].astype(np.float32)))


def prune(model, fs: Splits, pcfg: dict, seed: int, on_epoch=None):
    """Structured (channel) pruning of a copy of ``model`` to ``sparsity``, then fine-tuning."""
    import copy

    from tinyopt.compress.prune import prune_structured

    pruned = prune_structured(copy.deepcopy(model).eval(), example_input(fs), float(pcfg["sparsity"]),
                              criterion="l1")
    history = fit(pruned, fs.train.x, fs.train.y, epochs=int(pcfg["epochs"]), lr=float(pcfg["lr"]),
                  seed=seed + 1, x_val=fs.val.x, y_val=fs.val.y, on_epoch=on_epoch)
    return pruned, history


def replay_prune(model, fs: Splits, pcfg: dict):
    """The pruned architecture again (L1 structured pruning is deterministic), to load cached weights."""
    import copy

    from tinyopt.compress.prune import prune_structured

    return prune_structured(copy.deepcopy(model).eval(), example_input(fs), float(pcfg["sparsity"]),
                            criterion="l1")


def float_graph(model, fs: Splits, name: str):
    """The deployable float Graph of a torch module: BN folded, activations fused, identities removed."""
    from tinyopt.graph.passes import fold_batchnorm, fuse_activations, remove_identities
    from tinyopt.graph.torch_import import from_torch

    g = from_torch(model, torch_input_shape(fs.train.x)[1:], name=name)
    return remove_identities(fuse_activations(fold_batchnorm(g)))


def quantize_input(graph, x: np.ndarray) -> np.ndarray:
    """Float features → the graph input's dtype with its scale and zero point (TFLite's rounding)."""
    t = graph.tensors[graph.inputs[0]]
    x = x.reshape((len(x), *t.shape[1:])).astype(np.float32)
    if t.dtype == "float32":
        return x
    s, z = float(t.quant.scale[0]), int(t.quant.zero_point[0])
    info = np.iinfo(np.dtype(t.dtype))
    return np.clip(np.round(x / s) + z, info.min, info.max).astype(t.dtype)


def run_graph(graph, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """Outputs of the tinyopt runtime on float features (quantized at the door for int8 graphs)."""
    from tinyopt.runtime import Interpreter

    interp = Interpreter(graph)
    q = quantize_input(graph, x)
    return np.concatenate([interp.run(q[i:i + batch])[0] for i in range(0, len(q), batch)])


def tflm_outputs(tflite_bytes: bytes, graph, x: np.ndarray) -> np.ndarray:
    """The same inputs through TensorFlow Lite Micro, one invoke per example."""
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(tflite_bytes)
    q = quantize_input(graph, x)
    outs = []
    for row in q:
        interp.set_input(row[None], 0)
        interp.invoke()
        outs.append(np.array(interp.get_output(0)).reshape(-1))
    return np.stack(outs)


def analyze_artifact(path: Path, device) -> dict:
    """``tinyopt analyze <path> --device <device>``, as a dict."""
    from tinyopt.analysis import analyze
    from tinyopt.graph import load_model

    return analyze(load_model(path), device).to_dict()


def row(variant: str, accuracy: float, a: dict, artifact: Path, extra: dict | None = None) -> dict:
    """One line of the closing table."""
    return {"variant": variant, "accuracy": float(accuracy), "params": int(a["params"]),
            "flash_bytes": int(a["flash_bytes"]), "ram_bytes": int(a["ram_bytes"]),
            "latency_ms": None if a["latency_s"] is None else round(1e3 * float(a["latency_s"]), 4),
            "energy_mj": None if a["energy_mj"] is None else round(float(a["energy_mj"]), 5),
            "fits": a["fits"], "artifact": str(artifact), **(extra or {})}
