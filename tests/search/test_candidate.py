import pytest

from tinyopt.analysis.cost import layer_costs
from tinyopt.graph.spec import spec_to_graph
from tinyopt.graph.torch_import import from_torch
from tinyopt.search.candidate import candidate_spec
from tinyopt.search.train import build_torch


@pytest.mark.parametrize("params, shape", [
    ({"width": 6, "depth": 2, "kernel": 3, "dense": 32, "prune": 0.5}, (8, 8, 1)),
    ({"width": 4, "depth": 3, "kernel": 5, "dense": 0, "prune": 0.0}, (28, 28, 1)),
    ({"width": 5, "depth": 2, "dense": 16, "prune": 0.25}, (20,)),
])
def test_the_trained_module_is_the_analyzed_spec(params, shape):
    """The analyzer judges candidate_spec; the trainer builds a zoo module: they must be one network."""
    spec_graph = spec_to_graph(candidate_spec(params, shape, 10))
    torch_shape = (shape[2], *shape[:2]) if len(shape) == 3 else shape
    module_graph = from_torch(build_torch(params, shape, 10), torch_shape)
    a, b = layer_costs(spec_graph), layer_costs(module_graph)
    assert sum(x.params for x in a) == sum(x.params for x in b)
    assert sum(x.macs for x in a) == sum(x.macs for x in b)


def test_pruning_ratio_scales_every_hidden_width():
    spec = candidate_spec({"width": 8, "depth": 2, "dense": 64, "prune": 0.5}, (8, 8, 1), 10)
    widths = [layer.get("filters", layer.get("units")) for layer in spec["layers"] if "filters" in layer or
              "units" in layer]
    assert widths == [4, 8, 32, 10]  # round(8·0.5), round(16·0.5), round(64·0.5), classes untouched


def test_front_2d_keeps_only_points_that_beat_every_faster_one():
    from tinyopt.search.outputs import front_2d

    pts = [{"n": 1, "latency_s": 1, "accuracy": 0.5}, {"n": 2, "latency_s": 2, "accuracy": 0.4},
           {"n": 3, "latency_s": 3, "accuracy": 0.9}, {"n": 4, "latency_s": 3, "accuracy": 0.8}]
    assert [t["n"] for t in front_2d(pts)] == [1, 3]
