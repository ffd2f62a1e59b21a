"""Source-code text sources: one :class:`~sparse_probing.datasets.sources.TextUnit` per source file.

Files come from Debian packages that ship source code (the Python standard library, the glibc source tarball, the
libstdc++ headers, the Go and Rust standard libraries, the OpenJDK class library sources, lodash, the Ruby and Perl
standard libraries, getID3, bash-completion, LaTeX's base packages, the Python documentation's HTML). Each
source reads a deterministic sample of at most ``max_files`` files (sorted paths, shuffled with the source name as
seed), so reading is bounded and reproducible. Licence headers are removed from every file, and Perl's POD
documentation too (it is English prose, not Perl): a chunk's label must come from the code, not from a banner.
"""

from __future__ import annotations

import re
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .sources import Source, SourceError, TextUnit, _require, register

MAX_FILE_BYTES = 200_000
"""Larger files are skipped (generated tables, vendored blobs)."""

_LICENSE = re.compile(
    r"copyright|licen[cs]e|warrant|permission is hereby|general public|spdx-|all rights reserved|redistribut"
    r"|liable|merchantability|fitness for a particular purpose|in no event|damages",
    re.IGNORECASE,
)
_LICENSE_FILE = re.compile(r"licen[cs]e|copying|copyright|lppl", re.IGNORECASE)
"""Files that are licence texts themselves are never used."""
_COMMENT_START = ("#", "//", "/*", "*", "%", ";", "--", "<!--", "-->", "'''", '"""', "dnl", "@c", "=begin", "=end")


def _is_comment_block(lines: list[str]) -> bool:
    body = [ln.strip() for ln in lines if ln.strip()]
    if not body:
        return False
    return sum(ln.startswith(_COMMENT_START) for ln in body) >= 0.8 * len(body)


def _is_license_block(block: str) -> bool:
    """A comment block that mentions a licence, or any block (e.g. inside a docstring) with two licence terms."""
    hits = {m.group(0).lower() for m in _LICENSE.finditer(block)}
    return bool(hits) and (_is_comment_block(block.splitlines()) or len(hits) >= 2)


def strip_license_blocks(text: str) -> str:
    """Remove blank-line separated blocks that are licence text (see :func:`_is_license_block`); tidy whitespace.

    Also drops a leading docstring or block comment (``/* ... */``, ``\"\"\" ... \"\"\"``) that names a licence,
    normalizes line ends, strips trailing spaces and collapses runs of blank lines to one.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # multi-line /* ... */ comments that mention a licence
    text = re.sub(r"/\*.*?\*/", lambda m: "" if _LICENSE.search(m.group(0)) else m.group(0), text, flags=re.DOTALL)
    blocks = re.split(r"\n[ \t]*\n", text)
    kept = [b for b in blocks if not _is_license_block(b)]
    lines = [ln.rstrip() for ln in "\n\n".join(kept).split("\n")]
    out: list[str] = []
    for ln in lines:
        if not ln and (not out or not out[-1]):
            continue
        out.append(ln)
    return "\n".join(out).strip("\n")


_POD = re.compile(r"^=(?:pod|head\d|over|item|back|begin|end|for|encoding)\b.*?(?:^=cut\b.*?$|\Z)", re.M | re.S)


def strip_pod(text: str) -> str:
    """Remove Perl POD documentation (``=head1 ... =cut``) and anything after ``__END__``."""
    text = re.split(r"^__END__\s*$", text, maxsplit=1, flags=re.M)[0]
    return _POD.sub("", text)


def _minified(text: str) -> bool:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return not lines or sum(len(ln) for ln in lines) / len(lines) > 160


@dataclass(frozen=True)
class CodeLayout:
    """Where a package keeps one language's files."""

    lang: str
    """Language label (``python``, ``c``, ...)."""
    package: str
    base: str
    """Directory inside the unpacked package (or the archive file for ``archive`` layouts)."""
    pattern: re.Pattern[str]
    """Matches the path relative to ``base`` (or the archive member name) of a file to use."""
    archive: str | None = None
    """``tar`` or ``zip`` when ``base`` is an archive file inside the package."""
    exclude: re.Pattern[str] | None = None
    clean: Callable[[str], str] = strip_license_blocks


def _files(root: Path, layout: CodeLayout) -> list[tuple[str, bytes | Path]]:
    base = _require(root / layout.base, layout.package, layout.base)
    out: list[tuple[str, bytes | Path]] = []

    def ok(rel: str) -> bool:
        if _LICENSE_FILE.search(rel.rsplit("/", 1)[-1]):
            return False
        return bool(layout.pattern.search(rel)) and not (layout.exclude and layout.exclude.search(rel))

    if layout.archive == "tar":
        try:
            with tarfile.open(base) as tar:
                for m in tar:
                    if m.isfile() and m.size <= MAX_FILE_BYTES and ok(m.name):
                        fh = tar.extractfile(m)
                        if fh is not None:
                            out.append((m.name, fh.read()))
        except (tarfile.TarError, OSError, EOFError) as err:
            raise SourceError(f"package {layout.package}: cannot read archive {base}: {err}") from err
    elif layout.archive == "zip":
        try:
            with zipfile.ZipFile(base) as zf:
                for info in zf.infolist():
                    if not info.is_dir() and info.file_size <= MAX_FILE_BYTES and ok(info.filename):
                        out.append((info.filename, zf.read(info)))
        except (zipfile.BadZipFile, OSError) as err:
            raise SourceError(f"package {layout.package}: cannot read archive {base}: {err}") from err
    else:
        for path in base.rglob("*"):
            rel = path.relative_to(base).as_posix()
            if path.is_file() and not path.is_symlink() and path.stat().st_size <= MAX_FILE_BYTES and ok(rel):
                out.append((rel, path))
    out.sort(key=lambda x: x[0])
    return out


