"""Training of the mini family: one model after another, with checkpoints, resume and loss logging.

The token stream is built once from the corpus and the tokenizer (:func:`prepare_data`, cached under
``data/cache/training/``): the training documents in a seeded shuffle, each preceded by ``<|endoftext|>``, packed
and cut into sequences of ``seq_len`` tokens, the sequences in a seeded permutation. Step ``i`` trains on sequences
``i * B .. (i + 1) * B - 1``, for every model, so the data order depends on nothing but the seeds, and a resumed
run sees exactly the batches an uninterrupted one would.

:func:`train_model` writes a checkpoint (model, optimizer, step, timings) to
``data/cache/training/<name>/checkpoint.pt`` every few minutes, on SIGTERM / Ctrl-C and when its time limit is
reached; the next call resumes from it. Each step appends a row (loss, learning rate, gradient norm, seconds) to
``log.jsonl``; evaluation rows hold the held-out loss per domain. A finished model is written to
``data/models/<name>/`` (fp16 safetensors, config, tokenizer, ``training_log.jsonl``, ``train_summary.json``) by a
rename, so the directory is either complete or absent; a finished model is skipped by later runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from .._progress import tqdm
from .corpus import CORPUS_FILE, DOMAINS, CorpusDocument, corpus_dir, file_sha256, read_corpus
from .family import MINI_FAMILY, MiniModelSpec, TrainSpec
from .tokenizer import EOT, load_tokenizer, tokenizer_dir

__all__ = [
    "STOP",
    "TokenData",
    "TrainPaths",
    "TrainResult",
    "bench_model",
    "build_model",
    "heldout_loss",
    "heldout_sequences",
    "prepare_data",
    "sequence_loss",
    "train_family",
    "train_model",
]

DATA_FORMAT = 2
SUMMARY_FILE = "train_summary.json"
LOG_FILE = "training_log.jsonl"

STOP = threading.Event()
"""Set (by a signal handler, or a test) to make :func:`train_model` checkpoint and return after the current step."""


def _models_dir() -> Path:
    from sparse_probing.paths import MODELS_DIR

    return MODELS_DIR


@dataclass(frozen=True)
class TrainPaths:
    """Where training reads and writes."""

    corpus: Path = field(default_factory=lambda: corpus_dir() / CORPUS_FILE)
    tokenizer: Path = field(default_factory=tokenizer_dir)
    models_dir: Path = field(default_factory=_models_dir)
    """Finished models go to ``<models_dir>/<name>/``."""
    work_dir: Path = field(default_factory=lambda: corpus_dir().parent / "cache" / "training")
    """Token cache, checkpoints and running logs (git-ignored ``data/cache/training``)."""


# ---------------------------------------------------------------------------------------------------- data
@dataclass(frozen=True)
class TokenData:
    """The tokenized corpus: training sequences in training order and held-out sequences per domain."""

    train_NP: np.ndarray
    """uint16 (sequences x seq_len), already in the seeded training order."""
    heldout: dict[str, np.ndarray]
    """Domain -> uint16 (sequences x seq_len), in corpus order."""
    key: str
    """Digest of corpus file, tokenizer file, seq_len, data seed and format: identifies the stream."""
    vocab_size: int
    eot_id: int

    def batch(self, step: int, batch_size: int) -> torch.Tensor:
        """Input ids (B x P, int64) of optimizer step ``step``."""
        rows = self.train_NP[step * batch_size : (step + 1) * batch_size]
        if len(rows) < batch_size:
            raise IndexError(f"step {step}: the corpus holds only {len(self.train_NP)} sequences")
        return torch.from_numpy(rows.astype(np.int64))


def _pack(token_lists: Sequence[Sequence[int]], eot_id: int, seq_len: int) -> np.ndarray:
    stream = np.fromiter(
        (t for ids in token_lists for t in (eot_id, *ids)), dtype=np.uint16, count=sum(len(x) + 1 for x in token_lists)
    )
    n = len(stream) // seq_len
    return stream[: n * seq_len].reshape(n, seq_len)


def _stream_key(paths: TrainPaths, train: TrainSpec) -> str:
    tok_file = paths.tokenizer / "tokenizer.json"
    if not tok_file.exists():
        raise FileNotFoundError(f"no tokenizer at {tok_file}: run `python -m sparse_probing.training tokenizer`")
    if not paths.corpus.exists():
        raise FileNotFoundError(f"no corpus at {paths.corpus}: run `python -m sparse_probing.training corpus`")
    ident = [DATA_FORMAT, file_sha256(paths.corpus), file_sha256(tok_file), train.seq_len, train.data_seed]
    return hashlib.sha256(json.dumps(ident).encode()).hexdigest()


def _raw_tokenizer(paths: TrainPaths) -> Any:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(paths.tokenizer / "tokenizer.json"))
    if tok.get_vocab_size() > 65536:
        raise ValueError("token ids are stored as uint16: the vocabulary must have at most 65,536 entries")
    return tok


def heldout_sequences(
    paths: TrainPaths, train: TrainSpec, docs: Sequence[CorpusDocument] | None = None
) -> dict[str, np.ndarray]:
    """Held-out sequences per domain: the domain's held-out documents, taken in turn from each source (so any
    prefix covers every source), each preceded by ``<|endoftext|>``, packed and cut into ``seq_len`` tokens (the
    last partial sequence dropped)."""
    from sparse_probing.datasets.family import interleave

    tok = _raw_tokenizer(paths)
    docs = read_corpus(paths.corpus, split="heldout") if docs is None else docs
    out = {}
    for domain in DOMAINS:
        by_source: dict[str, list[str]] = {}
        for d in docs:
            if d.split == "heldout" and d.domain == domain:
                by_source.setdefault(d.source, []).append(d.text)
        texts = interleave(list(by_source.values()))
        if texts:
            ids = [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
            out[domain] = _pack(ids, tok.token_to_id(EOT), train.seq_len)
    return out


def prepare_data(paths: TrainPaths, train: TrainSpec, *, verbose: bool = True) -> TokenData:
    """Tokenize the corpus once (cached in ``paths.work_dir``) and return the training and held-out sequences."""
    key = _stream_key(paths, train)
    tok = _raw_tokenizer(paths)
    eot_id = tok.token_to_id(EOT)
    cache = paths.work_dir / f"tokens-{key[:16]}.npz"
    if cache.exists():
        with np.load(cache) as z:
            heldout = {d: z[f"heldout_{d}"] for d in DOMAINS if f"heldout_{d}" in z}
            return TokenData(z["train"], heldout, key, tok.get_vocab_size(), eot_id)
    t0 = time.perf_counter()
    docs = read_corpus(paths.corpus)
    train_docs = [d for d in docs if d.split == "train"]
    random.Random(train.data_seed).shuffle(train_docs)
    ids = [e.ids for e in tok.encode_batch([d.text for d in train_docs], add_special_tokens=False)]
    train_NP = _pack(ids, eot_id, train.seq_len)
    train_NP = train_NP[np.random.default_rng(train.data_seed).permutation(len(train_NP))]
    heldout = heldout_sequences(paths, train, docs)
    paths.work_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(cache.stem + ".tmp.npz")
    np.savez(tmp, train=train_NP, **{f"heldout_{d}": v for d, v in heldout.items()})
    tmp.replace(cache)
    if verbose:
        sizes = ", ".join(f"{d} {len(v)}" for d, v in heldout.items())
        print(
            f"tokenized the corpus in {time.perf_counter() - t0:.0f} s: {train_NP.size:,} training tokens "
            f"({len(train_NP):,} sequences of {train.seq_len}); held-out sequences: {sizes}",
            file=sys.stderr,
        )
    return TokenData(train_NP, heldout, key, tok.get_vocab_size(), eot_id)


# ---------------------------------------------------------------------------------------------------- model + loss
def build_model(spec: MiniModelSpec, train: TrainSpec, vocab_size: int, eot_id: int = 0) -> Any:
    """A freshly initialised ``GPTNeoXForCausalLM`` (``torch.manual_seed(train.init_seed)`` first)."""
    from transformers import GPTNeoXForCausalLM

    torch.manual_seed(train.init_seed)
    model = GPTNeoXForCausalLM(spec.hf_config(vocab_size, eot_id))
    model.train()
    return model


def sequence_loss(logits_BPV: torch.Tensor, tokens_BP: torch.Tensor) -> tuple[float, int]:
    """Summed next-token cross-entropy (nats) over all positions but the last, and the number of predictions."""
    V = logits_BPV.shape[-1]
    loss = F.cross_entropy(
        logits_BPV[:, :-1].reshape(-1, V).float(), tokens_BP[:, 1:].reshape(-1).to(logits_BPV.device), reduction="sum"
    )
    return float(loss), int(tokens_BP[:, 1:].numel())


@torch.inference_mode()
def heldout_loss(model: Any, seqs_NP: np.ndarray, batch_size: int = 8) -> float:
    """Mean next-token loss (nats per token) of ``model`` on the sequences; works for HF models and bridges."""
    was_training = getattr(model, "training", False)
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(seqs_NP), batch_size):
        tokens_BP = torch.from_numpy(seqs_NP[i : i + batch_size].astype(np.int64))
        out = model(tokens_BP)
        logits_BPV = out.logits if hasattr(out, "logits") else out
        s, n = sequence_loss(logits_BPV, tokens_BP)
        total, count = total + s, count + n
    if was_training:
        model.train()
    return total / max(1, count)


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _optimizer(model: torch.nn.Module, spec: MiniModelSpec, train: TrainSpec) -> torch.optim.Optimizer:
    return torch.optim.AdamW(
        _param_groups(model, train.weight_decay),
        lr=spec.lr,
        betas=(train.beta1, train.beta2),
        eps=train.adam_eps,
    )


def _train_step(
    model: Any, opt: torch.optim.Optimizer, spec: MiniModelSpec, train: TrainSpec, data: TokenData, step: int
) -> tuple[float, float, float]:
    """One optimizer step; returns (loss, gradient norm before clipping, learning rate)."""
    lr = spec.lr * train.lr_factor(step)
    for g in opt.param_groups:
        g["lr"] = lr
    tokens_BP = data.batch(step, train.batch_size)
    loss = model(input_ids=tokens_BP, labels=tokens_BP).loss
    loss.backward()
    grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), train.grad_clip))
    opt.step()
    opt.zero_grad(set_to_none=True)
    return float(loss.detach()), grad_norm, lr


# ---------------------------------------------------------------------------------------------------- training
@dataclass(frozen=True)
class TrainResult:
    """What :func:`train_model` did."""

    name: str
    status: Literal["finished", "skipped", "interrupted"]
    steps_done: int
    n_steps: int
    directory: Path | None = None
    """The finished model's directory (``finished`` or ``skipped``)."""


