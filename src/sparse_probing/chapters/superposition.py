"""Superposition in early layers: compound words need several early neurons; the early-layer weight fingerprint.

Gurnee et al. (2023) find that Pythia's first layers decode compound words ("social security", "prime factors") not
with one neuron but with a sparse combination of a few (about five per bigram in Pythia-1B), each of them
polysemantic, and that such early neurons have large input-weight norms and strongly negative input biases. This
module tests both claims.

**Compound words.** One binary task per bigram: its positives (the second word right after the first) against its
own hard negatives (the second word without the first, the first word followed by something else). The paper's 21
bigrams (``paper_compound_words``) are the primary evidence; further families (the self-built ``compound_words``)
are reported beside them. Per bigram and layer:

* the main sparse probe (top-k neurons by mean difference + L2 logistic regression; every method of
  :attr:`SuperpositionConfig.methods` through :func:`~sparse_probing.probes.run_sweep`) at every k of the grid,
* the exhaustively searched best single neuron (``single_neuron``: every neuron's threshold fitted on train, the
  neuron chosen on validation ROC-AUC), the k = 1 reference of the claim,
* controls (primary family, early layers: where the claim reads them): the main probe on shuffled training labels
  (same k and layer), the main probe in Haar-random rotations of the neurons (``random_basis``), the dense probe on
  all neurons; and for every family the best surface baseline (current token, bigram, bag of tokens, layer-0
  embedding; :mod:`sparse_probing.analysis.surface`).

Layer and k are chosen on validation ROC-AUC (ties: validation F1, smaller k, earlier layer) and reported on test.
The claim's estimate is the mean over bigrams of the test gain of the best k (chosen on validation in the early
layers) over the best single neuron (chosen likewise), with a paired bootstrap interval over bigrams.

**Weight fingerprint.** Per neuron of ``weights_model`` (a model with MLP input biases), the folded input-weight norm
and input bias (:func:`sparse_probing.analysis.weights.mlp_input_stats`); the estimate is the share of negative
biases in the early layers minus that in the later layers, with the difference of median norms as a second part,
each with a bootstrap interval over neurons. Gated MLPs have no input bias: then there is no fingerprint claim.

:func:`run` returns a :class:`SuperpositionResult` of tidy tables; :meth:`SuperpositionResult.claims` builds the
claim records, the remaining functions the tables, figures, captions and findings of the notebook.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning

from ..analysis.statistics import bootstrap_statistic, paired_bootstrap
from ..analysis.verdicts import format_number as _fmt
from ..splits import Split, grouped_split
from ._config import ChapterConfig, ConfigError

__all__ = [
    "CHAPTER",
    "INCONCLUSIVE",
    "SuperpositionConfig",
    "SuperpositionResult",
    "fingerprint_claim",
    "run",
    "summarize",
    "superposition_claim",
]

CHAPTER = "03_superposition"
INCONCLUSIVE = "inconclusive"
"""Status of a bigram with fewer test positives than :attr:`SuperpositionConfig.min_test_positives`."""
CACHE_BATCH = 32
"""Windows per forward pass when caching (the windows are short; the batch size does not change the cache)."""
TASK_BOOT = 5000
"""Bootstrap resamples of the intervals over bigrams (and over neurons): cheap, so more than ``n_boot``."""
PAPER_GAIN = (
    "early layers (1-3) of Pythia decode compound words with a sparse combination of polysemantic neurons, not one "
    "(Pythia-1B: about 5 neurons per bigram); F1 rises with k"
)
PAPER_FINGERPRINT = "early-layer neurons in superposition have large input-weight norms and strongly negative biases"
MIN_GAIN = 0.03
"""Minimal effect of interest of the F1 gain of a sparse combination over the best single neuron."""
MIN_GAIN_SOURCE = (
    "half the room the paper leaves: its released Pythia-160M best single compound-word neurons reach test F1 "
    "0.80-0.997, mean 0.94 (interpretable_neurons/pythia-160m/top_compound_words.csv), so a sparse combination can "
    "add at most about 0.06"
)
MIN_FINGERPRINT = 0.10
"""Minimal effect of interest of each fingerprint part (share of negative biases; relative input-norm excess)."""
MIN_FINGERPRINT_SOURCE = (
    "the paper calls the early-layer biases strongly negative and the norms large against later layers (its "
    "biasxnorm_p20_50_80.csv per Pythia size); a difference under 10 percentage points of negative biases, or under "
    "10% in median input norm, would not set early layers apart"
)
ESTIMATOR = "one grouped 70/15/15 split, k and layer chosen on validation; paired bootstrap over bigrams"
PAPER_BIASXNORM_LAYER1 = {
    "pythia-70m": (-0.634, -0.357, -0.167),
    "pythia-160m": (-0.538, -0.414, -0.281),
    "pythia-410m": (-0.276, -0.209, -0.140),
    "pythia-1b": (-0.861, -0.688, -0.417),
    "pythia-1.4b": (-0.527, -0.440, -0.306),
    "pythia-2.8b": (-0.744, -0.596, -0.316),
    "pythia-6.9b": (-1.659, -1.397, -1.101),
}
"""The paper's layer-1 neurons at the 20th, 50th and 80th percentile of ``||W_in|| b_in`` per Pythia size, as
released in its repository (``interpretable_neurons/<model>/biasxnorm_p20_50_80.csv``)."""
MIN_BIASXNORM = 0.1
"""Minimal effect of interest of ``-median(||W_in|| b_in)`` in the early layers: half the smallest layer-1 median
the paper released (0.209, Pythia-410M)."""


@dataclass(frozen=True)
class SuperpositionConfig(ChapterConfig):
    """Parameters of the superposition chapter (one field per notebook parameter)."""

    model: str = "smollm2-135m"
    """Model whose MLP neurons are probed (a name for :func:`sparse_probing.models.load_model`)."""
    variant: str = "default"
    """Dataset size variant (``smoke`` or ``default``)."""
    families: tuple[str, ...] = ("paper_compound_words", "compound_words")
    """Compound-word families; the first is the primary evidence (the claim), the others are reported beside it."""
    max_length: int = 128
    """Context length in tokens."""
    n_documents: Mapping[str, int] = field(default_factory=dict)
    """Per family: cache only the first n documents (families not listed: all)."""
    layers: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 7, 10)
    """Layers probed (cached at these layers only)."""
    early_layers: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
    """The probed layers that count as early (the claim's layers); the others are the contrast."""
    ks: tuple[int, ...] = (1, 2, 4, 8, 16)
    """Sparsity levels of the sparse probes (must start at 1)."""
    methods: tuple[str, ...] = ("mean_diff",)
    """Sparse probes of the sweep (ranker names or ``telescopic``); the first is the main one (claim, controls)."""
    dense: bool = True
    """Also fit the dense probe on all neurons (primary family, early layers)."""
    n_rotations: int = 3
    """Haar-random rotations averaged by the random-basis control (primary family, early layers; 0: none)."""
    min_positives: int = 10
    """A bigram is probed only with at least this many positives and negatives."""
    min_test_positives: int = 30
    """A bigram with fewer test positives is flagged inconclusive."""
    claim_metric: Literal["f1", "roc_auc"] = "f1"
    """Test score of the claim (the paper's F1, or ROC-AUC)."""
    surface_baselines: tuple[str, ...] = ("token", "bigram", "bag_of_tokens", "embedding")
    """Surface baselines fitted on every bigram (empty: none)."""
    n_boot: int = 200
    """Bootstrap resamples (documents) of every test interval of a single probe; 0 for none."""
    n_top_examples: int = 8
    """Most-activating examples shown for the most shared early neuron."""
    pruning_bigrams: int = 3
    """Iterative pruning on this many primary bigrams (those best decoded in the early layers); 0: no pruning."""
    pruning_k: int = 5
    """Sparsity of the pruned probes (the paper: 5)."""
    pruning_steps: int = 6
    """Probes fitted per bigram, one neuron fewer available each time."""
    pruning_method: str = "mean_diff"
    """Probe re-solved at every pruning step: a ranker (fast) or ``optimal`` (the paper's, time-limited)."""
    pruning_time_limit: float = 10.0
    """Seconds per optimal solve (``pruning_method = optimal`` only)."""
    weights_model: str = "mini-4"
    """Model for the weight fingerprint (needs MLP input biases: a GELU/ReLU model such as mini-4 or Pythia)."""
    weights_early_layers: tuple[int, ...] = ()
    """Layers of ``weights_model`` that count as early (empty: its first third)."""
    broad_models: tuple[str, ...] = ("mini-4",)
    """Models read on the broad sample beside ``model`` (the claim's first part is ``model``)."""
    broad_corpus: str = "natural_language"
    """Family of ordinary text added to the broad sample ("" for none)."""
    broad_corpus_documents: int = 300
    """Documents of that family in the broad sample."""
    broad_methods: tuple[str, ...] = ("telescopic", "mean_diff")
    """Sparse probes read on the broad sample (rankers, ``telescopic`` or ``optimal``, the last slow: about 10 s per
    solve); per bigram the claim takes the best of them on the validation split's broad sample (and the best single
    unit among the exhaustive one and their one-neuron probes)."""
    broad_ks: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)
    """Sparsity levels read on the broad sample."""
    claim_k: int = 5
    """k of the claim's sparse combination, fixed in advance (the paper: about 5 neurons per bigram in Pythia-1B)."""
    broad_residual: bool = True
    """Run the same comparison on the residual stream of the chosen layer."""
    broad: bool = True
    """Run the broad-sample test (the claim); False keeps only the balanced-task tables."""
    seed: int = 0
    """Seed of the split, the shuffled labels and the rotations."""

    def __post_init__(self) -> None:
        need = self.require

        need(bool(self.families), "families is empty; name at least one family, e.g. ['paper_compound_words']")
        need(len(set(self.families)) == len(self.families), f"families repeat: {list(self.families)}")
        stray = sorted(set(self.n_documents) - set(self.families))
        need(not stray, f"n_documents names families that are not probed: {stray}; probed: {list(self.families)}")
        bad = {k: v for k, v in self.n_documents.items() if not isinstance(v, int) or v < 2}
        need(not bad, f"n_documents values must be integers >= 2, got {bad}")
        need(self.max_length >= 2, f"max_length must be at least 2 tokens, got {self.max_length}")
        need(bool(self.layers), "layers is empty; give at least one layer index")
        need(all(layer >= 0 for layer in self.layers), f"layers must be non-negative, got {list(self.layers)}")
        need(list(self.layers) == sorted(set(self.layers)), f"layers must increase without repeats: {self.layers}")
        need(bool(self.early_layers), "early_layers is empty; name the probed layers that count as early")
        outside = sorted(set(self.early_layers) - set(self.layers))
        need(not outside, f"early_layers {outside} are not among the probed layers {list(self.layers)}")
        need(bool(self.ks) and self.ks[0] == 1, f"ks must start at 1 (the single-neuron reference), got {self.ks}")
        need(list(self.ks) == sorted(set(self.ks)), f"ks must increase without repeats, got {list(self.ks)}")
        from ..probes import RANKERS

        allowed = (*RANKERS, "telescopic")
        wrong = [m for m in self.methods if m not in allowed]
        need(bool(self.methods) and not wrong, f"methods must be rankers or 'telescopic' ({allowed}), got {wrong}")
        need(self.n_rotations >= 0, f"n_rotations must be 0 or more, got {self.n_rotations}")
        need(self.min_positives >= 2, f"min_positives must be at least 2, got {self.min_positives}")
        need(self.min_test_positives >= 1, f"min_test_positives must be at least 1, got {self.min_test_positives}")
        from ..analysis.surface import BASELINES

        unknown = sorted(set(self.surface_baselines) - set(BASELINES))
        need(not unknown, f"unknown surface baselines {unknown}; choose from {list(BASELINES)}")
        need(self.n_boot >= 0, f"n_boot must be 0 or more, got {self.n_boot}")
        need(self.n_top_examples >= 1, f"n_top_examples must be at least 1, got {self.n_top_examples}")
        need(self.pruning_bigrams >= 0, f"pruning_bigrams must be 0 or more, got {self.pruning_bigrams}")
        need(self.pruning_k >= 1, f"pruning_k must be at least 1, got {self.pruning_k}")
        need(self.pruning_steps >= 1, f"pruning_steps must be at least 1, got {self.pruning_steps}")
        need(
            self.pruning_method in (*RANKERS, "optimal"),
            f"pruning_method must be a ranker or 'optimal', got {self.pruning_method!r}",
        )
        need(self.pruning_time_limit > 0, f"pruning_time_limit must be positive, got {self.pruning_time_limit}")
        need(
            all(layer >= 0 for layer in self.weights_early_layers),
            f"weights_early_layers must be non-negative, got {list(self.weights_early_layers)}",
        )
        need(
            self.broad_corpus_documents >= 0,
            f"broad_corpus_documents must be 0 or more, got {self.broad_corpus_documents}",
        )
        wrong = [m for m in self.broad_methods if m not in (*allowed, "optimal")]
        need(
            bool(self.broad_methods) and not wrong,
            f"broad_methods must be rankers, 'telescopic' or 'optimal', got {wrong}",
        )
        need(list(self.broad_ks) == sorted(set(self.broad_ks)) and min(self.broad_ks, default=0) >= 1,
             f"broad_ks must be increasing positive integers, got {list(self.broad_ks)}")  # fmt: skip
        need(self.claim_k in self.broad_ks, f"claim_k {self.claim_k} must be one of broad_ks {list(self.broad_ks)}")

    @property
    def primary(self) -> str:
        """The family whose bigrams carry the claim."""
        return self.families[0]

    @property
    def main_method(self) -> str:
        return self.methods[0]


