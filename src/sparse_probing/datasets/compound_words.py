"""Compound words: is this word the second half of a frequent two-word compound ("file system", "holy ghost")?

Bigrams are chosen from the English corpus itself: adjacent lowercase word pairs with a high count and a high
pointwise mutual information, whose words also occur often apart (so that hard negatives exist), whose second word
is a WordNet noun and first a noun or adjective, and which spaCy parses as a compound (the first word a ``compound``
or ``amod`` dependent of the second) in most of their occurrences. For each bigram
``a b`` the examples are short windows (up to 16 words before the target word and 4 after) with the label on the
target word: positives are ``b`` right after ``a``; the paper's two kinds of hard negatives are ``b`` without ``a``
before it (label 0) and the word right after ``a`` when it is not ``b`` (label 0). One feature per bigram.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from .base import Document, Feature, ProbingDataset, Span
from .family import Family, UnitsFn, check_variant, interleave, shuffled
from .sources import TextUnit

NAME = "compound_words"
VERSION = "1"
SOURCES = (
    "handbook-en",
    "debian-reference-en",
    "manpages-en",
    "python-docs",
    "fortunes",
    "bible-kjv",
    "shakespeare",
    "gcide",
)
LEXICON = "wordnet-lemmas"
"""WordNet lemmas: the second word of a compound must be a noun, the first a noun or an adjective."""
N_BIGRAMS = 20
PER_KIND = {"smoke": 6, "default": 40}
"""Examples per bigram and kind (positive, second word alone, first word + other word)."""
BEFORE, AFTER = 16, 4
MIN_COUNT, MIN_APART, MIN_PMI = 40, 40, 4.5
STOPWORDS = frozenset(
    """a an the and or but if of to in on at by for with from as is are was were be been being it its this that these
    those there their they them he she his her him we us our you your i me my not no nor so than then too very can
    will would shall should may might must do does did done have has had which who whom whose what when where why
    how all any each every some such only own same other into out up down over under again further once here also
    unto thee thou thy hath shalt ye lord one two three four five six seven eight nine ten first second several many
    much more most less least few see since used use called like new old""".split()
)
_WORD = re.compile(r"[A-Za-z]+")


def sources(variant: str = "default") -> list[str]:
    return [*SOURCES, LEXICON]


def _words(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group(0).lower()) for m in _WORD.finditer(text)]


def _adjacent(text: str, w1: tuple[int, int, str], w2: tuple[int, int, str]) -> bool:
    """Two words separated by exactly one space (no punctuation, no line break)."""
    return text[w1[1] : w2[0]] == " "


@dataclass(frozen=True)
class BigramStats:
    """A candidate compound with its corpus statistics."""

    first: str
    second: str
    count: int
    first_count: int
    second_count: int
    pmi: float

    @property
    def feature(self) -> str:
        return f"{self.first}_{self.second}"


def bigram_statistics(units: Iterable[TextUnit]) -> tuple[Counter[tuple[str, str]], Counter[str], int]:
    """Counts of adjacent lowercase word pairs and of words, and the total number of words."""
    pairs: Counter[tuple[str, str]] = Counter()
    words: Counter[str] = Counter()
    total = 0
    for u in units:
        ws = _words(u.text)
        total += len(ws)
        words.update(w[2] for w in ws)
        pairs.update((a[2], b[2]) for a, b in pairwise(ws) if _adjacent(u.text, a, b))
    return pairs, words, total


def _base_forms(word: str) -> tuple[str, ...]:
    forms = [word]
    if word.endswith("ies"):
        forms.append(word[:-3] + "y")
    if word.endswith("es"):
        forms.append(word[:-2])
    if word.endswith("s"):
        forms.append(word[:-1])
    return tuple(forms)


def select_bigrams(
    pairs: Counter[tuple[str, str]],
    words: Counter[str],
    total: int,
    n: int = N_BIGRAMS,
    nouns: frozenset[str] | None = None,
    adjectives: frozenset[str] = frozenset(),
    accept: Callable[[BigramStats], bool] | None = None,
    min_count: int = MIN_COUNT,
    min_apart: int = MIN_APART,
    min_pmi: float = MIN_PMI,
) -> list[BigramStats]:
    """The ``n`` most frequent pairs (count >= ``min_count``, PMI >= ``min_pmi``) whose words also occur apart at least
    ``min_apart`` times; no word is used twice.

    With ``nouns`` given, the second word (or its singular) must be a noun and the first a noun or an adjective;
    ``accept`` is a further test (the spaCy parse check of :func:`build`).
    """
    cands = []
    for (a, b), c in pairs.items():
        if c < min_count or a in STOPWORDS or b in STOPWORDS or len(a) < 3 or len(b) < 3 or a == b:
            continue
        if nouns is not None:
            if not any(f in nouns for f in _base_forms(b)) or (a not in nouns and a not in adjectives):
                continue
        if words[a] - c < min_apart or words[b] - c < min_apart:
            continue
        pmi = math.log(c * total / (words[a] * words[b]))
        if pmi >= min_pmi:
            cands.append(BigramStats(a, b, c, words[a], words[b], round(pmi, 3)))
    cands.sort(key=lambda s: (-s.count, s.first, s.second))
    chosen: list[BigramStats] = []
    used: set[str] = set()
    for s in cands:
        if s.first in used or s.second in used:
            continue
        if accept is not None and not accept(s):
            continue
        chosen.append(s)
        used.update((s.first, s.second))
        if len(chosen) == n:
            break
    return chosen


def _window(u: TextUnit, ws: Sequence[tuple[int, int, str]], i: int) -> tuple[str, int, int, int]:
    """Text of the window around word ``i`` and the target's character span in it."""
    lo, hi = ws[max(0, i - BEFORE)][0], ws[min(len(ws) - 1, i + AFTER)][1]
    text = u.text[lo:hi]
    return text, ws[i][0] - lo, ws[i][1] - lo, lo


