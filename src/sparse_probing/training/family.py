"""The mini family: four GPT-NeoX (Pythia-architecture) models that differ only in size, and their shared recipe.

Architecture as in Pythia: rotary position embeddings on a quarter of each head's dimensions, attention and MLP in
parallel on the same LayerNorm-ed residual (``use_parallel_residual``), LayerNorm, exact GELU, separate (untied)
embedding and unembedding, ``d_mlp = 4 * d_model``, biases everywhere, no dropout. Heads are 32 wide.

The recipe (:class:`TrainSpec`) is identical for every size: the same token stream in the same order, the same
token budget, batch, context, schedule shape and seeds. Only the peak learning rate depends on width, by the rule
``1e-3 * sqrt(512 / d_model)`` anchored at Pythia-70M (d_model 512, lr 1e-3), as Pythia itself lowers the learning
rate with size.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["MINI_FAMILY", "MiniModelSpec", "TrainSpec", "get_mini_spec", "lr_for_width"]


def lr_for_width(d_model: int) -> float:
    """Peak learning rate for a width: ``1e-3 * sqrt(512 / d_model)``, rounded to 3 significant digits."""
    return float(f"{1e-3 * math.sqrt(512 / d_model):.3g}")


@dataclass(frozen=True)
class MiniModelSpec:
    """One model size."""

    name: str
    """Registry name (``mini-1`` ... ``mini-4``); also the directory under ``data/models/``."""
    n_layers: int
    d_model: int
    n_heads: int
    lr: float
    """Peak learning rate (:func:`lr_for_width`)."""

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"{self.name}: d_model {self.d_model} is not a multiple of n_heads {self.n_heads}")

    @property
    def d_mlp(self) -> int:
        """MLP width (neurons per layer): ``4 * d_model``."""
        return 4 * self.d_model

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def non_embedding_params(self) -> int:
        """Parameters outside the embedding and unembedding: per layer 12 d^2 + 13 d, plus the final LayerNorm."""
        d = self.d_model
        return self.n_layers * (12 * d * d + 13 * d) + 2 * d

    def embedding_params(self, vocab_size: int) -> int:
        """Embedding plus (untied) unembedding."""
        return 2 * vocab_size * self.d_model

    def hf_config(self, vocab_size: int, eot_id: int = 0, max_positions: int = 2048) -> Any:
        """The ``GPTNeoXConfig``."""
        from transformers import GPTNeoXConfig

        return GPTNeoXConfig(
            vocab_size=vocab_size,
            hidden_size=self.d_model,
            num_hidden_layers=self.n_layers,
            num_attention_heads=self.n_heads,
            intermediate_size=self.d_mlp,
            hidden_act="gelu",
            rotary_pct=0.25,
            rotary_emb_base=10000,
            max_position_embeddings=max_positions,
            initializer_range=0.02,
            layer_norm_eps=1e-5,
            use_parallel_residual=True,
            attention_bias=True,
            attention_dropout=0.0,
            hidden_dropout=0.0,
            tie_word_embeddings=False,
            bos_token_id=eot_id,
            eos_token_id=eot_id,
            pad_token_id=eot_id,
            architectures=["GPTNeoXForCausalLM"],
        )


def _mini(name: str, n_layers: int, d_model: int) -> MiniModelSpec:
    return MiniModelSpec(name, n_layers, d_model, d_model // 32, lr_for_width(d_model))


MINI_FAMILY: tuple[MiniModelSpec, ...] = (
    _mini("mini-1", 2, 128),
    _mini("mini-2", 3, 192),
    _mini("mini-3", 4, 256),
    _mini("mini-4", 6, 320),
)
"""Smallest first (the order they are trained in). Non-embedding parameters 0.40M, 1.33M, 3.15M, 7.38M (18.7x)."""


def get_mini_spec(name: str) -> MiniModelSpec:
    for spec in MINI_FAMILY:
        if spec.name == name:
            return spec
    raise KeyError(f"unknown mini model {name!r}; known: {', '.join(s.name for s in MINI_FAMILY)}")


@dataclass(frozen=True)
class TrainSpec:
    """The training recipe shared by every size. Every field but the logging/checkpoint cadence changes the result."""

    token_budget: int = 4_194_304
    """Input tokens per model (``steps * batch_size * seq_len``): 2,048 steps of 8 x 256. Sized so that the four
    models train in about 2 h on two cores (2.7 h even at the measured one-thread speed); see data/models/README.md."""
    batch_size: int = 8
    seq_len: int = 256
    """Context length of the training sequences (packed documents, each preceded by ``<|endoftext|>``)."""
    warmup_frac: float = 0.04
    """Linear warm-up over this fraction of the steps, then cosine decay."""
    min_lr_ratio: float = 0.1
    """The cosine ends at this fraction of the peak learning rate (as Pythia)."""
    weight_decay: float = 0.01
    """AdamW weight decay on matrices (not on biases or LayerNorm), as Pythia."""
    beta1: float = 0.9
    beta2: float = 0.95
    adam_eps: float = 1e-8
    grad_clip: float = 1.0
    init_seed: int = 1234
    """``torch.manual_seed`` before building a model: every size starts from the same seed."""
    data_seed: int = 0
    """Seed of the document shuffle and of the sequence order (the same stream for every size)."""
    eval_every: int = 128
    """Steps between evaluations of the held-out curve slice."""
    curve_sequences: int = 16
    """Held-out sequences per domain for the loss curve (the first ones; sources are interleaved)."""
    final_sequences: int | None = None
    """Held-out sequences per domain for the final held-out loss (None: all, about 160-200 per domain)."""
    check_sequences: int = 2
    """Held-out sequences per domain of the fixed slice whose loss the tests reproduce from the saved weights."""

    def __post_init__(self) -> None:
        if self.token_budget < self.tokens_per_step:
            raise ValueError("token_budget must cover at least one step")

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.seq_len

    @property
    def n_steps(self) -> int:
        return self.token_budget // self.tokens_per_step

    @property
    def warmup_steps(self) -> int:
        return max(1, round(self.warmup_frac * self.n_steps))

    def lr_factor(self, step: int) -> float:
        """Multiplier of the peak learning rate at optimizer step ``step`` (0-based)."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = (step - self.warmup_steps) / max(1, self.n_steps - self.warmup_steps)
        return self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    @property
    def result_fields(self) -> dict[str, Any]:
        """The fields that change the trained weights (cadence fields left out)."""
        d = asdict(self)
        for k in ("eval_every", "curve_sequences", "final_sequences", "check_sequences"):
            d.pop(k)
        return d

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.result_fields, sort_keys=True).encode()).hexdigest()