def _identity(spec: MiniModelSpec, train: TrainSpec, data: TokenData) -> dict[str, Any]:
    return {"model": asdict(spec), "train_digest": train.digest, "data_key": data.key}


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _read_log(path: Path, max_step: int) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a hard stop
        if row["step"] <= max_step:
            rows.append(row)
    return rows


def _state_digest(obj: Any, h: Any = None) -> str:
    """sha256 over a checkpoint state's structure and every tensor's bytes (so a damaged tensor is detected)."""
    h = h if h is not None else hashlib.sha256()
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(obj, dict):
        h.update(b"D")
        for key in sorted(obj, key=repr):
            if key != "digest":
                h.update(repr(key).encode())
                _state_digest(obj[key], h)
    elif isinstance(obj, list | tuple):
        h.update(b"L")
        for item in obj:
            _state_digest(item, h)
    else:
        h.update(repr(obj).encode())
    return h.hexdigest()


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    state = {**state, "digest": _state_digest(state)}
    torch.save(state, tmp)
    os.replace(tmp, path)


_CHECKPOINT_KEYS = ("identity", "model", "optimizer", "step", "step_seconds", "wall_seconds")


def _load_checkpoint(path: Path) -> dict[str, Any] | None:
    """A checkpoint's state, or None (with a warning, the file removed) when it is damaged: training then starts
    again from step 0, which ends with the same weights as an undisturbed run."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or any(k not in state for k in _CHECKPOINT_KEYS):
            raise ValueError("it lacks the fields " + ", ".join(k for k in _CHECKPOINT_KEYS if k not in state))
        if "digest" in state and state["digest"] != _state_digest(state):
            raise ValueError("its tensors do not match their checksum")
    except Exception as err:  # a damaged file can fail in many ways (zip, unpickling, shape)
        warnings.warn(f"checkpoint {path} is damaged ({type(err).__name__}); starting this model again from step 0",
                      stacklevel=3)  # fmt: skip
        path.unlink(missing_ok=True)
        return None
    return state


def _eval_row(model: Any, data: TokenData, n: int, steps_done: int, train: TrainSpec) -> dict[str, Any]:
    losses = {d: round(heldout_loss(model, seqs[:n], train.batch_size), 5) for d, seqs in data.heldout.items()}
    return {"kind": "eval", "step": steps_done, "tokens": steps_done * train.tokens_per_step, "heldout": losses}


def train_model(
    spec: MiniModelSpec,
    train: TrainSpec,
    paths: TrainPaths | None = None,
    data: TokenData | None = None,
    *,
    max_seconds: float | None = None,
    stop_after_steps: int | None = None,
    checkpoint_every_s: float = 300.0,
    checkpoint_every_steps: int | None = None,
    force: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train one model to its token budget, resuming from a checkpoint if there is one.

    Returns ``interrupted`` (with a checkpoint written) when ``max_seconds`` of this call have passed, after
    ``stop_after_steps`` steps of this call, or when :data:`STOP` is set. A model whose directory already holds a
    ``train_summary.json`` is skipped unless ``force``.
    """
    paths = paths or TrainPaths()
    final_dir = paths.models_dir / spec.name
    if (final_dir / SUMMARY_FILE).exists() and not force:
        summary = json.loads((final_dir / SUMMARY_FILE).read_text())
        if summary.get("train_digest") != train.digest or summary.get("model") != asdict(spec):
            print(
                f"{spec.name}: {final_dir} was trained with another recipe or size; kept (pass --force to retrain)",
                file=sys.stderr,
            )
        return TrainResult(spec.name, "skipped", summary.get("steps", 0), train.n_steps, final_dir)
    data = data or prepare_data(paths, train)
    n_steps = train.n_steps
    if n_steps * train.batch_size > len(data.train_NP):
        raise ValueError(
            f"the token budget needs {n_steps * train.batch_size:,} sequences but the corpus gives "
            f"{len(data.train_NP):,}: build a larger corpus or lower the budget"
        )
    work = paths.work_dir / spec.name
    work.mkdir(parents=True, exist_ok=True)
    ckpt_path, log_path = work / "checkpoint.pt", work / "log.jsonl"
    identity = _identity(spec, train, data)

    model = build_model(spec, train, data.vocab_size, data.eot_id)
    opt = _optimizer(model, spec, train)
    start, step_seconds, wall_seconds = 0, 0.0, 0.0
    state = _load_checkpoint(ckpt_path) if ckpt_path.exists() and not force else None
    if state is not None:
        if state["identity"] != identity:
            raise RuntimeError(
                f"{ckpt_path} belongs to another model, recipe or corpus; delete {work} (or pass --force) to start over"
            )
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start, step_seconds, wall_seconds = state["step"], state["step_seconds"], state["wall_seconds"]
    rows = _read_log(log_path, start) if start > 0 else []
    log_path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    def checkpoint(steps_done: int) -> None:
        state = {
            "identity": identity,
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "step": steps_done,
            "step_seconds": step_seconds,
            "wall_seconds": wall_seconds + (time.perf_counter() - t_call),
        }
        _save_checkpoint(ckpt_path, state)

    t_call = time.perf_counter()
    last_ckpt = t_call
    step = start
    bar = tqdm(
        total=n_steps, initial=start, desc=spec.name, unit="step", disable=not progress, mininterval=5, file=sys.stderr
    )
    with log_path.open("a") as log:
        if start == 0:
            log.write(json.dumps(_eval_row(model, data, train.curve_sequences, 0, train)) + "\n")
        while step < n_steps:
            t0 = time.perf_counter()
            loss, grad_norm, lr = _train_step(model, opt, spec, train, data, step)
            dt = time.perf_counter() - t0
            step_seconds += dt
            step += 1
            row = {"kind": "train", "step": step, "tokens": step * train.tokens_per_step, "loss": round(loss, 5)}
            row |= {"lr": float(f"{lr:.4g}"), "grad_norm": round(grad_norm, 4), "seconds": round(dt, 4)}
            log.write(json.dumps(row) + "\n")
            if step % train.eval_every == 0 or step == n_steps:
                log.write(json.dumps(_eval_row(model, data, train.curve_sequences, step, train)) + "\n")
            log.flush()
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{train.tokens_per_step / dt:.0f}", refresh=False)
            now = time.perf_counter()
            stop = (
                STOP.is_set()
                or (max_seconds is not None and now - t_call >= max_seconds)
                or (stop_after_steps is not None and step - start >= stop_after_steps)
            )
            due = now - last_ckpt >= checkpoint_every_s or (
                checkpoint_every_steps is not None and step % checkpoint_every_steps == 0
            )
            if stop or due or step == n_steps:
                checkpoint(step)
                last_ckpt = time.perf_counter()
            if stop and step < n_steps:
                bar.close()
                print(f"{spec.name}: stopped at step {step}/{n_steps}; checkpoint {ckpt_path}", file=sys.stderr)
                return TrainResult(spec.name, "interrupted", step, n_steps)
    bar.close()
    wall_seconds += time.perf_counter() - t_call
    _finish(spec, train, paths, data, model, log_path, step_seconds, wall_seconds)
    ckpt_path.unlink(missing_ok=True)
    return TrainResult(spec.name, "finished", n_steps, n_steps, final_dir)


