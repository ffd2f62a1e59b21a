"""Data source identification: which of nine offline corpora a short document comes from.

The paper's analogue is the Pile's subsets (Wikipedia, PubMed, GitHub, ArXiv, USPTO, ...). Offline we contrast nine
English text collections of clearly different genres: the King James Bible, Shakespeare, a dictionary (GCIDE),
WordNet entries, man pages, the Python documentation, fortune cookies, the Debian Administrator's Handbook and
source code. Prose is cut into 64-127 word chunks within one group (book, play, letter pair, file, page), code into
300-600 character chunks; the group id is that of the source unit.
"""

from __future__ import annotations

from .base import Document, Feature, ProbingDataset
from .code_sources import CODE_LANGUAGES, code_chunks, comment_share
from .family import Family, UnitsFn, check_variant, interleave, round_robin, shuffled
from .sources import chunk_units

NAME = "data_source"
VERSION = "1"
DOCS_PER_SOURCE = {"smoke": 24, "default": 250}
MIN_WORDS, MAX_WORDS = 64, 128

PROSE_CLASSES: dict[str, str] = {
    "bible": "bible-kjv",
    "shakespeare": "shakespeare",
    "dictionary": "gcide",
    "wordnet": "wordnet-glosses",
    "manpages": "manpages-en",
    "python_docs": "python-docs",
    "fortunes": "fortunes",
    "handbook": "handbook-en",
}
"""Class label -> source name, for the prose classes."""
CLASSES = (*PROSE_CLASSES, "code")


def sources(variant: str = "default") -> list[str]:
    return [*PROSE_CLASSES.values(), *(f"code-{lang}" for lang in CODE_LANGUAGES)]


def _doc(label: str, doc_id: str, group: str, text: str, source: str) -> Document:
    return Document(
        doc_id=f"{label}/{doc_id}", group=group, text=text, labels={"data_source": label}, meta={"source": source}
    )


def build(units: UnitsFn, variant: str = "default") -> ProbingDataset:
    """Balanced chunks per source; ``smoke`` is a class-balanced prefix of ``default``'s selection."""
    n = DOCS_PER_SOURCE[check_variant(variant)]
    n_max = max(DOCS_PER_SOURCE.values())
    per_class: list[list[Document]] = []
    for label, src in PROSE_CLASSES.items():
        chunks = shuffled(chunk_units(units(src), MIN_WORDS, MAX_WORDS), f"{NAME}/{src}")[:n_max]
        per_class.append([_doc(label, c.chunk_id, c.group, c.text, src) for c in chunks[:n]])
    pools = []
    for lang in CODE_LANGUAGES:
        pool = []
        for unit in units(f"code-{lang}"):
            chunks = [c for c in code_chunks(unit.text)[1:] if comment_share(c) <= 0.6]
            if chunks:
                # the last usable chunk: code_language uses the first ones of the same files
                pool.append(_doc("code", f"{unit.source}/{unit.unit_id}", unit.group, chunks[-1], unit.source))
        pools.append(shuffled(pool, f"{NAME}/code-{lang}"))
    per_class.append(round_robin(pools, n_max)[:n])
    return ProbingDataset(
        name=NAME,
        version=VERSION,
        variant=variant,
        level="document",
        features=(
            Feature(
                "data_source",
                "classification",
                f"corpus the document comes from, one of {', '.join(CLASSES)} (probed one-vs-rest)",
            ),
        ),
        documents=tuple(interleave(per_class)),
        description=__doc__.strip().splitlines()[0],
        default_reduce="mean",
        skip_first=0,
    )


FAMILY = Family(NAME, VERSION, __doc__.strip().splitlines()[0], build, sources)
