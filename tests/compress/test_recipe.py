"""Recipes: configs round-trip, unknown steps/keys name the nearest valid word, steps run and the table
accounts bytes exactly; the step registry is open to other modules."""

from dataclasses import dataclass

import pytest
import torch

from tinyopt.compress import recipe
from tinyopt.compress._steps import format_table, run_recipe
from tinyopt.compress.ptq import quant_params
from tinyopt.compress.size import model_size
from tinyopt.errors import ConfigError
from tinyopt.zoo import build


def _ctx(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 8, 8, generator=g)
    y = (x[:, 0, :4].mean((1, 2)) > x[:, 0, 4:].mean((1, 2))).long()
    return recipe.StepContext(x[:64], y[:64], x[64:], y[64:], seed=0, batch_size=32)


def test_round_trip():
    d = {"seed": 3, "batch_size": 16, "steps": [{"prune": {"method": "structured", "sparsity": 0.5}},
                                                {"quantize": {"mode": "qat", "weight_bits": 4}}]}
    r = recipe.Recipe.from_dict(d)
    assert isinstance(r.steps[0][1], recipe.PruneConfig) and r.steps[0][1].sparsity == 0.5
    again = recipe.Recipe.from_dict(r.to_dict())
    assert again == r and again.to_dict() == r.to_dict()
    ternary = recipe.QuantizeConfig(weight_bits="ternary").to_dict()
    assert recipe.QuantizeConfig.from_dict(ternary).weight_bits == "ternary"


def test_unknown_step_and_key_name_the_nearest(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("steps:\n  - prnue: {ratio: 0.5}\n")
    with pytest.raises(ConfigError, match=r"r.yaml: step 1: unknown step 'prnue'.*did you mean 'prune'"):
        recipe.load_recipe(p)
    p.write_text("steps:\n  - prune: {sparsty: 0.5}\n")
    with pytest.raises(ConfigError,
                       match=r"step 1 \(prune\): unknown key 'sparsty'.*did you mean 'sparsity'"):
        recipe.load_recipe(p)
    p.write_text("step:\n  - prune: {}\n")
    with pytest.raises(ConfigError, match="did you mean 'steps'"):
        recipe.load_recipe(p)
    p.write_text("steps: []\n")
    with pytest.raises(ConfigError, match="non-empty list"):
        recipe.load_recipe(p)


def test_bad_values_fail_in_their_step():
    ctx = _ctx()
    for steps, msg in [([{"prune": {"sparsity": 1.2}}], "outside \\[0, 1\\)"),
                       ([{"quantize": {"weight_bits": 20}}], "outside 1-16"),
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
        {"prune": {"method": "structured", "sparsity": 0.5, "epochs": 1}},
        {"prune": {"sparsity": 0.5, "schedule": "iterative", "rounds": 2, "epochs": 1}},
        {"quantize": {"mode": "ptq", "weight_bits": 8, "calibration_samples": 64}}]})
    result = run_recipe(build("digits_cnn"), r, ctx)
    m, rows = result
    assert len(rows) == 5 and rows[0].step == "input"
    # digits_cnn: conv 8 (80) + conv 16 (1,168) + fc 64->10 (650) = 1,898 params; float32 bytes
    assert rows[0].bytes == 1898 * 4 and rows[0].ratio == 1.0
    assert rows[2].macs < rows[1].macs  # structured pruning removes MACs
    assert rows[3].params < rows[2].params  # unstructured removes non-zeros
    assert rows[4].bytes == model_size(m).bytes and rows[4].ratio == pytest.approx(1898 * 4 / rows[4].bytes)
    assert rows[4].ratio > 4
    assert "accuracy" in format_table(rows)
    assert result.state.qparams["scheme"] == "tflm-int8"  # explicit state, not an attribute on the model
    assert result.state.qparams == quant_params(m)


def test_sensitivity_guided_prune_reaches_the_target():
    from tinyopt.compress.prune import sparsity

    torch.manual_seed(0)
    r = recipe.Recipe.from_dict({"steps": [{"prune": {"sparsity": 0.6, "sensitivity": True, "epochs": 0}}]})
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


