"""The mini family's tokenizer: byte-level BPE trained on the training split of the corpus.

Built like GPT-NeoX's (Pythia's) tokenizer with the ``tokenizers`` library: NFC normalization, byte-level
pre-tokenization (GPT-2 regex, no prefix space), byte-level decoding, ``<|endoftext|>`` (id 0) as the only special
token. It serves as BOS, EOS and padding; ``tokenizer(text)`` prepends it, exactly as every training document is
preceded by it in the token stream. Saved with ``PreTrainedTokenizerFast.save_pretrained`` to
``data/models/tokenizer/`` and copied next to every model's weights.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .corpus import DOMAINS, CorpusDocument, file_sha256

__all__ = ["EOT", "TokenizerSpec", "load_tokenizer", "tokenizer_dir", "train_tokenizer"]

EOT = "<|endoftext|>"
"""The only special token (id 0): document separator, BOS, EOS and padding."""


def tokenizer_dir(models_dir: str | Path | None = None) -> Path:
    """``data/models/tokenizer`` unless another models directory is given."""
    from sparse_probing.paths import MODELS_DIR

    return Path(models_dir if models_dir is not None else MODELS_DIR) / "tokenizer"


@dataclass(frozen=True)
class TokenizerSpec:
    """How the tokenizer is trained."""

    vocab_size: int = 8192
    """Vocabulary size, special token included. 8k keeps the embedding and unembedding cheap: for the smallest model
    (d_model 128) they are already most of the parameters."""
    min_frequency: int = 2
    """A merge must occur at least this often."""

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


def _wrap(tok: Any) -> Any:
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=EOT, eos_token=EOT, pad_token=EOT, add_bos_token=True
    )
    return fast


def train_tokenizer(
    docs: Sequence[CorpusDocument],
    spec: TokenizerSpec | None = None,
    out_dir: str | Path | None = None,
    *,
    corpus_sha256: str | None = None,
) -> Any:
    """Train on the ``train`` documents of ``docs``; save to ``out_dir`` (default ``data/models/tokenizer``).

    Writes ``tokenizer.json``, ``tokenizer_config.json`` and ``training.json`` (spec, the corpus file's sha256 if
    given, characters and tokens per domain). Returns the ``PreTrainedTokenizerFast``.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    spec = spec or TokenizerSpec()
    texts = [d.text for d in docs if d.split == "train"]
    if not texts:
        raise ValueError("no training documents to train the tokenizer on")
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab_size,
        min_frequency=spec.min_frequency,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer, length=len(texts))
    fast = _wrap(tok)
    out = tokenizer_dir() if out_dir is None else Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out)
    stats: dict[str, dict[str, float]] = {}
    for domain in DOMAINS:
        part = [d.text for d in docs if d.domain == domain and d.split == "train"]
        n_tokens = sum(len(e.ids) for e in tok.encode_batch(part, add_special_tokens=False)) if part else 0
        n_chars = sum(len(t) for t in part)
        stats[domain] = {"chars": n_chars, "tokens": n_tokens, "chars_per_token": round(n_chars / max(1, n_tokens), 3)}
    meta = {
        "spec": asdict(spec),
        "corpus_sha256": corpus_sha256,
        "vocab_size": tok.get_vocab_size(),
        "special_tokens": {EOT: tok.token_to_id(EOT)},
        "train_split": stats,
        "tokenizer_json_sha256": file_sha256(out / "tokenizer.json"),
    }
    (out / "training.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return fast


def load_tokenizer(path: str | Path | None = None) -> Any:
    """The saved tokenizer (default ``data/models/tokenizer``) as a ``PreTrainedTokenizerFast``."""
    from transformers import AutoTokenizer

    p = tokenizer_dir() if path is None else Path(path)
    if not (p / "tokenizer.json").exists():
        raise FileNotFoundError(f"no tokenizer in {p}: train it with `python -m sparse_probing.training tokenizer`")
    return AutoTokenizer.from_pretrained(p)
