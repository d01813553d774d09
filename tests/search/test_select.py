import json

import pytest

from tinyopt.cli import main
from tinyopt.errors import BudgetError, ConfigError
from tinyopt.search.select import Client, Version, latency_of, load_versions, select


def test_exam_selection(examples):
    versions, _ = load_versions(examples / "select" / "exam.yaml")
    by = {v.name: v for v in versions}
    # solution key: 39.04 M / 10 MFLOPS = 3.904 s; 6.62 M / 10 M = 0.662 s; / 80 MOPS = 0.488 s, 0.083 s
    assert by["base"].latency_s == pytest.approx(3.904)
    assert by["base + pruned"].latency_s == pytest.approx(0.662)
    assert by["base + int8"].latency_s == pytest.approx(0.488)
    assert by["base + pruned + int8"].latency_s == pytest.approx(0.08275)
    c1, c2 = select(versions, [Client("c1", 0.2), Client("c2", 0.5)])
    # client ±0.2 s → pruned + int8 at 93 − 5 − 3 = 85 %; client ±0.5 s → base + int8 at 93 − 3 = 90 %
    assert (c1.version.name, c1.version.accuracy) == ("base + pruned + int8", 85)
    assert (c2.version.name, c2.version.accuracy) == ("base + int8", 90)
    assert any("0.488 s > 0.2 s" in r for r in c1.reasons)


def test_cli_json_and_impossible_budget(examples, capsys):
    f = str(examples / "select" / "exam.yaml")
    assert main(["select", f, "--client", "c1=0.2", "--client", "c2=0.5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [c["version"] for c in out["choices"]] == ["base + pruned + int8", "base + int8"]
    assert main(["select", f, "--client", "rt=0.01"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "latency ≤ 0.01 s" in err and "0.083 s" in err and "Traceback" not in err


def test_bad_versions_files(tmp_path):
    p = tmp_path / "v.yaml"
    p.write_text("versions:\n  - {name: a, acuracy: 90}\n")
    with pytest.raises(ConfigError, match="unknown key 'acuracy'"):
        load_versions(p)
    with pytest.raises(ConfigError, match="no latency"):
        latency_of(Version("x", 90, flops=None), 1e6, 1e6)


def test_require_all_served_names_binding_constraint():
    from tinyopt.search.select import require_all_served

    vs = [Version("a", 90, latency_s=1.0)]
    with pytest.raises(BudgetError, match="client fast"):
        require_all_served(select(vs, [Client("fast", 0.5)]), vs)
