"""Activation-cache throughput vs a bare full forward pass, and peak memory vs dataset size.

    .venv/bin/python benchmarks/bench_cache.py                      # all three models, writes RESULTS.md
    .venv/bin/python benchmarks/bench_cache.py --models tiny-neox   # one model

Throughput: the same documents (natural_language, default variant), batch 8, context 128, fp32 on CPU.
"full forward" is ``bridge(tokens)`` with logits and no hooks; "bare forward to the last layer" runs the same
length-sorted batches and stops at the last block's ``mlp.hook_post`` (no pooling, no writes); "cache" is
:func:`load_or_compute` for every layer's ``mlp.hook_post`` (alignment, pooling, fp16 writes, checkpoints and
checksums included). "load" is a second :func:`load_or_compute` of the finished entry in a fresh process state
(every file's sha256 verified). Peak RSS: a fresh process caches N and then 4N documents (one layer); it should stay flat because
batches stream to disk.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _results import write_section

from sparse_probing import paths
from sparse_probing.activations import ActivationSpec, _batches, _Done, _pad, load_or_compute
from sparse_probing.datasets import load_dataset
from sparse_probing.datasets.base import tokenize_documents
from sparse_probing.models import load_model

SECTION = "## Activation cache"


def _padded_batches(model, ids: list, batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The cache's own length-sorted batches of these documents, padded as the cache pads them."""
    lengths = np.array([len(x) for x in ids])
    pad = model.tokenizer.pad_token_id or 0
    return [_pad([ids[i] for i in batch], pad) for batch in _batches(lengths, np.arange(len(ids)), batch_size)]


def _full_forward_seconds(model, ids: list, batch_size: int) -> float:
    batches = _padded_batches(model, ids, batch_size)
    start = time.perf_counter()
    with torch.inference_mode():
        for tokens, mask in batches:
            model.bridge(tokens, attention_mask=mask)
    return time.perf_counter() - start


def _bare_forward_seconds(model, ids: list, batch_size: int, last_hook: str) -> float:
    """The same batches as the cache, stopped at ``last_hook`` with nothing read out."""
    batches = _padded_batches(model, ids, batch_size)

    def stop(acts, hook):
        raise _Done

    start = time.perf_counter()
    with torch.inference_mode():
        for tokens, mask in batches:
            try:
                model.bridge.run_with_hooks(tokens, fwd_hooks=[(last_hook, stop)], return_type=None,
                                            attention_mask=mask)  # fmt: skip
            except _Done:
                pass
    return time.perf_counter() - start


def throughput(name: str, n_docs: int, max_length: int, batch_size: int, repeats: int) -> dict:
    """Median over ``repeats`` interleaved runs of each (interleaving spreads background load evenly)."""
    model = load_model(name)
    ds = load_dataset("natural_language", "default").subset(n_docs)
    ids, _ = tokenize_documents(model.tokenizer, [d.text for d in ds.documents], max_length)
    n_tokens = sum(len(x) for x in ids)
    _full_forward_seconds(model, ids[:batch_size], batch_size)  # warm-up
    spec = ActivationSpec(
        model=name, dataset="natural_language", variant="default", max_length=max_length, n_documents=n_docs,
        batch_size=batch_size,
    )  # fmt: skip
    last_hook = f"blocks.{model.n_layers - 1}.mlp.hook_post"
    full, bare, cached, loads, sizes = [], [], [], [], []
    for _ in range(repeats):
        full.append(_full_forward_seconds(model, ids, batch_size))
        bare.append(_bare_forward_seconds(model, ids, batch_size, last_hook))
        with tempfile.TemporaryDirectory() as root:
            start = time.perf_counter()
            acts = load_or_compute(spec, model=model, dataset=ds, root=root)
            cached.append(time.perf_counter() - start)
            sizes.append(sum(f.stat().st_size for f in acts.path.iterdir()) / 2**20)
            paths._sha256_memo.cache_clear()  # as in a new process: every checksum is computed again
            start = time.perf_counter()
            load_or_compute(spec, model=model, dataset=ds, root=root)
            loads.append(time.perf_counter() - start)
    full_s, bare_s, cached_s = statistics.median(full), statistics.median(bare), statistics.median(cached)
    return {
        "model": name,
        "layers": model.n_layers,
        "tokens": n_tokens,
        "full_tok_s": n_tokens / full_s,
        "bare_tok_s": n_tokens / bare_s,
        "cache_tok_s": n_tokens / cached_s,
        "speedup": full_s / cached_s,
        "vs_bare": bare_s / cached_s,
        "entry_mb": statistics.median(sizes),
        "load_s": statistics.median(loads),
        "load_share": statistics.median(loads) / cached_s,
    }


