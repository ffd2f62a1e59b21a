"""Neurons against sparse-autoencoder latents: the same tests on three bases of one layer.

Gurnee et al. (2023) probe MLP neurons and find that early layers hold compound words in superposition: the best
single neuron also fires on unrelated n-grams, a sparse combination of neurons is specific. Dictionary learning with
sparse autoencoders (SAEs) is the later answer to superposition: it looks for a basis in which each feature has a
direction of its own. This chapter trains SAEs here (:mod:`sparse_probing.analysis.sae`) and puts their latents
beside the neurons they were trained on, and beside a Haar-random rotation of the same neurons, in the tests of this
book:

1. **Real models** (per model, one early layer, ``blocks.{l}.mlp.hook_post``: the layer where the superposition
   chapter found the compound words decoded). A TopK SAE is trained on the activations at every token position of
   the training split's compound-word contexts and of ordinary text (cached by the content of those activations and
   the hyperparameters). Its quality: fraction of variance explained (FVE), L0 and dead latents on the held-out test
   positions, and the model's loss with the reconstruction spliced in (against the site mean-ablated). Then, on the
   paper's bigrams: k-sparse probes on the balanced task (the exhaustive best single unit, and ``method`` at every k
   of ``ks``) in each basis; and the broad-sample specificity of the superposition chapter
   (:mod:`sparse_probing.analysis.specificity`): per bigram and basis, the best single unit (among the
   :data:`~sparse_probing.probes.single.N_FINALISTS` units with the best training ROC-AUC, chosen by average
   precision on the validation split's broad sample) read at every token position of the test split's broad sample.
2. **Toy models with known features** (:mod:`sparse_probing.analysis.toy_models`). An SAE on each toy's hidden
   neurons; per represented half-feature, the best single neuron and the best single latent on a held-out balanced
   task (ROC-AUC), whether the dedicated rule (:func:`~sparse_probing.analysis.statistics.is_dedicated`) fires, and
   whether the unit it names is truly dedicated (ground truth for neurons; the same rule on the latents' responses to
   single half-features for latents); and the average precision of each on the toy's own input distribution, the toy
   analogue of the broad sample.

Claims (:mod:`sparse_probing.analysis.verdicts`): on the real layer, the best single latent is more specific to a
compound word than the best single neuron (test AP, paired over bigrams; one part per model); on the toys, where the
truth is known, the best single latent recovers a superposed half-feature better than the best single neuron (AP,
paired over superposed half-features).

:func:`run` returns an :class:`SAEResult` of tidy tables; :meth:`SAEResult.claims` builds the claim records;
:mod:`sparse_probing.chapters.sae_report` turns the result into the chapter's tables, figures and sentences.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..analysis.sae import SAEConfig
from ._config import ChapterConfig

__all__ = [
    "BASES",
    "CHAPTER",
    "SINGLE",
    "SAEChapterConfig",
    "SAEResult",
    "broad_table",
    "false_positive_rates",
    "k_table",
    "paired",
    "real_claim",
    "run",
    "toy_claim",
    "toy_table",
]

CHAPTER = "07_sae"
BASES = ("neurons", "SAE latents", "random rotation")
SINGLE = "single unit"
CLAIM_REAL = "an SAE latent is more specific than a neuron"
CLAIM_TOY = "SAE latents recover superposed features (toys)"
PAPER = (
    "early-layer features are in superposition: the best single neuron for a compound word also fires on unrelated "
    "n-grams, only a sparse combination of neurons is specific (the paper trains no SAE: a basis whose single "
    "directions are specific is what its finding predicts dictionary learning can find)"
)
MIN_EFFECT_SOURCE = (
    "the superposition chapter's minimal effect for the same measure (average precision over every held-out token "
    "position): a gain under 0.10 would leave the single latent about as specific as the single neuron"
)
TOY_BOOT = 5000
"""Bootstrap resamples of the intervals over bigrams and half-features."""


@dataclass(frozen=True)
class SAEChapterConfig(ChapterConfig):
    """Parameters of the SAE chapter (one field per notebook parameter)."""

    models: tuple[str, ...] = ("smollm2-135m", "mini-4")
    """Models whose MLP layer is compared (the first carries the claim's headline numbers; each is a part)."""
    layers: Mapping[str, int] = field(default_factory=lambda: {"smollm2-135m": 3, "mini-4": 1})
    """Per model, the layer compared (``blocks.{l}.mlp.hook_post``)."""
    cache_layers: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    """Per model, the layers of the activation cache entry to read (the superposition chapter's, to share its entry;
    models not listed: the compared layer alone)."""
    family: str = "paper_compound_words"
    """Compound-word family of the probing tasks."""
    variant: str = "default"
    """Dataset size variant."""
    n_documents: int | None = None
    """Use only the first n documents of the family (None: all)."""
    max_length: int = 128
    """Context length in tokens."""
    corpus: str = "natural_language"
    """Family of ordinary text in the broad samples and the SAE's training text."""
    corpus_documents: int = 300
    """Ordinary texts in each broad sample (validation and test), as in the superposition chapter."""
    sae_documents: int = 300
    """Further ordinary texts in the SAE's training text."""
    sae_contexts: int = 1500
    """Training-split compound-word contexts in the SAE's training text (at most)."""
    sae_positions: int = 60_000
    """Token positions the SAE trains on (a seeded sample of its training text's positions)."""
    sae_expansion: float = 2.0
    """Latents per neuron of the layer."""
    sae_k: int = 32
    """Latents kept per position (TopK)."""
    sae_steps: int = 600
    """Adam steps of the SAE."""
    sae_batch: int = 256
    """Positions per step."""
    sae_lr: float = 1e-3
    """Adam learning rate."""
    loss_documents: int = 100
    """Held-out ordinary texts for the loss with the reconstruction spliced in."""
    ks: tuple[int, ...] = (1, 2, 4, 5, 8, 16)
    """k of the balanced-task sparse probes (1, 2, 5 as SAEBench, and the book's grid)."""
    method: str = "mean_diff"
    """Sparse probe of the balanced task (a ranker or ``telescopic``)."""
    min_positives: int = 10
    """A bigram is probed only with at least this many positives and negatives."""
    toy_activations: tuple[str, ...] = ("relu", "gated")
    """Toy twins (see :data:`~sparse_probing.analysis.toy_models.ACTIVATIONS`)."""
    toy_probabilities: tuple[float, ...] = (0.1, 0.03)
    """Feature probabilities of the toys (sparse: where superposition arises)."""
    toy_seeds: tuple[int, ...] = (0, 1)
    """One toy per seed and cell."""
    toy_features: int = 20
    """Features n of each toy."""
    toy_hidden: int = 10
    """Hidden neurons m of each toy."""
    toy_steps: int = 1500
    """Adam steps per toy."""
    toy_latents: int = 40
    """Latents of each toy's SAE (2n: one per half-feature)."""
    toy_k: int = 3
    """Latents kept per example by each toy's SAE."""
    toy_sae_steps: int = 1500
    """Adam steps of each toy's SAE."""
    toy_sae_rows: int = 20_000
    """Examples each toy's SAE trains on."""
    toy_train: int = 300
    """Training rows of each toy's balanced task (the book's size)."""
    toy_test: int = 2000
    """Validation and test rows of each toy's balanced task."""
    toy_natural: int = 10_000
    """Examples of each sample of a toy's own input distribution (validation and test; the AP of the toy claim)."""
    seed: int = 0
    """Seed of the split, the rotation, the SAEs and the toys' samples."""

    def __post_init__(self) -> None:
        need = self.require
        need(bool(self.models), "models is empty; name at least one model, e.g. ['smollm2-135m']")
        need(len(set(self.models)) == len(self.models), f"models repeat: {list(self.models)}")
        missing = [m for m in self.models if m not in self.layers]
        need(not missing, f"layers gives no layer for {missing}; give one per model, e.g. {{'{self.models[0]}': 3}}")
        need(all(v >= 0 for v in self.layers.values()), f"layers must be non-negative, got {dict(self.layers)}")
        for model, cached in self.cache_layers.items():
            need(model in self.models, f"cache_layers names {model!r}, which is not among models {list(self.models)}")
            need(self.layers[model] in cached, f"cache_layers[{model!r}] must include its layer {self.layers[model]}")
        need(self.n_documents is None or self.n_documents >= 2, f"n_documents must be >= 2, got {self.n_documents}")
        need(self.max_length >= 2, f"max_length must be at least 2, got {self.max_length}")
        for name in ("corpus_documents", "sae_documents", "sae_contexts", "loss_documents"):
            need(getattr(self, name) >= 0, f"{name} must be 0 or more, got {getattr(self, name)}")
        need(
            self.sae_contexts + self.sae_documents > 0, "sae_contexts and sae_documents are both 0: the SAE needs text"
        )
        need(self.sae_positions >= 100, f"sae_positions must be at least 100, got {self.sae_positions}")
        need(self.sae_expansion > 0, f"sae_expansion must be positive, got {self.sae_expansion}")
        for name in ("sae_k", "sae_steps", "sae_batch", "toy_k", "toy_sae_steps", "toy_steps", "toy_latents"):
            need(getattr(self, name) >= 1, f"{name} must be at least 1, got {getattr(self, name)}")
        need(self.sae_lr > 0, f"sae_lr must be positive, got {self.sae_lr}")
        need(bool(self.ks) and self.ks[0] == 1, f"ks must start at 1 (the single unit), got {list(self.ks)}")
        need(list(self.ks) == sorted(set(self.ks)), f"ks must increase without repeats, got {list(self.ks)}")
        from ..analysis.toy_models import ACTIVATIONS
        from ..probes import RANKERS

        need(self.method in (*RANKERS, "telescopic"), f"method must be a ranker or 'telescopic', got {self.method!r}")
        need(self.min_positives >= 2, f"min_positives must be at least 2, got {self.min_positives}")
        wrong = [a for a in self.toy_activations if a not in ACTIVATIONS]
        need(not wrong, f"toy_activations must be among {ACTIVATIONS}, got {wrong}")
        need(all(0 < p <= 1 for p in self.toy_probabilities), f"toy_probabilities must lie in (0, 1]: "
             f"{list(self.toy_probabilities)}")  # fmt: skip
        need(self.toy_features >= 2 and self.toy_hidden >= 1, "toy_features must be >= 2 and toy_hidden >= 1")
        need(self.toy_k <= self.toy_latents, f"toy_k ({self.toy_k}) cannot exceed toy_latents ({self.toy_latents})")
        need(self.toy_sae_rows >= 100, f"toy_sae_rows must be at least 100, got {self.toy_sae_rows}")
        need(self.toy_train >= 20 and self.toy_test >= 20, "toy_train and toy_test must be at least 20")
        need(self.toy_natural >= 100, f"toy_natural must be at least 100, got {self.toy_natural}")

    def sae_config(self, d: int) -> SAEConfig:
        """The SAE of a layer of width ``d``."""
        n_latents = max(self.sae_k, round(self.sae_expansion * d))
        return SAEConfig(n_latents=n_latents, k=self.sae_k, n_steps=self.sae_steps, batch_size=self.sae_batch,
                         lr=self.sae_lr, seed=self.seed)  # fmt: skip

    @property
    def toy_sae(self) -> SAEConfig:
        return SAEConfig(n_latents=self.toy_latents, k=self.toy_k, n_steps=self.toy_sae_steps, batch_size=256,
                         lr=3e-3, aux_k=min(16, self.toy_latents), dead_after=5_000, seed=self.seed)  # fmt: skip


@dataclass(frozen=True)
class SAEResult:
    """What :func:`run` measured: tidy tables."""

    config: SAEChapterConfig
    quality: pd.DataFrame
    """Per model: ``model, layer, d, n_latents, k, train_positions, fve, l0, dead, dead_share, clean, spliced,
    mean_ablated, recovered, train_s, cached, test_positions``."""
    probes: pd.DataFrame
    """Balanced task, per model, basis, bigram and scorer: ``model, basis, task, scorer, k, f1_test, roc_auc_test,
    test_positives``."""
    broad: pd.DataFrame
    """Broad sample, per model, basis and bigram, the best single unit: ``model, basis, task, unit, val_ap, ap,
    precision_at_n, fire_rate, recall, n_targets, n_positions``."""
    toys: pd.DataFrame
    """Per toy: ``toy, activation, p, seed, loss, n_represented, n_dedicated, n_superposed, fve, l0, dead,
    n_dedicated_latents``."""
    toy_features: pd.DataFrame
    """Per toy and represented half-feature: ``toy, half, status`` and per basis (``neuron_*``, ``latent_*``):
    ``unit, auc`` (balanced test ROC-AUC), ``rule`` (the dedicated rule fires), ``true`` (the unit is dedicated to the
    half-feature by ground truth), ``ap`` (natural sample, unit chosen on a validation sample); ``positives``."""
    frequencies: Mapping[str, np.ndarray] = field(default_factory=dict)
    """Per model: each latent's firing frequency on the held-out test positions."""
    datasets: Mapping[str, str] = field(default_factory=dict)
    """Versioned keys of the datasets read."""
    seconds: float = 0.0

    def claims(self) -> list[Any]:
        """The two claim records: :func:`real_claim` and :func:`toy_claim`."""
        return [real_claim(self.broad, self.quality, self.probes), toy_claim(self.toy_features)]

    def metrics(self, claims: Sequence[Any] | None = None) -> dict[str, Any]:
        """Plain values for :func:`sparse_probing.results.save_results`."""
        claims = self.claims() if claims is None else claims
        return {
            "claims": [c.to_dict() for c in claims],
            "quality": self.quality,
            "probes": self.probes,
            "by_k": k_table(self.probes),
            "broad": self.broad,
            "broad_summary": broad_table(self.broad),
            "toys": self.toys,
            "toy_features": self.toy_features,
            "toy_summary": toy_table(self.toy_features),
        }


# ---------------------------------------------------------------------------------------------- real models
def _positions_acts(lm: Any, sample: Any, hook: str, d: int) -> np.ndarray:
    """Activations (positions, d) at ``hook`` for every scored position of a broad sample."""
    from ..analysis.specificity import readout

    return readout(lm, sample, {hook: np.eye(d, dtype=np.float32)})[hook]


def _columns(basis: str, A_PD: np.ndarray, cols: np.ndarray, sae: Any, R_DD: np.ndarray) -> np.ndarray:
    """Basis units ``cols`` at every position of a broad sample, from its activations ``A``."""
    if basis == "neurons":
        return np.asarray(A_PD[:, cols], dtype=np.float32)
    if basis == "random rotation":
        return (A_PD @ R_DD[:, cols]).astype(np.float32)
    out = [sae.encode(A_PD[s : s + 8192])[:, cols] for s in range(0, len(A_PD), 8192)]
    return np.concatenate(out).astype(np.float32)


def _model_study(name: str, config: SAEChapterConfig) -> dict[str, Any]:
    from ..analysis.sae import load_or_train, sae_quality, spliced_losses
    from ..analysis.specificity import build_broad_sample, specificity
    from ..datasets import load_dataset
    from ..metrics import binary_metrics
    from ..models import load_model
    from ..probes import fit_method, random_orthogonal, single_neuron_table
    from ..probes.single import finalists, select_neuron
    from ..study import binary_tasks, cache_for, dataset_of
    from .superposition import _split

    lm = load_model(name)
    layer = config.layers[name]
    if layer >= lm.n_layers:
        raise ValueError(f"{name} has {lm.n_layers} layers; layer {layer} does not exist")
    hook, d = f"blocks.{layer}.mlp.hook_post", int(lm.d_mlp)
    acts = cache_for(lm, config.family, config.variant, n_documents=config.n_documents, max_length=config.max_length,
                     layers=config.cache_layers.get(name, (layer,)), batch_size=32)  # fmt: skip
    examples = acts.examples
    split = _split(examples, acts.features, config.seed)
    tasks = binary_tasks(examples, acts.features, min_positives=config.min_positives,
                         min_negatives=config.min_positives)  # fmt: skip

    def rows(y: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return idx[np.isfinite(y[idx])]

    tasks = {t: y for t, y in tasks.items()
             if all(np.unique(y[rows(y, p)]).size == 2 for p in (split.train, split.val, split.test))}  # fmt: skip
    if not tasks:
        raise ValueError(f"{config.family}: no bigram has both classes in its training, validation and test rows")

    # texts: the broad samples of the superposition chapter, and the SAE's training text
    data = dataset_of(acts)
    corpus = load_dataset(config.corpus, config.variant) if config.corpus else None
    ordinary = [doc.text for doc in corpus.documents] if corpus is not None else []
    n_broad = 2 * config.corpus_documents
    doc_of = examples["doc"].to_numpy()
    texts_of = {part: [data.documents[i].text for i in sorted(set(doc_of[idx].tolist()))]
                for part, idx in (("train", split.train), ("val", split.val), ("test", split.test))}  # fmt: skip
    samples = {
        "train": {config.family: texts_of["train"][: config.sae_contexts],
                  config.corpus: ordinary[n_broad : n_broad + config.sae_documents]},
        "val": {config.family: texts_of["val"], config.corpus: ordinary[1:n_broad:2]},
        "test": {config.family: texts_of["test"], config.corpus: ordinary[0:n_broad:2]},
    }  # fmt: skip
    built = {part: build_broad_sample(lm.tokenizer, {k: v for k, v in texts.items() if k and v}, list(tasks),
                                      max_length=config.max_length) for part, texts in samples.items()}  # fmt: skip
    A = {part: _positions_acts(lm, sample, hook, d) for part, sample in built.items()}

    # the SAE, its quality and the spliced loss
    rng = np.random.default_rng(config.seed)
    train_rows = np.sort(rng.permutation(len(A["train"]))[: config.sae_positions])
    X_train = np.ascontiguousarray(A.pop("train")[train_rows])
    sae = load_or_train(X_train, config.sae_config(d))
    quality = {"model": name, "layer": layer, "d": d, "n_latents": sae.module.n_latents, "k": sae.config.k,
               "train_positions": len(X_train), **sae_quality(sae, A["test"]),
               "train_s": float(sae.history.get("seconds", float("nan"))), "cached": sae.cached,
               "test_positions": len(A["test"])}  # fmt: skip
    loss_texts = ordinary[0:n_broad:2][: config.loss_documents]
    if loss_texts:
        quality.update(spliced_losses(lm, hook, sae, loss_texts, mean_activation=X_train.mean(0),
                                      max_length=config.max_length))  # fmt: skip
    frequency = np.concatenate([(sae.encode(A["test"][s : s + 8192]) > 0).sum(0, keepdims=True)
                                for s in range(0, len(A["test"]), 8192)]).sum(0) / len(A["test"])  # fmt: skip
    del X_train

    # three bases of the cached balanced-task activations
    X = np.asarray(acts.layer(layer), dtype=np.float32)
    R = random_orthogonal(d, config.seed).astype(np.float32)
    bases = {"neurons": X, "SAE latents": sae.encode(X), "random rotation": X @ R}
    probe_rows, broad_rows = [], []
    for basis, B in bases.items():
        chosen: dict[str, pd.DataFrame] = {}
        for task, y in tasks.items():
            tr, va, te = rows(y, split.train), rows(y, split.val), rows(y, split.test)
            y_tr, y_va, y_te = (y[i].astype(int) for i in (tr, va, te))
            common = {"model": name, "basis": basis, "task": task, "test_positives": int(y_te.sum())}
            table = single_neuron_table(B[tr], y_tr, B[va], y_va)
            best = table.iloc[select_neuron(table, "roc_auc")]
            score = best["sign"] * (B[te, int(best["neuron"])] - best["threshold"])
            m = binary_metrics(y_te, score > 0, score)
            probe_rows.append({**common, "scorer": SINGLE, "k": 1, "f1_test": m["f1"], "roc_auc_test": m["roc_auc"]})
            for fit in fit_method(config.method, B[tr], y_tr, list(config.ks), random_state=config.seed):
                s = fit.decision_function(B[te])
                m = binary_metrics(y_te, s > 0, s)
                probe_rows.append({**common, "scorer": f"{config.method} k={fit.k}", "k": fit.k, "f1_test": m["f1"],
                                   "roc_auc_test": m["roc_auc"]})  # fmt: skip
            chosen[task] = table.iloc[finalists(table)][["neuron", "sign", "threshold"]]
        # broad sample: the finalists of every bigram, chosen on validation AP, reported on test
        cols = np.unique(np.concatenate([c["neuron"].to_numpy() for c in chosen.values()])).astype(int)
        where = {int(c): j for j, c in enumerate(cols)}
        cols_P = {part: _columns(basis, A[part], cols, sae, R) for part in ("val", "test")}
        for task, cands in chosen.items():
            val_ap = []
            for unit, sign, threshold in cands.itertuples(index=False):
                s = sign * (cols_P["val"][:, where[int(unit)]] - threshold)
                val_ap.append(specificity(s, built["val"].labels[task])["ap"])
            j = int(np.nanargmax(np.nan_to_num(np.asarray(val_ap, dtype=float), nan=-1.0)))
            unit, sign, threshold = cands.iloc[j]
            s = sign * (cols_P["test"][:, where[int(unit)]] - threshold)
            broad_rows.append({"model": name, "basis": basis, "task": task, "unit": int(unit), "val_ap": val_ap[j],
                               **specificity(s, built["test"].labels[task])})  # fmt: skip
    keys = {config.family: acts.dataset_key}
    if corpus is not None:
        keys[config.corpus] = corpus.key
    return {"quality": quality, "probes": probe_rows, "broad": broad_rows, "frequency": frequency, "datasets": keys}


# ---------------------------------------------------------------------------------------------- toys
def _toy_study(config: SAEChapterConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    from ..analysis.sae import load_or_train, sae_quality, unit_dedication
    from ..analysis.specificity import specificity
    from ..analysis.statistics import is_dedicated
    from ..analysis.toy_models import (
        ToyConfig,
        ground_truth,
        half_feature_inputs,
        probe_data,
        sample_features,
        train_toy,
    )
    from ..probes import single_neuron_table
    from ..probes.single import finalists, select_neuron

    toy_rows, feature_rows = [], []
    cells = [(a, p, s) for a in config.toy_activations for p in config.toy_probabilities for s in config.toy_seeds]
    for i, (activation, p, seed) in enumerate(cells):
        toy = train_toy(ToyConfig(n_features=config.toy_features, n_hidden=config.toy_hidden, feature_probability=p,
                                  activation=activation, n_steps=config.toy_steps, seed=seed))  # fmt: skip
        truth = ground_truth(toy)
        rng = np.random.default_rng([config.seed, i])
        sae = load_or_train(toy.hidden(sample_features(toy.config, config.toy_sae_rows, rng)), config.toy_sae)
        x_HF = half_feature_inputs(config.toy_features)
        zero = np.zeros((1, config.toy_features), dtype=np.float32)
        response = sae.encode(toy.hidden(x_HF)) - sae.encode(toy.hidden(zero))
        f = truth.features
        latent_dedicated = unit_dedication(response, f["represented"].to_numpy())
        natural = {part: sample_features(toy.config, config.toy_natural, rng) for part in ("val", "test")}
        hidden = {part: toy.hidden(x) for part, x in natural.items()}
        latents = {part: sae.encode(h) for part, h in hidden.items()}
        q = sae_quality(sae, hidden["test"])
        toy_rows.append({"toy": i, "activation": activation, "p": p, "seed": seed, "loss": toy.final_loss,
                         **{k: v for k, v in truth.summary.items() if k in ("n_represented", "n_dedicated",
                                                                            "n_superposed")},
                         "fve": q["fve"], "l0": q["l0"], "dead": q["dead"],
                         "n_dedicated_latents": int((latent_dedicated >= 0).sum())})  # fmt: skip
        n = config.toy_train + 2 * config.toy_test
        for row in f[f["represented"]].itertuples(index=False):
            h = int(row.half)
            X, y = probe_data(toy, h, n, rng)
            Z = sae.encode(X)
            tr, va, te = np.split(np.arange(n), [config.toy_train, config.toy_train + config.toy_test])
            feature, sign = h // 2, (1.0 if h % 2 == 0 else -1.0)
            target = {part: sign * x[:, feature] > 0 for part, x in natural.items()}
            out = {"toy": i, "activation": activation, "p": p, "seed": seed, "half": h, "status": row.status,
                   "positives": int(target["test"].sum())}  # fmt: skip
            owner = {"neuron": int(row.dedicated_neuron), "latent": int(latent_dedicated[h])}
            for prefix, B, nat in (("neuron", X, hidden), ("latent", Z, latents)):
                table = single_neuron_table(B[tr], y[tr], B[va], y[va])
                best = table.iloc[select_neuron(table, "roc_auc")]
                unit = int(best["neuron"])
                s_te = best["sign"] * B[te, unit]
                auc = _auc(y[te], s_te)
                cands = table.iloc[finalists(table)]
                aps = [specificity(c.sign * nat["val"][:, int(c.neuron)], target["val"])["ap"]
                       for c in cands.itertuples(index=False)]  # fmt: skip
                c = cands.iloc[int(np.nanargmax(np.nan_to_num(np.asarray(aps, dtype=float), nan=-1.0)))]
                ap = specificity(c["sign"] * nat["test"][:, int(c["neuron"])], target["test"])["ap"]
                out.update({f"{prefix}_unit": unit, f"{prefix}_auc": auc, f"{prefix}_rule": bool(is_dedicated(auc)),
                            f"{prefix}_true": owner[prefix] == unit, f"{prefix}_ap": ap})  # fmt: skip
            feature_rows.append(out)
    return pd.DataFrame(toy_rows), pd.DataFrame(feature_rows)


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, score)) if np.unique(y).size == 2 else float("nan")


# ---------------------------------------------------------------------------------------------- run
def run(config: SAEChapterConfig) -> SAEResult:
    """Train the SAEs, run the three-basis tests on every model and on the toys (see the module docstring)."""
    t0 = time.perf_counter()
    studies = [_model_study(name, config) for name in config.models]
    toys, toy_features = _toy_study(config)
    datasets: dict[str, str] = {}
    for s in studies:
        datasets.update(s["datasets"])
    return SAEResult(
        config=config,
        quality=pd.DataFrame([s["quality"] for s in studies]),
        probes=pd.DataFrame([r for s in studies for r in s["probes"]]),
        broad=pd.DataFrame([r for s in studies for r in s["broad"]]),
        toys=toys,
        toy_features=toy_features,
        frequencies={s["quality"]["model"]: s["frequency"] for s in studies},
        datasets=datasets,
        seconds=time.perf_counter() - t0,
    )


# ---------------------------------------------------------------------------------------------- claims
def paired(a: pd.Series, b: pd.Series, seed: int = 0) -> dict[str, float]:
    """:func:`~sparse_probing.analysis.statistics.paired_bootstrap` of ``a - b`` over the tasks (rows) they share."""
    from ..analysis.statistics import paired_bootstrap

    return paired_bootstrap(a.to_numpy(), b.to_numpy(), n_boot=TOY_BOOT, random_state=seed)


def real_claim(broad: pd.DataFrame, quality: pd.DataFrame, probes: pd.DataFrame, *, seed: int = 0) -> Any:
    """The claim "on the same layer, the best single SAE latent is more specific for a compound word than the best
    single neuron": per model, test AP over the broad sample of the best single latent minus that of the best single
    neuron (each chosen per bigram on the validation broad sample), paired bootstrap over bigrams, minimal effect
    :data:`~sparse_probing.chapters.broad.MIN_SPECIFICITY`. The first model carries the headline numbers; with
    several models each is a part."""
    from ..analysis.statistics import minimal_detectable_effect
    from ..analysis.verdicts import ClaimEvidence, format_ci
    from .broad import MIN_SPECIFICITY

    parts = []
    for model in dict.fromkeys(broad["model"]):
        wide = broad[broad["model"] == model].pivot_table(index="task", columns="basis", values="ap", aggfunc="first")
        wide = wide.dropna(subset=["SAE latents", "neurons"])
        diff = paired(wide["SAE latents"], wide["neurons"], seed)
        words = [f"mean AP: latent {diff['mean_a']:.2f}, neuron {diff['mean_b']:.2f}"]
        if "random rotation" in wide.columns:
            rot = wide.dropna(subset=["random rotation"])
            r = paired(rot["random rotation"], rot["neurons"], seed)
            ci = format_ci(r["mean_diff"], r["low"], r["high"])
            words.append(f"a random rotation's best direction minus the neuron {ci} AP")
        q = quality[quality["model"] == model]
        if len(q):
            q = q.iloc[0]
            words.append(f"SAE: FVE {q['fve']:.2f}, L0 {q['l0']:.0f}, {q['dead']} of {q['n_latents']} latents dead"
                         + (f", loss recovered {q['recovered']:.2f}" if "recovered" in q and pd.notna(q["recovered"])
                            else ""))  # fmt: skip
        single = probes[(probes["model"] == model) & (probes["scorer"] == SINGLE)]
        f1 = single.groupby("basis")["f1_test"].mean()
        words.append("balanced-task F1 of the best single unit: " + ", ".join(f"{b} {v:.2f}" for b, v in f1.items()))
        n_targets = broad.loc[broad["model"] == model, "n_targets"]
        mde = minimal_detectable_effect(wide["SAE latents"] - wide["neurons"])
        est = diff["mean_diff"]
        positions = int(broad.loc[broad["model"] == model, "n_positions"].max())
        layer = int(q["layer"]) if len(quality[quality["model"] == model]) else -1
        parts.append(ClaimEvidence(
            claim=f"{CLAIM_REAL}: {model}, layer {layer}",
            chapter=CHAPTER,
            measure=f"average precision over {positions:,} held-out token positions, the best single SAE latent "
            "minus the best single neuron (mean over bigrams)",
            paper=PAPER,
            estimate=est, ci_low=min(diff["low"], est), ci_high=max(diff["high"], est),
            minimal_effect=MIN_SPECIFICITY, minimal_effect_source=MIN_EFFECT_SOURCE,
            mde=float(mde) if np.isfinite(mde) else None,
            estimator="SAE trained on other text of the training split; per bigram and basis the single unit chosen "
            "among the 16 with the best training ROC-AUC on the validation split's broad sample, read on the test "
            "split's broad sample; paired bootstrap over bigrams",
            control="; ".join(words),
            n_tasks=int(diff["n_tasks"]),
            min_test_positives=int(n_targets.min()) if len(n_targets) else 0,
        ))  # fmt: skip
    if not parts:
        raise ValueError("no model has broad-sample scores: run the chapter first")
    top = {**parts[0].to_dict(), "claim": CLAIM_REAL, "parts": tuple(parts) if len(parts) > 1 else ()}
    return ClaimEvidence(**top)


def toy_claim(features: pd.DataFrame, *, seed: int = 0) -> Any:
    """The converse where the truth is known: on the toys, the best single latent recovers a superposed
    half-feature (one with no dedicated neuron) better than the best single neuron. Estimate: test AP on the toy's
    own input distribution, latent minus neuron, paired bootstrap over the superposed half-features of all toys;
    the control text gives the dedicated rule's false-positive rate per basis."""
    from ..analysis.statistics import minimal_detectable_effect
    from ..analysis.verdicts import ClaimEvidence
    from .broad import MIN_SPECIFICITY

    sup = features[features["status"] == "superposed"] if len(features) else features
    common = {"claim": CLAIM_TOY, "chapter": CHAPTER, "paper": PAPER,
              "measure": "average precision on the toy's input distribution, the best single SAE latent minus the best "
              "single neuron (mean over superposed half-features)",
              "minimal_effect": MIN_SPECIFICITY, "minimal_effect_source": MIN_EFFECT_SOURCE}  # fmt: skip
    if len(sup) < 2:
        return ClaimEvidence(**common, not_testable=(
            f"the toys have {len(sup)} superposed half-feature(s): more toys, sparser features or fewer neurons "
            "would give the superposed features this claim is about"))  # fmt: skip
    diff = paired(sup["latent_ap"], sup["neuron_ap"], seed)
    rates = false_positive_rates(features)
    words = [
        f"mean AP: latent {diff['mean_a']:.2f}, neuron {diff['mean_b']:.2f}",
        "the dedicated rule (balanced-task ROC-AUC >= 0.95) names a unit that is not dedicated on "
        f"{rates['neurons']:.2f} of superposed half-features for neurons and {rates['SAE latents']:.2f} for latents",
        f"mean balanced-task ROC-AUC: latent {sup['latent_auc'].mean():.2f}, neuron {sup['neuron_auc'].mean():.2f}",
    ]
    mde = minimal_detectable_effect(sup["latent_ap"] - sup["neuron_ap"])
    est = diff["mean_diff"]
    return ClaimEvidence(
        **common,
        estimate=est, ci_low=min(diff["low"], est), ci_high=max(diff["high"], est),
        mde=float(mde) if np.isfinite(mde) else None,
        estimator=f"{sup['toy'].nunique()} toys; per half-feature and basis the single unit chosen among the 16 with "
        "the best balanced-task training ROC-AUC on a validation sample of the toy's inputs, read on a test sample; "
        "paired bootstrap over half-features",
        control="; ".join(words),
        n_tasks=int(diff["n_tasks"]),
        min_test_positives=int(sup["positives"].min()),
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------- tables
def false_positive_rates(features: pd.DataFrame) -> dict[str, float]:
    """Per basis, the dedicated rule's false-positive rate on the superposed half-features: the share where it fires
    on a unit that is not dedicated to the half-feature (NaN without superposed half-features)."""
    sup = features[features["status"] == "superposed"] if len(features) else features
    out = {}
    for basis, prefix in (("neurons", "neuron"), ("SAE latents", "latent")):
        fp = sup[f"{prefix}_rule"].astype(bool) & ~sup[f"{prefix}_true"].astype(bool) if len(sup) else pd.Series()
        out[basis] = float(fp.mean()) if len(sup) else float("nan")
    return out


def k_table(probes: pd.DataFrame) -> pd.DataFrame:
    """Balanced task: mean test F1 over bigrams per model, basis and k (k = 1: the exhaustive best single unit)."""
    if probes.empty:
        return pd.DataFrame(columns=["model", "basis", "k", "f1_test", "roc_auc_test", "n_tasks"])
    single = probes[probes["scorer"] == SINGLE].assign(k=1)
    sparse = probes[(probes["scorer"] != SINGLE) & (probes["k"] > 1)]
    d = pd.concat([single, sparse], ignore_index=True)
    out = d.groupby(["model", "basis", "k"], sort=False).agg(
        f1_test=("f1_test", "mean"), roc_auc_test=("roc_auc_test", "mean"), n_tasks=("task", "nunique")
    )
    return out.reset_index()


def broad_table(broad: pd.DataFrame) -> pd.DataFrame:
    """Broad sample: per model and basis, the best single unit's mean AP, precision at n and firing rate on
    non-targets (over bigrams)."""
    if broad.empty:
        return pd.DataFrame(columns=["model", "basis", "AP", "precision at n", "fires on non-targets", "bigrams"])
    out = broad.groupby(["model", "basis"], sort=False).agg(
        AP=("ap", "mean"), **{"precision at n": ("precision_at_n", "mean"),
                              "fires on non-targets": ("fire_rate", "mean"), "bigrams": ("task", "nunique")})  # fmt: skip
    return out.reset_index().round(3)


def toy_table(features: pd.DataFrame) -> pd.DataFrame:
    """Toys: per ground-truth status (dedicated, superposed) and basis, the best single unit's mean balanced-task
    ROC-AUC, how often the dedicated rule fires, how often it fires on a unit that is not dedicated (false positive)
    and the mean AP on the toy's input distribution."""
    rows = []
    if features.empty:
        return pd.DataFrame(rows)
    for status, d in features.groupby("status", sort=True):
        for basis, p in (("neurons", "neuron"), ("SAE latents", "latent")):
            rule, true = d[f"{p}_rule"].astype(bool), d[f"{p}_true"].astype(bool)
            rows.append({"status": status, "basis": basis, "half-features": len(d), "ROC-AUC": d[f"{p}_auc"].mean(),
                         "rule fires": rule.mean(), "fires on a non-dedicated unit": (rule & ~true).mean(),
                         "unit truly dedicated": true.mean(), "AP": d[f"{p}_ap"].mean()})  # fmt: skip
    return pd.DataFrame(rows).round(3)


# ---------------------------------------------------------------------------------------------- findings
