"""The device catalog: real boards with sources, lookup by name/alias, custom devices, clear errors."""

from __future__ import annotations

import pytest

from tinyopt.devices import core_table, custom_device, get_device, get_runtime, list_devices, list_runtimes
from tinyopt.errors import ConfigError

REQUIRED = {
    "nano33ble": "nRF52840", "esp32": None, "esp32s3": None, "stm32f746": None, "stm32l4r5": None,
    "stm32h743": None, "rp2040": "RP2040", "rp2350": None, "portenta-h7": None, "sparkfun-edge": None,
    "pico": "RP2040", "nrf5340": None, "samd21": None,
}


def test_at_least_twelve_real_boards_with_figures_and_sources():
    boards = [d for d in list_devices() if d.name != "exam"]
    assert len(boards) >= 12
    for d in boards:
        assert d.core in core_table(), d.name
        assert d.clock_mhz and d.sram_bytes and d.flash_bytes, d.name
        assert d.fpu in ("none", "single", "double") and isinstance(d.dsp, bool), d.name
        assert d.active_mw and d.fp32_flops and d.int8_ops, d.name
        assert len(d.source) > 20, d.name
        assert d.runtime in list_runtimes(), d.name
        core = core_table()[d.core]
        # Rates are documented estimates: clock × the core's per-cycle figures.
        assert d.fp32_flops == pytest.approx(d.clock_mhz * 1e6 * core["fp32_flops_per_cycle"])
        assert d.int8_ops == pytest.approx(d.clock_mhz * 1e6 * core["int8_ops_per_cycle"])
    names = {d.name for d in boards}
    assert set(REQUIRED) <= names
    for name, mcu in REQUIRED.items():
        if mcu:
            assert get_device(name).mcu == mcu
    assert any(d.core == "cortex-m0plus" for d in boards)


def test_exam_device():
    d = get_device("exam")
    assert d.sram_bytes == 520 * 1024 and d.fp32_flops == 10e6 and d.int8_ops == 80e6


def test_known_datasheet_figures():
    assert get_device("nano33ble").sram_bytes == 256 * 1024 and get_device("nano33ble").clock_mhz == 64
    assert get_device("stm32l4r5").sram_bytes == 640 * 1024 and get_device("stm32l4r5").clock_mhz == 120
    assert get_device("rp2040").sram_bytes == 264 * 1024
    assert get_device("samd21").sram_bytes == 32 * 1024


@pytest.mark.parametrize("name",
                         ["nano33ble", "Nano33BLE", "NANO-33-BLE", "nrf52840", "arduino-nano-33-ble-sense"])
def test_lookup_ignores_case_and_punctuation(name):
    assert get_device(name).name == "nano33ble"


def test_unknown_device_names_the_nearest():
    with pytest.raises(ConfigError) as e:
        get_device("nano33")
    msg = str(e.value)
    assert "unknown device 'nano33'" in msg and "nano33ble" in msg and "\n" not in msg


def test_custom_device_and_overrides():
    d = custom_device(sram_kb=64, fp32_flops=1e6)
    assert d.custom and d.sram_bytes == 65536 and d.fp32_flops == 1e6 and d.flash_bytes is None
    o = custom_device(get_device("esp32"), sram_kb=100)
    assert o.sram_bytes == 102400 and o.clock_mhz == 240 and o.custom and o.name == "esp32+flags"
    assert custom_device(get_device("esp32")) == get_device("esp32")


@pytest.mark.parametrize("kwargs", [{"sram_kb": 0}, {"sram_kb": -5}, {"flash_kb": 0}, {"fp32_flops": -1},
                                    {"int8_ops": 0}])
def test_custom_device_rejects_non_positive_sizes(kwargs):
    with pytest.raises(ConfigError, match="must be positive"):
        custom_device(**kwargs)


def test_runtimes_have_calibrated_constants_and_sources():
    for name in list_runtimes():
        rt = get_runtime(name)
        assert set(rt.cycles_per_mac) == {"conv", "depthwise", "fc"} and min(rt.cycles_per_mac.values()) > 0
        assert "MLPerf Tiny" in rt.source
    with pytest.raises(ConfigError, match="unknown runtime"):
        get_runtime("tvm")


def test_to_dict_round_numbers():
    d = get_device("stm32l4r5").to_dict()
    assert d["sram_kb"] == 640 and d["flash_kb"] == 2048 and d["name"] == "stm32l4r5"


def test_names_and_aliases_are_unique():
    def norm(s):
        return "".join(ch for ch in s.lower() if ch.isalnum())

    keys = [norm(k) for d in list_devices() for k in (d.name, *d.aliases)]
    assert len(keys) == len(set(keys))
    for d in list_devices():
        for k in (d.name, *d.aliases):
            assert get_device(k) is d