@dataclass(frozen=True)
class SuperpositionResult:
    """What :func:`run` measured: tidy tables."""

    config: SuperpositionConfig
    model_identity: str
    n_layers: int
    d_mlp: int
    tasks: pd.DataFrame
    """One row per bigram: ``family, task, examples, test_positives, status``."""
    scores: pd.DataFrame
    """Every fit: ``family, task, method, k, layer, support, roc_auc_val, f1_val, f1_test, roc_auc_test,
    f1_test_low, f1_test_high``. Methods: the sparse methods, ``single_neuron``, ``control``, ``random_basis``,
    ``dense``."""
    surface: pd.DataFrame
    """Best surface baseline per bigram (chosen on validation): ``family, task, baseline, f1_test, roc_auc_test``."""
    pruning: pd.DataFrame
    """Iterative pruning of a few primary bigrams: ``task, layer, step, support, f1_val, f1_test, removed,
    removed_f1, mean_single_f1`` (empty without pruning)."""
    shared: pd.DataFrame
    """Early neurons of the chosen primary probes by the number of bigrams that use them: ``layer, neuron,
    n_bigrams, bigrams``."""
    top_examples: pd.DataFrame
    """The examples that most activate the most shared early neuron: ``activation, bigram, label, text``."""
    neuron_effects: pd.DataFrame
    """The most shared early neuron per primary bigram: ``task``, mean activation on positives and negatives, ``d``
    (difference of means over the pooled standard deviation)."""
    weight_stats: pd.DataFrame
    """Per neuron of ``weights_model``: ``layer, neuron, w_in_norm, b_in`` (LayerNorm folded in), ``w_gate_norm``."""
    weights_early: tuple[int, ...]
    """The layers of ``weights_model`` that count as early."""
    weights_n_layers: int
    timings: pd.DataFrame
    """Per family: the versioned ``dataset`` key, ``examples``, ``tasks``, seconds ``cache_s`` and ``probe_s``."""
    broad: tuple[Any, ...] = ()
    """The broad-sample test per model (:class:`~sparse_probing.chapters.broad.BroadResult`), ``model`` first."""

    @property
    def summary(self) -> pd.DataFrame:
        """One row per bigram: the early-layer choices and their test scores (see :func:`summarize`)."""
        return summarize(
            self.scores,
            self.tasks,
            self.surface,
            self.config.early_layers,
            self.config.main_method,
            self.config.claim_metric,
        )

    @property
    def datasets(self) -> dict[str, str]:
        return dict(zip(self.timings["family"], self.timings["dataset"], strict=True))

    def claims(
        self, *, power: float | str | None = "calibrated", toy: pd.DataFrame | str | None = "calibrated"
    ) -> list[Any]:
        """The claim records: superposition (the broad-sample specificity of a sparse combination against the best
        single neuron, :func:`~sparse_probing.chapters.broad.specificity_claim`; without a broad-sample run, the
        balanced-task gain of :func:`superposition_claim`) and, with input biases, the weight fingerprint.

        ``power`` is the calibrated power of the gain diagnostic (default: read with
        :func:`~sparse_probing.analysis.verdicts.calibrated_power`); ``toy`` the ground-truth chapter's toy-model
        fingerprint table (default: read from its results; None: not mentioned).
        """
        from ..analysis.verdicts import calibrated_power
        from .broad import specificity_claim

        if isinstance(toy, str):
            toy = toy_fingerprint()
        if self.broad:
            out = [specificity_claim(self.broad, chapter=CHAPTER, k=self.config.claim_k, seed=self.config.seed)]
        else:
            if power == "calibrated":
                power = calibrated_power("gain")
            s = self.summary
            out = [
                superposition_claim(
                    s[s["family"] == self.config.primary],
                    metric=self.config.claim_metric,
                    power=power,  # type: ignore[arg-type]
                    seed=self.config.seed,
                )
            ]
        fp = fingerprint_claim(self.weight_stats, self.weights_early, toy=toy, seed=self.config.seed)
        if fp is not None:
            out.append(fp)
        return out

    def metrics(self, claims: Sequence[Any] | None = None) -> dict[str, Any]:
        """Plain values for :func:`sparse_probing.results.save_results`."""
        from ..analysis.weights import fingerprint_table

        claims = self.claims() if claims is None else claims
        return {
            "claims": [c.to_dict() for c in claims],
            "model_identity": self.model_identity,
            "n_layers": self.n_layers,
            "d_mlp": self.d_mlp,
            "tasks": self.tasks,
            "summary": self.summary,
            "by_k": k_curves(self),
            "by_layer": layer_curves(self),
            "pruning": self.pruning.drop(columns=["support"], errors="ignore"),
            "shared_neurons": self.shared.head(10),
            "fingerprint": fingerprint_table(self.weight_stats).reset_index(),
            "weights_early_layers": list(self.weights_early),
            "timings": self.timings,
            "broad_scores": pd.concat([b.scores for b in self.broad], ignore_index=True) if self.broad else [],
            "broad_top": pd.concat([b.top for b in self.broad], ignore_index=True) if self.broad else [],
            "broad_models": [
                {
                    "model": b.model,
                    "layer": b.layer,
                    "n_layers": b.n_layers,
                    "seconds": b.seconds,
                    **{k: v for k, v in b.sample.items() if k != "validation_auc_by_layer"},
                }
                for b in self.broad
            ],
        }


