"""Context neurons: do single neurons detect a context, where in depth, does the model use them, and facts.

Gurnee et al. (2023) find single neurons in the middle layers of Pythia models that each detect one context (a natural
language, a programming language, a source of text) with F1 near 1, show that zeroing such a neuron raises the
next-token loss on text of its context much more than on other text, and probe facts about people named in text.
This module tests four claims, each through :mod:`sparse_probing.analysis.verdicts`:

* **existence**: the share of context classes (one context against the others of its family) that have a *context
  neuron*: a single neuron whose cross-validated F1 is within :data:`NEAR_DENSE` of the dense probe on every neuron,
  above the current-token baseline, and that passes a token-controlled test: on held-out text its activation on a
  token inside the context exceeds its activation on the *same token id* outside it
  (:func:`~sparse_probing.analysis.specificity.token_matched_auc` >= :data:`MIN_TOKEN_AUC`), so a detector of tokens
  frequent in the context is not counted;
* **depth**: how far inside the middle third of the network the mean relative depth of the layer chosen on
  validation lies (an unbiased estimand: no maximum over noisy test scores), CI over classes;
* **factual**: the best single neuron's F1 on the paper's Wikidata properties minus a probe on the name's own tokens;
* **ablation**: every conclusive class of the document-level families has its chosen neuron mean-ablated on held-out
  texts of its class and of other classes (zero ablation beside it); the loss increase on its own texts minus other
  texts is compared with the same quantity for every neuron of its layer, estimated by attribution patching
  (:func:`~sparse_probing.analysis.ablation.attribution_effects`, checked exactly on a sample).

Scores are cross-validated (:func:`~sparse_probing.splits.grouped_cv`: grouped K-fold, layer and neuron chosen on
each fold's validation rows, every document tested once), so every self-built class reaches 30 test positives
without more caching. Baselines at each fold's chosen layer: the dense probe, the same exhaustive 1-sparse search in
Haar-random bases (``random_basis``) and on shuffled labels (``control``), and the surface baselines of
:mod:`sparse_probing.analysis.surface` (current token; bag of tokens, a ceiling for document contexts and the
name-token baseline for facts). The case neuron of a class (case studies, token control, ablation) is the one chosen
in fold 0; its held-out texts are documents that fold 0 neither trained nor validated on.

:func:`run` returns a :class:`MonosemanticResult` of tidy tables; :meth:`MonosemanticResult.claims` gives the
:class:`~sparse_probing.analysis.verdicts.ClaimEvidence` records.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning

from ..analysis.statistics import (
    bootstrap_statistic,
    is_dedicated,
    mde_from_interval,
    minimal_detectable_effect,
)
from ..analysis.verdicts import ClaimEvidence, format_ci
from ..analysis.verdicts import format_number as _fmt
from ._config import ChapterConfig, ConfigError

__all__ = [
    "CHAPTER",
    "INCONCLUSIVE",
    "THIRDS",
    "MonosemanticConfig",
    "MonosemanticResult",
    "ablation_claim",
    "ablation_table",
    "attribution_check_table",
    "caption_ablation",
    "caption_cards",
    "caption_cases",
    "caption_depth",
    "caption_layers",
    "class_table",
    "compound_depth",
    "context_neurons",
    "dedicated_calibration",
    "depth_claim",
    "depth_table",
    "existence_claim",
    "factual_claim",
    "family_table",
    "findings",
    "is_factual",
    "is_primary",
    "neuron_cards",
    "plot_ablation",
    "plot_cases",
    "plot_depth",
    "plot_layers",
    "relative_depth",
    "run",
    "searched_layers",
    "styled",
    "third_of",
    "top_text_tables",
]

CHAPTER = "04_monosemantic"
THIRDS: tuple[str, ...] = ("first", "middle", "last")
INCONCLUSIVE = "inconclusive"
"""Status of a class with fewer test positives than :attr:`MonosemanticConfig.min_test_positives`."""
FACTUAL_FAMILIES: tuple[str, ...] = ("paper_factual", "factual")
"""Families whose classes are properties of a named person, not contexts."""

PAPER_EXISTENCE = (
    "single neurons detect one context with F1 near 1 (Pythia-70M L3 N609 French; Pythia-1B L10 N3855 Python, "
    "L6 N3108 Go; Pythia-6.9B L8 N1816 patents)"
)
MIN_SHARE = 0.25
"""Minimal effect of interest of the existence claim: the share of context classes with a context neuron."""
MIN_SHARE_SOURCE = (
    "the paper shows context neurons for the languages, code languages and text sources it probes, as typical "
    "cases; under a quarter of the classes would make them a curiosity of a few contexts, not a property of the "
    "model"
)
NEAR_DENSE = 0.05
"""A context neuron's cross-validated F1 is at least the dense probe's minus this."""
MIN_TOKEN_AUC = 0.6
"""A context neuron's token-matched ROC-AUC (same token ids inside against outside the context) is at least this."""

PAPER_DEPTH = (
    "context neurons lie in the middle layers (relative depth 0.60 for French in Pythia-70M, 0.67 for Python and "
    "0.40 for Go in Pythia-1B: mean 0.56)"
)
MIN_DEPTH = 0.05
"""Minimal effect of interest of the depth claim: the mean relative depth lies this far inside the middle third."""
MIN_DEPTH_SOURCE = (
    "the paper's three examples have a mean relative depth of 0.56, 0.11 inside the middle third's edge; half of "
    "that is the least that is not 'at the edge of the middle third'"
)

PAPER_FACTUAL = (
    "single neurons decode facts about a named person (gender; sport, where 'football' neurons are general sport "
    "neurons; is_alive about 0.88 F1 in Pythia-6.9B)"
)
MIN_FACTUAL = 0.05
"""Minimal effect of interest of the factual claim: F1 of the best single neuron above the name-token probe."""
MIN_FACTUAL_SOURCE = (
    "a neuron that reads a fact rather than the name must beat a probe on the name's own tokens (a first-name "
    "probe alone decodes gender); 0.05 F1 is the smallest margin the paper's F1 tables resolve"
)

PAPER_ABLATION = "zeroing a context neuron raises the loss on text of its context much more than on other text"
MIN_ABLATION = 0.1
"""Minimal effect of interest of the ablation: % of the clean loss, own context minus other text."""
MIN_ABLATION_SOURCE = (
    "the paper shows the loss rising on the neuron's own context and not elsewhere, without a number we can carry "
    "over; one neuron of thousands raising its context's loss by 0.1% of the clean loss more than elsewhere is "
    "the smallest effect we would call specific"
)
ESTIMATOR = (
    "grouped K-fold cross-validation (layer and neuron chosen on each fold's validation rows, every document "
    "tested once); bootstrap over classes"
)


def is_primary(family: str) -> bool:
    """The paper's own datasets (``paper_*``) are the primary evidence; self-built families are secondary."""
    return family.startswith("paper_")


def is_factual(family: str) -> bool:
    """Families of facts about named people (:data:`FACTUAL_FAMILIES`); every other family holds contexts."""
    return family in FACTUAL_FAMILIES


def relative_depth(layer: Any, n_layers: int) -> Any:
    """``layer / (n_layers - 1)``: 0 for the first layer, 1 for the last."""
    return np.asarray(layer, dtype=float) / max(n_layers - 1, 1)


def third_of(layer: int, n_layers: int) -> str:
    """The third of the network a layer lies in, by relative depth ``layer / (n_layers - 1)``: below 1/3 first,
    below 2/3 middle, else last. 30 layers give 0-9, 10-19, 20-29; 6 layers 0-1, 2-3, 4-5; 2 layers have no middle."""
    if not 0 <= layer < n_layers:
        raise ValueError(f"layer {layer} is outside 0..{n_layers - 1}")
    depth = layer / max(n_layers - 1, 1)
    return THIRDS[0] if depth < 1 / 3 else THIRDS[1] if depth < 2 / 3 else THIRDS[2]


def searched_layers(n_layers: int, per_third: int | None = None) -> tuple[int, ...]:
    """The layers searched: every layer (``per_third=None``), or in each third (:func:`third_of`) ``per_third``
    layers evenly spaced from its first to its last layer (all of them when the third is smaller). 30 layers and 4
    per third give 0, 3, 6, 9, 10, 13, 16, 19, 20, 23, 26, 29; any model gets the same spread."""
    if per_third is None:
        return tuple(range(n_layers))
    out: list[int] = []
    for t in THIRDS:
        members = [x for x in range(n_layers) if third_of(x, n_layers) == t]
        if len(members) <= per_third:
            out += members
        else:
            picks = np.round(np.linspace(0, len(members) - 1, per_third)).astype(int)
            out += [members[i] for i in dict.fromkeys(picks.tolist())]
    return tuple(out)


