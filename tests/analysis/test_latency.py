"""Rate model (seeds), calibrated cycle model (MLPerf Tiny v1.0), energy and battery life."""

from __future__ import annotations

import pytest

from conftest import KWS_INT8, RESNET_INT8, ROOT, need
from tinyopt.analysis.cost import layer_costs, totals
from tinyopt.analysis.fit import analyze
from tinyopt.analysis.latency import (
    battery_life_h,
    calibrate,
    calibrate_cycle_factor,
    calibrated_latency_s,
    cycles,
    energy_mj,
    rate_latency_s,
)
from tinyopt.devices import Device, get_device, get_runtime
from tinyopt.errors import ConfigError
from tinyopt.graph import load_model

SPECS = ROOT / "examples" / "specs"


def test_quiz_100_mflops_at_25_mflops_is_4000_ms():
    dev = Device("quiz", fp32_flops=25e6)
    assert rate_latency_s(100_000_000, dev, "float32") * 1000 == pytest.approx(4000.0)


@pytest.mark.parametrize("spec,dtype,key_s,digits", [
    ("exam.yaml", "float32", 3.90, 2), ("exam_pruned.yaml", "float32", 0.66, 2),
    ("exam.yaml", "int8", 0.488, 3), ("exam_pruned.yaml", "int8", 0.083, 3),
])
def test_exam_latencies(spec, dtype, key_s, digits):
    # Key: 39.04 MFLOPs ÷ 10 MFLOPS = 3.90 s, ÷ 80 MOPS = 0.488 s; 6.62 M → 0.66 s / 0.083 s.
    a = analyze(load_model(SPECS / spec), get_device("exam"), dtype=dtype)
    assert a.latency_model == "rate"
    assert round(a.latency_s, digits) == key_s
    rate = 10e6 if dtype == "float32" else 80e6
    assert a.latency_s == a.flops / rate


# Published MLPerf Tiny latencies on the NUCLEO-L4R5ZI @ 120 MHz (seconds): the catalog's calibration
# points (KWS, IC, AD) and the validation model it was not calibrated on (VWW).
POINTS = {"tflm-reference": (0.1819, 0.7042, 0.01005), "cmsis-nn": (0.0751, 0.2269, 0.00758)}
VWW = {"tflm-reference": 1 / 1.665, "cmsis-nn": 1 / 4.339}   # 600.6 ms and 230.5 ms


def _calibration_models():
    return (layer_costs(load_model(need(KWS_INT8))), layer_costs(load_model(need(RESNET_INT8))),
            layer_costs(load_model(SPECS / "mlperf_ad.yaml"), "int8"))


@pytest.mark.parametrize("runtime", list(POINTS))
def test_calibration_reproduces_the_catalog_and_the_published_latencies(runtime):
    models = _calibration_models()
    rt = get_runtime(runtime)
    solved = calibrate(list(zip(models, POINTS[runtime])), 120e6, rt.cycles_per_other_op,
                       rt.per_op_overhead_cycles)
    for cls in ("conv", "depthwise", "fc"):
        assert solved[cls] == pytest.approx(rt.cycles_per_mac[cls], abs=1e-4)
    dev = get_device("stm32l4r5")
    for rows, seconds in zip(models, POINTS[runtime]):
        assert calibrated_latency_s(rows, dev, rt) == pytest.approx(seconds, rel=1e-4)


@pytest.mark.parametrize("runtime", list(POINTS))
def test_out_of_sample_model_within_25_percent(runtime):
    rows = layer_costs(load_model(SPECS / "mlperf_vww.yaml"), "int8")
    # MobileNetV1 0.25 @ 96×96: the known 7.49 M MACs (conv 3×3/2 + 13 depthwise-separable blocks + FC).
    assert totals(rows).macs == 7_489_664
    pred = calibrated_latency_s(rows, get_device("stm32l4r5"), get_runtime(runtime))
    assert abs(pred / VWW[runtime] - 1) < 0.25


# MLPerf Tiny v1.0, X-CUBE-AI, other cores (inferences per second): KWS, IC calibrate the core's cycle
# factor, VWW checks it.
OTHER_CORES = {"nucleo-u575zi-q": (22.608, 7.158, 7.496), "nucleo-h7a3zi-q": (59.667, 18.401, 19.722)}


@pytest.mark.parametrize("board", list(OTHER_CORES))
def test_core_cycle_factor_calibration_and_validation(board):
    kws, ic, _ = _calibration_models()
    vww = layer_costs(load_model(SPECS / "mlperf_vww.yaml"), "int8")
    dev = get_device(board)
    rt = get_runtime("cmsis-nn")
    f_kws, f_ic, f_vww = OTHER_CORES[board]
    factor = calibrate_cycle_factor([(kws, 1 / f_kws), (ic, 1 / f_ic)], rt, dev.clock_mhz * 1e6)
    assert factor == pytest.approx(dev.cycle_factor, abs=1e-4)
    assert abs(calibrated_latency_s(vww, dev, rt) * f_vww - 1) < 0.25


def test_mlperf_ad_spec_by_hand():
    t = totals(layer_costs(load_model(SPECS / "mlperf_ad.yaml")))
    # 640→128, 3 × 128→128, 128→8, 8→128, 3 × 128→128, 128→640.
    assert t.macs == 2 * 640 * 128 + 6 * 128 * 128 + 2 * 8 * 128 == 264_192
    assert t.params == t.macs + 8 * 128 + 8 + 640


