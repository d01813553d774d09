"""The arena each runtime needs: TFLM's (with its reference kernels or CMSIS-NN's) and tinyopt's C library's.

A liveness plan of the activation tensors is only the *head* of TFLM's arena. ``MicroAllocator`` places the
planned tensors and the kernels' scratch buffers at the start of the arena and everything that lives as long
as the interpreter at its end, the *tail*: its own allocator objects, one ``TfLiteEvalTensor`` per tensor and
one ``NodeAndRegistration`` per operator, the operators' builtin options, each kernel's ``OpData``, the
per-channel output multipliers and shifts, the scratch-buffer handles and the ``TfLiteTensor`` structs of the
graph inputs and outputs. On top, every kernel's ``Prepare`` takes temporary ``TfLiteTensor`` structs from
the free space in the middle, and the planner works in that space too; the arena must hold the largest of
these moments, not only the final head + tail.

``tflm_arena`` replays that sequence (``micro_allocator.cc``, ``micro_interpreter.cc``,
``micro_allocation_info.cc``, ``greedy_memory_planner.cc`` and each kernel's Init/Prepare) with the struct
sizes of a given ABI and returns the smallest arena ``MicroInterpreter::AllocateTensors`` accepts:

- ``abi="host64"``: the ``tflite-micro`` Python package (x86-64, ``RecordingMicroAllocator``): what
  ``runtime.Interpreter.from_bytes(model, arena_size=N)`` accepts, checked against a binary search over N
  (``bench/arena_vs_tflm.py``);
- ``abi="arm32"``: a bare-metal Cortex-M build (32-bit pointers, short enums, plain ``MicroAllocator``):
  the same plan with smaller structs, so a few hundred bytes to a few KB less.

``kernels="cmsis-nn"`` uses CMSIS-NN's kernels inside TFLM (their larger ``OpData`` and the scratch buffers
``arm_convolve_wrapper_s8_get_buffer_size`` and friends ask for on a Cortex-M with the DSP extension, built
with GCC). The C library's arena is the generated ``TINYOPT_ARENA_BYTES`` (``c_library_arena``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tinyopt import ops
from tinyopt.analysis.cost import activation_dtype, tensor_bytes
from tinyopt.analysis.memory import ALIGNMENT, ArenaPlan, GreedyPlanner, align_up
from tinyopt.errors import ConfigError
from tinyopt.graph.ir import Graph, Node

TFLM_RUNTIMES = ("tflm-reference", "cmsis-nn")
ARENA_RUNTIMES = (*TFLM_RUNTIMES, "tinyopt-c")
DEFAULT_RUNTIME = "tflm-reference"
ABIS = ("host64", "arm32")

# sizeof / alignof of the structs TFLM puts in its arena (bytes), per ABI: read with a probe compiled
# against TFLM's headers (-DTF_LITE_STATIC_MEMORY, as TFLM builds) with g++ for x86-64 and with
# arm-none-eabi-g++ -mcpu=cortex-m4 (AAPCS: 32-bit pointers, short enums). host64 is the Python package's
# build, which records its allocations and has USE_TFLM_COMPRESSION (a larger SubgraphAllocations,
# OpDataConv and OpDataFullyConnected); arm32 is a default firmware build. The kernel OpData sizes in
# ``tflm_kernel_memory`` were read the same way.
_STRUCTS = {
    #                                      host64     arm32
    "TfLiteEvalTensor":                   ((24, 8), (12, 4)),
    "TfLiteTensor":                       ((64, 8), (32, 4)),
    "NodeAndRegistration":                ((64, 8), (32, 4)),
    "TfLiteAffineQuantization":           ((24, 8), (12, 4)),
    "SubgraphAllocations":                ((24, 8), (8, 4)),
    "ScratchBufferHandle":                ((8, 8), (4, 4)),
    "ScratchBufferRequest":               ((16, 8), (12, 4)),
    "AllocationInfo":                     ((32, 8), (24, 4)),
    "size_t":                             ((8, 8), (4, 4)),
    "pointer":                            ((8, 8), (4, 4)),
    "MicroBuiltinDataAllocator":          ((16, 8), (8, 4)),
    "GreedyMemoryPlanner":                ((72, 8), (44, 4)),
    # the Python package records its allocations; a firmware build uses the plain classes
    "SingleArenaBufferAllocator":         ((104, 8), (36, 4)),  # host64: RecordingSingleArenaBufferAllocator
    "MicroAllocator":                     ((272, 8), (36, 4)),  # host64: RecordingMicroAllocator
    # resource variables (a streaming model's state): the container and one entry per variable
    "MicroResourceVariables":             ((16, 16), (12, 16)),
    "MicroResourceVariable":              ((40, 16), (20, 16)),
}
# GreedyMemoryPlanner::per_buffer_size(): BufferRequirements (4 ints) + 2 sorted int arrays + ListEntry (3
# ints) + the offsets array; the planner works in the free space between head and tail.
_PLANNER_BYTES_PER_BUFFER = 16 + 4 + 4 + 12 + 4
_MAX_SCRATCH_BUFFERS_PER_OP = 12  # kMaxScratchBuffersPerOp: the request list always has room for 12 more


def _struct(name: str, abi: str) -> tuple[int, int]:
    return _STRUCTS[name][ABIS.index(abi)]


def _int_array_bytes(n: int) -> int:
    """TfLiteIntArray: an int size then n ints."""
    return 4 + 4 * n


@dataclass
class KernelMemory:
    """What one operator's kernel takes from a TFLM arena (bytes). ``temps`` lists, per temporary
    ``TfLiteTensor`` Prepare reads, how many quantization entries (scales) it carries (0: none); the
    first ``temps_first`` of them are taken before Prepare's persistent buffers, the rest after."""

    builtin: tuple[int, int] | None = None   # builtin options struct (size, alignment), parsed at start-up
    op_data: int | None = None                # Init's OpData (16-byte aligned)
    persistent: list[int] = field(default_factory=list)   # Prepare's persistent buffers (per-channel arrays)
    # Prepare's scratch-buffer requests (planned in the head)
    scratch: list[int] = field(default_factory=list)
    temps: list[int] = field(default_factory=list)
    temps_first: int | None = None  # None: all of them


