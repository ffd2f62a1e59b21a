"""The feature survey: best sparse-probe score against k and against layer, for every feature family.

Gurnee et al. (2023) open with an overview: for each family of features, the best probe F1 as the number of neurons
k grows, and where in depth it is reached. This module repeats it for the families that no other chapter probes
(``text_features``: regular-expression properties of a token; ``syntax``: *silver* spaCy part-of-speech, dependency
and morphology labels; ``position``: the token index as a regression target); the paper's own datasets
(``paper_compound_words``, ``paper_factual``, ``paper_code``) can be added beside them.

Per family, at each of a few layers:

* classification tasks (one-vs-rest per class): the top-k neurons by mean difference with an L2 logistic regression
  (:func:`~sparse_probing.probes.run_sweep`, method ``mean_diff``) at every k of the grid, the dense probe on all
  neurons, the same top-k pipeline trained on shuffled training labels (the control), and the exhaustively searched
  best single neuron (``single_neuron``). Layers and k are chosen on validation (ROC-AUC, ties by F1); test F1 is
  reported with a bootstrap interval over documents. Every task gets the best surface baseline of
  :mod:`sparse_probing.analysis.surface` (current token, bigram, bag of tokens, layer-0 embedding), chosen on
  validation. A task with fewer than ``min_test_positives`` positives in its test split is flagged inconclusive.
* regression targets (``position``): neurons ranked by absolute correlation with the target on the training rows,
  scikit-learn's :class:`~sklearn.linear_model.ElasticNet` on the top-k (the paper's regressor; ``alpha`` chosen on
  validation from :attr:`SurveyConfig.alphas`), the same on all neurons (dense) and on shuffled training targets
  (control). Test R^2 with a bootstrap interval over documents. There is no surface baseline for a regression target.

Token-level families have one example per token; a random subset of ``max_examples`` examples per family keeps the
probes affordable (the split is still by document). :func:`run` returns a :class:`SurveyResult` of tidy tables.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import ElasticNet
from sklearn.metrics import r2_score

from ..analysis.statistics import bootstrap_statistic
from ..analysis.verdicts import format_number as _fmt
from ..splits import Split, grouped_split
from ._config import ChapterConfig, ConfigError

__all__ = [
    "INCONCLUSIVE",
    "METHODS",
    "SurveyConfig",
    "SurveyResult",
    "family_curves",
    "family_table",
    "plot_family_curves",
    "run",
    "sparse_regression",
    "task_table",
]

METHODS: tuple[str, ...] = ("sparse", "dense", "control", "single_neuron")
"""Method labels of the survey's tables: top-k probe, all neurons, shuffled-label top-k, exhaustive single neuron."""

INCONCLUSIVE = "inconclusive"
"""Status of a classification task with fewer test positives than :attr:`SurveyConfig.min_test_positives`."""


