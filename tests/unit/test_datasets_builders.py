"""Every family builder on the in-repo fixture units; registry, summaries, manifest and determinism."""

from __future__ import annotations

import json
import re

import pytest
from datasets_fixtures import fixture_units, package_roots, tiny_tokenizer, units_fn
from sklearn.model_selection import GroupShuffleSplit

from sparse_probing import datasets as D
from sparse_probing.datasets import (
    code_language,
    compound_words,
    data_source,
    factual,
    natural_language,
    position,
    syntax,
    text_features,
)
from sparse_probing.datasets.build import SourceCache, build_family, dataset_entry, write_manifest
from sparse_probing.datasets.sources import TextUnit


@pytest.fixture(scope="module")
def nlp():
    return syntax.load_spacy()


def _common_checks(ds: D.ProbingDataset) -> None:
    assert ds.documents, ds.name
    assert len({d.doc_id for d in ds.documents}) == len(ds.documents)
    assert all(d.group for d in ds.documents)
    assert ds.version == D.FAMILIES[ds.name].version


def test_natural_language():
    ds = natural_language.build(units_fn, "smoke")
    _common_checks(ds)
    langs = {d.labels["language"] for d in ds.documents}
    assert langs == set(natural_language.LANGUAGES)
    for d in ds.documents:
        assert 64 <= len(d.text.split()) < 128
        assert d.meta["source"].endswith("-" + d.labels["language"])
        assert d.group.split(":")[0] in ("handbook", "man", "debian-reference")
    # translations share groups: a grouped split never separates them
    groups = {}
    for d in ds.documents:
        groups.setdefault(d.group, set()).add(d.labels["language"])
    assert any(len(v) > 1 for v in groups.values())
    assert natural_language.build(units_fn, "smoke").sha256 == ds.sha256  # deterministic


def test_smoke_is_a_balanced_prefix_of_default():
    smoke = natural_language.build(units_fn, "smoke")
    default = natural_language.build(units_fn, "default")
    for lang in natural_language.LANGUAGES:
        s = [d.doc_id for d in smoke.documents if d.labels["language"] == lang]
        f = [d.doc_id for d in default.documents if d.labels["language"] == lang]
        assert f[: len(s)] == s


def test_code_language():
    ds = code_language.build(units_fn, "smoke")
    _common_checks(ds)
    assert len({d.labels["code_language"] for d in ds.documents}) >= 9
    for d in ds.documents:
        assert 300 <= len(d.text) <= 600
        assert not re.search(r"copyright|licen[cs]e", d.text, re.IGNORECASE) or d.labels["code_language"] == "html"
        assert d.group.startswith(f"code:{d.labels['code_language']}:")


def test_data_source():
    ds = data_source.build(units_fn, "smoke")
    _common_checks(ds)
    assert {d.labels["data_source"] for d in ds.documents} == set(data_source.CLASSES)


def test_text_features_align():
    ds = text_features.build(units_fn, "smoke")
    _common_checks(ds)
    assert ds.level == "token" and [f.rule for f in ds.features] == list(text_features.RULES)
    ex = D.align(ds, tiny_tokenizer(), 128).examples
    rates = ex[list(text_features.RULES)].mean()
    # the tiny test tokenizer has almost only one-character tokens: all_capitals (>= 2 capitals) may never fire
    assert (rates < 1).all() and (rates > 0).sum() >= 10, rates


def test_position_align():
    ds = position.build(units_fn, "smoke")
    _common_checks(ds)
    ex = D.align(ds, tiny_tokenizer(), 64).examples
    assert (ex.position == ex.tok_start).all() and ex.position.max() == 63
    assert ex.relative_position.between(0, 1).all()


def test_syntax_silver_labels(nlp):
    ds = syntax.build(units_fn, "smoke", nlp=nlp)
    _common_checks(ds)
    assert "silver" in ds.features[0].description
    doc = ds.documents[0]
    words = doc.spans["upos"]
    assert len(words) == len(doc.spans["dep"]) == len(doc.spans["morph_Number"])
    assert all(doc.text[s.start : s.end].strip() == doc.text[s.start : s.end] for s in words)
    table = ds.label_table()
    assert {"NOUN", "VERB", "DET"} <= set(table["upos"])
    assert set(table["morph_Number"]) <= {"Sing", "Plur", "_"}


def _compound_units(name: str) -> tuple[TextUnit, ...]:
    sentences = []
    for i in range(12):
        sentences += [
            f"Type the command line option number {i} into the shell window.",
            f"The line number {i} was printed again by the printer.",
            f"The command prompt number {i} was shown on the screen.",
            f"A file system number {i} keeps every file in order.",
            f"The system clock number {i} is wrong, and each file holds data.",
        ]
    if name == compound_words.LEXICON:
        nouns = ["command", "line", "prompt", "file", "system", "clock", "number", "shell", "window", "screen"]
        return tuple(TextUnit(name, f"noun:{w}", "wordnet-lemmas:noun", w, {"pos": "noun"}) for w in nouns)
    if name != "handbook-en":
        return ()
    return tuple(TextUnit(name, f"s{i}", f"g{i % 7}", s) for i, s in enumerate(sentences))


