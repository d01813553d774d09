"""The built-in recipe steps (finetune, prune, quantize, mixed_precision) and the recipe runner.

Every step returns the model the next step works on and leaves it in eval mode; what it learns beyond
the weights goes into ``ctx.state`` (``tinyopt.compress.state``). The runner measures accuracy, non-zero
parameters, MACs and exact bytes after each step, keeps one table row per step, and returns the model,
the rows and the state together (``RecipeResult``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils import parametrize

from tinyopt.compress import ptq, qat, schedules
from tinyopt.compress.lowbit import quantize_weights_
from tinyopt.compress.mixed import mixed_precision
from tinyopt.compress.prune import prunable_layers, prune_unstructured_, regularization
from tinyopt.compress.prune_structured import count_params_macs, prune_structured
from tinyopt.compress.recipe import (
    FinetuneConfig,
    MixedPrecisionConfig,
    PruneConfig,
    QuantizeConfig,
    Recipe,
    StepContext,
    register_step,
    step_function,
)
from tinyopt.compress.sensitivity import choose_ratios, prune_sensitivity
from tinyopt.compress.size import model_size
from tinyopt.compress.state import CompressionState
from tinyopt.compress.train import batches, finetune
from tinyopt.errors import ConfigError
from tinyopt.metrics import evaluate


def _quantized(model: nn.Module) -> bool:
    return any(parametrize.is_parametrized(m, "weight") and
               not all(type(p).__name__ == "Mask" for p in m.parametrizations.weight)
               for m in prunable_layers(model).values())


def step_finetune(model, cfg: FinetuneConfig, ctx: StepContext):
    extra = (lambda m: regularization(m, cfg.l1, cfg.l2)) if (cfg.l1 or cfg.l2) else None
    return finetune(model, ctx.train, cfg.epochs, lr=cfg.lr, batch_size=ctx.batch_size, seed=ctx.seed,
                    extra_loss=extra, progress=ctx.progress, desc="fine-tune")


def step_prune(model, cfg: PruneConfig, ctx: StepContext):
    where = "prune"  # the options were checked when the config was made (PruneConfig.check)
    train_kw = {"lr": cfg.lr, "batch_size": ctx.batch_size, "seed": ctx.seed, "progress": ctx.progress}
    if cfg.method == "structured":
        if _quantized(model):
            raise ConfigError("structured pruning after quantization", where=where,
                              fix="put the structured prune step before the quantize step")
        rounds = cfg.rounds if cfg.schedule == "iterative" else 1
        data = list(batches(*ctx.train, ctx.batch_size, ctx.seed))[:8] if cfg.criterion == "taylor" else None
        for i, r in enumerate(schedules.iterative_ratios(cfg.sparsity, rounds)):
            # each round removes a share of the channels still present
            prev = 0.0 if i == 0 else schedules.iterative_ratios(cfg.sparsity, rounds)[i - 1]
            step = 1.0 - (1.0 - r) / (1.0 - prev)
            model = prune_structured(model, ctx.example_input, step, cfg.criterion, data=data, seed=ctx.seed)
            finetune(model, ctx.train, cfg.epochs / rounds, desc="fine-tune", **train_kw)
        return model
    amount = cfg.layers if cfg.layers else cfg.sparsity
    if cfg.sensitivity:
        if cfg.layers or cfg.schedule != "one_shot":
            raise ConfigError("sensitivity chooses the per-layer ratios of a one-shot prune", where=where,
                              fix="use schedule: one_shot and leave out layers")
        # scanned on (up to 1,000) training samples: the validation set stays unseen by choices
        scan = prune_sensitivity(model, (ctx.x_train[:1000], ctx.y_train[:1000]),
                                 ratios=(0.25, 0.5, 0.7, 0.8, 0.9, 0.95), criterion=cfg.criterion)
        amount = choose_ratios(scan, cfg.sparsity)
    data = list(batches(*ctx.train, ctx.batch_size, ctx.seed))[:8] if cfg.criterion == "taylor" else None
    if cfg.schedule == "one_shot":
        prune_unstructured_(model, amount, cfg.scope, cfg.criterion, data=data, seed=ctx.seed)
        if cfg.epochs:
            finetune(model, ctx.train, cfg.epochs, desc="fine-tune", **train_kw)
        return model
    if cfg.layers:
        raise ConfigError("per-layer ratios work with schedule one_shot only", where=where,
                          fix="use schedule: one_shot with layers")
    if cfg.schedule == "iterative":
        return schedules.prune_iterative_(model, ctx.train, cfg.sparsity, cfg.rounds, cfg.epochs / cfg.rounds,
                                          cfg.scope, cfg.criterion, **train_kw)
    steps = max(2, round(cfg.epochs * len(ctx.x_train) / ctx.batch_size))
    sched = (schedules.PolynomialDecay(0.0, cfg.sparsity, 0, max(1, int(steps * 0.7)),
                                       frequency=max(1, steps // 20))
             if cfg.schedule == "polynomial"
             else schedules.ConstantSparsity(cfg.sparsity, 0, max(1, steps // 10)))
    return schedules.prune_during_training_(model, ctx.train, sched, cfg.epochs, cfg.scope, cfg.criterion,
                                            **train_kw)


def calibration_batches(ctx: StepContext, samples: int) -> list:
    """The first ``samples`` training samples of the seeded shuffle, in batches of the recipe's size."""
    out, left = [], int(samples)
    for xb, yb in batches(ctx.x_train, ctx.y_train, ctx.batch_size, ctx.seed):
        if left <= 0:
            break
        out.append((xb[:left], yb[:left]))
        left -= len(xb)
    return out