@dataclass(frozen=True)
class SurveyConfig(ChapterConfig):
    """Parameters of the survey chapter (one field per notebook parameter)."""

    model: str = "smollm2-135m"
    """Model name for :func:`sparse_probing.models.load_model` (registered offline model, hub name or directory)."""
    variant: str = "default"
    """Dataset size variant (``smoke`` or ``default``)."""
    families: tuple[str, ...] = ("text_features", "syntax", "position")
    """Feature families to probe, in the order of the tables (the paper's datasets, ``paper_*``, may be added; the
    superposition and context-neuron chapters probe them at sizes that decide their claims)."""
    layers: tuple[int, ...] = (0, 3, 7, 15, 22, 29)
    """Layers probed (every family is cached at these layers only)."""
    ks: tuple[int, ...] = (1, 2, 4, 8, 16)
    """Sparsity levels of the top-k probes (the dense probe is added)."""
    max_length: int = 128
    """Context length in tokens."""
    max_lengths: Mapping[str, int] = field(default_factory=dict)
    """Per-family context length overriding ``max_length`` (names at the end of long contexts need more)."""
    n_documents: Mapping[str, int] = field(default_factory=dict)
    """Per family: cache only the first n documents (families not listed: all)."""
    features: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Per family: the features to probe (families not listed: every feature)."""
    max_tasks: int = 10
    """Per family: at most this many binary tasks, the most frequent first, taken in turn from each feature."""
    max_examples: int = 4000
    """Per family: probe a random subset of at most this many examples (token-level families have one per token)."""
    min_positives: int = 10
    """A class becomes a binary task only with at least this many positives and negatives among the examples."""
    min_test_positives: int = 30
    """A classification task with fewer test positives is flagged ``inconclusive``."""
    alphas: tuple[float, ...] = (0.001, 0.01, 0.1)
    """ElasticNet penalties tried for regression targets (chosen on validation R^2)."""
    l1_ratio: float = 0.5
    """ElasticNet mixing of L1 and L2 penalties."""
    surface_baselines: tuple[str, ...] = ("token", "bigram", "bag_of_tokens", "embedding")
    """Surface baselines run on every classification task (empty: none)."""
    single_neuron: bool = True
    """Also run the exhaustive single-neuron search (every neuron's threshold fitted on train, chosen on val)."""
    n_boot: int = 200
    """Bootstrap resamples (documents) for test intervals; 0 for none."""
    seed: int = 0
    """Seed of the split, the example subset and the shuffled labels."""

    def __post_init__(self) -> None:
        need = self.require

        need(bool(self.families), "families is empty; name at least one family, e.g. ['text_features']")
        need(len(set(self.families)) == len(self.families), f"families repeat: {list(self.families)}")
        need(bool(self.layers), "layers is empty; give at least one layer index")
        need(all(layer >= 0 for layer in self.layers), f"layers must be non-negative, got {list(self.layers)}")
        need(len(set(self.layers)) == len(self.layers), f"layers repeat: {list(self.layers)}")
        need(bool(self.ks) and all(k >= 1 for k in self.ks), f"ks must be positive integers, got {list(self.ks)}")
        need(list(self.ks) == sorted(set(self.ks)), f"ks must be increasing without repeats, got {list(self.ks)}")
        need(self.max_length >= 2, f"max_length must be at least 2 tokens, got {self.max_length}")
        for name, mapping in (("max_lengths", self.max_lengths), ("n_documents", self.n_documents)):
            stray = sorted(set(mapping) - set(self.families))
            need(not stray, f"{name} names families that are not probed: {stray}; probed: {list(self.families)}")
            bad = {k: v for k, v in mapping.items() if not isinstance(v, int) or v < 2}
            need(not bad, f"{name} values must be integers >= 2, got {bad}")
        stray = sorted(set(self.features) - set(self.families))
        need(not stray, f"features names families that are not probed: {stray}; probed: {list(self.families)}")
        need(self.max_tasks >= 1, f"max_tasks must be at least 1, got {self.max_tasks}")
        need(self.max_examples >= 20, f"max_examples must be at least 20, got {self.max_examples}")
        need(self.min_positives >= 2, f"min_positives must be at least 2, got {self.min_positives}")
        need(self.min_test_positives >= 1, f"min_test_positives must be at least 1, got {self.min_test_positives}")
        need(bool(self.alphas) and all(a > 0 for a in self.alphas), f"alphas must be positive, got {self.alphas}")
        need(0.0 < self.l1_ratio <= 1.0, f"l1_ratio must lie in (0, 1], got {self.l1_ratio}")
        from ..analysis.surface import BASELINES

        unknown = sorted(set(self.surface_baselines) - set(BASELINES))
        need(not unknown, f"unknown surface baselines {unknown}; choose from {list(BASELINES)}")
        need(self.n_boot >= 0, f"n_boot must be 0 or more, got {self.n_boot}")

    def context_length(self, family: str) -> int:
        """The context length used for ``family``."""
        return int(self.max_lengths.get(family, self.max_length))


@dataclass(frozen=True)
class SurveyResult:
    """What :func:`run` measured: tidy tables (one row per task, or per task x method x k x layer)."""

    config: SurveyConfig
    model_identity: str
    """Identity of the model (name and weights digest)."""
    n_layers: int
    d_mlp: int
    tasks: pd.DataFrame
    """One row per probed task: ``family, task, kind`` (classification/regression), ``metric`` (f1/r2),
    ``examples, test_examples, test_positives`` (NaN for regression) and ``status`` (ok or inconclusive)."""
    scores: pd.DataFrame
    """Every fit: ``family, task, metric, method, k, layer, select_val`` (the validation score used to choose),
    ``val, test`` (F1 or R^2) and ``test_low, test_high`` (bootstrap interval; NaN without one)."""
    surface: pd.DataFrame
    """Best surface baseline per classification task, chosen on validation: ``family, task, baseline, param, val,
    test``."""
    timings: pd.DataFrame
    """Per family: the versioned ``dataset`` key, ``examples`` probed, ``tasks``, seconds ``cache_s`` (activations, including the embedding
    baseline's) and ``probe_s``."""

    @property
    def by_k(self) -> pd.DataFrame:
        """Per task, method and k: the layer chosen on validation and its test score (the curve against k)."""
        best = _choose(self.scores, ["family", "task", "method", "k"])
        return _with_status(best, self.tasks)

    @property
    def by_layer(self) -> pd.DataFrame:
        """Per task, method and layer: the k chosen on validation and its test score (the curve against layer)."""
        best = _choose(self.scores, ["family", "task", "method", "layer"])
        return _with_status(best, self.tasks)

    @property
    def summary(self) -> pd.DataFrame:
        """One row per task: test scores (layer, and k for the sparse probe, chosen on validation) of the 1-sparse
        probe (``k1_*``), the best top-k probe (``sparse_*``, with its ``k`` and ``layer``), the dense probe, the
        shuffled-label control at the same k and layer, and the best surface baseline; plus ``status``."""
        by_k = self.by_k
        keys = ["family", "task"]
        out = self.tasks.set_index(keys)[["kind", "metric", "test_positives", "status"]].copy()
        k1 = by_k[(by_k["method"] == "sparse") & (by_k["k"] == 1)].set_index(keys)
        out["k1_layer"] = k1["layer"]
        for c in ("test", "test_low", "test_high"):
            out[f"k1_{c}"] = k1[c]
        sparse = _choose(self.scores[self.scores["method"] == "sparse"], keys).set_index(keys)
        out["sparse_k"], out["sparse_layer"] = sparse["k"], sparse["layer"]
        for c in ("test", "test_low", "test_high"):
            out[f"sparse_{c}"] = sparse[c]
        dense = _choose(self.scores[self.scores["method"] == "dense"], keys).set_index(keys)
        out["dense_layer"], out["dense_test"] = dense["layer"], dense["test"]
        control = self.scores[self.scores["method"] == "control"].set_index([*keys, "k", "layer"])["test"]
        idx = [
            (f, t, k, layer) for (f, t), k, layer in zip(out.index, out["sparse_k"], out["sparse_layer"], strict=True)
        ]
        out["control_test"] = control.reindex(idx).to_numpy()
        if len(self.surface):
            surface = self.surface.set_index(keys)
            out["surface_baseline"], out["surface_test"] = surface["baseline"], surface["test"]
        else:
            out["surface_baseline"], out["surface_test"] = None, np.nan
        out["margin_over_surface"] = out["sparse_test"] - out["surface_test"]
        return out.reset_index()

    @property
    def datasets(self) -> dict[str, str]:
        """The versioned key of each family's dataset slice (for the results spec and the provenance page)."""
        return dict(zip(self.timings["family"], self.timings["dataset"], strict=True))

    def metrics(self) -> dict[str, Any]:
        """Plain values for :func:`sparse_probing.results.save_results`."""
        return {
            "model_identity": self.model_identity,
            "n_layers": self.n_layers,
            "d_mlp": self.d_mlp,
            "tasks": self.tasks,
            "summary": self.summary,
            "family_by_k": family_curves(self, "k"),
            "family_by_layer": family_curves(self, "layer"),
            "timings": self.timings,
        }


def _choose(scores: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Per group of ``by``: the row with the best ``select_val`` (ties: best ``val``, then smaller k, earlier layer)."""
    if scores.empty:
        return scores.copy()
    ranked = scores.assign(_sel=scores["select_val"].fillna(-np.inf), _val=scores["val"].fillna(-np.inf))
    ranked = ranked.sort_values(
        [*by, "_sel", "_val", "k", "layer"], ascending=[True] * len(by) + [False, False, True, True], kind="stable"
    )
    return ranked.groupby(list(by), sort=True).head(1).drop(columns=["_sel", "_val"]).reset_index(drop=True)


def _with_status(table: pd.DataFrame, tasks: pd.DataFrame) -> pd.DataFrame:
    return table.merge(tasks[["family", "task", "status"]], on=["family", "task"], how="left")


def family_curves(result: SurveyResult, axis: str = "k", *, conclusive_only: bool = False) -> pd.DataFrame:
    """Mean test score over the tasks of each family against ``axis`` (``"k"`` or ``"layer"``), per method.

    Columns: ``family, metric, method, <axis>, test`` (mean over tasks), ``n_tasks``. With ``conclusive_only``,
    inconclusive tasks are left out. The dense probe appears against layer only (its k is every neuron).
    """
    if axis not in ("k", "layer"):
        raise ValueError(f"axis must be 'k' or 'layer', got {axis!r}")
    table = result.by_k if axis == "k" else result.by_layer
    if axis == "k":
        table = table[table["method"] != "dense"]
    if conclusive_only:
        table = table[table["status"] != INCONCLUSIVE]
    grouped = table.groupby(["family", "metric", "method", axis], sort=False)
    return grouped.agg(test=("test", "mean"), n_tasks=("task", "nunique")).reset_index()


# ---------------------------------------------------------------------------------------------- regression
def _standardizer(X_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = X_train.mean(axis=0)
    sd = X_train.std(axis=0)
    return mu, np.where(sd > 1e-6, sd, 1.0)


def sparse_regression(
    X_ND: np.ndarray,
    y_N: np.ndarray,
    split: Split,
    ks: Sequence[int],
    *,
    alphas: Sequence[float] = (0.001, 0.01, 0.1),
    l1_ratio: float = 0.5,
    dense: bool = True,
    shuffle_seed: int | None = None,
) -> list[dict[str, Any]]:
    """ElasticNet on the top-k neurons (by |correlation| with ``y`` on the training rows) for every k, and on all.

    Neurons and target are standardized with training statistics; ``alpha`` is chosen on validation R^2 for each
    k. With ``shuffle_seed`` the training targets are permuted first (the control: any R^2 above 0 is chance).
    Returns one dict per k (``k = D`` for the dense fit, ``dense`` flag): ``k, alpha, support, r2_train, r2_val,
    r2_test, pred_test`` (test predictions in the target's units).
    """
    X = np.asarray(X_ND, dtype=np.float64)
    y = np.asarray(y_N, dtype=np.float64)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ValueError(f"X must be (N, D) and y (N,), got {X.shape} and {y.shape}")
    tr, va, te = split.train, split.val, split.test
    if tr.size < 3 or va.size < 2:
        raise ValueError(f"need at least 3 training and 2 validation rows, got {tr.size} and {va.size}")
    y_tr = y[tr].copy()
    if shuffle_seed is not None:
        y_tr = np.random.default_rng(shuffle_seed).permutation(y_tr)
    mu, sd = _standardizer(X[tr])
    Z = (X - mu) / sd
    y_mu, y_sd = float(y_tr.mean()), float(y_tr.std()) or 1.0
    t_tr = (y_tr - y_mu) / y_sd
    corr_D = np.abs(Z[tr].T @ t_tr) / tr.size
    order_D = np.argsort(-corr_D, kind="stable")
    D = X.shape[1]
    grid = [(int(k), False) for k in ks if k < D] + ([(D, True)] if dense or any(k >= D for k in ks) else [])
    out = []
    for k, is_dense in grid:
        cols = order_D[:k]
        best: tuple[float, float, ElasticNet] | None = None
        for alpha in sorted(alphas):
            model = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, max_iter=5000, tol=1e-3)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(Z[tr][:, cols], t_tr)
            r2_val = r2_score(y[va], model.predict(Z[va][:, cols]) * y_sd + y_mu)
            if best is None or r2_val > best[0]:
                best = (r2_val, alpha, model)
        assert best is not None
        r2_val, alpha, model = best
        pred_te = model.predict(Z[te][:, cols]) * y_sd + y_mu if te.size else np.empty(0)
        out.append(
            {
                "k": k,
                "dense": is_dense,
                "alpha": alpha,
                "support": tuple(int(j) for j in cols) if not is_dense else (),
                "r2_train": float(r2_score(y_tr, model.predict(Z[tr][:, cols]) * y_sd + y_mu)),
                "r2_val": float(r2_val),
                "r2_test": float(r2_score(y[te], pred_te)) if te.size >= 2 else float("nan"),
                "pred_test": pred_te,
            }
        )
    return out


def _r2_interval(y_true: np.ndarray, pred: np.ndarray, groups: np.ndarray, n_boot: int, seed: int) -> tuple:
    if n_boot <= 0 or y_true.size < 2:
        return float("nan"), float("nan")

    def r2(a: np.ndarray, b: np.ndarray) -> float:
        return float(r2_score(a, b)) if a.size >= 2 and np.ptp(a) > 0 else float("nan")

    ci = bootstrap_statistic(r2, y_true, pred, groups=groups, n_boot=n_boot, random_state=seed)
    return ci["low"], ci["high"]


# ---------------------------------------------------------------------------------------------- tasks
def _pick_tasks(
    examples: pd.DataFrame, features: Sequence[str], max_tasks: int, min_positives: int = 10
) -> dict[str, np.ndarray]:
    """Binary tasks of ``features``, the most frequent first, taken in turn from each feature, at most
    ``max_tasks``. Classes ``_`` (a morphological attribute that is absent) are not tasks."""
    from ..study import binary_tasks

    per_feature: list[list[tuple[str, np.ndarray]]] = []
    for feature in features:
        tasks = binary_tasks(examples, [feature], min_positives=min_positives, min_negatives=min_positives)
        ranked = sorted(
            ((name, y) for name, y in tasks.items() if not name.endswith("=_")),
            key=lambda item: -float(np.nansum(item[1])),
        )
        per_feature.append(ranked)
    chosen: dict[str, np.ndarray] = {}
    rank = 0
    while len(chosen) < max_tasks and any(rank < len(r) for r in per_feature):
        for ranked in per_feature:
            if rank < len(ranked) and len(chosen) < max_tasks:
                name, y = ranked[rank]
                chosen[name] = y
        rank += 1
    return chosen


def _split(examples: pd.DataFrame, classification: Sequence[str], seed: int) -> Split:
    from ..datasets.sizing import strata

    groups = examples["group"].to_numpy()
    if classification:
        try:
            return grouped_split(groups, strata(examples, list(classification)), random_state=seed)
        except ValueError:  # strata too small to stratify: a grouped split without stratification
            pass
    return grouped_split(groups, None, random_state=seed)


def _classification_scores(family: str, sweep: pd.DataFrame) -> pd.DataFrame:
    """The sweep's rows in the survey's long format."""
    if "error" in sweep.columns:
        sweep = sweep[sweep["error"].isna()]
    labels = {"mean_diff": "sparse", "dense": "dense", "control": "control", "single_neuron": "single_neuron"}
    out = pd.DataFrame(
        {
            "family": family,
            "task": sweep["feature"].to_numpy(),
            "metric": "f1",
            "method": sweep["method"].map(labels).to_numpy(),
            "k": sweep["k"].astype(int).to_numpy(),
            "layer": sweep["layer"].astype(int).to_numpy(),
            "select_val": sweep["roc_auc_val"].to_numpy(dtype=float),
            "val": sweep["f1_val"].to_numpy(dtype=float),
            "test": sweep["f1_test"].to_numpy(dtype=float),
            "test_low": sweep.get("f1_test_low", pd.Series(np.nan, index=sweep.index)).to_numpy(dtype=float),
            "test_high": sweep.get("f1_test_high", pd.Series(np.nan, index=sweep.index)).to_numpy(dtype=float),
        }
    )
    return out


def _probe_family(
    config: SurveyConfig, lm: Any, family: str
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """Cache, subsample, probe and baseline one family: (tasks, scores, surface, timings)."""
    from ..analysis.surface import best_surface, embedding_cache, surface_baselines
    from ..probes import ProbeSpec, run_sweep
    from ..study import cache_for, dataset_of

    t0 = time.perf_counter()
    acts = cache_for(
        lm,
        family,
        config.variant,
        n_documents=config.n_documents.get(family),
        max_length=config.context_length(family),
        layers=config.layers,
    )
    ds = dataset_of(acts)
    kinds = {f.name: f.task for f in ds.features}
    wanted = list(config.features.get(family, [f.name for f in ds.features]))
    unknown = sorted(set(wanted) - set(kinds))
    if unknown:
        raise ConfigError(f"family {family!r} has no features {unknown}; its features: {list(kinds)}")
    classification = [f for f in wanted if kinds[f] == "classification"]
    regression = [f for f in wanted if kinds[f] == "regression"]
    embeddings = None
    if classification and "embedding" in config.surface_baselines:
        embeddings = embedding_cache(acts, model=lm)
    cache_s = time.perf_counter() - t0

    t1 = time.perf_counter()
    N = len(acts.examples)
    rng = np.random.default_rng(config.seed)
    rows = np.sort(rng.choice(N, config.max_examples, replace=False)) if N > config.max_examples else np.arange(N)
    examples = acts.examples.iloc[rows].reset_index(drop=True)
    split = _split(examples, classification, config.seed)
    docs = examples["doc"].to_numpy()
    X = {layer: np.asarray(acts.layer(layer)[rows], dtype=np.float32) for layer in config.layers}
    tasks = _pick_tasks(examples, classification, config.max_tasks, config.min_positives) if classification else {}

    task_rows: list[dict[str, Any]] = []
    frames: list[pd.DataFrame] = []
    surface = pd.DataFrame(columns=["family", "task", "baseline", "param", "val", "test"])
    test_mask = np.zeros(len(examples), dtype=bool)
    test_mask[split.test] = True
    for name, y in tasks.items():
        labelled = np.isfinite(y)
        task_rows.append(
            {
                "family": family,
                "task": name,
                "kind": "classification",
                "metric": "f1",
                "examples": int(labelled.sum()),
                "test_examples": int((labelled & test_mask).sum()),
                "test_positives": int(np.nansum(y[test_mask])),
            }
        )
    if tasks:
        specs = [
            ProbeSpec("mean_diff", ks=config.ks, random_state=config.seed),
            ProbeSpec("dense", random_state=config.seed),
            ProbeSpec("control", ks=config.ks, random_state=config.seed),
        ]
        if config.single_neuron:
            specs.append(ProbeSpec("single_neuron", random_state=config.seed))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            sweep = run_sweep(X, tasks, split, specs, groups=docs, n_boot=config.n_boot, progress=False)
        frames.append(_classification_scores(family, sweep))
        if config.surface_baselines:
            view = dataclasses.replace(acts, examples=examples)
            emb = None if embeddings is None else np.asarray(embeddings.layer(0)[rows], dtype=np.float32)
            table = surface_baselines(
                view, tasks, split, lm.tokenizer, embeddings=emb, baselines=config.surface_baselines, dataset=ds
            )
            if len(table):
                best = best_surface(table)
                surface = pd.DataFrame(
                    {
                        "family": family,
                        "task": best["feature"],
                        "baseline": best["surface_baseline"],
                        "param": best["surface_param"],
                        "val": best["surface_f1_val"],
                        "test": best["surface_f1_test"],
                    }
                )
    for target in regression:
        y = examples[target].to_numpy(dtype=np.float64)
        task_rows.append(
            {
                "family": family,
                "task": target,
                "kind": "regression",
                "metric": "r2",
                "examples": int(np.isfinite(y).sum()),
                "test_examples": int(split.test.size),
                "test_positives": np.nan,
            }
        )
        records = []
        for layer, X_ND in X.items():
            for method, seed in (("sparse", None), ("control", config.seed)):
                fits = sparse_regression(
                    X_ND, y, split, config.ks, alphas=config.alphas, l1_ratio=config.l1_ratio,
                    dense=method == "sparse", shuffle_seed=seed,
                )  # fmt: skip
                for fit in fits:
                    low, high = (
                        _r2_interval(y[split.test], fit["pred_test"], docs[split.test], config.n_boot, config.seed)
                        if method == "sparse"
                        else (np.nan, np.nan)
                    )
                    records.append(
                        {
                            "family": family,
                            "task": target,
                            "metric": "r2",
                            "method": "dense" if fit["dense"] else method,
                            "k": fit["k"],
                            "layer": int(layer),
                            "select_val": fit["r2_val"],
                            "val": fit["r2_val"],
                            "test": fit["r2_test"],
                            "test_low": low,
                            "test_high": high,
                        }
                    )
        frames.append(pd.DataFrame(records))
    task_table = pd.DataFrame(task_rows)
    scores = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if task_table.empty:
        warnings.warn(
            f"family {family!r}: no task with {config.min_positives} positives and negatives among "
            f"{len(examples)} examples; raise its n_documents",
            RuntimeWarning,
            stacklevel=3,
        )
    timings = {
        "family": family,
        "dataset": acts.dataset_key,
        "examples": len(examples),
        "tasks": len(task_table),
        "cache_s": cache_s,
        "probe_s": time.perf_counter() - t1,
    }
    return task_table, scores, surface, timings


def run(config: SurveyConfig, *, model: Any | None = None) -> SurveyResult:
    """Probe every family of ``config`` at its layers and k grid; see the module documentation for the methods.

    ``model`` is an already loaded :class:`~sparse_probing.models.LoadedModel` (default: loaded from
    ``config.model``). Raises ConfigError when a layer does not exist in the model or a family has no such feature.
    """
    from ..datasets import FAMILIES, is_dataset_file
    from ..models import load_model

    unknown = [f for f in config.families if f not in FAMILIES and not is_dataset_file(f)]
    if unknown:
        raise ConfigError(f"unknown families {unknown}; choose from {list(FAMILIES)} or give a dataset file's path")
    lm = load_model(config.model) if model is None else model
    too_deep = [layer for layer in config.layers if layer >= lm.n_layers]
    if too_deep:
        raise ConfigError(
            f"layers {too_deep} do not exist in {lm.spec.name} ({lm.n_layers} layers: 0..{lm.n_layers - 1}); "
            "set the layers parameter"
        )
    tasks, scores, surfaces, timings = [], [], [], []
    for family in config.families:
        t, s, b, tm = _probe_family(config, lm, family)
        tasks.append(t)
        scores.append(s)
        surfaces.append(b)
        timings.append(tm)
    task_table = pd.concat(tasks, ignore_index=True)
    if task_table.empty:
        raise ValueError("no family produced a task with enough examples; raise n_documents or max_examples")
    task_table["status"] = np.where(
        (task_table["kind"] == "classification") & (task_table["test_positives"] < config.min_test_positives),
        INCONCLUSIVE,
        "ok",
    )
    nonempty = [b for b in surfaces if len(b)]
    return SurveyResult(
        config=config,
        model_identity=str(getattr(lm, "identity", config.model)),
        n_layers=int(lm.n_layers),
        d_mlp=int(lm.d_mlp),
        tasks=task_table,
        scores=pd.concat([s for s in scores if len(s)], ignore_index=True),
        surface=pd.concat(nonempty, ignore_index=True) if nonempty else surfaces[0],
        timings=pd.DataFrame(timings),
    )


# ---------------------------------------------------------------------------------------------- tables and figures


def family_table(result: SurveyResult) -> pd.DataFrame:
    """One row per family: tasks (inconclusive ones), median test positives, and mean test scores over its tasks
    of the 1-sparse probe, the best top-k probe, the dense probe, the shuffled-label control and the best surface
    baseline (F1, or R^2 for regression families). Strings, ready to show."""
    s = result.summary
    rows = []
    for family in result.config.families:
        d = s[s["family"] == family]
        if d.empty:
            continue
        pos = d["test_positives"].dropna()
        rows.append(
            {
                "family": family,
                "score": "R²" if (d["metric"] == "r2").all() else "F1",
                "tasks": len(d),
                "inconclusive": int((d["status"] == INCONCLUSIVE).sum()),
                "median test positives": f"{pos.median():.0f}" if len(pos) else "n/a (regression)",
                "k=1": _fmt(d["k1_test"].mean()),
                "best k": _fmt(d["sparse_test"].mean()),
                "dense": _fmt(d["dense_test"].mean()),
                "control": _fmt(d["control_test"].mean()),
                "surface": _fmt(d["surface_test"].mean()) if d["surface_test"].notna().any() else "none",
            }
        )
    return pd.DataFrame(rows)


def task_table(result: SurveyResult, *, n: int = 10, kind: str = "classification") -> pd.DataFrame:
    """The ``n`` tasks of ``kind`` with the best 1-sparse test score (conclusive ones first), as strings: layer,
    k=1 score with its 95% interval, the best top-k score with its k, dense, control, surface baseline and status."""
    from ..analysis.verdicts import format_ci

    s = result.summary
    s = s[s["kind"] == kind].assign(_inc=lambda d: d["status"] == INCONCLUSIVE)
    s = s.sort_values(["_inc", "k1_test"], ascending=[True, False], kind="stable").head(n)
    out = pd.DataFrame(
        {
            "family": s["family"],
            "task": s["task"],
            "test positives": [f"{v:.0f}" if np.isfinite(v) else "n/a" for v in s["test_positives"]],
            "layer": [f"{v:.0f}" if np.isfinite(v) else "n/a" for v in s["k1_layer"]],
            "k=1 (95% CI)": [format_ci(*r) for r in s[["k1_test", "k1_test_low", "k1_test_high"]].to_numpy()],
            "best k": [f"{v:.0f}" if np.isfinite(v) else "n/a" for v in s["sparse_k"]],
            "best top-k": [_fmt(v) for v in s["sparse_test"]],
            "dense": [_fmt(v) for v in s["dense_test"]],
            "control": [_fmt(v) for v in s["control_test"]],
            "surface": [
                f"{_fmt(v)} ({b})" if isinstance(b, str) else "none"
                for v, b in zip(s["surface_test"], s["surface_baseline"], strict=True)
            ],
            "status": s["status"],
        }
    )
    return out.reset_index(drop=True)


def plot_family_curves(result: SurveyResult, axis: str = "k") -> Any:
    """One panel per family: mean test score over its tasks against ``axis`` (``"k"`` or ``"layer"``), for the
    top-k probe (k chosen on validation when ``axis="layer"``), the shuffled-label control, the dense probe (a
    line against layer, the level of its validation-chosen layer against k) and the mean best surface baseline."""
    import matplotlib.pyplot as plt

    curves = family_curves(result, axis)
    dense = family_curves(result, "layer")
    dense = dense[dense["method"] == "dense"]
    families = [f for f in result.config.families if f in set(curves["family"])]
    n_cols = min(3, len(families))
    n_rows = -(-len(families) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.2 * n_cols, 3.1 * n_rows), squeeze=False)
    styles = {"sparse": ("C0", "-", "top-k probe"), "control": ("C3", "--", "shuffled labels")}
    if axis == "layer":
        styles["dense"] = ("C2", ":", "dense")
    summary = result.summary
    for ax, family in zip(axes.flat, families, strict=False):
        d = curves[curves["family"] == family]
        metric = str(d["metric"].iloc[0])
        for method, (color, ls, label) in styles.items():
            m = d[d["method"] == method] if method != "dense" else dense[dense["family"] == family]
            if len(m):
                ax.plot(m[axis], m["test"], color=color, ls=ls, marker="o", ms=3, label=label)
        s = summary[summary["family"] == family]
        if axis == "k" and s["dense_test"].notna().any():
            ax.axhline(s["dense_test"].mean(), color="C2", ls=":", label="dense")
        if s["surface_test"].notna().any():
            ax.axhline(s["surface_test"].mean(), color="grey", ls="-.", lw=1, label="surface baseline")
        if axis == "k":
            ax.set_xscale("log", base=2)
        n_tasks = int(d["n_tasks"].max())
        ax.set(
            title=f"{family} ({n_tasks} tasks)",
            xlabel=axis,
            ylabel="test R²" if metric == "r2" else "test F1",
            ylim=(min(-0.05, float(d["test"].min()) - 0.05), 1.02),
        )
        ax.set_xticks(sorted(d[axis].unique()))
        ax.set_xticklabels([str(v) for v in sorted(d[axis].unique())])
    for ax in list(axes.flat)[len(families) :]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), bbox_to_anchor=(0.5, -0.02), frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    plt.close(fig)
    return fig


def _family_means(result: SurveyResult) -> pd.DataFrame:
    s = result.summary
    cols = ["k1_test", "sparse_test", "dense_test", "control_test", "surface_test"]
    return (
        s.groupby("family", sort=False)[cols]
        .mean()
        .reindex([f for f in result.config.families if f in set(s["family"])])
    )


def caption_by_k(result: SurveyResult, number: int = 1) -> str:
    """The numbered caption of the figure against k, with its takeaway computed from the result."""
    m = _family_means(result)
    gain = (m["sparse_test"] - m["k1_test"]).dropna()
    flat = [f for f, g in gain.items() if g < 0.05]
    steep = gain.idxmax() if len(gain) else None
    parts = [
        f"**Figure {number}.** Mean test score over the tasks of each family against the number of neurons k (layer "
        "chosen on validation for every k; F1, or R² for position), with the shuffled-label control and, as "
        "horizontal lines, the dense probe and the best surface baseline."
    ]
    if steep is not None:
        parts.append(
            f"Going from one neuron to the best k helps `{steep}` most (+{gain[steep]:.2f})"
            + (f"; {', '.join(f'`{f}`' for f in flat)} gain less than 0.05" if flat else "")
            + "."
        )
    above = [f for f, r in m.iterrows() if np.isfinite(r["surface_test"]) and r["sparse_test"] > r["surface_test"]]
    below = [f for f, r in m.iterrows() if np.isfinite(r["surface_test"]) and r["sparse_test"] <= r["surface_test"]]
    if above or below:
        parts.append(
            "On average over tasks the best sparse probe beats the surface baseline for "
            + (", ".join(f"`{f}`" for f in above) or "no family")
            + " and does not for "
            + (", ".join(f"`{f}`" for f in below) or "any other family")
            + "."
        )
    return " ".join(parts)


def caption_by_layer(result: SurveyResult, number: int = 2) -> str:
    """The numbered caption of the figure against layer, with the best layer of each family's top-k probe."""
    curves = family_curves(result, "layer")
    sparse = curves[curves["method"] == "sparse"]
    best = sparse.loc[sparse.groupby("family", sort=False)["test"].idxmax()]
    where = ", ".join(f"`{r.family}` at layer {int(r.layer)} ({r.test:.2f})" for r in best.itertuples())
    return (
        f"**Figure {number}.** Mean test score over the tasks of each family against layer (k chosen on validation at "
        f"every layer), with the dense probe and the shuffled-label control. The top-k probe peaks for {where} "
        f"(of {result.n_layers} layers)."
    )


def findings(result: SurveyResult) -> str:
    """A few sentences (markdown bullets) on what the survey shows, computed from the result."""
    m = _family_means(result)
    tasks = result.tasks
    lines = []
    for family, r in m.iterrows():
        t = tasks[tasks["family"] == family]
        n_inc = int((t["status"] == INCONCLUSIVE).sum())
        metric = "R²" if (t["metric"] == "r2").all() else "F1"
        text = (
            f"* `{family}` ({len(t)} tasks{f', {n_inc} inconclusive' if n_inc else ''}): mean test {metric} "
            f"{_fmt(r['k1_test'])} with one neuron, {_fmt(r['sparse_test'])} with the best k, {_fmt(r['dense_test'])} "
            f"with all neurons; shuffled labels {_fmt(r['control_test'])}"
        )
        if np.isfinite(r["surface_test"]):
            text += f"; surface baseline {_fmt(r['surface_test'])}"
        lines.append(text + ".")
    return "\n".join(lines)
