"""The study's diagnostics run on toy models with known superposition: their power at the book's sample sizes.

Every diagnostic below is the one a chapter runs, on the toy's hidden neurons (:mod:`.toy_models`) with the labels
"half-feature h is present", at the chapter's real sizes (tasks, training rows and test rows per task, read from its
results by :func:`chapter_sizes`) and at a large reference size. A *study* is what a chapter does once: ``n_tasks`` tasks of one ground-truth status
from one trained model, one verdict per diagnostic. The detection rules (stated once, :data:`RULES`):

* ``gain`` (k = 1 against best k): per task, test F1 of the sparse probe with k chosen on validation minus test
  F1 at k = 1; detected when the 95% paired-bootstrap interval over tasks of the mean gain lies above the claim's
  minimal effect (``DiagnosticsConfig.gain_min_effect``), the rule the chapter's verdict applies.
* ``random_basis``: per task, test F1 at k = 1 on the neurons minus the mean over ``n_rotations`` Haar-random
  rotations; detected when the interval of the mean difference lies above 0. Ground truth: every toy's neurons are
  a privileged basis; the null is the same activations pre-rotated by a random orthogonal matrix.
* ``pruning``: per task, the test F1 of the k-sparse probe (k = ``pruning_k``) minus the test F1 after removing
  its best single neuron (chosen on validation) and re-solving; "distributed" (superposition) is detected when the
  interval of the mean drop lies below ``pruning_margin`` (removing the best neuron costs little).
* ``osp``: per task, test F1 of the optimal k-sparse probe minus the mean-difference top-k probe at the same k;
  detected when the interval lies above 0 (a joint combination beats the ranking).
* ``dedicated``: the exhaustive single-neuron probe's held-out ROC-AUC >= 0.95 (:func:`.statistics.is_dedicated`)
  for at least half of the tasks. This one should fire on dedicated half-features and not on superposed ones.
* ``fingerprint`` (per model, ReLU/GELU only): median input bias < 0 and Spearman(input-weight norm, bias) < 0
  with p < 0.05; ground truth: the model holds more superposed than dedicated half-features.

Power = detection rate over studies where the ground truth has the property; false-positive rate = detection rate
where it does not (the ``expected`` column of :func:`power_table` says which is which), each per regime (activation
and feature probability), never averaged across regimes. :func:`power_by_effect` gives the detection rate by the
size of the true effect (the effect measured on the same tasks at the reference size), the power curve of a rule.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from ..metrics import binary_metrics
from ..probes import fit_method, random_orthogonal
from ..probes.single import best_single_neuron
from .statistics import is_dedicated, paired_bootstrap
from .toy_models import GroundTruth, ToyConfig, ToyModel, ground_truth, probe_data, train_toy

RULES: dict[str, str] = {
    "gain": "95% paired-bootstrap lower bound of mean [F1(k chosen on val) - F1(k=1)] over tasks > minimal effect",
    "random_basis": "95% paired-bootstrap lower bound of mean [F1(neurons, k=1) - F1(rotated, k=1)] > 0",
    "pruning": "95% upper bound of mean [F1(k) - F1(k, best neuron removed)] < pruning_margin",
    "osp": "95% paired-bootstrap lower bound of mean [F1(optimal, k) - F1(mean_diff top-k)] > 0",
    "dedicated": "single-neuron held-out ROC-AUC >= 0.95 for at least half of the tasks",
    "fingerprint": "median input bias < 0 and Spearman(input-weight norm, bias) < 0 with p < 0.05",
}
"""The detection rule of every diagnostic, as quoted in the book."""


@dataclass(frozen=True)
class DiagnosticsConfig:
    """How the diagnostics are run on one task (the chapters' settings, scaled to a toy)."""

    ks: tuple[int, ...] = (1, 2, 4, 8)
    """Sparsity levels of the sparse probe (must include 1)."""
    method: str = "mean_diff"
    """The sparse probe (a ranker or ``telescopic``)."""
    n_rotations: int = 3
    """Haar rotations per task for the random-basis comparison."""
    pruning_k: int = 3
    """Sparsity of the pruned probe."""
    pruning_margin: float = 0.05
    """A drop below this counts as "removing the best neuron costs little"."""
    osp_k: int | None = 2
    """Sparsity of the optimal-vs-heuristic comparison (None: skip the optimal probe)."""
    osp_time_limit: float = 5.0
    """Seconds per optimal solve."""
    val_fraction: float = 15 / 70
    """Validation rows per training row: the book's 70/15/15 split."""
    n_test: int | None = None
    """Test rows per task (None: as many as validation rows)."""
    gain_min_effect: float = 0.0
    """The gain is detected when its CI lies above this (the claim's minimal effect of interest)."""

    def __post_init__(self) -> None:
        if 1 not in self.ks:
            raise ValueError(f"ks must include 1, got {self.ks}.")


def _f1(fit, X_ND: np.ndarray, y_N: np.ndarray) -> float:
    score_N = fit.decision_function(X_ND)
    return binary_metrics(y_N, (score_N > 0).astype(int))["f1"]


def _refit_f1(X_tr, y_tr, X_te, y_te, support: Sequence[int]) -> float:
    cols = list(support)
    (fit,) = fit_method("mean_diff", X_tr[:, cols], y_tr, [len(cols)])
    return _f1(fit, X_te[:, cols], y_te)


def _path_scores(X_tr, y_tr, X_va, y_va, X_te, y_te, cfg: DiagnosticsConfig, seed: int) -> tuple[float, float]:
    """Test F1 at k = 1 and at the k chosen on validation (ties: the smaller k)."""
    fits = fit_method(cfg.method, X_tr, y_tr, list(cfg.ks), random_state=seed)
    val = [_f1(f, X_va, y_va) for f in fits]
    best = max(range(len(fits)), key=lambda i: (val[i], -fits[i].k))
    k1 = next(i for i, f in enumerate(fits) if f.k == 1)
    return _f1(fits[k1], X_te, y_te), _f1(fits[best], X_te, y_te)


def task_diagnostics(
    model: ToyModel,
    half: int,
    n_train: int,
    cfg: DiagnosticsConfig,
    *,
    seed: int = 0,
    rotate: bool = False,
) -> dict[str, float]:
    """Every diagnostic's per-task quantity for one half-feature of a toy, with fresh train/val/test draws.

    With ``rotate=True`` the activations are first turned by a random orthogonal matrix, so their "neurons" are no
    privileged basis (the null of the random-basis comparison).
    """
    rng = np.random.default_rng([seed, half, n_train])
    n_val = max(4, round(n_train * cfg.val_fraction))
    n_test = cfg.n_test or n_val
    parts = [probe_data(model, half, n, rng) for n in (n_train, n_val, n_test)]
    if rotate:
        R_MM = random_orthogonal(model.config.n_hidden, rng.integers(2**31)).astype(np.float32)
        parts = [(X @ R_MM, y) for X, y in parts]
    (X_tr, y_tr), (X_va, y_va), (X_te, y_te) = parts
    out: dict[str, float] = {"half": half, "n_train": n_train}
    out["f1_k1"], out["f1_best"] = _path_scores(X_tr, y_tr, X_va, y_va, X_te, y_te, cfg, seed)
    out["gain"] = out["f1_best"] - out["f1_k1"]
    rot_f1 = []
    for r in range(cfg.n_rotations):
        R_MM = random_orthogonal(model.config.n_hidden, int(rng.integers(2**31))).astype(np.float32)
        rot_f1.append(_path_scores(X_tr @ R_MM, y_tr, X_va @ R_MM, y_va, X_te @ R_MM, y_te, cfg, seed + r)[0])
    out["f1_k1_rotated"] = float(np.mean(rot_f1))
    out["random_basis"] = out["f1_k1"] - out["f1_k1_rotated"]
    single = best_single_neuron(X_tr, y_tr, X_va, y_va)
    s_te = X_te[:, single.support[0]] * single.coef[0]
    out["single_auc"] = float(roc_auc_score(y_te, s_te)) if 0 < y_te.sum() < y_te.size else np.nan
    out["single_neuron"] = int(single.support[0])
    k = min(cfg.pruning_k, model.config.n_hidden - 1)
    (fit,) = fit_method(cfg.method, X_tr, y_tr, [k], random_state=seed)
    support = [int(j) for j in fit.support]
    singles = [_refit_f1(X_tr, y_tr, X_va, y_va, [j]) for j in support]
    removed = support[int(np.argmax(singles))]
    keep = np.flatnonzero(np.arange(X_tr.shape[1]) != removed)
    (fit2,) = fit_method(cfg.method, X_tr[:, keep], y_tr, [k], random_state=seed)
    out["pruning_f1_0"] = _f1(fit, X_te, y_te)
    out["pruning_f1_1"] = _f1(fit2, X_te[:, keep], y_te)
    out["pruning"] = out["pruning_f1_0"] - out["pruning_f1_1"]
    if cfg.osp_k is not None:
        k = min(cfg.osp_k, model.config.n_hidden)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            (osp,) = fit_method("optimal", X_tr, y_tr, [k], time_limit=cfg.osp_time_limit, validation=(X_va, y_va))
        (heur,) = fit_method("mean_diff", X_tr, y_tr, [k])
        out["osp_f1"], out["heuristic_f1"] = _f1(osp, X_te, y_te), _f1(heur, X_te, y_te)
        out["osp"] = out["osp_f1"] - out["heuristic_f1"]
        out["osp_proven"] = float(bool(osp.info.get("proven_optimal")))
    return out


def detect(tasks: pd.DataFrame, cfg: DiagnosticsConfig, *, n_boot: int = 2000, seed: int = 0) -> dict[str, float]:
    """One study's verdict per diagnostic (1.0 detected, 0.0 not) from its per-task table (:data:`RULES`)."""
    zero = np.zeros(len(tasks))
    out: dict[str, float] = {}

    def interval(column: str) -> dict[str, float]:
        return paired_bootstrap(tasks[column].to_numpy(), zero, n_boot=n_boot, random_state=seed)

    for name in ("gain", "random_basis", "osp"):
        if name in tasks.columns and tasks[name].notna().any():
            ci = interval(name)
            out[name] = float(ci["low"] > (cfg.gain_min_effect if name == "gain" else 0.0))
            out[f"{name}_mean"] = ci["mean_diff"]
    ci = interval("pruning")
    out["pruning"] = float(ci["high"] < cfg.pruning_margin)
    out["pruning_mean"] = ci["mean_diff"]
    out["dedicated"] = float(np.mean(is_dedicated(tasks["single_auc"].to_numpy())) >= 0.5)
    out["dedicated_mean"] = float(np.nanmean(tasks["single_auc"]))
    return out


def weight_fingerprint(model: ToyModel) -> dict[str, float]:
    """The paper's weight fingerprint on a toy: median input bias, Spearman(norm, bias) and its p-value."""
    if model.module.w_in.bias is None:
        return {"median_bias": np.nan, "spearman": np.nan, "p_value": np.nan, "detected": np.nan}
    norm_M = model.module.w_in.weight.detach().norm(dim=1).numpy()
    bias_M = model.module.w_in.bias.detach().numpy()
    rho, p = spearmanr(norm_M, bias_M) if np.ptp(bias_M) > 0 else (np.nan, np.nan)
    detected = float(np.median(bias_M) < 0 and np.isfinite(rho) and rho < 0 and p < 0.05)
    return {"median_bias": float(np.median(bias_M)), "spearman": float(rho), "p_value": float(p), "detected": detected}


@dataclass(frozen=True)
class PowerGrid:
    """The grid of the power table."""

    activations: tuple[str, ...] = ("relu", "gated")
    probabilities: tuple[float, ...] = (1.0, 0.1, 0.03)
    n_trains: tuple[int, ...] = (300, 2000)
    """Training rows per task: the chapter's (first) and a large reference size (last), which gives the true effect."""
    seeds: tuple[int, ...] = tuple(range(10))
    """One model per seed and cell; each model gives one study per ground-truth status."""
    n_tasks: int = 21
    """Tasks per study (the chapter's number of tasks); fewer if the model has fewer of that status (at least 3)."""
    n_features: int = 20
    n_hidden: int = 10
    n_steps: int = 1500
    osp_n_trains: tuple[int, ...] = (300,)
    """Sample sizes at which the (slow) optimal probe is run."""


def run_power(
    grid: PowerGrid, cfg: DiagnosticsConfig, *, n_boot: int = 2000, n_jobs: int = 1
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train the grid's toys, run every diagnostic, return (per-study verdicts, per-model truth and fingerprint).

    Studies: for each model, each status in {"superposed", "dedicated"} with at least 3 half-features, and each
    training size; plus the null of the random-basis comparison ("rotated": the superposed tasks with pre-rotated
    activations, not run at the reference size). Every study gains ``true_<diagnostic>``: the mean effect of the same
    model and status at the largest training size (:func:`attach_true_effects`). Toys run in ``n_jobs`` processes;
    every toy is seeded on its own, so the tables do not depend on ``n_jobs``.
    """
    from joblib import Parallel, delayed

    cells = [(act, p, seed) for act in grid.activations for p in grid.probabilities for seed in grid.seeds]
    out = Parallel(n_jobs=n_jobs)(delayed(_toy_cell)(act, p, seed, grid, cfg, n_boot) for act, p, seed in cells)
    studies = [row for rows, _ in out for row in rows]
    models = [model for _, model in out]
    return attach_true_effects(pd.DataFrame(studies), max(grid.n_trains)), pd.DataFrame(models)


def _toy_cell(act: str, p: float, seed: int, grid: PowerGrid, cfg: DiagnosticsConfig, n_boot: int):
    """One toy of the power study: its studies and its record."""
    import torch

    config = ToyConfig(n_features=grid.n_features, n_hidden=grid.n_hidden, feature_probability=p,
                       activation=act, n_steps=grid.n_steps, seed=seed)  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread whatever n_jobs, so that the trained toy does not depend on it
    try:
        model = train_toy(config)
    finally:
        torch.set_num_threads(threads)
    truth = ground_truth(model)
    record = {"activation": act, "p": p, "seed": seed, "loss": model.final_loss, **truth.summary,
              **weight_fingerprint(model)}  # fmt: skip
    return list(_model_studies(model, truth, grid, cfg, n_boot=n_boot)), record


EFFECT_DIAGNOSTICS = ("gain", "random_basis", "osp", "pruning")
"""Diagnostics whose per-study mean effect (``<name>_mean``) has a true value at the reference size."""
STUDY_KEYS = ("activation", "p", "seed", "status")


def attach_true_effects(studies: pd.DataFrame, reference_n: int) -> pd.DataFrame:
    """Add ``true_<diagnostic>`` to every study: the mean effect of the same (activation, p, seed, status) at
    ``reference_n`` training rows, where the estimate is close to the truth (NaN where that study is missing)."""
    if studies.empty or "n_train" not in studies.columns:
        return studies
    cols = [f"{d}_mean" for d in EFFECT_DIAGNOSTICS if f"{d}_mean" in studies.columns]
    ref = studies[studies["n_train"] == reference_n][[*STUDY_KEYS, *cols]]
    ref = ref.rename(columns={f"{d}_mean": f"true_{d}" for d in EFFECT_DIAGNOSTICS})
    return studies.merge(ref, on=list(STUDY_KEYS), how="left")


EFFECT_BINS: tuple[float, ...] = (-np.inf, 0.0, 0.01, 0.03, 0.06, 0.1, np.inf)
"""Edges of the true-effect bins of :func:`power_by_effect` (F1 units)."""


def power_by_effect(
    studies: pd.DataFrame,
    n_train: int,
    diagnostics: Sequence[str] = ("gain", "random_basis", "osp"),
    bins: Sequence[float] = EFFECT_BINS,
) -> pd.DataFrame:
    """Detection rate at ``n_train`` by the size of the true effect (:func:`attach_true_effects`), pooled over
    regimes and statuses: the power curve of each rule. Columns ``diagnostic, true effect, n_studies, rate,
    mean_true``; bins without studies are left out."""
    rows = []
    at = studies[studies["n_train"] == n_train] if len(studies) else studies
    for diag in diagnostics:
        if f"true_{diag}" not in at.columns or diag not in at.columns:
            continue
        d = at[at[diag].notna() & at[f"true_{diag}"].notna()]
        cut = pd.cut(d[f"true_{diag}"], list(bins), right=False)
        for interval, g in d.groupby(cut, observed=True):
            rows.append({"diagnostic": diag, "true effect": _interval_label(interval), "n_studies": len(g),
                         "rate": float(g[diag].mean()), "mean_true": float(g[f"true_{diag}"].mean())})  # fmt: skip
    return pd.DataFrame(rows, columns=["diagnostic", "true effect", "n_studies", "rate", "mean_true"])


def _interval_label(interval: pd.Interval) -> str:
    lo, hi = interval.left, interval.right
    if not np.isfinite(lo):
        return f"< {hi:g}"
    if not np.isfinite(hi):
        return f">= {lo:g}"
    return f"{lo:g} to {hi:g}"


@dataclass(frozen=True)
class ChapterSizes:
    """The sizes of a chapter's tests, read from its results."""

    n_tasks: int
    n_train: int
    """Median training rows per task."""
    n_test: int
    """Median test rows per task."""
    min_test_positives: int
    source: str
    """Where they were read, e.g. "03_superposition, family paper_compound_words"."""


def chapter_sizes(records: Iterable[Mapping[str, Any]], chapter: str, family: str | None = None) -> ChapterSizes | None:
    """The tasks, training rows and test rows per task of ``chapter``'s conclusive tasks (of ``family`` when given),
    from its results records (``metrics.tasks``: ``examples``, ``test_positives``, ``status``, and ``train_rows`` /
    ``test_rows`` where recorded; otherwise the book's 70/15/15 split of ``examples``). None when not found."""
    for record in records:
        if record.get("name") != chapter:
            continue
        tasks = pd.DataFrame((record.get("metrics") or {}).get("tasks") or [])
        if tasks.empty or "examples" not in tasks.columns:
            continue
        if family is not None and "family" in tasks.columns:
            tasks = tasks[tasks["family"] == family]
        if "status" in tasks.columns and (tasks["status"] == "ok").any():
            tasks = tasks[tasks["status"] == "ok"]
        if tasks.empty:
            continue
        examples = tasks["examples"].to_numpy(dtype=float)
        train = tasks["train_rows"].to_numpy(float) if "train_rows" in tasks.columns else 0.70 * examples
        test = tasks["test_rows"].to_numpy(float) if "test_rows" in tasks.columns else 0.15 * examples
        return ChapterSizes(
            n_tasks=len(tasks), n_train=round(float(np.median(train))), n_test=round(float(np.median(test))),
            min_test_positives=int(tasks["test_positives"].min()) if "test_positives" in tasks.columns else 0,
            source=f"{chapter}" + (f", family {family}" if family else ""),
        )  # fmt: skip
    return None


def _model_studies(model: ToyModel, truth: GroundTruth, grid: PowerGrid, cfg: DiagnosticsConfig, *, n_boot: int):
    c = model.config
    base = {"activation": c.activation, "p": c.feature_probability, "seed": c.seed}
    for status in ("superposed", "dedicated"):
        halves = truth.features.loc[truth.features["status"] == status, "half"].to_numpy()
        if halves.size < 3:
            continue
        halves = halves[: grid.n_tasks]  # the most important ones first
        for n_train in grid.n_trains:
            run_cfg = cfg if n_train in grid.osp_n_trains else _without_osp(cfg)
            reference = n_train == max(grid.n_trains) and len(grid.n_trains) > 1
            conditions = [(status, False)] + ([("rotated", True)] if status == "superposed" and not reference else [])
            for label, rotate in conditions:
                rows = [task_diagnostics(model, int(h), n_train, run_cfg, seed=c.seed, rotate=rotate) for h in halves]
                tasks = pd.DataFrame(rows)
                yield {**base, "status": label, "n_train": n_train, "n_tasks": len(tasks),
                       **detect(tasks, run_cfg, n_boot=n_boot, seed=c.seed)}  # fmt: skip


def _without_osp(cfg: DiagnosticsConfig) -> DiagnosticsConfig:
    return replace(cfg, osp_k=None)


EXPECTED: dict[tuple[str, str], bool] = {
    ("gain", "superposed"): True,
    ("gain", "dedicated"): False,
    ("random_basis", "superposed"): True,
    ("random_basis", "dedicated"): True,
    ("random_basis", "rotated"): False,
    ("pruning", "superposed"): True,
    ("pruning", "dedicated"): False,
    ("osp", "superposed"): True,
    ("osp", "dedicated"): False,
    ("dedicated", "superposed"): False,
    ("dedicated", "dedicated"): True,
}
"""(diagnostic, ground-truth status) -> should the diagnostic fire? True rows give power, False rows the
false-positive rate."""


def power_table(studies: pd.DataFrame) -> pd.DataFrame:
    """Detection rate per (diagnostic, activation, p, n_train, status), with the number of studies and whether the
    rate is a power (the ground truth has the property) or a false-positive rate."""
    rows = []
    for (diag, status), expected in EXPECTED.items():
        if diag not in studies.columns:
            continue
        sub = studies[(studies["status"] == status) & studies[diag].notna()]
        for keys, g in sub.groupby(["activation", "p", "n_train"]):
            rows.append({"diagnostic": diag, "activation": keys[0], "p": keys[1], "n_train": keys[2],
                         "status": status, "kind": "power" if expected else "false positive rate",
                         "rate": float(g[diag].mean()), "n_studies": len(g),
                         "mean_effect": float(g[f"{diag}_mean"].mean())})  # fmt: skip
    return pd.DataFrame(rows)


def fingerprint_table(models: pd.DataFrame) -> pd.DataFrame:
    """Weight-fingerprint detection rate per (activation, p), split by whether the model is in superposition."""
    m = models[models["detected"].notna()].copy()
    if m.empty:
        return pd.DataFrame(columns=["activation", "p", "in_superposition", "rate", "n_models"])
    m["in_superposition"] = m["n_superposed"] > m["n_dedicated"]
    out = m.groupby(["activation", "p", "in_superposition"]).agg(
        rate=("detected", "mean"), n_models=("detected", "size"), median_bias=("median_bias", "mean"),
        spearman=("spearman", "mean"),
    )  # fmt: skip
    return out.reset_index()


# ---------------------------------------------------------------------------------------------- width scaling
def width_scaling(
    widths: Sequence[int],
    *,
    n_features: int = 40,
    feature_probability: float = 0.03,
    activation: str = "relu",
    seeds: Sequence[int] = (0,),
    n_steps: int = 1500,
    n_train: int = 2000,
    target_f1: float = 0.9,
    ks: Sequence[int] = (1, 2, 3, 4, 6, 8),
    n_tasks: int = 8,
    method: str = "mean_diff",
) -> pd.DataFrame:
    """Toys of growing width at fixed features and sparsity: loss, ground truth and neurons needed per feature.

    Per (width, seed): ``loss``, the ground-truth counts, ``share_dedicated`` (represented half-features with a
    dedicated neuron), ``mean_neurons_truth`` (neurons carrying each represented half-feature), and for the
    ``n_tasks`` most important represented half-features: ``mean_k_needed`` (smallest k whose test F1 reaches
    ``target_f1``, k = max(ks) + 1 when none does) and ``mean_f1_k1`` (test F1 at k = 1), at ``n_train`` rows.
    """
    rows = []
    cfg = DiagnosticsConfig(ks=tuple(ks), method=method)
    for m in widths:
        for seed in seeds:
            model = train_toy(ToyConfig(n_features=n_features, n_hidden=int(m), feature_probability=feature_probability,
                                        activation=activation, n_steps=n_steps, seed=seed))  # fmt: skip
            truth = ground_truth(model)
            rep = truth.features[truth.features["represented"]]
            k_needed, f1_1 = [], []
            for h in rep["half"].to_numpy()[:n_tasks]:
                rng = np.random.default_rng([seed, int(h), m])
                n_val = round(n_train * cfg.val_fraction)
                (X_tr, y_tr), (X_te, y_te) = (
                    probe_data(model, int(h), n_train, rng),
                    probe_data(model, int(h), n_val, rng),
                )
                fits = fit_method(method, X_tr, y_tr, [k for k in ks if k <= m], random_state=seed)
                f1s = {f.k: _f1(f, X_te, y_te) for f in fits}
                k_needed.append(min([k for k, v in f1s.items() if v >= target_f1], default=max(ks) + 1))
                f1_1.append(f1s[1])
            rows.append({
                "width": int(m), "seed": seed, "loss": model.final_loss, **truth.summary,
                "share_dedicated": float((rep["status"] == "dedicated").mean()) if len(rep) else np.nan,
                "mean_neurons_truth": float(rep["n_neurons"].mean()) if len(rep) else np.nan,
                "mean_k_needed": float(np.mean(k_needed)) if k_needed else np.nan,
                "mean_f1_k1": float(np.mean(f1_1)) if f1_1 else np.nan,
            })  # fmt: skip
    return pd.DataFrame(rows)


def loss_width_slope(table: pd.DataFrame) -> float:
    """Least-squares slope of log(loss) against log(width): about -1 when loss falls as 1/m."""
    g = table.groupby("width")["loss"].mean()
    if len(g) < 2:
        return float("nan")
    return float(np.polyfit(np.log(g.index.to_numpy(dtype=float)), np.log(g.to_numpy()), 1)[0])
