"""TFLite resource variables (a streaming model's state) read into ``Graph.variables``.

A streaming keyword-spotting model keeps the last frames of each layer's input between invokes:
``CALL_ONCE`` runs an init subgraph on the first invoke (``VAR_HANDLE`` + ``ASSIGN_VARIABLE`` of a
constant per variable), then every invoke reads each variable (``READ_VARIABLE``), concatenates the new
frame, and assigns the tail back (``ASSIGN_VARIABLE``). None of these four operators computes anything:
the importer turns them into data flow. The first read of a variable in an invoke becomes a variable
tensor (the state before the invoke), later reads alias the value assigned last, and the value assigned
last is the state's update. What TFLM computes on each invoke is then the graph's own arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from tinyopt.graph._tflite_schema import Slot
from tinyopt.graph.ir import Graph, Variable

if TYPE_CHECKING:
    from tinyopt.graph._tflite_reader import Table
    from tinyopt.graph.tflite_import import _Importer

RESOURCE_OPS = ("CALL_ONCE", "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE")
FIX = ("export the streaming model with its state as resource variables initialised by CALL_ONCE "
       "(as the TFLite converter writes them), or as explicit state inputs and outputs")


@dataclass
class ResourceVariables:
    """Walks subgraph 0's resource operators in order; ``alias`` renames later operators' inputs."""

    imp: _Importer
    subgraphs: list
    handles: dict[int, str] = field(default_factory=dict)       # VAR_HANDLE output tensor -> shared name
    current: dict[str, int] = field(default_factory=dict)       # variable -> tensor holding its value now
    state: dict[str, int] = field(default_factory=dict)         # variable -> its state tensor (first read)
    alias: dict[int, int] = field(default_factory=dict)         # READ output -> tensor it stands for
    init: dict[str, np.ndarray] = field(default_factory=dict)
    init_subgraph: int | None = None

    def visit(self, j: int, op: Table, name: str) -> None:
        imp, where = self.imp, f"operator {j} ({name})"
        ins, outs, opts = self._operands(op, where)
        with imp.at(where):
            if name == "CALL_ONCE":
                k = opts.scalar(0, "i32") if opts is not None else 0
                if not 0 < k < len(self.subgraphs) or self.init_subgraph not in (None, k):
                    imp.fail(f"calls subgraph {k}; only one init subgraph "
                             f"(1..{len(self.subgraphs) - 1}) is read",
                             where, FIX)
                self.init_subgraph = k
                self.init = self._run_init(k)
            elif name == "VAR_HANDLE":
                self.handles[outs[0]] = self._shared_name(opts, where)
            elif name == "READ_VARIABLE":
                var = self._variable(ins[0], where)
                if var in self.current:
                    self.alias[outs[0]] = self.current[var]
                else:
                    self.state[var] = self.current[var] = outs[0]
            else:  # ASSIGN_VARIABLE
                var = self._variable(ins[0], where)
                self.current[var] = self.alias.get(ins[1], ins[1])

    def rename(self, raw):
        """A raw operator with its inputs read through the aliases of earlier reads."""
        name, ins, outs, opts = raw
        return name, [self.alias.get(t, t) for t in ins], outs, opts

    def finish(self, graph: Graph) -> None:
        """Mark the state tensors and record ``graph.variables`` (a variable never assigned: a constant)."""
        imp = self.imp
        for var, s in self.state.items():
            t = graph.tensors[imp.names[s]]
            init = self.init.get(var)
            if init is None:
                imp.fail(f"variable '{var}' is read before CALL_ONCE assigns it a value", "subgraph 0", FIX)
            if int(np.prod(init.shape)) != t.size:
                imp.fail(f"variable '{var}' starts with {init.size} values but is read as {list(t.shape)}",
                         "subgraph 0", FIX)
            upd = self.current[var]
            if upd == s:
                t.constant, t.data = True, np.asarray(init, t.dtype).reshape(t.shape)
                continue
            t.variable = True
            u = graph.tensors[imp.names[upd]]
            if u.shape != t.shape or u.dtype != t.dtype:
                imp.fail(f"variable '{var}' is read as {t.dtype} {list(t.shape)} but assigned "
                         f"{u.dtype} {list(u.shape)}", "subgraph 0", FIX)
            graph.variables.append(Variable(var, t.name, u.name, np.asarray(init, t.dtype).reshape(t.shape)))

    # -- helpers --------------------------------------------------------------------------------
    def _operands(self, op: Table, where: str) -> tuple[list[int], list[int], Table | None]:
        """A resource operator's input and output tensor indices (checked) and its options table."""
        imp = self.imp
        with imp.at(where):
            ins = [int(t) for t in op.array(Slot.OP_INPUTS, "<i4", "the operator inputs")]
            outs = [int(t) for t in op.array(Slot.OP_OUTPUTS, "<i4", "the operator outputs")]
            opts = (op.table(Slot.OP_OPTIONS, "the builtin options") if op.scalar(Slot.OP_OPTIONS_TYPE, "u8")
                    else None)
        for t in (*ins, *outs):
            imp._check_tensor_index(t, where)
        return ins, outs, opts

    def _variable(self, handle: int, where: str) -> str:
        if handle not in self.handles:
            self.imp.fail(f"reads or assigns tensor {handle}, which no VAR_HANDLE made", where, FIX)
        return self.handles[handle]

    def _shared_name(self, opts, where: str) -> str:
        if opts is None:
            self.imp.fail("has no options naming its variable", where, FIX)
        with self.imp.at(where):
            container = opts.string(0, "the container") if opts.has(0) else ""
            shared = opts.string(1, "the shared name") if opts.has(1) else ""
        return f"{container}/{shared}" if container else shared

    def _run_init(self, k: int) -> dict[str, np.ndarray]:
        """The init subgraph: VAR_HANDLE + ASSIGN_VARIABLE of constants only."""
        imp = self.imp
        where = f"subgraph {k}"
        saved = imp.tensor_tables
        with imp.at(where):
            sg = self.subgraphs[k]
            imp.tensor_tables = sg.tables(Slot.SUBGRAPH_TENSORS, "the tensor list")
            op_tables = sg.tables(Slot.SUBGRAPH_OPERATORS, "the operator list")
        try:
            handles: dict[int, str] = {}
            values: dict[str, np.ndarray] = {}
            scratch = Graph("init", source=imp.source)
            for j, op in enumerate(op_tables):
                name = imp.peek_op_name(j, op)
                w = f"{where} operator {j} ({name})"
                ins, outs, opts = self._operands(op, w)
                if name == "VAR_HANDLE":
                    handles[outs[0]] = self._shared_name(opts, w)
                elif name == "ASSIGN_VARIABLE" and ins[0] in handles:
                    value = imp._read_tensor(ins[1], scratch)
                    if value.data is None:
                        imp.fail("assigns a value that is not a constant", w, FIX)
                    values[handles[ins[0]]] = np.asarray(value.data)
                else:
                    imp.fail(f"{name} in an init subgraph: only VAR_HANDLE and ASSIGN_VARIABLE "
                             "of constants are read", w, FIX)
            return values
        finally:
            imp.tensor_tables = saved
