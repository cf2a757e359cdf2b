"""The champion gate: when a newly trained model may take the ``champion`` alias.

Pure logic, so the rule is tested without a registry. A refusal is a normal outcome with
a reason, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str


def decide_promotion(metric: str, candidate: float, min_value: float,
                     champion: float | None, max_drop: float,
                     champion_version: str | None = None) -> GateDecision:
    """Promote if the candidate clears the absolute floor and is no worse than the champion
    (by more than ``max_drop``) on the same test data; higher is better for every metric."""
    if candidate != candidate:  # NaN
        return GateDecision(False, f"{metric} is NaN; the model cannot be judged")
    if candidate < min_value:
        return GateDecision(
            False, f"{metric} {candidate:.4f} is below the floor min_value={min_value:.4f}")
    if champion is None:
        return GateDecision(
            True, f"{metric} {candidate:.4f} clears the floor {min_value:.4f}; no champion yet")
    if candidate < champion - max_drop:
        return GateDecision(
            False,
            f"{metric} {candidate:.4f} is worse than champion v{champion_version} "
            f"({champion:.4f}) on the same test data by more than max_drop={max_drop:.4f}",
        )
    return GateDecision(
        True,
        f"{metric} {candidate:.4f} clears the floor {min_value:.4f} and is no worse than "
        f"champion v{champion_version} ({champion:.4f}) on the same test data",
    )
