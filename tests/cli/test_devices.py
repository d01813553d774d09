"""`tinyopt devices`: the catalog as JSON and as a table."""

from __future__ import annotations

import json

from tinyopt.cli import main


def test_devices_json(capsys):
    assert main(["devices", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["kb"] == 1024
    boards = [x for x in d["devices"] if x["name"] != "exam"]
    assert len(boards) >= 12
    for b in boards:
        assert {"name", "core", "clock_mhz", "sram_kb", "flash_kb", "fpu", "dsp", "active_mw", "fp32_flops",
                "int8_ops", "source"} <= set(b)
        assert b["sram_kb"] * 1024 == b["sram_bytes"]
    exam = next(x for x in d["devices"] if x["name"] == "exam")
    assert exam["sram_kb"] == 520 and exam["fp32_flops"] == 10e6 and exam["int8_ops"] == 80e6


def test_devices_table(capsys):
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "KB = 1024 bytes" in out
    for name in ("nano33ble", "esp32s3", "stm32l4r5", "sparkfun-edge", "samd21", "exam"):
        assert name in out
