"""Factual knowledge about people: occupation, nationality and birth century, probed on the tokens of a name.

The paper matched Wikidata people in Pile text. Offline we use the person instances of WordNet 3.0 (noun.person):
the occupation is the instance hypernym ("writer", "composer", ...), the nationality and birth year are read from
the gloss ("Norwegian mathematician (1802-1829)"). The name (the longest WordNet lemma, e.g. "Niels Henrik Abel")
is put into a short neutral template sentence that states none of the facts; the labels apply to the name's
character span and are meant to be read with max aggregation over its tokens. People with two of the chosen
occupations are left unlabelled for occupation. The group id is the person.
"""

from __future__ import annotations

import hashlib
import re

from .base import DatasetError, Document, Feature, ProbingDataset, Span
from .family import Family, UnitsFn, check_variant, shuffled
from .sources import TextUnit

NAME = "factual"
VERSION = "1"
DOCS = {"smoke": 300, "default": 100_000}
"""People per variant (``default``: every person with at least one label)."""
OCCUPATIONS = ("writer", "poet", "composer", "statesman", "philosopher", "painter", "dramatist", "physicist")
NATIONALITIES = {
    "United States": "american",
    "English": "english",
    "French": "french",
    "German": "german",
    "Italian": "italian",
    "Russian": "russian",
}
CENTURIES = ("16th_or_earlier", "17th", "18th", "19th", "20th")
TEMPLATES = (
    "{name} is the subject of this entry.",
    "The next chapter is about {name}.",
    "Have you ever heard of {name}?",
    "We talked about {name} yesterday.",
    "This short note concerns {name}.",
    "The index lists {name} on page twelve.",
    "Her essay was mostly about {name}.",
    "Someone mentioned {name} at dinner.",
)
"""Neutral contexts: none states or hints at an occupation, a nationality or a period."""
_YEAR = re.compile(r"\((?:born |born in |b\. )?(?:c\. ?|circa )?(\d{3,4})(?=\s*[-–)])")


def sources(variant: str = "default") -> list[str]:
    return ["wordnet-people"]


def person_labels(unit: TextUnit) -> dict[str, str]:
    """occupation / nationality / birth_century of one WordNet person (only those that can be determined)."""
    labels: dict[str, str] = {}
    occ = [c for c in unit.meta.get("classes", []) if c in OCCUPATIONS]
    if len(set(occ)) == 1:
        labels["occupation"] = occ[0]
    for prefix, nat in NATIONALITIES.items():
        if unit.text.startswith(prefix + " "):
            labels["nationality"] = nat
            break
    m = _YEAR.search(unit.text)
    if m and "BC" not in unit.text[m.end() : m.end() + 12]:
        century = (int(m.group(1)) - 1) // 100 + 1
        labels["birth_century"] = "16th_or_earlier" if century <= 16 else f"{century}th"
    return labels


def display_name(unit: TextUnit) -> str:
    """The longest name (most words, then most characters; first on ties)."""
    names = unit.meta.get("names") or [unit.unit_id]
    return max(names, key=lambda n: (len(n.split()), len(n)))


def check_no_leakage(templates: tuple[str, ...] = TEMPLATES) -> None:
    """Raise if a template mentions a label value (or a nationality adjective)."""
    words = [*OCCUPATIONS, *NATIONALITIES, *NATIONALITIES.values(), "century", "born", "died"]
    for t in templates:
        for w in words:
            if re.search(rf"\b{re.escape(w)}\b", t, re.IGNORECASE):
                raise DatasetError(f"template {t!r} leaks {w!r}")


def build(units: UnitsFn, variant: str = "default") -> ProbingDataset:
    """One template sentence per labelled person; spans on the name."""
    n = DOCS[check_variant(variant)]
    check_no_leakage()
    docs = []
    for unit in shuffled(units("wordnet-people"), f"{NAME}/people"):
        labels = person_labels(unit)
        if not labels:
            continue
        name = display_name(unit)
        h = int(hashlib.sha256(unit.unit_id.encode()).hexdigest(), 16)
        template = TEMPLATES[h % len(TEMPLATES)]
        start = template.index("{name}")
        text = template.format(name=name)
        end = start + len(name)
        docs.append(
            Document(
                doc_id=f"person/{unit.unit_id}",
                group=unit.group,
                text=text,
                spans={k: (Span(start, end, v),) for k, v in sorted(labels.items())},
                meta={"source": unit.source, "name": name, "gloss": unit.text},
            )
        )
        if len(docs) >= n:
            break
    features = (
        Feature("occupation", "classification", f"occupation, one of {', '.join(OCCUPATIONS)} (WordNet hypernym)"),
        Feature("nationality", "classification", f"nationality, one of {', '.join(NATIONALITIES.values())}"),
        Feature("birth_century", "classification", f"century of birth, one of {', '.join(CENTURIES)}"),
    )
    return ProbingDataset(
        name=NAME,
        version=VERSION,
        variant=variant,
        level="span",
        features=features,
        documents=tuple(docs),
        description=__doc__.strip().splitlines()[0],
        default_reduce="max",
        skip_first=0,
    )


FAMILY = Family(NAME, VERSION, __doc__.strip().splitlines()[0], build, sources)
