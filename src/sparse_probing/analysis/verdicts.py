"""Verdicts: one per claim of the paper, generated from a chapter's measured evidence.

A chapter records each claim it tests as a :class:`ClaimEvidence`: the effect that supports the claim with its 95%
confidence interval, the claim's *minimal effect of interest* (the smallest effect that would still count as the
paper's finding, argued from the paper's own numbers and quoted in ``minimal_effect_source``), the chapter's
*minimal detectable effect* (MDE: the effect its own sample detects with 80% power at the 5% level,
:func:`~sparse_probing.analysis.statistics.minimal_detectable_effect`) and the estimator (e.g. "5-fold grouped
CV, selection nested"). :func:`verdict` turns one record into one of these words, by fixed rules:

* **not testable here**: the experiment cannot be done with the models or data available offline
  (``not_testable`` says why and what would make it testable).
* **inconclusive**: fewer than :data:`MIN_TEST_POSITIVES` test positives in some task; fewer than
  :data:`MIN_TASKS` tasks (units the interval resamples: a percentile bootstrap over three numbers is not a 95%
  interval); or the CI straddles the minimal effect (the reason states the MDE and how many tasks would resolve it).
* **differs**: the CI lies wholly below 0: the effect has the opposite sign to the paper's.
* **not reproduced**: the CI lies wholly below the minimal effect (and not below 0): the effect, if any, is smaller
  than what the paper reports (an equivalence-style conclusion).
* **reproduced**: the CI lies wholly above the minimal effect, and, where a surface baseline applies, the margin
  over it is above 0 (a margin whose CI lies below 0 makes the claim "not reproduced": the tokens alone do better;
  one that straddles 0 makes it inconclusive).

A compound claim (``parts``) is decided part by part (:func:`combine`): parts that agree give their verdict; parts
that disagree give **differs in part**, never a silent "inconclusive"; parts that all go against the paper (not
reproduced or differs) give "not reproduced". :func:`verdict_table` collects every claim of every results file into
the book's "results at a glance" table.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pandas as pd

from .statistics import samples_to_resolve

__all__ = [
    "GLANCE_COLUMNS",
    "MIN_TASKS",
    "MIN_TEST_POSITIVES",
    "VERDICTS",
    "ClaimEvidence",
    "bottom_line",
    "calibrated_power",
    "calibrated_rates",
    "claim_label",
    "combine",
    "describe_correlation",
    "describe_difference",
    "findings_box",
    "format_ci",
    "format_number",
    "verdict",
    "verdict_and_reason",
    "verdict_box",
    "verdict_markdown",
    "verdict_table",
    "what_would_change",
]

MIN_TEST_POSITIVES = 30
"""Fewest test positives per task for a verdict other than inconclusive."""
MIN_TASKS = 8
"""Fewest tasks (the units a claim's interval resamples) for a verdict other than inconclusive."""

Verdict = Literal["reproduced", "not reproduced", "differs", "differs in part", "inconclusive", "not testable here"]
VERDICTS: tuple[Verdict, ...] = (
    "reproduced",
    "not reproduced",
    "differs",
    "differs in part",
    "inconclusive",
    "not testable here",
)
_AGAINST = ("not reproduced", "differs")
"""Verdicts that go against the paper."""

_LEGACY_FIELDS = ("threshold", "power")
"""Fields of records written before claims carried a minimal effect (read, never written)."""


def _finite(*values: float | None) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


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
    estimate: float = math.nan
    """Our effect (mean over tasks, or a paired difference), oriented so that larger supports the claim."""
    ci_low: float = math.nan
    ci_high: float = math.nan
    """95% confidence interval of ``estimate`` (bootstrap over split groups or tasks)."""
    minimal_effect: float = math.nan
    """The smallest effect that still counts as the paper's finding (> 0, in the units of ``estimate``)."""
    minimal_effect_source: str = ""
    """Why that size: the paper's figure, table or number it is argued from."""
    mde: float | None = None
    """Minimal detectable effect of this chapter's test (80% power, 5% level) at its real sample size."""
    estimator: str = ""
    """How the test scores were estimated, e.g. "5-fold grouped CV, selection nested; bootstrap over bigrams"."""
    surface_margin: tuple[float, float, float] | None = None
    """(estimate, low, high) of the neuron result minus the best surface baseline; None where none applies."""
    control: str = ""
    """The control result in words, e.g. "shuffled labels 0.10"."""
    n_tasks: int = 1
    """How many tasks the estimate pools."""
    min_test_positives: int = 0
    """Fewest test positives among those tasks."""
    unit: str = "task"
    """What ``n_tasks`` counts (the units the interval resamples): "task", "class", "neuron"."""
    positives: str = "test positives"
    """What ``min_test_positives`` counts, e.g. "held-out texts per class" for an ablation."""
    not_testable: str = ""
    """Why the claim cannot be tested with what is available offline, and what would make it testable ("" if it
    can): such a claim needs no estimate."""
    parts: tuple[ClaimEvidence, ...] = field(default=())
    """Sub-tests of a compound claim (e.g. per data source); the verdict is decided part by part."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "parts", tuple(_as_evidence(p) for p in self.parts))
        if self.surface_margin is not None:
            object.__setattr__(self, "surface_margin", tuple(float(v) for v in self.surface_margin))
        if self.mde is not None and not (math.isfinite(self.mde) and self.mde >= 0):
            raise ValueError(
                f"claim {self.claim!r}: the minimal detectable effect must be a number >= 0, got {self.mde}"
            )
        if self.not_testable:
            return
        values = (self.estimate, self.ci_low, self.ci_high)
        if not _finite(*values):
            raise ValueError(
                f"claim {self.claim!r}: estimate and CI must be finite numbers, got {values} (a claim that cannot "
                "be measured here says why in not_testable)"
            )
        if not self.ci_low <= self.estimate <= self.ci_high:
            raise ValueError(
                f"claim {self.claim!r}: the estimate {self.estimate:.4g} lies outside its CI "
                f"[{self.ci_low:.4g}, {self.ci_high:.4g}]"
            )
        if not (math.isnan(self.minimal_effect) or self.minimal_effect > 0):
            raise ValueError(
                f"claim {self.claim!r}: the minimal effect of interest must be > 0 (argued from the paper), got "
                f"{self.minimal_effect}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values; :meth:`from_dict` reads them back."""
        return asdict(self)

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> ClaimEvidence:
        """Read a record of :meth:`to_dict`. Records written before claims carried a minimal effect (with
        ``threshold`` and ``power``) load with no minimal effect; their verdict asks for the chapter to be re-run."""
        known = set(cls.__dataclass_fields__)
        data = {k: v for k, v in record.items() if k not in _LEGACY_FIELDS}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"claim record has unknown fields {sorted(unknown)}; known: {sorted(known)}")
        for key in ("estimate", "ci_low", "ci_high", "minimal_effect"):
            if data.get(key) is None and key in data:
                data[key] = math.nan  # JSON null
        return cls(**data)


