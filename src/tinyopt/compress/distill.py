"""Knowledge distillation (Hinton, Vinyals, Dean 2015): a student learns the teacher's soft outputs.

Loss = ``alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(s, y)``. The ``T^2`` keeps the
soft term's gradients the same size whatever the temperature (they scale as 1/T^2 otherwise).
Optional feature-map distillation adds ``beta * MSE`` between chosen intermediate outputs, through a
learned 1x1 projection when the student's channel count differs from the teacher's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from tinyopt._suggest import hint
from tinyopt.compress.configs import DistillConfig
from tinyopt.errors import ConfigError


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      targets: torch.Tensor | None, temperature: float = 4.0,
                      alpha: float = 0.9) -> torch.Tensor:
    """Hinton's loss; with ``targets=None`` (unlabelled transfer data) only the soft term remains."""
    t = float(temperature)
    soft = F.kl_div(F.log_softmax(student_logits / t, dim=1), F.log_softmax(teacher_logits / t, dim=1),
                    reduction="batchmean", log_target=True) * (t * t)
    if targets is None:
        return soft
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits, targets)


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
            self.handles.append(mods[n].register_forward_hook(lambda _m, _i, o,
                                                              n=n: self.out.__setitem__(n, o)))

    def close(self):
        for h in self.handles:
            h.remove()


def _adapter(s: torch.Tensor, t: torch.Tensor, where: str) -> nn.Module:
    if s.shape[0] != t.shape[0] or s.shape[2:] != t.shape[2:]:
        raise ConfigError(f"student feature {tuple(s.shape[1:])} and teacher feature {tuple(t.shape[1:])} "
                          "differ beyond the channel count", where=where,
                          fix="pair feature maps of the same spatial size")
    if s.shape[1] == t.shape[1]:
        return nn.Identity()
    if s.dim() == 2:
        return nn.Linear(s.shape[1], t.shape[1], bias=False)
    return {3: nn.Conv1d, 4: nn.Conv2d}[s.dim()](s.shape[1], t.shape[1], 1, bias=False)


def distill_(student: nn.Module, teacher: nn.Module, batches: Iterable, config: DistillConfig | None = None,
             *, on_epoch: Callable[[int, dict], None] | None = None) -> nn.Module:
    """Train ``student`` in place from ``teacher`` (kept frozen, in eval mode) on ``(x, y)`` batches.

    ``on_epoch(epoch, {"loss": ..., "agreement": ...})`` reports progress: the mean loss and the share of
    samples where student and teacher pick the same class. A teacher with a different number of
    output classes is a ``ConfigError``.
    """
    config = config or DistillConfig()
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    s_taps = _Taps(student, config.features.keys(), "student")
    t_taps = _Taps(teacher, config.features.values(), "teacher")
    adapters = nn.ModuleDict()
    opt = None
    try:
        for epoch in range(int(config.epochs)):
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


# ---- recipe step `distill`: the current model teaches a new, smaller student ----

# Builder keywords a student may take that the teacher and the data already determine (zoo builders
# and user factories alike): filled in when the student's builder accepts them and the recipe is silent.
_INFERRED = ("num_classes", "input_size", "in_channels", "input_hw", "length")


def _student_kwargs(builder, given: dict, input_shape: tuple[int, ...], num_classes: int) -> dict:
    import inspect
    import math

    try:
        params = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return dict(given)
    known = {"num_classes": num_classes, "input_size": math.prod(input_shape)}
    if len(input_shape) == 3:
        known |= {"in_channels": input_shape[0], "input_hw": tuple(input_shape[1:])}
    elif len(input_shape) == 2:
        known |= {"in_channels": input_shape[0], "length": input_shape[1]}
    return {**{k: known[k] for k in _INFERRED if k in params and k in known}, **given}


def build_student(source: str, options: dict | None, input_shape: tuple[int, ...], num_classes: int,
                  folders=()) -> tuple[nn.Module, object, bool]:
    """The student a distill step names (``zoo:<name>``, a bare zoo name, or ``file.py:factory``), sized
    for the teacher's input and classes. A student that takes a flat vector while the teacher takes an
    image or a sequence gets an ``nn.Flatten`` in front (it flattens channels-first, as PyTorch does).
    Returns the student, its ``ModelRef`` (with the keywords used) and whether it was wrapped."""
    from tinyopt import zoo
    from tinyopt._modelref import ModelRef, is_torch_ref

    if not source:
        raise ConfigError("distill needs a student", where="distill",
                          fix=f"set student to zoo:<name> ({', '.join(zoo.ZOO)}) or path/to/file.py:factory")
    ref = ModelRef.parse(source if is_torch_ref(source) else f"zoo:{source}")
    if ref.is_zoo:
        builder = zoo.ZOO.get(ref.source[4:])
        if builder is None:
            zoo.build(ref.source[4:])  # raises the zoo's own 'unknown model' message
    else:
        builder = None
    kwargs = _student_kwargs(builder, dict(options or {}), input_shape,
                             num_classes) if builder else dict(options or {})
    ref = ModelRef(ref.source, kwargs)
    student = ref.build(folders)
    declared = tuple(getattr(student, "input_shape", ()) or ())
    flatten = len(declared) == 1 and len(input_shape) > 1
    if flatten:
        import math

        if declared[0] != math.prod(input_shape):
            raise ConfigError(f"the student takes {declared[0]} features but the teacher's input "
                              f"{input_shape} has {math.prod(input_shape)}", where="distill.student",
                              fix="give the student the teacher's input size")
        student = flatten_input(student, input_shape)
    return student, ref.resolved(folders), flatten


def flatten_input(student: nn.Module, input_shape: tuple[int, ...]) -> nn.Module:
    """``nn.Sequential(nn.Flatten(), student)`` taking ``input_shape``."""
    wrapped = nn.Sequential(nn.Flatten(), student)
    wrapped.input_shape = tuple(input_shape)
    return wrapped


def _register_steps() -> None:
    from tinyopt.compress.recipe import register_step

    def step_distill(model, cfg: DistillConfig, ctx):
        from tinyopt.compress.train import batches

        with torch.no_grad():
            classes = int(model.eval()(ctx.example_input).shape[1])
        torch.manual_seed(ctx.seed)
        folders = [ctx.folder] if ctx.folder else []
        student, ref, flatten = build_student(cfg.student, cfg.student_options,
                                              tuple(ctx.example_input.shape[1:]), classes, folders)

        class _Epochs:
            n = 0

            def __iter__(self):
                self.n += 1
                return batches(*ctx.train, ctx.batch_size, ctx.seed + self.n)

        def report(epoch, m):
            import sys

            print(f"distill epoch {epoch + 1}/{int(cfg.epochs)}: loss {m['loss']:.4f}, agreement with the "
                  f"teacher {100 * m['agreement']:.1f} %", file=sys.stderr, flush=True)

        out = distill_(student, model, _Epochs(), cfg, on_epoch=report if ctx.progress else None)
        ctx.state.new_model(ref, [{"flatten_input": True}] if flatten else [])
        return out

    register_step("distill", DistillConfig, step_distill)


_register_steps()
