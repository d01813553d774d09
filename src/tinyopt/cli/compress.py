"""``tinyopt compress MODEL --recipe R.yaml --data D.npz [--checkpoint C.pt] --out OUT.pt``.

MODEL is a zoo name (``lenet5``, ``resnet8`` ...). The recipe's steps run in order; one table row per
step (accuracy, change against the input in percentage points, non-zero parameters, MACs, exact bytes,
compression ratio). The compressed weights are written atomically as a plain ``state_dict`` (masks and
rounding baked in, observers removed); nothing is written when a step fails.
"""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def compress(
        model: str = typer.Argument(..., help="zoo model name, e.g. lenet5"),
        recipe: str = typer.Option(..., "--recipe", help="YAML recipe (steps: prune, quantize, finetune, ...)"),
        data: str = typer.Option(..., "--data", help=".npz with x_train, y_train, x_val, y_val"),
        out: str = typer.Option(..., "--out", help="output state_dict (.pt)"),
        checkpoint: str = typer.Option(None, "--checkpoint", help="state_dict to start from (weights_only)"),
        pruned: bool = typer.Option(False, "--pruned", help="the checkpoint is structured-pruned: shrink the "
                                    "model's channels to its shapes before loading"),
        json_out: str = typer.Option(None, "--json", help="also write the table as JSON here"),
        qparams_out: str = typer.Option(None, "--qparams", help="write the quantization parameters (scales, "
                                        "zero points per activation and weight) as JSON for the converter"),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="progress bars on stderr"),
    ) -> None:
        """Prune / quantize a zoo model with a recipe and print what each step bought."""
        import dataclasses
        import json

        import torch

        from tinyopt._io import atomic_write_text
        from tinyopt.cli._common import console
        from tinyopt.compress._steps import deployable_state_dict, format_table, run_recipe
        from tinyopt.compress.checkpoint import load_checkpoint, load_npz, save_state_dict
        from tinyopt.compress.recipe import StepContext, load_recipe
        from tinyopt.errors import ConfigError
        from tinyopt.zoo import build

        rec = load_recipe(recipe)  # validate the recipe before any heavy work
        if qparams_out and not any(name == "mixed_precision" or (name == "quantize" and cfg.mode != "weights")
                                   for name, cfg in rec.steps):
            raise ConfigError("--qparams needs a recipe with a quantize step (ptq, dynamic or qat) or "
                              "mixed_precision", path=recipe, where="--qparams",
                              fix="add such a step, or drop --qparams")
        torch.manual_seed(rec.seed)
        net = build(model)
        if checkpoint:
            load_checkpoint(checkpoint, net, resize=pruned)
        x_train, y_train, x_val, y_val = load_npz(data, getattr(net, "input_shape", None))
        ctx = StepContext(x_train, y_train, x_val, y_val, seed=rec.seed, batch_size=rec.batch_size,
                          progress=progress)
        con = console()
        result, rows = run_recipe(net, rec, ctx, on_row=lambda r: con.print(f"[dim]{r.step}: {r.accuracy:.4f}[/dim]")
                                  if progress else None)
        qparams = getattr(result, "_tinyopt_qconfig", None)
        state = deployable_state_dict(result)
        save_state_dict(out, state)
        if qparams_out:
            atomic_write_text(qparams_out, json.dumps(qparams, indent=2))
        if json_out:
            atomic_write_text(json_out, json.dumps({"model": model, "recipe": rec.to_dict(),
                                                    "rows": [dataclasses.asdict(r) for r in rows]}, indent=2))
        con.print(format_table(rows), markup=False)
        con.print(f"wrote {out}", markup=False)
