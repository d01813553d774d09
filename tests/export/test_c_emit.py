"""The string helpers of the generator: doctests plus the edge cases C is picky about."""

from __future__ import annotations

import doctest

import numpy as np

from tinyopt.export.c import board, emit, generate, params
from tinyopt.export.c.emit import c_array, c_identifier, rename_symbols


def test_doctests():
    for mod in (emit, generate, board, params):
        assert doctest.testmod(mod).failed == 0, mod.__name__


def test_int32_min_is_spelled_as_a_constant():
    # -2147483648 is unary minus applied to an out-of-range int: C needs INT32_MIN
    assert "INT32_MIN" in c_array("b", "int32_t", np.array([-(2**31), 5]))


def test_identifiers_and_prefix():
    assert c_identifier("a;b/c d") == "a_b_c_d"
    assert rename_symbols("TINYOPT_ARENA tinyopt_invoke", "tinyopt") == "TINYOPT_ARENA tinyopt_invoke"
    assert rename_symbols("tinyopt_model.h", "my_net") == "my_net_model.h"
