"""The mini family's corpus builder: probing text is found and excluded, translations too; quotas; determinism."""

from __future__ import annotations

import json

import pytest

from sparse_probing.datasets.base import Document, Feature, ProbingDataset
from sparse_probing.datasets.sources import TextUnit
from sparse_probing.training.corpus import (
    CORPUS_FILE,
    MANIFEST_FILE,
    CorpusSpec,
    ExclusionIndex,
    build_corpus,
    cut_out,
    file_sha256,
    leaked_documents,
    match_units,
    parallel_neighbours,
    read_corpus,
    split_text,
    water_fill,
)

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau".split()


def sentence(i: int, n: int = 14) -> str:
    """A sentence of ``n`` words that shares no run of 10 words with ``sentence(j)`` for ``j != i``."""
    return " ".join(f"{WORDS[(i + k) % len(WORDS)]}{i}" for k in range(n)) + "."


def test_index_finds_passage_regardless_of_whitespace_and_cut_words():
    probe = "xx" + sentence(1) + " " + sentence(2)[:-5]  # starts and ends inside a word
    index = ExclusionIndex([probe], n=10)
    text = f"Intro line.\n{sentence(0)}\n{sentence(1).replace(' ', '  ')}\n{sentence(2)}\n{sentence(3)}"
    ranges, _ = index.matches(text)
    assert len(ranges) == 1
    s, e = ranges[0]
    assert text[s:e].startswith(sentence(1).split()[1]) and sentence(0) not in text[s:e]
    assert index.matches(sentence(5) + " " + sentence(6))[0] == []


def test_index_short_documents_and_groups():
    index = ExclusionIndex([("KING HENRY.\nWas ever king so", "play:h6"), ("a b", "g")], n=10, min_words=4)
    assert index.n_texts == 1  # "a b" has no words left once its (possibly cut) ends are dropped
    ranges, same = index.matches("Enter KING HENRY.\nWas ever king so sad?", group="play:h6")
    assert ranges and same
    ranges, same = index.matches("KING HENRY.\nWas ever king so sad?", group="play:other")
    assert ranges and not same


def test_cut_out_removes_whole_lines_or_sentences():
    text = "line one\nbad words here\nline three"
    assert cut_out(text, [(text.index("words"), text.index("words") + 5)]) == ["line one", "line three"]
    long_line = " ".join(sentence(i) for i in range(8))
    s = long_line.index(sentence(3))
    pieces = cut_out(long_line, [(s + 3, s + 20)])
    assert sentence(3) not in " ".join(pieces) and sentence(2) in pieces[0] and sentence(4) in pieces[1]


def test_match_units_across_a_unit_boundary():
    units = [TextUnit("s", f"u{i}", "g", sentence(i, 6)) for i in range(4)]
    probe = units[1].text + "\n" + units[2].text  # 12 words: only shingles that span the two units
    ranges, same = match_units(units, ExclusionIndex([(probe, "g")], n=10))
    assert set(ranges) == {1, 2} and same == {1, 2}


def test_parallel_neighbours_drop_the_aligned_paragraphs():
    def page(lang: str, n: int) -> list[TextUnit]:
        return [TextUnit(f"handbook-{lang}", f"p#{i}", "handbook:p", f"{lang} {i}") for i in range(n)]

    units = {"handbook-en": page("en", 10), "handbook-de": page("de", 10), "manpages-de": []}
    drop = parallel_neighbours(units, {("handbook-en", 4)}, {"handbook": (1, 0.0)})
    assert drop == {(src, i) for src in ("handbook-en", "handbook-de") for i in (3, 4, 5)}
    assert parallel_neighbours(units, {("handbook-de", 9)}, {"handbook": (0, 0.0)}) == {
        ("handbook-en", 9),
        ("handbook-de", 9),
    }


def test_water_fill_and_split_text():
    quota = water_fill({"a": 10, "b": 100, "c": 1000}, 300)
    assert quota["a"] == 10 and quota["b"] == 100 and 190 <= quota["c"] <= 191
    assert water_fill({"a": 5, "b": 5}, 100) == {"a": 5, "b": 5}
    text = "\n\n".join(sentence(i) * 3 for i in range(20))
    pieces = split_text(text, 500)
    assert all(len(p) <= 500 for p in pieces) and "".join(pieces).replace("\n", "") == text.replace("\n", "")


