"""The operator record: everything tinyopt knows about one operator, in one class.

A record is a singleton subclass of ``Op`` in ``tinyopt/ops/<name>.py``, decorated with ``@register``.
Every stage looks operators up here instead of keeping its own list:

=====================  ==========================================================================
importers              ``builtin`` + ``options`` (TFLite), ``tflite_custom`` (custom operators it
                       reads), ``onnx`` / ``torch_modules`` / ``torch_functions`` / ``spec_layers``
                       with their ``from_*`` methods
graph                  ``arity``, ``optional_inputs``, ``shape``, ``param_inputs``, ``weight_axis``,
                       ``bias_input``, ``fused_activation``, ``aliases_input``, ``is_identity``
analysis               ``macs``, ``other_ops``
runtime                ``prepare`` → a typed ``OpData`` (TFLM's field names), ``eval``
convert                ``quant`` (how the int8 twin is quantized)
export                 ``write_tflite``, ``version``, ``complete_operands``; ``c`` + ``pack_c``
check                  ``tflm`` (TFLM has a kernel) and the C kernel's ``pack_c`` refusals
=====================  ==========================================================================

Method defaults describe the common case (one input, element-wise, no parameters), so a record only
writes what differs. ``tests/ops/test_registry.py`` walks every record and proves it complete.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, NoReturn

import numpy as np

from tinyopt.graph.ir import Graph, Node, Tensor

# -- TFLite builtin options, declared once and read and written from the same declaration ---------------


@dataclass(frozen=True)
class Field:
    """One attribute stored in a builtin options table.

    ``slots``: one slot, or two for an (h, w) pair stored as separate fields (TFLite writes W first).
    ``kind``: the scalar type (``i8``, ``i32``, ``f32``, ``bool``; ``padding`` and ``activation`` are i8
    enums). ``stored_default`` is the schema default (what a reader sees when the field is absent, and
    what a writer may omit); ``default`` is the attribute's value when a Graph node leaves it out.
    ``positive``: pairs that must lie in 1..MAX_KERNEL (strides, dilations, filter sizes).
    """

    attr: str
    slots: tuple[int, ...]
    kind: str
    stored_default: Any = 0
    default: Any = 0
    positive: bool = False


def padding(attr: str, slot: int) -> Field:
    return Field(attr, (slot,), "padding", 0, "VALID")


def activation(attr: str, slot: int) -> Field:
    return Field(attr, (slot,), "activation", 0, "NONE")


def pair(attr: str, slot_h: int, slot_w: int, stored_default: int = 0) -> Field:
    return Field(attr, (slot_h, slot_w), "i32", stored_default, (1, 1), positive=True)


def scalar(attr: str, slot: int, kind: str, stored_default: Any = 0, default: Any = None) -> Field:
    return Field(attr, (slot,), kind, stored_default, stored_default if default is None else default)


@dataclass(frozen=True)
class Options:
    """A BuiltinOptions union member: its type code and its fields (empty: an empty table is written)."""

    type: int
    fields: tuple[Field, ...] = ()


# -- quantization rule used by convert ------------------------------------------------------------------


@dataclass(frozen=True)
class QuantRule:
    """How ``convert`` builds the int8 twin of the operator (TFLM's int8 spec).

    ``output``: ``"calibrated"`` (from the calibrated range), ``"input"`` (shares input 0's parameters: the
    kernel does not rescale) or a fixed ``(scale, zero_point)``.
    ``inputs_as_output``: every non-constant input is requantized to the output's parameters first (the
    QUANTIZE the TFLite converter inserts before CONCATENATION).
    ``constants``: non-weight constant operands: ``"raw"`` (shape operands, kept as they are), ``"range"``
    (quantized as an activation from their own min/max) or ``"output"`` (with the output's parameters).
    ``int16`` / ``output16``: whether TFLM has a 16x8 kernel, and its fixed output parameters if any.
    """

    output: str | tuple[float, int] = "calibrated"
    inputs_as_output: bool = False
    constants: str = "raw"
    int16: bool = False                       # TFLM has a 16x8 kernel (int16 activations, int8 weights)
    output16: tuple[float, int] | None = None  # the fixed output parameters under int16 activations


# -- prepared parameters ---------------------------------------------------------------------------------


@dataclass(kw_only=True)
class OpData:
    """What TFLM's Prepare computes for a node, once. Subclasses add the operator's fields under TFLM's
    names; the C generator copies fields into the kernel's parameter struct by the same names. Integer
    fields the float path does not use default to 0, as in TFLM's zero-initialised OpData structs."""

    dtype: str  # "int8" (integer kernels) or "float32"

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __getitem__(self, key: str):
        """``p["output_shift"]`` reads a field, as scripts written against the old dict do."""
        return getattr(self, key)


@dataclass(frozen=True)
class CKernel:
    """The generated library's kernel: ``export/c/kernels/<file>.c`` defines ``<prefix>_<function>`` taking
    ``const <prefix>_<struct> *``. ``extra_files``: other kernel files it calls into."""

    file: str
    struct: str
    function: str = ""
    extra_files: tuple[str, ...] = ()

    @property
    def entry(self) -> str:
        return self.function or self.file


# -- the record -----------------------------------------------------------------------------------------


class Op:
    """Base of every operator record. Class attributes describe; methods compute."""

    name: ClassVar[str] = ""
    builtin: ClassVar[int | None] = None          # TFLite BuiltinOperator code (None: IR only)
    options: ClassVar[Options | None] = None      # builtin options table; None: the op has none
    arity: ClassVar[tuple[int, int]] = (1, 1)     # (min, max) inputs in a TFLite file
    outputs: ClassVar[tuple[int, int]] = (1, 1)   # (min, max) outputs (SPLIT, UNPACK: several)
    optional_inputs: ClassVar[tuple[int, ...]] = ()  # input positions that may be absent (-1 / "")
    data_inputs: ClassVar[int | None] = 1         # leading inputs that share the output dtype (None: all)
    param_inputs: ClassVar[tuple[int, ...]] = ()  # trainable parameters (weights, biases, BN statistics)
    weight_axis: ClassVar[int | None] = None      # output-channel axis of input 1 (int8 per-channel weights)
    bias_input: ClassVar[int | None] = None       # position of the bias (int32 in int8 models)
    fused_activation: ClassVar[bool] = False      # has an ``activation`` attribute (TFLite fused activation)
    fusable_as: ClassVar[str | None] = None  # this standalone op folds into a producer as that activation
    aliases_input: ClassVar[bool] = False         # the output is the input's bytes, reinterpreted (RESHAPE)
    absorbs_pad: ClassVar[bool] = False           # a VALID window op that a zero PAD before it can turn SAME
    folds_into_weights: ClassVar[bool] = False    # a per-channel affine op that folds into the layer before
    ops_per_element: ClassVar[int] = 0            # "other ops" per output element (see analysis/cost.py)
    int8_version: ClassVar[int] = 1               # TFLite operator version of the int8 kernel
    quant: ClassVar[QuantRule | None] = QuantRule()  # None: no int8 conversion
    tflm: ClassVar[bool] = True                   # TFLM has a kernel for it
    missing_fix: ClassVar[str] = ""               # for IR-only ops: how to get rid of it (TFLite, int8, TFLM)
    c: ClassVar[CKernel | None] = None            # the C library's kernel, if any
    tflite_custom: ClassVar[tuple[str, ...]] = ()  # TFLite custom codes read by ``from_tflite_custom``
    onnx: ClassVar[tuple[str, ...]] = ()          # ONNX op types converted by ``from_onnx``
    torch_modules: ClassVar[tuple[str, ...]] = ()  # torch.nn class names converted by ``from_torch_module``
    torch_functions: ClassVar[tuple[str, ...]] = ()  # torch / F / operator / Tensor-method names
    spec_layers: ClassVar[dict[str, frozenset[str]]] = {}  # YAML spec layer type -> its keys
    spec_aliases: ClassVar[dict[str, str]] = {}   # other YAML names of those layer types
    spec_activation: ClassVar[str | None] = None  # YAML ``activation:`` value that appends this op as a layer

    # -- TFLite file ----------------------------------------------------------------------------------
    def read_tflite(self, r, ins: list[Tensor | None], out: Tensor) -> dict:
        """Attributes from the options table; ``r`` (graph/tflite_import.OptionsReader) checks and fails."""
        return r.fields(self.options.fields) if self.options else {}

    def write_tflite(self, w, graph: Graph, node: Node) -> int:
        """The options table offset (0: none); ``w`` is export/tflite's writer."""
        if self.options is None:
            return 0
        return w.fields(self.options.fields, node.attrs)

    def version(self, graph: Graph, node: Node) -> int:
        """The operator version the TFLite converter records (LiteRT checks it is one it registers)."""
        x = graph.tensors[node.inputs[0]] if node.inputs and node.inputs[0] else None
        return self.int8_version if x is not None and x.dtype == "int8" else 1

    def complete_operands(self, graph: Graph, node: Node) -> None:
        """Add operands a TFLite file must carry but the IR may leave implicit (a zero bias, MEAN's axes)."""

    def check_dtypes(self, ins: list[Tensor | None], out: Tensor) -> str | None:
        """A dtype combination TFLite kernels refuse, described; None when it is fine."""
        data = [t for t in (ins if self.data_inputs is None else ins[: self.data_inputs]) if t is not None]
        dtypes = {t.dtype for t in data} | {out.dtype}
        if len(dtypes) > 1:
            return f"mixes dtypes {sorted(dtypes)} between its inputs and output"
        return None

    # -- graph ----------------------------------------------------------------------------------------
    def shape(self, graph: Graph, node: Node, fail: Callable[[str, str], NoReturn]) -> tuple[int, ...]:
        """The output shape from the input shapes; ``fail(message, fix)`` raises with the node named."""
        return graph.tensors[node.inputs[0]].shape

    def shapes(self, graph: Graph, node: Node, fail: Callable[[str, str], NoReturn]) -> list[tuple[int, ...]]:
        """Every output's shape (operators with several outputs override this instead of ``shape``)."""
        return [self.shape(graph, node, fail)]

    def fold_constant(self, graph: Graph, node: Node) -> list[np.ndarray] | None:
        """The outputs computed at import when every input is a constant (DEQUANTIZE of float16 weights,
        DENSIFY of sparse ones: what the file stores folds back to plain constants), else None."""
        return None

    def lower(self, graph: Graph, node: Node) -> list[Node] | None:
        """Nodes of TFLite operators computing the same function (added tensors go into ``graph``), for an
        IR-only operator that conversion must replace (a BATCH_NORM no layer can absorb); None otherwise."""
        return None

    def zero_pads(self, graph: Graph, node: Node) -> np.ndarray | None:
        """[[before, after], ...] when the node is a constant zero padding (PAD), else None."""
        return None

    def is_identity(self, graph: Graph, node: Node) -> bool:
        """True when the node computes its first input unchanged (removed by ``remove_identities``)."""
        return False

    # -- analysis -------------------------------------------------------------------------------------
    def macs(self, graph: Graph, node: Node) -> int:
        """Multiply-accumulates (FLOPs = 2 x MACs, as the seeds count them)."""
        return 0

    def other_ops(self, graph: Graph, node: Node) -> int:
        """Arithmetic that is not a MAC (bias adds, pooling, element-wise ops), fused activation excluded."""
        return self.ops_per_element * graph.tensors[node.outputs[0]].size

    latency_class: ClassVar[str | None] = None    # MAC kernel family for the cycle model: conv, depthwise, fc

    def param_formula(self, graph: Graph, node: Node) -> str | None:
        """The parameter count as a worked formula, e.g. '(3×3×1+1)×16 = 160' (``analyze --explain``)."""
        return None

    def mac_formula(self, graph: Graph, node: Node) -> str | None:
        """The MAC count as a worked formula (``analyze --explain``)."""
        return None

    def scale_channels(self, g: Graph, node: Node, before: Graph, keep: float, last: bool) -> bool:
        """What-if structured pruning: resize this node's parameters (and shape attributes) in ``g`` after its
        input lost channels; ``keep`` is the fraction of output channels a weighted layer keeps (all when
        ``last``). False when the new shapes cannot be derived. Element-wise ops need nothing."""
        return True

    # -- runtime --------------------------------------------------------------------------------------
    def prepare(self, graph: Graph, node: Node, is_int: bool) -> OpData:
        """TFLM's Prepare: every parameter the kernel needs, computed once."""
        return OpData(dtype="int8" if is_int else "float32")

    def eval(self, p: Any, inputs: list) -> np.ndarray | list[np.ndarray]:
        """The kernel: inputs are ``(N, *shape[1:])`` arrays (constants with their own shape); one array, or a
        list of one array per output. ``p`` is what this record's ``prepare`` returned: its own ``OpData``
        subclass, which the override names."""
        raise NotImplementedError(f"{self.name} has no numpy kernel")

    def is_integer(self, graph: Graph, node: Node) -> bool:
        """Integer kernels run when the first input is int8 (or int16: 16x8 kernels)."""
        return graph.tensors[node.inputs[0]].dtype in ("int8", "int16")

    # -- convert --------------------------------------------------------------------------------------
    def quantize(self, q, index: int, node: Node) -> Node:
        """Add the integer twin of ``node`` to ``q.g`` (``convert.quantize.Quantizer``); the default follows
        ``quant`` (see ``convert.quantize.quantize_node``)."""
        from tinyopt.convert.quantize import quantize_node

        return quantize_node(q, index, node, self)

    # -- C library ------------------------------------------------------------------------------------
    def pack_c(self, graph: Graph, index: int, node: Node):
        """``export.c.params.OpParams`` for the C kernel; raise UnsupportedOpError for what it cannot run."""
        raise NotImplementedError

    # -- doors ----------------------------------------------------------------------------------------
    def from_tflite_custom(self, r, code: str, options: bytes, graph: Graph, ins: list[str],
                           outs: list[str]) -> Node:
        """A TFLite custom operator ``code`` (one of ``tflite_custom``) as a node of this operator: its
        operands rearranged (constants added to ``graph``) and its attributes from the raw ``options``;
        ``r.fail(message)`` refuses what the record cannot represent exactly."""
        raise NotImplementedError

    def from_onnx(self, cv, node, name: str, attrs: dict, ins: list[str]):
        raise NotImplementedError

    def from_torch_module(self, cv, n, module, name: str, out_shape: tuple[int, ...]):
        raise NotImplementedError

    def from_torch_function(self, cv, n, key: str, name: str, out_shape: tuple[int, ...]):
        raise NotImplementedError

    def from_spec(self, sb, kind: str, layer: dict, x: Tensor, lname: str, fused: str) -> Node:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<op {self.name}>"


class Opaque(Op):
    """An operator tinyopt does not know (a custom op, or a builtin without a record), kept in the graph so
    that analysis can go on: its output shapes are the ones the file stores, it counts nothing, and
    everything that would have to run it refuses by name."""

    tflm = False
    quant = None
    outputs = (1, 1 << 16)
    arity = (0, 1 << 16)
    missing_fix = "replace it in the model with supported operators (`tinyopt check` lists them)"

    def __init__(self, name: str):
        # one instance per unknown name: the name is the instance's, not the class's
        self.name = name  # type: ignore[misc]

    def shapes(self, graph, node, fail):
        return [graph.tensors[o].shape for o in node.outputs]

    def check_dtypes(self, ins, out):
        return None

    def prepare(self, graph, node, is_int):
        from tinyopt.errors import UnsupportedOpError

        raise UnsupportedOpError(f"operator {self.name} is not supported", path=graph.source,
                                 where=f"node '{node.name}'", fix=self.missing_fix)

    def eval(self, p, inputs):
        raise NotImplementedError(self.name)


REGISTRY: dict[str, Op] = {}
OPAQUE: dict[str, Opaque] = {}


def opaque(name: str) -> Opaque:
    """The placeholder record of an unknown operator ``name`` (one per name)."""
    if name not in OPAQUE:
        OPAQUE[name] = Opaque(name)
    return OPAQUE[name]


def register(cls: type[Op]) -> type[Op]:
    """Class decorator: one instance per operator name."""
    if not cls.name:
        raise TypeError(f"{cls.__name__} has no name")
    if cls.name in REGISTRY:
        raise TypeError(f"operator {cls.name} is registered twice")
    REGISTRY[cls.name] = cls()
    return cls


@dataclass
class DoorTables:
    """Framework names → record, built once from the records (importers look here)."""

    onnx: dict[str, Op] = field(default_factory=dict)
    tflite_custom: dict[str, Op] = field(default_factory=dict)
    torch_modules: dict[str, Op] = field(default_factory=dict)
    torch_functions: dict[str, Op] = field(default_factory=dict)
    spec_layers: dict[str, Op] = field(default_factory=dict)


def door_tables() -> DoorTables:
    t = DoorTables()
    for rec in REGISTRY.values():
        for table, names in ((t.onnx, rec.onnx), (t.tflite_custom, rec.tflite_custom),
                             (t.torch_modules, rec.torch_modules),
                             (t.torch_functions, rec.torch_functions), (t.spec_layers, rec.spec_layers)):
            for key in names:
                if key in table:
                    raise TypeError(f"{key} is claimed by both {table[key].name} and {rec.name}")
                table[key] = rec
    return t
