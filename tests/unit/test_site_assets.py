"""The site's lighter assets: only the icons the pages use, MathJax only where there is math."""

from __future__ import annotations

from pathlib import Path

from sparse_probing.site_assets import ICON_SCRIPT, icons_used, lighter_icon_script, solid_icons

# a miniature of Font Awesome's bundle: brands, regular and solid packs, each registered by d("fa?", p)
BUNDLE = (
    'var r="___FONT_AWESOME___";var p={github:[496,512,[],"f09b","M1 1z"]};d("fab",p);'
    'var p={sun:[512,512,[],"f185","M2 2z"]};d("far",p);'
    'var p={sun:[512,512,[9728],"f185","M3 3z"],"magnifying-glass":[512,512,[128269,"search"],"f002","M4 4z"],'
    'bars:[448,512,["navicon"],"f0c9","M5 5z"]};d("fas",p);' + "var unused=1;" * 2000  # the rest of the bundle
)


def site(tmp_path: Path, pages: dict[str, str]) -> Path:
    (tmp_path / ICON_SCRIPT).parent.mkdir(parents=True)
    (tmp_path / ICON_SCRIPT).write_text(BUNDLE)
    (tmp_path / ICON_SCRIPT.with_name("fontawesome.js.map")).write_text("{}")
    for name, body in pages.items():
        (tmp_path / name).write_text(f"<html><body>{body}</body></html>")
    return tmp_path


def test_solid_pack_only() -> None:
    icons = solid_icons(BUNDLE, {"sun", "magnifying-glass", "github"})
    assert icons == {"sun": [512, 512, "M3 3z"], "magnifying-glass": [512, 512, "M4 4z"]}


def test_script_keeps_only_the_icons_used(tmp_path: Path) -> None:
    root = site(tmp_path, {"a.html": '<i class="fa-solid fa-sun fa-lg" data-mode="light"></i>',
                           "b.html": '<button><i class="fas fa-bars"></i></button>'})  # fmt: skip
    assert icons_used(root) == {"sun", "bars"}
    before, after, missing = lighter_icon_script(root)
    text = (root / ICON_SCRIPT).read_text()
    assert missing == [] and after < before and "___FONT_AWESOME___" not in text
    assert '"sun":[512,512,"M3 3z"]' in text and "M4 4z" not in text and "magnifying" not in text
    assert not (root / ICON_SCRIPT.with_name("fontawesome.js.map")).exists()
    assert lighter_icon_script(root) == (after, after, [])  # a second pass leaves it alone


def test_script_kept_whole_when_an_icon_is_missing(tmp_path: Path) -> None:
    root = site(tmp_path, {"a.html": '<i class="fa-solid fa-sun"></i><i class="fa-brands fa-github"></i>'})
    before, after, missing = lighter_icon_script(root)
    assert missing == ["other:github"] and before == after
    assert (root / ICON_SCRIPT).read_text() == BUNDLE
