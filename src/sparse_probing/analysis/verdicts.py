"""Verdicts: one per claim of the paper, generated from a chapter's measured evidence.

A chapter records each claim it tests as a :class:`ClaimEvidence` (the effect that supports the claim, with its
95% confidence interval, its margin over the best surface baseline, the calibrated power of the diagnostic at the
chapter's sample size and the smallest number of test positives behind it) in its results JSON under ``"claims"``.
:func:`verdict` turns one record into one of four words, by fixed rules:

* **inconclusive**: fewer than :data:`MIN_TEST_POSITIVES` test positives in some task, or the effect is not
  established and the diagnostic's calibrated power at this sample size is below :data:`MIN_POWER` (or unknown):
  the experiment could not have detected the effect, so its absence says nothing.
* **reproduced**: the lower end of the CI is above the claim's threshold, and so is the lower end of the margin over
  the surface baseline (when one is given): the effect is there and the tokenizer alone does not explain it.
* **partly**: the effect is established but not beyond the surface baseline, or only some of the claim's sub-tests
  are reproduced (see :func:`combine`).
* **not reproduced**: the effect is not established although the experiment had the power to detect it.

:func:`verdict_table` collects every claim of every results file into the book's "results at a glance" table.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pandas as pd

__all__ = [
    "GLANCE_COLUMNS",
    "MIN_POWER",
    "MIN_TEST_POSITIVES",
    "VERDICTS",
    "ClaimEvidence",
    "calibrated_power",
    "calibrated_rates",
    "combine",
    "describe_correlation",
    "describe_difference",
    "format_ci",
    "verdict",
    "verdict_box",
    "verdict_markdown",
    "verdict_table",
    "what_would_change",
]

MIN_TEST_POSITIVES = 30
"""Fewest test positives per task for a verdict other than inconclusive."""
MIN_POWER = 0.8
"""Smallest calibrated power at which a missing effect counts as evidence of absence."""

Verdict = Literal["reproduced", "partly", "not reproduced", "inconclusive"]
VERDICTS: tuple[Verdict, ...] = ("reproduced", "partly", "not reproduced", "inconclusive")


@dataclass(frozen=True)
class ClaimEvidence:
    """What a chapter measured for one claim of the paper (effects oriented so that larger supports the claim)."""

    claim: str
    """The paper's claim in a few words, e.g. "superposition in early layers"."""
    chapter: str
    """Chapter stem that measured it, e.g. ``03_superposition``."""
    measure: str
    """What the estimate is, e.g. "F1 gain of the best k over k = 1, early layers"."""
    paper: str
    """The paper's own number or statement, as text (e.g. "5 neurons per bigram (Pythia-1B)")."""
    estimate: float
    """Our effect (mean over tasks, or a paired difference), oriented so that larger supports the claim."""
    ci_low: float
    ci_high: float
    """95% confidence interval of ``estimate`` (bootstrap over split groups or tasks)."""
    threshold: float = 0.0
    """The effect must exceed this for the claim to hold (0 for "any positive difference")."""
    surface_margin: tuple[float, float, float] | None = None
    """(estimate, low, high) of the neuron result minus the best surface baseline; None where none applies."""
    control: str = ""
    """The control result in words, e.g. "shuffled labels 0.10"."""
    power: float | None = None
    """Calibrated power of this diagnostic at this sample size (ground-truth chapter); None if not calibrated."""
    n_tasks: int = 1
    """How many tasks the estimate pools."""
    min_test_positives: int = 0
    """Fewest test positives among those tasks."""
    parts: tuple[ClaimEvidence, ...] = field(default=())
    """Sub-tests of a compound claim (e.g. per model family); the verdict combines them when given."""

    def __post_init__(self) -> None:
        values = (self.estimate, self.ci_low, self.ci_high, self.threshold)
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"claim {self.claim!r}: estimate, CI and threshold must be finite numbers, got {values}")
        if not self.ci_low <= self.estimate <= self.ci_high:
            raise ValueError(
                f"claim {self.claim!r}: the estimate {self.estimate:.4g} lies outside its CI "
                f"[{self.ci_low:.4g}, {self.ci_high:.4g}]"
            )
        if self.power is not None and not 0.0 <= self.power <= 1.0:
            raise ValueError(f"claim {self.claim!r}: power must lie in [0, 1], got {self.power}")
        object.__setattr__(self, "parts", tuple(_as_evidence(p) for p in self.parts))
        if self.surface_margin is not None:
            object.__setattr__(self, "surface_margin", tuple(float(v) for v in self.surface_margin))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values; :meth:`from_dict` reads them back."""
        return asdict(self)

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> ClaimEvidence:
        known = set(cls.__dataclass_fields__)
        unknown = set(record) - known
        if unknown:
            raise ValueError(f"claim record has unknown fields {sorted(unknown)}; known: {sorted(known)}")
        return cls(**dict(record))


def _as_evidence(obj: ClaimEvidence | Mapping[str, Any]) -> ClaimEvidence:
    return obj if isinstance(obj, ClaimEvidence) else ClaimEvidence.from_dict(obj)


def _reason_and_verdict(ev: ClaimEvidence) -> tuple[Verdict, str]:
    if ev.parts:
        return combine([_reason_and_verdict(p)[0] for p in ev.parts]), "combined from its parts"
    if ev.min_test_positives < MIN_TEST_POSITIVES:
        return "inconclusive", f"fewest test positives {ev.min_test_positives} < {MIN_TEST_POSITIVES}"
    established = ev.ci_low > ev.threshold
    if established:
        if ev.surface_margin is not None and not ev.surface_margin[1] > 0:
            return "partly", "effect established but not beyond the surface baseline"
        return "reproduced", "CI above the threshold" + ("" if ev.surface_margin is None else " and surface baseline")
    if ev.power is None:
        return "inconclusive", "effect not established; diagnostic power not calibrated"
    if ev.power < MIN_POWER:
        return "inconclusive", f"effect not established; power {ev.power:.2f} < {MIN_POWER}"
    return "not reproduced", f"effect not established at power {ev.power:.2f}"


def calibrated_rates(
    diagnostic: str, records: Iterable[Mapping[str, Any]] | None = None
) -> tuple[float | None, float | None]:
    """(power, false-positive rate) of a diagnostic at the book's sample size, from the ground-truth chapter's results.

    ``diagnostic`` is one of the names of ``metrics.power_at_book_size`` of ``02_ground_truth`` (``gain``,
    ``random_basis``, ``pruning``, ``osp``, ``dedicated``). ``records`` are results records; by default those of the
    current results directory, then the published ``book/results``. Either value is None when the ground-truth
    chapter has not run or did not calibrate it: a claim without power cannot be called "not reproduced".
    """
    if records is None:
        from ..results import RESULTS_DIR, load_results, results_dir

        dirs = [d for d in (results_dir(), RESULTS_DIR) if d.is_dir()]
        records = [r for d in dict.fromkeys(dirs) for r in load_results(d)]
    power = false_positive_rate = None
    for record in records:
        if record.get("name") != "02_ground_truth":
            continue
        for row in (record.get("metrics") or {}).get("power_at_book_size", []):
            if row.get("diagnostic") != diagnostic:
                continue
            if power is None and row.get("power") is not None:
                power = float(row["power"])
            if false_positive_rate is None and row.get("false positive rate") is not None:
                false_positive_rate = float(row["false positive rate"])
    return power, false_positive_rate


def calibrated_power(diagnostic: str, records: Iterable[Mapping[str, Any]] | None = None) -> float | None:
    """The power half of :func:`calibrated_rates`."""
    return calibrated_rates(diagnostic, records)[0]


def verdict(evidence: ClaimEvidence | Mapping[str, Any]) -> Verdict:
    """The verdict on one claim by the rules of this module's docstring."""
    return _reason_and_verdict(_as_evidence(evidence))[0]


