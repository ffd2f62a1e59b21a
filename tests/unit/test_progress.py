"""Progress a person can follow: plain lines from the package's bars, and a heartbeat when a chapter is quiet."""

from __future__ import annotations

import io
import time

from sparse_probing import _progress
from sparse_probing._progress import format_seconds, tqdm


def test_bars_write_plain_lines_even_when_disabled(tmp_path, monkeypatch):
    log = tmp_path / "progress.log"
    monkeypatch.setenv(_progress.PROGRESS_ENV, str(log))
    monkeypatch.setattr(_progress, "INTERVAL", 0.0)
    bar = tqdm(total=4, desc="caching m x d", disable=True)
    bar.update(1)
    bar.update(1)
    bar.close()
    for _ in tqdm(range(3), desc="probing", disable=True):
        pass
    lines = log.read_text().splitlines()
    assert "caching m x d: 1/4 (25%)" in lines[0] and "left" in lines[0]
    assert "caching m x d: 2/4 (50%)" in lines[1] and "caching m x d: 2/4 (50%)" in lines[2]  # the closing line
    assert any(line.split(" ", 1)[1].startswith("probing: 3/3 (100%)") for line in lines)


def test_lines_are_throttled_and_absent_without_the_setting(tmp_path, monkeypatch):
    log = tmp_path / "progress.log"
    monkeypatch.setenv(_progress.PROGRESS_ENV, str(log))
    bar = tqdm(total=1000, desc="x", disable=True)
    for _ in range(1000):
        bar.update(1)
    bar.close()
    assert not log.exists()  # a bar done within 30 s writes no line at all (the chapter's heartbeat covers it)
    slow = tqdm(total=2, desc="slow", disable=True)
    slow._line["start"] -= 31  # it has run for more than 30 s
    slow.update(1)
    slow.close()
    assert [line.split(" ", 1)[1] for line in log.read_text().splitlines()][-1].startswith("slow: 1/2 (50%)")
    n = len(log.read_text().splitlines())
    monkeypatch.delenv(_progress.PROGRESS_ENV)
    tqdm(total=2, desc="y", disable=True).close()
    assert len(log.read_text().splitlines()) == n


def test_format_seconds():
    assert format_seconds(42) == "42 s" and format_seconds(185) == "3 min 05 s" and format_seconds(3720) == "1 h 02 min"


def test_watcher_prints_kernel_lines_and_a_heartbeat():
    from sparse_probing.book import _ProgressWatcher

    out = io.StringIO()
    watcher = _ProgressWatcher("03_superposition", interval=0.2, stream=out)
    watcher.start()
    with open(watcher.path, "a") as fh:
        fh.write("12:00:00 caching smollm2 x paper: 10/100 (10%), 5 s, about 45 s left\n")
    time.sleep(0.7)
    watcher.stop()
    text = out.getvalue()
    assert "  [03_superposition] 12:00:00 caching smollm2 x paper: 10/100" in text
    assert "[03_superposition] running, " in text and " elapsed" in text
    assert not watcher.path.exists()
