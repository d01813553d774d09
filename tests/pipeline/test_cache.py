import json

import pytest

from tinyopt.pipeline.cache import StageCache, fingerprint_path, stage_key


def test_keys_chain_and_only_change_downstream():
    data = stage_key("data", {"source": "digits"})
    feat = stage_key("features", {"block": "raw"}, [data])
    train = stage_key("train", {"epochs": 3}, [feat])
    recipe_a = stage_key("quantize", {"mode": "qat"}, [train])
    recipe_b = stage_key("quantize", {"mode": "ptq"}, [train])
    assert recipe_a != recipe_b
    # the train key does not depend on the recipe at all; a new data config changes every key after it
    assert train == stage_key("train", {"epochs": 3}, [stage_key("features", {"block": "raw"}, [data])])
    data2 = stage_key("data", {"source": "mnist"})
    assert stage_key("train", {"epochs": 3}, [stage_key("features", {"block": "raw"}, [data2])]) != train
    assert stage_key("x", {"a": 1, "b": 2}) == stage_key("x", {"b": 2, "a": 1})  # key order is irrelevant


def test_cached_builds_once(tmp_path):
    cache = StageCache(tmp_path)
    calls = []

    def build(folder):
        calls.append(1)
        (folder / "out.txt").write_text("hello")
        return {"n": 1}

    d1, m1 = cache.cached("s", "k", build)
    d2, m2 = cache.cached("s", "k", build)
    assert len(calls) == 1 and d1 == d2 and m1 == m2 == {"n": 1}
    assert (d1 / "out.txt").read_text() == "hello"
    assert json.loads((d1 / "meta.json").read_text()) == {"n": 1}
    assert cache.hits == ["s"] and cache.misses == ["s"]
    off = StageCache(tmp_path, enabled=False)
    off.cached("s", "k", build)
    assert len(calls) == 2


def test_a_failing_build_leaves_no_entry(tmp_path):
    cache = StageCache(tmp_path)

    def build(folder):
        (folder / "half.bin").write_bytes(b"x")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        cache.cached("s", "k", build)
    assert not cache.has("s", "k")
    assert [p.name for p in tmp_path.iterdir()] == []


def test_fingerprint_follows_the_files(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"12")
    f1 = fingerprint_path(tmp_path)
    (tmp_path / "b.wav").write_bytes(b"3")
    assert fingerprint_path(tmp_path) != f1