def combine(verdicts: Sequence[Verdict]) -> Verdict:
    """One verdict from the verdicts of a claim's sub-tests.

    All reproduced: reproduced. None reproduced or partly: not reproduced if every part is, otherwise inconclusive.
    A mix with at least one reproduced or partly part: partly.
    """
    if not verdicts:
        raise ValueError("combine needs at least one verdict")
    unknown = set(verdicts) - set(VERDICTS)
    if unknown:
        raise ValueError(f"unknown verdicts {sorted(unknown)}; verdicts are {', '.join(VERDICTS)}")
    if all(v == "reproduced" for v in verdicts):
        return "reproduced"
    if any(v in ("reproduced", "partly") for v in verdicts):
        return "partly"
    if all(v == "not reproduced" for v in verdicts):
        return "not reproduced"
    return "inconclusive"


def format_ci(estimate: float, low: float, high: float, digits: int = 2) -> str:
    """``0.95 (0.82-1.00)``; negative bounds are written with a minus sign and "to": ``-0.12 (-0.19 to -0.07)``."""
    values = (estimate, low, high)
    if not all(math.isfinite(v) for v in values):
        return "n/a"
    e, lo, hi = (f"{v:.{digits}f}".replace("-", "\u2212") for v in values)
    sep = " to " if min(low, high) < 0 else "-"
    return f"{e} ({lo}{sep}{hi})"


