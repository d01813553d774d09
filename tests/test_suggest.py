"""The one 'did you mean' helper: nearest valid word, or nothing when none is close."""

import doctest

import tinyopt._suggest as suggest


def test_nearest_word_or_none():
    assert suggest.did_you_mean("sparsty", ["sparsity", "scope", "method"]) == ["sparsity"]
    assert suggest.did_you_mean("zzz", ["sparsity"]) == []
    assert suggest.did_you_mean(3, [1, 2, 3]) == ["3"]  # YAML keys may be numbers: compared as text
    assert suggest.did_you_mean("nano", ["nano33ble", "nrf52840", "nicla"], n=2, cutoff=0.4)[0] == "nano33ble"
    assert (suggest.hint("qta", ["qat", "ptq"]) == "; did you mean 'qat'"
            and suggest.hint("zzz", ["qat"]) == "")


def test_doctests():
    assert doctest.testmod(suggest).failed == 0