def _finish(
    spec: MiniModelSpec,
    train: TrainSpec,
    paths: TrainPaths,
    data: TokenData,
    model: Any,
    log_path: Path,
    step_seconds: float,
    wall_seconds: float,
) -> Path:
    """Save the model in fp16 with its tokenizer, evaluate the saved weights, write the summary, rename into place."""
    from transformers import GPTNeoXForCausalLM

    final_dir = paths.models_dir / spec.name
    tmp = paths.models_dir / f".{spec.name}.partial"
    if tmp.exists():
        shutil.rmtree(tmp)
    model.eval()
    model.to(torch.float16)
    model.config.dtype = "float16"
    model.save_pretrained(tmp)
    load_tokenizer(paths.tokenizer).save_pretrained(tmp)
    saved = GPTNeoXForCausalLM.from_pretrained(tmp, dtype=torch.float32)
    final = {d: seqs[: train.final_sequences] for d, seqs in data.heldout.items()}
    heldout = {d: heldout_loss(saved, seqs, train.batch_size) for d, seqs in final.items()}
    check = {d: heldout_loss(saved, seqs[: train.check_sequences]) for d, seqs in data.heldout.items()}
    n_final = {d: len(seqs) for d, seqs in final.items()}
    total = sum(heldout[d] * n_final[d] for d in heldout) / max(1, sum(n_final.values()))
    n_params = sum(p.numel() for p in saved.parameters())
    embed = saved.gpt_neox.embed_in.weight.numel() + saved.get_output_embeddings().weight.numel()
    summary = {
        "name": spec.name,
        "model": asdict(spec),
        "d_mlp": spec.d_mlp,
        "params_total": n_params,
        "params_non_embedding": n_params - embed,
        "train": train.result_fields,
        "train_digest": train.digest,
        "data_key": data.key,
        "corpus_sha256": file_sha256(paths.corpus),
        "tokenizer_sha256": file_sha256(paths.tokenizer / "tokenizer.json"),
        "steps": train.n_steps,
        "tokens": train.n_steps * train.tokens_per_step,
        "step_seconds": round(step_seconds, 1),
        "wall_seconds": round(wall_seconds, 1),
        "tokens_per_second": round(train.n_steps * train.tokens_per_step / max(step_seconds, 1e-9), 1),
        "torch_threads": torch.get_num_threads(),
        "heldout_loss": {**{d: round(v, 5) for d, v in heldout.items()}, "all": round(total, 5)},
        "heldout_sequences": n_final,
        "check_loss": {d: round(v, 6) for d, v in check.items()},
        "check_slice": {"first_sequences_per_domain": train.check_sequences, "seq_len": train.seq_len},
        "weights_dtype": "float16",
        "versions": {"torch": torch.__version__, "transformers": _version("transformers")},
        "git_commit": _git_commit(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    shutil.copyfile(log_path, tmp / LOG_FILE)
    (tmp / SUMMARY_FILE).write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    if final_dir.exists():
        shutil.rmtree(final_dir)
    tmp.rename(final_dir)
    print(f"{spec.name}: finished; held-out loss {summary['heldout_loss']}; saved to {final_dir}", file=sys.stderr)
    return final_dir


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def train_family(
    specs: Sequence[MiniModelSpec] = MINI_FAMILY,
    train: TrainSpec | None = None,
    paths: TrainPaths | None = None,
    *,
    max_seconds: float | None = None,
    force: bool = False,
    progress: bool = True,
    checkpoint_every_s: float = 300.0,
) -> list[TrainResult]:
    """Train the models one after another (smallest first), skipping finished ones, within ``max_seconds`` overall."""
    train = train or TrainSpec()
    paths = paths or TrainPaths()
    data: TokenData | None = None
    results: list[TrainResult] = []
    t0 = time.perf_counter()
    for spec in specs:
        left = None if max_seconds is None else max_seconds - (time.perf_counter() - t0)
        if (left is not None and left <= 0) or STOP.is_set():
            results.append(TrainResult(spec.name, "interrupted", 0, train.n_steps))
            continue
        done = (paths.models_dir / spec.name / SUMMARY_FILE).exists() and not force
        if data is None and not done:
            data = prepare_data(paths, train)
        results.append(
            train_model(
                spec,
                train,
                paths,
                data,
                max_seconds=left,
                force=force,
                progress=progress,
                checkpoint_every_s=checkpoint_every_s,
            )
        )
        if results[-1].status == "skipped":
            print(f"{spec.name}: already trained ({results[-1].directory}); skipped", file=sys.stderr)
    return results


# ---------------------------------------------------------------------------------------------------- speed
def bench_model(
    spec: MiniModelSpec, train: TrainSpec, data: TokenData, steps: int = 60, warmup: int = 3
) -> dict[str, Any]:
    """Train ``steps`` real steps (nothing saved) and measure throughput; the first ``warmup`` steps are not timed."""
    model = build_model(spec, train, data.vocab_size, data.eot_id)
    opt = _optimizer(model, spec, train)
    times, losses = [], []
    for step in range(steps):
        t0 = time.perf_counter()
        loss, _, _ = _train_step(model, opt, spec, train, data, step)
        if step >= warmup:
            times.append(time.perf_counter() - t0)
        losses.append(loss)
    t0 = time.perf_counter()
    heldout_loss(model, next(iter(data.heldout.values()))[: train.curve_sequences], train.batch_size)
    eval_s = time.perf_counter() - t0
    per_step = float(np.median(times))
    n_params = sum(p.numel() for p in model.parameters())
    return {
        "name": spec.name,
        "params_non_embedding": spec.non_embedding_params,
        "params_total": n_params,
        "steps": steps,
        "torch_threads": torch.get_num_threads(),
        "median_step_s": round(per_step, 4),
        "tokens_per_second": round(train.tokens_per_step / per_step, 1),
        "mean_tokens_per_second": round(train.tokens_per_step * len(times) / sum(times), 1),
        "eval_seconds_per_domain_slice": round(eval_s, 2),
        "first_loss": round(losses[0], 4),
        "last_loss": round(losses[-1], 4),
    }
