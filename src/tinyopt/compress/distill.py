"""Knowledge distillation (Hinton, Vinyals, Dean 2015): a student learns the teacher's soft outputs.

Loss = ``alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(s, y)``. The ``T^2`` keeps the
soft term's gradients the same size whatever the temperature (they scale as 1/T^2 otherwise).
Optional feature-map distillation adds ``beta * MSE`` between chosen intermediate outputs, through a
learned 1x1 projection when the student's channel count differs from the teacher's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from tinyopt._suggest import hint
from tinyopt.compress._options import Options
from tinyopt.errors import ConfigError


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor | None,
                      temperature: float = 4.0, alpha: float = 0.9) -> torch.Tensor:
    """Hinton's loss; with ``targets=None`` (unlabelled transfer data) only the soft term remains."""
    t = float(temperature)
    soft = F.kl_div(F.log_softmax(student_logits / t, dim=1), F.log_softmax(teacher_logits / t, dim=1),
                    reduction="batchmean", log_target=True) * (t * t)
    if targets is None:
        return soft
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits, targets)


@dataclass
class DistillConfig(Options):
    """``features`` maps a student module name to the teacher module whose output it should imitate."""

    temperature: float = 4.0
    alpha: float = 0.9
    epochs: int = 10
    lr: float = 1e-3
    weight_decay: float = 0.0
    beta: float = 1.0
    features: dict[str, str] = field(default_factory=dict)

    _subject = "distill"  # no annotation, so not a field: names these options in errors

    def check(self) -> None:
        if not self.temperature > 0:
            raise ConfigError(f"temperature = {self.temperature}", where="distill", fix="use a temperature > 0")
        if not 0 <= self.alpha <= 1:
            raise ConfigError(f"alpha = {self.alpha} is outside [0, 1]", where="distill",
                              fix="alpha weighs the soft loss; use a value in [0, 1] such as 0.9")
        if self.epochs < 0:
            raise ConfigError(f"epochs = {self.epochs}", where="distill", fix="use epochs >= 0")


class _Taps:
    """Forward hooks that keep the latest output of named modules."""

    def __init__(self, model: nn.Module, names: Iterable[str], who: str):
        mods = dict(model.named_modules())
        self.out: dict[str, torch.Tensor] = {}
        self.handles = []
        for n in names:
            if n not in mods:
                raise ConfigError(f"{who} has no module '{n}'{hint(n, mods)}", where="distill.features",
                                  fix=f"name a module of the {who}")
            self.handles.append(mods[n].register_forward_hook(lambda _m, _i, o, n=n: self.out.__setitem__(n, o)))

    def close(self):
        for h in self.handles:
            h.remove()


def _adapter(s: torch.Tensor, t: torch.Tensor, where: str) -> nn.Module:
    if s.shape[0] != t.shape[0] or s.shape[2:] != t.shape[2:]:
        raise ConfigError(f"student feature {tuple(s.shape[1:])} and teacher feature {tuple(t.shape[1:])} differ "
                          "beyond the channel count", where=where,
                          fix="pair feature maps of the same spatial size")
    if s.shape[1] == t.shape[1]:
        return nn.Identity()
    if s.dim() == 2:
        return nn.Linear(s.shape[1], t.shape[1], bias=False)
    return {3: nn.Conv1d, 4: nn.Conv2d}[s.dim()](s.shape[1], t.shape[1], 1, bias=False)


def distill_(student: nn.Module, teacher: nn.Module, batches: Iterable, config: DistillConfig | None = None, *,
             on_epoch: Callable[[int, dict], None] | None = None) -> nn.Module:
    """Train ``student`` in place from ``teacher`` (kept frozen, in eval mode) on ``(x, y)`` batches.

    ``on_epoch(epoch, {"loss": ..., "agreement": ...})`` reports progress: the mean loss and the share of
    samples where student and teacher pick the same class. A teacher with a different number of
    output classes is a ``ConfigError``.
    """
    config = config or DistillConfig()
    config.check()
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    s_taps = _Taps(student, config.features.keys(), "student")
    t_taps = _Taps(teacher, config.features.values(), "teacher")
    adapters = nn.ModuleDict()
    opt = None
    try:
        for epoch in range(config.epochs):
            student.train()
            total = agree = n = 0
            for x, y in batches:
                with torch.no_grad():
                    t_logits = teacher(x)
                s_logits = student(x)
                if s_logits.shape[1:] != t_logits.shape[1:]:
                    raise ConfigError(f"teacher outputs {t_logits.shape[1]} classes but the student "
                                      f"{s_logits.shape[1]}", where="distill",
                                      fix="give the student the teacher's number of output classes")
                loss = distillation_loss(s_logits, t_logits, y, config.temperature, config.alpha)
                for sn, tn in config.features.items():
                    key = sn.replace(".", "/")
                    if key not in adapters:
                        adapters[key] = _adapter(s_taps.out[sn], t_taps.out[tn], f"distill.features.{sn}")
                    loss = loss + config.beta * F.mse_loss(adapters[key](s_taps.out[sn]), t_taps.out[tn])
                if opt is None:  # built after the first batch so feature adapters are trained too
                    opt = torch.optim.Adam([*student.parameters(), *adapters.parameters()], lr=config.lr,
                                           weight_decay=config.weight_decay)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(x)
                agree += int((s_logits.argmax(1) == t_logits.argmax(1)).sum())
                n += len(x)
            if on_epoch:
                on_epoch(epoch, {"loss": total / max(n, 1), "agreement": agree / max(n, 1)})
    finally:
        s_taps.close()
        t_taps.close()
    return student


# ---- recipe step `distill`: the current model teaches a new student from the zoo ----

def _register_steps() -> None:
    from tinyopt.compress.recipe import Config, register_step

    @dataclass
    class DistillStepConfig(Config):
        student: str = ""                      # zoo model name
        student_options: dict | None = None    # keyword arguments of zoo.build
        temperature: float = 4.0
        alpha: float = 0.9
        epochs: int = 10
        lr: float = 1e-3

    def step_distill(model, cfg: DistillStepConfig, ctx):
        from tinyopt import zoo
        from tinyopt.compress.train import batches

        if not cfg.student:
            raise ConfigError("distill needs a student", where="distill",
                              fix=f"set student to a zoo model name: {', '.join(zoo.ZOO)}")
        torch.manual_seed(ctx.seed)
        student = zoo.build(cfg.student, **(cfg.student_options or {}))

        class _Epochs:
            n = 0

            def __iter__(self):
                self.n += 1
                return batches(*ctx.train, ctx.batch_size, ctx.seed + self.n)

        conf = DistillConfig(temperature=cfg.temperature, alpha=cfg.alpha, epochs=cfg.epochs, lr=cfg.lr)

        def report(epoch, m):
            import sys

            print(f"distill epoch {epoch + 1}/{cfg.epochs}: loss {m['loss']:.4f}, agreement with the teacher "
                  f"{100 * m['agreement']:.1f} %", file=sys.stderr, flush=True)

        return distill_(student, model, _Epochs(), conf, on_epoch=report if ctx.progress else None)

    register_step("distill", DistillStepConfig, step_distill)


_register_steps()