@dataclass(frozen=True)
class MonosemanticConfig(ChapterConfig):
    """Parameters of :func:`run` (the chapter notebook's parameter cell)."""

    model: str = "smollm2-135m"
    """Model name for :func:`sparse_probing.models.load_model`."""
    variant: str = "default"
    """Dataset size variant."""
    families: tuple[str, ...] = ("paper_code", "paper_factual", "natural_language", "code_language", "data_source")
    """Families probed; ``paper_*`` are the primary evidence. ``paper_factual`` and ``factual`` hold facts, the
    others contexts. A dataset file's path probes a user's dataset."""
    max_length: int = 128
    """Tokens per document."""
    max_lengths: Mapping[str, int] = field(default_factory=dict)
    """Family -> context length overriding ``max_length``."""
    n_documents: Mapping[str, int] = field(default_factory=dict)
    """Family -> the first this many documents (all when absent)."""
    max_tasks: Mapping[str, int] = field(default_factory=dict)
    """Family -> at most this many classes, the most frequent first."""
    layers_per_third: int | None = None
    """Layers searched per third of the model, evenly spaced (None: every layer)."""
    n_folds: int = 5
    """Folds of the grouped cross-validation."""
    min_positives: int = 10
    """A class is a task only with this many positives and negatives."""
    min_test_positives: int = 30
    """Fewer test positives (over all folds): the class is inconclusive."""
    surface_baselines: tuple[str, ...] = ("token", "bag_of_tokens")
    """Surface baselines (``token`` is the existence rule's hurdle, ``bag_of_tokens`` the factual claim's)."""
    n_rotations: int = 2
    """Random bases averaged by the random-basis baseline."""
    n_boot: int = 200
    """Bootstrap resamples of the claims' intervals."""
    n_top_examples: int = 3
    """Most-activating texts per case-study neuron."""
    n_card_texts: int = 3
    """Texts on every named neuron's card (its most extreme documents in its class's direction; 0: no cards)."""
    case_classes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Family -> classes shown as case studies (activation histogram and top texts)."""
    ablation_families: tuple[str, ...] = ("paper_code", "natural_language", "code_language", "data_source")
    """Document-level families whose every conclusive class is ablated."""
    n_ablation_texts: int = 30
    """Held-out texts per ablated class (target) and as many of the family's other classes."""
    ablation_length: int = 64
    """Tokens of each ablated text (its first this many, at most the family's context length): the loss is read
    on them with and without the neuron, for attribution patching and exact ablation alike."""
    n_checked_cases: int = 2
    """Ablated classes whose attribution estimates are checked by exact ablation."""
    n_checked_neurons: int = 4
    """Random neurons of the layer checked exactly in each checked class (beside the chosen one)."""
    token_control: bool = True
    """Run the token-controlled test on the context families' held-out documents."""
    seed: int = 0
    """Seed of the folds, the held-out texts, the checked neurons, rotations and shuffles."""

    def __post_init__(self) -> None:
        need = self.require

        need(bool(self.families), "families is empty; name at least one family, e.g. ['paper_code']")
        need(len(set(self.families)) == len(self.families), f"families repeat: {list(self.families)}")
        need(self.max_length >= 2, f"max_length must be at least 2 tokens, got {self.max_length}")
        for name, mapping, low in (
            ("max_lengths", self.max_lengths, 2),
            ("n_documents", self.n_documents, 2),
            ("max_tasks", self.max_tasks, 1),
        ):
            stray = sorted(set(mapping) - set(self.families))
            need(not stray, f"{name} names families that are not probed: {stray}; probed: {list(self.families)}")
            bad = {k: v for k, v in mapping.items() if not isinstance(v, int) or v < low}
            need(not bad, f"{name} values must be integers >= {low}, got {bad}")
        if self.layers_per_third is not None:
            need(
                self.layers_per_third >= 1,
                f"layers_per_third must be at least 1 (or null), got {self.layers_per_third}",
            )
        need(self.n_folds >= 2, f"n_folds must be at least 2, got {self.n_folds}")
        need(self.min_positives >= 2, f"min_positives must be at least 2, got {self.min_positives}")
        need(self.min_test_positives >= 1, f"min_test_positives must be at least 1, got {self.min_test_positives}")
        from ..analysis.surface import BASELINES

        unknown = sorted(set(self.surface_baselines) - set(BASELINES))
        need(not unknown, f"unknown surface baselines {unknown}; choose from {list(BASELINES)}")
        need("embedding" not in self.surface_baselines, "the embedding baseline is not run here (its own cache)")
        need(self.n_rotations >= 1, f"n_rotations must be at least 1, got {self.n_rotations}")
        need(self.n_boot >= 1, f"n_boot must be at least 1, got {self.n_boot}")
        need(self.n_top_examples >= 1, f"n_top_examples must be at least 1, got {self.n_top_examples}")
        for name, names in (("case_classes", tuple(self.case_classes)), ("ablation_families", self.ablation_families)):
            stray = sorted(set(names) - set(self.families))
            need(not stray, f"{name} names families that are not probed: {stray}; probed: {list(self.families)}")
        facts = sorted(f for f in self.ablation_families if is_factual(f))
        need(not facts, f"ablation_families holds fact families {facts}: ablation needs document-level contexts")
        need(self.n_card_texts >= 0, f"n_card_texts must be 0 (no cards) or more, got {self.n_card_texts}")
        need(self.n_ablation_texts >= 2, f"n_ablation_texts must be at least 2, got {self.n_ablation_texts}")
        need(self.ablation_length >= 2, f"ablation_length must be at least 2 tokens, got {self.ablation_length}")
        need(self.n_checked_cases >= 0, f"n_checked_cases must be at least 0, got {self.n_checked_cases}")
        need(self.n_checked_neurons >= 1, f"n_checked_neurons must be at least 1, got {self.n_checked_neurons}")

    def context_length(self, family: str) -> int:
        """The context length used for ``family``."""
        return int(self.max_lengths.get(family, self.max_length))


@dataclass(frozen=True)
class MonosemanticResult:
    """What :func:`run` measured, as tidy tables."""

    config: MonosemanticConfig
    model_identity: str
    n_layers: int
    d_mlp: int
    layers: tuple[int, ...]
    """The layers searched."""
    per_layer: pd.DataFrame
    """One row per (family, task, layer): ``class, third``, the best single neuron's ``f1_test`` and
    ``roc_auc_test`` (mean over folds; the neuron chosen on each fold's validation rows)."""
    summary: pd.DataFrame
    """One row per (family, task): ``class, primary, kind`` (context or fact), ``examples, test_positives,
    n_folds, status``; the best single neuron with its layer chosen on validation in each fold: ``f1_test``,
    ``roc_auc_test`` (means over folds, ``_sd`` their spread), ``chosen_layers`` and ``depth`` (mean relative
    depth), ``dedicated``; fold 0's choice ``layer, neuron`` and its best middle-third neuron
    ``middle_layer, middle_neuron``; per third ``<third>_f1`` and ``<third>_roc_auc``; baselines at each fold's
    chosen layer ``dense_*, random_basis_*, control_*``, the surface baselines ``token_f1``,
    ``bag_of_tokens_f1`` and the best one ``surface_baseline, surface_f1, surface_roc_auc``; the token-controlled
    test ``token_auc, token_pairs``; and ``context_neuron`` (:func:`context_neurons`)."""
    cases: pd.DataFrame
    """One row per case study: ``family, task, class, layer, neuron, raises`` (the class raises the neuron)."""
    case_activations: pd.DataFrame
    """Per case study, every cached example: ``family, class, activation, in_class``."""
    top_texts: pd.DataFrame
    """Per case study the most extreme examples in the class's direction: ``family, class, activation, text,
    labels``."""
    ablation: pd.DataFrame
    """One row per ablated class: ``family, class, layer, neuron, n_target, n_other, clean_loss``; ``effect`` (exact
    mean ablation: mean % loss increase on target minus other texts), ``effect_zero_attr`` (zero ablation, attribution
    estimate), ``effect_attr`` (mean ablation, attribution estimate), ``layer_q95`` (the 95th percentile of the
    attribution estimates over every neuron of the layer) and ``percentile`` (where the exact effect falls among
    them), ``middle_layer, middle_neuron, middle_effect_attr,
    middle_percentile`` (the best middle-third neuron)."""
    effects: pd.DataFrame
    """Exact mean ablation of each chosen neuron, one row per (class, text): ``family, class, group, text, loss,
    ablated, delta, pct``."""
    attribution_check: pd.DataFrame
    """Exact against estimated effect (% target minus other) for sampled neurons: ``family, class, layer, neuron,
    chosen, exact, estimate``."""
    timings: pd.DataFrame
    """Per family: ``dataset`` (versioned key), ``examples``, ``tasks``, ``cache_s``, ``probe_s``, ``control_s``,
    ``ablation_s``."""
    cards: Mapping[tuple[int, int], tuple[str, list[Any]]] = field(default_factory=dict)
    """(layer, neuron) of every class's fold-0 neuron -> (its classes, its top contexts as
    :class:`~sparse_probing.analysis.cards.Context`)."""

    @property
    def datasets(self) -> dict[str, str]:
        return dict(zip(self.timings["family"], self.timings["dataset"], strict=True))

    def claims(
        self, power: float | None = None, false_positive_rate: float | None = None, compound: Any = None
    ) -> list[ClaimEvidence]:
        """The chapter's claims that apply to this run: existence, depth (when the model has a middle third),
        factual (when a fact family ran) and ablation (when a class was ablated). ``power`` and
        ``false_positive_rate`` of the ground-truth chapter's ``dedicated`` diagnostic are quoted in the existence
        claim's control text; ``compound`` (:func:`compound_depth`) in the depth claim's."""
        n_boot, seed = self.config.n_boot, self.config.seed
        out = [
            existence_claim(self.summary, n_boot=n_boot, seed=seed, dedicated_calibration=(power, false_positive_rate)),
            depth_claim(self.summary, self.n_layers, n_boot=n_boot, seed=seed, compound=compound),
            factual_claim(self.summary, n_boot=n_boot, seed=seed),
            ablation_claim(self.ablation, self.attribution_check, n_boot=n_boot, seed=seed),
        ]
        return [c for c in out if c is not None]

    def metrics(self, claims: Sequence[ClaimEvidence] = ()) -> dict[str, Any]:
        """Plain values for :func:`sparse_probing.results.save_results`."""
        return {
            "claims": [c.to_dict() for c in claims],
            "model_identity": self.model_identity,
            "n_layers": self.n_layers,
            "d_mlp": self.d_mlp,
            "layers": list(self.layers),
            "summary": self.summary,
            "per_layer": self.per_layer,
            "depth": depth_table(self),
            "ablation": self.ablation,
            "attribution_check": self.attribution_check,
            "timings": self.timings,
        }


def dedicated_calibration(records: Sequence[Mapping[str, Any]] | None = None) -> tuple[float | None, float | None]:
    """(power, false-positive rate) of the ``dedicated`` diagnostic at the book's sample size
    (:func:`~sparse_probing.analysis.verdicts.calibrated_rates`); ``(None, None)`` when that chapter has not run."""
    from ..analysis.verdicts import calibrated_rates

    return calibrated_rates("dedicated", records)


