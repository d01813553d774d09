"""What RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR share: TFLM's source coordinates, and the framework
doors (ONNX Resize / Upsample, PyTorch nn.Upsample / F.interpolate), which pick the record by mode.

A framework resize becomes a TFLite resize only when TFLite's flags (``align_corners``,
``half_pixel_centers``) compute the same thing for the model's own sizes: nearest neighbour when every
output pixel reads the same source pixel, bilinear when every output pixel interpolates at the same source
coordinate. PyTorch is asked directly (its call runs on a small probe: the source index of each output
pixel, or values to interpolate); ONNX's coordinate rules are computed from the specification. Anything
else is refused, naming the mode and the fix: a resize that is close but not equal is never substituted.
"""

from __future__ import annotations

import numpy as np

from tinyopt.ops import _common as c

FLAGS = ((False, False), (False, True), (True, False), (True, True))  # (align_corners, half_pixel_centers)


# -- TFLM's coordinates (resize_nearest_neighbor.h, resize_bilinear.h) --------------------------------------

def nearest_index(out_size: int, in_size: int, align_corners: bool, half_pixel: bool) -> np.ndarray:
    """``GetNearestNeighbor`` for every output index: float32 arithmetic as the reference, then
    ``TfLiteRound`` (halves away from zero) with align_corners, else floor; clamped to the input."""
    f32 = np.float32
    if align_corners and out_size > 1:
        scale = f32(in_size - 1) / f32(out_size - 1)
    else:
        scale = f32(in_size) / f32(out_size)
    v = (np.arange(out_size, dtype=f32) + f32(0.5 if half_pixel else 0.0)) * scale
    v64 = v.astype(np.float64)  # exact: the float32 product, rounded or floored without a new rounding
    idx = np.floor(v64 + 0.5) if align_corners else np.floor(v64)
    idx = np.minimum(idx.astype(np.int64), in_size - 1)
    return np.maximum(idx, 0) if half_pixel else idx


def bilinear_float_coords(out_size: int, in_size: int, align_corners: bool, half_pixel: bool):
    """``ComputeInterpolationValues`` (float kernel): the float32 source coordinate and its two neighbours."""
    f32 = np.float32
    scale = f32(in_size) / f32(out_size)
    if align_corners and out_size > 1:
        scale = f32(in_size - 1) / f32(out_size - 1)
    y = np.arange(out_size, dtype=f32)
    v = (y + f32(0.5)) * scale - f32(0.5) if half_pixel else y * scale
    lo = np.maximum(np.floor(v).astype(np.int64), 0)
    hi = np.minimum(np.ceil(v).astype(np.int64), in_size - 1)
    return v.astype(f32), lo, hi


