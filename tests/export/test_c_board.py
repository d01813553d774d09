"""Cortex-M4 build under qemu: outputs equal the host build's, instruction counts, sizes; missing tools."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from conftest import RESNET_INT8, need
from tinyopt.errors import ToolchainError
from tinyopt.export.c import generate_sources, write_library
from tinyopt.export.c.board import APT, build_host, build_m4, require, run_host, run_qemu
from tinyopt.graph import load_model

HAVE_ARM = shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm") and shutil.which("cc")
arm = pytest.mark.skipif(not HAVE_ARM, reason=f"Cortex-M toolchain or qemu absent: {APT}")


@arm
@pytest.mark.parametrize("path", [RESNET_INT8], ids=["resnet8"])  # KWS runs through the CLI test
def test_m4_outputs_equal_host_and_counts_are_deterministic(path, tmp_path):
    g = load_model(need(path))
    lib = generate_sources(g)
    write_library(lib.files, tmp_path / "lib")
    xs = np.random.default_rng(3).integers(-128, 128, size=(5, lib.input_bytes), dtype=np.int8)
    m4 = build_m4(tmp_path / "lib", tmp_path / "m4", xs)  # -Werror, Cortex-M4F hard float flags
    outs, counts = run_qemu(m4.elf, lib.output_bytes)
    host = run_host(build_host(tmp_path / "lib", tmp_path / "host"), xs, lib.output_bytes)
    assert np.array_equal(outs, host)
    # the library's RAM is its arena (input included) and nothing else: no hidden static state
    assert m4.ram_bytes == lib.arena_bytes
    assert 0 < m4.flash_bytes < path.stat().st_size  # smaller than the .tflite it came from
    # counts vary only with data-dependent branches (clamps, softmax): within 0.1 % of each other
    assert counts.min() > lib.macs / 4 and (counts.max() - counts.min()) < 1e-3 * counts.min()
    _, again = run_qemu(m4.elf, lib.output_bytes)
    assert np.array_equal(counts, again)  # -icount: the same binary counts the same, run after run


def test_missing_tool_names_the_install_command(monkeypatch):
    monkeypatch.setenv("PATH", "")
    with pytest.raises(ToolchainError) as e:
        require("qemu-system-arm")
    msg = str(e.value)
    assert "'qemu-system-arm' is not installed" in msg and "apt-get install" in msg and "\n" not in msg


@pytest.mark.skipif(shutil.which("cc") is None, reason="no host C compiler (cc)")
def test_failed_compilation_is_a_toolchain_error(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "broken.c").write_text("int f(void) { return undefined_name; }\n")
    (tmp_path / "main.c").write_text("int main(void) { return 0; }\n")
    with pytest.raises(ToolchainError, match="host compilation failed: .*undefined_name"):
        build_host(tmp_path / "lib", tmp_path / "exe", main_c=tmp_path / "main.c")