def compound_depth(records: Sequence[Mapping[str, Any]] | None = None, *, n_boot: int = 1000) -> dict[str, Any] | None:
    """Mean relative depth (95% bootstrap interval over bigrams) of the layer at which the superposition chapter
    decodes the paper's compound words best (``any_layer``, chosen on validation over the layers it searched), with
    ``n`` bigrams and ``deepest`` (the deepest searched layer, relative); None when that chapter has not run."""
    if records is None:
        from ..results import RESULTS_DIR, load_results, results_dir

        dirs = [d for d in (results_dir(), RESULTS_DIR) if d.is_dir()]
        records = [r for d in dict.fromkeys(dirs) for r in load_results(d)]
    for record in records:
        if record.get("name") != "03_superposition":
            continue
        m = record.get("metrics") or {}
        rows = [r for r in m.get("summary") or [] if r.get("family") == "paper_compound_words"]
        n_layers = m.get("n_layers")
        layers = [r.get("any_layer") for r in rows if r.get("any_layer") is not None]
        if not layers or not n_layers:
            continue
        d = relative_depth(layers, int(n_layers))
        ci = bootstrap_statistic(np.mean, d, n_boot=n_boot, random_state=0)
        searched = (record.get("spec") or {}).get("layers") or layers
        return {"mean": float(ci["estimate"]), "low": float(ci["low"]), "high": float(ci["high"]), "n": len(d),
                "deepest": float(relative_depth(max(searched), int(n_layers)))}  # fmt: skip
    return None


# ---------------------------------------------------------------------------------------------- claims (pure)
def context_neurons(summary: pd.DataFrame) -> pd.Series:
    """Per row of a summary: does the class have a context neuron? Cross-validated F1 within :data:`NEAR_DENSE` of
    the dense probe, above the current-token baseline (where it ran), and token-matched ROC-AUC >= :data:`MIN_TOKEN_AUC`
    (a class without a token-controlled test has none). NaN for fact classes."""
    f1 = summary["f1_test"].to_numpy(dtype=float)
    near = f1 >= summary["dense_f1"].to_numpy(dtype=float) - NEAR_DENSE
    token = summary["token_f1"].to_numpy(dtype=float) if "token_f1" in summary else np.full(len(summary), np.nan)
    above = ~np.isfinite(token) | (f1 > token)
    auc = summary["token_auc"].to_numpy(dtype=float) if "token_auc" in summary else np.full(len(summary), np.nan)
    controlled = np.isfinite(auc) & (auc >= MIN_TOKEN_AUC)
    out = (near & above & controlled).astype(float)
    return pd.Series(np.where(summary["kind"] == "context", out, np.nan), index=summary.index, name="context_neuron")


def _conclusive(summary: pd.DataFrame, kind: str) -> pd.DataFrame:
    if summary.empty:
        return summary
    rows = summary[summary["kind"] == kind]
    ok = rows[rows["status"] != INCONCLUSIVE]
    return ok if len(ok) else rows


def _interval(ci: Mapping[str, float]) -> tuple[float, float, float]:
    est = float(ci["estimate"])
    return est, float(min(ci["low"], est)), float(max(ci["high"], est))


def _min_pos(rows: pd.DataFrame) -> int:
    return int(rows["test_positives"].min()) if len(rows) else 0


def _record(rows: pd.DataFrame, interval: tuple[float, float, float], mde: float, **fields: Any) -> ClaimEvidence:
    """A claim over the classes of ``rows``: their count, their fewest test positives, the chapter's estimator."""
    est, low, high = interval
    return ClaimEvidence(
        chapter=CHAPTER, estimate=est, ci_low=low, ci_high=high, mde=mde, estimator=ESTIMATOR, surface_margin=None,
        n_tasks=len(rows), unit="class", min_test_positives=_min_pos(rows), **fields,
    )  # fmt: skip


def existence_claim(
    summary: pd.DataFrame,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    dedicated_calibration: tuple[float | None, float | None] | None = None,
) -> ClaimEvidence | None:
    """ "Context neurons exist": the share of conclusive context classes with a context neuron
    (:func:`context_neurons`), bootstrap over classes, against :data:`MIN_SHARE`. None without context classes."""
    rows = _conclusive(summary, "context")
    if rows.empty:
        return None
    flags = context_neurons(rows).to_numpy(dtype=float)
    est, low, high = _interval(bootstrap_statistic(np.mean, flags, n_boot=n_boot, random_state=seed))
    dense_gap = rows["f1_test"].to_numpy(float) - rows["dense_f1"].to_numpy(float)
    auc = rows["token_auc"].to_numpy(float) if "token_auc" in rows else np.full(len(rows), np.nan)
    control = (
        f"{int(np.nansum(flags))} of {len(rows)} classes; single neuron minus dense F1 {np.nanmean(dense_gap):.2f} on "
        f"average, within {NEAR_DENSE} of dense in {int(np.sum(dense_gap >= -NEAR_DENSE))}; token-matched ROC-AUC "
        + (
            f"mean {np.nanmean(auc):.2f}, >= {MIN_TOKEN_AUC} in {int(np.sum(auc >= MIN_TOKEN_AUC))}"
            if np.isfinite(auc).any()
            else "not run"
        )
        + f"; random basis {rows['random_basis_f1'].mean():.2f}, shuffled labels {rows['control_f1'].mean():.2f} F1"
    )
    if dedicated_calibration is not None and dedicated_calibration[0] is not None:
        dp, dfpr = dedicated_calibration
        control += f"; the ground-truth chapter's dedicated rule (ROC-AUC >= 0.95) has worst-regime power {dp:.2f}" + (
            f" and fires on superposed toy features in up to {dfpr:.2f} of studies" if dfpr is not None else ""
        )
    return _record(
        rows,
        (est, low, high),
        mde_from_interval(low, high),
        claim="context neurons exist",
        measure=f"share of context classes with a context neuron (F1 within {NEAR_DENSE} of dense, above the "
        f"current token, token-matched ROC-AUC >= {MIN_TOKEN_AUC})",
        paper=PAPER_EXISTENCE,
        minimal_effect=MIN_SHARE,
        minimal_effect_source=MIN_SHARE_SOURCE,
        control=control,
    )


def _depth_margin(depths: np.ndarray) -> float:
    return float(1 / 6 - abs(np.mean(depths) - 0.5))


def depth_claim(
    summary: pd.DataFrame,
    n_layers: int,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    compound: Mapping[str, Any] | None = None,
) -> ClaimEvidence | None:
    """ "Context neurons lie in the middle layers": 1/6 minus the distance of the mean relative depth of the chosen
    layer (over conclusive context classes) from 0.5, i.e. how far inside the middle third the mean lies (negative:
    outside), bootstrap over classes, against :data:`MIN_DEPTH`. None without context classes or with fewer than
    three layers."""
    rows = _conclusive(summary, "context")
    if rows.empty or n_layers < 3:
        return None
    d = rows["depth"].to_numpy(dtype=float)
    est, low, high = _interval(bootstrap_statistic(_depth_margin, d, n_boot=n_boot, random_state=seed))
    thirds = pd.Series([third_of(round(x * (n_layers - 1)), n_layers) for x in d]).value_counts()
    flags = context_neurons(rows).to_numpy(dtype=float) == 1
    control = (
        f"mean relative depth {d.mean():.2f}; classes whose depth falls in the first/middle/last third: "
        f"{thirds.get('first', 0)}/{thirds.get('middle', 0)}/{thirds.get('last', 0)}"
        + (
            f"; the {int(flags.sum())} classes with a context neuron: mean depth {d[flags].mean():.2f}"
            if flags.any()
            else "; no class has a context neuron"
        )
    )
    if compound:
        control += (
            f"; the compound words of the superposition chapter are best decoded at mean depth "
            f"{format_ci(compound['mean'], compound['low'], compound['high'])} (layers searched to depth "
            f"{compound['deepest']:.2f})"
        )
    return _record(
        rows,
        (est, low, high),
        mde_from_interval(low, high),
        claim="context neurons lie in the middle layers",
        measure="how far inside the middle third the mean relative depth of the best single neuron's layer lies "
        "(1/6 - |mean depth - 0.5|)",
        paper=PAPER_DEPTH,
        minimal_effect=MIN_DEPTH,
        minimal_effect_source=MIN_DEPTH_SOURCE,
        control=control,
    )