def test_old_words_still_load_with_a_deprecation_warning():
    """ratio -> sparsity, bits/act_bits -> weight_bits/activation_bits, calib_batches (batches) ->
    calibration_samples (samples = batches x batch_size): same configs as the new words give."""
    old = {"batch_size": 32, "steps": [{"prune": {"ratio": 0.3}},
                                       {"quantize": {"bits": 4, "act_bits": 8, "calib_batches": 2}}]}
    new = {"batch_size": 32, "steps": [{"prune": {"sparsity": 0.3}},
                                       {"quantize": {"weight_bits": 4, "activation_bits": 8,
                                                     "calibration_samples": 64}}]}
    with pytest.warns(DeprecationWarning) as seen:
        r = recipe.Recipe.from_dict(old)
    assert r == recipe.Recipe.from_dict(new)
    text = " ".join(str(w.message) for w in seen)
    assert "'ratio' is deprecated, write 'sparsity'" in text and "calibration_samples: 64" in text
    with pytest.warns(DeprecationWarning, match="write 'sparsity'"):
        assert recipe.PruneConfig(ratio=0.25).sparsity == 0.25
    with pytest.warns(DeprecationWarning), pytest.raises(ConfigError, match="both 'ratio' and 'sparsity'"):
        recipe.PruneConfig.from_dict({"ratio": 0.2, "sparsity": 0.3})


def test_configs_are_checked_when_made_with_the_nearest_word():
    from tinyopt.compress import PruneConfig, QuantizeConfig

    with pytest.raises(ConfigError, match="method 'structual' is not valid.*did you mean 'structured'"):
        PruneConfig(method="structual")
    with pytest.raises(ConfigError, match="observer 'minmx'.*did you mean 'minmax'"):
        QuantizeConfig(observer="minmx")
    with pytest.raises(ConfigError, match=r"step 2 \(quantize\).*mode 'qta'.*did you mean 'qat'"):
        recipe.Recipe.from_dict({"steps": ["prune", {"quantize": {"mode": "qta"}}]})


def test_loading_a_recipe_does_not_import_torch(tmp_path):
    import subprocess
    import sys

    (tmp_path / "r.yaml").write_text("steps:\n  - prune: {sparsity: 0.5, method: structured}\n"
                                     "  - cluster: {dense_bits: 4}\n  - huffman\n  - distill: "
                                     "{student: zoo:mlp}\n")
    code = ("import sys; from tinyopt.compress import load_recipe, PruneConfig; "
            f"r = load_recipe({str(tmp_path / 'r.yaml')!r}); assert len(r.steps) == 4; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_shared_name_lists_agree_with_their_modules():
    from tinyopt.compress import configs, observers

    assert set(configs.OBSERVERS) == set(observers.OBSERVERS)


def test_overrides_change_the_named_steps():
    r = recipe.Recipe.from_dict({"steps": [{"prune": {"epochs": 2}}, {"finetune": {"epochs": 3}},
                                           {"quantize": {"mode": "qat", "epochs": 4}}]})
    o = r.with_overrides(["*.epochs=0.5", "prune.sparsity=0.7", "3.weight_bits=4", "seed=5"])
    assert [c.epochs for _, c in o.steps] == [0.5, 0.5, 0.5]
    assert o.steps[0][1].sparsity == 0.7 and o.steps[2][1].weight_bits == 4 and o.seed == 5
    assert r.steps[0][1].epochs == 2  # the original is unchanged
    with pytest.raises(ConfigError, match="no step 'prnue'.*did you mean 'prune'"):
        r.with_overrides(["prnue.epochs=1"])
    with pytest.raises(ConfigError, match="unknown key 'sparsty'"):
        r.with_overrides(["prune.sparsty=0.5"])
    with pytest.raises(ConfigError, match="not KEY=VALUE"):
        r.with_overrides(["epochs"])
