"""``tinyopt compress MODEL --recipe R.yaml --data DATA --out OUT.pt|OUT.topz``.

MODEL is a PyTorch model, as ``analyze`` takes it: ``zoo:<name>`` or ``path/to/file.py:factory``
(``--checkpoint`` loads its trained weights, read with ``weights_only=True``), or the output of an
earlier ``compress`` (it says which model it is). DATA is ``digits``, a ``.npz``, a folder (MNIST IDX
files, ``.wav`` files, images in one sub-folder per class) or a project ``.yaml`` (see
``tinyopt.data.doors``). The recipe's steps run in order; one table row per step (accuracy, change
against the input in percentage points, non-zero parameters, MACs, exact bytes, compression ratio).

The output holds the compressed weights (masks and rounding baked in, observers removed) and a record
of the model reference, input shape, architecture edits and learnt int8 ranges, so ``tinyopt convert
OUT`` and ``tinyopt deploy OUT`` need nothing else. ``OUT.topz`` Huffman-codes shared weights. It is
written atomically; nothing is written when a step fails. ``--set KEY=VALUE`` changes the recipe for
this run (``prune.epochs=0.5``, ``2.weight_bits=4``, ``*.epochs=0.1``, ``seed=3``).
"""

from __future__ import annotations

import typer

_MODEL_HELP = "zoo:<name>, path/to/file.py:factory, or a .pt/.topz written by tinyopt compress"
_DATA_HELP = ("digits | FILE.npz (x_train, y_train, x_val, y_val in the model's layout; or x, y channels last) | "
              "FOLDER (MNIST IDX, .wav files, or images/<class>/) | mnist:/wav:/images:FOLDER | project.yaml")


def resolve_model(model: str, checkpoint: str | None, pruned: bool, con):
    """(module, CompressionState) for a MODEL argument; the state knows how to rebuild the module."""
    from pathlib import Path

    from tinyopt._modelref import ModelRef, is_torch_ref
    from tinyopt.compress.artifact import SUFFIXES, load_output
    from tinyopt.compress.checkpoint import load_checkpoint
    from tinyopt.compress.state import CompressionState
    from tinyopt.errors import ConfigError, ModelFormatError
    from tinyopt.zoo import ZOO

    if Path(model).suffix in SUFFIXES:
        if not Path(model).is_file():
            raise ModelFormatError("file not found", path=model, fix="check the path")
        if checkpoint:
            raise ConfigError("--checkpoint with a compressed model: its weights are in the file", where="--checkpoint",
                              fix="drop --checkpoint")
        cm = load_output(model)
        net = cm.build()
        ref = cm.model_ref.resolved([cm.folder])
        return net, CompressionState(ref, list(cm.meta.get("edits") or []))
    if not is_torch_ref(model):
        if model in ZOO:
            con.print(f"note: '{model}' is read as zoo:{model}; write zoo:{model}", markup=False)
            model = f"zoo:{model}"
        else:
            from tinyopt._suggest import hint

            raise ConfigError(f"'{model}' is not a model tinyopt compress takes{hint(model, list(ZOO))}",
                              where="MODEL", fix=f"give {_MODEL_HELP} (zoo: {', '.join(ZOO)})")
    ref = ModelRef.parse(model).resolved()
    net = ref.build()
    if checkpoint:
        load_checkpoint(checkpoint, net, resize=pruned)
    return net, CompressionState(ref)