def factual_claim(summary: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> ClaimEvidence | None:
    """ "Single neurons decode facts about a named person": mean over conclusive properties of the best single
    neuron's F1 minus the name-token probe's (``bag_of_tokens`` over the name span), paired bootstrap over
    properties, against :data:`MIN_FACTUAL`; a second part asks the same margin over the best single direction of a
    random rotation (is the neuron basis privileged for the fact?). The paper's Wikidata people are used when they
    ran, else the self-built facts. None without fact classes or without the name-token baseline."""
    facts = summary[summary["kind"] == "fact"] if len(summary) else summary
    if facts.empty or "bag_of_tokens_f1" not in facts:
        return None
    primary = facts[facts["primary"].astype(bool)]
    rows = _conclusive(primary if len(primary) else facts, "fact")
    rows = rows[np.isfinite(rows["bag_of_tokens_f1"].to_numpy(dtype=float))]
    if rows.empty:
        return None
    diff = rows["f1_test"].to_numpy(float) - rows["bag_of_tokens_f1"].to_numpy(float)
    est, low, high = _interval(bootstrap_statistic(np.mean, diff, n_boot=n_boot, random_state=seed))
    mde = minimal_detectable_effect(diff)
    control = (
        f"F1 of the single neuron {rows['f1_test'].mean():.2f}, the name tokens {rows['bag_of_tokens_f1'].mean():.2f}, "
        f"dense {rows['dense_f1'].mean():.2f}, random basis {rows['random_basis_f1'].mean():.2f}, shuffled labels "
        f"{rows['control_f1'].mean():.2f}; the neuron beats the name tokens on {int((diff > 0).sum())} of {len(rows)}"
    )
    name_part = _record(
        rows,
        (est, low, high),
        float(mde) if np.isfinite(mde) else mde_from_interval(low, high),
        claim="single neurons decode facts about people (beyond the name's tokens)",
        measure="best single neuron's F1 minus a probe on the name's tokens (mean over properties"
        + (", the paper's Wikidata people)" if rows["primary"].all() else ", self-built facts)"),
        paper=PAPER_FACTUAL,
        minimal_effect=MIN_FACTUAL,
        minimal_effect_source=MIN_FACTUAL_SOURCE,
        control=control,
    )
    basis = rows["f1_test"].to_numpy(float) - rows["random_basis_f1"].to_numpy(float)
    basis_mde = minimal_detectable_effect(basis)
    b_est, b_low, b_high = _interval(bootstrap_statistic(np.mean, basis, n_boot=n_boot, random_state=seed))
    basis_part = _record(
        rows,
        (b_est, b_low, b_high),
        float(basis_mde) if np.isfinite(basis_mde) else mde_from_interval(b_low, b_high),
        claim="single neurons decode facts about people (beyond a random direction)",
        measure="best single neuron's F1 minus the best single direction of a random rotation of the same layer",
        paper=PAPER_FACTUAL,
        minimal_effect=MIN_FACTUAL,
        minimal_effect_source="the same margin: a neuron that does no better than a random direction of its layer "
        "is not a neuron for the fact",
        control=control,
    )
    top = {**name_part.to_dict(), "claim": "single neurons decode facts about people", "parts": (name_part, basis_part)}
    top["measure"] = name_part.measure + "; and beyond a random direction"
    return ClaimEvidence(**top)


def ablation_claim(
    ablation: pd.DataFrame, check: pd.DataFrame | None = None, *, n_boot: int = 1000, seed: int = 0
) -> ClaimEvidence | None:
    """ "Ablating a context neuron raises the loss on its context", over every ablated class, in two parts:

    * **effect**: the exact mean ablation's loss increase on the class's held-out texts minus on other texts (% of
      each text's clean loss), mean over classes;
    * **beyond its layer**: that exact effect minus the 95th percentile of the same quantity over every neuron of the
      layer, estimated by attribution patching (a neuron no more specific than one in twenty of its layer does not
      single out the context). The first-order estimate is close for the small effects of typical neurons and
      underestimates large ones, so the chosen neuron enters with its exact effect.

    Both bootstrap over classes against :data:`MIN_ABLATION`; the verdict combines them. None without ablated
    classes."""
    if ablation is None or ablation.empty:
        return None
    n = len(ablation)
    effect = ablation["effect"].to_numpy(dtype=float)
    beyond = effect - ablation["layer_q95"].to_numpy(dtype=float)
    passed = int(((beyond > 0) & (effect >= MIN_ABLATION)).sum())
    control = (
        f"{passed} of {n} classes above their layer's 95th percentile and the minimal effect; zero ablation "
        f"(attribution) {np.nanmean(ablation['effect_zero_attr']):.2f}% on average against mean ablation "
        f"{np.nanmean(effect):.2f}%"
    )
    if "middle_percentile" in ablation and np.isfinite(ablation["middle_percentile"].to_numpy(float)).any():
        mid = ablation["middle_percentile"].to_numpy(float)
        control += f"; the best middle-third neuron is above its layer's 95th percentile in {int((mid > 95).sum())}"
    if check is not None and len(check):
        null = check[~check["chosen"].astype(bool)] if "chosen" in check else check
        if len(null) >= 3:
            r = np.corrcoef(null["exact"].to_numpy(float), null["estimate"].to_numpy(float))[0, 1]
            control += f"; attribution against exact ablation on {len(null)} sampled neurons of the layers: r = {r:.2f}"
    n_target = int(ablation["n_target"].min())

    def part(values: np.ndarray, label: str, measure: str) -> ClaimEvidence:
        est, low, high = _interval(bootstrap_statistic(np.mean, values, n_boot=n_boot, random_state=seed))
        mde = minimal_detectable_effect(values)
        return ClaimEvidence(
            claim=f"ablating a context neuron raises the loss on its context ({label})",
            chapter=CHAPTER,
            measure=measure,
            paper=PAPER_ABLATION,
            estimate=est,
            ci_low=low,
            ci_high=high,
            minimal_effect=MIN_ABLATION,
            minimal_effect_source=MIN_ABLATION_SOURCE,
            mde=float(mde) if np.isfinite(mde) else mde_from_interval(low, high),
            estimator="held-out texts of every ablated class and as many of other classes; bootstrap over classes",
            surface_margin=None,
            control=control,
            n_tasks=n,
            unit="class",
            min_test_positives=n_target,
            positives="held-out texts per class",
        )

    parts = (
        part(effect, "effect", "loss increase under mean ablation, own texts minus other texts (% of the clean "
             "loss, mean over classes)"),
        part(beyond, "beyond its layer", "the same exact effect minus its layer's 95th percentile of attribution "
             "estimates (% of the clean loss)"),
    )  # fmt: skip
    top = {**parts[0].to_dict(), "claim": "ablating a context neuron raises the loss on its context", "parts": parts}
    top["measure"] = parts[0].measure + "; and beyond the layer's 95th-percentile neuron"
    return ClaimEvidence(**top)


# ---------------------------------------------------------------------------------------------- running
def _task_label(task: str, single_feature: bool) -> str:
    return task.split("=", 1)[1] if single_feature and "=" in task else task


def _one_per_binary_feature(tasks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Drop the second task of a feature with exactly two values (``gender=female`` / ``gender=male`` label the
    same rows oppositely: one question, not two)."""
    by_feature: dict[str, list[str]] = {}
    for name in tasks:
        if "=" in name:
            by_feature.setdefault(name.split("=", 1)[0], []).append(name)
    drop = set()
    for names in by_feature.values():
        if len(names) == 2:
            a, b = (tasks[n] for n in names)
            same_rows = np.array_equal(np.isfinite(a), np.isfinite(b))
            if same_rows and np.array_equal(a[np.isfinite(a)], 1 - b[np.isfinite(b)]):
                drop.add(sorted(names)[1])
    return {k: v for k, v in tasks.items() if k not in drop}


@dataclass
class _Family:
    acts: Any
    folds: list[Any]
    tasks: dict[str, np.ndarray]
    summary: pd.DataFrame
    per_layer: pd.DataFrame
    timing: dict[str, Any]


def _quiet_sweep(*args: Any, **kwargs: Any) -> pd.DataFrame:
    from ..probes import run_sweep

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = run_sweep(*args, n_boot=0, progress=False, **kwargs)
    return res[res["error"].isna()] if "error" in res.columns else res


def _probe_family(config: MonosemanticConfig, lm: Any, family: str, layers: Sequence[int]) -> _Family:
    from ..analysis.surface import best_surface, surface_baselines
    from ..probes import ProbeSpec
    from ..splits import grouped_cv
    from ..study import best_layer, best_single_neurons, binary_tasks, cache_for

    t0 = time.perf_counter()
    acts = cache_for(
        lm, family, config.variant, n_documents=config.n_documents.get(family), max_length=config.context_length(family)
    )
    cache_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    ex = acts.examples
    first = acts.features[0] if acts.features else None
    strata = ex[first].astype(str).to_numpy() if first and ex[first].notna().all() else None
    tasks = _one_per_binary_feature(
        binary_tasks(ex, min_positives=config.min_positives, min_negatives=config.min_positives)
    )
    if family in config.max_tasks:
        ranked = sorted(tasks, key=lambda t: -float(np.nansum(tasks[t])))
        tasks = {t: tasks[t] for t in ranked[: config.max_tasks[family]]}
    timing = {"family": family, "dataset": acts.dataset_key, "examples": len(ex), "tasks": len(tasks)}
    if not tasks:
        warnings.warn(f"family {family!r}: no class with {config.min_positives} positives", RuntimeWarning, 3)
        return _Family(acts, [], {}, pd.DataFrame(), pd.DataFrame(), {**timing, "cache_s": cache_s, "probe_s": 0.0})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # K lowered for small classes: the folds say how many
        folds = grouped_cv(ex["group"].to_numpy(), strata, n_folds=config.n_folds, random_state=config.seed)
    single = len(acts.features) == 1
    layer_acts = {layer: acts.layer(layer) for layer in layers}
    spec = [ProbeSpec("single_neuron", random_state=config.seed)]
    per = pd.concat(
        [best_single_neurons(_quiet_sweep(layer_acts, tasks, split, spec)).assign(fold=i)
         for i, split in enumerate(folds)],
        ignore_index=True,
    )  # fmt: skip
    per["third"] = [third_of(int(x), lm.n_layers) for x in per["layer"]]
    chosen = best_layer(per, by=("feature", "fold"))
    in_third = best_layer(per, by=("feature", "fold", "third"))

    specs = [
        ProbeSpec("dense", random_state=config.seed),
        ProbeSpec(
            "random_basis",
            params={"base": "single_neuron", "n_rotations": config.n_rotations},
            random_state=config.seed,
        ),
        ProbeSpec("control", params={"base": "single_neuron"}, random_state=config.seed),
    ]
    base_frames, surface_frames = [], []
    for i, split in enumerate(folds):
        here = chosen[chosen["fold"] == i]
        for layer, group in here.groupby("layer"):
            sub = {t: tasks[t] for t in group["feature"]}
            base_frames.append(_quiet_sweep({int(layer): acts.layer(int(layer))}, sub, split, specs).assign(fold=i))
        if config.surface_baselines:
            table = surface_baselines(acts, tasks, split, lm.tokenizer, baselines=config.surface_baselines)
            if len(table):
                best = best_surface(table).assign(fold=i)
                surface_frames.append(table.assign(fold=i, best=False))
                surface_frames.append(best.assign(best=True))
    base = pd.concat(base_frames, ignore_index=True)

    rows = []
    for task, c in chosen.groupby("feature", sort=False):
        c = c.sort_values("fold")
        y = tasks[task]
        f0 = c.iloc[0]
        mid = in_third[(in_third["feature"] == task) & (in_third["fold"] == 0) & (in_third["third"] == "middle")]
        row = {
            "family": family,
            "task": task,
            "class": _task_label(task, single),
            "primary": is_primary(family),
            "kind": "fact" if is_factual(family) else "context",
            "examples": int(np.isfinite(y).sum()),
            "test_positives": int(np.nansum(y)),
            "n_folds": len(c),
            "f1_test": float(c["f1_test"].mean()),
            "f1_test_sd": float(c["f1_test"].std(ddof=1)) if len(c) > 1 else np.nan,
            "roc_auc_test": float(c["roc_auc_test"].mean()),
            "roc_auc_test_sd": float(c["roc_auc_test"].std(ddof=1)) if len(c) > 1 else np.nan,
            "chosen_layers": tuple(int(v) for v in c["layer"]),
            "depth": float(relative_depth(c["layer"].to_numpy(), lm.n_layers).mean()),
            "layer": int(f0["layer"]),
            "neuron": int(f0["neuron"]),
            "middle_layer": int(mid["layer"].iat[0]) if len(mid) else -1,
            "middle_neuron": int(mid["neuron"].iat[0]) if len(mid) else -1,
        }
        for t in THIRDS:
            d = in_third[(in_third["feature"] == task) & (in_third["third"] == t)]
            row[f"{t}_f1"] = float(d["f1_test"].mean()) if len(d) else np.nan
            row[f"{t}_roc_auc"] = float(d["roc_auc_test"].mean()) if len(d) else np.nan
        b = base[base["feature"] == task]
        for method in ("dense", "random_basis", "control"):
            m = b[b["method"] == method]
            for metric in ("f1", "roc_auc"):
                row[f"{method}_{metric}"] = float(m[f"{metric}_test"].mean()) if len(m) else np.nan
        rows.append(row)
    summary = pd.DataFrame(rows)
    summary["dedicated"] = is_dedicated(summary["roc_auc_test"].to_numpy())
    summary["status"] = np.where(summary["test_positives"] < config.min_test_positives, INCONCLUSIVE, "ok")
    summary["surface_baseline"], summary["surface_f1"], summary["surface_roc_auc"] = "none", np.nan, np.nan
    for name in ("token", "bag_of_tokens"):
        summary[f"{name}_f1"] = np.nan
    if surface_frames:
        s = pd.concat(surface_frames, ignore_index=True)
        best = s[s["best"]]
        summary["surface_baseline"] = (
            summary["task"]
            .map(best.groupby("feature")["surface_baseline"].agg(lambda v: v.mode().iat[0]))
            .fillna("none")
        )
        summary["surface_f1"] = summary["task"].map(best.groupby("feature")["surface_f1_test"].mean()).astype(float)
        summary["surface_roc_auc"] = summary["task"].map(best.groupby("feature")["surface_roc_auc_test"].mean())
        for name in ("token", "bag_of_tokens"):
            one = s[~s["best"] & (s["baseline"] == name)]
            if len(one):
                summary[f"{name}_f1"] = summary["task"].map(one.groupby("feature")["f1_test"].mean()).astype(float)
    per_layer = (
        per.groupby(["feature", "layer"], sort=False)[["f1_test", "roc_auc_test"]].mean().reset_index()
        .rename(columns={"feature": "task"})
    )  # fmt: skip
    per_layer["family"] = family
    per_layer["class"] = [_task_label(t, single) for t in per_layer["task"]]
    per_layer["third"] = [third_of(int(x), lm.n_layers) for x in per_layer["layer"]]
    timing.update(cache_s=cache_s, probe_s=time.perf_counter() - t1, folds=len(folds))
    return _Family(acts, folds, tasks, summary, per_layer, timing)


def _held_out_docs(fam: _Family) -> set[int]:
    """Documents of the cache entry that fold 0 neither trained nor validated on."""
    ex = fam.acts.examples
    split = fam.folds[0]
    return set(ex["doc"].iloc[split.test].tolist()) - set(ex["doc"].iloc[np.r_[split.train, split.val]].tolist())


def _raises(fam: _Family, task: str, layer: int, neuron: int) -> bool:
    """Does the class raise the neuron (fold 0's training rows)?"""
    y = fam.tasks[task]
    tr = fam.folds[0].train
    x = np.asarray(fam.acts.layer(layer)[tr, neuron], dtype=np.float64)
    yt = y[tr]
    return bool(x[yt == 1].mean() >= x[yt == 0].mean())


def _token_control(config: MonosemanticConfig, lm: Any, fam: _Family, family: str) -> pd.DataFrame:
    """Token-matched ROC-AUC of each class's fold-0 neuron on the held-out documents of a context family."""
    from ..analysis.specificity import build_broad_sample, neuron_directions, readout, token_matched_auc
    from ..datasets import load_dataset

    ex = fam.acts.examples
    docs = sorted(_held_out_docs(fam))
    row_of = {int(d): i for i, d in zip(range(len(ex)), ex["doc"], strict=True)}
    ds = load_dataset(family, config.variant)
    sample = build_broad_sample(lm.tokenizer, {"held out": [ds.documents[d].text for d in docs]}, (),
                                max_length=config.context_length(family))  # fmt: skip
    s = fam.summary
    directions = neuron_directions(lm.d_mlp, {layer: group["neuron"].tolist() for layer, group in s.groupby("layer")})
    out = readout(lm, sample, directions)
    doc_rows = np.array([row_of[docs[int(d)]] for d in sample.positions["doc"]])
    token = sample.positions["token"].to_numpy()
    rows = []
    for layer, group in s.groupby("layer"):
        acts_PM = out[f"blocks.{int(layer)}.mlp.hook_post"]
        for j, r in enumerate(group.itertuples(index=False)):
            y = fam.tasks[r.task][doc_rows]
            keep = np.isfinite(y)
            sign = 1.0 if _raises(fam, r.task, int(layer), int(r.neuron)) else -1.0
            res = token_matched_auc(sign * acts_PM[keep, j], y[keep] == 1, token[keep])
            rows.append({"task": r.task, "raises": sign > 0, "token_auc": res["auc"], "token_pairs": res["pairs"],
                         "token_ids": res["tokens"], "token_docs": len(docs)})  # fmt: skip
    return pd.DataFrame(rows)


def _case_study(
    config: MonosemanticConfig, lm: Any, fam: _Family, family: str, row: pd.Series
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    from ..analysis.inspection import top_examples

    y = fam.tasks[row["task"]]
    keep = np.isfinite(y)
    x = np.asarray(fam.acts.layer(int(row["layer"]))[:, int(row["neuron"])], dtype=np.float32)
    raises = bool(x[keep & (y == 1)].mean() >= x[keep & (y == 0)].mean())
    case = {k: row[k] for k in ("family", "task", "class", "layer", "neuron")} | {"raises": raises}
    hist = pd.DataFrame({"family": family, "class": row["class"], "activation": x[keep], "in_class": y[keep] == 1})
    top = top_examples(fam.acts, int(row["layer"]), int(row["neuron"]), lm.tokenizer, n=config.n_top_examples,
                       lowest=not raises)  # fmt: skip
    return case, hist, top.assign(family=family, **{"class": row["class"]})


def _label_value(value: Any) -> str:
    """A card's label value: the example's value of the class's feature (``1``/``0`` for a yes/no feature)."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "unlabelled"
    return (
        str(int(value))
        if isinstance(value, (bool, np.bool_, float, np.floating)) and float(value) in (0, 1)
        else str(value)
    )


def _cards(config: MonosemanticConfig, lm: Any, fams: Mapping[str, _Family]) -> dict[tuple[int, int], Any]:
    """Every class's fold-0 neuron with its ``n_card_texts`` most extreme documents in the class's direction (by the
    cached pooled activation), each labelled with its example's value of the class's feature (from the cache's
    examples table, which holds the labels of document and fact families alike), read token by token."""
    from ..analysis.cards import neuron_contexts
    from ..study import dataset_of

    if not config.n_card_texts:
        return {}
    units: dict[tuple[int, int], list[tuple[str, str]]] = {}
    titles: dict[tuple[int, int], list[str]] = {}
    signs: dict[tuple[int, int], float] = {}
    lengths = []
    for family, fam in fams.items():
        if not len(fam.summary):
            continue
        ds = dataset_of(fam.acts)
        ex = fam.acts.examples
        doc_N = ex["doc"].to_numpy()
        lengths.append(config.context_length(family))
        for r in fam.summary.itertuples(index=False):
            key = (int(r.layer), int(r.neuron))
            titles.setdefault(key, []).append(f"{family} / {r[fam.summary.columns.get_loc('class')]}")
            if key in units:
                continue
            signs[key] = 1.0 if _raises(fam, r.task, *key) else -1.0
            x = signs[key] * np.asarray(fam.acts.layer(key[0])[:, key[1]], dtype=np.float64)
            picked: dict[int, int] = {}  # document -> its most extreme example
            for i in np.argsort(-x, kind="stable"):
                picked.setdefault(int(doc_N[i]), int(i))
                if len(picked) == config.n_card_texts:
                    break
            feature = str(r.task).split("=", 1)[0]
            values = ex[feature] if feature in ex.columns else pd.Series(np.nan, index=ex.index)
            units[key] = [
                (f"{feature}={_label_value(values.iloc[i])}", ds.documents[d].text) for d, i in picked.items()
            ]
    contexts = neuron_contexts(lm, units, signs=signs, max_length=max(lengths, default=config.max_length))
    return {key: ("; ".join(titles[key]), contexts[key]) for key in units}


def _doc_label(labels: Mapping[str, Any], task: str) -> int | None:
    """1/0 for a document and a task name of :func:`~sparse_probing.study.binary_tasks`; None when unlabelled."""
    if "=" in task:
        feature, value = task.split("=", 1)
        v = labels.get(feature)
        return None if v is None else int(str(v) == value)
    v = labels.get(task)
    return None if v is None else int(v in (1, True, "1", 1.0))


def _pct_effect(delta: np.ndarray, loss: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Mean % loss increase on target texts minus on the others, per column of ``delta`` (texts x neurons)."""
    pct = 100.0 * delta / loss[:, None]
    return pct[target].mean(axis=0) - pct[~target].mean(axis=0)


def _ablate_family(
    config: MonosemanticConfig, lm: Any, fam: _Family, family: str, rng: np.random.Generator
) -> tuple[pd.DataFrame, list[dict[str, Any]], list[dict[str, Any]]]:
    """Mean-ablate every conclusive class's fold-0 neuron on held-out texts (exact), and rank it against its layer by
    attribution patching; check the attribution on sampled neurons of the first classes."""
    from ..analysis.ablation import ablated_losses, attribution_effects
    from ..datasets import load_dataset

    s = fam.summary[fam.summary["status"] != INCONCLUSIVE]
    if s.empty:
        return pd.DataFrame(), [], []
    full = load_dataset(family, config.variant)
    cached = set(fam.acts.examples["doc"].tolist())
    pool = sorted(_held_out_docs(fam) | (set(range(len(full.documents))) - cached))
    n = config.n_ablation_texts
    chosen_docs: dict[str, list[int]] = {}
    for r in s.itertuples(index=False):
        ids = [i for i in pool if _doc_label(full.documents[i].labels, r.task) == 1]
        if len(ids) < n:
            warnings.warn(f"{family}/{r[2]}: {len(ids)} held-out texts (< {n}); not ablated", RuntimeWarning, 3)
            continue
        chosen_docs[r.task] = sorted(int(i) for i in rng.choice(ids, n, replace=False))
    if not chosen_docs:
        return pd.DataFrame(), [], []
    docs = sorted({d for ids in chosen_docs.values() for d in ids})
    index_of = {d: i for i, d in enumerate(docs)}
    texts = [full.documents[d].text for d in docs]
    cases = s[s["task"].isin(list(chosen_docs))]
    layers = set(cases["layer"].astype(int)) | {int(v) for v in cases["middle_layer"] if v >= 0}
    length = min(config.ablation_length, config.context_length(family))
    att = attribution_effects(lm, sorted(layers), texts, max_length=length)
    effects, rows, checks = [], [], []
    from .._progress import tqdm

    for k, r in enumerate(tqdm(list(cases.itertuples(index=False)), desc=f"ablating {family}", unit="class")):
        layer, neuron = int(r.layer), int(r.neuron)
        target_ids = [index_of[d] for d in chosen_docs[r.task]]
        others = [index_of[d] for d in docs if _doc_label(full.documents[d].labels, r.task) == 0]
        if len(others) < 2:
            continue
        other_ids = sorted(int(i) for i in rng.choice(others, min(n, len(others)), replace=False))
        rows_T = np.array(target_ids + other_ids)
        is_target = np.arange(rows_T.size) < len(target_ids)
        loss = att.loss[rows_T]
        group_texts = [texts[i] for i in rows_T]
        value = float(att.mean[layer][neuron])
        ablated = ablated_losses(lm, layer, {neuron: value}, group_texts, max_length=length)
        delta = ablated - loss
        pct = 100.0 * delta / loss
        effect = float(pct[is_target].mean() - pct[~is_target].mean())
        est_mean = _pct_effect(att.delta(layer, "mean")[rows_T], loss, is_target)
        est_zero = _pct_effect(att.delta(layer, "zero")[rows_T], loss, is_target)
        row = {
            "family": family, "class": r[2], "layer": layer, "neuron": neuron, "n_target": len(target_ids),
            "n_other": len(other_ids), "clean_loss": float(loss[is_target].mean()), "effect": effect,
            "effect_attr": float(est_mean[neuron]), "effect_zero_attr": float(est_zero[neuron]),
            "layer_q95": float(np.quantile(est_mean, 0.95)),
            "percentile": float(100.0 * np.mean(est_mean <= effect)),
            "middle_layer": int(r.middle_layer), "middle_neuron": int(r.middle_neuron),
            "middle_effect_attr": np.nan, "middle_percentile": np.nan,
        }  # fmt: skip
        if r.middle_layer >= 0:
            mid = _pct_effect(att.delta(int(r.middle_layer), "mean")[rows_T], loss, is_target)
            row["middle_effect_attr"] = float(mid[int(r.middle_neuron)])
            row["middle_percentile"] = float(100.0 * np.mean(mid <= mid[int(r.middle_neuron)]))
        rows.append(row)
        effects.append(pd.DataFrame({
            "family": family, "class": r[2], "group": np.where(is_target, "target", "other"),
            "text": [docs[i] for i in rows_T], "loss": loss, "ablated": ablated, "delta": delta, "pct": pct,
        }))  # fmt: skip
        if k < config.n_checked_cases:
            sample = rng.choice(np.setdiff1d(np.arange(lm.d_mlp), [neuron]), config.n_checked_neurons, replace=False)
            checks.append({"family": family, "class": r[2], "layer": layer, "neuron": neuron, "chosen": True,
                           "exact": effect, "estimate": float(est_mean[neuron])})  # fmt: skip
            for j in sorted(int(v) for v in sample):
                d = ablated_losses(lm, layer, {j: float(att.mean[layer][j])}, group_texts, max_length=length) - loss
                exact = float(_pct_effect(d[:, None], loss, is_target)[0])
                checks.append({"family": family, "class": r[2], "layer": layer, "neuron": j, "chosen": False,
                               "exact": exact, "estimate": float(est_mean[j])})  # fmt: skip
    return (pd.concat(effects, ignore_index=True) if effects else pd.DataFrame()), rows, checks


def run(config: MonosemanticConfig, *, model: Any | None = None) -> MonosemanticResult:
    """Search, baseline, control and ablate as the module documentation says; returns the tables of a
    :class:`MonosemanticResult`. ``model`` is an already loaded model (default: loaded from ``config.model``)."""
    from ..datasets import FAMILIES, is_dataset_file, load_dataset
    from ..models import load_model

    unknown = [f for f in config.families if f not in FAMILIES and not is_dataset_file(f)]
    if unknown:
        raise ConfigError(f"unknown families {unknown}; choose from {list(FAMILIES)} or give a dataset file's path")
    lm = load_model(config.model) if model is None else model
    layers = searched_layers(lm.n_layers, config.layers_per_third)
    fams = {family: _probe_family(config, lm, family, layers) for family in config.families}
    for family, fam in fams.items():
        t0 = time.perf_counter()
        document = load_dataset(family, config.variant).level == "document"
        if config.token_control and len(fam.summary) and not is_factual(family) and document:
            tc = _token_control(config, lm, fam, family).set_index("task")
            for col in ("token_auc", "token_pairs"):
                fam.summary[col] = fam.summary["task"].map(tc[col]).astype(float)
        fam.timing["control_s"] = time.perf_counter() - t0
    summary = pd.concat([f.summary for f in fams.values() if len(f.summary)], ignore_index=True)
    if summary.empty:
        raise ValueError("no family produced a class with enough examples; raise n_documents")
    for col in ("token_auc", "token_pairs"):
        if col not in summary:
            summary[col] = np.nan
    summary["context_neuron"] = context_neurons(summary)
    for family, fam in fams.items():
        fam.summary = summary[summary["family"] == family].reset_index(drop=True)
    cards = _cards(config, lm, fams)
    rng = np.random.default_rng(config.seed)
    cases, hists, tops, effects, ablations, checks = [], [], [], [], [], []
    for family, classes in config.case_classes.items():
        fam = fams[family]
        for cls in classes:
            row = fam.summary[fam.summary["class"] == cls] if len(fam.summary) else fam.summary
            if row.empty:
                warnings.warn(f"{family}/{cls}: no such class with enough examples; not studied", RuntimeWarning, 2)
                continue
            case, hist, top = _case_study(config, lm, fam, family, row.iloc[0])
            cases.append(case)
            hists.append(hist)
            tops.append(top)
    for family in config.ablation_families:
        t0 = time.perf_counter()
        fam = fams[family]
        if len(fam.summary) and load_dataset(family, config.variant).level == "document":
            eff, rows, chk = _ablate_family(config, lm, fam, family, rng)
            if len(eff):
                effects.append(eff)
            ablations += rows
            checks += chk
        fam.timing["ablation_s"] = time.perf_counter() - t0
    return MonosemanticResult(
        config=config,
        model_identity=str(getattr(lm, "identity", config.model)),
        n_layers=int(lm.n_layers),
        d_mlp=int(lm.d_mlp),
        layers=tuple(int(x) for x in layers),
        per_layer=pd.concat([f.per_layer for f in fams.values() if len(f.per_layer)], ignore_index=True),
        summary=summary,
        cases=pd.DataFrame(cases),
        case_activations=pd.concat(hists, ignore_index=True) if hists else pd.DataFrame(),
        top_texts=pd.concat(tops, ignore_index=True) if tops else pd.DataFrame(),
        ablation=pd.DataFrame(ablations),
        effects=pd.concat(effects, ignore_index=True) if effects else pd.DataFrame(),
        attribution_check=pd.DataFrame(checks),
        timings=pd.DataFrame([f.timing for f in fams.values()]),
        cards=cards,
    )


# ---------------------------------------------------------------------------------------------- tables


def family_table(result: MonosemanticResult) -> pd.DataFrame:
    """One row per family: evidence kind, classes (inconclusive ones), median test positives, and means over its
    classes (cross-validated): the best single neuron's F1 and ROC-AUC, the dense probe, the random basis, shuffled
    labels, the current-token and bag-of-tokens baselines (F1), the token-matched ROC-AUC, and the classes with a
    context neuron."""
    rows = []
    for family, d in result.summary.groupby("family", sort=False):
        facts = bool(is_factual(family))
        rows.append(
            {
                "family": family,
                "evidence": ("paper data" if is_primary(family) else "self-built") + (", facts" if facts else ""),
                "classes": len(d),
                "inconclusive": int((d["status"] == INCONCLUSIVE).sum()),
                "median test positives": f"{d['test_positives'].median():.0f}",
                "neuron F1": _fmt(d["f1_test"].mean()),
                "neuron ROC-AUC": _fmt(d["roc_auc_test"].mean()),
                "dense F1": _fmt(d["dense_f1"].mean()),
                "random basis F1": _fmt(d["random_basis_f1"].mean()),
                "shuffled F1": _fmt(d["control_f1"].mean()),
                "current token F1": _fmt(d["token_f1"].mean()),
                "bag of tokens F1 (facts: the name's)": _fmt(d["bag_of_tokens_f1"].mean()),
                "token-matched AUC": _fmt(d["token_auc"].mean()),
                "context neurons": "-" if facts else f"{int(np.nansum(d['context_neuron']))}/{len(d)}",
            }
        )
    return pd.DataFrame(rows)


def _neuron_cell(result: MonosemanticResult, layer: int, neuron: int) -> str:
    """``L{layer} N{neuron}``, linked to the neuron's card when the chapter drew one."""
    from ..analysis.cards import neuron_link

    return neuron_link(layer, neuron) if (int(layer), int(neuron)) in result.cards else f"L{layer} N{neuron}"


def styled(table: pd.DataFrame) -> Any:
    """A table of the chapter as the book shows it: no index, every cell escaped as HTML except the generated
    ``layer/neuron`` links to the neuron cards."""
    style = table.style.hide(axis="index")
    return style.format(escape=None, subset=["layer/neuron"]) if "layer/neuron" in table.columns else style


def neuron_cards(result: MonosemanticResult) -> str:
    """Every named neuron's card (HTML), in layer order: its classes and its top contexts, each token shaded by the
    neuron's activation in its class's direction."""
    from ..analysis.cards import card_html

    return "".join(card_html(layer, neuron, title, contexts)
                   for (layer, neuron), (title, contexts) in sorted(result.cards.items()))  # fmt: skip


def caption_cards(result: MonosemanticResult) -> str:
    """What the cards show, with the number of neurons and texts."""
    n = len(result.cards)
    return (
        f"**Neuron cards.** The {n} neuron{'' if n == 1 else 's'} named in the tables above (each class's fold-0 neuron), each with the "
        f"{result.config.n_card_texts} cached documents on which its pooled activation is most extreme in its "
        "class's direction, labelled with their class. Every token is shaded by the neuron's activation on it "
        "(orange in the class's direction, blue against it, full colour at the card's peak; hover for the value), "
        "12 tokens either side of the text's peak (underlined). A context neuron lights up across its context, not "
        "on one token."
    )


def class_table(result: MonosemanticResult, *, n: int | None = None) -> pd.DataFrame:
    """One row per class (the paper's data first, at most ``n``): fold 0's layer and neuron, the cross-validated F1
    (± its spread over folds) and ROC-AUC, relative depth, the baselines (F1), the token-matched ROC-AUC and whether
    the class has a context neuron."""
    s = result.summary.assign(_order=lambda d: (~d["primary"]).astype(int) + 2 * (d["status"] == INCONCLUSIVE))
    s = s.sort_values(["_order", "family", "f1_test"], ascending=[True, True, False], kind="stable")
    if n is not None:
        s = s.head(n)
    neuron = np.where(s["kind"] == "context", s["context_neuron"].map({1.0: "yes", 0.0: "no"}), "-")
    return pd.DataFrame(
        {
            "family": s["family"],
            "class": s["class"],
            "test positives": s["test_positives"],
            "layer/neuron": [_neuron_cell(result, a, b) for a, b in zip(s["layer"], s["neuron"], strict=True)],
            "depth": [_fmt(v) for v in s["depth"]],
            "F1 (± sd)": [f"{_fmt(a)} ± {_fmt(b)}" for a, b in zip(s["f1_test"], s["f1_test_sd"], strict=True)],
            "ROC-AUC": [_fmt(v) for v in s["roc_auc_test"]],
            "dense": [_fmt(v) for v in s["dense_f1"]],
            "random basis": [_fmt(v) for v in s["random_basis_f1"]],
            "current token": [_fmt(v) for v in s["token_f1"]],
            "bag of tokens": [_fmt(v) for v in s["bag_of_tokens_f1"]],
            "token-matched AUC": [_fmt(v) for v in s["token_auc"]],
            "context neuron": neuron,
            "status": s["status"],
        }
    ).reset_index(drop=True)


def depth_table(result: MonosemanticResult) -> pd.DataFrame:
    """Per family: classes, mean relative depth of the layer chosen on validation (95% bootstrap interval over its
    classes), and how many classes fall in each third."""
    rows = []
    for family, d in result.summary.groupby("family", sort=False):
        depth = d["depth"].to_numpy(dtype=float)
        ci = bootstrap_statistic(np.mean, depth, n_boot=result.config.n_boot, random_state=0)
        row: dict[str, Any] = {"family": family, "classes": len(d),
                               "mean depth (95% CI)": format_ci(*_interval(ci))}  # fmt: skip
        thirds = [third_of(round(x * (result.n_layers - 1)), result.n_layers) for x in depth]
        for t in THIRDS:
            row[f"{t} third"] = thirds.count(t)
        rows.append(row)
    return pd.DataFrame(rows)


def top_text_tables(result: MonosemanticResult) -> list[Any]:
    """Per case study a small styled table of its most extreme texts (activation, text with the window marked,
    labels), captioned with the class, layer and neuron."""
    out = []
    for case in result.cases.itertuples(index=False):
        d = result.top_texts[(result.top_texts["family"] == case.family) & (result.top_texts["class"] == case[2])]
        t = d[["activation", "text", "labels"]].assign(activation=d["activation"].round(3))
        caption = (
            f"{case.family} / {case[2]}: layer {case.layer} neuron {case.neuron}, "
            f"{'highest' if case.raises else 'lowest'} activations"
        )
        out.append(t.style.hide(axis="index").set_caption(caption).format({"activation": "{:.3f}"}))
    return out


def ablation_table(result: MonosemanticResult) -> pd.DataFrame:
    """Per ablated class: layer, neuron, texts, clean loss; the exact mean-ablation effect (% of the clean loss, own
    texts minus other texts); its attribution estimate, the zero-ablation estimate, the layer's 95th percentile and
    the chosen neuron's percentile; the best middle-third neuron's estimate and percentile."""
    a = result.ablation
    if a.empty:
        return pd.DataFrame()
    return pd.DataFrame(
        {
            "family": a["family"],
            "class": a["class"],
            "layer/neuron": [_neuron_cell(result, x, y) for x, y in zip(a["layer"], a["neuron"], strict=True)],
            "texts": [f"{x} + {y}" for x, y in zip(a["n_target"], a["n_other"], strict=True)],
            "clean loss": [_fmt(v) for v in a["clean_loss"]],
            "effect, mean (exact)": [_fmt(v, 3) for v in a["effect"]],
            "mean (attribution)": [_fmt(v, 3) for v in a["effect_attr"]],
            "zero (attribution)": [_fmt(v, 3) for v in a["effect_zero_attr"]],
            "layer 95th pct": [_fmt(v, 3) for v in a["layer_q95"]],
            "percentile": [_fmt(v, 1) for v in a["percentile"]],
            "middle third": [
                "-" if x < 0 else f"L{x} N{y}: {_fmt(e, 3)} ({_fmt(p, 1)})"
                for x, y, e, p in zip(
                    a["middle_layer"], a["middle_neuron"], a["middle_effect_attr"], a["middle_percentile"], strict=True
                )
            ],
        }
    )


def attribution_check_table(result: MonosemanticResult) -> pd.DataFrame:
    """Exact mean ablation against its attribution estimate for the sampled neurons (% of the clean loss, own texts
    minus other texts)."""
    c = result.attribution_check
    if c.empty:
        return pd.DataFrame()
    return pd.DataFrame({
        "family": c["family"], "class": c["class"],
        "layer/neuron": [f"L{x} N{y}" for x, y in zip(c["layer"], c["neuron"], strict=True)],
        "chosen": np.where(c["chosen"], "yes", "no"),
        "exact": [_fmt(v, 4) for v in c["exact"]], "attribution": [_fmt(v, 4) for v in c["estimate"]],
    })  # fmt: skip


# ---------------------------------------------------------------------------------------------- figures
def _colours(result: MonosemanticResult) -> dict[tuple[str, str], Any]:
    import matplotlib.pyplot as plt

    keys = list(zip(result.summary["family"], result.summary["class"], strict=True))
    cmap = plt.get_cmap("tab20")
    order = [*range(0, 20, 2), *range(1, 20, 2)]  # the ten saturated colours first, then their light partners
    out = {}
    for family in dict.fromkeys(k[0] for k in keys):
        for i, key in enumerate(k for k in keys if k[0] == family):
            out[key] = cmap(order[i % 20])
    return out


def plot_layers(result: MonosemanticResult) -> Any:
    """One panel per family: the best single neuron's cross-validated ROC-AUC at every searched layer, one line per
    class (a fixed colour per class), the middle third shaded and the dedicated level (0.95) dashed."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    colours = _colours(result)
    families = list(dict.fromkeys(result.summary["family"]))
    n_cols = 2 if len(families) > 1 else 1
    n_rows = -(-len(families) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(10, 2.9 * n_rows), squeeze=False)
    middle = [x for x in range(result.n_layers) if third_of(x, result.n_layers) == "middle"]
    for ax, family in zip(axes.flat, families, strict=False):
        d = result.per_layer[result.per_layer["family"] == family]
        if middle:
            ax.axvspan(middle[0] - 0.5, middle[-1] + 0.5, color="#fdf1c7", zorder=0)
        ax.set_xlim(-0.5, result.n_layers - 0.5)
        for cls, c in d.groupby("class", sort=False):
            ax.plot(c["layer"], c["roc_auc_test"], marker="o", ms=2.5, lw=1, color=colours[(family, cls)], label=cls)
        ax.axhline(0.95, color="grey", ls="--", lw=0.8)
        low = min(0.45, float(d["roc_auc_test"].min()) - 0.03)
        kind = "paper data" if is_primary(family) else "self-built"
        ax.set(
            title=f"{family} ({kind})", ylim=(low, 1.02), ylabel="ROC-AUC (CV)", xlabel="layer (shaded: middle third)"
        )
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=6, ncol=2 if d["class"].nunique() > 7 else 1, loc="center left", bbox_to_anchor=(1.0, 0.5),
                  frameon=False)  # fmt: skip
    for ax in list(axes.flat)[len(families) :]:
        ax.axis("off")
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_depth(result: MonosemanticResult) -> Any:
    """Per class (a dot per class, by family): the mean relative depth of the layer chosen on validation over the
    folds, the middle third shaded; filled dots have a context neuron, hollow ones do not, grey ones are facts or
    inconclusive."""
    import matplotlib.pyplot as plt

    s = result.summary
    colours = _colours(result)
    families = list(dict.fromkeys(s["family"]))
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(families) + 1.2))
    ax.axvspan(1 / 3, 2 / 3, color="#fdf1c7", zorder=0)
    for i, family in enumerate(families):
        d = s[s["family"] == family]
        jitter = np.linspace(-0.15, 0.15, max(len(d), 1))
        for j, r in enumerate(d.itertuples(index=False)):
            col = colours[(family, r[2])]
            ok = r.status != INCONCLUSIVE and r.kind == "context"
            filled = ok and r.context_neuron == 1
            ax.scatter(r.depth, i + jitter[j], s=22, color=col if filled else "none", edgecolor=col if ok else "0.6")
    ax.set_xlim(-0.02, 1.02)
    ax.set_yticks(range(len(families)), families)
    ax.invert_yaxis()
    ax.set(xlabel="relative depth of the best single neuron's layer (0 first, 1 last; shaded: middle third)")
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_cases(result: MonosemanticResult) -> Any:
    """One histogram per case study: the chosen neuron's pooled activation on examples of the class (its colour)
    against all other examples of the family (grey)."""
    import matplotlib.pyplot as plt

    colours = _colours(result)
    cases = list(result.cases.itertuples(index=False))
    n_cols = min(3, max(1, len(cases)))
    n_rows = max(1, -(-len(cases) // n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(10, 2.6 * n_rows), squeeze=False)
    for ax, case in zip(axes.flat, cases, strict=False):
        cls = case[2]
        d = result.case_activations
        d = d[(d["family"] == case.family) & (d["class"] == cls)]
        bins = np.histogram_bin_edges(d["activation"], bins=40)
        ax.hist(d.loc[~d["in_class"], "activation"], bins=bins, density=True, color="0.6", alpha=0.7, label="other")
        ax.hist(d.loc[d["in_class"], "activation"], bins=bins, density=True, alpha=0.7,
                color=colours[(case.family, cls)], label=cls)  # fmt: skip
        ax.set_title(f"{cls} ({case.family}): L{case.layer} N{case.neuron}", fontsize=9)
        ax.set_xlabel("pooled activation", fontsize=8)
        ax.set_ylabel("density", fontsize=8)
        ax.legend(fontsize=7, frameon=False)
    for ax in list(axes.flat)[len(cases) :]:
        ax.axis("off")
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_ablation(result: MonosemanticResult) -> Any:
    """Per ablated class: the exact mean-ablation effect of the chosen neuron (% of the clean loss, own texts minus
    other texts), and its layer's 95th percentile of the same quantity (attribution patching over every neuron);
    the minimal effect dashed."""
    import matplotlib.pyplot as plt

    a = result.ablation
    fig, ax = plt.subplots(figsize=(10, 3.4))
    if a.empty:
        ax.text(0.5, 0.5, "no ablation in this run", ha="center", va="center", transform=ax.transAxes)
        ax.axis("off")
        plt.close(fig)
        return fig
    a = a.sort_values(["family", "effect"], ascending=[True, False], kind="stable").reset_index(drop=True)
    x = np.arange(len(a))
    ax.bar(x, a["effect"], 0.6, color="C3", label="chosen neuron, mean ablation (exact)")
    ax.scatter(x, a["layer_q95"], marker="_", s=120, color="black", zorder=3, label="layer's 95th percentile")
    ax.axhline(MIN_ABLATION, color="grey", ls="--", lw=0.8, label=f"minimal effect {MIN_ABLATION}%")
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xticks(x, [f"{c} ({f[:4]})" for f, c in zip(a["family"], a["class"], strict=True)], rotation=60,
                  ha="right", fontsize=7)  # fmt: skip
    ax.set(ylabel="own minus other texts\n(% of the clean loss)")
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    plt.close(fig)
    return fig


# ---------------------------------------------------------------------------------------------- captions, findings
def caption_layers(result: MonosemanticResult, number: int = 1) -> str:
    """Numbered caption of :func:`plot_layers`."""
    has_middle = any(third_of(x, result.n_layers) == "middle" for x in range(result.n_layers))
    shaded = (
        f"the middle third of the {result.n_layers} layers is shaded"
        if has_middle
        else f"{result.n_layers} layers have no middle third"
    )
    return (
        f"**Figure {number}.** Cross-validated ROC-AUC of the best single neuron (chosen on each fold's validation "
        f"rows) at every searched layer, one line per class; {shaded}, the dashed line marks 0.95."
    )


def caption_depth(result: MonosemanticResult, number: int = 2) -> str:
    """Numbered caption of :func:`plot_depth` with the mean depth of the conclusive context classes."""
    rows = _conclusive(result.summary, "context")
    text = (
        f"**Figure {number}.** Per class, the relative depth of the layer chosen on validation (mean over the "
        "folds); the middle third is shaded. Filled dots: classes with a context neuron; hollow: without; grey: "
        "facts or inconclusive classes."
    )
    if len(rows):
        ci = bootstrap_statistic(np.mean, rows["depth"].to_numpy(float), n_boot=result.config.n_boot, random_state=0)
        text += f" Mean depth of the {len(rows)} context classes: {format_ci(*_interval(ci))}."
    return text


def caption_cases(result: MonosemanticResult, number: int = 3) -> str:
    """Numbered caption of :func:`plot_cases` with each case neuron's cross-validated F1 and token-matched AUC."""
    s = result.summary.set_index(["family", "task"])
    parts = [
        f"`{c[2]}` F1 {_fmt(s.loc[(c.family, c.task), 'f1_test'])}, token-matched AUC "
        f"{_fmt(s.loc[(c.family, c.task), 'token_auc'])}"
        for c in result.cases.itertuples(index=False)
    ]
    return (
        f"**Figure {number}.** Pooled activation of each case-study neuron (fold 0's choice) on documents of its class "
        "(colour) against the other documents of its family (grey), every cached document. "
        + ("; ".join(parts) or "No case study in this run")
        + "."
    )


def caption_ablation(result: MonosemanticResult, number: int = 4) -> str:
    """Numbered caption of :func:`plot_ablation` with how many classes pass."""
    a = result.ablation
    if a.empty:
        return f"**Figure {number}.** No class was ablated in this run."
    passed = int(((a["effect"] > a["layer_q95"]) & (a["effect"] >= MIN_ABLATION)).sum())
    return (
        f"**Figure {number}.** Per ablated class, the exact loss increase on its own held-out texts minus on other "
        "texts when the chosen neuron is set to its mean (bars), and the 95th percentile of the same quantity over "
        f"every neuron of its layer (attribution patching; black marks). {passed} of {len(a)} classes exceed both "
        f"their layer's 95th percentile and the minimal effect ({MIN_ABLATION}% of the clean loss)."
    )


def findings(result: MonosemanticResult, claims: Sequence[ClaimEvidence] = ()) -> str:
    """Markdown bullets on what the chapter shows, computed from the result and its claims."""
    lines = []
    s = result.summary
    for family, d in s.groupby("family", sort=False):
        ok = d[d["status"] != INCONCLUSIVE]
        facts = is_factual(family)
        text = (
            f"* `{family}` ({'paper data' if is_primary(family) else 'self-built'}; {len(d)} classes"
            + (f", {len(d) - len(ok)} inconclusive" if len(ok) < len(d) else "")
            + f"): cross-validated F1 of the best single neuron {_fmt(d['f1_test'].mean())} against "
            f"{_fmt(d['dense_f1'].mean())} for the dense probe"
        )
        if facts:
            text += f" and {_fmt(d['bag_of_tokens_f1'].mean())} for the name's tokens"
        else:
            text += (
                f"; token-matched ROC-AUC {_fmt(d['token_auc'].mean())}; "
                f"{int(np.nansum(d['context_neuron']))} of {len(d)} classes have a context neuron"
            )
        lines.append(text + ".")
    for ev in claims:
        estimate = format_ci(ev.estimate, ev.ci_low, ev.ci_high)
        lines.append(f"* {ev.claim[0].upper()}{ev.claim[1:]}: {estimate} against a minimal effect of "
                     f"{ev.minimal_effect:g} ({ev.control}).")  # fmt: skip
    if result.n_layers < 3:
        lines.append(f"* The model has {result.n_layers} layers: no middle third, no depth claim.")
    return "\n".join(lines)
