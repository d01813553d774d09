"""One self-contained HTML page: inline CSS, tables, and matplotlib figures embedded as base64 PNG.

No scripts, no external fonts or stylesheets: the file opens from an e-mail attachment or an air-gapped
machine and looks the same. PNGs are written with fixed metadata so the same run gives the same bytes.
"""

from __future__ import annotations

import base64
import html
import io
import os

from tinyopt._io import atomic_write_text

CSS = """
:root{--ink:#1d2433;--muted:#5b6475;--line:#e3e7ef;--bg:#f6f8fb;--card:#fff;--ok:#1a7f4b;--bad:#b3261e;
--accent:#2f5bea}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
color:var(--ink);background:var(--bg)}
header{background:linear-gradient(120deg,#1f2a44,#2f5bea);color:#fff;padding:28px 40px}
header h1{margin:0 0 4px;font-size:26px;font-weight:650}
header p{margin:0;opacity:.85}
main{max-width:1180px;margin:0 auto;padding:24px 28px 60px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 22px;
margin:0 0 20px;box-shadow:0 1px 2px rgba(20,30,60,.04)}
h2{font-size:19px;margin:0 0 10px;font-weight:640}
h3{font-size:15px;margin:16px 0 6px;color:var(--muted);font-weight:600}
p.note{color:var(--muted);margin:4px 0 10px}
table{border-collapse:collapse;width:100%;margin:6px 0 10px;font-variant-numeric:tabular-nums}
th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th{background:#f0f3f9;font-weight:600;color:#33405a}
td:first-child,th:first-child{text-align:left}
tr:hover td{background:#fafbfe}
caption{caption-side:top;text-align:left;color:var(--muted);padding:0 0 6px}
.ok{color:var(--ok);font-weight:600}.bad{color:var(--bad);font-weight:600}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:0 0 20px}
.card{flex:1 1 160px;background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 16px}
.card .k{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:22px;font-weight:650}
.card .s{color:var(--muted);font-size:12px}
figure{margin:10px 0 14px;text-align:center}
figure img{max-width:100%;height:auto;border:1px solid var(--line);border-radius:6px;background:#fff}
figcaption{color:var(--muted);font-size:13px;margin-top:4px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:8px 18px}
.scroll{overflow-x:auto}
footer{color:var(--muted);font-size:12px;text-align:center;padding:10px}
"""


def fig_to_png(fig, dpi: int = 110) -> bytes:
    """Render a matplotlib figure to PNG bytes with fixed metadata (no timestamps), then close it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": "tinyopt"})  # plots call tight_layout
    plt.close(fig)
    return buf.getvalue()


def _fmt(v) -> str:
    if isinstance(v, bool):
        return '<span class="ok">yes</span>' if v else '<span class="bad">no</span>'
    if isinstance(v, float):
        if v != v:
            return "–"
        return f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    if v is None:
        return "–"
    return html.escape(str(v))


class Report:
    """Accumulates sections, then writes one HTML file. Values are HTML-escaped; ``raw`` is not."""

    def __init__(self, title: str, subtitle: str = ""):
        self.title = title
        self.subtitle = subtitle
        self.parts: list[str] = []
        self.n_images = 0
        self._open = False

    def cards(self, items: list[tuple[str, str, str]]) -> Report:
        """Headline numbers: (label, value, small print), shown before the first section."""
        if self._open:
            self.parts.append("</section>")
            self._open = False
        cells = "".join(f'<div class="card"><div class="k">{html.escape(k)}</div><div '
                        f'class="v">{html.escape(v)}</div><div '
                        f'class="s">{html.escape(s)}</div></div>' for k, v, s in items)
        self.parts.append(f'<div class="cards">{cells}</div>')
        return self

    def section(self, title: str, note: str = "") -> Report:
        if self._open:
            self.parts.append("</section>")
        self.parts.append(f"<section><h2>{html.escape(title)}</h2>")
        if note:
            self.parts.append(f'<p class="note">{html.escape(note)}</p>')
        self._open = True
        return self

    def subheading(self, text: str) -> Report:
        self.parts.append(f"<h3>{html.escape(text)}</h3>")
        return self

    def text(self, text: str) -> Report:
        self.parts.append(f'<p class="note">{html.escape(text)}</p>')
        return self

    def table(self, rows: list[dict], columns: list[str] | None = None, caption: str = "") -> Report:
        if not rows:
            return self
        columns = columns or list(rows[0])
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
        body = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(c))}</td>" for c in columns) + "</tr>"
                       for r in rows)
        cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        self.parts.append(f'<div class="scroll"><table>{cap}<thead><tr>{head}</tr></thead>'
                          f"<tbody>{body}</tbody></table></div>")
        return self

    def image(self, png: bytes, caption: str = "", alt: str = "") -> Report:
        data = base64.b64encode(png).decode("ascii")
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self.parts.append(f'<figure><img alt="{html.escape(alt or caption)}" '
                          f'src="data:image/png;base64,{data}">{cap}</figure>')
        self.n_images += 1
        return self

    def figure(self, fig, caption: str = "", alt: str = "") -> Report:
        return self.image(fig_to_png(fig), caption, alt)

    def grid(self, start: bool = True) -> Report:
        self.parts.append('<div class="grid">' if start else "</div>")
        return self

    def html(self) -> str:
        body = list(self.parts)
        if self._open:
            body.append("</section>")
        sub = f"<p>{html.escape(self.subtitle)}</p>" if self.subtitle else ""
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
                f"<title>{html.escape(self.title)}</title><style>{CSS}</style></head><body>"
                f"<header><h1>{html.escape(self.title)}</h1>{sub}</header><main>{''.join(body)}</main>"
                "<footer>generated by tinyopt · sizes in bytes, KB = 1024 bytes</footer></body></html>\n")

    def save(self, path: str | os.PathLike):
        return atomic_write_text(path, self.html())