def _rss_child(name: str, n_docs: int, max_length: int, layer: int) -> None:
    model = load_model(name)
    ds = load_dataset("natural_language", "default")
    docs = (ds.documents * (n_docs // len(ds.documents) + 1))[:n_docs]
    ds = dataclasses.replace(
        ds, documents=tuple(dataclasses.replace(d, doc_id=f"{d.doc_id}#{i}") for i, d in enumerate(docs))
    )
    spec = ActivationSpec(model=name, dataset="natural_language", variant="default", layers=(layer,),
                          max_length=max_length)  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with tempfile.TemporaryDirectory() as root:
        load_or_compute(spec, model=model, dataset=ds, root=root)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rss_before_cache_mb": before / 1024, "peak_rss_mb": after / 1024}))


def peak_rss(name: str, n_docs: int, max_length: int, layer: int) -> dict:
    cmd = [sys.executable, __file__, "--rss-child", name, "--n-docs", str(n_docs), "--max-length", str(max_length),
           "--layer", str(layer)]  # fmt: skip
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return {"model": name, "documents": n_docs, **json.loads(out)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="tiny-neox,smollm2-135m,gemma-3-270m")
    parser.add_argument("--n-docs", type=int, default=48)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats; the median is reported")
    parser.add_argument("--rss-model", default="smollm2-135m")
    parser.add_argument("--rss-docs", type=int, default=64, help="N; the memory test also runs 4N")
    parser.add_argument("--rss-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--layer", type=int, default=15, help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    parser.add_argument("--skip-rss", action="store_true", help="skip the peak-memory runs")
    args = parser.parse_args()
    if args.rss_child:
        _rss_child(args.rss_child, args.n_docs, args.max_length, args.layer)
        return

    rows = [throughput(m, args.n_docs, args.max_length, args.batch_size, args.repeats) for m in args.models.split(",")]
    rss = [] if args.skip_rss else [
        peak_rss(args.rss_model, n, args.max_length, args.layer) for n in (args.rss_docs, 4 * args.rss_docs)
    ]  # fmt: skip
    cpu = platform.processor() or platform.machine()
    lines = [
        f"Machine: {os.cpu_count()} CPU cores ({cpu}), no GPU, fp32, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads. Date: {datetime.date.today()}.",
        f"Command: `{' '.join(['.venv/bin/python', 'benchmarks/bench_cache.py', *sys.argv[1:]])}`",
        "",
        f"Throughput on {args.n_docs} natural_language documents, batch {args.batch_size}, context {args.max_length},"
        " every layer's `mlp.hook_post` cached. `vs bare`: caching against a bare forward pass over the same"
        " length-sorted batches that stops at the same last hook (goal >= 0.9x). `vs full`: caching against a full"
        " forward with logits (goal >= 1.2x on SmolLM2). `load`: a second load of the finished entry with every"
        " file's sha256 verified (the checksum cost), and its share of the caching time. Median of interleaved"
        " repeats; wall-clock times on a shared machine.",
        "",
        "| model | layers | tokens | full forward tok/s | bare forward to last layer tok/s | cache tok/s "
        "| vs bare | vs full | entry MB | load s (share) |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *(
            f"| {r['model']} | {r['layers']} | {r['tokens']} | {r['full_tok_s']:.0f} | {r['bare_tok_s']:.0f} "
            f"| {r['cache_tok_s']:.0f} | {r['vs_bare']:.2f}x | {r['speedup']:.2f}x | {r['entry_mb']:.1f} "
            f"| {r['load_s']:.3f} ({r['load_share']:.1%}) |"
            for r in rows
        ),
        "",
    ]
    if rss:
        lines += [
            f"Peak resident memory, {args.rss_model}, one layer, a fresh process per run (goal: flat in N):",
            "",
            "| documents | peak RSS before caching (MB) | peak RSS after caching (MB) |",
            "|---|---|---|",
            *(f"| {r['documents']} | {r['rss_before_cache_mb']:.0f} | {r['peak_rss_mb']:.0f} |" for r in rss),
        ]
    print("\n".join(lines))
    if not args.no_write:
        write_section(SECTION, "\n".join([SECTION, "", *lines]))


if __name__ == "__main__":
    main()