def _as_evidence(obj: ClaimEvidence | Mapping[str, Any]) -> ClaimEvidence:
    return obj if isinstance(obj, ClaimEvidence) else ClaimEvidence.from_dict(obj)


def _num(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}".replace("-", "\u2212")


def _mde_text(ev: ClaimEvidence) -> str:
    return "" if ev.mde is None else f"; this test detects effects of {_num(ev.mde)} or more (MDE)"


def _count(ev: ClaimEvidence) -> str:
    """``"34 classes"``: ``n_tasks`` with its unit."""
    unit = ev.unit if ev.n_tasks == 1 else ev.unit + ("es" if ev.unit.endswith(("s", "sh", "ch", "x")) else "s")
    return f"{ev.n_tasks} {unit}"


def _leaf(ev: ClaimEvidence) -> tuple[Verdict, str]:
    if ev.not_testable:
        return "not testable here", ev.not_testable
    if math.isnan(ev.minimal_effect):
        return "inconclusive", "recorded without a minimal effect of interest: re-run its chapter"
    if ev.min_test_positives < MIN_TEST_POSITIVES:
        return "inconclusive", f"fewest {ev.positives} {ev.min_test_positives} < {MIN_TEST_POSITIVES}"
    if ev.n_tasks < MIN_TASKS:
        return "inconclusive", f"{_count(ev)} < {MIN_TASKS}: too few for a 95% interval{_mde_text(ev)}"
    m = ev.minimal_effect
    if ev.ci_high < 0:
        return "differs", f"CI wholly below 0: the effect has the opposite sign to the paper's{_mde_text(ev)}"
    if ev.ci_high < m:
        return (
            "not reproduced",
            f"CI wholly below the minimal effect {_num(m)}: smaller than the paper's effect{_mde_text(ev)}",
        )
    if ev.ci_low > m:
        sm = ev.surface_margin
        if sm is None or sm[1] > 0:
            return "reproduced", f"CI wholly above the minimal effect {_num(m)}" + (
                "" if sm is None else " and above the surface baseline"
            )
        if sm[2] < 0:
            return "not reproduced", "above the minimal effect, but the surface baseline does better (margin CI < 0)"
        return (
            "inconclusive",
            "above the minimal effect, but not separable from the surface baseline (margin CI spans 0)",
        )
    need = samples_to_resolve(ev.estimate, ev.ci_low, ev.ci_high, m, ev.n_tasks)
    more = "" if need is None else f"; about {need} tasks would resolve it at this spread"
    return "inconclusive", f"CI straddles the minimal effect {_num(m)}{_mde_text(ev)}{more}"