# ---------------------------------------------------------------------------------------------------- build
def _units() -> dict[str, list[TextUnit]]:
    """Small sources: an English and a German handbook (parallel pages), a Bible, Python code files."""
    out: dict[str, list[TextUnit]] = {"manpages-de": [], "debian-reference-de": []}
    for lang, offset in (("en", 0), ("de", 500)):
        out[f"handbook-{lang}"] = [
            TextUnit(f"handbook-{lang}", f"page{p}#{i}", f"handbook:page{p}", sentence(offset + 20 * p + i, 30))
            for p in range(6)
            for i in range(8)
        ]
    out["bible-kjv"] = [
        TextUnit(
            "bible-kjv",
            f"Book{b}.{c}",
            f"bible:Book{b}",
            " ".join(sentence(1000 + 50 * b + 5 * c + k) for k in range(5)),
        )
        for b in range(6)
        for c in range(6)
    ]
    out["code-python"] = [
        TextUnit(
            "code-python",
            f"m{f}.py",
            f"code:python:m{f}.py",
            "\n".join(f"x{f}_{k} = {k}  # {sentence(3000 + 40 * f + k)}" for k in range(30)),
        )
        for f in range(6)
    ]
    return out


@pytest.fixture
def small_build(tmp_path):
    units = _units()
    probe_docs = [
        Document("en/1", "handbook:page1", units["handbook-en"][9].text, {"language": "en"}),  # page1 paragraph 1
        Document("bible/1", "bible:Book2", units["bible-kjv"][13].text[40:400], {"language": "en"}),
        Document(
            "py/1", "code:python:m3.py", "\n".join(units["code-python"][3].text.split("\n")[5:9]), {"language": "en"}
        ),
    ]
    datasets = tmp_path / "datasets"
    datasets.mkdir()
    ProbingDataset("toy", "1", "smoke", "document", (Feature("language"),), tuple(probe_docs)).save(datasets)
    spec = CorpusSpec(
        total_chars=40_000,
        english_sources=("handbook-en", "bible-kjv"),
        languages=("de",),
        code_languages=("python",),
        heldout_chars=4_000,
        max_doc_chars=1_500,
        min_doc_chars=50,
        parallel_reach=(("handbook", 0, 0.0),),
    )
    path = build_corpus(spec, tmp_path / "corpus", datasets_root=datasets, units=lambda name: units[name])
    return spec, path, units, probe_docs, datasets


def test_build_excludes_probing_text_and_translations(small_build):
    spec, path, units, probe_docs, datasets = small_build
    docs = read_corpus(path)
    text = "\n".join(d.text for d in docs)
    assert units["handbook-en"][9].text not in text
    assert units["handbook-de"][9].text not in text  # the German translation of the probed paragraph
    assert units["handbook-en"][10].text in text or units["handbook-de"][10].text in text  # its neighbour is kept
    for probe in probe_docs:
        assert ExclusionIndex([probe.text]).matches(text)[0] == []
    assert leaked_documents(path, datasets, spec) == []
    assert {d.domain for d in docs} == {"english", "languages", "code"}
    assert {d.split for d in docs} == {"train", "heldout"}
    held = {(d.source, d.group) for d in docs if d.split == "heldout"}
    assert not held & {(d.source, d.group) for d in docs if d.split == "train"}


def test_build_is_deterministic_and_records_a_manifest(small_build, tmp_path):
    spec, path, units, _, datasets = small_build
    manifest = json.loads((path.parent / MANIFEST_FILE).read_text())
    assert manifest["file"]["sha256"] == file_sha256(path)
    assert manifest["spec_digest"] == spec.digest
    assert manifest["sources"]["bible-kjv"]["packages"][0]["name"] == "sword-text-kjv"
    assert manifest["sources"]["handbook-de"]["chars_excluded"] > 0
    again = build_corpus(spec, tmp_path / "again", datasets_root=datasets, units=lambda name: units[name])
    assert again.name == CORPUS_FILE and file_sha256(again) == file_sha256(path)


def test_group_policy_drops_whole_groups(small_build, tmp_path):
    spec, _, units, _, datasets = small_build
    strict = CorpusSpec(**{**spec.__dict__, "exclusion": "group"})
    docs = read_corpus(build_corpus(strict, tmp_path / "strict", datasets_root=datasets, units=lambda n: units[n]))
    assert not {d.group for d in docs} & {"handbook:page1", "bible:Book2", "code:python:m3.py"}


def test_heldout_pages_are_not_trained_on_in_any_language(small_build):
    _, path, _, _, _ = small_build
    docs = read_corpus(path)
    held_pages = {d.group for d in docs if d.split == "heldout" and d.source.startswith("handbook-")}
    trained_pages = {d.group for d in docs if d.split == "train" and d.source.startswith("handbook-")}
    assert held_pages and not held_pages & trained_pages