def _conv_dims(graph: Graph, node: Node) -> dict:
    x, w = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
    y = graph.tensors[node.outputs[0]]
    a = node.attrs
    kh, kw = w.shape[1], w.shape[2]
    stride = tuple(a.get("stride", (1, 1)))
    dilation = tuple(a.get("dilation", (1, 1)))
    pads = []  # TFLite SAME padding: the top/left share of the total padding; VALID: none
    for i, (k, s, d) in enumerate(zip((kh, kw), stride, dilation)):
        total = max((y.shape[1 + i] - 1) * s + (k - 1) * d + 1 - x.shape[1 + i], 0)
        pads.append(total // 2 if a.get("padding", "VALID") == "SAME" else 0)
    return dict(in_c=x.shape[3], out_c=y.shape[3], kh=kh, kw=kw, dilation=dilation, pad=tuple(pads),
                batch=x.shape[0])


def _cmsis_conv_scratch(d: dict) -> int:
    """arm_convolve_wrapper_s8_get_buffer_size on a DSP core (Cortex-M4/M7) built with GCC: 0 for a
    1x1 convolution (the fast 1x1 path's buffer exists only with Arm Compiler), else the im2col buffer of
    two columns of int16: 2 × align4(KH·KW·C_in) × 2 bytes (1×N convolutions ask the same)."""
    if d["pad"] == (0, 0) and (d["kh"], d["kw"]) == (1, 1) and d["dilation"] == (1, 1):
        return 0
    return 2 * align_up(d["kh"] * d["kw"] * d["in_c"], 4) * 2


def _cmsis_depthwise_scratch(d: dict) -> int:
    """arm_depthwise_conv_wrapper_s8_get_buffer_size on a DSP core: none for 3x3 with padding ≤ 1 (its
    dedicated kernel) or when channels change (depth multiplier > 1), else C·KH·KW int16 values."""
    if d["in_c"] != d["out_c"] or d["batch"] != 1 or d["dilation"] != (1, 1):
        return 0
    if (d["kh"], d["kw"]) == (3, 3) and max(d["pad"]) <= 1:
        return 0
    return d["in_c"] * d["kh"] * d["kw"] * 2


def _quant_entries(graph: Graph, node: Node, index: int | None, quant: str) -> int:
    """Scales the TFLM tensor struct of an operand carries (0: not quantized). ``index`` None is the
    output. ``quant`` "real": the tensors' own quantization; "as-if": as tinyopt's converter would set it
    (conv/dense weights and biases per output channel, activations one scale, shape operands none);
    "none": a float model. A missing conv bias counts as the zero one the .tflite writer adds."""
    name = node.outputs[0] if index is None else (node.inputs[index] if index < len(node.inputs) else None)
    t = graph.tensors[name] if name else None
    rec = ops.find(node.op)
    weighted = rec is not None and rec.weight_axis is not None
    # weights (input 1) and bias: per output channel
    params = (1, rec.bias_input) if rec is not None and rec.weight_axis is not None else ()
    out_c = graph.tensors[node.outputs[0]].shape[-1]
    if quant == "none":
        return 0
    if t is not None and t.quant is not None:
        return int(t.quant.scale.size)
    if t is None:
        w = graph.tensors[node.inputs[1]] if weighted else None
        if w is None or index not in params:
            return 0
        return int(w.quant.scale.size) if w.quant is not None else (out_c if quant == "as-if" else 0)
    if quant == "real":
        return 0
    if index in params:
        return out_c
    return 0 if (t.constant and t.dtype in ("int32", "int64")) else 1


# Moves into the operator registry: one entry per record, keyed here by its TFLite builtin code (operator
# names are the records' own). Per operator: (builtin options (size, align), OpData bytes) on host64 and
# on arm32, and the operands its
# Prepare reads as temporary tensors (indices into the inputs, "o" the output; None: every input, then the
# output). host64 sizes are the Python package's: the options struct each Parse* function allocates and
# the OpData each Init allocates, read from its _runtime.so (the size and alignment passed to the
# allocator); arm32 sizes are those of TFLM's headers built for a Cortex-M4, the same as host64 where the
# struct holds no pointer. Operators whose Prepare also allocates persistent buffers or requests scratch
# buffers are completed in ``tflm_kernel_memory``.
_KERNELS = {
    #    builtin host64 / arm32   OpData host64 / arm32  Prepare's temporaries
      3: ((28, 4), (28, 4),          80, 56,      ("o", 0, 1, 0, 1, 2, "o")),  # CONV_2D
      4: ((28, 4), (28, 4),          80, 56,      ("o", 0, 1, 0, 1, 2, "o")),  # DEPTHWISE_CONV_2D
      9: ((32, 8), (5, 1),           72, 48,      None),  # FULLY_CONNECTED
     67: ((20, 4), (20, 4),          88, 88,      None),  # TRANSPOSE_CONV
      0: ((8, 4), (2, 1),            60, 60,      None),  # ADD
     41: ((8, 4), (2, 1),            52, 52,      None),  # SUB
     18: ((4, 4), (1, 1),            36, 36,      None),  # MUL
     42: ((4, 4), (1, 1),            28, 28,      None),  # DIV
     99: (None, None,                112, 112,    None),  # SQUARED_DIFFERENCE
     55: (None, None,                None, None,  None),  # MAXIMUM
     57: (None, None,                None, None,  None),  # MINIMUM
      1: ((40, 4), (40, 4),          32, 32,      None),  # AVERAGE_POOL_2D
     17: ((40, 4), (40, 4),          32, 32,      None),  # MAX_POOL_2D
     40: ((1, 1), (1, 1),            44, 44,      (0, "o", 1, 0, 1, "o")),  # MEAN
     74: ((1, 1), (1, 1),            44, 44,      (0, "o", 1, 0, 1, "o")),  # SUM
     82: ((1, 1), (1, 1),            44, 44,      (0, 1, "o", 0, "o", 1)),  # REDUCE_MAX
     22: ((36, 4), (36, 4),          None, None,  (0, "o")),  # RESHAPE
     43: ((36, 4), (36, 4),          None, None,  (0, "o")),  # SQUEEZE
     70: (None, None,                None, None,  None),  # EXPAND_DIMS
     34: (None, None,                56, 56,      None),  # PAD
     60: (None, None,                56, 56,      None),  # PADV2
      2: ((8, 4), (8, 4),            80, 24,      (0, "o", "inputs")),  # CONCATENATION
     83: ((8, 4), (8, 4),            None, None,  ()),  # PACK
     88: ((8, 4), (8, 4),            None, None,  ()),  # UNPACK
     49: ((4, 4), (4, 4),            None, None,  (0,)),  # SPLIT
    102: ((4, 4), (4, 4),            None, None,  (0,)),  # SPLIT_V
     65: (None, None,                None, None,  None),  # SLICE
     45: ((24, 4), (24, 4),          84, 84,      None),  # STRIDED_SLICE
     39: (None, None,                None, None,  ()),  # TRANSPOSE
     36: ((8, 4), (8, 4),            None, None,  None),  # GATHER
    130: (None, None,                None, None,  None),  # BROADCAST_TO
      5: ((4, 4), (4, 4),            None, None,  (0, "o")),  # DEPTH_TO_SPACE
     26: ((4, 4), (4, 4),            None, None,  (0, "o")),  # SPACE_TO_DEPTH
     23: ((2, 1), (2, 1),            None, None,  None),  # RESIZE_BILINEAR
     97: ((2, 1), (2, 1),       None, None,  None),  # RESIZE_NEAREST_NEIGHBOR
     25: ((4, 4), (4, 4),            80, 56,      (0, "o")),  # SOFTMAX
     50: (None, None,                32, 32,      (0, "o")),  # LOG_SOFTMAX
     11: ((4, 4), (4, 4),            4, 4,        (0, "o")),  # L2_NORMALIZATION
     14: (None, None,                16, 16,      (0, "o")),  # LOGISTIC
     28: (None, None,                16, 16,      (0, 0, "o")),  # TANH
    117: (None, None,                20, 20,      (0, "o")),  # HARD_SWISH
     98: ((4, 4), (4, 4),            24, 24,      (0, "o")),  # LEAKY_RELU
     54: (None, None,                28, 28,      None),  # PRELU
    111: (None, None,                256, 256,    (0, "o")),  # ELU
     19: (None, None,                28, 28,      (0, "o")),  # RELU
     21: (None, None,                8, 8,        (0,)),  # RELU6
     47: (None, None,                None, None,  (0, "o")),  # EXP
     73: (None, None,                28, 28,      (0, "o")),  # LOG
     75: (None, None,                28, 28,      (0, "o")),  # SQRT
     76: (None, None,                28, 28,      (0, "o")),  # RSQRT
    114: (None, None,                32, 32,      (0, "o")),  # QUANTIZE
      6: (None, None,                32, 32,      (0, "o")),  # DEQUANTIZE
     56: ((4, 4), (4, 4),            None, None,  ()),  # ARG_MAX
    126: ((3, 1), (3, 1),            48, 40,      None),  # BATCH_MATMUL
     44: ((16, 4), (16, 4), 688, 688,   None),  # UNIDIRECTIONAL_SEQUENCE_LSTM
}
_NO_KERNEL = (None, None, 32, 32, None)  # an operator TFLM has no kernel for: its operands, a 32-byte OpData
# CMSIS-NN's kernels keep the reference OpData inside a larger struct (host64 / arm32): conv, depthwise,
# dense, average and max pooling, softmax
_CMSIS_OP_DATA = {3: (88, 60), 4: (88, 60), 9: (104, 72), 1: (36, 36), 17: (36, 36), 25: (88, 64)}
# builtin codes the branches of ``tflm_kernel_memory`` name
_CONV, _DEPTHWISE, _AVERAGE_POOL, _MAX_POOL, _GATHER, _BATCH_MATMUL = 3, 4, 1, 17, 36, 126
_REDUCTIONS = (40, 74, 82)  # mean, sum, reduce-max: int32 accumulators and index scratch buffers
_SOFTMAX = 25
_INT16_LUT_BYTES = 513 * 2  # kInt16LUTArraySize int16 entries


def tflm_kernel_memory(  # noqa: C901 - one branch per TFLM kernel whose Prepare allocates, as TFLM has
        graph: Graph, node: Node, kernels: str, abi: str, quant: str) -> KernelMemory:
    """Arena needs of one operator under TFLM (``kernels``: "reference" or "cmsis-nn"; ``quant``: "real",
    "as-if" or "none", see ``_quant_entries``: the model computes in int8 unless "none").

    Moves into the operator registry: the ``_KERNELS`` row and each branch below belong to the operator's
    record. Sources: each kernel's Init/Prepare in tensorflow/lite/micro/kernels/*.cc and
    kernels/cmsis_nn/*.cc and the Python package's build (see ``_KERNELS``). An operator without a row
    (e.g. BATCH_NORM, which conversion folds away) counts its operands and a 32-byte OpData.
    """
    host, cmsis = abi == "host64", kernels == "cmsis-nn"
    rec = ops.find(node.op)
    op = rec.builtin if rec is not None else None
    int8 = quant != "none"
    row = _KERNELS.get(op, _NO_KERNEL) if op is not None else _NO_KERNEL
    m = KernelMemory(builtin=row[0] if host else row[1], op_data=row[2] if host else row[3])
    if cmsis and op in _CMSIS_OP_DATA:
        m.op_data = _CMSIS_OP_DATA[op][0 if host else 1]

    def q(*operands):  # temporaries: input indices, None for the output
        return [_quant_entries(graph, node, i, quant) for i in operands]

    pattern = row[4]
    if pattern is None:
        pattern = (*range(len(node.inputs)), "o")
    operands: list[int | None] = []
    for p in pattern:  # input indices, "o" the output, "inputs" every input
        if p == "inputs":
            operands += range(len(node.inputs))
        else:
            operands.append(None if p == "o" else int(p))
    m.temps = q(*operands)
    out = graph.tensors[node.outputs[0]]
    out_c = out.shape[-1] if out.shape else 1
    weighted = rec is not None and rec.weight_axis is not None
    if weighted and rec is not None and rec.latency_class in ("conv", "depthwise"):  # also transposed conv
        m.persistent = [4 * out_c, 4 * out_c]  # per_channel_output_multiplier and _shift
        if op in (_CONV, _DEPTHWISE):
            m.temps_first = 3  # Prepare's own reads, then the arrays, then CalculateOpData*'s reads
        elif int8:
            m.scratch = [4 * out.size]  # transposed conv: int32 accumulators of the whole output
        if cmsis and int8 and op in (_CONV, _DEPTHWISE):
            dims = _conv_dims(graph, node)
            s = _cmsis_conv_scratch(dims) if op == _CONV else _cmsis_depthwise_scratch(dims)
            m.scratch = [s] if s else []
            if op == _CONV:  # CMSIS-NN's conv Prepare reads input, filter, output and bias first
                m.temps, m.temps_first = q(0, 1, None, 2, 0, 1, 2, None), 4
    elif weighted:  # dense
        w = graph.tensors[node.inputs[1]]
        # converter: per channel
        per_channel = w.quant.per_channel if w.quant is not None else quant == "as-if"
        if per_channel:
            m.persistent = [4 * w.shape[0], 4 * w.shape[0]]
        # CMSIS-NN: arm_fully_connected_s8_get_buffer_size is 0 on a DSP core, and its 1x1-conv path
        # needs an output of rank > 2, which a tinyopt dense layer does not have
    elif op in (_AVERAGE_POOL, _MAX_POOL) and cmsis:
        m.temps += q(0, None)  # CMSIS-NN's Prepare reads them again after the reference one
        if op == _AVERAGE_POOL and int8:
            m.scratch = [4 * out_c]  # arm_avgpool_s8_get_buffer_size: one int32 sum per channel
    elif op in _REDUCTIONS:
        axes = node.inputs[1] if len(node.inputs) > 1 and node.inputs[1] else None
        n_axes = graph.tensors[axes].size if axes else len(node.attrs.get("axes", ()))
        rank = len(graph.tensors[node.inputs[0]].shape)
        acc = [4 * out.size] if int8 and op != _REDUCTIONS[2] else []  # int32 accumulators (not max)
        m.scratch = [*acc, 4 * rank, 4 * n_axes]  # iterator index, resolved axes
    elif op == _SOFTMAX and graph.tensors[node.inputs[0]].dtype == "int16":
        m.persistent = [_INT16_LUT_BYTES, _INT16_LUT_BYTES]  # 16x8 Prepare: exp and 1/(1+x) tables
    elif op == _GATHER and host:
        # the Python package's GATHER keeps 20 bytes from Prepare (measured; none in older TFLM)
        m.persistent = [20]
    elif op == _BATCH_MATMUL:
        a = node.attrs
        for idx, flag in ((0, a.get("adj_x", False)), (1, not a.get("adj_y", False))):
            if flag:  # a persistent transposed copy: eval tensor struct, dims, data
                t = graph.tensors[node.inputs[idx]]
                eval_size = _struct("TfLiteEvalTensor", abi)[0]
                m.persistent += [eval_size, _int_array_bytes(len(t.shape)),
                                 tensor_bytes(t, "int8" if int8 else t.dtype)]
        if int8:
            m.persistent.insert(0, 32)  # its quantization parameters
    return m


# -- the allocation sequence -------------------------------------------------------------------------
class _Allocations:
    """TFLM's SingleArenaBufferAllocator, as a list of steps that can be replayed on an arena of any size.

    The head (a resizable buffer, then temporaries after it) grows from the arena's start, the tail
    (persistent buffers) down from its end, each allocation aligned as TFLM aligns it. ``fits(n)`` replays
    the steps on an n-byte arena and reports whether every one succeeds: a temporary must stay below the
    tail, the planner needs 40 bytes per buffer in the free space, and a persistent buffer must not reach
    into a live temporary. TFLM itself checks a persistent buffer only against the resizable buffer, so a
    dense layer's per-channel arrays, allocated while its Prepare still holds its temporaries, may
    overwrite their last bytes; tflite-micro then still works up to 16 bytes below our figure, because
    those bytes are ones it no longer reads. We count the arena in which nothing live is overwritten.
    """

    def __init__(self, abi: str):
        self.abi = abi
        self.steps: list[tuple] = []
        self.tail_parts: dict[str, int] = {}
        self._tail = 0  # tail bytes on an arena whose end is 16-byte aligned (for the breakdown)

    def persistent(self, what: str, size: int, align: int = ALIGNMENT) -> None:
        self.steps.append(("persistent", size, align))
        before, self._tail = self._tail, align_up(self._tail + size, align)
        self.tail_parts[what] = self.tail_parts.get(what, 0) + self._tail - before

    def struct(self, what: str, name: str, count: int = 1) -> None:
        size, align = _struct(name, self.abi)
        self.persistent(what, size * count, align)

    def temp(self, size: int, align: int) -> None:
        self.steps.append(("temp", size, align))

    def temp_tensor(self, quant_entries: int) -> None:
        self.temp(*_struct("TfLiteTensor", self.abi))
        if quant_entries:
            self.temp(*_struct("TfLiteAffineQuantization", self.abi))
            self.temp(_int_array_bytes(quant_entries), 4)

    def reset_temps(self) -> None:
        self.steps.append(("reset",))

    def resize_head(self, size: int) -> None:
        self.steps.append(("resize", size))

    def planner_space(self, size: int) -> None:
        self.steps.append(("planner", size))

    @property
    def tail_bytes(self) -> int:
        return self._tail

    def fits(self, n: int) -> str | None:
        """None if an n-byte arena (16-byte aligned start) takes every step, else the step that fails."""
        head = temp = 0
        tail = n
        for step in self.steps:
            kind = step[0]
            if kind == "persistent":
                at = (tail - step[1]) // step[2] * step[2]
                if at < temp:
                    return "tail"
                tail = at
            elif kind == "temp":
                at = align_up(temp, step[2])
                if tail - at < step[1]:
                    return "temp"
                temp = at + step[1]
            elif kind == "reset":
                temp = head
            elif kind == "resize":
                if tail < step[1]:
                    return "head"
                head = temp = step[1]
            elif tail // ALIGNMENT * ALIGNMENT - align_up(temp) < step[1]:  # planner
                return "planner"
        return None

    def smallest_arena(self) -> tuple[int, str]:
        """The smallest n that fits, and the step that a 1-byte smaller arena fails at."""
        lo, hi = 0, ALIGNMENT
        while self.fits(hi) is not None:
            lo, hi = hi, hi * 2
        while hi - lo > 1:  # every step needs at least as much room in a smaller arena
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if self.fits(mid) is None else (mid, hi)
        return hi, self.fits(hi - 1) or "none"


@dataclass
class TflmArena:
    """TFLM's arena for one model: ``bytes`` = the smallest ``arena_size`` AllocateTensors accepts."""

    runtime: str
    abi: str
    bytes: int
    head_bytes: int          # the greedy plan of tensors and scratch buffers
    tail_bytes: int          # persistent: interpreter structs, OpData, per-channel arrays, I/O tensors
    scratch_bytes: int       # the scratch buffers' share of the head plan (16-byte aligned sizes)
    tail_parts: dict
    plan: ArenaPlan
    limited_by: str          # what a smaller arena runs out of: "head" (the plan), "tail", "temp" (a
                             # kernel's Prepare), "planner" (the planner's working space)

    def to_dict(self) -> dict:
        return {"runtime": self.runtime, "abi": self.abi, "bytes": self.bytes, "head_bytes": self.head_bytes,
                "tail_bytes": self.tail_bytes, "scratch_bytes": self.scratch_bytes,
                "tail_parts": dict(self.tail_parts), "limited_by": self.limited_by}


class TflmPlanner(GreedyPlanner):
    """TFLM's GreedyMemoryPlanner order: largest first; among equal sizes the buffer added *last* goes
    first (buffers are listed from the back, then bubble-sorted by size, which keeps that order)."""

    def placement_order(self) -> list[int]:
        ids = [i for i, b in enumerate(self.buffers) if b.offline_offset is None]
        ids.sort(key=lambda i: (-self.aligned_size(i), -i))
        return [i for i, b in enumerate(self.buffers) if b.offline_offset is not None] + ids


def _file_tensors(graph: Graph) -> list[str]:
    """The tensors a .tflite of this graph holds, in file order: those the nodes and the graph use."""
    used = set(graph.inputs) | set(graph.outputs)
    for n in graph.nodes:
        used.update(t for t in [*n.inputs, *n.outputs] if t)
    return [name for name in graph.tensors if name in used]


def as_written(graph: Graph) -> Graph:
    """The graph as the .tflite writer writes it: each record's ``complete_operands`` adds what a file must
    carry and the IR may leave implicit (a convolution's zero bias, MEAN's axes), so tensor counts and
    Prepare's temporaries are the file's."""
    g = graph.copy()
    for n in g.nodes:
        rec = ops.find(n.op)
        if rec is not None:
            rec.complete_operands(g, n)
    return g


def _lifetimes(graph: Graph) -> dict[str, tuple[int, int]]:
    """TFLM's allocation scopes (micro_allocation_info.cc): graph inputs at 0, operator i at i + 1, graph
    outputs alive to the end."""
    life: dict[str, list[int]] = {}
    for name in graph.inputs:
        life[name] = [0, 0]
    states = {v.state for v in getattr(graph, "variables", [])}  # read just before their first use
    for i, n in enumerate(graph.nodes, start=1):
        for name in n.inputs:
            if name in states:
                life.setdefault(name, [i, i])
        for name in n.outputs:
            life.setdefault(name, [i, i])
        for name in [*n.inputs, *n.outputs]:
            if name and name in life:
                life[name][1] = i
    for name in graph.outputs:
        if name in life:
            life[name][1] = len(graph.nodes)
    return {k: (a, b) for k, (a, b) in life.items()}


def tflm_arena(  # noqa: C901 - TFLM's AllocateTensors step by step, to match it byte for byte
        graph: Graph, runtime: str = DEFAULT_RUNTIME, dtype: str | None = None,
        abi: str = "host64") -> TflmArena:
    """TFLM's arena for ``graph`` (priced at its own dtypes, or "as if" ``dtype``) under ``runtime``
    ("tflm-reference" or "cmsis-nn") on ``abi`` ("host64": the tflite-micro Python package; "arm32": a
    Cortex-M build). See the module docstring for what is counted."""
    if runtime not in TFLM_RUNTIMES:
        raise ConfigError(f"runtime '{runtime}' does not run TFLM", where="--runtime",
                          fix=f"use one of {', '.join(TFLM_RUNTIMES)}")
    if abi not in ABIS:
        raise ValueError(f"abi must be one of {ABIS}")
    kernels = "cmsis-nn" if runtime == "cmsis-nn" else "reference"
    stored_int = any(t.dtype in ("int8", "uint8", "int16") for t in graph.activations())  # int16: 16x8
    quant = {None: "real" if stored_int else "none", "int8": "real" if stored_int else "as-if",
             "float32": "none"}[dtype]
    graph = as_written(graph)
    needs = [tflm_kernel_memory(graph, n, kernels, abi, quant) for n in graph.nodes]
    al = _Allocations(abi)
    # MicroAllocator::Create: the buffer allocator, the planner and the allocator itself live in the tail
    for name in ("SingleArenaBufferAllocator", "GreedyMemoryPlanner", "MicroAllocator"):
        al.struct("allocator objects", name)
    # Resource variables (graph.variables, read from CALL_ONCE + VAR_HANDLE / READ_VARIABLE /
    # ASSIGN_VARIABLE): the file has an init subgraph (a handle and an assignment of a constant per variable)
    # and, in the main one, CALL_ONCE, a handle, a read and an assignment per variable; each variable's value
    # also has a persistent buffer, and what READ_VARIABLE returns is planned like any activation.
    variables = getattr(graph, "variables", [])
    n_var = len(variables)
    if n_var:
        al.struct("resource variables", "MicroResourceVariables")
        al.persistent("resource variables", _struct("MicroResourceVariable", abi)[0] * n_var)
    # StartModelAllocation
    al.struct("allocator objects", "MicroBuiltinDataAllocator")
    request_size, request_align = _struct("ScratchBufferRequest", abi)
    al.resize_head(request_size * _MAX_SCRATCH_BUFFERS_PER_OP)
    al.struct("allocator objects", "SubgraphAllocations", 2 if n_var else 1)
    tensors = _file_tensors(graph)
    n_tensors = len(tensors) + 3 * n_var  # + the handles of both subgraphs and the initial values
    al.struct("TfLiteEvalTensor structs", "TfLiteEvalTensor", len(tensors) + n_var)
    al.struct("NodeAndRegistration structs", "NodeAndRegistration",
              len(graph.nodes) + (1 + 3 * n_var if n_var else 0))
    if n_var:
        al.struct("TfLiteEvalTensor structs", "TfLiteEvalTensor", 2 * n_var)
        al.struct("NodeAndRegistration structs", "NodeAndRegistration", 2 * n_var)
    pointer = _struct("pointer", abi)[0]
    # PrepareNodeAndRegistrationDataFromFlatbuffer: the builtin options of each operator
    for m in needs:
        if m.builtin is not None:
            al.persistent("builtin options", *m.builtin)
    if n_var:  # CALL_ONCE's subgraph index; VAR_HANDLE's container and shared name, in both subgraphs
        al.persistent("builtin options", 4, 4)
        for _ in range(2 * n_var):
            al.persistent("builtin options", 2 * pointer, pointer)
    # InitSubgraphs: each kernel's OpData
    for m in needs:
        if m.op_data is not None:
            al.persistent("kernel OpData", m.op_data)
    if n_var:  # CALL_ONCE (subgraph index, has run), VAR_HANDLE and ASSIGN_VARIABLE (an int each)
        for size in (8, *[4] * (4 * n_var)):
            al.persistent("kernel OpData", size)
    # PrepareSubgraphs: temporaries, per-channel arrays, scratch requests; then the request list grows
    n_scratch = 0
    for m in needs:
        first = len(m.temps) if m.temps_first is None else m.temps_first
        for entries in m.temps[:first]:
            al.temp_tensor(entries)
        for size in m.persistent:
            al.persistent("per-channel multipliers and shifts", size)
        for entries in m.temps[first:]:
            al.temp_tensor(entries)
        n_scratch += len(m.scratch)
        al.reset_temps()
        al.resize_head(align_up(request_size * (n_scratch + _MAX_SCRATCH_BUFFERS_PER_OP), request_align))
    for v in variables:  # ASSIGN_VARIABLE's Prepare: the variable's own buffer
        t = graph.tensors[v.state]
        al.persistent("resource variables", tensor_bytes(t, activation_dtype(t, dtype)))
    # FinishModelAllocation: scratch handles; the plan is made in the free space, then the head is reserved
    if n_scratch:
        al.struct("scratch buffer handles", "ScratchBufferHandle", n_scratch)
    al.temp(*_struct("size_t", abi))  # subgraph offsets
    info_size, info_align = _struct("AllocationInfo", abi)
    al.temp(info_size * (n_tensors + n_scratch), info_align)
    states = {v.state for v in variables}  # READ_VARIABLE outputs: planned, from the read to the last use
    for name in tensors:  # AllocateVariables: state tensors (LSTM, SVDF) live in the tail, not the plan
        t = graph.tensors[name]
        if getattr(t, "variable", False) and name not in states:
            al.persistent("variable tensors", tensor_bytes(t, activation_dtype(t, dtype)))
    life = _lifetimes(graph)
    planned = [name for name in tensors if not graph.tensors[name].constant and name in life
               and (not getattr(graph.tensors[name], "variable", False) or name in states)]
    planner = TflmPlanner()
    names, sizes, lifes = [], [], []
    for name in planned:  # every non-constant tensor in file order, then the scratch buffers in request order
        t = graph.tensors[name]
        size = tensor_bytes(t, activation_dtype(t, dtype))
        if size:
            planner.add_buffer(size, *life[name], name=name)
            names.append(name)
            sizes.append(size)
            lifes.append(life[name])
    scratch_ids = []
    for step, (n, m) in enumerate(zip(graph.nodes, needs), start=1):
        for k, size in enumerate(m.scratch):
            scratch_ids.append(planner.add_buffer(size, step, step, name=f"{n.name} scratch {k}"))
            names.append(f"{n.name} scratch {k}")
            sizes.append(size)
            lifes.append((step, step))
    al.planner_space(_PLANNER_BYTES_PER_BUFFER * len(planner.buffers))
    planner.plan()
    head = planner.peak_bytes()
    al.reset_temps()
    al.resize_head(head)
    # the end of AllocateTensors: the input and output TfLiteTensor structs and their quantization
    for io in (graph.inputs, graph.outputs):
        al.persistent("I/O tensor structs", _struct("pointer", abi)[0] * len(io))
        for name in io:
            al.struct("I/O tensor structs", "TfLiteTensor")
            t = graph.tensors[name]
            entries = {"real": int(t.quant.scale.size) if t.quant is not None else 0, "as-if": 1,
                       "none": 0}[quant]
            if entries:
                al.struct("I/O tensor structs", "TfLiteAffineQuantization")
                al.persistent("I/O tensor structs", _int_array_bytes(entries), 4)
    total, limited = al.smallest_arena()
    plan = ArenaPlan(names, sizes, lifes, [planner.offset_of(i) for i in range(len(names))], head, planner)
    return TflmArena(runtime=runtime, abi=abi, bytes=total, head_bytes=head, tail_bytes=al.tail_bytes,
                     scratch_bytes=sum(planner.aligned_size(i) for i in scratch_ids),
                     tail_parts=al.tail_parts, plan=plan, limited_by=limited)


# -- tinyopt's C library ------------------------------------------------------------------------------
def _synthetic_int8(graph: Graph) -> Graph:
    """An int8 twin of a float graph for sizing only: BN folded, activations fused, every activation range
    [-1, 1] and missing weights (a YAML spec has none) filled with ones. Shapes, operators and the
    quantization layout are the converter's; values are not, and the C library's arena depends on shapes."""
    import numpy as np

    from tinyopt.convert.convert import prepare_float_graph
    from tinyopt.convert.quantize import quantize_graph

    g = prepare_float_graph(graph).copy()
    for t in g.tensors.values():
        if t.constant and t.data is None:
            t.data = np.ones(t.shape, np.float32)
    ranges = {t.name: (-1.0, 1.0) for t in g.activations()}
    return quantize_graph(g, ranges)


def c_library_arena(graph: Graph, dtype: str | None = None, optimize: str = "balanced") -> tuple[int, bool]:
    """(``TINYOPT_ARENA_BYTES`` of the C library generated for ``graph`` with plan ``optimize``, whether
    the graph had to be made int8 first). The library runs int8 (and 16x8) models: a float graph is sized
    as if converted (``dtype`` "int8"); priced as float32 it is refused."""
    from tinyopt.analysis.cost import model_dtype
    from tinyopt.export.c.generate import generate_sources

    as_if = model_dtype(graph) not in ("int8", "int16")
    if as_if and dtype != "int8":
        raise ConfigError("tinyopt's C library runs int8 and 16x8 models only, and this one is float32",
                          path=graph.source, where="--runtime tinyopt-c",
                          fix="add --dtype int8 to size it as converted, or use --runtime tflm-reference")
    g = _synthetic_int8(graph) if as_if else graph
    return generate_sources(g, optimize=optimize).arena_bytes, as_if


# -- one answer per runtime -----------------------------------------------------------------------------
@dataclass
class RuntimeArena:
    """The arena ``runtime`` needs for one model; ``bytes`` is what the verdict uses."""

    runtime: str
    bytes: int
    basis: str                      # one line: what the figure is and how it was obtained
    head_bytes: int | None = None   # TFLM: the planned tensors and scratch buffers
    tail_bytes: int | None = None   # TFLM: persistent structs, OpData, per-channel arrays
    scratch_bytes: int | None = None
    bare_metal_bytes: int | None = None  # TFLM built for a 32-bit Cortex-M
    tail_parts: dict = field(default_factory=dict)
    plan: ArenaPlan | None = field(default=None, repr=False)
    optimize: str | None = None  # tinyopt-c: the library's plan mode (speed, balanced, ram)

    def to_dict(self) -> dict:
        return {"runtime": self.runtime, "bytes": self.bytes, "basis": self.basis, "optimize": self.optimize,
                "head_bytes": self.head_bytes, "tail_bytes": self.tail_bytes,
                "scratch_bytes": self.scratch_bytes, "bare_metal_bytes": self.bare_metal_bytes,
                "tail_parts": dict(self.tail_parts)}


def tflm_ready(graph: Graph) -> Graph:
    """The graph TFLM would run: BatchNorm folded and ReLU/ReLU6 fused, as any .tflite converter does."""
    recs = [ops.find(n.op) for n in graph.nodes]
    if not any(r is not None and (r.folds_into_weights or r.fusable_as) for r in recs):
        return graph
    from tinyopt.graph.passes import fold_batchnorm, fuse_activations

    return fuse_activations(fold_batchnorm(graph))


def runtime_arena(graph: Graph, runtime: str = DEFAULT_RUNTIME, dtype: str | None = None,
                  optimize: str = "balanced") -> RuntimeArena:
    """The arena ``runtime`` ("tflm-reference", "cmsis-nn" or "tinyopt-c") needs for ``graph``, priced at
    its own dtypes or "as if" ``dtype``; the C library's with plan ``optimize`` (as ``deploy --optimize``)."""
    if runtime == "tinyopt-c":
        nbytes, as_if = c_library_arena(graph, dtype, optimize)
        basis = (f"TINYOPT_ARENA_BYTES of the generated C library ({optimize} plan)" +
                 (" (sized on the model as converted to int8 with placeholder ranges)" if as_if else ""))
        state = graph.state_bytes
        if state:  # kept between invokes in the library's own static buffers, beside the arena
            basis += f" + {state:,} B of state kept between invokes"
        return RuntimeArena(runtime, nbytes + state, basis, bare_metal_bytes=nbytes + state,
                            optimize=optimize)
    g = tflm_ready(graph)
    host = tflm_arena(g, runtime, dtype, abi="host64")
    metal = tflm_arena(g, runtime, dtype, abi="arm32")
    kernels = ("CMSIS-NN's kernels (Cortex-M DSP scratch buffers)" if runtime == "cmsis-nn"
               else "reference kernels")
    basis = (f"TFLM with {kernels}: greedy-planned head {host.head_bytes:,} B + persistent tail "
             f"{host.tail_bytes:,} B, as the tflite-micro Python package allocates it; a 32-bit Cortex-M "
             f"build needs {metal.bytes:,} B")
    unknown = sorted({n.op for n in g.nodes if (r := ops.find(n.op)) is None or r.builtin not in _KERNELS})
    if unknown:
        basis += (f"; the kernel memory of {', '.join(unknown)} is not modelled (each counted as a 32 B "
                  "OpData), so the tail is a lower estimate; `tinyopt check` says whether TFLM runs them")
    return RuntimeArena(runtime, host.bytes, basis, head_bytes=host.head_bytes, tail_bytes=host.tail_bytes,
                        scratch_bytes=host.scratch_bytes, bare_metal_bytes=metal.bytes,
                        tail_parts=host.tail_parts, plan=host.plan)