def verdict_and_reason(evidence: ClaimEvidence | Mapping[str, Any]) -> tuple[Verdict, str]:
    """The verdict on one claim by the rules of this module's docstring, with its one-line reason."""
    ev = _as_evidence(evidence)
    if not ev.parts:
        return _leaf(ev)
    verdicts = [verdict_and_reason(p)[0] for p in ev.parts]
    counts = Counter(verdicts)
    why = ", ".join(f"{n} part{'s' if n > 1 else ''} {v}" for v, n in counts.items())
    return combine(verdicts), why


def verdict(evidence: ClaimEvidence | Mapping[str, Any]) -> Verdict:
    """The verdict on one claim by the rules of this module's docstring."""
    return verdict_and_reason(evidence)[0]


def combine(verdicts: Sequence[Verdict]) -> Verdict:
    """One verdict from the verdicts of a claim's parts.

    Parts that cannot be tested here are set aside (all of them: not testable here). The rest: all equal gives that
    verdict; all against the paper (not reproduced or differs) gives not reproduced; any other mix gives
    "differs in part" (the page lists the parts).
    """
    if not verdicts:
        raise ValueError("combine needs at least one verdict")
    unknown = set(verdicts) - set(VERDICTS)
    if unknown:
        raise ValueError(f"unknown verdicts {sorted(unknown)}; verdicts are {', '.join(VERDICTS)}")
    testable = [v for v in verdicts if v != "not testable here"]
    if not testable:
        return "not testable here"
    if len(set(testable)) == 1:
        return testable[0]
    if all(v in _AGAINST for v in testable):
        return "not reproduced"
    return "differs in part"