def step_quantize(model, cfg: QuantizeConfig, ctx: StepContext):
    if _quantized(model):
        raise ConfigError("the model is already quantized", where="quantize",
                          fix="use one quantize step (or a mixed_precision step), not both")
    qc = ptq.QuantConfig(cfg.weight_bits, cfg.activation_bits, cfg.observer, cfg.per_channel)
    if cfg.mode == "weights":
        return quantize_weights_(model, cfg.weight_bits, per_channel=cfg.per_channel)
    if cfg.mode == "dynamic":
        gm = ptq.quantize_dynamic(model, qc)
    elif cfg.mode == "ptq":
        calib = calibration_batches(ctx, cfg.calibration_samples)
        gm = ptq.quantize_static(model, calib, qc, bias_correction=cfg.bias_correction)
    else:
        if cfg.observer == "minmax":
            qc.observer = "moving_average"  # QAT: ranges must follow the weights as they train
        gm = qat.quantize_aware_train(model, ctx.train, qc, cfg.epochs, lr=cfg.lr, batch_size=ctx.batch_size,
                                      seed=ctx.seed, progress=ctx.progress,
                                      calibration_samples=cfg.calibration_samples,
                                      lr_schedule=cfg.lr_schedule,
                                      teacher=model if cfg.distill else None, distill=cfg.distill)
    ctx.state.qparams = ptq.quant_params(gm)
    return gm


def step_mixed(model, cfg: MixedPrecisionConfig, ctx: StepContext):
    bits, _scan = mixed_precision(model, ctx.val, cfg.budget_bits, tuple(cfg.candidates))
    qc = ptq.QuantConfig(bits, cfg.activation_bits, "moving_average")
    gm = qat.quantize_aware_train(model, ctx.train, qc, cfg.epochs, lr=cfg.lr, batch_size=ctx.batch_size,
                                  seed=ctx.seed, progress=ctx.progress)
    ctx.state.mixed_bits = bits
    ctx.state.qparams = ptq.quant_params(gm)
    return gm


