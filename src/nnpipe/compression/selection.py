"""Choosing the variant to deploy from the measured table: a rule, written once, that
both domains parameterise (which metric, which parity check, in which direction).

The rule: among the candidates that were built, keep those whose test metric is within
the tolerance of the Keras reference's and whose parity with the reference passes; of
those the smallest wins, sizes within ``size_tie`` of the smallest counting as a tie that
the lower median latency breaks. Nothing qualifies: the reference, or nothing, as the
fallback says. Every variant gets a verdict saying why it was or was not chosen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nnpipe.compression.table import REFERENCE


@dataclass(frozen=True)
class SelectionRule:
    metric: str
    higher_is_better: bool  # of the metric
    tolerance: float  # how much worse than the reference the metric may be
    parity: str
    parity_bound: float
    parity_higher_is_better: bool  # agreement: at least the bound; a difference: at most
    rank_by: str = "size_bytes"
    size_tie: float = 0.05
    candidates: Sequence[str] | None = None  # None: every variant but the reference
    fallback: str = "reference"  # reference | none


def rule_from_params(
    promote: Any,
    *,
    metric: str,
    higher_is_better: bool,
    parity: str,
    parity_bound: float,
    parity_higher_is_better: bool,
) -> SelectionRule:
    """A domain's rule: its metric and parity check, the shared settings from params."""
    return SelectionRule(
        metric=metric,
        higher_is_better=higher_is_better,
        tolerance=promote.metric_tolerance,
        parity=parity,
        parity_bound=parity_bound,
        parity_higher_is_better=parity_higher_is_better,
        rank_by=promote.rank_by,
        size_tie=promote.size_tie,
        candidates=promote.candidates,
        fallback=promote.fallback,
    )


@dataclass(frozen=True)
class Selection:
    variant: str | None  # None: nothing is deployed
    reason: str
    verdicts: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"variant": self.variant, "reason": self.reason, "verdicts": self.verdicts}


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def judge_variant(row: Mapping, reference: Mapping, rule: SelectionRule) -> str | None:
    """Why ``row`` cannot be deployed under ``rule``, or None when it can."""
    if row.get("status") != "ok":
        return f"unsupported: {row.get('reason')}"
    value, ref = row.get(rule.metric), reference.get(rule.metric)
    if value is None or ref is None:
        return f"no {rule.metric} was measured"
    shortfall = (ref - value) if rule.higher_is_better else (value - ref)
    if shortfall > rule.tolerance + 1e-12:
        return (
            f"{rule.metric} {_fmt(value)} is {_fmt(shortfall)} worse than the reference's "
            f"{_fmt(ref)} (tolerance {_fmt(rule.tolerance)})"
        )
    parity = row.get(rule.parity)
    if parity is None:
        return f"no {rule.parity} was measured"
    fails = (
        parity < rule.parity_bound if rule.parity_higher_is_better else parity > rule.parity_bound
    )
    if fails:
        side = "below the minimum" if rule.parity_higher_is_better else "above the maximum"
        return f"{rule.parity} {_fmt(parity)} is {side} {_fmt(rule.parity_bound)}"
    return None


def judge_candidates(
    rows: Mapping[str, Mapping], reference: Mapping, rule: SelectionRule
) -> tuple[list[str], dict[str, str]]:
    """The variants that qualify, and each variant's verdict."""
    names = (
        [n for n in rows if n != REFERENCE]
        if rule.candidates is None
        else [n for n in rule.candidates if n in rows]
    )
    verdicts: dict[str, str] = {}
    eligible = []
    for name in rows:
        if name not in names:
            verdicts[name] = "not a candidate (promote.candidates)"
            continue
        problem = judge_variant(rows[name], reference, rule)
        verdicts[name] = problem or "qualifies"
        if problem is None:
            eligible.append(name)
    return eligible, verdicts


def select_variant(rows: Mapping[str, Mapping], rule: SelectionRule) -> Selection:
    """Apply ``rule`` to the variant table ``rows`` (name -> measured row)."""
    reference = rows.get(REFERENCE)
    if reference is None or reference.get("status") != "ok":
        return Selection(
            None, "the Keras reference was not measured, so no variant can be compared with it", {}
        )
    eligible, verdicts = judge_candidates(rows, reference, rule)
    if not eligible:
        why = "no candidate variant qualifies"
        if rule.fallback == "reference":
            verdicts[REFERENCE] = "chosen: the fallback"
            return Selection(
                REFERENCE,
                f"{why}; the Keras reference is deployed (promote.fallback=reference)",
                verdicts,
            )
        return Selection(None, f"{why}; nothing is deployed (promote.fallback=none)", verdicts)
    smallest = min(rows[n][rule.rank_by] for n in eligible)
    tied = [n for n in eligible if rows[n][rule.rank_by] <= smallest * (1 + rule.size_tie)]
    chosen = min(
        tied, key=lambda n: (rows[n].get("latency_ms_median", float("inf")), rows[n][rule.rank_by])
    )
    ref_size = reference[rule.rank_by]
    reason = (
        f"{chosen}: the smallest variant that qualifies ({rule.rank_by} "
        f"{rows[chosen][rule.rank_by] / ref_size:.3f}x the reference; {rule.metric} "
        f"{_fmt(rows[chosen][rule.metric])} vs {_fmt(reference[rule.metric])}; "
        f"{rule.parity} {_fmt(rows[chosen][rule.parity])})"
    )
    if len(tied) > 1:
        reason += (
            f"; tied within {rule.size_tie:.0%} of the smallest size with "
            f"{', '.join(n for n in tied if n != chosen)}, fastest wins"
        )
    verdicts[chosen] = "chosen"
    return Selection(chosen, reason, verdicts)
