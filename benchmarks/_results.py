"""What every benchmark script shares: where the results go and how a section of them is replaced."""

from __future__ import annotations

import datetime
import os
import platform
import re
import sys
from collections.abc import Sequence
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
"""benchmarks/RESULTS.md: one ``## `` section per benchmark, each written by its own script."""


def machine() -> str:
    """The machine in one line: architecture, CPU count, Python, OS."""
    return f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()}"


def run_header(script: str, argv: Sequence[str] | None, machine_text: str | None = None) -> dict[str, str]:
    """What a results section opens with: the machine (``machine_text`` or :func:`machine`), today's date and the
    command that ran ``script`` (a benchmark's ``__file__``) with ``argv`` (the process's arguments when None)."""
    args = sys.argv[1:] if argv is None else list(argv)
    return {
        "machine": machine_text or machine(),
        "date": datetime.date.today().isoformat(),
        "command": f".venv/bin/python benchmarks/{Path(script).name} " + " ".join(args),
    }


def write_section(section: str, text: str, results: Path = RESULTS) -> None:
    """Replace the section of ``results`` headed ``section`` (a ``## `` line) by ``text`` (which starts with that
    heading), or append it; every other section is left as it is."""
    current = results.read_text() if results.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"^{re.escape(section)}\n.*?(?=^## |\Z)", flags=re.MULTILINE | re.DOTALL)
    body = text.rstrip("\n") + "\n\n"
    if pattern.search(current):
        current = pattern.sub(lambda _: body, current)
    else:
        current = current.rstrip("\n") + "\n\n" + body
    results.write_text(current.rstrip("\n") + "\n")
    print(f"wrote the {section!r} section of {results}")
