"""`tinyopt run`: bad input exits 2 with one line naming the problem; the example projects are valid."""

import wave

import numpy as np
import pytest
from tests.conftest import FSDD, MNIST, need

from tinyopt.cli import main
from tinyopt.pipeline.config import load_project, resolve_path


def run(args, capsys):
    capsys.readouterr()
    code = main(["run", *map(str, args)])
    return code, capsys.readouterr().err


def test_unknown_key_names_the_nearest(tmp_path, capsys):
    p = tmp_path / "p.yaml"
    p.write_text("name: x\nmodel:\n  zoo: mlp\n  arsg: {}\n")
    code, err = run([p, "--out", tmp_path / "o"], capsys)
    assert code == 2
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert "line 4: unknown key 'arsg' in section 'model'; did you mean 'args'?" in err
    assert not (tmp_path / "o").exists()


def test_empty_data_folder(tmp_path, capsys):
    (tmp_path / "wavs").mkdir()
    p = tmp_path / "p.yaml"
    p.write_text("name: x\ndata: {source: wav, path: wavs}\nfeatures: {block: mfcc}\nmodel: {zoo: dscnn}\n")
    code, err = run([p, "--out", tmp_path / "o"], capsys)
    assert code == 2 and "wavs: no .wav files in the folder" in err
    assert not (tmp_path / "o" / "report.html").exists()


def test_wav_with_another_rate(tmp_path, capsys):
    d = tmp_path / "wavs"
    d.mkdir()
    for name, rate in (("0_a_0.wav", 8000), ("1_a_0.wav", 8000), ("1_a_1.wav", 16000)):
        with wave.open(str(d / name), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(np.zeros(800, "<i2").tobytes())
    p = tmp_path / "p.yaml"
    p.write_text("name: x\ndata: {source: wav, path: wavs, sample_rate: 8000}\nfeatures: {block: mfcc}\n"
                 "model: {zoo: dscnn}\n")
    code, err = run([p, "--out", tmp_path / "o"], capsys)
    assert code == 2 and "1_a_1.wav: sample rate 16000 Hz, but the data set is 8000 Hz" in err


def test_csv_with_nan_and_a_label_with_one_example(tmp_path, capsys):
    rows = ["ax,ay,label"] + [f"{i},{i},walk" for i in range(8)] + ["1,nan,walk"]
    (tmp_path / "log.csv").write_text("\n".join(rows) + "\n")
    p = tmp_path / "p.yaml"
    p.write_text("name: x\ndata: {source: csv, path: log.csv, window: 4}\nmodel: {zoo: cnn1d}\n")
    code, err = run([p, "--out", tmp_path / "o"], capsys)
    assert code == 2 and "log.csv: line 10, column 2: nan in column 'ay'" in err
    rows = ["ax,ay,label"] + [f"{i},{i},walk" for i in range(8)] + [f"{i},{i},idle" for i in range(4)]
    (tmp_path / "log.csv").write_text("\n".join(rows) + "\n")
    code, err = run([p, "--out", tmp_path / "o"], capsys)
    assert code == 2 and "class 'idle' has 1 example(s)" in err


def test_device_that_cannot_fit_stops_after_analysis(tmp_path, capsys):
    # LeNet-5 int8 holds 431,080 weights: over the 256 KB flash of a custom-sized board
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.random((40, 28, 28, 1), dtype=np.float32), y=np.repeat([0, 1], 20))
    p = tmp_path / "p.yaml"
    p.write_text("name: x\ndata: {source: npz, path: d.npz}\nmodel: {zoo: lenet5}\n"
                 "optimize: {quantize: {mode: ptq}}\ntarget: {device: nano33ble, flash_kb: 256}\n")
    code, err = run([p, "--out", tmp_path / "o"], capsys)
    assert code == 2
    assert "lenet5 (int8) does not fit nano33ble" in err and "flash" in err and "over by" in err
    assert sorted(q.name for q in (tmp_path / "o").iterdir()) == ["cache"]  # no model, report, summary


@pytest.mark.parametrize("name, data", [("mnist.yaml", MNIST), ("spoken-digits.yaml", FSDD)])
def test_examples_are_valid_and_point_at_the_shared_data(examples, name, data, monkeypatch):
    need(data)
    monkeypatch.chdir(examples.parent)
    cfg = load_project(examples / name)
    assert resolve_path(cfg["data"]["path"], cfg["_file"]).resolve() == data.resolve()


def test_out_is_a_file(tmp_path, capsys):
    (tmp_path / "taken").write_text("x")
    p = tmp_path / "p.yaml"
    p.write_text("name: x\n")
    code, err = run([p, "--out", tmp_path / "taken"], capsys)
    assert code == 2 and "taken: the output path exists and is not a folder" in err
