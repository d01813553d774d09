"""What ``tinyopt compress`` writes, and how ``convert`` / ``deploy`` rebuild it without being told the model.

Two files, one record. ``OUT.pt`` is ``{"state_dict": <plain float tensors>, "tinyopt": <JSON text>}``
(read back with ``weights_only=True``, nothing executable); ``OUT.topz`` is the coded container with the
same JSON as its metadata record (shared weights Huffman-coded, the rest raw). The JSON says:

- ``model``: the PyTorch reference the weights belong to (``zoo:<name>`` or ``file.py:factory`` with
  its keyword arguments; a file path relative to the output's folder, with the file's sha256);
- ``input_shape``: the model's input in its own (channels-first) layout, without the batch;
- ``edits``: architecture changes to replay before loading (BN folding, low-rank factors, a flatten);
  structured pruning needs none (the saved shapes give the channel counts);
- ``activations``: the int8 activation ranges a quantize step learnt (the converter keeps them);
- ``data`` / ``seed`` / ``calibration_samples``: where calibration samples come from when convert or
  deploy is not given ``--calib``; ``recipe``: the recipe that ran.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyopt._modelref import ModelRef
from tinyopt.errors import ConfigError, ModelFormatError

FORMAT = 1
SUFFIXES = (".pt", ".topz")


def _relative(path: str, folder: Path) -> str:
    return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(folder))).as_posix()


def build_meta(state, input_shape, folder: str | os.PathLike, *, data: str | None = None, seed: int = 0,
               calibration_samples: int = 512, recipe: dict | None = None,
               activations: dict | None = None) -> dict:
    """The JSON record of a compressed model (paths relative to ``folder``, where the output goes)."""
    folder = Path(folder)
    meta: dict = {"format": FORMAT, "input_shape": [int(d) for d in input_shape], "edits": list(state.edits),
                  "activations": activations, "seed": int(seed),
                  "calibration_samples": int(calibration_samples), "recipe": recipe}
    meta["model"] = state.model_ref.relative_to(folder).to_dict() if state.model_ref is not None else None
    if data is not None:
        from tinyopt.data.doors import parse_spec

        source, path = parse_spec(data)
        meta["data"] = {"source": source, "path": None if path is None else _relative(path, folder)}
    else:
        meta["data"] = None
    return meta


def save_output(path: str | os.PathLike, model, state, *, input_shape, records: dict | None = None,
                data: str | None = None, seed: int = 0, calibration_samples: int = 512,
                recipe: dict | None = None) -> int:
    """Write ``model`` (its deployable float weights) and the record atomically as ``.pt`` or ``.topz``;
    returns the bytes written. ``records`` are ready container records (the Huffman step's)."""
    from tinyopt.compress import ptq
    from tinyopt.compress._steps import deployable_state_dict

    p = Path(path)
    if p.suffix not in SUFFIXES:
        raise ConfigError(f"output '{p.name}' is neither .pt nor .topz", where="--out",
                          fix="name it OUT.pt (weights) or OUT.topz (coded container)")
    activations = None
    if ptq.is_prepared(model):
        acts = ptq.quant_params(model)["activations"]
        activations = {k: {f: a[f] for f in ("scale", "zero_point", "bits", "quant_min", "quant_max")}
                       for k, a in acts.items()}
    meta = build_meta(state, input_shape, p.parent, data=data, seed=seed,
                      calibration_samples=calibration_samples, recipe=recipe, activations=activations)
    sd = deployable_state_dict(model)
    if p.suffix == ".topz":
        from tinyopt.compress.cluster import encode_state_dict, shareable_layers
        from tinyopt.compress.container import save_compressed

        if records is None:
            from torch import nn

            dense = {n for n, m in shareable_layers(model).items() if isinstance(m, nn.Linear)}
            records = encode_state_dict(sd, state.clusters, dense)
        return save_compressed(p, records, meta)
    import io

    import torch

    from tinyopt._io import atomic_write_bytes

    buf = io.BytesIO()
    torch.save({"state_dict": sd, "tinyopt": json.dumps(meta, sort_keys=True)}, buf)
    atomic_write_bytes(p, buf.getvalue())
    return len(buf.getvalue())


def is_output(path: str | os.PathLike) -> bool:
    """A ``.pt`` or ``.topz`` file (whether it carries a record is found out when it is read)."""
    return Path(path).suffix in SUFFIXES and Path(path).is_file()


def read_meta(path: str | os.PathLike) -> tuple[dict, dict | None]:
    """The tensors (as numpy arrays for ``.topz``, torch tensors for ``.pt``) and the record, if any."""
    p = Path(path)
    if p.suffix == ".topz":
        from tinyopt.compress.container import read_container

        return read_container(p)
    from tinyopt.compress.checkpoint import read_checkpoint

    sd, text = read_checkpoint(p)
    if text is None:
        return sd, None
    try:
        meta = json.loads(text)
    except ValueError:
        meta = None
    if not isinstance(meta, dict):
        raise ModelFormatError("its 'tinyopt' record is not a JSON object", path=path,
                               fix="write the file again with tinyopt compress")
    return sd, meta


@dataclass
class CompressedModel:
    """A compressed model read back: its record and weights; ``build()`` gives the module."""

    path: str
    meta: dict
    tensors: dict

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.meta["input_shape"])

    @property
    def model_ref(self) -> ModelRef:
        return ModelRef.from_dict(self.meta["model"])

    @property
    def folder(self) -> Path:
        return Path(self.path).parent

    def build(self):
        """The architecture rebuilt from its reference and edits, with the saved weights loaded."""
        import torch

        from tinyopt.compress.checkpoint import load_state

        torch.manual_seed(0)  # the initial weights are overwritten; seeded anyway so nothing varies
        module = self.model_ref.build([self.folder])
        module = replay_edits(module, self.meta.get("edits") or [], self.input_shape)
        sd = {k: torch.as_tensor(np.asarray(v)) if not isinstance(v, torch.Tensor) else v
              for k, v in self.tensors.items()}
        load_state(module, sd, self.path, resize=True, fix=f"the file was written for another version of "
                   f"{self.model_ref.label}: compress it again")
        module.input_shape = self.input_shape
        return module.eval()

    def fixed_ranges(self) -> dict[str, tuple[float, int]]:
        """The int8 activation ranges the quantize step learnt, by tensor name (the converter keeps them)."""
        from tinyopt.convert.convert import fixed_ranges

        return fixed_ranges(self.meta.get("activations") or {})

    def calibration(self, n: int | None = None) -> np.ndarray:
        """Calibration samples in the model's own layout, from the data compress used (seeded choice)."""
        from tinyopt.data.doors import fit_samples, open_data

        rec = self.meta.get("data")
        if not rec:
            raise ConfigError("the compressed model records no data to calibrate with", path=self.path,
                              where="--calib", fix="give --calib samples.npz (key x, batch first)")
        if rec["source"] == "digits":
            spec = "digits"
        else:
            where = self.folder / rec["path"]
            spec = str(where) if rec["source"] == "project" else f"{rec['source']}:{where}"
            if not where.exists():
                raise ConfigError(f"the data it was compressed with is gone ({where})", path=self.path,
                                  where="--calib", fix="give --calib samples.npz (key x, batch first)")
        seed = int(self.meta.get("seed", 0))
        data = open_data(spec, seed=seed).to_model_layout()
        x = fit_samples(data.x_train, self.input_shape, spec)
        n = int(n or self.meta.get("calibration_samples") or 512)
        idx = np.sort(np.random.default_rng(seed).permutation(len(x))[:n])
        return x[idx].astype(np.float32)

    def float_graph(self):
        from tinyopt.graph.torch_import import from_torch

        return from_torch(self.build(), self.input_shape, name=self.model_ref.label)

    def graph_calibration(self, n: int | None = None) -> np.ndarray:
        """``calibration`` in the float Graph's layout (NHWC), what ``convert_graph`` takes."""
        from tinyopt.convert.convert import torch_to_graph_layout

        return torch_to_graph_layout(self.calibration(n), self.input_shape)

    def int8_graph(self, x=None, *, io: str = "int8", observer: str | None = None, graph=None):
        """The int8 Graph (TFLM spec): learnt activation ranges kept, the rest calibrated on ``x`` (in the
        float Graph's layout, NHWC) or on samples of the recorded data; its weights keep their encodings
        (shared, low-bit, pruned: ``Tensor.encoding``), which the .tflite and C writers store compressed."""
        from tinyopt.convert.convert import convert_graph

        graph = graph if graph is not None else self.float_graph()
        x = self.graph_calibration() if x is None else x
        return convert_graph(graph, x, io=io, observer=observer, fixed=self.fixed_ranges() or None,
                             encode=True)


