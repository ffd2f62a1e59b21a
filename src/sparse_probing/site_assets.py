"""Lighter pages for the book's site: a Sphinx extension listed in ``_config.yml`` (``sphinx.extra_extensions``).

* MathJax only on pages with math. Sphinx loads it on a page whose toctree includes a page with math, so the
  book's first page (whose toctree holds every chapter) loaded about 1 MB of MathJax for no formula.
* The theme's icon script (Font Awesome's ``fontawesome.js``, about 1.5 MB with every icon of the free set) is
  replaced after the build by a script that holds only the icons the built pages use, drawn as the same inline SVG.
  When an icon the pages use is not found in the original script, the original is kept (and a warning says why).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

__all__ = ["icons_used", "lighter_icon_script", "setup", "solid_icons"]

ICON_SCRIPT = Path("_static") / "scripts" / "fontawesome.js"
"""The theme's icon script, relative to the HTML output folder."""

_ICON_CLASS = re.compile(r'class="([^"]*\b(?:fa-solid|fas|fa-regular|far|fa-brands|fab)\b[^"]*)"')
_ICON_NAME = re.compile(r"(?<![\w-])fa-([a-z0-9-]+)")
_MODIFIERS = frozenset({"solid", "regular", "brands", "lg", "xs", "sm", "xl", "2xl", "fw", "spin", "pulse"})
_SOLID = frozenset({"fa-solid", "fas"})

_RUNTIME = """/* Only the icons these pages use (Font Awesome Free 6, CC BY 4.0 icons, MIT code: fontawesome.com/license/free),
   drawn as inline SVG in place of each <i class="fa-solid fa-NAME"> (or "fas fa-NAME") element. */
(() => {
  const ICONS = %s;
  const css = ".svg-inline--fa{display:inline-block;height:1em;overflow:visible;vertical-align:-.125em}" +
    ".svg-inline--fa.fa-lg{font-size:1.25em;line-height:.05em;vertical-align:-.2em}";
  function draw(root) {
    root.querySelectorAll("i.fa-solid, i.fas").forEach((el) => {
      const name = [...el.classList].map((c) => c.slice(3)).find((n) => n in ICONS);
      if (!name) return;
      const [w, h, d] = ICONS[name];
      const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
      for (const a of el.attributes) svg.setAttribute(a.name, a.value);  // the theme's CSS reads data-mode
      svg.setAttribute("class", el.getAttribute("class") + " svg-inline--fa");
      svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
      svg.setAttribute("aria-hidden", "true");
      svg.setAttribute("focusable", "false");
      const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
      path.setAttribute("fill", "currentColor");
      path.setAttribute("d", d);
      svg.appendChild(path);
      el.replaceWith(svg);
    });
  }
  function start() {
    const style = document.createElement("style");
    style.textContent = css;
    document.head.appendChild(style);
    draw(document);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
"""


def icons_used(html_dir: Path) -> set[str]:
    """Names of the icons (``fa-solid fa-NAME`` or ``fas fa-NAME``) that the HTML pages under ``html_dir`` use; an
    icon of another style is named ``other:NAME`` (it is never found in the solid pack, so the script stays whole)."""
    names: set[str] = set()
    for page in Path(html_dir).rglob("*.html"):
        for cls in _ICON_CLASS.findall(page.read_text(encoding="utf-8", errors="replace")):
            solid = bool(_SOLID & set(cls.split()))
            names.update(n if solid else f"other:{n}" for n in _ICON_NAME.findall(cls) if n not in _MODIFIERS)
    return names


def solid_icons(script: str, names: set[str]) -> dict[str, list[Any]]:
    """``name -> [width, height, path]`` of the solid icons ``names`` in Font Awesome's ``fontawesome.js``.

    The script defines the brands, regular and solid packs in turn (``d("fab", ...)``, ``d("far", ...)``,
    ``d("fas", ...)``); an icon is read from the solid pack's definitions only."""
    ends = {m.group(1): m.start() for m in re.finditer(r'\bd\("(fa[bsr])",', script)}
    if "fas" not in ends or "far" not in ends:
        return {}
    lo, hi = ends["far"], ends["fas"]
    found: dict[str, list[Any]] = {}
    for name in names:
        key = json.dumps(name) if "-" in name else name
        pattern = re.compile(r"[{,]" + re.escape(key) + r':\[(\d+),(\d+),\[[^\]]*\],"[0-9a-f]+","([^"]+)"\]')
        for m in pattern.finditer(script, lo, hi):
            found[name] = [int(m.group(1)), int(m.group(2)), m.group(3)]
    return found


def lighter_icon_script(html_dir: Path) -> tuple[int, int, list[str]]:
    """Replace ``_static/scripts/fontawesome.js`` under ``html_dir`` by a script with only the icons the pages use.

    Returns (bytes before, bytes after, icons missing); with missing icons (or no script) nothing is written."""
    path = Path(html_dir) / ICON_SCRIPT
    if not path.is_file():
        return 0, 0, []
    script = path.read_text(encoding="utf-8")
    size = len(script.encode())
    if "___FONT_AWESOME___" not in script:  # already replaced (an incremental build)
        return size, size, []
    names = icons_used(html_dir)
    icons = solid_icons(script, names)
    missing = sorted(names - set(icons))
    if missing:
        return size, size, missing
    light = _RUNTIME % json.dumps(icons, sort_keys=True, separators=(",", ":"))
    path.write_text(light, encoding="utf-8")
    path.with_name(path.name + ".map").unlink(missing_ok=True)  # the source map of the replaced script
    return size, len(light.encode()), []


def _math_only_where_used(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """Drop MathJax from a page that has no math of its own (Sphinx adds it for math in the page's toctree)."""
    if doctree is None or "script_files" not in context:
        return
    if app.env.get_domain("math").data.get("has_equations", {}).get(pagename):
        return
    context["script_files"][:] = [
        js for js in context["script_files"]
        if "mathjax" not in str(js.filename or "").lower() and "MathJax" not in str(js.attributes.get("body", ""))
    ]  # fmt: skip


def _trim_icons(app: Any, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    from sphinx.util import logging

    before, after, missing = lighter_icon_script(Path(app.outdir))
    log = logging.getLogger(__name__)
    if missing:
        log.warning(f"icon script kept whole: icons {missing} not found in its solid pack")
    elif before != after:
        log.info(f"icon script: {before // 1024} KB -> {after // 1024} KB")


def setup(app: Any) -> dict[str, Any]:
    app.connect("html-page-context", _math_only_where_used, priority=900)  # after sphinx.ext.mathjax (500)
    app.connect("build-finished", _trim_icons)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