def describe_difference(a: str, b: str, estimate: float, low: float, high: float, *, unit: str = "") -> str:
    """A sentence on a paired difference ``a - b`` that says what its CI supports, e.g.

    "middle layers are reliably lower than first layers: -0.12 (-0.19 to -0.07)".
    """
    ci = format_ci(estimate, low, high) + (f" {unit}" if unit else "")
    if low > 0:
        return f"{a} is reliably higher than {b}: {ci}"
    if high < 0:
        return f"{a} is reliably lower than {b}: {ci}"
    return f"{a} is not reliably different from {b}: {ci}"


def describe_correlation(name: str, rho: float, low: float | None = None, high: float | None = None) -> str:
    """ "Spearman 0.69 (positive)" with the sign and, given a CI, whether it excludes zero."""
    if not math.isfinite(rho):
        return f"{name}: undefined (constant input)"
    sign = "positive" if rho > 0 else "negative" if rho < 0 else "zero"
    text = f"{name} {rho:.2f} ({sign}"
    if low is not None and high is not None:
        text += ", CI excludes 0" if low > 0 or high < 0 else ", CI includes 0"
        text += f": {format_ci(rho, low, high)}"
    return text + ")"


def verdict_table(results: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The "results at a glance" table: one row per claim found under ``metrics.claims`` of the results records.

    Columns: claim, chapter, paper, ours (estimate with CI), control, surface margin, power, test positives,
    verdict, why. Records without claims are skipped; a malformed claim raises ValueError naming its chapter.
    """
    rows = []
    for record in results:
        for raw in (record.get("metrics") or {}).get("claims", []):
            try:
                ev = _as_evidence(raw)
            except (TypeError, ValueError) as err:
                raise ValueError(f"results {record.get('name')!r}: malformed claim: {err}") from err
            v, why = _reason_and_verdict(ev)
            sm = ev.surface_margin
            rows.append(
                {
                    "claim": ev.claim,
                    "chapter": ev.chapter,
                    "paper": ev.paper,
                    "measure": ev.measure,
                    "ours (95% CI)": format_ci(ev.estimate, ev.ci_low, ev.ci_high),
                    "control": ev.control or "-",
                    "over surface baseline": "-" if sm is None else format_ci(*sm),
                    "power": "-" if ev.power is None else f"{ev.power:.2f}",
                    "tasks (fewest test positives)": f"{ev.n_tasks} ({ev.min_test_positives})",
                    "verdict": v,
                    "why": why,
                }
            )
    columns = [
        "claim",
        "chapter",
        "paper",
        "measure",
        "ours (95% CI)",
        "control",
        "over surface baseline",
        "power",
        "tasks (fewest test positives)",
        "verdict",
        "why",
    ]
    return pd.DataFrame(rows, columns=columns)


GLANCE_COLUMNS = ("claim", "paper", "measure", "ours (95% CI)", "over surface baseline", "power", "verdict")
"""The columns of the "results at a glance" table on the book's first page (the verdict cell carries its reason)."""


def verdict_markdown(table: pd.DataFrame, *, link: bool = True) -> str:
    """The "results at a glance" table as MyST markdown (chapter names as page links when ``link``).

    With no claims recorded it says so in one sentence instead of printing an empty table.
    """
    if table.empty:
        return (
            "No chapter has recorded a claim yet: run the chapters (`make book`) to measure them; until then this "
            "book gives no verdict.\n"
        )
    cells = table.assign(
        claim=[
            f"{c} ({{doc}}`executed/{ch}`)" if link else f"{c} ({ch})"
            for c, ch in zip(table["claim"], table["chapter"], strict=True)
        ],
        verdict=[f"**{v}** ({why})" for v, why in zip(table["verdict"], table["why"], strict=True)],
    )
    header = "| " + " | ".join(GLANCE_COLUMNS) + " |"
    rule = "|" + "---|" * len(GLANCE_COLUMNS)
    rows = [
        "| " + " | ".join(str(row[c]).replace("|", "/") for c in GLANCE_COLUMNS) + " |" for _, row in cells.iterrows()
    ]
    return "\n".join([header, rule, *rows]) + "\n"


def _evidence_line(ev: ClaimEvidence) -> str:
    parts = [f"{ev.measure}: {format_ci(ev.estimate, ev.ci_low, ev.ci_high)}"]
    if ev.surface_margin is not None:
        parts.append(f"over the best surface baseline {format_ci(*ev.surface_margin)}")
    if ev.control:
        parts.append(f"control: {ev.control}")
    parts.append("power not calibrated" if ev.power is None else f"calibrated power {ev.power:.2f}")
    parts.append(f"{ev.n_tasks} task{'s' if ev.n_tasks != 1 else ''}, fewest test positives {ev.min_test_positives}")
    return "; ".join(parts)


def verdict_box(claims: Iterable[ClaimEvidence | Mapping[str, Any]]) -> str:
    """MyST markdown that opens a chapter: per claim, the paper's statement, our result and the verdict with its reason.

    Sub-tests (``parts``) are listed under their claim with their own verdicts.
    """
    blocks = []
    for raw in claims:
        ev = _as_evidence(raw)
        v, why = _reason_and_verdict(ev)
        lines = [f"**Paper:** {ev.paper}", "", f"**Ours:** {_evidence_line(ev)}."]
        for part in ev.parts:
            pv, pwhy = _reason_and_verdict(part)
            lines.append(f"- {part.claim}: {_evidence_line(part)}. *{pv}* ({pwhy}).")
        lines += ["", f"**Verdict: {v}** ({why})."]
        blocks.append(f"````{{admonition}} Claim: {ev.claim}\n:class: note\n" + "\n".join(lines) + "\n````")
    if not blocks:
        return "This run recorded no claim.\n"
    return "\n\n".join(blocks) + "\n"


def _change(ev: ClaimEvidence) -> str:
    v, _ = _reason_and_verdict(ev)
    if ev.min_test_positives < MIN_TEST_POSITIVES:
        return (
            f"more data: at least {MIN_TEST_POSITIVES} test positives in every task (now {ev.min_test_positives}) "
            "would allow a verdict"
        )
    if v == "inconclusive":
        power = "an uncalibrated diagnostic" if ev.power is None else f"power {ev.power:.2f}"
        return (
            f"the effect is not established with {power}: a larger sample (more tasks or examples) or a diagnostic "
            f"with power >= {MIN_POWER} at this size would turn the missing effect into evidence either way"
        )
    if v == "not reproduced":
        return (
            f"an effect above {ev.threshold:g} with a CI clear of it in a larger or different model (the paper used "
            "Pythia) would reverse it; at this size the diagnostic would have seen it"
        )
    if v == "partly":
        if ev.parts:
            return "the sub-tests that fall short reaching the same result as the others"
        return (
            "a margin over the best surface baseline whose CI excludes 0, e.g. on tasks the tokens alone cannot "
            "decode, would make it reproduced; an effect CI reaching the threshold would make it inconclusive"
        )
    return "a CI reaching the threshold on more data, or a surface baseline that matches the neurons, would weaken it"


def what_would_change(claims: Iterable[ClaimEvidence | Mapping[str, Any]]) -> str:
    """Markdown that closes a chapter: per claim, its verdict and what evidence would change it."""
    lines = []
    for raw in claims:
        ev = _as_evidence(raw)
        lines.append(f"- **{ev.claim}** ({verdict(ev)}): {_change(ev)}.")
    return "\n".join(lines) + "\n" if lines else "This run recorded no claim.\n"
