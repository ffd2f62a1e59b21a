"""Monosemantic neurons in middle layers: the best single neuron of every context, where it sits, and its ablation.

Gurnee et al. (2023) find single neurons in the middle layers of Pythia models that each detect one context (a natural
language, a programming language, a source of text), and show that zeroing such a neuron raises the next-token loss
on text of its context much more than on other text. This module repeats both tests.

Per family (the paper's ``paper_code``, and ``paper_factual`` where the budget allows, are the primary evidence; the
self-built ``natural_language``, ``code_language``, ``data_source`` and ``factual`` are secondary) and per class (one
binary task, the class against the rest):

* at every probed layer the exhaustively searched best single neuron (:class:`~sparse_probing.probes.
  SingleNeuronProbe`: every neuron's sign and threshold fitted on train, the neuron chosen on validation ROC-AUC),
  with test F1 (bootstrap interval over documents) and test ROC-AUC;
* the layer chosen on validation ROC-AUC over all probed layers, and separately inside each third of the network;
  at the chosen layer the test ROC-AUC gets a bootstrap interval over documents and is read as *dedicated* by
  :func:`~sparse_probing.analysis.statistics.is_dedicated` (ROC-AUC >= 0.95);
* baselines at the chosen layer: a dense probe on every neuron, the same exhaustive 1-sparse search in Haar-random
  bases (``random_basis``), on shuffled training labels (``control``), and the best surface baseline of
  :mod:`sparse_probing.analysis.surface` (bag of tokens and current token by default), chosen on validation;
* for a few classes (``ablation_classes``) the chosen neuron's activations, the texts that excite it most, and the
  loss increase when it is set to zero on held-out texts of its class, of the other classes, and for random neurons
  of the same layer (:func:`sparse_probing.analysis.ablation.ablation_effect`).

:func:`run` returns a :class:`MonosemanticResult` of tidy tables; :func:`middle_layers_claim` and
:func:`ablation_claim` turn them into the chapter's two :class:`~sparse_probing.analysis.verdicts.ClaimEvidence`
records.
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
from sklearn.metrics import roc_auc_score

from ..analysis.statistics import (
    bootstrap_statistic,
    is_dedicated,
    mde_from_interval,
    minimal_detectable_effect,
    paired_bootstrap,
)
from ..analysis.verdicts import ClaimEvidence, describe_difference, format_ci
from ._config import ChapterConfig, ConfigError

__all__ = [
    "CHAPTER",
    "INCONCLUSIVE",
    "THIRDS",
    "MonosemanticConfig",
    "MonosemanticResult",
    "ablation_claim",
    "ablation_table",
    "caption_ablation",
    "caption_cases",
    "caption_layers",
    "caption_thirds",
    "class_table",
    "dedicated_calibration",
    "family_table",
    "findings",
    "is_primary",
    "middle_contrast",
    "middle_layers_claim",
    "plot_ablation",
    "plot_cases",
    "plot_layers",
    "plot_thirds",
    "run",
    "searched_layers",
    "third_of",
    "thirds_table",
    "top_text_tables",
]

CHAPTER = "04_monosemantic"
THIRDS: tuple[str, ...] = ("first", "middle", "last")
INCONCLUSIVE = "inconclusive"
"""Status of a class with fewer test positives than :attr:`MonosemanticConfig.min_test_positives`."""

PAPER_MIDDLE = (
    "single neurons in middle layers detect a context (e.g. Pythia-70M L3 N609 French; Pythia-1B L10 N3855 "
    "Python, L6 N3108 Go), F1 near 1"
)
PAPER_ABLATION = "zeroing a context neuron raises the loss on text of its context much more than on other text"
MIN_MIDDLE = 0.05
"""Minimal effect of interest of the middle-layer advantage (test F1 or ROC-AUC of the best single neuron)."""
MIN_MIDDLE_SOURCE = (
    "the paper's context neurons sit in middle layers with F1 near 1.0 (Pythia-70M L3 N609 French; Pythia-1B "
    "L10 N3855 Python, L6 N3108 Go); an advantage of the middle third under 0.05 would not single out the middle"
)
MIN_ABLATION = 0.1
"""Minimal effect of interest of the ablation: % of the clean loss, own context minus other text."""
MIN_ABLATION_SOURCE = (
    "the paper shows the loss rising on the neuron's own context and not elsewhere, without a number we can carry "
    "over; one neuron of thousands raising its context's loss by 0.1% of the clean loss more than elsewhere is "
    "the smallest effect we would call specific"
)
ESTIMATOR = "one grouped 70/15/15 split, layer chosen on validation within each third; paired bootstrap over classes"


def is_primary(family: str) -> bool:
    """The paper's own datasets (``paper_*``) are the primary evidence; self-built families are secondary."""
    return family.startswith("paper_")


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
    """Parameters of the monosemantic-neuron chapter (one field per notebook parameter)."""

    model: str = "smollm2-135m"
    """Model name for :func:`sparse_probing.models.load_model`."""
    variant: str = "default"
    """Dataset size variant (``smoke`` or ``default``)."""
    families: tuple[str, ...] = ("paper_code", "natural_language", "code_language", "data_source", "factual")
    """Families probed; ``paper_*`` families are the primary evidence, the others secondary."""
    max_length: int = 128
    """Context length in tokens."""
    max_lengths: Mapping[str, int] = field(default_factory=dict)
    """Per-family context length overriding ``max_length``."""
    n_documents: Mapping[str, int] = field(default_factory=dict)
    """Per family: cache only the first n documents (families not listed: all)."""
    max_tasks: Mapping[str, int] = field(default_factory=dict)
    """Per family: at most this many classes, the most frequent first (families not listed: every class)."""
    layers_per_third: int | None = None
    """Layers searched in each third of the model, evenly spaced from its first to its last layer (None: every
    layer; see :func:`searched_layers`). Every layer is cached either way."""
    min_positives: int = 10
    """A class becomes a task only with at least this many positives and negatives among the examples."""
    min_test_positives: int = 30
    """A class with fewer test positives is flagged inconclusive and left out of the pooled claims."""
    claim_metric: Literal["f1", "roc_auc"] = "f1"
    """Test score compared between thirds in the middle-layer claim (``f1``: the paper's; ``roc_auc``)."""
    surface_baselines: tuple[str, ...] = ("token", "bag_of_tokens")
    """Surface baselines fitted on every task (best chosen on validation); empty for none."""
    n_rotations: int = 2
    """Haar-random bases averaged by the random-basis baseline."""
    n_boot: int = 200
    """Bootstrap resamples (documents for test scores, classes and texts for the claims)."""
    n_top_examples: int = 3
    """Most-activating texts shown per case-study neuron."""
    ablation_classes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Per document-level family: the classes whose chosen neuron is studied and ablated."""
    n_ablation_texts: int = 30
    """Held-out texts per group (the class, the other classes) in the ablation."""
    n_random_neurons: int = 2
    """Random neurons of the same layer ablated on the target texts (the baseline)."""
    seed: int = 0
    """Seed of the split, the held-out texts, the random neurons, rotations and shuffles."""

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
        need(self.min_positives >= 2, f"min_positives must be at least 2, got {self.min_positives}")
        need(self.min_test_positives >= 1, f"min_test_positives must be at least 1, got {self.min_test_positives}")
        from ..analysis.surface import BASELINES

        unknown = sorted(set(self.surface_baselines) - set(BASELINES))
        need(not unknown, f"unknown surface baselines {unknown}; choose from {list(BASELINES)}")
        need("embedding" not in self.surface_baselines, "the embedding baseline is not run here (its own cache)")
        need(self.n_rotations >= 1, f"n_rotations must be at least 1, got {self.n_rotations}")
        need(self.n_boot >= 1, f"n_boot must be at least 1, got {self.n_boot}")
        need(self.n_top_examples >= 1, f"n_top_examples must be at least 1, got {self.n_top_examples}")
        stray = sorted(set(self.ablation_classes) - set(self.families))
        need(not stray, f"ablation_classes names families that are not probed: {stray}")
        need(self.n_ablation_texts >= 2, f"n_ablation_texts must be at least 2, got {self.n_ablation_texts}")
        need(self.n_random_neurons >= 1, f"n_random_neurons must be at least 1, got {self.n_random_neurons}")

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
    """One row per (family, task, layer): ``class, third, neuron, f1_val, f1_test, f1_test_low, f1_test_high,
    roc_auc_val, roc_auc_test``."""
    summary: pd.DataFrame
    """One row per (family, task): ``class, primary, examples, test_positives, status``; the layer chosen on
    validation (``layer, neuron, n_tied, tied_layer``) with ``f1_test`` (and interval), ``roc_auc_test`` (and
    interval), ``dedicated``; per third the chosen ``<third>_layer``, ``<third>_f1``, ``<third>_roc_auc``; the
    baselines at the chosen layer ``dense_*``, ``random_basis_*``, ``control_*`` (f1 and roc_auc) and the best
    surface baseline ``surface_baseline, surface_f1, surface_roc_auc``."""
    cases: pd.DataFrame
    """One row per case study: ``family, task, class, layer, neuron, raises`` (the class raises the neuron)."""
    case_activations: pd.DataFrame
    """Per case study, every cached example: ``family, class, activation, in_class``."""
    top_texts: pd.DataFrame
    """Per case study the most extreme examples in the class's direction: ``family, class, activation, text,
    labels``."""
    effects: pd.DataFrame
    """Ablation loss increases, one row per (case, neuron, group, text): ``family, class, neuron, chosen, group,
    text, loss, ablated, delta``."""
    ablation: pd.DataFrame
    """Per ablated case: ``family, class, layer, neuron, random_neurons, n_target_texts, clean_loss`` and the
    :func:`~sparse_probing.analysis.ablation.ablation_specificity` summary."""
    timings: pd.DataFrame
    """Per family: ``dataset`` (versioned key), ``examples``, ``tasks``, ``cache_s``, ``probe_s``."""

    @property
    def datasets(self) -> dict[str, str]:
        return dict(zip(self.timings["family"], self.timings["dataset"], strict=True))

    def claims(self, power: float | None = None, false_positive_rate: float | None = None) -> list[ClaimEvidence]:
        """The chapter's claims (the middle-layer claim only when the model has a middle third to compare).

        ``power`` and ``false_positive_rate`` are those of the ground-truth chapter's ``dedicated`` diagnostic. They
        calibrate *finding* a dedicated neuron, not *where in depth* it lies, so the middle-layer claim records them
        in its control text; its verdict comes from its CI against the minimal effect."""
        out = []
        middle = middle_layers_claim(
            self.summary,
            metric=self.config.claim_metric,
            n_boot=self.config.n_boot,
            seed=self.config.seed,
            power=None,
            dedicated_calibration=(power, false_positive_rate),
        )
        if middle is not None:
            out.append(middle)
        if len(self.effects):
            out.append(ablation_claim(self.effects, n_boot=self.config.n_boot, seed=self.config.seed))
        return out

    def metrics(self, claims: Sequence[ClaimEvidence] = ()) -> dict[str, Any]:
        """Plain values for :func:`sparse_probing.results.save_results`."""
        return {
            "claims": [c.to_dict() for c in claims],
            "model_identity": self.model_identity,
            "n_layers": self.n_layers,
            "d_mlp": self.d_mlp,
            "layers": list(self.layers),
            "summary": self.summary,
            "middle_contrast": middle_contrast(self.summary, self.config.claim_metric),
            "thirds": thirds_table(self),
            "ablation": self.ablation,
            "timings": self.timings,
        }


def dedicated_calibration(records: Sequence[Mapping[str, Any]] | None = None) -> tuple[float | None, float | None]:
    """(power, false-positive rate) of the ``dedicated`` diagnostic at the book's sample size
    (:func:`~sparse_probing.analysis.verdicts.calibrated_rates`); ``(None, None)`` when that chapter has not run."""
    from ..analysis.verdicts import calibrated_rates

    return calibrated_rates("dedicated", records)


# ---------------------------------------------------------------------------------------------- claims (pure)
def middle_contrast(summary: pd.DataFrame, metric: str = "f1") -> pd.DataFrame:
    """Per class: the test ``metric`` of the best single neuron in each third (layer chosen on validation inside the
    third), ``outer`` = the better of the first and last third, and ``diff`` = middle minus outer (positive: the
    middle third beats both). Classes without a score in the middle third and at least one outer third are left
    out."""
    cols = [f"{t}_{metric}" for t in THIRDS]
    if summary.empty or any(c not in summary.columns for c in cols):
        return pd.DataFrame(columns=["family", "task", "primary", "status", "middle", "outer", "diff"])
    out = summary[["family", "task", "primary", "status", "test_positives"]].copy()
    for t in THIRDS:
        out[t] = summary[f"{t}_{metric}"].to_numpy(dtype=float)
    out["outer"] = out[["first", "last"]].max(axis=1, skipna=True)
    out["diff"] = out["middle"] - out["outer"]
    return out[np.isfinite(out["diff"])].reset_index(drop=True)


def _bounded(est: float, low: float, high: float) -> tuple[float, float, float]:
    return float(est), float(min(low, est)), float(max(high, est))


def middle_layers_claim(
    summary: pd.DataFrame,
    *,
    metric: str = "f1",
    n_boot: int = 1000,
    seed: int = 0,
    power: float | None = None,
    false_positive_rate: float | None = None,
    dedicated_calibration: tuple[float | None, float | None] | None = None,
) -> ClaimEvidence | None:
    """The claim "monosemantic neurons in middle layers" from a :attr:`MonosemanticResult.summary` table.

    Estimate: the mean over classes of the best single neuron's test ``metric`` in the middle third minus the better
    of the first and last thirds (:func:`middle_contrast`), with a paired bootstrap over classes; minimal effect
    :data:`MIN_MIDDLE`, MDE from the per-class differences. Only
    classes with status ok enter (all classes when none is ok; the claim is then inconclusive by its test
    positives). The surface margin is the best single neuron (layer chosen on validation) minus the best surface
    baseline, paired over the same classes. The paper's data drive the record; self-built families enter as a second
    of two ``parts`` (the top-level numbers stay the paper data's) only when they have conclusive classes, and
    alone when there is no paper data. None when no class has a middle and an outer third (fewer than three
    layers). ``dedicated_calibration`` (power, false-positive rate of the ground-truth ``dedicated`` diagnostic) is
    stated in the control text when given."""
    contrast = middle_contrast(summary, metric)
    if contrast.empty:
        return None
    keys = ["family", "task"]
    full = summary.set_index(keys)

    def part(sub: pd.DataFrame, label: str) -> ClaimEvidence:
        pb = paired_bootstrap(sub["middle"], sub["outer"], n_boot=n_boot, random_state=seed)
        idx = pd.MultiIndex.from_frame(sub[keys])
        best, surface = full.loc[idx, f"{metric}_test"], full.loc[idx, f"surface_{metric}"]
        margin = None
        if np.isfinite(surface.to_numpy(dtype=float)).any():
            sm = paired_bootstrap(best, surface, n_boot=n_boot, random_state=seed)
            margin = _bounded(sm["mean_diff"], sm["low"], sm["high"])
        ded = {
            t: int(is_dedicated(full.loc[idx, f"{t}_roc_auc"].to_numpy(dtype=float)).sum())
            for t in THIRDS
            if f"{t}_roc_auc" in full.columns
        }
        control = (
            f"{metric} at the chosen layer: shuffled labels {full.loc[idx, f'control_{metric}'].mean():.2f}, "
            f"random basis {full.loc[idx, f'random_basis_{metric}'].mean():.2f}, dense "
            f"{full.loc[idx, f'dense_{metric}'].mean():.2f}; classes with a dedicated neuron (ROC-AUC >= 0.95) in "
            f"the first/middle/last third: {ded.get('first', 0)}/{ded.get('middle', 0)}/{ded.get('last', 0)} of "
            f"{len(sub)}"
        )
        if false_positive_rate is not None:
            control += (
                f" (the dedicated rule fires on superposed toy features in up to {false_positive_rate:.2f} of studies)"
            )
        if dedicated_calibration is not None and dedicated_calibration[0] is not None:
            dp, dfpr = dedicated_calibration
            control += (
                f"; the ground-truth chapter calibrates finding a dedicated neuron (worst-regime power {dp:.2f}"
                + (f", false-positive rate up to {dfpr:.2f} on superposed toy features" if dfpr is not None else "")
                + "), not where in depth it lies"
            )
        est, low, high = _bounded(pb["mean_diff"], pb["low"], pb["high"])
        mde = minimal_detectable_effect(sub["middle"].to_numpy(float) - sub["outer"].to_numpy(float))
        if power is not None:
            control += f"; calibrated power of the diagnostic {power:.2f}"
        return ClaimEvidence(
            claim=f"monosemantic neurons in middle layers{label}",
            chapter=CHAPTER,
            measure=f"best single-neuron test {'F1' if metric == 'f1' else 'ROC-AUC'}, middle third minus the "
            "better outer third (mean over classes)",
            paper=PAPER_MIDDLE,
            estimate=est,
            ci_low=low,
            ci_high=high,
            minimal_effect=MIN_MIDDLE,
            minimal_effect_source=MIN_MIDDLE_SOURCE,
            mde=float(mde) if np.isfinite(mde) else None,
            estimator=ESTIMATOR,
            surface_margin=margin,
            control=control,
            n_tasks=len(sub),
            min_test_positives=int(sub["test_positives"].min()),
        )

    def conclusive_or_all(rows: pd.DataFrame) -> pd.DataFrame:
        ok = rows[rows["status"] != INCONCLUSIVE]
        return ok if len(ok) else rows

    is_primary_row = contrast["primary"].astype(bool)
    primary = contrast[is_primary_row]
    secondary = contrast[~is_primary_row & (contrast["status"] != INCONCLUSIVE)]
    if primary.empty:  # no paper data: the self-built families alone
        return part(conclusive_or_all(contrast), "")
    p = part(conclusive_or_all(primary), " (paper's data)")
    if secondary.empty:  # self-built families without a conclusive class do not enter the verdict
        return ClaimEvidence(**{**p.to_dict(), "claim": "monosemantic neurons in middle layers",
                                "measure": p.measure + " on the paper's data"})  # fmt: skip
    sec = part(secondary, " (self-built families)")
    top = {**p.to_dict(), "claim": "monosemantic neurons in middle layers", "parts": (p, sec)}
    top["measure"] = p.measure + " on the paper's data; the self-built families are a second part"
    return ClaimEvidence(**top)


def _percent(effects: pd.DataFrame) -> np.ndarray:
    """Each row's loss increase in percent of its clean loss."""
    return 100.0 * effects["delta"].to_numpy(dtype=float) / effects["loss"].to_numpy(dtype=float)


def ablation_claim(effects: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> ClaimEvidence:
    """The claim "ablating a context neuron raises the loss on its context" from :attr:`MonosemanticResult.effects`.

    Estimate: the mean over ablated cases of (mean loss increase on held-out target texts minus mean increase on
    texts of the other classes) when the chosen neuron is zeroed, each text's increase in percent of its clean loss
    (so texts and contexts of different difficulty are comparable); CI by a bootstrap over texts
    (:func:`~sparse_probing.analysis.statistics.bootstrap_statistic`, each text one group); minimal effect
    :data:`MIN_ABLATION`, MDE from the interval. The control
    is the chosen neuron minus random neurons of its layer on the same target texts (paired per text).
    ``min_test_positives`` is the fewest target texts of a case.
    """
    chosen = effects[effects["chosen"]].copy()
    case = (chosen["family"] + "/" + chosen["class"]).to_numpy()
    is_target = (chosen["group"] == "target").to_numpy()
    delta = _percent(chosen)
    text_id = np.array([f"{c}|{g}|{t}" for c, g, t in zip(case, chosen["group"], chosen["text"], strict=True)])
    cases = sorted(set(case))

    def stat(d: np.ndarray, t: np.ndarray, c: np.ndarray) -> float:
        diffs = []
        for name in cases:
            here = c == name
            if not (here & t).any() or not (here & ~t).any():
                return float("nan")
            diffs.append(d[here & t].mean() - d[here & ~t].mean())
        return float(np.mean(diffs))

    ci = bootstrap_statistic(stat, delta, is_target, case, groups=text_id, n_boot=n_boot, random_state=seed)
    est, low, high = _bounded(ci["estimate"], ci["low"], ci["high"])
    randoms = effects[~effects["chosen"] & (effects["group"] == "target")]
    base = randoms.assign(pct=_percent(randoms)).groupby(["family", "class", "text"])["pct"].mean()
    own = chosen[is_target].assign(pct=delta[is_target]).set_index(["family", "class", "text"])["pct"]
    paired = (own - base.reindex(own.index)).dropna()
    control = "no random-neuron baseline"
    if len(paired):
        rc = bootstrap_statistic(np.mean, paired.to_numpy(), n_boot=n_boot, random_state=seed)
        control = (
            "chosen minus random neurons of the same layer on the target texts "
            + format_ci(*_bounded(rc["estimate"], rc["low"], rc["high"]))
            + " % of the clean loss"
        )
    n_target = chosen[is_target].groupby(["family", "class"])["text"].nunique()
    return ClaimEvidence(
        claim="ablating a context neuron raises the loss on its context",
        chapter=CHAPTER,
        measure="loss increase on held-out target texts minus on other texts (% of the clean loss, mean over cases)",
        paper=PAPER_ABLATION,
        estimate=est,
        ci_low=low,
        ci_high=high,
        minimal_effect=MIN_ABLATION,
        minimal_effect_source=MIN_ABLATION_SOURCE,
        mde=mde_from_interval(low, high),
        estimator="held-out texts of each ablated class; bootstrap over texts",
        surface_margin=None,
        control=control,
        n_tasks=len(cases),
        min_test_positives=int(n_target.min()) if len(n_target) else 0,
    )


# ---------------------------------------------------------------------------------------------- running
def _task_label(task: str, single_feature: bool) -> str:
    return task.split("=", 1)[1] if single_feature and "=" in task else task


def _doc_label(labels: Mapping[str, Any], task: str) -> int | None:
    """1/0 for a document and a task name of :func:`~sparse_probing.study.binary_tasks`; None when unlabelled."""
    if "=" in task:
        feature, value = task.split("=", 1)
        v = labels.get(feature)
        return None if v is None else int(str(v) == value)
    v = labels.get(task)
    return None if v is None else int(v in (1, True, "1", 1.0))


def _auc_interval(y: np.ndarray, score: np.ndarray, groups: np.ndarray, n_boot: int, seed: int) -> tuple:
    def auc(a: np.ndarray, b: np.ndarray) -> float:
        return float(roc_auc_score(a, b)) if np.unique(a).size == 2 else float("nan")

    ci = bootstrap_statistic(auc, y, score, groups=groups, n_boot=n_boot, random_state=seed)
    return ci["estimate"], ci["low"], ci["high"]


@dataclass
class _Family:
    acts: Any
    split: Any
    tasks: dict[str, np.ndarray]
    summary: pd.DataFrame
    per_layer: pd.DataFrame
    timing: dict[str, Any]


def _probe_family(config: MonosemanticConfig, lm: Any, family: str, layers: Sequence[int]) -> _Family:
    from ..analysis.surface import best_surface, surface_baselines
    from ..probes import ProbeSpec, SingleNeuronProbe, run_sweep
    from ..study import best_layer, best_single_neurons, binary_tasks, cache_for, split_examples

    t0 = time.perf_counter()
    acts = cache_for(
        lm, family, config.variant, n_documents=config.n_documents.get(family), max_length=config.context_length(family)
    )
    cache_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    ex = acts.examples
    first = acts.features[0] if acts.features else None
    split = split_examples(ex, stratify=first if first and ex[first].notna().all() else None, seed=config.seed)
    tasks = binary_tasks(ex, min_positives=config.min_positives, min_negatives=config.min_positives)
    if family in config.max_tasks:
        ranked = sorted(tasks, key=lambda t: -float(np.nansum(tasks[t])))
        tasks = {t: tasks[t] for t in ranked[: config.max_tasks[family]]}
    docs = ex["doc"].to_numpy()
    single = len(acts.features) == 1
    timing = {"family": family, "dataset": acts.dataset_key, "examples": len(ex), "tasks": len(tasks)}
    if not tasks:
        warnings.warn(f"family {family!r}: no class with {config.min_positives} positives", RuntimeWarning, 3)
        return _Family(acts, split, {}, pd.DataFrame(), pd.DataFrame(), {**timing, "cache_s": cache_s, "probe_s": 0.0})
    test_mask = np.zeros(len(ex), dtype=bool)
    test_mask[split.test] = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sweep = run_sweep(
            {layer: acts.layer(layer) for layer in layers},
            tasks,
            split,
            [ProbeSpec("single_neuron", random_state=config.seed)],
            groups=docs,
            n_boot=config.n_boot,
            progress=False,
        )
    per_layer = best_single_neurons(sweep).assign(family=family)
    per_layer["third"] = [third_of(int(x), lm.n_layers) for x in per_layer["layer"]]
    per_layer["class"] = [_task_label(t, single) for t in per_layer["feature"]]
    best = best_layer(per_layer, by=("family", "feature"))
    in_third = best_layer(per_layer, by=("family", "feature", "third"))

    rows = []
    for _, r in best.iterrows():
        task, layer = r["feature"], int(r["layer"])
        y = tasks[task]
        parts = {n: idx[np.isfinite(y[idx])] for n, idx in (("train", split.train), ("val", split.val))}
        te = split.test[np.isfinite(y[split.test])]
        X = acts.layer(layer)
        probe = SingleNeuronProbe().fit(
            np.asarray(X[parts["train"]], dtype=np.float32),
            y[parts["train"]].astype(int),
            validation=(np.asarray(X[parts["val"]], dtype=np.float32), y[parts["val"]].astype(int)),
        )
        score = probe.decision_function(np.asarray(X[te], dtype=np.float32))
        auc, auc_low, auc_high = _auc_interval(y[te].astype(int), score, docs[te], config.n_boot, config.seed)
        rows.append(
            {
                "family": family,
                "task": task,
                "class": r["class"],
                "primary": is_primary(family),
                "examples": int(np.isfinite(y).sum()),
                "test_positives": int(np.nansum(y[test_mask])),
                "layer": layer,
                "neuron": int(r["neuron"]),
                "n_tied": int(r["n_tied"]),
                "tied_layer": tuple(int(v) for v in r["tied_layer"]),
                "f1_val": float(r["f1_val"]),
                "roc_auc_val": float(r["roc_auc_val"]),
                "f1_test": float(r["f1_test"]),
                "f1_test_low": float(r.get("f1_test_low", np.nan)),
                "f1_test_high": float(r.get("f1_test_high", np.nan)),
                "roc_auc_test": float(auc),
                "roc_auc_test_low": float(auc_low),
                "roc_auc_test_high": float(auc_high),
            }
        )
    summary = pd.DataFrame(rows)
    summary["dedicated"] = is_dedicated(summary["roc_auc_test"].to_numpy())
    summary["status"] = np.where(summary["test_positives"] < config.min_test_positives, INCONCLUSIVE, "ok")
    for t in THIRDS:
        d = in_third[in_third["third"] == t].set_index("feature")
        summary[f"{t}_layer"] = summary["task"].map(d["layer"]).astype(float)
        summary[f"{t}_f1"] = summary["task"].map(d["f1_test"]).astype(float)
        summary[f"{t}_roc_auc"] = summary["task"].map(d["roc_auc_test"]).astype(float)

    specs = [
        ProbeSpec("dense", random_state=config.seed),
        ProbeSpec(
            "random_basis",
            params={"base": "single_neuron", "n_rotations": config.n_rotations},
            random_state=config.seed,
        ),
        ProbeSpec("control", params={"base": "single_neuron"}, random_state=config.seed),
    ]
    frames = []
    for layer, group in summary.groupby("layer"):
        chosen = {t: tasks[t] for t in group["task"]}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            res = run_sweep({int(layer): acts.layer(int(layer))}, chosen, split, specs, n_boot=0, progress=False)
        frames.append(res[res["error"].isna()] if "error" in res.columns else res)
    base = pd.concat(frames, ignore_index=True)
    for method in ("dense", "random_basis", "control"):
        m = base[base["method"] == method].set_index("feature")
        for metric in ("f1", "roc_auc"):
            summary[f"{method}_{metric}"] = summary["task"].map(m[f"{metric}_test"]).astype(float)
    summary["surface_baseline"], summary["surface_f1"], summary["surface_roc_auc"] = "none", np.nan, np.nan
    if config.surface_baselines:
        table = surface_baselines(acts, tasks, split, lm.tokenizer, baselines=config.surface_baselines)
        if len(table):
            s = best_surface(table).set_index("feature")
            summary["surface_baseline"] = summary["task"].map(s["surface_baseline"]).fillna("none")
            summary["surface_f1"] = summary["task"].map(s["surface_f1_test"]).astype(float)
            summary["surface_roc_auc"] = summary["task"].map(s["surface_roc_auc_test"]).astype(float)
    per_layer = per_layer.rename(columns={"feature": "task"})
    keep = ["family", "task", "class", "layer", "third", "neuron", "f1_val", "f1_test", "f1_test_low"]
    keep += ["f1_test_high", "roc_auc_val", "roc_auc_test"]
    timing.update(cache_s=cache_s, probe_s=time.perf_counter() - t1)
    return _Family(acts, split, tasks, summary, per_layer[[c for c in keep if c in per_layer.columns]], timing)


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


def _ablate(
    config: MonosemanticConfig, lm: Any, fam: _Family, family: str, case: Mapping[str, Any], rng: np.random.Generator
) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    from ..analysis.ablation import ablation_effect, ablation_specificity
    from ..datasets import load_dataset

    full = load_dataset(family, config.variant)
    trained = set(fam.acts.examples["doc"].iloc[fam.split.train].tolist())
    pool = [i for i in range(len(full.documents)) if i not in trained]
    labels = [_doc_label(full.documents[i].labels, case["task"]) for i in pool]
    target = [i for i, v in zip(pool, labels, strict=True) if v == 1]
    other = [i for i, v in zip(pool, labels, strict=True) if v == 0]
    n = min(config.n_ablation_texts, len(target), len(other))
    if n < 2:
        return None
    texts = {g: [full.documents[int(i)].text for i in rng.choice(ids, n, replace=False)]
             for g, ids in (("target", target), ("other", other))}  # fmt: skip
    layer, neuron = int(case["layer"]), int(case["neuron"])
    candidates = np.setdiff1d(np.arange(lm.d_mlp), [neuron])
    randoms = sorted(int(j) for j in rng.choice(candidates, config.n_random_neurons, replace=False))
    length = config.context_length(family)
    eff = pd.concat(
        [
            ablation_effect(lm, layer, [neuron, *randoms], {"target": texts["target"]}, max_length=length),
            ablation_effect(lm, layer, [neuron], {"other": texts["other"]}, max_length=length),
        ],
        ignore_index=True,
    )
    eff = eff.assign(family=family, **{"class": case["class"]}, chosen=eff["neuron"] == neuron)
    stats = ablation_specificity(eff, neuron, n_boot=config.n_boot, random_state=config.seed)
    clean = float(eff.loc[(eff["group"] == "target") & eff["chosen"], "loss"].mean())
    summary = {"family": family, "class": case["class"], "layer": layer, "neuron": neuron,
               "random_neurons": randoms, "n_target_texts": n, "clean_loss": clean, **stats}  # fmt: skip
    return eff, summary


def run(config: MonosemanticConfig, *, model: Any | None = None) -> MonosemanticResult:
    """Search, baseline and ablate as the module documentation says; returns the tables of a
    :class:`MonosemanticResult`. ``model`` is an already loaded model (default: loaded from ``config.model``)."""
    from ..datasets import FAMILIES, is_dataset_file, load_dataset
    from ..models import load_model

    unknown = [f for f in config.families if f not in FAMILIES and not is_dataset_file(f)]
    if unknown:
        raise ConfigError(f"unknown families {unknown}; choose from {list(FAMILIES)} or give a dataset file's path")
    lm = load_model(config.model) if model is None else model
    layers = searched_layers(lm.n_layers, config.layers_per_third)
    fams = {family: _probe_family(config, lm, family, layers) for family in config.families}
    summary = pd.concat([f.summary for f in fams.values() if len(f.summary)], ignore_index=True)
    if summary.empty:
        raise ValueError("no family produced a class with enough examples; raise n_documents")
    rng = np.random.default_rng(config.seed)
    cases, hists, tops, effects, ablations = [], [], [], [], []
    for family, classes in config.ablation_classes.items():
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
            if load_dataset(family, config.variant).level == "document":
                out = _ablate(config, lm, fam, family, case, rng)
                if out is not None:
                    effects.append(out[0])
                    ablations.append(out[1])
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
        effects=pd.concat(effects, ignore_index=True) if effects else pd.DataFrame(),
        ablation=pd.DataFrame(ablations),
        timings=pd.DataFrame([f.timing for f in fams.values()]),
    )


# ---------------------------------------------------------------------------------------------- tables
def _fmt(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}".replace("-", "\u2212") if np.isfinite(value) else "n/a"


def family_table(result: MonosemanticResult) -> pd.DataFrame:
    """One row per family: evidence kind, classes (inconclusive ones), median test positives, and means over its
    classes at the chosen layer: single-neuron test F1 and ROC-AUC, classes with a dedicated neuron, dense probe,
    random basis, shuffled labels and best surface baseline (test F1)."""
    rows = []
    for family, d in result.summary.groupby("family", sort=False):
        rows.append(
            {
                "family": family,
                "evidence": "paper data" if is_primary(family) else "self-built",
                "classes": len(d),
                "inconclusive": int((d["status"] == INCONCLUSIVE).sum()),
                "median test positives": f"{d['test_positives'].median():.0f}",
                "neuron F1": _fmt(d["f1_test"].mean()),
                "neuron ROC-AUC": _fmt(d["roc_auc_test"].mean()),
                "dedicated": f"{int(d['dedicated'].sum())}/{len(d)}",
                "dense F1": _fmt(d["dense_f1"].mean()),
                "random basis F1": _fmt(d["random_basis_f1"].mean()),
                "shuffled F1": _fmt(d["control_f1"].mean()),
                "surface F1": _fmt(d["surface_f1"].mean()),
            }
        )
    return pd.DataFrame(rows)


def class_table(result: MonosemanticResult, *, n: int = 10) -> pd.DataFrame:
    """The classes of the paper's data, then the conclusive self-built classes with the best single-neuron test
    ROC-AUC, at most ``n`` rows: layer and neuron chosen on validation, test F1 and ROC-AUC with their 95% intervals
    over documents, and the baselines at that layer (test F1)."""
    s = result.summary.assign(_order=lambda d: (~d["primary"]).astype(int) + 2 * (d["status"] == INCONCLUSIVE))
    s = s.sort_values(["_order", "roc_auc_test"], ascending=[True, False], kind="stable").head(n)
    return pd.DataFrame(
        {
            "family": s["family"],
            "class": s["class"],
            "test positives": s["test_positives"],
            "layer": s["layer"],
            "neuron": s["neuron"],
            "F1 (95% CI)": [format_ci(*r) for r in s[["f1_test", "f1_test_low", "f1_test_high"]].to_numpy()],
            "ROC-AUC (95% CI)": [
                format_ci(*r) for r in s[["roc_auc_test", "roc_auc_test_low", "roc_auc_test_high"]].to_numpy()
            ],
            "dense": [_fmt(v) for v in s["dense_f1"]],
            "random basis": [_fmt(v) for v in s["random_basis_f1"]],
            "shuffled": [_fmt(v) for v in s["control_f1"]],
            "surface": [f"{_fmt(v)} ({b})" for v, b in zip(s["surface_f1"], s["surface_baseline"], strict=True)],
            "status": s["status"],
        }
    ).reset_index(drop=True)


def thirds_table(result: MonosemanticResult) -> pd.DataFrame:
    """Per family: mean test score (the claim's metric) of the best single neuron inside each third (layer chosen on
    validation within the third), classes with a dedicated neuron per third, and middle minus the better outer
    third with its bootstrap interval over classes."""
    metric = result.config.claim_metric
    s = result.summary
    rows = []
    for family, d in s.groupby("family", sort=False):
        row: dict[str, Any] = {"family": family, "classes": len(d)}
        for t in THIRDS:
            row[f"{t} third"] = _fmt(d[f"{t}_{metric}"].mean())
        for t in THIRDS:
            row[f"dedicated {t}"] = int(is_dedicated(d[f"{t}_roc_auc"].to_numpy(dtype=float)).sum())
        c = middle_contrast(d, metric)
        if len(c):
            pb = paired_bootstrap(c["middle"], c["outer"], n_boot=result.config.n_boot, random_state=0)
            row["middle − outer (95% CI)"] = format_ci(*_bounded(pb["mean_diff"], pb["low"], pb["high"]))
        else:
            row["middle − outer (95% CI)"] = "n/a"
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
    """Per ablated case: layer, neuron, target texts, clean loss and the loss increases (nats per token, 95%
    intervals over texts) on target texts, on other texts, for random neurons on the target texts, and the two
    contrasts."""
    a = result.ablation
    if a.empty:
        return pd.DataFrame()

    def ci(r: pd.Series, name: str) -> str:
        return format_ci(r[name], r[f"{name}_low"], r[f"{name}_high"], digits=4)

    return pd.DataFrame(
        {
            "family": a["family"],
            "class": a["class"],
            "layer": a["layer"],
            "neuron": a["neuron"],
            "texts": a["n_target_texts"],
            "clean loss": a["clean_loss"].round(2),
            "target Δ": [ci(r, "target") for _, r in a.iterrows()],
            "other Δ": [ci(r, "other") for _, r in a.iterrows()],
            "random, target Δ": [ci(r, "random_target") for _, r in a.iterrows()],
            "target − other": [ci(r, "target_minus_other") for _, r in a.iterrows()],
            "target − random": [ci(r, "target_minus_random") for _, r in a.iterrows()],
        }
    )


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
    """One panel per family: the best single neuron's test ROC-AUC at every searched layer, one line per class
    (a fixed colour per class), the middle third shaded and the dedicated level (0.95) dashed."""
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
            title=f"{family} ({kind})", ylim=(low, 1.02), ylabel="test ROC-AUC", xlabel="layer (shaded: middle third)"
        )
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=6, ncol=2 if d["class"].nunique() > 7 else 1, loc="center left", bbox_to_anchor=(1.0, 0.5),
                  frameon=False)  # fmt: skip
    for ax in list(axes.flat)[len(families) :]:
        ax.axis("off")
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_thirds(result: MonosemanticResult) -> Any:
    """Per class (a dot per class, by family): the best single neuron's test score in the middle third minus the
    better outer third; right of the dashed zero line the middle third wins. Hollow dots: inconclusive classes."""
    import matplotlib.pyplot as plt

    metric = result.config.claim_metric
    c = middle_contrast(result.summary, metric)
    colours = _colours(result)
    families = list(dict.fromkeys(result.summary["family"]))
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(families) + 1.2))
    for i, family in enumerate(families):
        d = c[c["family"] == family]
        cls = result.summary.set_index(["family", "task"])["class"]
        jitter = np.linspace(-0.15, 0.15, max(len(d), 1))
        for j, r in enumerate(d.itertuples(index=False)):
            col = colours[(family, cls[(family, r.task)])]
            ok = r.status != INCONCLUSIVE
            ax.scatter(r.diff, i + jitter[j], s=22, color=col if ok else "none", edgecolor=col)
    ax.axvline(0, color="black", ls="--", lw=0.8)
    ax.set_yticks(range(len(families)), families)
    ax.invert_yaxis()
    name = "F1" if metric == "f1" else "ROC-AUC"
    ax.set(xlabel=f"test {name}: middle third minus the better outer third", ylabel="")
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
    """Per ablated case: mean loss increase (95% interval over texts) when the chosen neuron is zeroed on target
    texts and on other texts, and when random neurons of its layer are zeroed on the target texts."""
    import matplotlib.pyplot as plt

    a = result.ablation
    fig, ax = plt.subplots(figsize=(9, 3.4))
    if a.empty:
        ax.text(0.5, 0.5, "no ablation in this run", ha="center", va="center", transform=ax.transAxes)
        ax.axis("off")
        plt.close(fig)
        return fig
    bars = [("target", "chosen neuron, target texts", "C3"), ("other", "chosen neuron, other texts", "C1"),
            ("random_target", "random neurons, target texts", "C0")]  # fmt: skip
    x = np.arange(len(a))
    width = 0.27
    for i, (key, label, colour) in enumerate(bars):
        mid = a[key].to_numpy(dtype=float)
        err = np.abs(np.vstack([mid - a[f"{key}_low"].to_numpy(dtype=float), a[f"{key}_high"].to_numpy() - mid]))
        ax.bar(x + (i - 1) * width, mid, width, yerr=err, color=colour, label=label, capsize=2)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(x, [f"{c}\n({f})" for f, c in zip(a["family"], a["class"], strict=True)], fontsize=8)
    ax.set(ylabel="loss increase (nats/token)")
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    plt.close(fig)
    return fig


