"""Code language identification: which of thirteen programming or markup languages a file chunk is written in.

The paper used the GitHub part of the Pile (C, C++, Go, HTML, Java, JavaScript, PHP, Python, XML). Offline we read
the source files that Debian packages ship (see :mod:`sparse_probing.datasets.code_sources`), remove licence headers
and Perl's POD, and cut files into chunks of whole lines (300-600 characters, roughly 80-200 tokens). Chunks that
are mostly comments are skipped, and a file's first chunk is used only when it has no other, so that the label is
not given away by a shebang, ``package`` line or ``<?php`` tag. Every file gives one chunk before any file gives a
second (at most :data:`CHUNKS_PER_FILE`); the group id is the file.
"""

from __future__ import annotations

from .base import Document, Feature, ProbingDataset
from .code_sources import CODE_LANGUAGES, code_chunks, comment_share
from .family import Family, UnitsFn, check_variant, interleave, round_robin_ranks

NAME = "code_language"
VERSION = "1"
DOCS_PER_LANGUAGE = {"smoke": 24, "default": 200}
CHUNKS_PER_FILE = 3
MAX_COMMENT_SHARE = 0.6


def sources(variant: str = "default") -> list[str]:
    return [f"code-{lang}" for lang in CODE_LANGUAGES]


def build(units: UnitsFn, variant: str = "default", languages: tuple[str, ...] = CODE_LANGUAGES) -> ProbingDataset:
    """Balanced file chunks per language; ``smoke`` is a class-balanced prefix of ``default``'s selection."""
    n = DOCS_PER_LANGUAGE[check_variant(variant)]
    per_lang: list[list[Document]] = []
    for lang in languages:
        per_file: list[list[Document]] = []
        for unit in units(f"code-{lang}"):
            indexed = list(enumerate(code_chunks(unit.text)))
            if len(indexed) > 1:
                indexed = indexed[1:]
            indexed = [(i, c) for i, c in indexed if comment_share(c) <= MAX_COMMENT_SHARE][:CHUNKS_PER_FILE]
            per_file.append(
                [
                    Document(
                        doc_id=f"{lang}/{unit.unit_id}#{i}",
                        group=unit.group,
                        text=chunk,
                        labels={"code_language": lang},
                        meta={"source": unit.source, "path": unit.unit_id, "chunk": i},
                    )
                    for i, chunk in indexed
                ]
            )
        # one chunk from every file first, a second one from the same files only when files run out
        per_lang.append(round_robin_ranks(per_file, n))
    return ProbingDataset(
        name=NAME,
        version=VERSION,
        variant=variant,
        level="document",
        features=(
            Feature(
                "code_language",
                "classification",
                f"language of the code chunk, one of {', '.join(languages)} (probed one-vs-rest)",
            ),
        ),
        documents=tuple(interleave(per_lang)),
        description=__doc__.strip().splitlines()[0],
        default_reduce="mean",
        skip_first=0,
    )


FAMILY = Family(NAME, VERSION, __doc__.strip().splitlines()[0], build, sources)
