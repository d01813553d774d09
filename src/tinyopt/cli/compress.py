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

from tinyopt.compress.job import MODEL_HELP

_DATA_HELP = ("digits | FILE.npz (x_train, y_train, x_val, y_val in the model's layout; or x, y channels "
              "last) | FOLDER (MNIST IDX, .wav files, or images/<class>/) | mnist:/wav:/images:FOLDER | "
              "project.yaml")


def register(app: typer.Typer) -> None:
    @app.command()
    def compress(
        model: str = typer.Argument(..., help=MODEL_HELP),
        recipe: str = typer.Option(..., "--recipe", help="YAML recipe (see examples/recipes/)"),
        data: str = typer.Option(..., "--data", help=_DATA_HELP),
        out: str = typer.Option(..., "--out", help="OUT.pt (weights + record) or OUT.topz (coded container)"),
        checkpoint: str = typer.Option(None, "--checkpoint",
                                       help="trained state_dict of MODEL (weights_only)"),
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
        import json
        from pathlib import Path

        from tinyopt._extras import require
        from tinyopt._io import atomic_write_text
        from tinyopt.cli._common import console
        from tinyopt.compress.artifact import SUFFIXES
        from tinyopt.compress.recipe import load_recipe
        from tinyopt.errors import ConfigError

        require("torch", "tinyopt compress")  # training-time techniques: the [torch] extra
        rec = load_recipe(recipe)  # validated before any heavy work (old words: a note each, from the CLI)
        if overrides:
            rec = rec.with_overrides(overrides)
        if Path(out).suffix not in SUFFIXES:
            raise ConfigError(f"output '{out}' is neither .pt nor .topz", where="--out",
                              fix="name it OUT.pt (weights and record) or OUT.topz (coded container)")
        if qparams_out and not any(name == "mixed_precision" or (name == "quantize" and cfg.mode != "weights")
                                   for name, cfg in rec.steps):
            raise ConfigError("--qparams needs a recipe with a quantize step (ptq, dynamic or qat) or "
                              "mixed_precision", path=recipe, where="--qparams",
                              fix="add such a step, or drop --qparams")
        from tinyopt.compress._steps import format_table
        from tinyopt.compress.job import compress_run

        err, con = console(stderr=True), console()
        run = compress_run(model, rec, data, checkpoint=checkpoint, pruned=pruned, progress=progress,
                           on_row=(lambda r: err.print(f"{r.step}: accuracy {r.accuracy:.4f}", markup=False))
                           if progress else None)
        size = run.save(out)
        if qparams_out:
            atomic_write_text(qparams_out, json.dumps(run.state.qparams, indent=2))
        if json_out:
            atomic_write_text(json_out, json.dumps(run.to_dict(size), indent=2))
        con.print(format_table(run.rows), markup=False)
        con.print(f"wrote {out} ({size:,} bytes); next: tinyopt convert {out} --out model.tflite",
                  markup=False)