def calibrated_rates(
    diagnostic: str, records: Iterable[Mapping[str, Any]] | None = None
) -> tuple[float | None, float | None]:
    """(power, false-positive rate) of a diagnostic at the book's sample size, from the ground-truth chapter's results.

    ``diagnostic`` is one of the names of ``metrics.power_at_book_size`` of ``02_ground_truth`` (``gain``,
    ``random_basis``, ``pruning``, ``osp``, ``dedicated``). That table has one row per toy regime; the power returned
    is the lowest over regimes and the false-positive rate the highest (worst cases, never an average across
    regimes). ``records`` are results records; by default those of the current results directory, then the published
    ``book/results``. Either value is None when the ground-truth chapter has not run or did not calibrate it. These
    rates describe a diagnostic; they do not decide a verdict (the minimal effect and the CI do).
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
            p, fpr = row.get("power"), row.get("false positive rate")
            if p is not None and math.isfinite(p):
                power = min(float(p), power if power is not None else math.inf)
            if fpr is not None and math.isfinite(fpr):
                false_positive_rate = max(float(fpr), -math.inf if false_positive_rate is None else false_positive_rate)
        break  # the first ground-truth record found (current results before the published ones)
    return power, false_positive_rate


def calibrated_power(diagnostic: str, records: Iterable[Mapping[str, Any]] | None = None) -> float | None:
    """The power half of :func:`calibrated_rates`."""
    return calibrated_rates(diagnostic, records)[0]


def format_number(value: float, digits: int = 2) -> str:
    """A number of a table or sentence: ``digits`` decimals, a true minus sign, ``n/a`` when missing."""
    return f"{value:.{digits}f}".replace("-", "\u2212") if math.isfinite(value) else "n/a"


def format_ci(estimate: float, low: float, high: float, digits: int = 2) -> str:
    """``0.95 (0.82-1.00)``; negative bounds are written with a minus sign and "to": ``-0.12 (-0.19 to -0.07)``."""
    values = (estimate, low, high)
    if not all(math.isfinite(v) for v in values):
        return "n/a"
    while digits < 4 and any(v != 0 and round(v, digits) == 0 for v in (low, high)):
        digits += 1  # a bound that is not zero is never printed as 0.00 (it decides "reliably higher")
    e, lo, hi = (format_number(v, digits) for v in values)
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


def _minimal_text(ev: ClaimEvidence) -> str:
    return "-" if math.isnan(ev.minimal_effect) else _num(ev.minimal_effect)


def verdict_table(results: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The "results at a glance" table: one row per claim found under ``metrics.claims`` of the results records.

    Columns: claim, chapter, paper, measure, minimal effect (and its source), ours (estimate with CI), MDE,
    estimator, control, surface margin, test positives, verdict, why. Records without claims are skipped; a
    malformed claim raises ValueError naming its chapter.
    """
    rows = []
    for record in results:
        for raw in (record.get("metrics") or {}).get("claims", []):
            try:
                ev = _as_evidence(raw)
            except (TypeError, ValueError) as err:
                raise ValueError(f"results {record.get('name')!r}: malformed claim: {err}") from err
            v, why = verdict_and_reason(ev)
            sm = ev.surface_margin
            measured = not ev.not_testable
            rows.append(
                {
                    "claim": ev.claim,
                    "chapter": ev.chapter,
                    "paper": ev.paper,
                    "measure": ev.measure,
                    "minimal effect": _minimal_text(ev),
                    "minimal effect from": ev.minimal_effect_source or "-",
                    "ours (95% CI)": format_ci(ev.estimate, ev.ci_low, ev.ci_high) if measured else "-",
                    "MDE": "-" if ev.mde is None else _num(ev.mde),
                    "estimator": ev.estimator or "-",
                    "control": ev.control or "-",
                    "over surface baseline": "-" if sm is None else format_ci(*sm),
                    "tasks (fewest test positives)": f"{_count(ev)} ({ev.min_test_positives} {ev.positives})"
                    if measured
                    else "-",
                    "verdict": v,
                    "why": why,
                    "estimate": ev.estimate if measured else math.nan,
                    "ci_low": ev.ci_low if measured else math.nan,
                    "ci_high": ev.ci_high if measured else math.nan,
                    "minimal": ev.minimal_effect if measured else math.nan,
                }
            )
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


TABLE_COLUMNS = (
    "claim",
    "chapter",
    "paper",
    "measure",
    "minimal effect",
    "minimal effect from",
    "ours (95% CI)",
    "MDE",
    "estimator",
    "control",
    "over surface baseline",
    "tasks (fewest test positives)",
    "verdict",
    "why",
    "estimate",
    "ci_low",
    "ci_high",
    "minimal",
)
"""The columns of :func:`verdict_table`."""

GLANCE_COLUMNS = ("claim", "ours (95% CI)", "minimal effect", "verdict")
"""The columns of the "results at a glance" table on the book's first page, narrow enough for a phone; the paper's
statement, the measure, the estimator, the MDE and the verdict's reason follow the table, one item per claim."""


def _names(table: pd.DataFrame, verdicts: Sequence[str]) -> str:
    claims = table.loc[table["verdict"].isin(verdicts), "claim"].tolist()
    return ", ".join(claims)


def bottom_line(table: pd.DataFrame) -> str:
    """Three sentences for the top of the book: how many claims were tested, which reproduced and which did not (or
    only in part), and which the experiments could not decide or could not test."""
    counts = Counter(table["verdict"])
    testable = len(table) - counts["not testable here"]
    tally = ", ".join(f"{counts[v]} {v}" for v in VERDICTS if counts[v] and v != "not testable here")
    first = f"Of the paper's {len(table)} claims checked here, {testable} could be tested offline: {tally}."
    decided = [
        (label, _names(table, verdicts))
        for label, verdicts in (
            ("reproduced", ["reproduced"]),
            ("not reproduced", ["not reproduced"]),
            ("opposite to the paper", ["differs"]),
            ("reproduced in some parts and not in others", ["differs in part"]),
        )
    ]
    second = "; ".join(f"{label}: {names}" for label, names in decided if names)
    second = (second[0].upper() + second[1:] + ".") if second else "No claim was decided either way."
    open_ = _names(table, ["inconclusive"])
    untestable = _names(table, ["not testable here"])
    third = " ".join(
        filter(None, [
            f"Undecided at this sample size (see each claim's MDE): {open_}." if open_ else "",
            f"Not testable with the models and data available offline: {untestable}." if untestable else "",
        ])
    )  # fmt: skip
    return " ".join(filter(None, [first, second, third]))


