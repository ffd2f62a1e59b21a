"""The paper's own datasets (sae-probes format): loading, truncation, name spans, deduplication, last-token labels."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zstandard
from datasets_fixtures import smollm2_tokenizer, tiny_tokenizer

from sparse_probing.datasets import FAMILIES, load_dataset, paper, task_sizes
from sparse_probing.datasets.base import DatasetError, align
from sparse_probing.splits import grouped_split

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "sae_probes" / "cleaned_data"


@pytest.fixture(scope="module")
def fixture_data() -> paper.PaperData:
    return paper.locate(FIXTURE)


@pytest.fixture(scope="module")
def compound(fixture_data):
    return paper.build_compound_words("smoke", data=fixture_data)


@pytest.fixture(scope="module")
def factual(fixture_data):
    return paper.build_factual("smoke", data=fixture_data)


def _raw_rows(stem: str) -> pd.DataFrame:
    raw = (FIXTURE / f"{stem}.csv.zst").read_bytes()
    with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw)) as r:
        return pd.read_csv(io.BytesIO(r.read()), dtype=str, keep_default_na=False)


def test_compound_words_from_fixture(compound, fixture_data):
    assert compound.name == "paper_compound_words" and compound.level == "span"
    assert compound.feature_names == [paper.bigram_feature(s) for s in paper.COMPOUND_FILES]
    assert len(compound.feature_names) == 21 and "social_security" in compound.feature_names
    assert compound.default_reduce == "last"
    table = compound.label_table()
    # every window has one labelled span: its last word, ending at the end of the text
    assert (table.groupby("doc").size() == 1).all()
    for row in table.itertuples():
        assert row.char_end == len(compound.documents[row.doc].text)
    # the exact duplicate row of every file is kept once; both classes of each bigram are present
    raw = _raw_rows("67_social-security")
    assert raw["prompt"].duplicated().sum() >= 1
    col = table["social_security"].dropna()
    assert len(col) == raw["prompt"].nunique()
    assert set(col) == {0, 1}
    positives = [d for d in compound.documents if d.spans.get("social_security", [None])[0] is not None]
    assert any(d.spans["social_security"][0].value == 1 and d.text.lower().endswith("security") for d in positives)
    assert {f"{s}.csv.zst" for s in paper.COMPOUND_FILES} <= set(fixture_data.used)


def test_no_text_in_two_splits(compound, factual):
    for ds in (compound, factual):
        texts = [paper.normalize(d.text) for d in ds.documents]
        assert len(set(texts)) == len(texts)  # deduplicated
        groups = np.array([d.group for d in ds.documents])
        split = grouped_split(groups, random_state=0)
        parts = [set(groups[idx]) for idx in (split.train, split.val, split.test)]
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])


def test_factual_merges_files_and_groups_by_person(factual):
    assert factual.default_reduce == "max"
    assert factual.feature_names == list(paper.FACTUAL_FILES)
    both = [d for d in factual.documents if "gender" in d.spans and "is_alive" in d.spans]
    assert both, "a context that occurs in two Wikidata files carries both labels"
    for doc in factual.documents:
        (span,) = {(s.start, s.end) for spans in doc.spans.values() for s in spans}
        assert span[1] == len(doc.text)  # the name ends the (left-truncated) context
        assert doc.group == "person/" + paper.normalize(doc.text[span[0] : span[1]]).lower()
        assert len(doc.text.split()) <= paper.MAX_WORDS["paper_factual"]
    sport = [d for d in factual.documents if "sport" in d.spans]
    assert {d.spans["sport"][0].value for d in sport} == {"baseball", "basketball", "football"}
    assert all(d.spans["sport"][0].start == 0 for d in sport)  # names alone


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("The movie is written and directed by Anna Boden", "Anna Boden"),
        ("Hit or Miss? Tulisa Contostavlos", "Tulisa Contostavlos"),
        ('such a movie buff, Mr. C." "Robin Williams', "Robin Williams"),
        ("but he did bring Booker T. Washington", "Booker T. Washington"),
        ("Contact Press.  Dorothy Livesay", "Dorothy Livesay"),
        ("In Glasgow Charles Rennie Mackintosh", "Charles Rennie Mackintosh"),
        ("a film by Ludwig van Beethoven", "Ludwig van Beethoven"),
        ("Seth Green", "Seth Green"),
        ("mentioned by the king", "king"),
    ],
)
def test_name_span(text, name):
    start, end = paper.name_span(text)
    assert text[start:end] == name


def test_left_truncate_keeps_the_end():
    text = " ".join(f"w{i}" for i in range(100)) + " Anna Boden"
    out = paper.left_truncate(text, 10)
    assert out.endswith("Anna Boden") and len(out.split()) == 10 and text.endswith(out)
    assert paper.left_truncate("  short text  ", 10) == "short text"


def _last_real_token(ids, tok) -> int:
    special = set(tok.all_special_ids)
    return max(i for i, t in enumerate(ids.tolist()) if t not in special)


def _check_last_token(tok, ds, max_length):
    al = align(ds, tok, max_length=max_length)
    assert al.n_dropped == 0 and len(al.examples) == len(ds.documents)
    for row in al.examples.itertuples():
        ids = al.input_ids[row.doc]
        assert row.tok_end - 1 == _last_real_token(ids, tok)  # "last" pooling reads the window's last token
        last = tok.decode(ids[row.tok_end - 1 : row.tok_end]).strip()
        assert last and ds.documents[row.doc].text.endswith(last)


def test_label_on_last_token_tiny_bpe(compound):
    _check_last_token(tiny_tokenizer(), compound, 1024)  # a byte-level toy: many tokens


@pytest.mark.slow
def test_label_on_last_token_smollm2(compound):
    _check_last_token(smollm2_tokenizer(), compound, 128)  # the chapters' context length


def test_missing_file_and_bad_root(tmp_path):
    with pytest.raises(DatasetError, match="neither a sae-probes"):
        paper.locate(tmp_path / "nowhere")
    (tmp_path / "cleaned_data").mkdir()
    data = paper.locate(tmp_path / "cleaned_data")
    with pytest.raises(DatasetError, match=r"65_high-school\.csv\.zst"):
        paper.build_compound_words("smoke", data=data)
    (tmp_path / "cleaned_data" / "65_high-school.csv.zst").write_bytes(b"\x00" * 64)
    with pytest.raises(DatasetError, match="not a readable zstd"):
        data.read("65_high-school")


def test_committed_files_match_the_registry():
    for name in ("paper_compound_words", "paper_factual", "paper_code"):
        assert name in FAMILIES
        ds = load_dataset(name, "smoke")
        assert ds.version == paper.VERSIONS[name] and len(ds.documents) > 0


@pytest.mark.slow  # ~45 s: stratified grouped splits of 14k examples
def test_default_slices_have_30_test_positives():
    for name in ("paper_compound_words", "paper_factual", "paper_code"):
        sizes = task_sizes(load_dataset(name, "default"))
        assert len(sizes) >= 3
        assert sizes["test_positives"].min() >= 30, sizes.sort_values("test_positives").head()


@pytest.mark.slow
def test_real_wheel_matches_committed_files():
    try:
        data = paper.locate(download=False)
    except DatasetError:
        pytest.skip("sae-probes 0.4.2 is not installed or downloaded")
    for name, builder in [
        ("paper_compound_words", paper.build_compound_words),
        ("paper_factual", paper.build_factual),
        ("paper_code", paper.build_code),
    ]:
        for variant in ("smoke", "default"):
            assert builder(variant, data=data).sha256 == load_dataset(name, variant).sha256


def test_strata_and_task_sizes(compound, factual):
    from sparse_probing.datasets import strata

    table = factual.label_table()
    s = strata(table, factual.feature_names)
    assert len(s) == len(table) and all(x.split("=", 1)[0] in factual.feature_names for x in s)
    assert s[table["gender"].notna().to_numpy()].tolist() == [f"gender={v}" for v in table["gender"].dropna()]
    sizes = task_sizes(compound)
    assert list(sizes["task"]) == compound.feature_names  # one task per 0/1 bigram feature
    assert (sizes["positives"] >= sizes["test_positives"]).all() and sizes["test_positives"].sum() > 0
    gender = task_sizes(factual).set_index("task").loc[["gender=female", "gender=male"]]
    assert gender["examples"].nunique() == 1  # one-vs-rest tasks of one feature share its examples
