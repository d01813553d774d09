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


def test_feature_parameters_change_the_candidate_input(tmp_path):
    """A searched `features.num_coefficients` changes the MFCC image, so the analyzer prices each
    candidate at its own input size."""
    import wave

    import numpy as np

    from tinyopt.devices import get_device
    from tinyopt.pipeline.config import validate
    from tinyopt.search.train import ProjectTrainer
    from tinyopt.search.tune import candidate_cost

    rng = np.random.default_rng(0)
    t = np.arange(4000) / 8000
    for label, f0 in ((0, 300.0), (1, 1200.0)):
        for i in range(8):
            sig = 0.5 * np.sin(2 * np.pi * (f0 + 20 * i) * t) + 0.05 * rng.standard_normal(t.size)
            with wave.open(str(tmp_path / f"{label}_s_{i}.wav"), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(8000)
                w.writeframes((sig * 32767).astype("<i2").tobytes())
    cfg = validate({"data": {"source": "wav", "path": str(tmp_path), "val": 0.25, "test": 0.25},
                    "features": {"block": "mfcc", "frame_length": 0.032, "frame_stride": 0.032}})
    trainer = ProjectTrainer(cfg, epochs=1)
    small, large = ({"features.num_coefficients": k, "width": 4, "depth": 1} for k in (8, 13))
    # 0.5 s at 8 kHz in 32 ms frames = 15 frames; the coefficients are the image's second axis
    assert trainer.input_shape(small) == (15, 8, 1) and trainer.input_shape(large) == (15, 13, 1)
    dev = get_device("nano33ble")
    a = candidate_cost(small, trainer.input_shape(small), 2, dev)
    b = candidate_cost(large, trainer.input_shape(large), 2, dev)
    assert a["param_count"] < b["param_count"] and a["latency_s"] < b["latency_s"]
