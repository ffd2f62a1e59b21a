"""Measure built book pages as a reader's browser lays them out (headless Chromium), and their weight.

:func:`measure_page` loads a copy of a page with a small script appended that records, after layout at a given
window width: where the first verdict or findings box starts, which tables and code blocks are wider than the text
column (and whether they scroll inside it or spill over), and at what share of its natural width each figure is
shown. :func:`page_weight` adds up the bytes of the page and of every local file it loads. ``sparse-probing``'s
site tests run both on the smoke book; where Chromium is not installed they are skipped.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["chromium", "measure_page", "page_weight"]

_SCRIPT = r"""
<script>
window.addEventListener("load", () => { setTimeout(() => {
  const col = document.querySelector(".bd-article") || document.body;
  const width = col.getBoundingClientRect().width;
  const right = col.getBoundingClientRect().right;
  const out = {column: width, box: null, wide: [], spill: [], figures: []};
  const box = document.querySelector(".bd-article .admonition");
  if (box) out.box = box.getBoundingClientRect().top + window.scrollY;
  for (const el of col.querySelectorAll("table, pre")) {
    const r = el.getBoundingClientRect();
    if (r.width === 0) continue;  // inside a closed dropdown
    const name = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "");
    if (el.scrollWidth > width + 1 || r.width > width + 1) out.wide.push([name, Math.round(Math.max(el.scrollWidth, r.width))]);
    let edge = r.right;  // what shows: clipped by the nearest ancestor that scrolls or hides its overflow
    for (let p = el.parentElement; p && p !== col; p = p.parentElement) {
      if (["auto", "scroll", "hidden"].includes(getComputedStyle(p).overflowX)) { edge = Math.min(edge, p.getBoundingClientRect().right); break; }
    }
    if (edge > right + 1) out.spill.push([name, Math.round(edge - right)]);
  }
  for (const img of col.querySelectorAll("img")) {
    const r = img.getBoundingClientRect();
    if (r.width === 0) continue;
    const attr = parseFloat((img.getAttribute("style") || "").replace(/.*width:\s*([\d.]+)px.*/, "$1"));
    const natural = attr > 0 ? attr : img.naturalWidth;
    out.figures.push([img.getAttribute("src"), Math.round(r.width), Math.round(natural)]);
  }
  const pre = document.createElement("pre");
  pre.id = "sitecheck-result";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
}, 200); });
</script>
"""


def chromium() -> str | None:
    """The Chromium executable on PATH (``chromium`` or ``chromium-browser``), or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def measure_page(page: str | Path, width: int = 1400, height: int = 1200, timeout: float = 60.0) -> dict[str, Any]:
    """Lay out ``page`` (a built HTML file) in headless Chromium at ``width`` CSS px and measure it.

    Returns ``column`` (the text column's width), ``box`` (the top of the first admonition in px from the page top,
    None without one), ``wide`` (``[element, width]`` of every table or code block wider than the column, scrolling
    or not), ``spill`` (``[element, px]`` of those that reach past the column's right edge) and ``figures``
    (``[src, shown px, natural px]`` per image). Raises RuntimeError when Chromium is missing or gives no result.
    """
    exe = chromium()
    if exe is None:
        raise RuntimeError("Chromium is not installed: install the Debian package 'chromium' to measure pages")
    page = Path(page).resolve()
    html = page.read_text()
    with tempfile.TemporaryDirectory() as profile:
        probe = page.with_name(f".sitecheck-{page.name}")  # beside the page, so its relative links resolve
        head, _, tail = html.rpartition("</body>")  # the page's own end: an output may quote "</body>" earlier
        probe.write_text(head + _SCRIPT + "</body>" + tail if head else html + _SCRIPT)
        try:
            done = subprocess.run(
                [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={profile}",
                 f"--window-size={width},{height}", "--virtual-time-budget=30000", "--dump-dom", probe.as_uri()],
                capture_output=True, text=True, timeout=timeout, check=False,
            )  # fmt: skip
        finally:
            probe.unlink(missing_ok=True)
    match = re.search(r'<pre id="sitecheck-result"[^>]*>(.*?)</pre>', done.stdout, re.S)
    if match is None:
        raise RuntimeError(f"Chromium gave no measurement for {page.name} (exit {done.returncode})")
    return json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<"))


_LOADS = re.compile(r"""<(?:script|img|link)\b[^>]*?\b(?:src|href)=["']([^"'#?]+)""", re.I)
_FONTS = re.compile(r"""url\(["']?([^"')#?]+)""")
_FONT_FACE = re.compile(r"@font-face\s*\{[^}]*\}", re.I)


def _css_refs(css: str) -> list[str]:
    """Files a stylesheet may make the browser fetch: of each ``@font-face`` only its first source (a browser
    takes the first format it supports, woff2 before ttf), and every other ``url()``."""
    first = [urls[0] for block in _FONT_FACE.findall(css) if (urls := _FONTS.findall(block))]
    return first + _FONTS.findall(_FONT_FACE.sub("", css))


def page_weight(page: str | Path) -> dict[str, int]:
    """Bytes of ``page`` and of every local script, stylesheet, image and font it loads (fonts read from the
    stylesheets: the first source of each font face), by kind: ``html``, ``css``, ``js``, ``images``, ``fonts``, ``total``. Remote files are not
    counted (the book loads none)."""
    page = Path(page).resolve()
    html = page.read_text()
    sizes = {"html": page.stat().st_size, "css": 0, "js": 0, "images": 0, "fonts": 0}
    seen: set[Path] = set()

    def add(path: Path) -> None:
        if path in seen or not path.is_file():
            return
        seen.add(path)
        suffix = path.suffix.lower()
        kind = {".css": "css", ".js": "js", ".woff": "fonts", ".woff2": "fonts", ".ttf": "fonts"}.get(suffix, "images")
        if suffix in (".ico", ".html", ".xml", ".txt"):
            return
        sizes[kind] += path.stat().st_size
        if suffix == ".css":
            for ref in _css_refs(path.read_text(errors="ignore")):
                if not ref.startswith(("data:", "http")):
                    add((path.parent / ref).resolve())

    for ref in _LOADS.findall(html):
        if not ref.startswith(("http:", "https:", "data:", "//")):
            add((page.parent / ref).resolve())
    sizes["total"] = sum(sizes.values())
    return sizes
