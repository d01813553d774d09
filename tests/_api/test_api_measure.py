"""``tinyopt.analyze`` / ``check`` / ``devices()``: figures of a module built on the spot checked by hand,
the report's attributes and display, the old keyword with its warning, and the runtime vocabulary."""

from __future__ import annotations

import warnings

import pytest
import torch

import tinyopt
from conftest import KWS_INT8, ROOT, need
from tinyopt.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_torch_thread")
EXAM = ROOT / "examples" / "specs" / "exam.yaml"


def test_module_on_the_spot_counts_by_hand():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(8 * 30 * 30, 10))
    r = tinyopt.analyze(net, example_input=torch.zeros(1, 3, 32, 32), device="nano33ble")
    # conv: 8 filters x 3x3x3 weights + 8 biases = 224; dense: 7200 x 10 + 10 = 72,010
    assert r.params == 224 + 72_010
    # conv: 30x30 outputs x 8 channels x 27 MACs = 194,400; dense: 72,000
    assert r.macs == 194_400 + 72_000 and r.flops == 2 * r.macs
    assert r.device == "nano33ble" and r.fits is True and r.model == "Sequential"
    # float32 weights, 4 bytes each (the model's own dtype)
    assert r.param_bytes == 4 * r.params


def test_report_attributes_text_and_html():
    r = tinyopt.analyze(EXAM, device="exam", memory="textbook")
    d = r.to_dict()
    assert set(d) <= set(dir(r)) and r.textbook_total_bytes == 1_380_876 == d["textbook_total_bytes"]
    d["params"] = -1  # to_dict gives a copy: the report is not changed through it
    assert r.params == 91_203
    with pytest.raises(AttributeError):
        r.no_such_figure  # noqa: B018
    text = repr(r)
    assert "Summary (KB = 1024 bytes)" in text and "DOES NOT FIT" in text and "91,203" in text
    assert "Worked solution" in r.text(explain=True)
    html = r._repr_html_()
    assert "<table>" in html and "Verdict on exam" in html and "91,203" in html


def test_old_rate_keyword_warns_and_means_inferences_per_s():
    new = tinyopt.analyze(need(KWS_INT8), device="nano33ble", battery_mah=500, inferences_per_s=4.0)
    with pytest.warns(DeprecationWarning, match="'rate' is deprecated, use 'inferences_per_s'"):
        old = tinyopt.analyze(KWS_INT8, device="nano33ble", battery_mah=500, rate=4.0)
    assert old.to_dict() == new.to_dict() and new.battery["inferences_per_s"] == 4.0
    with pytest.raises(TypeError, match="unexpected keyword argument 'ratee'"):
        tinyopt.analyze(KWS_INT8, ratee=4.0)


def test_check_runtime_words():
    assert tinyopt.check(need(KWS_INT8), runtime="tflm").runtime == "tflm-reference"
    assert tinyopt.check(KWS_INT8, runtime="CMSIS-NN").supported is True
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert tinyopt.check(KWS_INT8, target="tinyopt-c").runtime == "tinyopt-c"
    assert any("'target' is deprecated, use 'runtime'" in str(w.message) for w in caught)
    with pytest.raises(ConfigError, match="unknown runtime 'tflite'"):
        tinyopt.check(KWS_INT8, runtime="tflite")
    rep = tinyopt.check(EXAM)  # float spec on TFLM: supported; the table says so
    assert "operators supported on tflm-reference" in repr(rep)


def test_devices_catalog():
    table = tinyopt.devices()
    names = [d.name for d in table.devices]
    assert "nano33ble" in names and table.to_dict()["kb"] == 1024
    assert "nano33ble" in repr(table) and "<th>SRAM KB</th>" in table._repr_html_()
    assert tinyopt.devices.get_device("nano33ble").name == "nano33ble"  # the subpackage still works