PARSE_SAMPLE, PARSE_MIN_SHARE = 12, 0.6


def _parse_check(
    nlp: Any, corpus: Sequence[TextUnit], pairs: Counter[tuple[str, str]], min_count: int
) -> Callable[[BigramStats], bool]:
    """A test that spaCy parses ``a b`` as a compound in at least PARSE_MIN_SHARE of a sample of occurrences."""
    occurrences: dict[tuple[str, str], list[tuple[TextUnit, int]]] = {}
    wanted = {p for p, c in pairs.items() if c >= min_count}

    def collect() -> None:
        for u in corpus:
            ws = _words(u.text)
            for i in range(1, len(ws)):
                key = (ws[i - 1][2], ws[i][2])
                if key in wanted and _adjacent(u.text, ws[i - 1], ws[i]):
                    occurrences.setdefault(key, []).append((u, i))

    def accept(s: BigramStats) -> bool:
        if not occurrences:
            collect()
        occ = shuffled(occurrences.get((s.first, s.second), []), f"{NAME}/parse/{s.feature}")[:PARSE_SAMPLE]
        good = 0
        windows = [_window(u, _words(u.text), i) for u, i in occ]
        for (_text, start, _end, _lo), doc in zip(windows, nlp.pipe([w[0] for w in windows]), strict=True):
            second = next((t for t in doc if t.idx == start), None)
            if second is None or second.i == 0:
                continue
            first = doc[second.i - 1]
            if second.pos_ in ("NOUN", "PROPN") and first.head.i == second.i and first.dep_ in ("compound", "amod"):
                good += 1
        return bool(occ) and good >= PARSE_MIN_SHARE * len(occ)

    return accept


