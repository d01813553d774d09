"""PyTorch references: zoo and file.py:factory with keyword arguments, paths recorded relative to an
output folder, the file's digest checked on rebuild, and the user's dataclasses working."""

import os

import pytest
import torch

from tinyopt._modelref import ModelRef, is_torch_ref
from tinyopt.errors import ConfigError, ModelFormatError

NET = '''
from dataclasses import dataclass

from torch import nn


@dataclass
class Size:
    width: int = 3


def make(width=Size().width, classes=2):
    return nn.Linear(width, classes)
'''


def test_zoo_and_file_references(tmp_path, monkeypatch):
    (tmp_path / "net.py").write_text(NET)
    monkeypatch.chdir(tmp_path)
    assert is_torch_ref("zoo:lenet5") and is_torch_ref("a/b.py:make") and not is_torch_ref("m.tflite")
    assert ModelRef.parse("zoo:mlp", {"hidden": [4]}).build().classifier[0].in_features == 4
    m = ModelRef.parse("net.py:make", {"width": 5, "classes": 7}).build()
    assert (m.in_features, m.out_features) == (5, 7)  # keyword arguments reach the factory
    assert ModelRef.parse("net.py:make").label == "net.py:make"
    with pytest.raises(ConfigError, match="not a PyTorch model reference"):
        ModelRef.parse("net.onnx")


def test_relative_record_and_digest(tmp_path, monkeypatch):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "net.py").write_text(NET)
    (tmp_path / "out").mkdir()
    monkeypatch.chdir(tmp_path)
    ref = ModelRef.parse("src/net.py:make").resolved()
    rec = ref.relative_to("out")
    assert rec.source == "../src/net.py:make" and rec.sha256 == ref.sha256 and len(ref.sha256) == 64
    back = ModelRef.from_dict(rec.to_dict())
    monkeypatch.chdir(tmp_path / "out")
    assert isinstance(back.build(["."]), torch.nn.Linear)  # found relative to the output's folder
    monkeypatch.chdir(tmp_path)
    with open("src/net.py", "a") as f:
        f.write("\n# changed\n")
    with pytest.warns(UserWarning, match="changed since the model was compressed"):
        back.build(["out"])
    os.remove("src/net.py")
    with pytest.raises(ModelFormatError, match="file not found.*looked in out"):
        back.build(["out"])


def test_factory_problems_name_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.py").write_text("import not_a_module\n")
    with pytest.raises(ModelFormatError, match="bad.py: importing the file failed: ModuleNotFoundError"):
        ModelRef.parse("bad.py:make").build()
    (tmp_path / "num.py").write_text("def make():\n    return 3\n")
    with pytest.raises(ModelFormatError, match="returned a int, not a torch.nn.Module"):
        ModelRef.parse("num.py:make").build()
    (tmp_path / "args.py").write_text("def make(n):\n    return n\n")
    with pytest.raises(ModelFormatError, match=r"calling make\(\) failed.*Fix: make make\(\) work without"):
        ModelRef.parse("args.py:make").build()
