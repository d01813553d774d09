"""tinyopt.runtime: a numpy interpreter for float and int8 Graphs, bit-exact with TFLM's reference kernels.

``prepare_node`` computes each operator's integer parameters once (as TFLM's Prepare does); the kernels in
``runtime/ops`` (one module per operator) then run in integers only.
"""

from tinyopt.runtime.interpreter import Interpreter
from tinyopt.runtime.prepare import prepare_node
from tinyopt.runtime.support import OpSupport, check_support

__all__ = ["Interpreter", "OpSupport", "check_support", "prepare_node"]
