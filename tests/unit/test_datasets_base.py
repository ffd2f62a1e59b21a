"""The tokenizer-agnostic data model: serialization, determinism, alignment, token rules, grouped splits."""

from __future__ import annotations

import numpy as np
import pytest
from datasets_fixtures import smollm2_tokenizer, tiny_tokenizer
from sklearn.model_selection import GroupShuffleSplit

from sparse_probing.datasets.base import (
    TOKEN_RULES,
    DatasetError,
    Document,
    Feature,
    ProbingDataset,
    Span,
    align,
    token_surfaces,
)

TRICKY = "  Ünïcödé café — 東京 😀 naïve\tTab  2024 FOO bar"


def _span(text: str, word: str) -> Span:
    start = text.index(word)
    return Span(start, start + len(word), word)


def tricky_dataset() -> ProbingDataset:
    docs = (
        Document("d0", "g0", TRICKY, spans={"word": tuple(_span(TRICKY, w) for w in ("café", "東京", "😀", "FOO"))}),
        Document("d1", "g1", " leading space and a final word", spans={"word": (_span(" leading space", "leading"),)}),
    )
    return ProbingDataset("tricky", "1", "test", "span", (Feature("word"),), docs)


def doc_dataset(n: int = 6) -> ProbingDataset:
    docs = tuple(
        Document(f"d{i}", f"g{i // 2}", f"Text number {i} ü.", labels={"lang": "en" if i % 2 else "de"})
        for i in range(n)
    )
    return ProbingDataset("docs", "1", "test", "document", (Feature("lang"),), docs, skip_first=1)


@pytest.fixture(scope="module")
def tokenizers_() -> dict[str, object]:
    return {"tiny_bpe": tiny_tokenizer()}


def test_save_load_roundtrip_and_determinism(tmp_path):
    ds = tricky_dataset()
    p1 = ds.save(tmp_path / "a")
    p2 = ds.save(tmp_path / "b")
    assert p1.read_bytes() == p2.read_bytes()  # gzip without timestamps: identical files
    back = ProbingDataset.load(p1)
    assert back == ds
    assert back.sha256 == ds.sha256 and back.key == ds.key


def test_load_errors(tmp_path):
    with pytest.raises(DatasetError, match="make data"):
        ProbingDataset.load(tmp_path / "missing.jsonl.gz")
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(DatasetError, match="corrupt"):
        ProbingDataset.load(bad)


def test_rules_need_token_level():
    with pytest.raises(DatasetError, match="token"):
        ProbingDataset("x", "1", "t", "document", (Feature("d", rule="contains_digit"),), ())
    with pytest.raises(DatasetError, match="unknown token rule"):
        Feature("d", rule="no_such_rule")


def _check_span_alignment(tok, ds: ProbingDataset) -> None:
    al = align(ds, tok, max_length=64)
    assert al.n_dropped == 0
    assert len(al.examples) == sum(len(d.spans["word"]) for d in ds.documents)
    for row in al.examples.itertuples():
        ids = al.input_ids[row.doc][row.tok_start : row.tok_end]
        decoded = tok.decode(ids)
        assert row.word in decoded, (row.word, decoded)
        # no special token inside a window
        assert not set(ids.tolist()) & set(tok.all_special_ids)


def test_span_alignment_tiny_bpe(tokenizers_):
    _check_span_alignment(tokenizers_["tiny_bpe"], tricky_dataset())


@pytest.mark.slow
def test_span_alignment_smollm2():
    tok = smollm2_tokenizer()
    _check_span_alignment(tok, tricky_dataset())
    # the same token rules hold for both tokenizers on the leading-space words
    ds = ProbingDataset(
        "tf",
        "1",
        "t",
        "token",
        (Feature("sp", rule="has_leading_space"), Feature("na", rule="is_not_ascii")),
        (Document("d", "g", "word café 東京 end"),),
    )
    for t in (tok, tiny_tokenizer()):
        ex = align(ds, t, 64).examples
        surfaces = token_surfaces(
            "word café 東京 end", np.asarray(t("word café 東京 end", return_offsets_mapping=True)["offset_mapping"])
        )
        assert ex["sp"].sum() == sum(1 for s in surfaces if s and s.startswith(" "))
        assert ex["na"].max() == 1


def test_document_alignment_skips_specials_and_first(tokenizers_):
    tok = tokenizers_["tiny_bpe"]
    ds = doc_dataset()
    al = align(ds, tok, 32)
    bos = tok.bos_token_id
    for row in al.examples.itertuples():
        ids = al.input_ids[row.doc]
        assert ids[0] == bos
        assert row.tok_start == 2  # BOS excluded, then skip_first=1
        assert row.tok_end == len(ids)


def test_truncated_spans_are_dropped(tokenizers_):
    tok = tokenizers_["tiny_bpe"]
    text = "word " * 50 + "target"
    ds = ProbingDataset(
        "t", "1", "t", "span", (Feature("f"),), (Document("d", "g", text, spans={"f": (_span(text, "target"),)}),)
    )
    al = align(ds, tok, 16)
    assert al.n_dropped == 1 and len(al.examples) == 0


def test_token_level_rules(tokenizers_):
    tok = tokenizers_["tiny_bpe"]
    text = "The 2024 FOO café  x"
    ds = ProbingDataset(
        "tf",
        "1",
        "t",
        "token",
        tuple(
            Feature(n, TOKEN_RULES[n].task, rule=n)
            for n in ("contains_digit", "all_capitals", "is_not_ascii", "position")
        ),
        (Document("d", "g", text),),
    )
    al = align(ds, tok, 64)
    ex = al.examples
    assert (ex.tok_end - ex.tok_start == 1).all()
    assert ex.tok_start.min() == 1  # BOS is not an example
    assert ex.position.tolist() == ex.tok_start.tolist()
    offs = np.asarray(tok(text, return_offsets_mapping=True)["offset_mapping"])
    surf = token_surfaces(text, offs)
    for row in ex.itertuples():
        s = surf[row.tok_start]
        if s:
            assert row.contains_digit == int(any(c.isdigit() for c in s))
            assert row.is_not_ascii == int(any(ord(c) > 127 for c in s))
    assert "".join(s for s in surf if s) == text.rstrip() or "".join(s for s in surf if s) == text


def test_token_surfaces_cover_text_with_or_without_trimmed_offsets():
    text = "ab cd"
    trimmed = np.array([[0, 0], [0, 2], [3, 5]])
    untrimmed = np.array([[0, 2], [2, 5]])
    assert token_surfaces(text, trimmed) == [None, "ab", " cd"]
    assert token_surfaces(text, untrimmed) == ["ab", " cd"]


def test_grouped_split_keeps_groups_apart():
    ds = doc_dataset(40)
    table = ds.label_table()
    splitter = GroupShuffleSplit(n_splits=3, test_size=0.3, random_state=0)
    for train, test in splitter.split(table, groups=table["group"]):
        assert not set(table["group"].iloc[train]) & set(table["group"].iloc[test])
