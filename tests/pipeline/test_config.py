import pytest

from tinyopt.errors import ConfigError
from tinyopt.pipeline.config import SCHEMA, load_project, resolve_path, validate


def write(tmp_path, text, name="p.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_defaults_fill_every_section():
    cfg = validate({"name": "x"})
    assert cfg["training"]["epochs"] == SCHEMA["training"]["epochs"]
    assert cfg["deploy"]["prefix"] == "x"
    assert cfg["optimize"] == {"prune": None, "quantize": None}


def test_unknown_top_level_key_names_line_and_nearest(tmp_path):
    p = write(tmp_path, "name: a\ntrainig:\n  epochs: 3\n")
    with pytest.raises(ConfigError) as e:
        load_project(p)
    msg = str(e.value)
    assert "p.yaml: line 2: unknown key 'trainig' in the project; did you mean 'training'?" in msg
    assert "Fix: rename it to 'training'." in msg


def test_unknown_nested_key(tmp_path):
    p = write(tmp_path, "name: a\ntraining:\n  lr: 0.1\n  epoch: 3\n")
    with pytest.raises(ConfigError,
                       match=r"line 4: unknown key 'epoch' in section 'training'; did you mean 'epochs'"):
        load_project(p)
    p = write(tmp_path, "optimize:\n  prune: {sparsty: 0.5}\n")
    with pytest.raises(ConfigError,
                       match=r"unknown key 'sparsty' in optimize.prune; did you mean 'sparsity'"):
        load_project(p)


def test_unknown_key_without_a_near_one_lists_the_valid_keys():
    with pytest.raises(ConfigError, match="valid keys: .*deploy.*training"):
        validate({"zzzzzz": 1})


def test_bad_choices_and_types():
    with pytest.raises(ConfigError, match="data.source: 'mnsit' is not one of .*did you mean 'mnist'"):
        validate({"data": {"source": "mnsit", "path": "x"}})
    with pytest.raises(ConfigError, match="section 'training' must be a mapping, got list"):
        validate({"training": [1, 2]})
    with pytest.raises(ConfigError, match="needs data.path"):
        validate({"data": {"source": "wav"}})
    with pytest.raises(ConfigError, match="optimize.quantize.mode: 'qta'"):
        validate({"optimize": {"quantize": {"mode": "qta"}}})


def test_paths_resolve_against_the_project_file_first(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "data").mkdir()
    proj = write(tmp_path / "sub", "name: a\n")
    monkeypatch.chdir(tmp_path)
    assert resolve_path("data", str(proj)) == tmp_path / "sub" / "data"
    (tmp_path / "other").mkdir()
    assert resolve_path("other", str(proj)) == tmp_path / "other"  # falls back to the current folder


def test_one_word_per_concept_with_the_old_words_still_read():
    """The project file says calibration_samples (as recipes and the CLI do); the old 'calibration' (and
    a recipe's old 'ratio' for sparsity) still load, with a deprecation warning naming the new word."""
    cfg = validate({"optimize": {"quantize": {"mode": "ptq"}, "prune": True}})
    assert cfg["optimize"]["quantize"]["calibration_samples"] == 256
    assert cfg["optimize"]["prune"]["sparsity"] == 0.5
    with pytest.warns(DeprecationWarning, match="optimize.quantize.calibration is deprecated, write calibr"):
        cfg = validate({"optimize": {"quantize": {"calibration": 64}, "prune": {"ratio": 0.3}}})
    quantize = cfg["optimize"]["quantize"]
    assert quantize["calibration_samples"] == 64 and "calibration" not in quantize
    assert cfg["optimize"]["prune"]["sparsity"] == 0.3
    with pytest.raises(ConfigError, match="both 'calibration' and 'calibration_samples'"):
        validate({"optimize": {"quantize": {"calibration": 64, "calibration_samples": 32}}})


def test_the_cli_prints_an_old_word_as_one_note(tmp_path, capsys):
    from tinyopt.cli import main

    p = write(tmp_path, "data: {source: nope}\noptimize:\n  quantize: {calibration: 64}\n")
    assert main(["validate", str(p)]) == 2  # the bad source fails validation; the note comes first
    err = capsys.readouterr().err
    assert "note: " in err and "optimize.quantize.calibration is deprecated, write calibration_samples" in err
    assert err.count("note:") == 1 and "DeprecationWarning" not in err
