"""What compression steps learn about a model beyond its weights, passed explicitly from step to step.

A step reads and writes ``ctx.state``; ``run_recipe`` returns it; size accounting, the saved output and
the converter read it. Nothing is hidden on the modules: what a module's own structure says (a pruning
mask, a fake-quantizer and its bit width, a BatchNorm) is read from the module; everything else is here.

- ``model_ref``: how to rebuild the architecture (``zoo:<name>`` or ``file.py:factory`` + keyword
  arguments); ``None`` when the model came in as a bare module.
- ``edits``: the architecture changes made since, in order, so a rebuild replays them before the
  weights load (``{"fold_bn": groups}``, ``{"lowrank": {layer: rank}}``, ``{"flatten_input": True}``).
  Structured pruning needs no entry: the saved weights' shapes give the channel counts.
- ``clusters``: weight sharing's fitted k-means quantizer per layer (``cluster`` → ``huffman``).
- ``storage``: per layer, how its weight is stored when its modules cannot say it
  (``{"codebook": k}`` after sharing, ``{"record_bytes": n}`` after Huffman coding).
- ``mixed_bits``: the widths ``mixed_precision`` chose; ``qparams``: the converter's view of a quantized
  model (``tinyopt.compress.ptq.quant_params``); ``container_bytes``: the exact ``.topz`` size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tinyopt._modelref import ModelRef


@dataclass
class CompressionState:
    model_ref: ModelRef | None = None
    edits: list[dict] = field(default_factory=list)
    clusters: dict = field(default_factory=dict)
    storage: dict[str, dict] = field(default_factory=dict)
    mixed_bits: dict[str, int] | None = None
    qparams: dict | None = None
    container_bytes: int | None = None

    def new_model(self, ref: ModelRef | None, edits: list[dict] | None = None) -> None:
        """The steps now work on another network (distillation's student): what was learnt about the
        old one no longer applies."""
        self.model_ref, self.edits = ref, list(edits or [])
        self.clusters, self.storage = {}, {}
        self.mixed_bits = self.qparams = self.container_bytes = None

    def forget_layers(self, names) -> None:
        """Layers replaced by others (low-rank factorization): drop what was recorded about them."""
        for n in names:
            self.clusters.pop(n, None)
            self.storage.pop(n, None)


__all__ = ["CompressionState"]