def verdict_markdown(
    table: pd.DataFrame,
    *,
    link: bool = True,
    figure: str | None = None,
    labels: Iterable[str] | None = None,
    width: int | None = None,
) -> str:
    """The "results at a glance" section as MyST markdown: the bottom line (:func:`bottom_line`), the headline
    figure when ``figure`` names one (a path relative to the page; shown ``width`` CSS px wide, or the column's
    width), the tally of verdicts, a narrow table (with
    ``link``, a claim links to its box in its chapter when its :func:`claim_label` is among ``labels`` (all when
    None), else to the chapter), then per claim the paper's statement, the measure, the estimator, the MDE and
    the verdict's reason.

    With no claims recorded it says so in one sentence instead of printing an empty table.
    """
    if table.empty:
        return (
            "No chapter has recorded a claim yet: run the chapters (`make book`) to measure them; until then this "
            "book gives no verdict.\n"
        )
    counts = Counter(table["verdict"])
    tally = "; ".join(f"{v} {counts[v]}" for v in VERDICTS if counts[v])
    known = None if labels is None else set(labels)

    def cell(claim: str, chapter: str) -> str:
        label = claim_label(chapter, claim)
        if not link:
            return claim
        if known is None or label in known:
            return f"{{ref}}`{claim} <{label}>`"
        return f"{{doc}}`{claim} <executed/{chapter}>`"

    cells = table.assign(
        claim=[cell(c, ch) for c, ch in zip(table["claim"], table["chapter"], strict=True)],
        verdict=[f"**{v}**" for v in table["verdict"]],
    )
    header = "| " + " | ".join(GLANCE_COLUMNS) + " |"
    rule = "|" + "---|" * len(GLANCE_COLUMNS)
    rows = [
        "| " + " | ".join(str(row[c]).replace("|", "/") for c in GLANCE_COLUMNS) + " |" for _, row in cells.iterrows()
    ]
    how = []
    for _, row in table.iterrows():
        where = f"{{doc}}`executed/{row['chapter']}`" if link else row["chapter"]
        text = f"- *{row['claim']}* ({where}). Paper: {row['paper']}."
        if row["estimator"] != "-":
            text += f" Ours: {row['measure']}; {row['estimator']}; MDE {row['MDE']}."
        how.append(text + f" **{row['verdict']}**: {row['why']}.")
    top = f"**Bottom line.** {bottom_line(table)}\n\n"
    if figure:
        top += (
            f"```{{figure}} {figure}\n:width: {f'{width}px' if width else '100%'}\n:name: fig-glance\n\n"
            "Each tested claim: our estimate with its 95% interval, divided by the claim's minimal effect of interest "
            "(dotted line at 1: the smallest effect that still counts as the paper's finding; solid line at 0: no "
            "effect). An interval wholly right of 1 reproduces the claim, one wholly left of 1 does not; "
            "colour: the verdict. A claim with parts (per model, per control) has one row per part.\n```\n\n"
        )
    return (
        top
        + f"**{len(table)} claims:** {tally}.\n\n"
        + "\n".join([header, rule, *rows])
        + "\n\n**Each claim.**\n\n"
        + "\n".join(how)
        + "\n"
    )


def _evidence_line(ev: ClaimEvidence) -> str:
    if ev.not_testable:
        if _finite(ev.estimate, ev.ci_low, ev.ci_high):
            return f"{ev.measure}: {format_ci(ev.estimate, ev.ci_low, ev.ci_high)} (a description, not a test)"
        return f"{ev.measure}: not measured here"
    parts = [f"{ev.measure}: {format_ci(ev.estimate, ev.ci_low, ev.ci_high)}"]
    parts.append(f"minimal effect of interest {_minimal_text(ev)}")
    parts.append("MDE not computed" if ev.mde is None else f"MDE {_num(ev.mde)}")
    if ev.surface_margin is not None:
        parts.append(f"over the best surface baseline {format_ci(*ev.surface_margin)}")
    if ev.control:
        parts.append(f"control: {ev.control}")
    if ev.estimator:
        parts.append(ev.estimator)
    parts.append(f"{_count(ev)}, fewest {ev.positives} {ev.min_test_positives}")
    return "; ".join(parts)