def replay_edits(module, edits: list[dict], input_shape):
    """Apply recorded architecture changes in order (weights are loaded afterwards)."""
    for edit in edits:
        (kind, arg), = edit.items()
        if kind == "fold_bn":
            from tinyopt.compress.fuse import fuse_modules_

            module.eval()
            fuse_modules_(module, arg)
        elif kind == "lowrank":
            from tinyopt.compress.lowrank import replay_lowrank_

            replay_lowrank_(module, arg)
        elif kind == "flatten_input":
            from tinyopt.compress.distill import flatten_input

            module = flatten_input(module, tuple(input_shape))
        else:
            raise ModelFormatError(f"unknown architecture edit '{kind}'", where="tinyopt record",
                                   fix="upgrade tinyopt or compress the model again")
    return module


def load_output(path: str | os.PathLike) -> CompressedModel:
    """A compressed model written by ``tinyopt compress`` (``.pt`` or ``.topz``)."""
    tensors, meta = read_meta(path)
    if meta is None:
        raise ModelFormatError("a plain state_dict: it does not say which model it belongs to", path=path,
                               fix="give the model (zoo:<name> or file.py:factory) with --checkpoint, or use "
                                   "the output of tinyopt compress")
    if meta.get("format") != FORMAT:
        raise ModelFormatError(f"record format {meta.get('format')!r}, this tinyopt reads {FORMAT}",
                               path=path, fix="upgrade tinyopt or compress the model again")
    if not meta.get("model"):
        raise ModelFormatError("the record names no model (it was compressed from a module in Python)",
                               path=path, fix="load its weights into your model in Python")
    return CompressedModel(str(path), meta, tensors)


__all__ = ["FORMAT", "CompressedModel", "build_meta", "is_output", "load_output", "read_meta", "replay_edits",
           "save_output"]
