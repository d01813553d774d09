"""Training memory: why training needs far more memory than inference (the seeds' exam question).

Inference keeps the weights and, at any moment, only the activations still to be read. Training keeps
the weights, one gradient per weight, the optimizer's per-weight state, and *every* layer's activation
from the forward pass (the backward pass reads them), for every sample of the batch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tinyopt.analysis.cost import activation_dtype, tensor_bytes
from tinyopt.errors import ConfigError
from tinyopt.graph.ir import DTYPE_BYTES, Graph

# Per-weight state tensors each optimizer keeps.
OPTIMIZER_STATES = {"sgd": 0, "momentum": 1, "adam": 2}


@dataclass
class TrainingMemory:
    optimizer: str
    batch: int
    weights_bytes: int
    gradients_bytes: int
    optimizer_bytes: int
    activations_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.gradients_bytes + self.optimizer_bytes + self.activations_bytes

    def to_dict(self) -> dict:
        return {**asdict(self), "total_bytes": self.total_bytes}

    def explain(self, params: int, width: int, per_sample: int) -> list[str]:
        k = OPTIMIZER_STATES[self.optimizer]
        return [
            f"weights = {params:,} × {width} B = {self.weights_bytes:,} B",
            f"gradients = {params:,} × {width} B = {self.gradients_bytes:,} B",
            f"{self.optimizer} states = {k} × {params:,} × {width} B = {self.optimizer_bytes:,} B",
            f"stored activations = {per_sample:,} B × batch {self.batch} = {self.activations_bytes:,} B",
            f"training total = {self.total_bytes:,} B",
        ]


def stored_activation_bytes(graph: Graph, dtype: str = "float32") -> int:
    """Bytes of every activation tensor of one forward pass (graph input included)."""
    return sum(tensor_bytes(t, activation_dtype(t, dtype)) for t in graph.activations())


def training_memory(graph: Graph, params: int, optimizer: str = "adam", batch: int = 1,
                    dtype: str = "float32") -> TrainingMemory:
    """Weights + gradients + optimizer states + stored activations × batch, all at ``dtype``."""
    optimizer = optimizer.lower()
    if optimizer not in OPTIMIZER_STATES:
        raise ConfigError(f"unknown optimizer '{optimizer}'", where="training memory",
                          fix=f"use one of {', '.join(OPTIMIZER_STATES)}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch <= 0:
        raise ConfigError(f"batch size must be a positive integer, got {batch!r}", where="training memory",
                          fix="use a batch size of at least 1")
    width = DTYPE_BYTES[dtype]
    w = int(params * width)
    return TrainingMemory(optimizer, batch, w, w, OPTIMIZER_STATES[optimizer] * w,
                          stored_activation_bytes(graph, dtype) * batch)