def extract_code(root: Path, *, name: str, layout: CodeLayout, max_files: int = 400) -> Iterator[TextUnit]:
    """Cleaned source files of one language (a deterministic sample of at most ``max_files``); group = the file."""
    from .family import shuffled

    files = _files(root, layout)
    if not files:
        raise SourceError(
            f"package {layout.package}: no {layout.lang} files matching {layout.pattern.pattern} in {layout.base}"
        )
    n = 0
    for rel, content in shuffled(files, name):
        raw = content if isinstance(content, bytes) else content.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if "\0" in text or _minified(text):
            continue
        text = layout.clean(text)
        if len(text) < 200:
            continue
        yield TextUnit(name, rel, f"code:{layout.lang}:{rel}", text, {"lang": layout.lang, "path": rel})
        n += 1
        if n >= max_files:
            break


def _perl_clean(text: str) -> str:
    return strip_license_blocks(strip_pod(text))


def _sphinx_body(text: str) -> str:
    """The main body of a Sphinx HTML page (head, navigation, sidebar and footer removed)."""
    start = text.find('role="main">')
    if start >= 0:
        text = text[text.rfind("\n", 0, start) + 1 :]
    for marker in ('<div class="sphinxsidebar"', '<div class="related"', '<div class="footer"'):
        end = text.find(marker)
        if end > 0:
            text = text[:end]
    return strip_license_blocks(text)


_TESTS = re.compile(r"(^|/)(tests?|testdata|testsuite)/|(^|/)tst-")

CODE_LAYOUTS: tuple[CodeLayout, ...] = (
    CodeLayout("python", "libpython3.11-stdlib", "usr/lib/python3.11", re.compile(r"\.py$"), exclude=_TESTS),
    CodeLayout(
        "c",
        "glibc-source",
        "usr/src/glibc/glibc-2.36.tar.xz",
        re.compile(r"\.c$"),
        archive="tar",
        exclude=_TESTS,
    ),
    CodeLayout("cpp", "libstdc++-12-dev", "usr/include/c++/12", re.compile(r"(^|/)[a-z_]+(\.h|\.tcc)?$")),
    CodeLayout("go", "golang-1.19-src", "usr/share/go-1.19/src", re.compile(r"\.go$"), exclude=_TESTS),
    CodeLayout("rust", "rust-src", "usr/src/rustc-1.63.0/library", re.compile(r"\.rs$"), exclude=_TESTS),
    CodeLayout(
        "java",
        "openjdk-17-source",
        "usr/lib/jvm/openjdk-17/lib/src.zip",
        re.compile(r"^java\.base/.*\.java$"),
        archive="zip",
    ),
    CodeLayout("javascript", "node-lodash", "usr/share/nodejs/lodash", re.compile(r"^[^/]+\.js$|^fp/[^/]+\.js$")),
    CodeLayout("ruby", "libruby3.1", "usr/lib/ruby/3.1.0", re.compile(r"\.rb$")),
    CodeLayout("perl", "perl-modules-5.36", "usr/share/perl/5.36.0", re.compile(r"\.pm$"), clean=_perl_clean),
    CodeLayout("php", "php-getid3", "usr/share/php/getid3", re.compile(r"\.php$")),
    CodeLayout("shell", "bash-completion", "usr/share/bash-completion", re.compile(r"(^|/)completions/[^/]+$|^bash")),
    CodeLayout("html", "python3.11-doc", "usr/share/doc/python3.11/html", re.compile(r"\.html$"), clean=_sphinx_body),
    CodeLayout("latex", "texlive-latex-base", "usr/share/texlive/texmf-dist/tex", re.compile(r"\.(tex|sty|cls|ltx)$")),
)
"""One layout per code language, in the order of the code-language family's classes."""

CODE_LANGUAGES = tuple(layout.lang for layout in CODE_LAYOUTS)

for _layout in CODE_LAYOUTS:
    register(
        Source(
            f"code-{_layout.lang}",
            (_layout.package,),
            lambda root, *, name, _lay=_layout: extract_code(root, name=name, layout=_lay),
            f"{_layout.lang} source files from {_layout.package} ({_layout.base}), licence headers removed",
            kind="code",
            lang="code",
        )
    )


# ---------------------------------------------------------------------------------------------------- chunking
def code_chunks(text: str, min_chars: int = 300, max_chars: int = 600) -> list[str]:
    """Split a file into consecutive runs of whole lines with ``min_chars <= len <= max_chars``.

    Lines longer than ``max_chars`` end the current chunk and are skipped; a remainder shorter than ``min_chars``
    is dropped. Leading and trailing blank lines of a chunk are removed.
    """
    chunks: list[str] = []
    cur: list[str] = []
    size = 0
    for line in text.split("\n"):
        if len(line) > max_chars:
            cur, size = [], 0
            continue
        if size + len(line) + 1 > max_chars:
            if size >= min_chars:
                chunks.append("\n".join(cur).strip("\n"))
            cur, size = [], 0
        if not cur and not line.strip():
            continue
        cur.append(line)
        size += len(line) + 1
    if size >= min_chars:
        chunks.append("\n".join(cur).strip("\n"))
    return [c for c in chunks if len(c) >= min_chars]


def comment_share(chunk: str) -> float:
    """Fraction of non-blank lines that start like a comment (``#``, ``//``, ``*``, ``%``, ...)."""
    body = [ln.strip() for ln in chunk.splitlines() if ln.strip()]
    return sum(ln.startswith(_COMMENT_START) for ln in body) / max(1, len(body))
