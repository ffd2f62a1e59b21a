"""Natural language identification: which of nine languages a short document is written in.

The paper used Europarl (9 languages). Offline we use Debian documentation that exists in many translations:
"The Debian Administrator's Handbook" (parallel chapters), the "Debian Reference" (parallel chapters, 6 of the
languages) and the translated man pages (manpages-l10n). Paragraphs left untranslated are dropped. Consecutive
paragraphs of one page are joined into documents of 64-127 words; the group id is the page or chapter, shared by
all its translations, so that a grouped split never puts a text in one split and its translation in another.
"""

from __future__ import annotations

from .base import Document, Feature, ProbingDataset
from .family import Family, UnitsFn, check_variant, interleave, round_robin, shuffled
from .sources import SOURCES, chunk_units

NAME = "natural_language"
VERSION = "1"
LANGUAGES = ("en", "de", "fr", "es", "it", "pt", "nl", "pl", "sv")
DOCS_PER_LANGUAGE = {"smoke": 30, "default": 300}
MIN_WORDS, MAX_WORDS = 64, 128


def sources_for(lang: str) -> list[str]:
    """Sources of one language, in the order the round-robin draws from them."""
    names = [f"handbook-{lang}", f"manpages-{lang}", f"debian-reference-{lang}"]
    return [n for n in names if n in SOURCES]


def sources(variant: str = "default") -> list[str]:
    return [s for lang in LANGUAGES for s in sources_for(lang)]


def build(units: UnitsFn, variant: str = "default", languages: tuple[str, ...] = LANGUAGES) -> ProbingDataset:
    """Balanced documents per language, drawn alternately from that language's sources.

    The ``smoke`` variant is a class-balanced prefix of the selection that ``default`` uses.
    """
    n = DOCS_PER_LANGUAGE[check_variant(variant)]
    n_max = max(DOCS_PER_LANGUAGE.values())
    per_lang: list[list[Document]] = []
    for lang in languages:
        pools = []
        for src in sources_for(lang):
            chunks = list(chunk_units(units(src), MIN_WORDS, MAX_WORDS))
            pools.append(shuffled(chunks, f"{NAME}/{src}"))
        chosen = round_robin(pools, n_max)[:n]
        docs = [
            Document(
                doc_id=f"{lang}/{c.chunk_id}",
                group=c.group,
                text=c.text,
                labels={"language": lang},
                meta={"source": c.source, "units": [c.unit_ids[0], c.unit_ids[-1]]},
            )
            for c in chosen
        ]
        per_lang.append(docs)
    return ProbingDataset(
        name=NAME,
        version=VERSION,
        variant=variant,
        level="document",
        features=(
            Feature(
                "language",
                "classification",
                f"language of the document, one of {', '.join(languages)} (probed one-vs-rest)",
            ),
        ),
        documents=tuple(interleave(per_lang)),
        description=__doc__.strip().splitlines()[0],
        default_reduce="mean",
        skip_first=0,
    )


FAMILY = Family(NAME, VERSION, __doc__.strip().splitlines()[0], build, sources)
