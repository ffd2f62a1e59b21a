"""Sparse probes: which neurons, and how few, linearly encode a feature (Gurnee et al. 2023).

Everything works on plain arrays: activations ``X`` of shape (N examples, D neurons) and binary labels ``y``.

* :mod:`.ranking` - neuron rankers (mean difference, ANOVA F, mutual information, L1 logistic regression,
  linear SVM, random) and :class:`NeuronRanker`, a scikit-learn feature selector.
* :mod:`.sparse` - top-k + L2 logistic regression (:class:`SparseProbe`) and the telescopic
  (adaptive-thresholding) sweep (:class:`TelescopicProbe`).
* :mod:`.optimal` - optimal sparse probing by mixed-integer outer approximation (Bertsimas, Pauphilet & Van Parys),
  with Gurobi or HiGHS (:class:`OptimalSparseProbe`).
* :mod:`.single` - the exhaustively searched best single neuron (:class:`SingleNeuronProbe`,
  :func:`best_single_neuron`).
* :mod:`.baselines` - dense probe (:class:`DenseProbe`), random orthogonal basis, shuffled-label control.
* :mod:`.pruning` - iterative pruning of the best neuron.
* :mod:`.sweep` - (feature x layer x method x k) sweeps as tidy tables; selection on validation data.
* :mod:`.synthetic` - planted-neuron activations for tests and benchmarks.

Every probe is a binary linear classifier on raw activations: ``support_`` (kept neurons, most important first),
``coef_`` of shape (1, D) with zeros outside the support, ``intercept_``. Every probe also has
``fit_path(X, y, ks)``, which fits a whole k grid sharing the work (one ranking, warm starts, shared cuts) and returns
one :class:`SparseFit` per k; :func:`make_probe` builds the probe of a method name, and :func:`run_sweep` runs them
over (feature x layer x method x k).
"""

from ._base import K_GRID, OSP_K_GRID, KClippedWarning, ProbeInputError, SparseFit
from .baselines import (
    DenseProbe,
    RandomRotation,
    ShuffledLabelProbe,
    control_selectivity,
    random_orthogonal,
    shuffled_labels,
)
from .optimal import (
    CANDIDATE_RANKERS,
    GAMMA_GRID,
    SOLVERS,
    OptimalSparseProbe,
    SolveInfo,
    SparseSVMObjective,
    brute_force_sparse_svm,
    candidate_union,
    gurobi_available,
    rank_for_candidates,
    validate_gamma,
)
from .pruning import iterative_pruning
from .ranking import RANKERS, NeuronRanker, mean_difference, rank_neurons, score_neurons
from .single import SingleNeuronProbe, best_single_neuron, single_neuron_table
from .sparse import SparseProbe, TelescopicProbe
from .sweep import (
    METHODS,
    N_ROTATIONS,
    PLAIN_METHODS,
    ProbeSpec,
    cv_summary,
    fit_method,
    make_probe,
    run_cv_sweep,
    run_sweep,
    select_best,
    select_on_validation,
    selectivity,
)

__all__ = [
    "CANDIDATE_RANKERS",
    "GAMMA_GRID",
    "K_GRID",
    "METHODS",
    "N_ROTATIONS",
    "OSP_K_GRID",
    "PLAIN_METHODS",
    "RANKERS",
    "SOLVERS",
    "DenseProbe",
    "KClippedWarning",
    "NeuronRanker",
    "OptimalSparseProbe",
    "ProbeInputError",
    "ProbeSpec",
    "RandomRotation",
    "ShuffledLabelProbe",
    "SingleNeuronProbe",
    "SolveInfo",
    "SparseFit",
    "SparseProbe",
    "SparseSVMObjective",
    "TelescopicProbe",
    "best_single_neuron",
    "brute_force_sparse_svm",
    "candidate_union",
    "control_selectivity",
    "cv_summary",
    "fit_method",
    "gurobi_available",
    "iterative_pruning",
    "make_probe",
    "mean_difference",
    "random_orthogonal",
    "rank_for_candidates",
    "rank_neurons",
    "run_cv_sweep",
    "run_sweep",
    "score_neurons",
    "select_best",
    "select_on_validation",
    "selectivity",
    "shuffled_labels",
    "single_neuron_table",
    "validate_gamma",
]
