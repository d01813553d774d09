import json

import numpy as np
import pytest

from tinyopt._json import plain, plain_or_str


def test_plain_knows_numpy_and_sets_and_refuses_the_rest():
    text = json.dumps({"a": np.int8(-3), "b": np.arange(3, dtype=np.int64), "c": {7}}, default=plain)
    assert json.loads(text) == {"a": -3, "b": [0, 1, 2], "c": [7]}
    with pytest.raises(TypeError, match="complex"):
        json.dumps(1j, default=plain)
    assert json.loads(json.dumps({"z": 1j, "f": np.float32(0.5)},
                                 default=plain_or_str)) == {"z": "1j", "f": 0.5}