def test_cycle_model_sums_its_parts():
    rows = layer_costs(load_model(SPECS / "exam.yaml"), "int8")
    rt = get_runtime("tflm-reference")
    b = cycles(rows, rt, 1.0)
    t = totals(rows)
    # The exam has two convs (2,286,144 + 17,146,368 MACs) and one dense layer (86,400 MACs).
    expected = 19_432_512 * rt.cycles_per_mac["conv"] + 86_400 * rt.cycles_per_mac["fc"] \
        + t.other_ops * rt.cycles_per_other_op + len(rows) * rt.per_op_overhead_cycles
    assert t.macs == 19_432_512 + 86_400
    assert b.total == pytest.approx(expected)
    assert cycles(rows, rt, 0.5).total == pytest.approx(expected / 2)


def test_calibration_rejects_a_singular_system():
    rows = layer_costs(load_model(SPECS / "exam.yaml"), "int8")
    with pytest.raises(ConfigError, match="non-physical"):
        calibrate([(rows, 1.0), (rows, 1.0), (rows, 1.0)], 120e6, 0.0, 0.0)


def test_int8_on_a_board_uses_the_calibrated_model():
    a = analyze(load_model(need(KWS_INT8)), get_device("nano33ble"))
    assert a.latency_model == "calibrated (cmsis-nn)"
    rt = get_runtime("cmsis-nn")
    # Same kernels on the same core class at 64 instead of 120 MHz: 120/64 × the calibrated 75.1 ms.
    assert a.latency_s == pytest.approx(0.0751 * 120 / 64, rel=1e-4)
    assert a.energy_mj == pytest.approx(9.9 * a.latency_s)
    assert rt.name == "cmsis-nn" and get_runtime("x-cube-ai").name == "cmsis-nn"


def test_energy_and_battery_life_by_hand():
    dev = Device("d", active_mw=50.0)
    assert energy_mj(0.2, dev) == pytest.approx(10.0)          # 50 mW × 0.2 s = 10 mJ
    assert energy_mj(None, dev) is None and energy_mj(0.2, Device("x")) is None
    # 10 mJ per inference at 1 inference/s = 10 mW average (no sleep power);
    # 1000 mAh × 3 V = 3 Wh = 10,800,000 mJ → 1,080,000 s = 300 h.
    assert battery_life_h(10.0, 1.0, 1000, 3.0) == pytest.approx(300.0)
    # With 1 mW sleep while idle 80 % of the time: 10 + 0.8 = 10.8 mW → 3000 / 10.8 h.
    assert battery_life_h(10.0, 1.0, 1000, 3.0, sleep_mw=1.0, latency_s=0.2) == pytest.approx(3000 / 10.8)
    assert battery_life_h(0.0, 0.0, 1000, 3.0) == float("inf")
    with pytest.raises(ConfigError):
        battery_life_h(10.0, 1.0, 0, 3.0)


def test_analyze_reports_battery_life():
    a = analyze(load_model(need(KWS_INT8)), get_device("stm32l4r5"), battery_mah=1000, battery_v=3.0,
                inferences_per_s=1.0)
    expected = battery_life_h(a.energy_mj, 1.0, 1000, 3.0, get_device("stm32l4r5").sleep_mw, a.latency_s)
    assert a.battery_life_h == pytest.approx(expected)


@pytest.mark.parametrize("path,published_uj", [(KWS_INT8, 3371.738), (RESNET_INT8, 10681.623)])
def test_energy_against_mlperf_energy_runs(path, published_uj):
    # MLPerf Tiny v1.0 energy, X-CUBE-AI on the NUCLEO-L4R5ZI (median µJ per inference). Our figure is the
    # datasheet run current (110 µA/MHz × 120 MHz × 3.3 V = 43.6 mW, not fitted) × the calibrated latency.
    a = analyze(load_model(need(path)), get_device("stm32l4r5"))
    assert a.energy_mj == pytest.approx(43.6 * a.latency_s)
    assert abs(a.energy_mj * 1000 / published_uj - 1) < 0.25


def test_explain_shows_cycle_model_and_battery_arithmetic():
    a = analyze(load_model(need(KWS_INT8)), get_device("stm32l4r5"), battery_mah=1000, battery_v=3.0)
    text = "\n".join(a.explain)
    # 2,368,000 conv MACs (320,000 first conv + 4 × 512,000 pointwise), 288,000 depthwise, 768 dense.
    assert "(2,368,000 conv MACs × 2.131 + 288,000 depthwise MACs × 12.1538 + 768 fc MACs × 3.3933" in text
    assert "÷ 120 MHz = 75.10 ms" in text
    assert "1000 mAh × 3 V ÷" in text and f"= {a.battery_life_h:,.1f} h" in text
    assert a.battery["average_mw"] == pytest.approx(3000 / a.battery_life_h)


def test_tinyopt_c_latency_is_the_built_librarys_estimated_cycles():
    """analyze --runtime tinyopt-c times the C library itself: its Cortex-M4 cycle estimate under qemu, times
    the core factor, at the board's clock (the nano33ble is an M4F at 64 MHz: factor 1)."""
    import shutil

    from conftest import KWS_INT8, need
    from tinyopt.analysis.fit import analyze
    from tinyopt.graph import load_model

    if not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")):
        pytest.skip("needs arm-none-eabi-gcc and qemu-system-arm (make toolchain)")
    from tinyopt.export.c.board import estimate_graph

    g = load_model(need(KWS_INT8))
    a = analyze(g, "nano33ble", runtime="tinyopt-c")
    est, _ = estimate_graph(g)
    assert a.latency_s == pytest.approx(est.cycles / 64e6, rel=1e-9)
    assert a.latency_model.startswith("tinyopt-c:") and f"{est.cycles:,}" in a.latency_model
