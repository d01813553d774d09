"""BATCH_MATMUL against TFLM (60 seeded configurations: ranks 2-5, broadcast batch axes, adj_x/adj_y, two
activations or one constant, zero points; float32 and int8), by hand, through convert, as a C kernel
(host and Cortex-M4), and through the ONNX (MatMul) and PyTorch (matmul, bmm, @) doors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from onnx import helper

from ops._oracles import weights_summing_to
from ops._spatial import (
    assert_c_matches,
    assert_onnx_matches_ort,
    assert_torch_matches,
    c_outputs,
    convert_and_match_tflm,
    export_onnx,
    needs_cc,
    onnx_file,
    quantize_input,
    to_nhwc,
)
from runtime._reference import assert_matches_reference, qtensor, random_int8, run_tflm
from tinyopt.convert import convert_graph
from tinyopt.errors import ModelFormatError, UnsupportedOpError
from tinyopt.export.tflite import graph_to_tflite_bytes, single_op_model
from tinyopt.graph.ir import Tensor
from tinyopt.graph.torch_import import from_torch
from tinyopt.runtime import Interpreter
from tinyopt.runtime.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier

pytestmark = pytest.mark.usefixtures("one_torch_thread")
OP = "BATCH_MATMUL"


def _case(seed: int):
    """Graph shapes (activations have batch 1 in front), adj flags, and which operand is a constant."""
    rng = np.random.default_rng(seed)
    m, k, n = (int(v) for v in rng.integers(1, 7, size=3))
    constant = ("none", "lhs", "rhs")[seed % 3]
    adj_x, adj_y = (bool(v) for v in rng.integers(0, 2, size=2))
    rank_l, rank_r = (int(v) for v in rng.integers(2, 6, size=2))
    rank = max(rank_l, rank_r)
    if rank == 2:  # the output (M, N) is an activation: M is its batch axis
        m = 1
    if rank_l == 2 and constant != "lhs":  # so is the first axis of a 2-D activation
        k, m = (1, m) if adj_x else (k, 1)
    if rank_r == 2 and constant != "rhs":
        n, k = (1, k) if adj_y else (n, 1)
    batch = [1, *(int(v) for v in rng.integers(1, 4, size=rank - 3))] if rank > 2 else []

    def shape(r, rows, cols, adj, const):
        lead = [b if rng.integers(0, 3) else 1 for b in batch[len(batch) - (r - 2):]] if r > 2 else []
        if lead and not const:
            lead[0] = 1
        return (*lead, *((cols, rows) if adj else (rows, cols)))

    return (rng, shape(rank_l, m, k, adj_x, constant == "lhs"), shape(rank_r, k, n, adj_y, constant == "rhs"),
            constant, adj_x, adj_y)


def _operands(rng, lhs, rhs, constant, int8):
    def make(name, shape, const):
        if int8:
            data = rng.integers(-128, 128, size=shape).astype(np.int8) if const else None
            scale, zp = float(rng.uniform(0.01, 0.1)), int(rng.integers(-128, 128))
            return qtensor(name, shape, scale, zp, data=data)
        return Tensor(name, shape, data=rng.normal(size=shape).astype(np.float32) if const else None)
    return make("lhs", lhs, constant == "lhs"), make("rhs", rhs, constant == "rhs")


@pytest.mark.parametrize("seed", range(60))
def test_matches_tflm(seed):
    rng, lhs, rhs, constant, adj_x, adj_y = _case(seed)
    int8 = bool(seed % 2)
    a, b = _operands(rng, lhs, rhs, constant, int8)
    y = Tensor("y", (1,))
    if int8:
        y = qtensor("y", (1,), float(rng.uniform(0.05, 2.0)), int(rng.integers(-128, 128)))
    g = single_op_model(OP, [a, b], y, {"adj_x": adj_x, "adj_y": adj_y})
    rows = []
    for t in (a, b):
        if not t.constant:
            rows.append(random_int8(rng, (5, *t.shape[1:])) if int8
                        else rng.normal(size=(5, *t.shape[1:])).astype(np.float32))
    ours = assert_matches_reference(g, rows)[0]
    if not int8:  # independently: numpy's matmul, row by row
        rank = max(len(a.shape), len(b.shape))
        la, lb = ((t.data if t.constant else rows.pop(0)).reshape(1 if t.constant else 5,
                                                                   *(1,) * (rank - len(t.shape)), *t.shape)
                  for t in (a, b))
        la = np.swapaxes(la, -1, -2) if adj_x else la
        lb = np.swapaxes(lb, -1, -2) if adj_y else lb
        want = np.matmul(la, lb).reshape(5, -1)
        np.testing.assert_allclose(ours.reshape(5, -1), want, rtol=1e-5, atol=1e-5)


def test_int8_by_hand():
    # [[1, 2]] (zero point 1, scale 0.5) @ [[3], [4]] (zero point 0, scale 0.25): real values [0, 0.5] and
    # [0.75, 1] -> 0.5; output scale 0.125, zero point -1 -> 0.5 / 0.125 - 1 = 3
    a = qtensor("a", (1, 2), 0.5, 1)
    b = qtensor("b", (2, 1), 0.25, 0, data=np.array([[3], [4]], np.int8))
    g = single_op_model(OP, [a, b], qtensor("y", (1,), 0.125, -1))
    out = assert_matches_reference(g, np.array([[1, 2]], np.int8))[0]
    assert out.tolist() == [[3]]


def test_inner_dimensions_must_agree():
    with pytest.raises(ModelFormatError, match="inner dimensions differ.*Fix: give lhs"):
        single_op_model(OP, [Tensor("a", (1, 2, 3)), Tensor("b", (1, 4, 5))], Tensor("y", (1,)))
    with pytest.raises(ModelFormatError, match="do not broadcast"):
        single_op_model(OP, [Tensor("a", (1, 2, 2, 3)), Tensor("b", (1, 3, 3, 5))], Tensor("y", (1,)))


def test_int16_model_is_refused_not_miscomputed():
    g = single_op_model(OP, [qtensor("a", (1, 3), 0.01, 0, dtype="int16"),
                             qtensor("b", (3, 2), 0.01, 0, dtype="int16", data=np.ones((3, 2), np.int16))],
                        qtensor("y", (1,), 0.1, 0, dtype="int16"))
    with pytest.raises(UnsupportedOpError, match=r"int16 \(16x8\) batch matmul.*Fix: convert with int8"):
        Interpreter(g)


@needs_cc
@pytest.mark.parametrize("seed", [1, 4, 7, 13, 17, 23])
def test_c_kernel_equals_runtime_and_tflm(seed, tmp_path):
    """One operand a constant (stored in the library) and the other the library's input."""
    rng, lhs, rhs, constant, adj_x, adj_y = _case(seed)
    a, b = _operands(rng, lhs, rhs, "rhs" if constant == "none" else constant, True)
    g = single_op_model(OP, [a, b], qtensor("y", (1,), 0.5, 3), {"adj_x": adj_x, "adj_y": adj_y})
    x = a if not a.constant else b
    assert_c_matches(g, random_int8(rng, (12, *x.shape[1:])), tmp_path)


