import pytest

from tinyopt.errors import ConfigError, UnsupportedOpError
from tinyopt.graph import load_model
from tinyopt.graph.spec import spec_to_graph


def test_exam_spec_shapes_and_params(examples):
    g = load_model(examples / "specs" / "exam.yaml")
    shapes = [g.tensors[n.outputs[0]].shape for n in g.nodes]
    # valid 3x3 conv: 128-2 = 126; pool 2: 63; conv: 61; pool: 30 (floor); flatten 30*30*32 = 28,800
    assert shapes[:5] == [(1, 126, 126, 16), (1, 63, 63, 16), (1, 61, 61, 32), (1, 30, 30, 32), (1, 28800)]
    # solution key: 160 + 4,640 + 86,403 = 91,203
    assert sum(t.size for t in g.constants()) == 91_203


def test_residual_add_and_same_padding():
    doc = {"input": [8, 8, 4], "layers": [
        {"type": "conv2d", "filters": 4, "kernel": 3, "padding": "same", "name": "a"},
        {"type": "conv2d", "filters": 4, "kernel": 3, "padding": "same", "stride": 2},
        {"type": "conv2d", "filters": 4, "kernel": 1, "stride": 1},
    ]}
    g = spec_to_graph(doc)
    assert g.tensors[g.outputs[0]].shape == (1, 4, 4, 4)  # ceil(8 / 2)
    doc["layers"] = doc["layers"][:1] + [{"type": "conv2d", "filters": 4, "kernel": 3, "padding": "same"},
                                         {"type": "add", "from": "a"}]
    g = spec_to_graph(doc)
    assert g.nodes[-1].op == "ADD" and g.tensors[g.outputs[0]].shape == (1, 8, 8, 4)


@pytest.mark.parametrize("layers, err, words", [
    ([{"type": "conv9d"}], UnsupportedOpError, "unknown layer type 'conv9d'"),
    ([{"type": "conv2d", "filters": 0, "kernel": 3}], ConfigError, "'filters' must be a positive"),
    ([{"type": "conv2d", "filters": -3, "kernel": 3}], ConfigError, "'filters' must be a positive"),
    ([{"type": "conv2d", "filters": 2, "kernel": 9}], Exception, "larger than its 4x4 input"),
    ([{"type": "dense", "units": 2, "actvation": "relu"}], ConfigError, "did you mean 'activation'"),
    ([{"type": "add", "from": "nowhere"}], ConfigError, "names no earlier layer"),
])
def test_bad_layers_name_the_layer(layers, err, words):
    with pytest.raises(err) as e:
        spec_to_graph({"input": [4, 4, 1], "layers": layers}, "m.yaml")
    msg = str(e.value)
    assert msg.startswith("m.yaml: ") and words in msg and "Fix:" in msg and "\n" not in msg


def test_yaml_python_tag_is_refused_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.yaml"
    bad.write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\ninput: [4]\nlayers: []\n")
    with pytest.raises(ConfigError, match="tag"):
        load_model(bad)
    assert not marker.exists()


def test_yaml_that_is_not_a_mapping(tmp_path):
    bad = tmp_path / "list.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="not a mapping"):
        load_model(bad)
