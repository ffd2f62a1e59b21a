"""Position: the index of a token in its sequence, as a regression target (absolute, log and relative).

Documents are long English prose chunks (170-230 words, so most fill a 256-token context) from the Debian handbook,
the Bible, Shakespeare and the Python documentation. Every token is an example; the targets are computed in
:func:`~sparse_probing.datasets.base.align` from the token's index in ``input_ids`` (special tokens included).
"""

from __future__ import annotations

from .base import TOKEN_RULES, Document, Feature, ProbingDataset
from .family import Family, UnitsFn, check_variant, round_robin, shuffled
from .sources import chunk_units

NAME = "position"
VERSION = "1"
DOCS = {"smoke": 16, "default": 160}
SOURCES = ("handbook-en", "bible-kjv", "shakespeare", "python-docs")
RULES = ("position", "log_position", "relative_position")


def sources(variant: str = "default") -> list[str]:
    return list(SOURCES)


def build(units: UnitsFn, variant: str = "default") -> ProbingDataset:
    n = DOCS[check_variant(variant)]
    n_max = max(DOCS.values())
    pools = [shuffled(chunk_units(units(src), 170, 230), f"{NAME}/{src}")[:n_max] for src in SOURCES]
    chosen = round_robin(pools, n_max)[:n]
    docs = tuple(Document(doc_id=c.chunk_id, group=c.group, text=c.text, meta={"source": c.source}) for c in chosen)
    features = tuple(Feature(r, "regression", TOKEN_RULES[r].description, rule=r) for r in RULES)
    return ProbingDataset(
        name=NAME,
        version=VERSION,
        variant=variant,
        level="token",
        features=features,
        documents=docs,
        description=__doc__.strip().splitlines()[0],
        default_reduce="mean",
        skip_first=0,
    )


FAMILY = Family(NAME, VERSION, __doc__.strip().splitlines()[0], build, sources)