# ---------------------------------------------------------------------------------------------- captions, findings
def caption_layers(result: MonosemanticResult, number: int = 1) -> str:
    """Numbered caption of :func:`plot_layers` with where the chosen layers lie."""
    s = result.summary
    counts = {t: int((s["layer"].map(lambda v: third_of(int(v), result.n_layers)) == t).sum()) for t in THIRDS}
    has_middle = any(third_of(x, result.n_layers) == "middle" for x in range(result.n_layers))
    shaded = (
        f"the middle third of the {result.n_layers} layers is shaded"
        if has_middle
        else f"{result.n_layers} layers have no middle third"
    )
    return (
        f"**Figure {number}.** Test ROC-AUC of the best single neuron (chosen on validation) at every searched "
        f"layer, one line per class; {shaded}, the dashed line marks the "
        f"dedicated level 0.95. The layer chosen on validation over all layers lies in the first third for "
        f"{counts['first']} classes, the middle third for {counts['middle']} and the last third for "
        f"{counts['last']} (of {len(s)})."
    )


def caption_thirds(result: MonosemanticResult, number: int = 2) -> str:
    """Numbered caption of :func:`plot_thirds` with the pooled middle-minus-outer difference over conclusive
    classes."""
    c = middle_contrast(result.summary, result.config.claim_metric)
    c = c[c["status"] != INCONCLUSIVE]
    text = (
        f"**Figure {number}.** Per class, the best single neuron's test "
        f"{'F1' if result.config.claim_metric == 'f1' else 'ROC-AUC'} in the middle third minus the better of the "
        "first and last thirds (layer chosen on validation inside each third); hollow dots are inconclusive classes."
    )
    if len(c):
        pb = paired_bootstrap(c["middle"], c["outer"], n_boot=result.config.n_boot, random_state=0)
        text += (
            " Over the conclusive classes, "
            + describe_difference(
                "the middle third", "the better outer third", *_bounded(pb["mean_diff"], pb["low"], pb["high"])
            )
            + f" ({int((c['diff'] > 0).sum())} of {len(c)} classes favour the middle)."
        )
    return text


