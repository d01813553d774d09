"""How facade results show themselves: text tables in a terminal (``repr``/``print``), HTML in a notebook.

A result lists its ``Table``s once; ``text`` renders them with rich (the CLI prints the same text) and
``html`` as plain, escaped ``<table>`` markup that Jupyter shows without any extra package.
"""

from __future__ import annotations

import html
import io
import json
from dataclasses import dataclass, field


@dataclass
class Table:
    """One titled table: ``rows`` are lists of cells (already formatted); ``notes`` follow it as lines."""

    title: str
    columns: list[str]
    rows: list[list] = field(default_factory=list)
    right: tuple[str, ...] = ()  # columns aligned right (numbers)
    notes: list[str] = field(default_factory=list)
    show_header: bool = True


def console(width: int = 110, file=None):
    """A rich console for captured text: no colour codes, a fixed width, wrapping off."""
    from rich.console import Console

    return Console(file=file or io.StringIO(), width=width, color_system=None, highlight=False,
                   soft_wrap=True, force_terminal=False)


def print_tables(tables: list[Table], con) -> None:
    from rich.table import Table as RichTable

    for t in tables:
        if t.columns:
            rt = RichTable(title=t.title or None, title_justify="left", show_header=t.show_header)
            for col in t.columns:
                rt.add_column(col, justify="right" if col in t.right else "left", overflow="fold")
            for row in t.rows:
                rt.add_row(*("" if c is None else str(c) for c in row))
            con.print(rt)
        elif t.title:
            con.print(t.title, markup=False)
        for line in t.notes:
            con.print(line, markup=False)


def text(tables: list[Table], width: int = 110) -> str:
    con = console(width)
    print_tables(tables, con)
    return con.file.getvalue().rstrip("\n")


def to_html(tables: list[Table]) -> str:
    parts = ['<div class="tinyopt-result">']
    for t in tables:
        if t.title:
            parts.append(f"<p><b>{html.escape(t.title)}</b></p>")
        if t.columns:
            parts.append("<table>")
            if t.show_header:
                parts.append("<thead><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in t.columns)
                             + "</tr></thead>")
            parts.append("<tbody>")
            for row in t.rows:
                cells = []
                for col, c in zip(t.columns, row):
                    style = ' style="text-align:right"' if col in t.right else ""
                    cells.append(f"<td{style}>{html.escape('' if c is None else str(c))}</td>")
                parts.append("<tr>" + "".join(cells) + "</tr>")
            parts.append("</tbody></table>")
        if t.notes:
            parts.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in t.notes) + "</ul>")
    parts.append("</div>")
    return "\n".join(parts)


def jsonable(obj):
    """``obj`` as ``json.loads(json.dumps(obj))`` gives it back: the exact value ``--json`` prints."""
    from tinyopt._json import plain

    return json.loads(json.dumps(obj, default=plain))


class Result:
    """Base of every facade result: ``tables()`` for display, ``to_dict()`` for the JSON the CLI prints."""

    WIDTH = 110  # columns of the text form (wide tables get more)

    def tables(self) -> list[Table]:
        raise NotImplementedError

    def to_dict(self) -> dict:
        raise NotImplementedError

    def text(self, width: int | None = None) -> str:
        """The result as the terminal shows it."""
        return text(self.tables(), width or self.WIDTH)

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        return to_html(self.tables())


def num(x) -> str:
    return "-" if x is None else f"{x:,}"


__all__ = ["Result", "Table", "console", "jsonable", "num", "print_tables", "text", "to_html"]