# ---------------------------------------------------------------------------------------------- selection
def _choose(scores: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Per group: the row with the best validation ROC-AUC (ties: validation F1, smaller k, earlier layer)."""
    if scores.empty:
        return scores.copy()
    ranked = scores.assign(
        _auc=scores["roc_auc_val"].fillna(-np.inf), _f1=scores["f1_val"].fillna(-np.inf)
    ).sort_values([*by, "_auc", "_f1", "k", "layer"], ascending=[True] * len(by) + [False, False, True, True])
    return ranked.groupby(list(by), sort=True).head(1).drop(columns=["_auc", "_f1"]).reset_index(drop=True)


def summarize(
    scores: pd.DataFrame,
    tasks: pd.DataFrame,
    surface: pd.DataFrame,
    early_layers: Sequence[int],
    main: str,
    metric: str = "f1",
) -> pd.DataFrame:
    """One row per bigram (``family, task, test_positives, status``) with test scores (``metric``) of:

    * ``k1_*``: the best single neuron (``single_neuron`` rows, else the main method at k = 1), layer chosen on
      validation among the early layers (``k1_layer``, ``k1_neuron``, ``k1_test`` and its interval);
    * ``best_*``: the main method with layer and k chosen on validation among the early layers (``best_layer``,
      ``best_k``, ``best_test``, interval), and ``gain = best_test - k1_test``;
    * at the chosen layer and k: ``control_test`` (shuffled labels) and ``random_test`` (random basis); at the
      main method's k = 1 layer: ``neuron_k1_test`` and ``random_k1_test``;
    * ``dense_test`` (layer chosen on validation among the early layers), ``later_best_test`` (the main method in the
      other layers), ``any_layer`` (its layer chosen over all layers), and the best surface baseline
      (``surface_baseline``, ``surface_test``) with ``margin = best_test - surface_test``.
    """
    test, low, high = f"{metric}_test", f"{metric}_test_low", f"{metric}_test_high"
    keys = ["family", "task"]
    out = tasks.set_index(keys)[["test_positives", "status"]].copy()
    early = scores["layer"].isin(list(early_layers))

    def pick(rows: pd.DataFrame) -> pd.DataFrame:
        return _choose(rows, keys).set_index(keys)

    def col(frame: pd.DataFrame, name: str) -> pd.Series:
        return frame[name] if name in frame.columns else pd.Series(np.nan, index=frame.index)

    single = scores[early & (scores["method"] == "single_neuron")]
    if single.empty:
        single = scores[early & (scores["method"] == main) & (scores["k"] == 1)]
    k1 = pick(single)
    out["k1_layer"] = k1["layer"]
    out["k1_neuron"] = k1["support"].map(lambda s: s[0] if isinstance(s, tuple) and len(s) else -1)
    out["k1_test"], out["k1_low"], out["k1_high"] = k1[test], col(k1, low), col(k1, high)
    best = pick(scores[early & (scores["method"] == main)])
    out["best_layer"], out["best_k"] = best["layer"], best["k"]
    out["best_support"] = best["support"]
    out["best_test"], out["best_low"], out["best_high"] = best[test], col(best, low), col(best, high)
    out["gain"] = out["best_test"] - out["k1_test"]
    indexed = scores.set_index([*keys, "method", "k", "layer"])[test]
    indexed = indexed[~indexed.index.duplicated()]

    def at(method: str, ks: pd.Series, layers: pd.Series) -> np.ndarray:
        idx = [(f, t, method, k, layer) for (f, t), k, layer in zip(out.index, ks, layers, strict=True)]
        return indexed.reindex(idx).to_numpy(dtype=float)

    out["control_test"] = at("control", out["best_k"], out["best_layer"])
    out["random_test"] = at("random_basis", out["best_k"], out["best_layer"])
    main_k1 = pick(scores[early & (scores["method"] == main) & (scores["k"] == 1)])
    out["neuron_k1_layer"] = main_k1["layer"]
    ones = pd.Series(1, index=out.index)
    out["neuron_k1_test"] = at(main, ones, out["neuron_k1_layer"])
    out["random_k1_test"] = at("random_basis", ones, out["neuron_k1_layer"])
    dense = pick(scores[early & (scores["method"] == "dense")])
    out["dense_test"] = dense[test] if len(dense) else np.nan
    later = pick(scores[~early & (scores["method"] == main)])
    out["later_best_test"] = later[test] if len(later) else np.nan
    anywhere = pick(scores[scores["method"] == main])
    out["any_layer"] = anywhere["layer"]
    if len(surface):
        s = surface.set_index(keys)
        out["surface_baseline"], out["surface_test"] = s["baseline"], s[test]
    else:
        out["surface_baseline"], out["surface_test"] = None, np.nan
    out["margin"] = out["best_test"] - out["surface_test"]
    return out.reset_index()


# ---------------------------------------------------------------------------------------------- claims


def superposition_claim(
    summary: pd.DataFrame, *, metric: str = "f1", power: float | None = None, seed: int = 0, n_boot: int = TASK_BOOT
) -> Any:
    """The claim record "superposition in early layers" from the primary family's rows of :func:`summarize`.

    Estimate: mean over bigrams of ``best_test - k1_test`` (the best k over the best single neuron, both chosen on
    validation in the early layers), paired bootstrap over bigrams; minimal effect :data:`MIN_GAIN`, MDE from the
    per-bigram gains. Surface margin: ``best_test`` minus
    the best surface baseline, paired over bigrams. Control: shuffled labels and the random basis at the same k and
    layer, in words.
    """
    from ..analysis.statistics import minimal_detectable_effect
    from ..analysis.verdicts import ClaimEvidence, describe_difference, format_ci

    rows = summary.dropna(subset=["best_test", "k1_test"])
    if rows.empty:
        raise ValueError("no bigram has both a best-k and a single-neuron test score: nothing to claim")
    gain = paired_bootstrap(rows["best_test"], rows["k1_test"], n_boot=n_boot, random_state=seed)
    margin = None
    if rows["surface_test"].notna().any():
        m = paired_bootstrap(rows["best_test"], rows["surface_test"], n_boot=n_boot, random_state=seed)
        margin = (m["mean_diff"], m["low"], m["high"])
    control = [f"shuffled labels at the same k and layer {_fmt(float(rows['control_test'].mean()))}"]
    rb = rows.dropna(subset=["random_test"])
    if len(rb):
        d = paired_bootstrap(rb["best_test"], rb["random_test"], n_boot=n_boot, random_state=seed)
        control.append(
            describe_difference("the neuron basis", "a random basis", d["mean_diff"], d["low"], d["high"])
            + " (same k and layer)"
        )
    rb1 = rows.dropna(subset=["neuron_k1_test", "random_k1_test"])
    if len(rb1):
        d = paired_bootstrap(rb1["neuron_k1_test"], rb1["random_k1_test"], n_boot=n_boot, random_state=seed)
        control.append(f"at k = 1 neurons minus random basis {format_ci(d['mean_diff'], d['low'], d['high'])}")
    name = "F1" if metric == "f1" else "ROC-AUC"
    return ClaimEvidence(
        claim="superposition in early layers",
        chapter=CHAPTER,
        measure=f"test {name} gain of the best k over the best single neuron, early layers (mean over bigrams)",
        paper=PAPER_GAIN,
        estimate=gain["mean_diff"],
        ci_low=min(gain["low"], gain["mean_diff"]),
        ci_high=max(gain["high"], gain["mean_diff"]),
        minimal_effect=MIN_GAIN,
        minimal_effect_source=MIN_GAIN_SOURCE,
        mde=_mde(minimal_detectable_effect(rows["best_test"] - rows["k1_test"])),
        estimator=ESTIMATOR,
        surface_margin=margin,
        control="; ".join(control)
        + ("" if power is None else f"; the gain diagnostic's calibrated power on toys {power:.2f}"),
        n_tasks=int(gain["n_tasks"]),
        min_test_positives=int(rows["test_positives"].min()),
    )


def _mde(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _early_rest_difference(
    values: np.ndarray, early: np.ndarray, statistic: str, *, n_boot: int, seed: int
) -> tuple[float, float, float]:
    """``statistic`` of the early neurons against the rest, bootstrap over neurons: ``share_negative`` (difference of
    the shares of negative values) or ``median`` (relative excess of the median, early / rest - 1)."""

    def stat(v: np.ndarray, e: np.ndarray) -> float:
        if not e.any() or e.all():
            return float("nan")
        if statistic == "share_negative":
            return float((v[e] < 0).mean() - (v[~e] < 0).mean())
        return float(np.median(v[e]) / np.median(v[~e]) - 1.0)

    ci = bootstrap_statistic(stat, values, early, n_boot=n_boot, random_state=seed)
    return ci["estimate"], min(ci["low"], ci["estimate"]), max(ci["high"], ci["estimate"])


def fingerprint_claim(
    stats: pd.DataFrame,
    early_layers: Sequence[int],
    *,
    toy: pd.DataFrame | None = None,
    seed: int = 0,
    n_boot: int = 2000,
) -> Any | None:
    """The claim record "weight fingerprint" from per-neuron weight statistics, or None without input biases.

    Two parts, each early layers against the later layers with a bootstrap interval over neurons: the share of
    negative (folded) input biases (difference), and the median input-weight norm (relative excess). Each part has
    the minimal effect :data:`MIN_FINGERPRINT` and an MDE read from its interval; the record's own estimate is the
    bias part; its verdict is decided part by part. ``n_tasks`` counts neurons and ``min_test_positives`` holds the
    smaller number of neurons of the two groups (there are no test positives in a weight statistic). ``toy`` (the ground-truth chapter's toy-model fingerprint)
    goes into the control text. Power: not calibrated.
    """
    from ..analysis.statistics import mde_from_interval
    from ..analysis.verdicts import ClaimEvidence

    if not stats["b_in"].notna().any():
        return None
    early = stats["layer"].isin(list(early_layers)).to_numpy()
    if early.all() or not early.any():
        raise ValueError(f"early layers {list(early_layers)} must be some but not all layers of the weights model")
    n_min = int(min(early.sum(), (~early).sum()))
    bias = _early_rest_difference(stats["b_in"].to_numpy(float), early, "share_negative", n_boot=n_boot, seed=seed)
    norm = _early_rest_difference(stats["w_in_norm"].to_numpy(float), early, "median", n_boot=n_boot, seed=seed)
    bxn_early = -(stats["w_in_norm"] * stats["b_in"]).to_numpy(float)[early]
    bxn = bootstrap_statistic(np.median, bxn_early, n_boot=n_boot, random_state=seed)
    bxn_est = (bxn["estimate"], min(bxn["low"], bxn["estimate"]), max(bxn["high"], bxn["estimate"]))
    common = {
        "chapter": CHAPTER,
        "paper": PAPER_FINGERPRINT,
        "minimal_effect": MIN_FINGERPRINT,
        "minimal_effect_source": MIN_FINGERPRINT_SOURCE,
        "estimator": "all neurons of the weights model; bootstrap over neurons",
        "n_tasks": len(stats),
        "unit": "neuron",
        "min_test_positives": n_min,
        "positives": "neurons in the smaller group",
    }

    def part(claim: str, measure: str, est: tuple[float, float, float], **extra: Any) -> ClaimEvidence:
        return ClaimEvidence(claim=claim, measure=measure, estimate=est[0], ci_low=est[1], ci_high=est[2],
                             mde=mde_from_interval(est[1], est[2]), **{**common, **extra})  # fmt: skip

    parts = (
        part("more negative biases early", "share of negative input biases, early minus later layers", bias),
        part("larger input norms early", "median input-weight norm, early over later layers (relative excess)", norm),
        part(
            "strongly negative ||W_in|| b_in early (the paper's statistic)",
            "minus the median of ||W_in|| b_in over the early layers' neurons",
            bxn_est,
            minimal_effect=MIN_BIASXNORM,
            minimal_effect_source="half the smallest layer-1 median of ||W_in|| b_in the paper released (0.209, "
            "Pythia-410M; 0.357 in Pythia-70M)",
        ),
    )
    return ClaimEvidence(
        claim="weight fingerprint",
        measure="share of negative input biases, early minus later layers (LayerNorm folded; parts: biases, norms)",
        estimate=bias[0],
        ci_low=bias[1],
        ci_high=bias[2],
        mde=parts[0].mde,
        control=toy_fingerprint_text(toy),
        parts=parts,
        **common,
    )


def toy_fingerprint(records: Any | None = None) -> pd.DataFrame | None:
    """The ground-truth chapter's toy-model fingerprint table (``metrics.fingerprint`` of ``02_ground_truth``), or
    None when that chapter has not run."""
    if records is None:
        from ..results import RESULTS_DIR, load_results, results_dir

        dirs = [d for d in (results_dir(), RESULTS_DIR) if d.is_dir()]
        records = [r for d in dict.fromkeys(dirs) for r in load_results(d)]
    for record in records:
        if record.get("name") == "02_ground_truth":
            rows = (record.get("metrics") or {}).get("fingerprint")
            if rows:
                return pd.DataFrame(rows)
    return None


def toy_fingerprint_text(toy: pd.DataFrame | None) -> str:
    """One sentence on the toy models' fingerprint (known superposition or not), for the claim's control field."""
    if toy is None or toy.empty or not {"in_superposition", "median_bias", "spearman"} <= set(toy.columns):
        return "toy-model calibration not available (run 02_ground_truth)"
    parts = []
    for flag, label in ((True, "with"), (False, "without")):
        t = toy[toy["in_superposition"] == flag]
        if len(t):
            parts.append(
                f"{label} superposition median bias {_fmt(t['median_bias'].min())} to {_fmt(t['median_bias'].max())}, "
                f"Spearman(norm, bias) {_fmt(t['spearman'].min())} to {_fmt(t['spearman'].max())}"
            )
    return "toy models of 02_ground_truth (known ground truth): " + "; ".join(parts)


# ---------------------------------------------------------------------------------------------- running
def _split(examples: pd.DataFrame, features: Sequence[str], seed: int) -> Split:
    """Grouped 70/15/15 split, stratified by each example's bigram and label when the strata allow it."""
    from ..datasets.sizing import strata

    groups = examples["group"].to_numpy()
    try:
        return grouped_split(groups, strata(examples, list(features)), random_state=seed)
    except ValueError:  # strata too small to stratify (smoke slices)
        return grouped_split(groups, None, random_state=seed)


def _rows(family: str, sweep: pd.DataFrame) -> pd.DataFrame:
    if "error" in sweep.columns:
        sweep = sweep[sweep["error"].isna()]
    cols = [
        "feature",
        "method",
        "k",
        "layer",
        "support",
        "roc_auc_val",
        "f1_val",
        "f1_test",
        "roc_auc_test",
        "f1_test_low",
        "f1_test_high",
    ]
    out = sweep.reindex(columns=cols).rename(columns={"feature": "task"})
    out.insert(0, "family", family)
    return out.astype({"k": int, "layer": int})


def _probe_family(config: SuperpositionConfig, lm: Any, family: str) -> dict[str, Any]:
    from ..analysis.surface import best_surface, embedding_cache, surface_baselines
    from ..probes import ProbeSpec, run_sweep
    from ..study import binary_tasks, cache_for

    t0 = time.perf_counter()
    acts = cache_for(
        lm,
        family,
        config.variant,
        n_documents=config.n_documents.get(family),
        max_length=config.max_length,
        layers=config.layers,
        batch_size=CACHE_BATCH,
    )
    embeddings = None
    if "embedding" in config.surface_baselines:
        embeddings = embedding_cache(acts, model=lm)
    cache_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    examples = acts.examples
    tasks = binary_tasks(
        examples, acts.features, min_positives=config.min_positives, min_negatives=config.min_positives
    )
    if not tasks:
        raise ValueError(f"family {family!r}: no bigram with {config.min_positives} positives and negatives")
    split = _split(examples, acts.features, config.seed)
    docs = examples["doc"].to_numpy()
    X = {layer: acts.layer(layer) for layer in config.layers}
    early = {layer: X[layer] for layer in config.early_layers}
    main, ks = config.main_method, tuple(config.ks)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        specs = [ProbeSpec(m, ks=ks, random_state=config.seed) for m in config.methods]
        specs.append(ProbeSpec("single_neuron", random_state=config.seed))
        frames = [run_sweep(X, tasks, split, specs, groups=docs, n_boot=config.n_boot, progress=False)]
        # the controls are read at the early layers' choices of the primary family only (the claim's layers)
        controls = [ProbeSpec("control", ks=ks, params={"base": main}, random_state=config.seed)]
        if config.dense:
            controls.append(ProbeSpec("dense", random_state=config.seed))
        if family == config.primary:
            frames.append(run_sweep(early, tasks, split, controls, groups=docs, n_boot=0, progress=False))
        if config.n_rotations and family == config.primary:
            rb = ProbeSpec(
                "random_basis",
                ks=ks,
                params={"base": main, "n_rotations": config.n_rotations},
                random_state=config.seed,
            )
            frames.append(run_sweep(early, tasks, split, [rb], groups=docs, n_boot=0, progress=False))
    scores = pd.concat([_rows(family, f) for f in frames], ignore_index=True)
    test = np.zeros(len(examples), dtype=bool)
    test[split.test] = True
    task_rows = [
        {
            "family": family,
            "task": name,
            "examples": int(np.isfinite(y).sum()),
            "test_positives": int(np.nansum(y[test])),
        }
        for name, y in tasks.items()
    ]
    surface = pd.DataFrame(columns=["family", "task", "baseline", "f1_test", "roc_auc_test"])
    if config.surface_baselines:
        table = surface_baselines(
            acts, tasks, split, lm.tokenizer, embeddings=embeddings, baselines=config.surface_baselines
        )
        if len(table):
            best = best_surface(table)
            surface = pd.DataFrame(
                {
                    "family": family,
                    "task": best["feature"],
                    "baseline": best["surface_baseline"],
                    "f1_test": best["surface_f1_test"],
                    "roc_auc_test": best["surface_roc_auc_test"],
                }
            )
    timing = {
        "family": family,
        "dataset": acts.dataset_key,
        "examples": len(examples),
        "tasks": len(tasks),
        "cache_s": cache_s,
        "probe_s": time.perf_counter() - t1,
    }
    return {
        "acts": acts,
        "tasks": tasks,
        "split": split,
        "task_rows": task_rows,
        "scores": scores,
        "surface": surface,
        "timing": timing,
    }


def _bigram_of(examples: pd.DataFrame, features: Sequence[str]) -> np.ndarray:
    """Per example: the feature (bigram) it is labelled for (its first non-missing feature)."""
    labelled = examples[list(features)].notna()
    return np.where(labelled.any(axis=1), labelled.idxmax(axis=1), "")


def _shared_neurons(summary: pd.DataFrame, early_layers: Sequence[int]) -> pd.DataFrame:
    rows = summary[summary["best_layer"].isin(list(early_layers))][["task", "best_layer", "best_support"]]
    rows = rows.explode("best_support").dropna(subset=["best_support"])
    if rows.empty:
        return pd.DataFrame(columns=["layer", "neuron", "n_bigrams", "bigrams"])
    rows = rows.astype({"best_support": int, "best_layer": int})
    out = (
        rows.groupby(["best_layer", "best_support"])["task"]
        .agg(n_bigrams="nunique", bigrams=lambda s: ", ".join(sorted(set(s))))
        .reset_index()
        .rename(columns={"best_layer": "layer", "best_support": "neuron"})
    )
    return out.sort_values(["n_bigrams", "layer", "neuron"], ascending=[False, True, True]).reset_index(drop=True)


def _neuron_effects(x: np.ndarray, tasks: Mapping[str, np.ndarray]) -> pd.DataFrame:
    rows = []
    for name, y in tasks.items():
        pos, neg = x[y == 1], x[y == 0]
        sd = np.sqrt((pos.var(ddof=1) + neg.var(ddof=1)) / 2) if min(pos.size, neg.size) > 1 else np.nan
        d = (pos.mean() - neg.mean()) / sd if sd and np.isfinite(sd) and sd > 0 else np.nan
        rows.append({"task": name, "mean_positives": float(pos.mean()), "mean_negatives": float(neg.mean()), "d": d})
    return pd.DataFrame(rows).sort_values("d", key=np.abs, ascending=False).reset_index(drop=True)


def run(config: SuperpositionConfig, *, model: Any | None = None, weights: Any | None = None) -> SuperpositionResult:
    """Probe every family of ``config``, run the controls, pruning and the weight fingerprint (module docstring).

    ``model`` / ``weights`` are already loaded models (default: loaded from ``config.model`` /
    ``config.weights_model``). Raises ConfigError when a layer does not exist in a model.
    """
    from ..analysis import weights as wstats
    from ..analysis.inspection import top_examples
    from ..models import load_model
    from ..study import pruning_curve

    lm = load_model(config.model) if model is None else model
    too_deep = [layer for layer in config.layers if layer >= lm.n_layers]
    if too_deep:
        raise ConfigError(f"layers {too_deep} do not exist in {config.model} ({lm.n_layers} layers); set layers")
    wm = (
        lm
        if config.weights_model == config.model
        else (load_model(config.weights_model) if weights is None else weights)
    )
    stats = wstats.mlp_input_stats(wm)
    n_w = int(stats["layer"].nunique())
    w_early = tuple(config.weights_early_layers) or tuple(range(max(1, -(-n_w // 3))))
    if max(w_early) >= n_w or len(set(w_early)) >= n_w:
        raise ConfigError(
            f"weights_early_layers {list(w_early)} must be some but not all of the {n_w} layers of "
            f"{config.weights_model} (0..{n_w - 1})"
        )
    probed = {family: _probe_family(config, lm, family) for family in config.families}
    tasks = pd.DataFrame([row for p in probed.values() for row in p["task_rows"]])
    tasks["status"] = np.where(tasks["test_positives"] < config.min_test_positives, INCONCLUSIVE, "ok")
    scores = pd.concat([p["scores"] for p in probed.values()], ignore_index=True)
    surfaces = [p["surface"] for p in probed.values() if len(p["surface"])]
    surface = pd.concat(surfaces, ignore_index=True) if surfaces else probed[config.primary]["surface"]
    summary = summarize(scores, tasks, surface, config.early_layers, config.main_method, config.claim_metric)

    primary = probed[config.primary]
    acts = primary["acts"]
    ps = summary[summary["family"] == config.primary]
    t0 = time.perf_counter()
    curves = []
    if config.pruning_bigrams:
        best_val = scores[(scores["family"] == config.primary) & (scores["method"] == config.main_method)]
        best_val = _choose(best_val[best_val["layer"].isin(config.early_layers)], ["task"])
        params = {"time_limit": config.pruning_time_limit} if config.pruning_method == "optimal" else {}
        for row in best_val.sort_values("roc_auc_val", ascending=False).head(config.pruning_bigrams).itertuples():
            try:
                curve = pruning_curve(
                    acts,
                    int(row.layer),
                    primary["tasks"][row.task],
                    primary["split"],
                    k=config.pruning_k,
                    n_steps=config.pruning_steps,
                    method=config.pruning_method,
                    random_state=config.seed,
                    **params,
                )
            except Exception as err:  # a failed pruning run is reported, not fatal
                warnings.warn(f"pruning of {row.task!r} failed: {err}", RuntimeWarning, stacklevel=2)
                continue
            curves.append(curve.assign(task=row.task))
    pruning = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()
    pruning_s = time.perf_counter() - t0

    shared = _shared_neurons(ps, config.early_layers)
    tops, effects = pd.DataFrame(), pd.DataFrame()
    if len(shared):
        layer, neuron = int(shared["layer"].iloc[0]), int(shared["neuron"].iloc[0])
        tops = top_examples(acts, layer, neuron, lm.tokenizer, n=config.n_top_examples)
        x = np.asarray(acts.layer(layer)[:, neuron], dtype=np.float64)
        order = np.argsort(-x, kind="stable")[: config.n_top_examples]
        bigram = _bigram_of(acts.examples, acts.features)[order]
        label = [
            primary["tasks"].get(b, np.full(len(x), np.nan))[i] if b else np.nan
            for b, i in zip(bigram, order, strict=True)
        ]
        tops = tops.drop(columns="labels").assign(
            bigram=bigram,
            label=["positive" if v == 1 else "negative" if v == 0 else "-" for v in label],
            # Pile windows hold LaTeX: a full-width dollar keeps the page from rendering it as math
            text=tops["text"].str.replace("$", "\uff04", regex=False),
        )[["activation", "bigram", "label", "text"]]
        effects = _neuron_effects(x, primary["tasks"])

    timings = pd.DataFrame([p["timing"] for p in probed.values()])
    timings.loc[timings["family"] == config.primary, "probe_s"] += pruning_s
    broad = []
    if config.broad:
        from .broad import broad_study

        common = dict(variant=config.variant, n_documents=config.n_documents.get(config.primary),
                      max_length=config.max_length, methods=config.broad_methods, ks=config.broad_ks,
                      corpus=config.broad_corpus, corpus_documents=config.broad_corpus_documents,
                      residual=config.broad_residual, min_positives=config.min_positives, seed=config.seed,
                      cache_batch=CACHE_BATCH)  # fmt: skip
        broad.append(broad_study(lm, config.primary, layers=config.layers, early_layers=config.early_layers, **common))
        for name in config.broad_models:
            if name != config.model:
                broad.append(broad_study(name, config.primary, **common))
    return SuperpositionResult(
        config=config,
        model_identity=str(getattr(lm, "identity", config.model)),
        n_layers=int(lm.n_layers),
        d_mlp=int(lm.d_mlp),
        tasks=tasks,
        scores=scores,
        surface=surface,
        pruning=pruning,
        shared=shared,
        top_examples=tops,
        neuron_effects=effects,
        weight_stats=stats,
        weights_early=w_early,
        weights_n_layers=n_w,
        timings=timings,
        broad=tuple(broad),
    )


# ---------------------------------------------------------------------------------------------- curves, tables
def k_curves(result: SuperpositionResult) -> pd.DataFrame:
    """Mean test score over the bigrams of each family against k, per band (early / later layers) and method: the
    layer chosen on validation within the band for every k. Columns ``family, band, method, k, test, n_tasks``."""
    metric = f"{result.config.claim_metric}_test"
    s = result.scores
    s = s.assign(band=np.where(s["layer"].isin(result.config.early_layers), "early", "later"))
    methods = [*result.config.methods, "control", "random_basis"]
    s = s[s["method"].isin(methods)]
    chosen = _choose(s, ["family", "band", "method", "task", "k"])
    grouped = chosen.groupby(["family", "band", "method", "k"], sort=False)
    return grouped.agg(test=(metric, "mean"), n_tasks=("task", "nunique")).reset_index()


def layer_curves(result: SuperpositionResult) -> pd.DataFrame:
    """Mean test score over the bigrams of each family against layer (k chosen on validation at every layer), for
    the main method, the single neuron and the dense probe. Columns ``family, method, layer, test, n_tasks``."""
    metric = f"{result.config.claim_metric}_test"
    s = result.scores[result.scores["method"].isin([result.config.main_method, "single_neuron", "dense"])]
    chosen = _choose(s, ["family", "method", "task", "layer"])
    grouped = chosen.groupby(["family", "method", "layer"], sort=False)
    return grouped.agg(test=(metric, "mean"), n_tasks=("task", "nunique")).reset_index()


def _mean_ci(values: pd.Series, seed: int = 0) -> str:
    from ..analysis.verdicts import format_ci

    v = values.dropna().to_numpy(float)
    if v.size < 2:
        return _fmt(float(v.mean())) if v.size else "n/a"
    r = paired_bootstrap(v, np.zeros_like(v), n_boot=2000, random_state=seed)
    return format_ci(r["mean_diff"], r["low"], r["high"])


def data_table(result: SuperpositionResult) -> pd.DataFrame:
    """Per family: role, bigrams, inconclusive bigrams, examples, fewest and median test positives."""
    rows = []
    for family in result.config.families:
        t = result.tasks[result.tasks["family"] == family]
        rows.append(
            {
                "family": family,
                "role": "primary" if family == result.config.primary else "secondary",
                "bigrams": len(t),
                "inconclusive": int((t["status"] == INCONCLUSIVE).sum()),
                "examples": int(result.timings.loc[result.timings["family"] == family, "examples"].iloc[0]),
                "fewest test positives": int(t["test_positives"].min()),
                "median test positives": f"{t['test_positives'].median():.0f}",
            }
        )
    return pd.DataFrame(rows)


def family_table(result: SuperpositionResult) -> pd.DataFrame:
    """Per family, early layers, means over bigrams with 95% intervals over bigrams: best single neuron, best k
    (median k), gain, shuffled-label control and random basis at the same k and layer, dense, surface baseline."""
    s = result.summary
    rows = []
    for family in result.config.families:
        d = s[s["family"] == family]
        kinds = d["surface_baseline"].dropna().value_counts()
        rows.append(
            {
                "family": family,
                "single neuron": _mean_ci(d["k1_test"]),
                "best k": _mean_ci(d["best_test"]),
                "median k": f"{d['best_k'].median():.0f}",
                "gain": _mean_ci(d["gain"]),
                "shuffled labels": _fmt(d["control_test"].mean()),
                "random basis": _fmt(d["random_test"].mean()),
                "dense": _fmt(d["dense_test"].mean()),
                "surface": f"{_fmt(d['surface_test'].mean())} ({kinds.index[0]})" if len(kinds) else "none",
                "later layers": _fmt(d["later_best_test"].mean()),
            }
        )
    return pd.DataFrame(rows)


def bigram_table(result: SuperpositionResult, *, n: int = 10) -> pd.DataFrame:
    """The primary family's ``n`` bigrams with the largest gain: early layer and neuron of the single neuron, its
    test score (95% interval over documents), best k with layer and score, gain, surface baseline, status."""
    from ..analysis.verdicts import format_ci

    s = result.summary
    s = s[s["family"] == result.config.primary].sort_values("gain", ascending=False).head(n)
    return pd.DataFrame(
        {
            "bigram": s["task"].str.replace("_", " "),
            "test positives": s["test_positives"].astype(int),
            "single neuron (layer/neuron)": [
                f"L{int(a)} N{int(b)}" for a, b in zip(s["k1_layer"], s["k1_neuron"], strict=True)
            ],
            "single neuron": [format_ci(*r) for r in s[["k1_test", "k1_low", "k1_high"]].to_numpy()],
            "best k (layer)": [
                f"{int(k)} (L{int(layer)})" for k, layer in zip(s["best_k"], s["best_layer"], strict=True)
            ],
            "best k": [format_ci(*r) for r in s[["best_test", "best_low", "best_high"]].to_numpy()],
            "gain": [_fmt(v) for v in s["gain"]],
            "surface": [
                f"{_fmt(v)} ({b})" if isinstance(b, str) else "none"
                for v, b in zip(s["surface_test"], s["surface_baseline"], strict=True)
            ],
            "status": s["status"],
        }
    ).reset_index(drop=True)


def random_basis_table(result: SuperpositionResult) -> pd.DataFrame:
    """Primary family, early layers: mean test score over bigrams at every k (layer chosen on validation per k) on
    neurons and in the random basis, and the paired difference with its interval over bigrams."""
    from ..analysis.verdicts import format_ci

    c = result.config
    metric = f"{c.claim_metric}_test"
    s = result.scores
    s = s[(s["family"] == c.primary) & s["layer"].isin(c.early_layers)]
    neurons = _choose(s[s["method"] == c.main_method], ["task", "k"])
    rand = s[s["method"] == "random_basis"].set_index(["task", "k", "layer"])[metric]
    rows = []
    for k, d in neurons.groupby("k"):
        r = rand.reindex(list(zip(d["task"], d["k"], d["layer"], strict=True))).to_numpy(float)
        ok = np.isfinite(r)
        if not ok.any():
            continue
        diff = paired_bootstrap(d[metric].to_numpy(float)[ok], r[ok], n_boot=2000, random_state=c.seed)
        rows.append(
            {
                "k": int(k),
                "neurons": _fmt(diff["mean_a"]),
                "random basis": _fmt(diff["mean_b"]),
                "neurons minus random": format_ci(diff["mean_diff"], diff["low"], diff["high"]),
                "bigrams where neurons win": f"{diff['frac_positive'] * diff['n_tasks']:.0f}/{diff['n_tasks']}",
            }
        )
    return pd.DataFrame(rows)


def fingerprint_layer_table(result: SuperpositionResult) -> pd.DataFrame:
    """Per layer of ``weights_model``: band, relative depth, the percentiles of ``||W_in|| b_in`` (the paper's
    statistic), median norm, median bias, share of negative biases, Spearman(norm, bias), as strings."""
    from ..analysis.weights import fingerprint_table

    t = fingerprint_table(result.weight_stats).reset_index()
    n = max(1, result.weights_n_layers - 1)
    return pd.DataFrame(
        {
            "layer": t["layer"].astype(int),
            "band": ["early" if layer in result.weights_early else "later" for layer in t["layer"]],
            "depth": [_fmt(layer / n) for layer in t["layer"]],
            "||W_in|| b_in p20 / median / p80": [
                f"{_fmt(a)} / {_fmt(b)} / {_fmt(c)}"
                for a, b, c in zip(t["p20_biasxnorm"], t["median_biasxnorm"], t["p80_biasxnorm"], strict=True)
            ],
            "median norm": [_fmt(v, 3) for v in t["median_norm"]],
            "median bias": [_fmt(v, 3) for v in t["median_bias"]],
            "negative biases": [_fmt(v) for v in t["share_negative_bias"]],
            "Spearman(norm, bias)": [_fmt(v) for v in t["spearman_norm_bias"]],
        }
    )


# ---------------------------------------------------------------------------------------------- figures
def paper_biasxnorm_table() -> pd.DataFrame:
    """The paper's released layer-1 ``||W_in|| b_in`` percentiles per Pythia size (:data:`PAPER_BIASXNORM_LAYER1`)."""
    return pd.DataFrame(
        [{"model": m, "layer": 1, "p20": a, "median": b, "p80": c} for m, (a, b, c) in PAPER_BIASXNORM_LAYER1.items()]
    )


def plot_k(result: SuperpositionResult) -> Any:
    """One panel per family: mean test score over bigrams against k in the early layers (solid) and the later layers
    (dotted) for the main probe, with the shuffled-label control and the random basis (early layers), and as
    horizontal lines the best single neuron and the best surface baseline (early layers)."""
    import matplotlib.pyplot as plt

    from ..plots import zoom_near_top

    c = result.config
    curves = k_curves(result)
    s = result.summary
    fig, axes = plt.subplots(1, len(c.families), figsize=(4.3 * len(c.families), 3.3), squeeze=False, sharey=True)
    styles = {
        (c.main_method, "early"): ("C0", "-", f"{c.main_method}, early layers"),
        (c.main_method, "later"): ("C0", ":", f"{c.main_method}, later layers"),
        ("random_basis", "early"): ("C4", "--", "random basis, early"),
        ("control", "early"): ("C3", "--", "shuffled labels, early"),
    }
    for ax, family in zip(axes[0], c.families, strict=True):
        d = curves[curves["family"] == family]
        for (method, band), (color, ls, label) in styles.items():
            m = d[(d["method"] == method) & (d["band"] == band)]
            if len(m):
                ax.plot(m["k"], m["test"], color=color, ls=ls, marker="o", ms=3, label=label)
        f = s[s["family"] == family]
        ax.axhline(f["k1_test"].mean(), color="C1", lw=1.2, label="best single neuron, early")
        if f["surface_test"].notna().any():
            ax.axhline(f["surface_test"].mean(), color="grey", ls="-.", lw=1, label="surface baseline")
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(c.ks))
        ax.set_xticklabels([str(k) for k in c.ks])
        ax.set(
            title=f"{family} ({len(f)} bigrams)",
            xlabel="k (neurons)",
            ylim=(0, 1.02),
            ylabel=f"test {'F1' if c.claim_metric == 'f1' else 'ROC-AUC'}",
        )
        zoom_near_top(ax)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, bbox_to_anchor=(0.5, -0.12), frameon=False, fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


def caption_k(result: SuperpositionResult) -> str:
    s = result.summary
    p = s[s["family"] == result.config.primary]
    return (
        f"Mean test score over bigrams against the number of neurons k (layer chosen on "
        "validation for every k, separately among the early and the later layers), with the shuffled-label control, "
        "the random basis and, as lines, the best single neuron and the best surface baseline. On the primary "
        f"family `{result.config.primary}` the best k gains {_fmt(p['gain'].mean())} over the best single neuron "
        f"({_fmt(p['k1_test'].mean())} -> {_fmt(p['best_test'].mean())}), while the surface baseline reaches "
        f"{_fmt(p['surface_test'].mean())}."
    )


def plot_bigrams(result: SuperpositionResult) -> Any:
    """Primary family, one row per bigram: test score of the best single neuron and of the best k (early layers,
    95% intervals over documents), and the best surface baseline."""
    import matplotlib.pyplot as plt

    s = result.summary
    s = s[s["family"] == result.config.primary].sort_values("gain").reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(7.5, 0.26 * len(s) + 1.2))
    y = np.arange(len(s))
    for col, low, high, color, label, dy in (
        ("k1_test", "k1_low", "k1_high", "C1", "best single neuron", -0.15),
        ("best_test", "best_low", "best_high", "C0", "best k", 0.15),
    ):
        err = np.vstack([(s[col] - s[low]).clip(lower=0), (s[high] - s[col]).clip(lower=0)]).astype(float)
        err = np.nan_to_num(err)
        ax.errorbar(s[col], y + dy, xerr=err, fmt="o", color=color, ms=4, lw=1, label=label)
    ax.scatter(s["surface_test"], y, marker="|", s=120, color="grey", label="surface baseline", zorder=3)
    ax.set_yticks(y)
    ax.set_yticklabels(
        [f"{t.replace('_', ' ')} (k={int(k)})" for t, k in zip(s["task"], s["best_k"], strict=True)], fontsize=8
    )
    ax.set(xlabel=f"test {'F1' if result.config.claim_metric == 'f1' else 'ROC-AUC'}, early layers", xlim=(0, 1.02))
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


def caption_bigrams(result: SuperpositionResult) -> str:
    s = result.summary
    p = s[s["family"] == result.config.primary]
    return (
        f"Per bigram of `{result.config.primary}`: the best single neuron and the best k-sparse "
        "probe of the early layers (test score, 95% interval over documents; layer and k chosen on validation), and "
        f"the best surface baseline. The best k beats the single neuron on {int((p['gain'] > 0).sum())} of {len(p)} "
        f"bigrams and the surface baseline on {int((p['margin'] > 0).sum())}."
    )


def plot_layers(result: SuperpositionResult) -> Any:
    """Mean test score over bigrams against layer (k chosen on validation at every layer): main probe, best single
    neuron, dense probe; the early layers shaded."""
    import matplotlib.pyplot as plt

    c = result.config
    curves = layer_curves(result)
    fig, axes = plt.subplots(1, len(c.families), figsize=(4.3 * len(c.families), 3.1), squeeze=False, sharey=True)
    styles = {
        c.main_method: ("C0", "-", f"{c.main_method}, best k"),
        "single_neuron": ("C1", "-", "single neuron"),
        "dense": ("C2", ":", "dense (early layers)"),
    }
    for ax, family in zip(axes[0], c.families, strict=True):
        d = curves[curves["family"] == family]
        for method, (color, ls, label) in styles.items():
            m = d[d["method"] == method].sort_values("layer")
            if len(m):
                ax.plot(m["layer"], m["test"], color=color, ls=ls, marker="o", ms=3, label=label)
        ax.axvspan(min(c.early_layers) - 0.4, max(c.early_layers) + 0.4, color="C1", alpha=0.08)
        ax.set(title=family, xlabel="layer", ylim=(0, 1.02), ylabel="test score (mean over bigrams)")
        ax.set_xticks(list(c.layers))
    axes[0, 0].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    plt.close(fig)
    return fig


def caption_layers(result: SuperpositionResult) -> str:
    curves = layer_curves(result)
    main = curves[(curves["family"] == result.config.primary) & (curves["method"] == result.config.main_method)]
    top = main.loc[main["test"].idxmax()] if len(main) else None
    s = result.summary
    p = s[s["family"] == result.config.primary]
    n_early = int(p["any_layer"].isin(result.config.early_layers).sum())
    where = f" peaks at layer {int(top['layer'])} ({_fmt(top['test'])})" if top is not None else ""
    return (
        f"Mean test score over bigrams against layer (k chosen on validation at every layer; "
        f"early layers shaded). On `{result.config.primary}` the sparse probe{where}; the layer chosen on validation "
        f"over all probed layers is an early one for {n_early} of {len(p)} bigrams."
    )


def plot_pruning(result: SuperpositionResult) -> Any:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.0))
    for i, (task, d) in enumerate(result.pruning.groupby("task", sort=False)):
        ax.plot(d["step"], d["f1_test"], marker="o", ms=3, color=f"C{i}", label=f"{task.replace('_', ' ')} (test)")
        ax.plot(d["step"], d["removed_f1"], ls=":", color=f"C{i}")
    ax.set(xlabel="neurons removed", ylabel="F1", ylim=(0, 1.02))
    ax.legend(fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


def caption_pruning(result: SuperpositionResult) -> str:
    from ..analysis.verdicts import calibrated_power

    p = result.pruning
    first = p.groupby("task")["f1_test"].first().mean()
    last = p.groupby("task")["f1_test"].last().mean()
    power = calibrated_power("pruning")
    c = result.config
    return (
        f"Iterative pruning ({c.pruning_method} probe, k = {c.pruning_k}): the test F1 of the "
        "re-fitted probe (solid) and the validation F1 of the neuron removed at each step, alone (dotted). Mean "
        f"test F1 over these {p['task'].nunique()} bigrams: {_fmt(first)} before and {_fmt(last)} after "
        f"{int(p['step'].max())} removals. "
        + (
            "The pruning diagnostic's calibrated power is not known"
            if power is None
            else f"The pruning diagnostic's calibrated power at book size is {power:.2f}"
        )
        + ", so this curve illustrates and does not test."
    )


def plot_fingerprint(result: SuperpositionResult) -> Any:
    from ..analysis.weights import plot_fingerprint as plot

    return plot(result.weight_stats, title=f"MLP input weights of {result.config.weights_model} (LayerNorm folded in)")


def caption_fingerprint(result: SuperpositionResult) -> str:
    from ..analysis.weights import has_input_bias

    early = ", ".join(str(layer) for layer in result.weights_early)
    text = (
        f"Per layer of `{result.config.weights_model}` ({result.weights_n_layers} layers; early: "
        f"{early}): the input-weight norm of every neuron"
    )
    if not has_input_bias(result.weight_stats):
        return (
            text + ". This MLP has no input biases (a gated MLP), so the bias half of the fingerprint does not exist."
        )
    t = result.weight_stats
    e = t["layer"].isin(result.weights_early)
    return (
        text + " and its input bias. Negative biases: "
        f"{_fmt(float((t.loc[e, 'b_in'] < 0).mean()))} of the early neurons, {_fmt(float((t.loc[~e, 'b_in'] < 0).mean()))} "
        f"of the later ones; median norm {_fmt(float(t.loc[e, 'w_in_norm'].median()), 3)} against "
        f"{_fmt(float(t.loc[~e, 'w_in_norm'].median()), 3)}."
    )


# ---------------------------------------------------------------------------------------------- prose
def findings(result: SuperpositionResult, claims: Sequence[Any]) -> str:
    """Markdown bullets on what the chapter shows, computed from the result and the claim records."""
    from ..analysis.verdicts import describe_correlation, describe_difference, verdict
    from ..analysis.weights import has_input_bias

    c = result.config
    s = result.summary
    lines = []
    by_name = {cl.claim: cl for cl in claims}
    sup = by_name.get("superposition in early layers")
    if sup is not None:
        for part in sup.parts or (sup,):
            lines.append(
                f"* **{part.claim} ({verdict(part)}).** On the paper's bigrams ({part.n_tasks}, fewest targets "
                f"{part.min_test_positives}): {part.measure}: "
                + describe_difference("the combination", "the single neuron", part.estimate, part.ci_low, part.ci_high)
                + (f" (minimal effect of interest {part.minimal_effect:.2f})." if part.minimal_effect else ".")
            )
        if sup.surface_margin is not None:
            lines.append(
                "* **Surface baseline.** "
                + describe_difference("the early sparse probe", "the best surface baseline", *sup.surface_margin)
                + ". A compound word is a pair of tokens, so the bigram one-hot decodes it by construction: a "
                "negative or zero margin is expected and says that the neurons add nothing the tokens do not."
            )
        lines.append(f"* **Controls.** {sup.control}.")
    for family in c.families[1:]:
        d = s[s["family"] == family]
        n_inc = int((d["status"] == INCONCLUSIVE).sum())
        lines.append(
            f"* **Secondary `{family}`** ({len(d)} bigrams, {n_inc} with fewer than {c.min_test_positives} test "
            f"positives{': inconclusive' if n_inc == len(d) else ''}): best single neuron {_fmt(d['k1_test'].mean())}, "
            f"best k {_fmt(d['best_test'].mean())}, surface {_fmt(d['surface_test'].mean())}."
        )
    if len(result.shared):
        top = result.shared.iloc[0]
        n_big = result.top_examples["bigram"].nunique() if len(result.top_examples) else 0
        strong = int((result.neuron_effects["d"].abs() >= 1).sum()) if len(result.neuron_effects) else 0
        lines.append(
            f"* **Shared neurons.** Layer {int(top['layer'])} neuron {int(top['neuron'])} is in the chosen probes of "
            f"{int(top['n_bigrams'])} bigrams; its {len(result.top_examples)} strongest examples come from {n_big} "
            f"bigram(s), and it separates positives from negatives by at least one standard deviation for {strong} "
            f"of {len(result.neuron_effects)} bigrams."
        )
    fp = by_name.get("weight fingerprint")
    if fp is not None:
        stats = result.weight_stats
        early = stats[stats["layer"].isin(result.weights_early)]
        from scipy.stats import spearmanr

        varies = early["w_in_norm"].nunique() > 1 and early["b_in"].nunique() > 1
        rho = float(spearmanr(early["w_in_norm"], early["b_in"]).statistic) if varies else float("nan")
        lines.append(
            f"* **Weight fingerprint ({verdict(fp)}; `{c.weights_model}`).** "
            + "; ".join(
                describe_difference(
                    p.measure.split(",")[0] + " (early)", "later layers", p.estimate, p.ci_low, p.ci_high
                )
                for p in fp.parts
            )
            + f"; within the early layers {describe_correlation('Spearman(norm, bias)', rho)}. Intervals resample "
            "neurons, which are not independent: read them as optimistic. " + fp.control + "."
        )
    elif not has_input_bias(result.weight_stats):
        lines.append(
            f"* **Weight fingerprint: not available.** `{c.weights_model}` has a gated MLP without input biases, so "
            "the bias half of the fingerprint does not exist; set `weights_model` to a GELU/ReLU model (mini-4, "
            "Pythia) to test it."
        )
    return "\n".join(lines)
