"""The verdict: the seeds' exam end to end (fits / does not fit, by how much, what would make it fit)."""

from __future__ import annotations

import pytest

from conftest import KWS_INT8, ROOT, need
from tinyopt.analysis import analyze
from tinyopt.analysis.whatif import scale_filters
from tinyopt.devices import custom_device, get_device
from tinyopt.errors import ConfigError
from tinyopt.graph import load_model

SPECS = ROOT / "examples" / "specs"
EXAM_DEVICE = get_device("exam")


def _kb(nbytes):
    return nbytes / 1024


def test_exam_base_does_not_fit_textbook():
    a = analyze(load_model(SPECS / "exam.yaml"), EXAM_DEVICE, memory="textbook")
    assert a.params == 91203
    assert round(_kb(a.textbook_total_bytes), 2) == 1348.51
    assert a.fits is False
    # 1,348.51 - 520 = 828.51 KB over.
    assert any("1,348.51 KB > 520.00 KB" in r and "828.51 KB" in r for r in a.reasons)


def test_exam_pruned_float_does_not_fit():
    a = analyze(load_model(SPECS / "exam_pruned.yaml"), EXAM_DEVICE, memory="textbook")
    assert a.params == 22267
    # Key: 86.98 + 496.12 = 583.1 KB (exact 597,100 B = 583.105 KB).
    assert a.textbook_total_bytes == 22267 * 4 + 126 * 126 * 8 * 4
    assert round(_kb(a.textbook_total_bytes), 1) == 583.1
    assert a.fits is False


def test_exam_int8_fits():
    a = analyze(load_model(SPECS / "exam.yaml"), EXAM_DEVICE, dtype="int8", memory="textbook")
    # Key: 1,348.51 / 4 = 337.13 KB (91,203 + 254,016 bytes).
    assert a.textbook_total_bytes == 91203 + 126 * 126 * 16
    assert round(_kb(a.textbook_total_bytes), 2) == 337.13
    assert a.fits is True


def test_exam_pruned_int8_fits():
    a = analyze(load_model(SPECS / "exam_pruned.yaml"), EXAM_DEVICE, dtype="int8", memory="textbook")
    # Key: 583.1 / 4 = 145.77 KB (exact: 22,267 + 127,008 = 149,275 B = 145.776 KB).
    assert a.textbook_total_bytes == 22267 + 126 * 126 * 8
    assert abs(_kb(a.textbook_total_bytes) - 145.77) < 0.01
    assert a.fits is True


def test_exam_suggestions_are_computed():
    a = analyze(load_model(SPECS / "exam.yaml"), EXAM_DEVICE, memory="textbook")
    assert a.suggestions[0] == "int8: needs RAM 337.13 KB of 520.00 KB RAM: fits"
    # Pruning all but the last layer to 50 %: 8 and 16 filters → 80 + 1,168 + 43,203 = 44,451 params,
    # 44,451 × 4 + 126×126×8×4 = 685,836 B = 669.76 KB: too big. 25 % (4 and 8 filters):
    # 40 + 296 + (7,200+1)×3 = 21,939 params, 87,756 + 254,016 = 341,772 B = 333.76 KB: fits.
    prune = [s for s in a.suggestions if s.startswith("prune conv/dense filters to 25 %")]
    assert prune == ["prune conv/dense filters to 25 % (21,939 params): needs RAM 333.76 KB "
                     "of 520.00 KB RAM: fits"]
    # Pruning + int8 already fits at 75 % (12 and 24 filters): 120 + 2,616 + 64,803 = 67,539 params;
    # 67,539 × 1 + 126×126×12 × 1 = 258,051 B = 252.00 KB.
    assert ("prune conv/dense filters to 75 % (67,539 params) + int8: needs RAM 252.00 KB "
            "of 520.00 KB RAM: fits"
            in a.suggestions)


def test_scale_filters_by_hand():
    g = scale_filters(load_model(SPECS / "exam.yaml"), 0.5)
    w = [g.tensors[n.inputs[1]].shape for n in g.nodes if n.op in ("CONV_2D", "FULLY_CONNECTED")]
    assert w == [(8, 3, 3, 1), (16, 3, 3, 8), (3, 30 * 30 * 16)]
    from tinyopt.analysis.cost import layer_costs, totals

    assert totals(layer_costs(g)).params == 80 + 1168 + 43203


