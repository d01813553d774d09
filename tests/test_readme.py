"""Every Python snippet of the README and of the docs' Python API page runs as written (in a scratch folder
holding the repository's examples/), so the documentation cannot rot."""

from __future__ import annotations

import re

import pytest

from conftest import ROOT

pytestmark = pytest.mark.usefixtures("one_torch_thread")
PAGES = [ROOT / "README.md", ROOT / "docs" / "python-api.md"]


def snippets(path):
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.parametrize("page,index", [(p, i) for p in PAGES for i in range(len(snippets(p)))],
                         ids=lambda v: v.name if hasattr(v, "name") else str(v))
def test_snippet_runs(page, index, tmp_path, monkeypatch, capsys):
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    code = snippets(page)[index]
    exec(compile(code, f"{page.name} snippet {index + 1}", "exec"), {"__name__": "__snippet__"})
    assert capsys.readouterr().out.strip()  # every snippet shows something


def test_pages_have_snippets():
    assert len(snippets(ROOT / "README.md")) >= 1 and len(snippets(ROOT / "docs" / "python-api.md")) >= 2