def scale_10(out_size: int, in_size: int, align_corners: bool) -> int:
    """The integer kernel's source step in 1/1024 pixel, rounded to nearest (``ResizeBilinearInteger``)."""
    if align_corners and out_size > 1:
        return ((1 << 10) * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    return ((1 << 10) * in_size + out_size // 2) // out_size


def _trunc_div(a: np.ndarray, b: int) -> np.ndarray:
    """C's integer division (toward zero) of an int64 array by a positive int."""
    return np.where(a < 0, -((-a) // b), a // b)


def bilinear_int_coords(out_size: int, in_size: int, step: int, half_pixel: bool):
    """``ComputeInterpolationValuesInteger``: the source coordinate in 1/1024 pixel and its neighbours."""
    y = np.arange(out_size, dtype=np.int64)
    v = y * step + step // 2 - (1 << 9) if half_pixel else y * step
    lo = np.maximum(_trunc_div(v, 1 << 10), 0)
    hi = np.minimum(_trunc_div(v + (1 << 10) - 1, 1 << 10), in_size - 1)
    return v, lo, hi


def size_of(graph, node, fail) -> tuple[int, int]:
    """The constant ``size`` operand (new height, new width), checked."""
    t = c.in_tensor(graph, node, 1)
    if t is None or t.data is None or t.dtype != "int32" or t.size != 2:
        fail("needs a constant int32 size operand of two values (height, width)",
             "give the new size as a constant [height, width]")
    h, w = (int(v) for v in np.asarray(t.data).ravel())
    if h <= 0 or w <= 0:
        fail(f"size [{h}, {w}] is not positive", "give a positive height and width")
    return h, w


def resize_shape(graph, node, fail) -> tuple[int, ...]:
    x = graph.tensors[node.inputs[0]]
    if len(x.shape) != 4:
        fail(f"expects a 4-D NHWC input, got shape {list(x.shape)}", "resize 4-D image tensors")
    h, w = size_of(graph, node, fail)
    return (x.shape[0], h, w, x.shape[3])


def read_size(r, ins) -> None:
    """Importer checks TFLM's Prepare makes: a 4-D input, a constant int32 size of two values."""
    r.ranks(ins, (4, 1))
    size = r.const_int(ins[1], "size").ravel()
    if size.size != 2 or (size <= 0).any():
        r.fail(f"size {size.tolist()} is not a positive (height, width) pair")


def check_same_quant(graph, node) -> None:
    """TFLM's int8 resizes move (or interpolate) raw values: the output must keep the input's parameters."""
    if c.scalar_qparams(graph, node, node.inputs[0]) != c.scalar_qparams(graph, node, node.outputs[0]):
        c.fail(graph, node, "input and output quantization differ (TFLM copies the int8 values unchanged)",
               "give the output the input's scale and zero point")


# -- the doors ---------------------------------------------------------------------------------------

def build(b, name: str, x, out_hw: tuple[int, int], nearest: bool, flags: tuple[bool, bool]):
    """A framework resize of a channels-first value to ``out_hw`` (H', W'; a 1-D value: (1, L'))."""
    from tinyopt.ops.resize_bilinear import ResizeBilinear
    from tinyopt.ops.resize_nearest_neighbor import ResizeNearestNeighbor

    op = ResizeNearestNeighbor.name if nearest else ResizeBilinear.name
    size = b.const(f"{name}/size", np.asarray(out_hw, np.int32), "int32")
    attrs = {"align_corners": bool(flags[0]), "half_pixel_centers": bool(flags[1])}
    return b.emit(name, op, [x.name, size], attrs, x.layout)


def spatial(b, x, what: str) -> tuple[int, int]:
    """(H, W) of a channels-first 4-D value, or (1, L) of a 3-D one; anything else is refused."""
    if x.layout == "nchw":
        return x.shape[2], x.shape[3]
    if x.layout == "ncl":
        return 1, x.shape[2]
    return b.unsupported(f"{what} of a {len(x.shape)}-D {x.layout} tensor {list(x.shape)}",
                         "resize (N, C, H, W) or (N, C, L) tensors")


def _nearest_flags(want_rows: np.ndarray, want_cols: np.ndarray, in_hw, out_hw):
    """The TFLite flags whose nearest-neighbour tables equal the wanted source indices, or None."""
    for flags in FLAGS:
        if (np.array_equal(nearest_index(out_hw[0], in_hw[0], *flags), want_rows)
                and np.array_equal(nearest_index(out_hw[1], in_hw[1], *flags), want_cols)):
            return flags
    return None


def _bilinear_flags(want_rows: np.ndarray, want_cols: np.ndarray, in_hw, out_hw):
    """The TFLite flags whose bilinear source coordinates (clamped to the input, where TFLM's weights put
    them) equal the wanted ones, or None."""
    for flags in FLAGS[:3]:  # TFLM refuses align_corners with half_pixel_centers
        ok = True
        for want, n_in, n_out in ((want_rows, in_hw[0], out_hw[0]), (want_cols, in_hw[1], out_hw[1])):
            v, _, _ = bilinear_float_coords(n_out, n_in, *flags)
            ok = ok and np.allclose(np.clip(v, 0, n_in - 1), np.clip(want, 0, n_in - 1), rtol=0, atol=1e-5)
        if ok:
            return flags
    return None


# ONNX: the specification's coordinate transformations (x_resized -> x_original) and nearest roundings.
ONNX_MODES = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn")


def onnx_coords(mode: str, n_out: int, n_in: int, scale: float) -> np.ndarray:
    y = np.arange(n_out, dtype=np.float32)
    s = np.float32(scale)
    if mode == "half_pixel":
        return (y + np.float32(0.5)) / s - np.float32(0.5)
    if mode == "pytorch_half_pixel":
        return (y + np.float32(0.5)) / s - np.float32(0.5) if n_out > 1 else np.zeros(n_out, np.float32)
    if mode == "align_corners":
        return y * np.float32(n_in - 1) / np.float32(n_out - 1) if n_out > 1 else np.zeros(n_out, np.float32)
    if mode == "asymmetric":
        return y / s
    return (y + np.float32(0.5)) / s  # tf_half_pixel_for_nn


def onnx_nearest(v: np.ndarray, rounding: str, n_in: int, downsampling: bool) -> np.ndarray:
    v = v.astype(np.float64)
    if rounding == "simple":  # Upsample (opset <= 9): ceil when shrinking, else truncation
        idx = np.ceil(v) if downsampling else np.trunc(v)
    elif rounding == "floor":
        idx = np.floor(v)
    elif rounding == "ceil":
        idx = np.ceil(v)
    else:
        half = v - np.floor(v) == 0.5
        tie = np.floor(v) if rounding == "round_prefer_floor" else np.ceil(v)
        idx = np.where(half, tie, np.floor(v + 0.5))
    return np.clip(idx, 0, n_in - 1).astype(np.int64)


def _text(v, default: str) -> str:
    v = default if v is None else v
    return v.decode() if isinstance(v, bytes) else str(v)


def _onnx_rules(cv, node, a: dict, ins: list[str]):
    """(coordinate mode, nearest rounding, scales, sizes) of a Resize or Upsample, what TFLite cannot
    follow refused."""
    b = cv.b
    if node.op_type == "Upsample" or cv.opset < 11:  # opset 7-10: asymmetric, ORT's 'simple' rounding
        return "asymmetric", "simple", a.get("scales") if "scales" in a else cv.const(ins[1], "scales"), None
    coord = _text(a.get("coordinate_transformation_mode"), "half_pixel")
    if int(a.get("antialias", 0)):
        b.unsupported("Resize with antialias=1", "export the resize with antialias off")
    if _text(a.get("keep_aspect_ratio_policy"), "stretch") != "stretch":
        b.unsupported("Resize with keep_aspect_ratio_policy", "give the output sizes (policy 'stretch')")
    if coord not in ONNX_MODES:
        b.unsupported(f"Resize coordinate_transformation_mode '{coord}'",
                      f"export with one of {', '.join(ONNX_MODES)}")
    scales = cv.const(ins[2], "scales") if len(ins) > 2 and ins[2] else None
    sizes = cv.const(ins[3], "sizes") if len(ins) > 3 and ins[3] else None
    if scales is not None and np.asarray(scales).size == 0:
        scales = None
    return coord, _text(a.get("nearest_mode"), "round_prefer_floor"), scales, sizes


def _onnx_sizes(b, op: str, x, axes, scales, sizes) -> tuple[list[int], list[float]]:
    """Every axis's output size and scale (ONNX Runtime's: floor(in * scale), or scale = out / in)."""
    full_sizes, full_scales = list(x.shape), [1.0] * len(x.shape)
    if scales is None and sizes is None:
        b.unsupported(f"{op} without constant scales or sizes", "give scales or sizes as constants")
    for k, ax in enumerate(axes):
        if sizes is not None:
            full_sizes[ax] = int(np.asarray(sizes).ravel()[k])
            full_scales[ax] = float(np.float32(full_sizes[ax]) / np.float32(x.shape[ax]))
        else:
            full_scales[ax] = float(np.asarray(scales, np.float32).ravel()[k])
            full_sizes[ax] = int(np.floor(np.float32(x.shape[ax]) * np.float32(full_scales[ax])))
    if full_sizes[:2] != list(x.shape[:2]):
        b.unsupported(f"{op} of the batch or channel axis ({list(x.shape)} -> {full_sizes})",
                      "resize the spatial axes only")
    if min(full_sizes) <= 0:
        b.unsupported(f"{op} to an empty size {full_sizes}", "give sizes of at least 1")
    return full_sizes, full_scales


def from_onnx(cv, node, name: str, a: dict, ins: list[str]):
    """ONNX Resize (opset 10+) and Upsample (opset 7-9): nearest or linear over H and W (or L)."""
    b, op = cv.b, node.op_type
    x = cv.val(ins[0])
    in_hw = spatial(b, x, op)
    mode = _text(a.get("mode"), "nearest")
    if mode not in ("nearest", "linear"):
        b.unsupported(f"{op} mode '{mode}'", "use mode 'nearest' or 'linear'")
    coord, rounding, scales, sizes = _onnx_rules(cv, node, a, ins)
    rank = len(x.shape)
    sizes, scales = _onnx_sizes(b, op, x, [int(v) % rank for v in a.get("axes", range(rank))], scales, sizes)
    out_h, out_w = ([1] + sizes[2:])[-2:]
    out_hw = (out_h, out_w)
    sc = tuple(([1.0] + scales[2:])[-2:])
    coords = [onnx_coords(coord, o, i, s) for o, i, s in zip(out_hw, in_hw, sc)]
    if mode == "nearest":
        want = [onnx_nearest(v, rounding, i, s < 1) for v, i, s in zip(coords, in_hw, sc)]
        flags = _nearest_flags(want[0], want[1], in_hw, out_hw)
    else:
        flags = _bilinear_flags(coords[0], coords[1], in_hw, out_hw)
    if flags is None:
        rule = f"coordinate_transformation_mode '{coord}'"
        rule += f", nearest_mode '{rounding}'" if mode == "nearest" else ""
        b.unsupported(f"{op} {mode} with {rule} from {list(in_hw)} to {list(out_hw)} has no TFLite "
                      "equivalent (align_corners / half_pixel_centers)",
                      "export with 'asymmetric' (nearest_mode 'floor'), 'half_pixel' or 'align_corners', "
                      "giving output sizes rather than a fractional scale")
    return build(b, name, x, out_hw, mode == "nearest", flags)


# PyTorch: ask torch itself what each output pixel reads.

def torch_resize(cv, name: str, x, out_shape, call) -> object:
    """nn.Upsample / F.interpolate: ``call(probe)`` runs the same resize on a (1, 1, H, W) or (1, 1, L)
    probe; its result decides nearest or bilinear and the flags, or the refusal."""
    import torch

    b = cv.b
    in_hw = spatial(b, x, "interpolate")
    out_hw = (1, out_shape[2]) if len(out_shape) == 3 else (out_shape[2], out_shape[3])
    shape = (1, 1, in_hw[1]) if x.layout == "ncl" else (1, 1, *in_hw)
    index = torch.arange(in_hw[0] * in_hw[1], dtype=torch.float32).reshape(shape)
    with torch.no_grad():
        got = call(index).reshape(out_hw).numpy()
    rows, cols = got[:, :1] // in_hw[1], got[:1, :] % in_hw[1]
    if np.array_equal(got, np.round(got)) and np.array_equal(got, rows * in_hw[1] + cols):
        flags = _nearest_flags(rows[:, 0].astype(np.int64), cols[0].astype(np.int64), in_hw, out_hw)
        if flags is not None:
            return build(b, name, x, out_hw, True, flags)
    # not a copy of source pixels: bilinear, if some flags interpolate at the same coordinates
    ramp_r = torch.arange(in_hw[0], dtype=torch.float32).reshape(1, 1, -1, 1).expand(1, 1, *in_hw)
    ramp_c = torch.arange(in_hw[1], dtype=torch.float32).reshape(1, 1, 1, -1).expand(1, 1, *in_hw)
    with torch.no_grad():
        want_r = call(ramp_r.reshape(shape)).reshape(out_hw)[:, 0].numpy()
        want_c = call(ramp_c.reshape(shape)).reshape(out_hw)[0].numpy()
        probe = torch.from_numpy(np.random.default_rng(0).normal(size=in_hw).astype(np.float32))
        want = call(probe.reshape(shape)).reshape(out_hw).numpy()
    flags = _bilinear_flags(want_r, want_c, in_hw, out_hw)
    if flags is not None and np.allclose(_bilinear_float(probe.numpy(), out_hw, flags), want, atol=1e-5):
        return build(b, name, x, out_hw, False, flags)
    return b.unsupported(f"this interpolation from {list(in_hw)} to {list(out_hw)} has no TFLite equivalent",
                         "use mode='nearest' or 'bilinear' (align_corners True or False) with an output size "
                         "that is a whole multiple of the input, or give size=")


def _bilinear_float(x: np.ndarray, out_hw, flags) -> np.ndarray:
    """TFLM's float bilinear on one (H, W) plane (the door's check that the coordinates suffice)."""
    vy, y0, y1 = bilinear_float_coords(out_hw[0], x.shape[0], *flags)
    vx, x0, x1 = bilinear_float_coords(out_hw[1], x.shape[1], *flags)
    dy = (vy - y0.astype(np.float32))[:, None]
    dx = (vx - x0.astype(np.float32))[None, :]
    one = np.float32(1)
    return (x[y0][:, x0] * (one - dy) * (one - dx) + x[y1][:, x0] * dy * (one - dx)
            + x[y0][:, x1] * (one - dy) * dx + x[y1][:, x1] * dy * dx)
