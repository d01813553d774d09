"""The operator registry: every record complete and consistent, and nothing lists operators elsewhere."""

from __future__ import annotations

import inspect
import re
from importlib import resources
from pathlib import Path

import pytest

from tinyopt import ops
from tinyopt.graph._tflite_schema import BUILTIN_NAMES
from tinyopt.ops._record import Op

RECORDS = ops.records()
SRC = Path(ops.__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parents[1]


def _overrides(rec: Op, method: str) -> bool:
    return getattr(type(rec), method) is not getattr(Op, method)


@pytest.mark.parametrize("rec", RECORDS, ids=lambda r: r.name)
def test_record_is_complete(rec):
    assert rec.name and ops.get(rec.name) is rec
    if rec.builtin is not None:  # a TFLite builtin: its code names it in the schema's enum
        assert BUILTIN_NAMES[rec.builtin] == rec.name
    if rec.options is not None:
        slots = [s for f in rec.options.fields for s in f.slots]
        assert len(slots) == len(set(slots)), "two attributes in one options slot"
        assert rec.options.type > 0
    lo, hi = rec.arity
    assert 1 <= lo <= hi and all(lo <= p + 1 <= hi for p in rec.optional_inputs)
    assert _overrides(rec, "eval"), "every operator runs in the numpy runtime"
    if rec.param_inputs or rec.weight_axis is not None:
        assert _overrides(rec, "prepare")
    if rec.weight_axis is not None:
        assert rec.bias_input is not None and _overrides(rec, "macs")
    if rec.quant is not None:
        assert rec.quant.output == "input" or rec.quant.output == "calibrated" or len(rec.quant.output) == 2
    if not rec.tflm or rec.builtin is None:
        assert rec.missing_fix, "an operator TFLM cannot run says how to get rid of it"
    for names, method in ((rec.onnx, "from_onnx"), (rec.torch_modules, "from_torch_module"),
                          (rec.torch_functions, "from_torch_function"), (rec.spec_layers, "from_spec")):
        if names:
            assert _overrides(rec, method), f"{rec.name} claims {sorted(names)} but has no {method}"


@pytest.mark.parametrize("rec", [r for r in RECORDS if r.c is not None and r.c.file], ids=lambda r: r.name)
def test_c_kernel_exists_with_its_struct(rec):
    kernels = resources.files("tinyopt.export.c").joinpath("kernels")
    for stem in (rec.c.file, *rec.c.extra_files):
        assert kernels.joinpath(f"{stem}.c").is_file()
    own = kernels.joinpath(f"{rec.c.file}.h")  # a newer kernel's own header and/or the shared one
    header = (own.read_text() if own.is_file() else "") + kernels.joinpath("kernels.h").read_text()
    assert f"tinyopt_{rec.c.struct};" in header
    assert re.search(rf"void tinyopt_{rec.c.entry}\(", header)


def test_door_tables_have_no_conflicts():
    d = ops.doors()  # raises if two records claim one framework name
    assert d.onnx and d.torch_modules and d.torch_functions and d.spec_layers


@pytest.mark.parametrize("rec", [r for r in RECORDS if r.tflm], ids=lambda r: r.name)
def test_every_tflm_operator_is_tested_against_tflm(rec):
    """A record TFLM runs is exercised by a test under tests/ops/ (which compare with TFLM)."""
    texts = [p.read_text() for p in (TESTS / "ops").glob("test_*.py") if p.name != Path(__file__).name]
    assert any(f'"{rec.name}"' in t for t in texts), f"no test in tests/ops/ builds a {rec.name} node"


def test_no_operator_list_outside_the_registry():
    """Operator names appear as string literals only in their records (and the TFLite schema's enum)."""
    names = {r.name for r in RECORDS}
    pattern = re.compile(r'"(' + "|".join(sorted(names, key=len, reverse=True)) + r')"')
    offenders = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith("ops/") or rel.endswith("_tflite_schema.py"):
            continue
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line) and not line.lstrip().startswith(("#", ">>>", "...")):
                offenders.append(f"{rel}:{lineno}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_record_methods_have_docstrings_on_the_base():
    for name, member in inspect.getmembers(Op, inspect.isfunction):
        if not name.startswith("_"):
            assert member.__doc__ or name.startswith("from_"), name
