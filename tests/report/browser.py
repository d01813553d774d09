"""Open an HTML file in headless Chromium: screenshot, decoded-image count, console errors."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0", "--hide-scrollbars"]
PROBE = ("<script>addEventListener('load',()=>{const im=[...document.images];"
         "document.body.setAttribute('data-probe',im.filter(i=>i.complete&&i.naturalWidth>0).length+'/'+im.length)"
         "})</script>")


def chromium() -> str:
    path = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if path is None:
        pytest.skip("Chromium is absent (Debian package 'chromium'): the browser rendering check cannot run")
    return path


def _run(args, tmp: Path) -> subprocess.CompletedProcess:
    return subprocess.run([chromium(), *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args],
                          capture_output=True, text=True, timeout=120)


def render(html: Path, tmp: Path, screenshot: bool = True) -> dict:
    """Screenshot (as an RGB array), 'decoded/total' images, and the console error lines."""
    shot = tmp / "shot.png"
    pixels, err = None, ""
    if screenshot:
        r = _run([f"--screenshot={shot}", "--window-size=1280,2000", html.resolve().as_uri()], tmp)
        assert shot.is_file(), r.stderr[-2000:]
        import matplotlib.image

        pixels, err = matplotlib.image.imread(shot)[..., :3], r.stderr
    # the probe is added to a copy: the report itself carries no script at all
    probe_html = tmp / "probe.html"
    probe_html.write_text(html.read_text().replace("</body>", PROBE + "</body>"))
    r2 = _run(["--dump-dom", "--virtual-time-budget=10000", probe_html.resolve().as_uri()], tmp)
    dom = r2.stdout
    start = dom.find('data-probe="')
    probe = dom[start + 12:dom.find('"', start + 12)] if start >= 0 else None
    console = [line for line in (err + r2.stderr).splitlines()
               if "CONSOLE" in line and any(w in line for w in ("Error", "Uncaught", "Failed", "error"))]
    return {"pixels": pixels, "probe": probe, "console_errors": console, "shot": shot}


def non_blank(pixels: np.ndarray) -> bool:
    """More than a background: several distinct colours and real contrast."""
    flat = (pixels.reshape(-1, 3) * 255).astype(np.uint8)
    return flat.std() > 20 and len(np.unique(flat[:: max(1, len(flat) // 50000)], axis=0)) > 50
