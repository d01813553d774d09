"""Recipes: configs round-trip, unknown steps/keys name the nearest valid word, steps run and the table
accounts bytes exactly; the step registry is open to other modules."""

from dataclasses import dataclass

import pytest
import torch

from tinyopt.compress import recipe
from tinyopt.compress._steps import format_table, run_recipe
from tinyopt.compress.size import model_size
from tinyopt.errors import ConfigError
from tinyopt.zoo import build


def _ctx(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 8, 8, generator=g)
    y = (x[:, 0, :4].mean((1, 2)) > x[:, 0, 4:].mean((1, 2))).long()
    return recipe.StepContext(x[:64], y[:64], x[64:], y[64:], seed=0, batch_size=32)


def test_round_trip():
    d = {"seed": 3, "batch_size": 16, "steps": [{"prune": {"method": "structured", "ratio": 0.5}},
                                                {"quantize": {"mode": "qat", "bits": 4}}]}
    r = recipe.Recipe.from_dict(d)
    assert isinstance(r.steps[0][1], recipe.PruneConfig) and r.steps[0][1].ratio == 0.5
    again = recipe.Recipe.from_dict(r.to_dict())
    assert again == r and again.to_dict() == r.to_dict()
    assert recipe.QuantizeConfig.from_dict(recipe.QuantizeConfig(bits="ternary").to_dict()).bits == "ternary"


def test_unknown_step_and_key_name_the_nearest(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("steps:\n  - prnue: {ratio: 0.5}\n")
    with pytest.raises(ConfigError, match=r"r.yaml: step 1: unknown step 'prnue'.*did you mean 'prune'"):
        recipe.load_recipe(p)
    p.write_text("steps:\n  - prune: {ratoi: 0.5}\n")
    with pytest.raises(ConfigError, match=r"step 1 \(prune\): unknown key 'ratoi'.*did you mean 'ratio'"):
        recipe.load_recipe(p)
    p.write_text("step:\n  - prune: {}\n")
    with pytest.raises(ConfigError, match="did you mean 'steps'"):
        recipe.load_recipe(p)
    p.write_text("steps: []\n")
    with pytest.raises(ConfigError, match="non-empty list"):
        recipe.load_recipe(p)


def test_bad_values_fail_in_their_step():
    ctx = _ctx()
    for steps, msg in [([{"prune": {"ratio": 1.2}}], "outside \\[0, 1\\)"),
                       ([{"quantize": {"bits": 20}}], "outside 1-16"),
                       ([{"prune": {"method": "filters"}}], "did you mean 'unstructured'|use one of"),
                       ([{"quantize": {"mode": "qta"}}], "did you mean 'qat'")]:
        with pytest.raises(ConfigError, match=msg):
            run_recipe(build("digits_cnn"), recipe.Recipe.from_dict({"steps": steps}), ctx)


def test_register_step_is_open():
    @dataclass
    class ScaleConfig(recipe.Config):
        factor: float = 1.0

    def scale(model, cfg, ctx):
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(cfg.factor)
        return model

    recipe.register_step("scale_test", ScaleConfig, scale)
    try:
        r = recipe.Recipe.from_dict({"steps": [{"scale_test": {"factor": 0.0}}]})
        m, rows = run_recipe(build("digits_cnn"), r, _ctx())
        assert rows[1].params == 0  # every weight zeroed by the custom step
    finally:
        recipe.STEPS.pop("scale_test")


def test_prune_then_quantize_table():
    torch.manual_seed(0)
    ctx = _ctx()
    r = recipe.Recipe.from_dict({"steps": [
        {"finetune": {"epochs": 2, "lr": 0.01}},
        {"prune": {"method": "structured", "ratio": 0.5, "epochs": 1}},
        {"prune": {"ratio": 0.5, "schedule": "iterative", "rounds": 2, "epochs": 1}},
        {"quantize": {"mode": "ptq", "bits": 8, "calib_batches": 2}}]})
    m, rows = run_recipe(build("digits_cnn"), r, ctx)
    assert len(rows) == 5 and rows[0].step == "input"
    # digits_cnn: conv 8 (80) + conv 16 (1,168) + fc 64->10 (650) = 1,898 params; float32 bytes
    assert rows[0].bytes == 1898 * 4 and rows[0].ratio == 1.0
    assert rows[2].macs < rows[1].macs  # structured pruning removes MACs
    assert rows[3].params < rows[2].params  # unstructured removes non-zeros
    assert rows[4].bytes == model_size(m).bytes and rows[4].ratio == pytest.approx(1898 * 4 / rows[4].bytes)
    assert rows[4].ratio > 4
    assert "accuracy" in format_table(rows)
    assert m._tinyopt_qconfig["scheme"] == "tflm-int8"


def test_sensitivity_guided_prune_reaches_the_target():
    from tinyopt.compress.prune import sparsity

    torch.manual_seed(0)
    r = recipe.Recipe.from_dict({"steps": [{"prune": {"ratio": 0.6, "sensitivity": True, "epochs": 0}}]})
    m, rows = run_recipe(build("digits_cnn"), r, _ctx())
    s = sparsity(m)
    sizes = {"features.0": 72, "features.3": 1152, "classifier.0": 640}
    overall = sum(s[n] * k for n, k in sizes.items()) / sum(sizes.values())
    assert overall >= 0.6 - 1 / 1864  # per-layer floor() may round one weight away
    assert len({round(s[n], 2) for n in sizes}) > 1  # not one uniform ratio


def test_builtin_step_names_match_what_the_step_modules_register():
    """Recipes are checked for step names before the (torch-importing) step modules load: the static
    list must be exactly what those modules register."""
    recipe._builtin_steps()
    ours = {name for name, (_, fn) in recipe.STEPS.items() if fn.__module__.startswith("tinyopt.")}
    assert ours == recipe.BUILTIN_STEPS
