"""The training corpus of the mini model family, built offline from the probing datasets' own text sources.

Three domains in stated proportions of characters (:class:`CorpusSpec`): English prose (Bible, Shakespeare, two
dictionaries, Python documentation, fortunes, man pages, Debian documentation), eight other natural languages
(German, French, Spanish, Italian, Portuguese, Dutch, Polish, Swedish: translated Debian documentation and man
pages) and thirteen code languages (the code sources of the code-language family). The text comes from
:func:`sparse_probing.datasets.sources.iter_units`, the extraction the probing datasets use; nothing is
re-extracted here.

**No training on probing text.** Every built probing dataset (all families, both size variants, every split:
``data/datasets/*.jsonl.gz``) is indexed by word shingles (:class:`ExclusionIndex`). A passage of a source that
matches any dataset document is removed before sampling (``exclusion="passage"``, the default):

* in the parallel (translated) collections (Debian handbook, Debian reference, man pages) the whole paragraph is
  dropped, and with it the paragraphs at the same relative place of the same page in every other language, so
  translations of probing text are excluded too (:func:`parallel_neighbours`);
* elsewhere the matched lines (or sentences, inside a long line) are cut out and the document is split there.

The stricter ``exclusion="group"`` also drops every unit whose *group* (a whole handbook page, Bible book, play,
dictionary letter pair, source file) appears in a dataset. With the built datasets that keeps almost nothing of
several sources (Shakespeare 0 %, the handbook 1 %, Python code 0 %, Italian/Portuguese/Dutch/Swedish under 10 %);
the manifest records what it would keep, per source, so the choice can be checked.

A held-out split (whole groups, drawn from every source of a domain; a held-out page of a translated collection is
left out of training in every language) measures per-domain loss. The corpus is one gzip JSON-lines file, written
deterministically, plus ``MANIFEST.json`` (spec, sources with their pinned packages and licences, exclusion
statistics, the dataset files excluded against, per-source and per-domain sizes).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import math
import random
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from sparse_probing.datasets.base import ProbingDataset, data_dir
from sparse_probing.datasets.code_sources import CODE_LANGUAGES
from sparse_probing.datasets.natural_language import sources_for
from sparse_probing.datasets.sources import TextUnit, get_package, get_source, iter_units
from sparse_probing.paths import file_sha256

__all__ = [
    "DOMAINS",
    "CorpusDocument",
    "CorpusSpec",
    "ExclusionIndex",
    "build_corpus",
    "corpus_dir",
    "read_corpus",
    "water_fill",
]

Domain = Literal["english", "languages", "code"]
DOMAINS: tuple[Domain, ...] = ("english", "languages", "code")

ENGLISH_SOURCES = (
    "bible-kjv",
    "shakespeare",
    "gcide",
    "wordnet-glosses",
    "python-docs",
    "fortunes",
    "manpages-en",
    "handbook-en",
    "debian-reference-en",
)
"""English prose sources (the lexicon-like ``wordnet-lemmas`` and ``wordnet-people`` are left out)."""
OTHER_LANGUAGES = ("de", "fr", "es", "it", "pt", "nl", "pl", "sv")
PARALLEL_COLLECTIONS = ("handbook", "manpages", "debian-reference")
"""Sources named ``<collection>-<lang>`` hold translations of the same pages (unit ids ``<page>#<paragraph>``)."""

CORPUS_FILE = "corpus.jsonl.gz"
MANIFEST_FILE = "MANIFEST.json"


def corpus_dir(root: str | Path | None = None) -> Path:
    """Where the corpus lives: ``data/corpus`` unless ``root`` is given."""
    return Path(root) if root is not None else data_dir() / "corpus"


# ---------------------------------------------------------------------------------------------------- spec
@dataclass(frozen=True)
class CorpusSpec:
    """What goes into the training corpus. Every field changes the content (and so the corpus digest)."""

    version: str = "2"
    """Bump when the builder changes its output for the same spec."""
    total_chars: int = 32_000_000
    """Characters of training text over all domains (about 9-10M tokens with the 8k tokenizer)."""
    proportions: tuple[tuple[str, float], ...] = (("english", 0.5), ("languages", 0.2), ("code", 0.3))
    """Share of :attr:`total_chars` per domain."""
    english_sources: tuple[str, ...] = ENGLISH_SOURCES
    languages: tuple[str, ...] = OTHER_LANGUAGES
    """Non-English natural languages; their sources are those of the natural-language family."""
    code_languages: tuple[str, ...] = CODE_LANGUAGES
    heldout_chars: int = 120_000
    """Held-out characters per domain (whole groups, spread over the domain's sources)."""
    max_doc_chars: int = 8_000
    """Longer documents are split at blank lines, line ends or sentence ends."""
    min_doc_chars: int = 200
    """Shorter pieces (e.g. left over after cutting out probing text) are dropped."""
    exclusion: Literal["passage", "group"] = "passage"
    """``passage``: remove text that matches a probing document (and its translations); ``group``: additionally
    drop every unit whose group appears in a probing dataset."""
    shingle_words: int = 10
    """Length of the word shingles that match probing text."""
    min_match_words: int = 4
    """Probing documents shorter than this (after dropping their possibly cut first and last word) are ignored."""
    parallel_reach: tuple[tuple[str, int, float], ...] = (
        ("handbook", 0, 0.0),
        ("debian-reference", 0, 0.0),
        ("manpages", 1, 0.05),
    )
    """Per parallel collection: paragraphs ``(window, slack)`` either side of the aligned position that are dropped
    in the other languages, ``window + slack * paragraphs of the page``. The handbook and the Debian reference have
    the same paragraphs, in the same order, in every language (checked: identical counts on every page). Man-page
    translations (manpages-l10n) agree with each other on 95 % of paragraphs to within 2 % of the page; the
    English pages come from other upstream versions and drift more."""
    seed: int = 0

    def __post_init__(self) -> None:
        names = [d for d, _ in self.proportions]
        if sorted(names) != sorted(DOMAINS) or abs(sum(p for _, p in self.proportions) - 1) > 1e-9:
            raise ValueError(f"proportions must give a share to each of {DOMAINS} and sum to 1: {self.proportions}")
        if self.exclusion not in ("passage", "group"):
            raise ValueError(f"exclusion must be 'passage' or 'group', got {self.exclusion!r}")

    @property
    def domain_chars(self) -> dict[str, int]:
        """Target training characters per domain."""
        return {d: round(self.total_chars * p) for d, p in self.proportions}

    @property
    def source_table(self) -> dict[str, tuple[Domain, str]]:
        """Every source read: name -> (domain, language label: ``en``, ``de``, ..., or the code language)."""
        table: dict[str, tuple[Domain, str]] = {s: ("english", "en") for s in self.english_sources}
        for lang in self.languages:
            table.update({s: ("languages", lang) for s in sources_for(lang)})
        table.update({f"code-{lang}": ("code", lang) for lang in self.code_languages})
        return table

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class CorpusDocument:
    """One training or held-out document."""

    doc_id: str
    """``<source>/<first unit id>`` plus ``~k`` for the k-th piece of a split unit."""
    source: str
    domain: Domain
    lang: str
    """``en``, a language code, or the code language (``python``, ...)."""
    group: str
    """The group of the source units it was made of."""
    split: Literal["train", "heldout"]
    text: str

    def to_json(self) -> dict[str, str]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------------- exclusion
_WORD = re.compile(r"\S+")


class ExclusionIndex:
    """Word shingles of a set of texts: finds where any of them occurs inside another text.

    A text is split at whitespace; its first and last word are dropped (a document cut out of a longer text may
    start or end inside a word). Texts with at least ``n`` remaining words contribute every run of ``n``
    consecutive words; shorter ones (at least ``min_words``) contribute their whole word sequence. Matching
    ignores differences in whitespace (line breaks, indentation). Items may be ``(text, group)`` pairs: then
    :meth:`matches` also tells whether a match comes from a text of a given group.
    """

    def __init__(self, texts: Iterable[str | tuple[str, str]], n: int = 10, min_words: int = 4) -> None:
        if n < 2 or min_words < 1:
            raise ValueError("need n >= 2 and min_words >= 1")
        self.n = n
        self.shingles: set[int] = set()
        self.grouped: set[int] = set()
        self.short: dict[int, set[tuple[tuple[int, ...], int]]] = defaultdict(set)
        self.n_texts = 0
        for item in texts:
            text, group = (item, None) if isinstance(item, str) else item
            gh = hash(group)
            h = [hash(w) for w in text.split()[1:-1]]
            if len(h) >= n:
                for i in range(len(h) - n + 1):
                    sh = hash(tuple(h[i : i + n]))
                    self.shingles.add(sh)
                    self.grouped.add(hash((gh, sh)))
            elif len(h) >= min_words:
                self.short[h[0]].add((tuple(h), gh))
            else:
                continue
            self.n_texts += 1

    def matches(self, text: str, group: str | None = None) -> tuple[list[tuple[int, int]], bool]:
        """Character ranges ``[start, end)`` of ``text`` covered by the index (merged, sorted), and whether any
        of the matches comes from an indexed text of group ``group``."""
        spans = [(m.start(), m.end()) for m in _WORD.finditer(text)]
        h = [hash(text[s:e]) for s, e in spans]
        n, gh, same = self.n, hash(group), False
        hit = bytearray(len(h))
        for i in range(len(h) - n + 1):
            sh = hash(tuple(h[i : i + n]))
            if sh in self.shingles:
                hit[i : i + n] = b"\x01" * n
                same = same or hash((gh, sh)) in self.grouped
        if self.short:
            for i, first in enumerate(h):
                for seq, g in self.short.get(first, ()):
                    k = len(seq)
                    if tuple(h[i : i + k]) == seq:
                        hit[i : i + k] = b"\x01" * k
                        same = same or g == gh
        ranges: list[tuple[int, int]] = []
        i = 0
        while i < len(hit):
            if hit[i]:
                j = i
                while j + 1 < len(hit) and hit[j + 1]:
                    j += 1
                ranges.append((spans[i][0], spans[j][1]))
                i = j + 1
            else:
                i += 1
        return ranges, same


_SENTENCE_BREAK = re.compile(r"(?<=[.!?;:])\s+")


def _expand(text: str, start: int, end: int, long_line: int = 400) -> tuple[int, int]:
    """Grow ``[start, end)`` to whole lines, or to whole sentences inside a line longer than ``long_line``."""
    ls = text.rfind("\n", 0, start) + 1
    le = text.find("\n", end)
    le = len(text) if le < 0 else le
    if le - ls <= long_line:
        return ls, le
    breaks = [m.end() for m in _SENTENCE_BREAK.finditer(text, ls, le)]
    s = max((b for b in breaks if b <= start), default=ls)
    e = min((b for b in breaks if b >= end), default=le)
    return s, e


def cut_out(text: str, ranges: Sequence[tuple[int, int]]) -> list[str]:
    """The pieces of ``text`` left when the ranges, grown to whole lines (or sentences), are removed."""
    if not ranges:
        return [text]
    grown = sorted(_expand(text, s, e) for s, e in ranges)
    pieces, pos = [], 0
    for s, e in grown:
        if s > pos:
            pieces.append(text[pos:s])
        pos = max(pos, e)
    pieces.append(text[pos:])
    return [p.strip("\n") for p in pieces if p.strip()]


def _collection(source: str) -> str | None:
    for c in PARALLEL_COLLECTIONS:
        if source.startswith(c + "-"):
            return c
    return None


def _paragraph_index(unit: TextUnit, rank: int) -> int:
    """The paragraph number of a parallel-collection unit (``<page>#<i>``); its rank in the page otherwise."""
    tail = unit.unit_id.rsplit("#", 1)[-1]
    return int(tail) if tail.isdigit() else rank


def parallel_neighbours(
    units_by_source: Mapping[str, Sequence[TextUnit]],
    hits: set[tuple[str, int]],
    reach: Mapping[str, tuple[int, float]],
) -> set[tuple[str, int]]:
    """Units ``(source, position in the source)`` of parallel collections to drop: each hit and its translations.

    Translations share the group (the page) and, mostly, the paragraph numbering. A hit at paragraph ``i`` of a
    page with ``n_a`` paragraphs excludes, in every language of the collection, the paragraphs ``j`` of the same
    page (``n_b`` paragraphs) with ``|j - i * n_b / n_a| <= window + slack * n_b``, where ``reach[collection]``
    is ``(window, slack)``.
    """
    pages: dict[tuple[str, str], dict[str, list[tuple[int, int]]]] = defaultdict(lambda: defaultdict(list))
    for source, units in units_by_source.items():
        coll = _collection(source)
        if coll is None:
            continue
        ranks: dict[str, int] = defaultdict(int)
        for pos, u in enumerate(units):
            pages[coll, u.group][source].append((_paragraph_index(u, ranks[u.group]), pos))
            ranks[u.group] += 1
    size = {
        (key, src): max(i for i, _ in paras) + 1 for key, per_src in pages.items() for src, paras in per_src.items()
    }
    index_of = {
        (src, pos): (key, i) for key, per_src in pages.items() for src, paras in per_src.items() for i, pos in paras
    }
    drop: set[tuple[str, int]] = set()
    for src, pos in hits:
        if (src, pos) not in index_of:
            continue
        key, i = index_of[src, pos]
        n_a = size[key, src]
        for other, paras in pages[key].items():
            n_b = size[key, other]
            window, slack = reach.get(key[0], (0, 0.0))
            centre, width = i * n_b / n_a, window + slack * n_b
            drop.update((other, p) for j, p in paras if abs(j - centre) <= width)
        drop.add((src, pos))
    return drop


def match_units(units: Sequence[TextUnit], index: ExclusionIndex) -> tuple[dict[int, list[tuple[int, int]]], set[int]]:
    """Where probing text occurs in ``units``: character ranges by unit position, and the positions of units
    matched by a probing document of their own group (a translation of such a unit is probing text too; a
    boilerplate paragraph found on another page is not).

    Consecutive units of one group are matched as one text (joined by blank lines, as probing documents join
    them), so a passage that spans a unit boundary is found in both units.
    """
    ranges_by_pos: dict[int, list[tuple[int, int]]] = defaultdict(list)
    same_group: set[int] = set()
    start = 0
    while start < len(units):
        end = start
        while end + 1 < len(units) and units[end + 1].group == units[start].group:
            end += 1
        for k in range(start, end + 1):
            # match unit by unit, then across each boundary (the end of one unit + the start of the next)
            ranges, same = index.matches(units[k].text, units[k].group)
            if ranges:
                ranges_by_pos[k] += ranges
                if same:
                    same_group.add(k)
            if k < end:
                _match_boundary(units, k, index, ranges_by_pos, same_group)
        start = end + 1
    return {k: sorted(set(v)) for k, v in ranges_by_pos.items()}, same_group


def _match_boundary(
    units: Sequence[TextUnit],
    k: int,
    index: ExclusionIndex,
    ranges_by_pos: dict[int, list[tuple[int, int]]],
    same_group: set[int],
) -> None:
    """Match the last and first ``n`` words of units ``k`` and ``k + 1`` joined, for passages across the boundary."""
    a, b = units[k].text, units[k + 1].text
    words_a = [m.start() for m in _WORD.finditer(a)]
    words_b = [m.end() for m in _WORD.finditer(b)]
    if not words_a or not words_b:
        return
    cut_a = words_a[max(0, len(words_a) - index.n)]
    cut_b = words_b[min(len(words_b), index.n) - 1]
    tail, head = a[cut_a:], b[:cut_b]
    text = tail + "\n\n" + head
    ranges, same = index.matches(text, units[k].group)
    for s, e in ranges:
        if s < len(tail):
            ranges_by_pos[k].append((cut_a + s, cut_a + min(e, len(tail))))
            if same:
                same_group.add(k)
        if e > len(tail) + 2:
            ranges_by_pos[k + 1].append((max(0, s - len(tail) - 2), e - len(tail) - 2))
            if same:
                same_group.add(k + 1)


def probing_documents(datasets_root: str | Path | None = None) -> tuple[list[ProbingDataset], dict[str, str]]:
    """Every built probing dataset file, and its content digest by file name."""
    root = Path(datasets_root) if datasets_root is not None else data_dir() / "datasets"
    files = sorted(root.glob("*.jsonl.gz"))
    datasets = [ProbingDataset.load(p) for p in files]
    return datasets, {p.name: ds.sha256 for p, ds in zip(files, datasets, strict=True)}


# ---------------------------------------------------------------------------------------------------- documents
def split_text(text: str, max_chars: int) -> list[str]:
    """Split ``text`` into pieces of at most ``max_chars``: at blank lines, else line ends, sentences or spaces."""
    if len(text) <= max_chars:
        return [text]
    for sep in ("\n\n", "\n"):
        parts = text.split(sep)
        if all(len(p) <= max_chars for p in parts):
            return _pack(parts, sep, max_chars)
    out: list[str] = []
    for part in text.split("\n"):
        if len(part) <= max_chars:
            out.append(part)
            continue
        sentences = _SENTENCE_BREAK.split(part)
        for s in sentences:
            while len(s) > max_chars:
                cut = s.rfind(" ", 0, max_chars)
                cut = cut if cut > 0 else max_chars
                out.append(s[:cut])
                s = s[cut:].lstrip()
            out.append(s)
    return _pack(out, "\n", max_chars)


def _pack(parts: list[str], sep: str, max_chars: int) -> list[str]:
    out: list[str] = []
    cur: list[str] = []
    size = 0
    for p in parts:
        extra = len(p) + (len(sep) if cur else 0)
        if cur and size + extra > max_chars:
            out.append(sep.join(cur))
            cur, size = [], 0
            extra = len(p)
        cur.append(p)
        size += extra
    if cur:
        out.append(sep.join(cur))
    return [o for o in out if o.strip()]


@dataclass
class _Draft:
    source: str
    group: str
    first_id: str
    texts: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(len(t) for t in self.texts) + 2 * max(0, len(self.texts) - 1)


def make_documents(
    units: Iterable[TextUnit],
    keep: Callable[[int, TextUnit], list[str] | None],
    max_chars: int,
    min_chars: int,
) -> Iterator[tuple[str, str, str]]:
    """Join consecutive surviving units of one group into documents: yields ``(doc_id, group, text)``.

    ``keep(position, unit)`` returns ``None`` for an untouched unit, else the pieces of its text that survive
    exclusion (``[]`` when dropped). A dropped or cut unit ends the current document; each piece of a cut unit is
    a document of its own. Documents are joined with blank lines, split to at most ``max_chars`` and kept if at least
    ``min_chars`` long.
    """
    seen: dict[str, int] = defaultdict(int)

    def emit(d: _Draft) -> Iterator[tuple[str, str, str]]:
        text = "\n\n".join(d.texts)
        for piece in split_text(text, max_chars):
            if len(piece) >= min_chars:
                base = f"{d.source}/{d.first_id}"
                k = seen[base]
                seen[base] += 1
                yield (f"{base}~{k}" if k else base), d.group, piece

    cur: _Draft | None = None
    for pos, u in enumerate(units):
        pieces = keep(pos, u)
        intact = pieces is None
        if cur is not None and (not intact or cur.group != u.group or cur.size + len(u.text) + 2 > max_chars):
            yield from emit(cur)
            cur = None
        if intact:
            if cur is None:
                cur = _Draft(u.source, u.group, u.unit_id)
            cur.texts.append(u.text)
        else:
            for piece in pieces or ():
                yield from emit(_Draft(u.source, u.group, u.unit_id, [piece]))
    if cur is not None:
        yield from emit(cur)


# ---------------------------------------------------------------------------------------------------- sampling
def water_fill(available: Mapping[str, int], target: int) -> dict[str, int]:
    """Split ``target`` into equal shares, each capped at what is available; the rest goes to the larger ones."""
    quota = {k: 0 for k in available}
    open_keys = sorted((k for k in available if available[k] > 0), key=lambda k: available[k])
    left = target
    while open_keys and left > 0:
        share = left / len(open_keys)
        k = open_keys[0]
        if available[k] <= share:
            quota[k] = available[k]
            left -= available[k]
            open_keys.pop(0)
        else:
            for k in open_keys:
                quota[k] = min(available[k], math.ceil(share))
            left = 0
    return quota


def _take(docs: Sequence[tuple[str, str, str]], quota: int) -> list[tuple[str, str, str]]:
    out, size = [], 0
    for d in docs:
        if size >= quota:
            break
        out.append(d)
        size += len(d[2])
    return out


def _shuffled(items: Iterable[Any], seed: str) -> list[Any]:
    out = list(items)
    random.Random(seed).shuffle(out)
    return out


# ---------------------------------------------------------------------------------------------------- build
def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def build_corpus(
    spec: CorpusSpec | None = None,
    out_dir: str | Path | None = None,
    *,
    datasets_root: str | Path | None = None,
    units: Callable[[str], Sequence[TextUnit]] | None = None,
) -> Path:
    """Build the corpus file and its manifest; returns the corpus file's path.

    ``units(source)`` returns a source's text units (default: :func:`iter_units`, which fetches the pinned
    packages into ``data/raw``); tests pass small in-memory sources.
    """
    spec = spec or CorpusSpec()
    out = corpus_dir(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    read = units or (lambda name: list(iter_units(name)))
    t0 = time.perf_counter()

    datasets, dataset_digests = probing_documents(datasets_root)
    dataset_texts = [(d.text, d.group) for ds in datasets for d in ds.documents]
    dataset_groups = {d.group for ds in datasets for d in ds.documents}
    index = ExclusionIndex(dataset_texts, spec.shingle_words, spec.min_match_words)
    _log(
        f"exclusion index: {len(dataset_texts)} probing documents from {len(datasets)} files, "
        f"{len(index.shingles)} shingles"
    )

    table = spec.source_table
    all_units: dict[str, list[TextUnit]] = {}
    for name in table:
        all_units[name] = list(read(name))
        _log(f"  source {name}: {len(all_units[name])} units")

    # 1. passages that match probing text
    matched: dict[tuple[str, int], list[tuple[int, int]]] = {}
    parallel_hits: set[tuple[str, int]] = set()
    for name, units_ in all_units.items():
        ranges, same = match_units(units_, index)
        matched.update(((name, pos), r) for pos, r in ranges.items())
        if _collection(name) is not None:
            parallel_hits.update((name, pos) for pos in same)
    parallel_drop = parallel_neighbours(all_units, parallel_hits, {c: (w, f) for c, w, f in spec.parallel_reach})
    _log(
        f"matched {len(matched)} units; {len(parallel_drop)} parallel paragraphs dropped "
        f"({time.perf_counter() - t0:.0f} s)"
    )

    # 2. documents per source, after exclusion
    stats: dict[str, dict[str, Any]] = {}
    pools: dict[str, list[tuple[str, str, str]]] = {}
    for name, units_ in all_units.items():
        excluded_chars = 0

        def keep(pos: int, u: TextUnit, name: str = name) -> list[str] | None:
            nonlocal excluded_chars
            if (name, pos) in parallel_drop or (spec.exclusion == "group" and u.group in dataset_groups):
                excluded_chars += len(u.text)
                return []
            ranges = matched.get((name, pos))
            if not ranges:
                return None
            pieces = cut_out(u.text, ranges)
            excluded_chars += len(u.text) - sum(len(p) for p in pieces)
            return pieces

        pools[name] = list(make_documents(units_, keep, spec.max_doc_chars, spec.min_doc_chars))
        extracted = sum(len(u.text) for u in units_)
        stats[name] = {
            "domain": table[name][0],
            "lang": table[name][1],
            "units": len(units_),
            "chars_extracted": extracted,
            "chars_excluded": excluded_chars,
            "units_matched": sum(1 for pos in range(len(units_)) if (name, pos) in matched),
            "chars_available": sum(len(t) for _, _, t in pools[name]),
            "group_policy_would_keep": round(
                sum(len(u.text) for u in units_ if u.group not in dataset_groups) / max(1, extracted), 4
            ),
        }

    # 3. held-out groups per domain (a held-out page is left out of training in every language), then training
    #    quotas (water-filling) per domain
    chosen: list[CorpusDocument] = []
    held_groups: dict[str, set[str]] = {}
    by_lang: dict[str, dict[str, list[str]]] = {}
    for domain in DOMAINS:
        names = [n for n in table if table[n][0] == domain]
        by_lang[domain] = defaultdict(list)
        for n in names:
            if pools[n]:
                by_lang[domain][table[n][1]].append(n)
        held_quota: dict[str, int] = {}
        per_lang = spec.heldout_chars // max(1, len(by_lang[domain]))
        for srcs in by_lang[domain].values():
            held_quota.update({s: per_lang // len(srcs) for s in srcs})
        for n in names:
            # the same pseudo-random page order in every language of a collection: held-out pages coincide
            order = f"{spec.seed}/heldout/{_collection(n) or n}/"
            groups = sorted(
                {g for _, g, _ in pools[n]}, key=lambda g, o=order: hashlib.sha256((o + g).encode()).digest()
            )
            sizes: dict[str, int] = defaultdict(int)
            for _, g, t in pools[n]:
                sizes[g] += len(t)
            held_groups[n], size = set(), 0
            for g in groups:
                if size >= held_quota.get(n, 0):
                    break
                held_groups[n].add(g)
                size += sizes[g]
            held = _take([d for d in pools[n] if d[1] in held_groups[n]], held_quota.get(n, 0))
            chosen += [CorpusDocument(i, n, domain, table[n][1], g, "heldout", t) for i, g, t in held]
            stats[n]["heldout_chars"] = sum(len(t) for _, _, t in held)
            stats[n]["heldout_docs"] = len(held)
    held_pages = {(_collection(n), g) for n, gs in held_groups.items() if _collection(n) for g in gs}
    for domain in DOMAINS:
        names = [n for n in table if table[n][0] == domain]
        train_pool = {
            n: _shuffled(
                [d for d in pools[n] if d[1] not in held_groups[n] and (_collection(n), d[1]) not in held_pages],
                f"{spec.seed}/train/{n}",
            )
            for n in names
        }
        avail = {n: sum(len(t) for _, _, t in train_pool[n]) for n in names}
        lang_avail = {lang: sum(avail[s] for s in srcs) for lang, srcs in by_lang[domain].items()}
        quota: dict[str, int] = {}
        for lang, q in water_fill(lang_avail, spec.domain_chars[domain]).items():
            quota.update(water_fill({s: avail[s] for s in by_lang[domain][lang]}, q))
        for n in names:
            taken = _take(train_pool[n], quota.get(n, 0))
            chosen += [CorpusDocument(i, n, domain, table[n][1], g, "train", t) for i, g, t in taken]
            stats[n]["train_chars"] = sum(len(t) for _, _, t in taken)
            stats[n]["train_docs"] = len(taken)

    path = out / CORPUS_FILE
    write_corpus(chosen, path)
    manifest = _manifest(spec, path, chosen, stats, dataset_digests, index)
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    _log(
        f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {len(chosen)} documents, {time.perf_counter() - t0:.0f} s)"
    )
    return path


def write_corpus(docs: Sequence[CorpusDocument], path: Path) -> None:
    """Gzip JSON lines, deterministic (sorted keys, gzip mtime 0), written to a temporary file and renamed."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=9) as gz:
        for d in docs:
            gz.write((json.dumps(d.to_json(), sort_keys=True, ensure_ascii=False) + "\n").encode())
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)


def read_corpus(path: str | Path | None = None, split: str | None = None) -> list[CorpusDocument]:
    """Documents of the corpus file (default ``data/corpus/corpus.jsonl.gz``), optionally of one split only."""
    p = Path(path) if path is not None else corpus_dir() / CORPUS_FILE
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist: build it with `python -m sparse_probing.training corpus`")
    with gzip.open(p, "rt", encoding="utf-8") as fh:
        docs = [CorpusDocument(**json.loads(line)) for line in fh]
    return [d for d in docs if split is None or d.split == split]


def _manifest(
    spec: CorpusSpec,
    path: Path,
    docs: Sequence[CorpusDocument],
    stats: dict[str, dict[str, Any]],
    dataset_digests: dict[str, str],
    index: ExclusionIndex,
) -> dict[str, Any]:
    domains: dict[str, dict[str, Any]] = {}
    train_total = sum(len(d.text) for d in docs if d.split == "train")
    for domain in DOMAINS:
        train = sum(len(d.text) for d in docs if d.domain == domain and d.split == "train")
        domains[domain] = {
            "target_chars": spec.domain_chars[domain],
            "train_chars": train,
            "train_share": round(train / max(1, train_total), 4),
            "heldout_chars": sum(len(d.text) for d in docs if d.domain == domain and d.split == "heldout"),
            "languages": sorted({d.lang for d in docs if d.domain == domain}),
        }
    sources = {}
    for name, st in stats.items():
        src = get_source(name)
        sources[name] = {
            **st,
            "packages": [
                {
                    "name": p,
                    "version": get_package(p).version,
                    "registry": get_package(p).registry,
                    "license": get_package(p).license,
                }
                for p in src.packages
            ],
        }
    return {
        "about": "Training corpus of the mini model family; written by `python -m sparse_probing.training corpus`",
        "spec": asdict(spec),
        "spec_digest": spec.digest,
        "file": {
            "name": path.name,
            "bytes": path.stat().st_size,
            "sha256": file_sha256(path),
            "documents": len(docs),
            "train_documents": sum(d.split == "train" for d in docs),
            "heldout_documents": sum(d.split == "heldout" for d in docs),
        },
        "exclusion": {
            "policy": spec.exclusion,
            "probing_documents_indexed": index.n_texts,
            "shingles": len(index.shingles),
            "dataset_files": dict(sorted(dataset_digests.items())),
        },
        "domains": domains,
        "sources": dict(sorted(sources.items())),
    }


def read_manifest(root: str | Path | None = None) -> dict[str, Any]:
    path = corpus_dir(root) / MANIFEST_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist: build the corpus with `python -m sparse_probing.training corpus`"
        )
    return json.loads(path.read_text())


def leaked_documents(
    corpus_path: str | Path | None = None,
    datasets_root: str | Path | None = None,
    spec: CorpusSpec | None = None,
    files: Iterable[str] | None = None,
) -> list[str]:
    """Ids of training documents that contain text of a currently built probing dataset (empty: no leak).

    ``files`` limits the check to these dataset file names (e.g. those the corpus manifest records as excluded).
    """
    spec = spec or CorpusSpec()
    datasets, digests = probing_documents(datasets_root)
    if files is not None:
        wanted = set(files)
        missing = sorted(wanted - set(digests))
        if missing:
            raise FileNotFoundError(f"no built dataset files {missing} under the datasets directory; run `make data`")
        datasets = [ds for ds, name in zip(datasets, digests, strict=True) if name in wanted]
    index = ExclusionIndex((d.text for ds in datasets for d in ds.documents), spec.shingle_words, spec.min_match_words)
    return [d.doc_id for d in read_corpus(corpus_path, split="train") if index.matches(d.text)[0]]