def claim_label(chapter: str, claim: str) -> str:
    """The cross-reference label of a claim's box in its chapter (the glance table links to it)."""
    slug = re.sub(r"[^a-z0-9]+", "-", claim.lower()).strip("-")
    return f"claim-{chapter.replace('_', '-')}-{slug}"


def verdict_box(claims: Iterable[ClaimEvidence | Mapping[str, Any]]) -> str:
    """MyST markdown that opens a chapter: per claim, the paper's statement and minimal effect, our result and the
    verdict with its reason. Parts are listed under their claim with their own verdicts."""
    blocks = []
    for raw in claims:
        ev = _as_evidence(raw)
        v, why = verdict_and_reason(ev)
        lines = [f"**Paper:** {ev.paper}", ""]
        if ev.minimal_effect_source:
            lines += [f"**Minimal effect of interest:** {_minimal_text(ev)} ({ev.minimal_effect_source})", ""]
        lines.append(f"**Ours:** {_evidence_line(ev)}.")
        for part in ev.parts:
            pv, pwhy = verdict_and_reason(part)
            lines.append(f"- {part.claim}: {_evidence_line(part)}. *{pv}* ({pwhy}).")
        lines += ["", f"**Verdict: {v}** ({why})."]
        head = f"````{{admonition}} Claim: {ev.claim}\n:class: note\n"
        if ev.chapter:
            head += f":name: {claim_label(ev.chapter, ev.claim)}\n"
        blocks.append(head + "\n".join(lines) + "\n````")
    if not blocks:
        return "This run recorded no claim.\n"
    return "\n\n".join(blocks) + "\n"


def findings_box(title: str, body: str) -> str:
    """MyST markdown that opens a chapter without a claim of the paper to decide (data, ground truth, survey): what
    the chapter establishes, as an admonition in the style of :func:`verdict_box`."""
    return f"````{{admonition}} {title}\n:class: note\n{body.strip()}\n````\n"


def _change(ev: ClaimEvidence) -> str:
    v, _ = verdict_and_reason(ev)
    if v == "not testable here":
        return ev.not_testable
    if ev.parts:
        if v == "differs in part":
            return "the parts that disagree reaching the same verdict on more data would settle it; see each part"
        return "every part would have to change; see each part"
    if math.isnan(ev.minimal_effect):
        return "re-running its chapter records the minimal effect this verdict needs"
    if ev.min_test_positives < MIN_TEST_POSITIVES:
        return (
            f"more data: at least {MIN_TEST_POSITIVES} {ev.positives} in every {ev.unit} (now "
            f"{ev.min_test_positives}) would allow a verdict"
        )
    if ev.n_tasks < MIN_TASKS:
        return f"more {ev.unit}s: at least {MIN_TASKS} (now {ev.n_tasks}) would allow a verdict"
    m = _num(ev.minimal_effect)
    if v == "inconclusive":
        if ev.ci_low > ev.minimal_effect:
            return "a surface-baseline margin whose CI clears 0 would make it reproduced"
        need = samples_to_resolve(ev.estimate, ev.ci_low, ev.ci_high, ev.minimal_effect, ev.n_tasks)
        return f"a narrower CI that clears the minimal effect {m} on either side" + (
            "" if need is None else f" (about {need} tasks at this spread)"
        )
    if v in _AGAINST:
        return (
            f"an effect with a CI above {m} in a larger or differently trained model (the paper used Pythia) would "
            "reverse it; this sample excludes it here"
        )
    return f"a CI reaching down to {m} on more data, or a surface baseline that matches the neurons, would weaken it"


def what_would_change(claims: Iterable[ClaimEvidence | Mapping[str, Any]]) -> str:
    """Markdown that closes a chapter: per claim, its verdict and what evidence would change it."""
    lines = []
    for raw in claims:
        ev = _as_evidence(raw)
        lines.append(f"- **{ev.claim}** ({verdict(ev)}): {_change(ev)}.")
    return "\n".join(lines) + "\n" if lines else "This run recorded no claim.\n"
