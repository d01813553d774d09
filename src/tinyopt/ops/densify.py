"""DENSIFY: a sparse constant (TFLite's SparsityParameters) made dense. The importer decodes sparse tensors
when it reads them and folds this operator away, so the weights count at the bytes the file stores."""

from __future__ import annotations

from tinyopt.ops._record import Op, Options, register


@register
class Densify(Op):
    name = "DENSIFY"
    builtin = 124
    options = Options(99)
    quant = None
    tflm = False
    missing_fix = "it only ever reads a constant: the importer folds it into a dense constant"

    def fold_constant(self, graph, node):
        return [graph.tensors[node.inputs[0]].data]

    def prepare(self, graph, node, is_int):
        from tinyopt.ops import _common as c

        c.unsupported(graph, node, "DENSIFY of a tensor computed at run time", self.missing_fix)

    def eval(self, p, inputs):
        return inputs[0]