@needs_cc
@pytest.mark.parametrize("seed", [0, 3, 6, 9, 12, 15])
def test_c_kernel_on_two_activations_equals_runtime_and_tflm(seed, tmp_path):
    """Both operands are library inputs (back to back in the input buffer)."""
    rng, lhs, rhs, _, adj_x, adj_y = _case(seed)
    a, b = _operands(rng, lhs, rhs, "none", True)
    g = single_op_model(OP, [a, b], qtensor("y", (1,), 0.5, 3), {"adj_x": adj_x, "adj_y": adj_y})
    xa, xb = random_int8(rng, (12, *a.shape[1:])), random_int8(rng, (12, *b.shape[1:]))
    want = run_tflm(graph_to_tflite_bytes(g), [xa, xb])[0].reshape(12, -1)
    np.testing.assert_array_equal(Interpreter(g).run([xa, xb])[0].reshape(12, -1), want)
    both = np.concatenate([xa.reshape(12, -1), xb.reshape(12, -1)], axis=1)
    np.testing.assert_array_equal(c_outputs(g, both, tmp_path), want)


# -- doors: (N, C, L) values multiply through their transposed graph tensors

class Gram(torch.nn.Module):
    """Three 1x1 projections of an (N, C, L) input multiplied together: two activations per product."""

    def __init__(self, how: str):
        super().__init__()
        self.how = how
        self.q, self.k, self.v = (torch.nn.Conv1d(4, 6, 1) for _ in range(3))

    def forward(self, x):
        q, k, v = self.q(x), self.k(x), self.v(x)
        if self.how == "matmul":
            s = torch.matmul(q, k)
        elif self.how == "bmm":
            s = torch.bmm(q, k)
        else:
            s = q @ k
        return (s * 0.1).matmul(v)


