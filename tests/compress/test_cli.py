"""``tinyopt compress``: a full run writes a loadable state_dict and the table; bad input exits 2 with
one line and leaves no output file."""

import os
import pickle

import numpy as np
import pytest
import torch

from tinyopt.cli import main
from tinyopt.zoo import build


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (80, 8, 8), dtype=np.uint8)  # no channel axis, uint8: both handled
    y = (x[:, :4].mean((1, 2)) > x[:, 4:].mean((1, 2))).astype(np.int64)
    np.savez(tmp_path / "d.npz", x_train=x[:64], y_train=y[:64], x_val=x[64:], y_val=y[64:])
    (tmp_path / "r.yaml").write_text("seed: 1\nbatch_size: 32\nsteps:\n"
                                     "  - prune: {sparsity: 0.5, epochs: 1}\n"
                                     "  - quantize: {mode: ptq, weight_bits: 8, calibration_samples: 64}\n")
    torch.manual_seed(0)
    torch.save(build("digits_cnn").state_dict(), tmp_path / "c.pt")
    return tmp_path


def _run(files, *extra, recipe="r.yaml", ckpt="c.pt"):
    args = ["compress", "zoo:digits_cnn", "--recipe", str(files / recipe), "--data", str(files / "d.npz"),
            "--out", str(files / "out.pt"), "--no-progress", *extra]
    if ckpt:
        args += ["--checkpoint", str(files / ckpt)]
    return main(args)


def test_full_run(files, capsys):
    assert _run(files, "--json", str(files / "t.json"), "--qparams", str(files / "q.json")) == 0
    out = capsys.readouterr().out
    assert "CR" in out and "2. quantize" in out
    state = torch.load(files / "out.pt", weights_only=True)["state_dict"]
    model = build("digits_cnn")
    model.load_state_dict(state)  # same keys and shapes as the zoo model
    w = model.features[0].weight
    assert float((w == 0).float().mean()) >= 0.5
    # int8 per-channel: every weight is an integer multiple of its channel's scale amax / 127
    s = w.abs().amax((1, 2, 3), keepdim=True) / 127
    assert torch.allclose(w / s, (w / s).round(), atol=1e-3)
    import json
    q = json.loads((files / "q.json").read_text())
    assert q["scheme"] == "tflm-int8" and "x" in q["activations"]
    assert torch.allclose(torch.tensor(q["weights"]["features.0"]["scale"]), s.reshape(-1))
    rows = json.loads((files / "t.json").read_text())["rows"]
    assert rows[0]["step"] == "input" and len(rows) == 3


def _bad(files, capsys, **kw):
    assert _run(files, **kw) == 2
    err = capsys.readouterr().err.strip()
    assert "Fix:" in err and "\n" not in err and "Traceback" not in err
    assert not (files / "out.pt").exists()
    assert not [f for f in os.listdir(files) if f.startswith(".tinyopt-tmp")]
    return err


def test_unknown_step(files, capsys):
    (files / "bad.yaml").write_text("steps:\n  - quantise: {bits: 8}\n")
    assert "did you mean 'quantize'" in _bad(files, capsys, recipe="bad.yaml")


def test_unknown_key(files, capsys):
    (files / "bad.yaml").write_text("steps:\n  - quantize: {weight_bit: 8}\n")
    assert "did you mean 'weight_bits'" in _bad(files, capsys, recipe="bad.yaml")


def test_ratio_and_bits_out_of_range(files, capsys):
    (files / "bad.yaml").write_text("steps:\n  - prune: {sparsity: 1.0}\n")
    assert "outside [0, 1)" in _bad(files, capsys, recipe="bad.yaml")
    (files / "bad.yaml").write_text("steps:\n  - quantize: {weight_bits: 0}\n")
    assert "outside 1-16" in _bad(files, capsys, recipe="bad.yaml")


def test_checkpoint_of_another_architecture(files, capsys):
    torch.save(build("lenet5").state_dict(), files / "other.pt")
    err = _bad(files, capsys, ckpt="other.pt")
    assert "other.pt" in err and "does not match the architecture" in err


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_pickled_object_refused_not_executed(files, capsys):
    marker = files / "executed"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    with open(files / "evil.pt", "wb") as f:
        pickle.dump({"w": Evil()}, f)
    err = _bad(files, capsys, ckpt="evil.pt")
    assert "evil.pt" in err and "refused" in err
    assert not marker.exists()


def test_nan_checkpoint(files, capsys):
    sd = build("digits_cnn").state_dict()
    sd["features.0.weight"][0, 0, 0, 0] = float("nan")
    torch.save(sd, files / "nan.pt")
    assert "features.0.weight" in _bad(files, capsys, ckpt="nan.pt")


def test_empty_data(files, capsys):
    np.savez(files / "d.npz", x_train=np.zeros((0, 8, 8), np.float32), y_train=np.zeros(0, np.int64),
             x_val=np.zeros((1, 8, 8), np.float32), y_val=np.zeros(1, np.int64))
    assert "x_train is empty" in _bad(files, capsys)


def test_structured_output_chains_with_pruned_flag(files, capsys):
    (files / "s.yaml").write_text("steps:\n  - prune: {method: structured, sparsity: 0.5, epochs: 0}\n")
    assert _run(files, recipe="s.yaml") == 0
    (files / "out.pt").rename(files / "small.pt")
    assert _run(files, recipe="r.yaml", ckpt="small.pt") == 2  # shapes differ: refused without --pruned
    assert "does not match the architecture" in capsys.readouterr().err
    assert _run(files, "--pruned", recipe="r.yaml", ckpt="small.pt") == 0
    assert torch.load(files / "out.pt", weights_only=True)["state_dict"]["features.0.weight"].shape[0] == 4


def test_qparams_without_quantize_step(files, capsys):
    (files / "p.yaml").write_text("steps:\n  - prune: {sparsity: 0.5, epochs: 0}\n")
    assert _run(files, "--qparams", str(files / "q.json"), recipe="p.yaml") == 2
    err = capsys.readouterr().err
    assert "--qparams needs a recipe with a quantize step" in err and not (files / "out.pt").exists()


def test_old_recipe_words_run_with_one_note_each(files, capsys):
    (files / "old.yaml").write_text("steps:\n  - prune: {ratio: 0.5, epochs: 0}\n"
                                    "  - quantize: {mode: ptq, bits: 8, calib_batches: 1}\n")
    assert _run(files, recipe="old.yaml") == 0
    notes = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("note:")]
    assert len(notes) == 3 and any("'ratio' is deprecated, write 'sparsity'" in n for n in notes)
    assert any("calibration_samples: 64 at batch_size 64" in n for n in notes)


def test_bare_zoo_name_still_works_with_a_note(files, capsys):
    args = ["compress", "digits_cnn", "--recipe", str(files / "r.yaml"), "--data", str(files / "d.npz"),
            "--out", str(files / "out.pt"), "--no-progress"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "note: the bare zoo name 'digits_cnn' is deprecated, write zoo:digits_cnn" in err


def test_compress_run_is_the_cli_in_python(files):
    """The Python entry the CLI is built on: same words, same output bytes as the command."""
    from tinyopt.compress import compress_run

    assert _run(files) == 0
    run = compress_run("zoo:digits_cnn", files / "r.yaml", str(files / "d.npz"), checkpoint=files / "c.pt")
    assert run.input_shape == (1, 8, 8) and [r.step for r in run.rows][0] == "input"
    run.save(files / "again.pt")
    assert (files / "again.pt").read_bytes() == (files / "out.pt").read_bytes()