register_step("finetune", FinetuneConfig, step_finetune)
register_step("prune", PruneConfig, step_prune)
register_step("quantize", QuantizeConfig, step_quantize)
register_step("mixed_precision", MixedPrecisionConfig, step_mixed)


@dataclass
class Row:
    step: str
    accuracy: float
    delta_pp: float
    params: int  # non-zero parameters
    macs: int
    bytes: int
    ratio: float


def measure(model: nn.Module, name: str, ctx: StepContext, baseline: float | None = None,
            original_bytes: int | None = None) -> Row:
    acc = evaluate(model, ctx.val).accuracy
    rep = model_size(model, state=ctx.state)
    nonzero = sum(r.nonzero for r in rep.rows)
    _, macs = count_params_macs(model, ctx.example_input)
    orig = original_bytes or rep.original_bytes
    base = acc if baseline is None else baseline
    return Row(name, acc, 100.0 * (acc - base), nonzero, macs, rep.bytes, orig / rep.bytes)


@dataclass
class RecipeResult:
    """The compressed model, one table row per step (row 0 is the input), and the compression state
    (what convert, size accounting and the saved output need beyond the weights).

    Unpacks as ``model, rows = run_recipe(...)`` for callers that need only those two."""

    model: nn.Module
    rows: list[Row]
    state: CompressionState = field(default_factory=CompressionState)

    def __iter__(self):
        return iter((self.model, self.rows))

    def table(self) -> str:
        return format_table(self.rows)


def run_recipe(model: nn.Module, recipe: Recipe, ctx: StepContext, on_row=None,
               state: CompressionState | None = None) -> RecipeResult:
    """Run every step in order. ``on_row(row)`` is called as rows arrive; ``state`` carries what is
    known about ``model`` already (its reference, earlier edits), else a fresh one is started."""
    ctx = dataclasses.replace(ctx, state=state if state is not None else CompressionState())
    torch.manual_seed(recipe.seed)
    model.eval()
    first = measure(model, "input", ctx)
    original = model_size(model).original_bytes
    rows = [first]
    if on_row:
        on_row(first)
    for i, (name, cfg) in enumerate(recipe.steps, 1):
        model = step_function(name)(model, cfg, ctx)
        model.eval()
        shown = ("method", "sparsity", "scope", "mode", "weight_bits", "budget_bits", "epochs", "student")
        opts = cfg.to_dict()
        if opts.get("mode") in ("ptq", "dynamic", "weights"):
            opts.pop("epochs")  # no training in these modes
        label = f"{i}. {name} " + " ".join(f"{k}={v}" for k, v in opts.items() if k in shown)
        if opts.get("mode") == "ptq":
            label += f" observer={opts['observer']}"
        row = measure(model, label.strip(), ctx, first.accuracy, original)
        rows.append(row)
        if on_row:
            on_row(row)
    return RecipeResult(model, rows, ctx.state)


def deployable_state_dict(model: nn.Module) -> dict:
    """Plain float tensors: observers removed, masks and rounding baked into the weights."""
    from tinyopt.compress.prune import make_permanent_

    if isinstance(model, torch.fx.GraphModule) and ptq.is_prepared(model):
        model = ptq.strip(model)
    else:
        import copy

        model = make_permanent_(copy.deepcopy(model))
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def format_table(rows: list[Row]) -> str:
    w = max([4] + [len(r.step) for r in rows])
    head = f"{'step':<{w}} {'accuracy':>8} {'Δ pp':>7} {'params≠0':>9} {'MACs':>10} {'bytes':>9} {'CR':>6}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.step:<{w}} {r.accuracy:8.4f} {r.delta_pp:+7.2f} {r.params:9d} {r.macs:10d} "
                     f"{r.bytes:9d} {r.ratio:6.2f}")
    return "\n".join(lines)


__all__ = ["RecipeResult", "Row", "calibration_batches", "deployable_state_dict", "format_table", "measure",
           "run_recipe"]