@pytest.mark.parametrize("how", ["matmul", "bmm", "operator"])
def test_torch_matmul_of_two_activations_matches_torch(how):
    torch.manual_seed(0)
    g = assert_torch_matches(Gram(how), (4, 6), atol=1e-4)
    assert [n.op for n in g.nodes].count(OP) == 2


def test_exported_gram_model_matches_ort(tmp_path):
    torch.manual_seed(0)
    path = export_onnx(Gram("operator"), (4, 6), tmp_path / "gram.onnx", opset=13)
    x = np.random.default_rng(0).normal(size=(3, 4, 6)).astype(np.float32)
    g = assert_onnx_matches_ort(path, x, atol=1e-4)
    assert [n.op for n in g.nodes].count(OP) == 2


def test_torch_matmul_of_images_is_refused():
    class Images(torch.nn.Module):
        def forward(self, x):
            return x @ x

    with pytest.raises(UnsupportedOpError, match="matmul of a nchw tensor.*Fix: multiply \\(N, C, L\\)"):
        from_torch(Images(), (2, 3, 3))


def test_onnx_matmul_of_two_activations_and_with_constants(tmp_path):
    rng = np.random.default_rng(0)
    two = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("MatMul", ["x", "r"], ["y"])]
    path = onnx_file(tmp_path, two, (1, 5, 5))  # x @ relu(x), both (1, 5, 5) activations
    g = assert_onnx_matches_ort(path, rng.normal(size=(3, 5, 5)).astype(np.float32), atol=1e-4)
    assert [n.op for n in g.nodes] == ["RELU", OP]
    w = rng.normal(size=(5, 3)).astype(np.float32)
    c = rng.normal(size=(2, 4)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["t"]),  # a batched activation times a constant (5, 3)
             helper.make_node("MatMul", ["c", "t"], ["y"])]  # a constant on the left: (2, 4) @ (1, 4, 3)
    path = onnx_file(tmp_path, nodes, (1, 4, 5), [("w", w), ("c", c)], name="consts.onnx")
    g = assert_onnx_matches_ort(path, rng.normal(size=(3, 4, 5)).astype(np.float32), atol=1e-4)
    assert [n.op for n in g.nodes] == [OP, OP]


def test_onnx_matmul_of_a_flat_input_and_a_weight_stays_a_dense_layer(tmp_path):
    w = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    path = onnx_file(tmp_path, [helper.make_node("MatMul", ["x", "w"], ["y"])], (1, 6), [("w", w)])
    x = np.random.default_rng(1).normal(size=(4, 6)).astype(np.float32)
    g = assert_onnx_matches_ort(path, x, atol=1e-5)
    assert [n.op for n in g.nodes] == ["FULLY_CONNECTED"]


def test_convert_two_activation_products_runs_bit_exact_in_tflm():
    torch.manual_seed(0)
    g = from_torch(Gram("matmul").eval(), (4, 6))
    rng = np.random.default_rng(0)
    q = convert_and_match_tflm(g, rng.normal(size=(32, 1, 6, 4)).astype(np.float32),
                               rng.normal(size=(16, 1, 6, 4)).astype(np.float32))
    assert [n.op for n in q.nodes].count(OP) == 2


# -- the four C kernels of issue #14 in one library, under qemu for the Cortex-M4