def register(app: typer.Typer) -> None:
    @app.command()
    def compress(
        model: str = typer.Argument(..., help=_MODEL_HELP),
        recipe: str = typer.Option(..., "--recipe", help="YAML recipe (see examples/recipes/)"),
        data: str = typer.Option(..., "--data", help=_DATA_HELP),
        out: str = typer.Option(..., "--out", help="OUT.pt (weights + record) or OUT.topz (coded container)"),
        checkpoint: str = typer.Option(None, "--checkpoint", help="trained state_dict of MODEL (weights_only)"),
        pruned: bool = typer.Option(False, "--pruned", help="the checkpoint is structured-pruned: shrink the "
                                    "model's channels to its shapes before loading"),
        overrides: list[str] = typer.Option([], "--set", help="KEY=VALUE changes to the recipe: seed=1, "
                                            "prune.epochs=0.5, 2.weight_bits=4, '*.epochs=0.1' (repeatable)"),
        json_out: str = typer.Option(None, "--json", help="also write the table as JSON here"),
        qparams_out: str = typer.Option(None, "--qparams", help="write the quantization parameters (scales, "
                                        "zero points per activation and weight) as JSON"),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="progress bars on stderr"),
    ) -> None:
        """Compress a PyTorch model with a recipe and print what each step bought."""
        import dataclasses
        import json
        from pathlib import Path

        from tinyopt._extras import require
        from tinyopt._io import atomic_write_text
        from tinyopt.cli._common import console
        from tinyopt.compress.artifact import SUFFIXES
        from tinyopt.compress.recipe import StepContext, load_recipe
        from tinyopt.errors import ConfigError

        require("torch", "tinyopt compress")  # training-time techniques: the [torch] extra
        err = console(stderr=True)
        rec = load_recipe(recipe)  # validated before any heavy work (old words: a note each, from the CLI)
        if overrides:
            rec = rec.with_overrides(overrides)
        if Path(out).suffix not in SUFFIXES:
            raise ConfigError(f"output '{out}' is neither .pt nor .topz", where="--out",
                              fix="name it OUT.pt (weights and record) or OUT.topz (coded container)")
        quant = [cfg for name, cfg in rec.steps if name == "mixed_precision"
                 or (name == "quantize" and cfg.mode != "weights")]
        if qparams_out and not quant:
            raise ConfigError("--qparams needs a recipe with a quantize step (ptq, dynamic or qat) or "
                              "mixed_precision", path=recipe, where="--qparams", fix="add such a step, or drop --qparams")
        import torch

        from tinyopt.compress._steps import format_table, run_recipe
        from tinyopt.compress.artifact import save_output
        from tinyopt.compress.inputs import fit_to_model
        from tinyopt.data.doors import open_data

        torch.manual_seed(rec.seed)
        net, state = resolve_model(model, checkpoint, pruned, err)
        label = state.model_ref.label if state.model_ref else model
        fitted, shape = fit_to_model(net, open_data(data, seed=rec.seed), label)
        t = [torch.from_numpy(a) for a in (fitted.x_train, fitted.y_train, fitted.x_val, fitted.y_val)]
        ctx = StepContext(*t, seed=rec.seed, batch_size=rec.batch_size, progress=progress, folder=rec.folder)
        con = console()
        result = run_recipe(net, rec, ctx, state=state,
                            on_row=(lambda r: err.print(f"{r.step}: accuracy {r.accuracy:.4f}", markup=False))
                            if progress else None)
        samples = next((c.calibration_samples for c in reversed(quant) if hasattr(c, "calibration_samples")), 512)
        size = save_output(out, result.model, result.state, input_shape=shape, data=data, seed=rec.seed,
                           calibration_samples=samples, recipe=rec.to_dict())
        if qparams_out:
            atomic_write_text(qparams_out, json.dumps(result.state.qparams, indent=2))
        if json_out:
            st = result.state
            atomic_write_text(json_out, json.dumps({
                "model": model, "recipe": rec.to_dict(), "rows": [dataclasses.asdict(r) for r in result.rows],
                "input_shape": list(shape), "bytes": size,
                "state": {"edits": st.edits, "mixed_bits": st.mixed_bits, "container_bytes": st.container_bytes,
                          "model": st.model_ref.to_dict() if st.model_ref else None}}, indent=2))
        con.print(format_table(result.rows), markup=False)
        con.print(f"wrote {out} ({size:,} bytes); next: tinyopt convert {out} --out model.tflite", markup=False)
