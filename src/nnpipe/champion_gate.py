"""The champion gate: when a newly trained model may take the ``champion`` alias.

Pure logic, so the rule is tested without a registry. A refusal is a normal outcome with
a reason, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass

from nnpipe.artifacts import RegistrationRecord


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str


def decide_promotion(
    metric: str,
    candidate: float,
    bound: float,
    champion: float | None,
    tolerance: float,
    champion_version: str | None = None,
    *,
    higher_is_better: bool = True,
) -> GateDecision:
    """Promote if the candidate clears the absolute bound and is no worse than the champion
    (by more than ``tolerance``) on the same test data.

    With ``higher_is_better`` (AUC, accuracy) the bound is a floor the candidate must
    reach; otherwise (errors such as MASE) it is a ceiling the candidate must stay below.
    """
    if candidate != candidate:  # NaN
        return GateDecision(False, f"{metric} is NaN; the model cannot be judged")
    if higher_is_better and candidate < bound:
        return GateDecision(
            False, f"{metric} {candidate:.4f} is below the floor min_value={bound:.4f}"
        )
    if not higher_is_better and not candidate < bound:
        return GateDecision(
            False, f"{metric} {candidate:.4f} is not below the ceiling max_value={bound:.4f}"
        )
    clears = (
        f"{metric} {candidate:.4f} clears the "
        f"{'floor' if higher_is_better else 'ceiling'} {bound:.4f}"
    )
    if champion is None:
        return GateDecision(True, f"{clears}; no champion yet")
    worse = (
        candidate < champion - tolerance if higher_is_better else candidate > champion + tolerance
    )
    if worse:
        return GateDecision(
            False,
            f"{metric} {candidate:.4f} is worse than champion v{champion_version} "
            f"({champion:.4f}) on the same test data by more than {tolerance:.4f}",
        )
    return GateDecision(
        True,
        f"{clears} and is no worse than champion v{champion_version} ({champion:.4f}) "
        "on the same test data",
    )


def gate_metrics(record: RegistrationRecord) -> dict[str, float]:
    """A registration record's verdict as numbers, so ``dvc metrics diff`` and ``dvc exp
    show`` compare it: ``promoted`` and ``registered`` are 1 or 0, ``candidate`` the gate
    metric of the deployed variant, ``champion_before`` the old champion's on the same
    data (where there was one to compare)."""
    numbers = {"promoted": float(record.promoted), "registered": float(record.registered)}
    for value, name in (
        (record.candidate_value, "candidate"),
        (record.champion_before_value, "champion_before"),
    ):
        if value is not None:
            numbers[name] = float(value)
    return numbers