def test_compound_words_kinds(nlp):
    ds = compound_words.build(_compound_units, "smoke", n_bigrams=2, nlp=nlp, min_count=5, min_pmi=1.0)
    _common_checks(ds)
    assert {f.name for f in ds.features} == {"command_line", "file_system"}
    kinds = {}
    for d in ds.documents:
        ((feature, (span,)),) = d.spans.items()
        kinds.setdefault((feature, d.meta["kind"]), []).append(span.value)
        target = d.text[span.start : span.end].lower()
        first, second = feature.split("_")
        if d.meta["kind"] == "positive":
            assert target == second and d.text[: span.start].lower().endswith(first + " ") and span.value == 1
        elif d.meta["kind"] == "second_alone":
            assert target == second and not d.text[: span.start].lower().endswith(first + " ") and span.value == 0
        else:
            assert target != second and d.text[: span.start].lower().endswith(first + " ") and span.value == 0
    assert ("command_line", "first_other") in kinds and ("command_line", "second_alone") in kinds


def test_factual_no_leakage_and_name_spans():
    ds = factual.build(units_fn, "smoke")
    _common_checks(ds)
    assert ds.default_reduce == "max"
    factual.check_no_leakage()
    with pytest.raises(D.DatasetError, match="leaks"):
        factual.check_no_leakage(("{name} was a French poet.",))
    people = {u.unit_id: u for u in fixture_units()["wordnet-people"]}
    for d in ds.documents:
        spans = {k: v[0] for k, v in d.spans.items()}
        name = d.meta["name"]
        assert all(d.text[s.start : s.end] == name for s in spans.values())
        context = d.text.replace(name, "")
        for value in (s.value for s in spans.values()):
            assert value.split("_")[0] not in context.lower()
        gloss = people[d.doc_id.split("/")[1]].text
        if "nationality" in spans and spans["nationality"].value == "american":
            assert gloss.startswith("United States")
    t = ds.label_table()
    assert t["birth_century"].notna().any() and t["occupation"].notna().any()


def test_registry_errors_and_summary(tmp_path):
    with pytest.raises(D.DatasetError, match=r"available: .*natural_language-smoke.*make data"):
        D.load_dataset("nope")
    with pytest.raises(D.DatasetError, match=r"not built.*make data"):
        D.load_dataset("factual", "smoke", root=tmp_path)
    ds = factual.build(units_fn, "smoke")
    ds.save(tmp_path)
    assert D.load_dataset("factual", "smoke", root=tmp_path) == ds
    listing = D.list_datasets(root=tmp_path)
    assert listing.set_index(["name", "variant"]).loc[("factual", "smoke"), "built"]
    table = D.summary_table("smoke", root=tmp_path)
    assert table.loc[0, "family"] == "factual" and table.loc[0, "documents"] == len(ds.documents)
    ex = D.example_documents(ds, n_per_class=1)
    assert len(ex) == ex["occupation"].nunique() and ex["text"].str.contains("⟦").all()
    frame = D.documents_frame(ds)
    assert frame["doc_id"].tolist() == [d.doc_id for d in ds.documents] and frame["group"].notna().all()
    assert len(D.example_documents(position.build(units_fn, "smoke"), n_per_class=2)) == 2


def test_grouped_split_on_built_ids():
    ds = natural_language.build(units_fn, "default")
    table = ds.label_table()
    split = GroupShuffleSplit(n_splits=1, test_size=0.3, random_state=42)
    train, test = next(split.split(table, groups=table["group"]))
    assert not set(table.group.iloc[train]) & set(table.group.iloc[test])


def test_manifest_is_deterministic(tmp_path):
    roots = package_roots(tmp_path / "pkgs")
    outputs = []
    for run in ("a", "b"):
        out = tmp_path / run
        cache = SourceCache(roots=roots)
        fam = D.FAMILIES["factual"]
        ds, path = build_family(fam, "smoke", cache, out)
        write_manifest(out, cache.manifest_entries(), {path.name: dataset_entry(ds, path, fam)})
        outputs.append(((out / "MANIFEST").read_text(), path.read_bytes()))
    assert outputs[0] == outputs[1]
    manifest = json.loads(outputs[0][0])
    src = manifest["sources"]["wordnet-people"]
    assert src["packages"][0]["name"] == "wordnet-base" and src["packages"][0]["version"] and src["sha256"]
    assert manifest["datasets"]["factual-smoke.jsonl.gz"]["documents"] == 3
