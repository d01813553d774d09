"""tinyopt.report: one self-contained HTML page (inline CSS, base64 PNG figures) and the plots in it."""

from tinyopt.report.html import Report, fig_to_png

__all__ = ["Report", "fig_to_png"]