def caption_cases(result: MonosemanticResult, number: int = 3) -> str:
    """Numbered caption of :func:`plot_cases` with each case neuron's test ROC-AUC."""
    s = result.summary.set_index(["family", "task"])
    parts = [f"`{c[2]}` {s.loc[(c.family, c.task), 'roc_auc_test']:.2f}" for c in result.cases.itertuples(index=False)]
    return (
        f"**Figure {number}.** Pooled activation of each case-study neuron on documents of its class (colour) against "
        "the other documents of its family (grey), every cached document. Test ROC-AUC of the neurons: "
        + (", ".join(parts) or "none")
        + "."
    )


def caption_ablation(result: MonosemanticResult, number: int = 4) -> str:
    """Numbered caption of :func:`plot_ablation` with how many neurons' ablation is specific."""
    a = result.ablation
    n_specific = int(a["specific"].sum()) if len(a) else 0
    return (
        f"**Figure {number}.** Mean loss increase (nats per token, 95% interval over texts) when the chosen neuron is "
        "zeroed on held-out texts of its class and of the other classes, and when random neurons of its layer are "
        f"zeroed on the same class texts. {n_specific} of {len(a)} neurons are specific: their increase on class texts "
        "exceeds both the increase on other texts and that of the random neurons (both 95% intervals above 0)."
    )