class AllFour(torch.nn.Module):
    """conv -> bilinear x2 -> ConvTranspose2d x2 -> nearest to 2x3 -> (N, 4, 6) -> two projections
    multiplied: (5 x 6) @ (6 x 6)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 4, 3, padding=1)
        self.up = torch.nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1)
        self.near = torch.nn.Upsample(size=(2, 3), mode="nearest")
        self.q, self.k = torch.nn.Conv1d(4, 5, 1), torch.nn.Conv1d(4, 6, 1)

    def forward(self, x):
        y = torch.nn.functional.interpolate(self.conv(x), scale_factor=2, mode="bilinear")
        z = self.near(torch.relu(self.up(y))).flatten(2)
        return torch.matmul(self.q(z), self.k(z))


@pytest.mark.skipif(not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")),
                    reason="no arm-none-eabi-gcc / qemu-system-arm")
def test_the_four_kernels_on_cortex_m4_equal_tflm(tmp_path):
    from tinyopt.export.c import generate_sources, write_library
    from tinyopt.export.c.board import build_m4, run_qemu

    torch.manual_seed(2)
    g = assert_torch_matches(AllFour(), (2, 3, 3), atol=1e-4)
    assert {OP, "TRANSPOSE_CONV", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR"} <= {n.op for n in g.nodes}
    x = torch.rand(40, 2, 3, 3).numpy()
    q = convert_graph(g, to_nhwc(x[:32]))
    xs = quantize_input(q, to_nhwc(x[32:]))
    ref = run_tflm(graph_to_tflite_bytes(q), [xs])[0].reshape(len(xs), -1)
    lib = generate_sources(q)
    write_library(lib.files, tmp_path / "lib")
    m4 = build_m4(tmp_path / "lib", tmp_path / "m4", xs.reshape(len(xs), -1))
    outs, _ = run_qemu(m4.elf, lib.output_bytes)
    np.testing.assert_array_equal(outs, ref)
    np.testing.assert_array_equal(c_outputs(q, xs, tmp_path / "host"), ref)
    np.testing.assert_array_equal(Interpreter(q).run(xs)[0].reshape(ref.shape), ref)


def test_the_four_operators_round_trip_through_tflite_and_pass_check(tmp_path):
    """Written to .tflite and read back (float and int8): the same nodes and attributes, the same outputs;
    ``check`` finds every node runnable in TFLM and in the C library."""
    from tinyopt.graph import load_model
    from tinyopt.runtime.support import check_support

    torch.manual_seed(2)
    g = from_torch(AllFour().eval(), (2, 3, 3))
    x = to_nhwc(torch.rand(16, 2, 3, 3).numpy())
    q = convert_graph(g, x)
    for graph, data in ((g, x), (q, quantize_input(q, x))):
        path = tmp_path / f"{len(graph.nodes)}-{graph.tensors[graph.inputs[0]].dtype}.tflite"
        path.write_bytes(graph_to_tflite_bytes(graph))
        back = load_model(path)
        assert [(n.op, n.attrs) for n in back.nodes] == [(n.op, n.attrs) for n in graph.nodes]
        np.testing.assert_array_equal(Interpreter(back).run(data)[0], Interpreter(graph).run(data)[0])
    for target in ("tflm", "tinyopt-c"):
        rows = check_support(q, target)
        assert all(r.supported for r in rows), [(r.op, r.reason) for r in rows if not r.supported]
    tc = next(r for r in check_support(q, "tflm") if r.op == "TRANSPOSE_CONV")
    assert "per-channel, stride 2x2, SAME" in tc.reason


# (lhs scale, rhs scale, output scale, acc, TFLM's output): the double product of the scales gives the
# multipliers 1596262583 and 1323675884 (shifts -9 and -7), the float32 product 1596262630 and 1323675820.
# acc x multiplier / 2^31 = 9983.49988 (9983.50018 with float32) and 11071.50047 (11071.49994): the high
# multiply rounds to 9983 / 9984 and 11072 / 11071, and the rounding shift to 19 / 20 (9984 / 512 = 19.5)
# and 87 / 86 (11072 / 128 = 86.5): TFLM's 19 and 87 are the double product's.
TIES = [(0.032589931041002274, 0.01650870405137539, 0.370588481426239, 13431, 19),
        (0.06639506667852402, 0.01635424792766571, 0.2254885882139206, 17962, 87)]


@needs_cc
@pytest.mark.parametrize("ls,rs,out_s,acc,want", TIES)
def test_multiplier_is_the_double_product_on_a_rounding_tie(ls, rs, out_s, acc, want, tmp_path):
    """A row of ones times the columns +-w, w summing to acc: TFLM gives +-want, and so do the runtime and
    the C library; the float32 product of the scales would give another number."""
    col = weights_summing_to(acc)
    k = len(col)
    w = np.stack([col, -col], axis=1).astype(np.int8)
    g = single_op_model(OP, [qtensor("x", (1, k), ls, 0), qtensor("w", w.shape, rs, 0, data=w)],
                        qtensor("y", (1,), out_s, 0))
    xs = np.ones((1, k), np.int8)
    ref = run_tflm(graph_to_tflite_bytes(g), [xs])[0].reshape(1, -1)
    assert ref.tolist() == [[want, -want]]
    f32 = np.float32
    m32, s32 = quantize_multiplier(float(f32(f32(ls) * f32(rs))) / float(f32(out_s)))
    assert int(multiply_by_quantized_multiplier(acc, m32, s32)) != want  # the old formula misses it
    np.testing.assert_array_equal(Interpreter(g).run(xs)[0].reshape(1, -1), ref)
    np.testing.assert_array_equal(c_outputs(g, xs, tmp_path), ref)
