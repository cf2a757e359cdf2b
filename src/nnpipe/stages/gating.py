"""The champion gate applied to a registered version: the rule from params, the judgement
of a candidate against a champion that was (or could not be) re-scored, the champion's
predictor loaded to re-score it, and a decision already recorded on the version.

The pure rule (bound, tolerance, direction) is :mod:`nnpipe.champion_gate`; this module is
its wiring to the MLflow registry, shared by every domain's register stage.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from nnpipe import tracking
from nnpipe.champion_gate import GateDecision, decide_promotion
from nnpipe.errors import RefusedModelError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GateRule:
    metric: str
    bound: float  # floor (higher is better) or ceiling (lower is better)
    tolerance: float  # allowed shortfall against the current champion
    higher_is_better: bool
    allow_incomparable: bool
    allow_incomparable_key: str  # the params key, for the message


@dataclass(frozen=True)
class Verdict:
    """The gate's decision on a version, and the champion it was judged against: its
    version, its re-scored gate metric (None when it could not be) and how it was scored."""

    decision: GateDecision
    champion: tracking.ModelVersionInfo | None
    champion_value: float | None
    how: str


# How load_champion says the champion was refused: serving refuses it as well (a version
# registered before sha256 lineage, or tampered), so it cannot hold its place against a
# candidate; the candidate is judged by the bound alone.
REFUSED_CHAMPION = "the champion was refused by the safe loader"


def judge(
    rule: GateRule,
    candidate: float,
    champion: tracking.ModelVersionInfo | None,
    champion_value: float | None,
    how: str,
) -> GateDecision:
    """Whether ``candidate`` takes ``champion``: by the bound and the champion's re-scored
    value, or by the bound alone when the champion was refused or (if allowed) could not
    be compared."""
    if champion is not None and champion_value is None:
        return _judge_without_champion_value(rule, candidate, champion, how)
    return decide_promotion(
        rule.metric,
        candidate,
        rule.bound,
        champion_value,
        rule.tolerance,
        champion.version if champion else None,
        higher_is_better=rule.higher_is_better,
    )


def _judge_without_champion_value(
    rule: GateRule, candidate: float, champion: tracking.ModelVersionInfo, how: str
) -> GateDecision:
    bound_only = decide_promotion(
        rule.metric,
        candidate,
        rule.bound,
        None,
        rule.tolerance,
        higher_is_better=rule.higher_is_better,
    )
    if how.startswith(REFUSED_CHAMPION):
        return GateDecision(
            bound_only.promote,
            f"{bound_only.reason}; not compared with v{champion.version}: "
            f"{how}, and serving refuses it too",
        )
    if not rule.allow_incomparable:
        return GateDecision(
            False,
            f"the current champion v{champion.version} cannot be "
            f"compared on the same test data ({how}); set "
            f"{rule.allow_incomparable_key}=true to judge by the bound only",
        )
    return bound_only


def load_champion(model_name: str) -> tuple[Any | None, str]:
    """The current champion's predictor, loaded from its deploy folder by serving's safe
    loader (never through its MLflow pyfunc, whose bundled code would run), or None and
    why it cannot be: it is not a deployable nnpipe version, or it was refused."""
    from nnpipe.serving.predictor import load_predictor
    from nnpipe.serving.registry import ModelNotFoundError, resolve_here

    try:
        found = resolve_here(model_name, "champion")
        return load_predictor(found.deploy_dir), ""
    except ModelNotFoundError as exc:
        return None, f"the champion is not a deployable version nnpipe can re-score ({exc})"
    except RefusedModelError as exc:
        log.warning("register: %s@champion refused, not re-scored: %s", model_name, exc)
        return None, f"{REFUSED_CHAMPION} ({exc})"


def recorded_verdict(
    version: tracking.ModelVersionInfo,
    champion: tracking.ModelVersionInfo | None,
) -> Verdict | None:
    """The verdict recorded on ``version`` when it is the champion already (a run killed
    after moving the alias, then run again), with the champion it was judged against;
    None when it must be judged (anew)."""
    tags = version.tags
    if champion is None or champion.version != version.version or "gate.reason" not in tags:
        return None
    before = tags.get("gate.champion_before") or None
    value = tags.get("gate.champion_before_value") or None
    previous = tracking.ModelVersionInfo(version.name, before, None, {}) if before else None
    return Verdict(
        GateDecision(tags.get("gate.promoted") == "True", tags["gate.reason"]),
        previous,
        float(value) if value is not None else None,
        tags.get("gate.champion_before_scored", "recorded when it was registered"),
    )


def verdict_tags(verdict: Verdict) -> dict[str, Any]:
    """The version tags that record a verdict (read back by :func:`recorded_verdict`)."""
    champion, value = verdict.champion, verdict.champion_value
    return {
        "gate.promoted": verdict.decision.promote,
        "gate.reason": verdict.decision.reason,
        "gate.champion_before": champion.version if champion else "",
        "gate.champion_before_value": "" if value is None else value,
        "gate.champion_before_scored": verdict.how,
    }
