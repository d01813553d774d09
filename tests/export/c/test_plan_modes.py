"""The plan modes (speed / balanced / ram, a RAM budget) of the C library, through the generator, the Python
API and the CLI; and graphs whose only operators are aliases (RESHAPE, SQUEEZE), which need a copy."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from test_stream import random_network

from tinyopt.errors import BudgetError, TinyoptError
from tinyopt.export.c import generate_sources, write_library
from tinyopt.export.c.board import build_host, run_host
from tinyopt.graph.ir import Graph, Node, QuantParams, Tensor
from tinyopt.runtime import Interpreter

needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="no host C compiler (cc)")


def _q():
    return QuantParams(np.asarray([0.1], np.float32), np.asarray([3]))


def test_modes_order_the_arena_and_the_estimated_instructions():
    g = random_network(2)
    libs = {m: generate_sources(g, optimize=m) for m in ("speed", "balanced", "ram")}
    assert not libs["speed"].plan.segments
    assert libs["ram"].arena_bytes < libs["speed"].arena_bytes  # seed 2 gains by streaming
    assert libs["ram"].arena_bytes <= libs["balanced"].arena_bytes <= libs["speed"].arena_bytes
    base = libs["balanced"].plan.base_instructions
    assert libs["balanced"].plan.extra_instructions <= 0.15 * base
    chosen = [c for c in libs["ram"].plan.considered if c[2]]
    assert chosen == [(libs["ram"].arena_bytes, libs["ram"].plan.extra_instructions, True)]
    assert min(a for a, _, _ in libs["ram"].plan.considered) == libs["ram"].arena_bytes


def test_max_ram_takes_the_fastest_plan_that_fits_or_names_the_smallest():
    g = random_network(2)
    speed = generate_sources(g, optimize="speed")
    ram = generate_sources(g, optimize="ram")
    assert generate_sources(g, max_ram=speed.arena_bytes).plan.extra_instructions == 0  # speed fits: no cost
    fit = generate_sources(g, max_ram=ram.arena_bytes)
    assert fit.arena_bytes == ram.arena_bytes
    with pytest.raises(BudgetError, match=f"smallest possible is {ram.arena_bytes} bytes"):
        generate_sources(g, max_ram=ram.arena_bytes - 1)


def test_cli_max_ram_kb_impossible_exits_2_with_the_smallest_arena(tmp_path, capsys):
    from tinyopt.cli import main
    from tinyopt.export.tflite import save_tflite

    g = random_network(2)
    model = tmp_path / "net.tflite"
    save_tflite(g, model)
    least = generate_sources(g, optimize="ram").arena_bytes
    assert main(["deploy", str(model), "--out", str(tmp_path / "lib"), "--max-ram-kb", "0.01"]) == 2
    err = capsys.readouterr()
    assert f"smallest possible is {least} bytes" in err.out + err.err
    assert "Traceback" not in err.out + err.err
    assert not (tmp_path / "lib").exists()  # nothing written
    assert main(["deploy", str(model), "--out", str(tmp_path / "lib"), "--optimize", "ram", "--explain"]) == 0
    out = capsys.readouterr().out
    assert "row-streamed segments" in out and f"arena {least} bytes" in out


def test_api_deploy_takes_the_mode_keywords(tmp_path):
    import tinyopt

    g = random_network(2)
    d = tinyopt.deploy(g, target="c", out=tmp_path / "lib", optimize="ram")
    assert d.arena_bytes == generate_sources(g, optimize="ram").arena_bytes
    text = (tmp_path / "lib" / "tinyopt_model.h").read_text()
    assert f"#define TINYOPT_ARENA_BYTES {d.arena_bytes}\n" in text
    with pytest.raises(TinyoptError, match="unknown plan"):
        tinyopt.deploy(g, target="c", out=tmp_path / "x", optimize="smallest")


def _alias_graph(ops: list[str]) -> Graph:
    g = Graph("alias", source="<alias only>")
    shapes = {"RESHAPE": (1, 24), "SQUEEZE": (1, 24)}
    g.add_tensor(Tensor("x", (1, 1, 24) if ops[0] == "SQUEEZE" else (1, 4, 6), "int8", quant=_q()))
    g.inputs, cur = ["x"], "x"
    for j, op in enumerate(ops):
        y = g.add_tensor(Tensor(f"y{j}", shapes[op], "int8", quant=_q()))
        if op == "RESHAPE":
            g.add_tensor(Tensor(f"s{j}", (2,), "int32", data=np.array([1, 24], np.int32)))
            g.add_node(Node(f"n{j}", op, [cur, f"s{j}"], [y.name], {"new_shape": (1, 24)}))
        else:
            g.add_node(Node(f"n{j}", op, [cur], [y.name], {"squeeze_dims": (1,)}))
        cur = y.name
    g.outputs = [cur]
    return g.validate()


@needs_cc
@pytest.mark.parametrize("ops", [["RESHAPE"], ["SQUEEZE"]])
def test_a_graph_of_one_alias_copies_its_input(ops, tmp_path):
    g = _alias_graph(ops)
    lib = generate_sources(g)
    write_library(lib.files, tmp_path / "lib")
    xs = np.random.default_rng(0).integers(-128, 128, size=(4, 24), dtype=np.int8)
    out = run_host(build_host(tmp_path / "lib", tmp_path / "x.exe"), xs, lib.output_bytes)
    ref = Interpreter(g).run(xs.reshape(4, *g.tensors["x"].shape[1:]))[0].reshape(4, -1)
    assert np.array_equal(out, xs) and np.array_equal(out, ref)  # a reshape keeps every byte in order