def build(
    units: UnitsFn,
    variant: str = "default",
    n_bigrams: int = N_BIGRAMS,
    nlp: Any = None,
    min_count: int | None = None,
    min_pmi: float = MIN_PMI,
) -> ProbingDataset:
    """Select bigrams on the whole corpus, then sample windows of each kind per bigram.

    ``nlp`` is the spaCy pipeline for the compound check (loaded when None); ``min_count`` overrides
    :data:`MIN_COUNT` and :data:`MIN_APART`, ``min_pmi`` :data:`MIN_PMI` (tests use tiny corpora).
    """
    k = PER_KIND[check_variant(variant)]
    k_max = max(PER_KIND.values())
    corpus = [u for src in SOURCES for u in units(src)]
    lexicon = units(LEXICON)
    nouns = frozenset(u.text for u in lexicon if u.meta.get("pos") == "noun")
    adjectives = frozenset(u.text for u in lexicon if u.meta.get("pos") == "adj")
    if nlp is None:
        from .syntax import load_spacy

        nlp = load_spacy()
    mc = MIN_COUNT if min_count is None else min_count
    ma = MIN_APART if min_count is None else min_count
    pairs, words, total = bigram_statistics(corpus)
    accept = _parse_check(nlp, corpus, pairs, mc)
    stats = select_bigrams(pairs, words, total, n_bigrams, nouns, adjectives, accept, mc, ma, min_pmi)
    by_first = {s.first: s for s in stats}
    by_second = {s.second: s for s in stats}
    found: dict[tuple[str, str], list[tuple[TextUnit, int, int]]] = {}
    for ui, u in enumerate(corpus):
        ws = _words(u.text)
        for i, w in enumerate(ws):
            prev_adj = i > 0 and _adjacent(u.text, ws[i - 1], w)
            if w[2] in by_second:
                s = by_second[w[2]]
                kind = "positive" if prev_adj and ws[i - 1][2] == s.first else "second_alone"
                found.setdefault((s.feature, kind), []).append((u, i, ui))
            if prev_adj and ws[i - 1][2] in by_first and w[2] != by_first[ws[i - 1][2]].second:
                s = by_first[ws[i - 1][2]]
                found.setdefault((s.feature, "first_other"), []).append((u, i, ui))
    per_bigram: list[list[Document]] = []
    for s in stats:
        kinds = []
        for kind in ("positive", "second_alone", "first_other"):
            occ = shuffled(found.get((s.feature, kind), []), f"{NAME}/{s.feature}/{kind}")[:k_max][:k]
            docs = []
            for u, i, _ui in occ:
                ws = _words(u.text)
                text, start, end, lo = _window(u, ws, i)
                docs.append(
                    Document(
                        doc_id=f"{s.feature}/{kind}/{u.source}/{u.unit_id}@{lo + start}",
                        group=u.group,
                        text=text,
                        spans={s.feature: (Span(start, end, int(kind == "positive")),)},
                        meta={"source": u.source, "kind": kind, "bigram": f"{s.first} {s.second}"},
                    )
                )
            kinds.append(docs)
        per_bigram.append(interleave(kinds))
    features = tuple(
        Feature(
            s.feature,
            "classification",
            f"'{s.second}' right after '{s.first}' (count {s.count}, PMI {s.pmi}); negatives: '{s.second}' without "
            f"'{s.first}', and other words after '{s.first}'",
        )
        for s in stats
    )
    docs = interleave(per_bigram)
    seen: set[str] = set()
    unique = []
    for d in docs:  # the same window can be drawn twice only through identical doc ids; keep the first
        if d.doc_id not in seen:
            seen.add(d.doc_id)
            unique.append(d)
    return ProbingDataset(
        name=NAME,
        version=VERSION,
        variant=variant,
        level="span",
        features=features,
        documents=tuple(unique),
        description=__doc__.strip().splitlines()[0],
        default_reduce="last",
        skip_first=0,
    )


FAMILY = Family(NAME, VERSION, __doc__.strip().splitlines()[0], build, sources)