def test_scale_filters_on_a_real_model_keeps_the_classifier():
    g = scale_filters(load_model(need(KWS_INT8)), 0.5)
    fc = [n for n in g.nodes if n.op == "FULLY_CONNECTED"][0]
    assert g.tensors[fc.inputs[1]].shape == (12, 32)
    dw = [n for n in g.nodes if n.op == "DEPTHWISE_CONV_2D"][0]
    assert g.tensors[dw.inputs[1]].shape == (1, 3, 3, 32)


def test_no_device_means_no_verdict():
    a = analyze(load_model(SPECS / "exam.yaml"))
    d = a.to_dict()
    assert d["fits"] is None and d["latency_s"] is None and d["energy_mj"] is None and d["reasons"] == []


def test_custom_device_from_flags():
    dev = custom_device(sram_kb=2000)
    a = analyze(load_model(SPECS / "exam.yaml"), dev, memory="textbook")
    assert a.fits is True and a.latency_s is None
    over = custom_device(EXAM_DEVICE, flash_kb=100)
    a = analyze(load_model(SPECS / "exam.yaml"), over, dtype="int8")
    # flash: 91,356 B int8 weights/int32 biases + quant params + code > 100 KB.
    assert a.fits is False and any(r.startswith("flash") and ">" in r for r in a.reasons)


def test_explain_shows_the_worked_solution():
    a = analyze(load_model(SPECS / "exam.yaml"), EXAM_DEVICE, memory="textbook")
    text = "\n".join(a.explain)
    assert "params = (3×3×1+1)×16 = 160" in text
    assert "params = (3×3×16+1)×32 = 4,640" in text
    assert "params = (28,800+1)×3 = 86,403" in text
    assert "params = 160 + 4,640 + 86,403 = 91,203" in text
    assert "= 364,812 B = 356.26 KB" in text
    assert "126×126×16 × 4 B = 1,016,064 B = 992.25 KB" in text
    assert "39,037,824 ops ÷ 10,000,000 FP32 FLOPS = 3.904 s" in text
    assert "1,348.51 KB > SRAM 520.00 KB → does not fit" in text


@pytest.mark.parametrize("kwargs", [{"dtype": "int4"}, {"memory": "magic"}])
def test_bad_options(kwargs):
    with pytest.raises(ConfigError):
        analyze(load_model(SPECS / "exam.yaml"), **kwargs)


def test_device_by_name_and_training_batch():
    a = analyze(load_model(SPECS / "exam.yaml"), "EXAM", memory="textbook", train_batch=4)
    assert a.device.name == "exam" and a.fits is False
    sgd = a.training["sgd"]
    assert sgd["batch"] == 4 and sgd["total_bytes"] == 2 * 364_812 + sgd["activations_bytes"]


def test_explain_pruned_exam_matches_the_key_terms():
    a = analyze(load_model(SPECS / "exam_pruned.yaml"), EXAM_DEVICE, dtype="int8", memory="textbook")
    text = "\n".join(a.explain)
    # Key: 80 + 584 + 21,603 = 22,267; FLOPs 2.28 M + 4.27 M (exact 4.29 M) + 0.04 M.
    assert "params = 80 + 584 + 21,603 = 22,267" in text
    assert "FLOPs = 2,286,144 + 4,286,592 + 43,200 = 6,615,936 (6.62 M" in text
    assert "6,615,936 ops ÷ 80,000,000 int8 OPS = 0.083 s" in text
    assert "parameter memory (textbook) = 22,267 × 1 B = 22,267 B = 21.75 KB" in text


def test_float_and_int8_latencies_come_from_one_model(examples):
    """Float is priced by the rate model scaled with the int8 cycle model's correction for this network,
    so int8 is faster than float exactly by the device's int8-OPS / FP32-FLOPS ratio."""
    from tinyopt.analysis import analyze
    from tinyopt.devices import get_device
    from tinyopt.graph import load_model

    dev = get_device("nano33ble")
    g = load_model(examples / "specs" / "exam_pruned.yaml")
    f, q = analyze(g, device=dev, dtype="float32"), analyze(g, device=dev, dtype="int8")
    assert f.latency_model == q.latency_model == "calibrated (cmsis-nn)"
    assert f.latency_s / q.latency_s == pytest.approx(dev.int8_ops / dev.fp32_flops, rel=1e-9)
