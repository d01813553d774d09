"""The report page and its figures: numbers in, the same numbers drawn; the page renders in Chromium."""

import numpy as np
from tests.report.browser import chromium, non_blank, render

from tinyopt.report import plots
from tinyopt.report.html import Report


def test_layer_bars_draw_the_given_numbers():
    layers = [{"name": "conv", "param_bytes": 320, "macs": 4608, "act_bytes": 2048},
              {"name": "fc", "param_bytes": 2600, "macs": 640, "act_bytes": 40}]
    fig = plots.layer_bars(layers, flash_limit=1024 * 1024, ram_limit=2048 * 2)
    widths = [[p.get_width() for p in ax.patches] for ax in fig.axes]
    assert widths == [[320, 2600], [4608, 640], [2048, 40]]
    # the RAM panel is within a decade of its 4 KB limit: the dashed line is drawn at 4096
    assert [ln.get_xdata()[0] for ln in fig.axes[2].lines] == [4096]
    assert "0.25% of flash" in fig.axes[0].get_title()  # 2600 / 1,048,576 = 0.248 %


def test_arena_plan_places_each_buffer_at_its_offset():
    bufs = [{"name": "x", "offset": 512, "size": 64, "first": 0, "last": 0},
            {"name": "a", "offset": 0, "size": 512, "first": 0, "last": 1}]
    fig = plots.arena_plan(bufs, arena_bytes=576, ram_limit=None)
    rects = [(round(p.get_x() + 0.45, 6), p.get_y(), p.get_height()) for p in fig.axes[0].patches]
    assert rects == [(0, 512, 64), (0, 0, 512)]


def test_arena_plan_names_its_runtime_and_shows_the_tail():
    bufs = [{"name": "a", "offset": 0, "size": 512, "first": 0, "last": 1}]
    fig = plots.arena_plan(bufs, arena_bytes=800, head_bytes=512, runtime="tflm-reference")
    ax = fig.axes[0]
    assert ax.get_title().startswith("tflm-reference arena plan")
    texts = [t.get_text() for t in ax.texts]
    assert "tflm-reference arena 800 B" in texts
    assert any(t.startswith("persistent tail 288 B") for t in texts)  # 800 - 512, drawn above the head


def test_weight_histograms_count_every_weight():
    w = np.array([0.0, 0.0, 0.5, -0.5, 1.0])
    fig = plots.weight_histograms({"float": w, "pruned": np.zeros(3)})
    assert "5 weights, 40% zero" in fig.axes[0].get_title()
    assert "3 weights, 100% zero" in fig.axes[1].get_title()
    counts = fig.axes[0].patches[0].get_path().vertices  # one filled stairs artist
    assert counts[:, 1].max() == 2  # the two zeros share a bin


def test_confusion_writes_counts():
    fig = plots.confusion(np.array([[3, 1], [0, 4]]), ["a", "b"])
    assert sorted(t.get_text() for t in fig.axes[0].texts) == ["1", "3", "4"]


def _page(tmp_path):
    rep = Report("tinyopt · test page", "hand-made numbers")
    rep.cards([("accuracy", "97.5 %", "int8"), ("flash", "35.0 KB", "of 1 MB")])
    rep.section("Variants", "a <b>escaped</b> note")
    rows = [{"variant": "float", "accuracy": 0.975, "params": 1898, "flash_bytes": 40360, "fits": True},
            {"variant": "int8", "accuracy": 0.97, "params": 1898, "flash_bytes": 35368, "fits": False}]
    rep.table(rows)
    rep.figure(plots.tradeoff([{**r, "latency_ms": 0.7} for r in rows]), "trade-off")
    rep.section("Accuracy")
    rep.grid()
    rep.figure(plots.confusion(np.array([[5, 1], [0, 6]]), ["0", "1"]), "confusion")
    rep.figure(plots.training_curves({"float": [{"epoch": 1, "loss": 1.0, "val_accuracy": 0.5},
                                                {"epoch": 2, "loss": 0.5, "val_accuracy": 0.8}]}), "curves")
    rep.grid(False)
    rep.figure(plots.class_balance([{"class": "0", "train": 5, "val": 1, "test": 2}]), "balance")
    rep.figure(plots.feature_example(np.arange(20.0).reshape(5, 4), "features"), "features")
    path = tmp_path / "page.html"
    rep.save(path)
    return path, rep


def test_page_is_self_contained_and_escaped(tmp_path):
    path, rep = _page(tmp_path)
    html = path.read_text()
    assert rep.n_images == 5 and html.count("data:image/png;base64,") == 5
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert "a &lt;b&gt;escaped&lt;/b&gt; note" in html
    assert html.count("<section>") == html.count("</section>") == 2
    assert '<span class="bad">no</span>' in html and "40,360" in html


def test_page_renders_in_chromium(tmp_path):
    path, rep = _page(tmp_path)
    out = render(path, tmp_path)
    assert non_blank(out["pixels"])
    assert out["probe"] == f"{rep.n_images}/{rep.n_images}"  # every <img> decoded
    assert out["console_errors"] == []


def test_a_broken_image_is_caught(tmp_path):
    """The probe is not vacuous: a corrupt PNG counts as not decoded."""
    chromium()
    rep = Report("broken")
    rep.image(b"\x89PNG\r\n\x1a\nnot really", "broken")
    path = tmp_path / "b.html"
    rep.save(path)
    assert render(path, tmp_path, screenshot=False)["probe"] == "0/1"