def findings(result: MonosemanticResult, claims: Sequence[ClaimEvidence] = ()) -> str:
    """Markdown bullets on what the chapter shows, computed from the result and its claims."""
    lines = []
    s = result.summary
    for family, d in s.groupby("family", sort=False):
        ok = d[d["status"] != INCONCLUSIVE]
        text = (
            f"* `{family}` ({'paper data' if is_primary(family) else 'self-built'}; {len(d)} classes"
            + (f", {len(d) - len(ok)} inconclusive" if len(ok) < len(d) else "")
            + f"): {int(d['dedicated'].sum())} of {len(d)} classes have a dedicated neuron (test ROC-AUC >= 0.95); "
            "mean test F1 of the "
            f"best single neuron {_fmt(d['f1_test'].mean())} against {_fmt(d['dense_f1'].mean())} for the dense probe"
        )
        margin = d[["f1_test", "surface_f1"]].dropna()
        if len(margin):
            pb = paired_bootstrap(margin["f1_test"], margin["surface_f1"], n_boot=result.config.n_boot)
            text += "; " + describe_difference(
                "the single neuron", "the best surface baseline", *_bounded(pb["mean_diff"], pb["low"], pb["high"]),
                unit="F1",
            )  # fmt: skip
        lines.append(text + ".")
    contrast = middle_contrast(s, result.config.claim_metric)
    for kind, rows in (("the paper's data", contrast[contrast["primary"].astype(bool)]),
                       ("the self-built families", contrast[~contrast["primary"].astype(bool)])):  # fmt: skip
        if rows.empty:
            continue
        ok = rows[rows["status"] != INCONCLUSIVE]
        used = ok if len(ok) else rows
        pb = paired_bootstrap(used["middle"], used["outer"], n_boot=result.config.n_boot, random_state=0)
        note = (
            f"{len(used)} conclusive classes"
            if len(ok)
            else f"{len(used)} classes, all inconclusive (fewer than {result.config.min_test_positives} test positives)"
        )
        lines.append(
            f"* Depth, {kind}: "
            + describe_difference(
                "the middle third", "the better outer third", *_bounded(pb["mean_diff"], pb["low"], pb["high"])
            )
            + f" (test {'F1' if result.config.claim_metric == 'f1' else 'ROC-AUC'}, {note}; the middle wins for "
            f"{int((used['diff'] > 0).sum())})."
        )
    for ev in claims:
        if not ev.claim.startswith("monosemantic"):
            lines.append(
                "* Ablation: "
                + describe_difference(
                    "the loss increase on target texts",
                    "that on other texts",
                    ev.estimate,
                    ev.ci_low,
                    ev.ci_high,
                    unit="% of the clean loss",
                )
                + f" ({ev.n_tasks} neuron{'s' if ev.n_tasks != 1 else ''}; {ev.control})."
            )
    if result.n_layers < 3:
        lines.append(f"* The model has {result.n_layers} layers: no middle third to compare, no depth claim.")
    return "\n".join(lines)
