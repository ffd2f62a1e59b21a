"""Text features: eleven regular-expression properties of a token's own text (the paper's "text features").

Labels such as ``contains_digit`` or ``has_leading_space`` exist only after tokenization, so the dataset stores
plain documents and names a registered rule per feature (:data:`~sparse_probing.datasets.base.TOKEN_RULES`);
:func:`~sparse_probing.datasets.base.align` computes the label of every token from its surface text. Documents mix
English prose, dictionary entries, code and German/French/Polish prose, so that digits, capitals, whitespace runs
and non-ASCII characters are all frequent.
"""

from __future__ import annotations

from .base import TOKEN_RULES, Document, Feature, ProbingDataset
from .code_sources import code_chunks
from .family import Family, UnitsFn, check_variant, round_robin, shuffled
from .sources import chunk_units

NAME = "text_features"
VERSION = "1"
DOCS = {"smoke": 24, "default": 144}
RULES = (
    "contains_digit",
    "all_digits",
    "contains_capital",
    "leading_capital",
    "all_capitals",
    "contains_whitespace",
    "has_leading_space",
    "no_leading_space_and_loweralpha",
    "all_whitespace",
    "is_not_alphanumeric",
    "is_not_ascii",
)
PROSE_SOURCES = (
    "handbook-en",
    "manpages-en",
    "python-docs",
    "gcide",
    "fortunes",
    "debian-reference-en",
    "handbook-de",
    "handbook-fr",
    "handbook-pl",
)
CODE_SOURCES = ("code-python", "code-c", "code-go")


def sources(variant: str = "default") -> list[str]:
    return [*PROSE_SOURCES, *CODE_SOURCES]


def build(units: UnitsFn, variant: str = "default") -> ProbingDataset:
    """Documents drawn alternately from the sources; every token of every document is an example."""
    n = DOCS[check_variant(variant)]
    n_max = max(DOCS.values())
    pools = []
    for src in PROSE_SOURCES:
        chunks = shuffled(chunk_units(units(src), 64, 128), f"{NAME}/{src}")[:n_max]
        pools.append([(src, c.chunk_id, c.group, c.text) for c in chunks])
    for src in CODE_SOURCES:
        items = [(src, f"{src}/{u.unit_id}", u.group, cs[-1]) for u in units(src) if (cs := code_chunks(u.text))]
        pools.append(shuffled(items, f"{NAME}/{src}")[:n_max])
    chosen = round_robin(pools, n_max)[:n]
    docs = tuple(Document(doc_id=cid, group=group, text=text, meta={"source": src}) for src, cid, group, text in chosen)
    features = tuple(Feature(rule, "classification", TOKEN_RULES[rule].description, rule=rule) for rule in RULES)
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
