"""The drift statistics the monitor runs, each comparing a current sample with the model's
reference sample and saying, with its own number, whether they differ: a p-value where
the test has one (Kolmogorov-Smirnov, chi-square, the kernel MMD's permutation test), an
effect size where size matters more than significance (the population stability index).

scipy's tests, not hand-written ones, wherever scipy has the test; the MMD permutation
test and the PSI, which scipy lacks, are written here (a few lines each, tested against
their definitions).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

Kind = Literal["p_value", "effect"]


class Check(BaseModel):
    """One comparison: drifted when the p-value is below the threshold (``p_value``), or
    when the statistic is above it (``effect``)."""

    model_config = ConfigDict(extra="forbid")

    name: str  # what it compares: "embedding", "intensity_mean", "log_return", ...
    method: str  # "ks", "psi", "mmd", "chi2"
    statistic: float
    p_value: float | None
    threshold: float
    kind: Kind
    drifted: bool
    reference_n: int
    current_n: int
    reference_summary: dict[str, float] = {}
    current_summary: dict[str, float] = {}
    note: str = ""

    @classmethod
    def judged(
        cls,
        name: str,
        method: str,
        statistic: float,
        p_value: float | None,
        threshold: float,
        sizes: tuple[int, int],
        **extra: Any,
    ) -> Check:
        """A check's result, drifted by its threshold: a p-value below it, or (with no
        p-value) a statistic above it."""
        kind: Kind = "p_value" if p_value is not None else "effect"
        drifted = p_value < threshold if p_value is not None else statistic > threshold
        return cls(
            name=name,
            method=method,
            statistic=statistic,
            p_value=p_value,
            threshold=threshold,
            kind=kind,
            drifted=drifted,
            reference_n=sizes[0],
            current_n=sizes[1],
            **extra,
        )


def summary(values: np.ndarray) -> dict[str, float]:
    """A sample's mean, spread and quantiles, for a report's reference and current side."""
    if values.size == 0:
        return {}
    q = np.quantile(values, [0.05, 0.5, 0.95])
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "p05": float(q[0]),
        "median": float(q[1]),
        "p95": float(q[2]),
    }


def _numbers(values: Sequence[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    return array[np.isfinite(array)]


def ks_check(name: str, reference: np.ndarray, current: np.ndarray, alpha: float) -> Check:
    """Two-sample Kolmogorov-Smirnov (scipy.stats.ks_2samp): any change of a continuous
    distribution's shape, location or spread."""
    from scipy.stats import ks_2samp

    ref, cur = _numbers(reference), _numbers(current)
    result = ks_2samp(ref, cur)
    return Check.judged(
        name,
        "ks",
        float(result.statistic),
        float(result.pvalue),
        alpha,
        (len(ref), len(cur)),
        reference_summary=summary(ref),
        current_summary=summary(cur),
    )


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """The population stability index over the reference's quantile bins:
    sum((c - r) * ln(c / r)) of the two samples' bin shares (0: the same; above 0.2 is
    commonly read as a significant shift, above 0.1 as a moderate one)."""
    ref, cur = _numbers(reference), _numbers(current)
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:  # a constant reference: one bin for its value, one for the rest
        r = np.array([1.0, 0.0])
        c = np.array([np.mean(cur == ref[0]), np.mean(cur != ref[0])])
    else:
        inner = edges[1:-1]
        r = np.bincount(np.searchsorted(inner, ref, side="right"), minlength=len(edges) - 1)
        c = np.bincount(np.searchsorted(inner, cur, side="right"), minlength=len(edges) - 1)
        r, c = r / r.sum(), c / c.sum()
    return psi_of_shares(r, c)


def psi_of_shares(reference: np.ndarray, current: np.ndarray) -> float:
    """The population stability index of two distributions given as bin shares."""
    eps = 1e-4  # an empty bin would make the index infinite
    r = np.clip(np.asarray(reference, np.float64), eps, None)
    c = np.clip(np.asarray(current, np.float64), eps, None)
    r, c = r / r.sum(), c / c.sum()
    return float(np.sum((c - r) * np.log(c / r)))


def psi_shares_check(
    name: str,
    reference: np.ndarray,
    current: np.ndarray,
    threshold: float,
    reference_n: int,
    current_n: int,
) -> Check:
    """The PSI of two binned distributions (the pooled intensity histograms)."""
    return Check.judged(
        name,
        "psi",
        psi_of_shares(reference, current),
        None,
        threshold,
        (reference_n, current_n),
        reference_summary={f"bin_{i:02d}": float(v) for i, v in enumerate(reference)},
        current_summary={f"bin_{i:02d}": float(v) for i, v in enumerate(current)},
    )


def psi_check(
    name: str, reference: np.ndarray, current: np.ndarray, threshold: float, bins: int = 10
) -> Check:
    ref, cur = _numbers(reference), _numbers(current)
    return Check.judged(
        name,
        "psi",
        psi(ref, cur, bins),
        None,
        threshold,
        (len(ref), len(cur)),
        reference_summary=summary(ref),
        current_summary=summary(cur),
    )


def chi2_check(name: str, reference: Sequence[str], current: Sequence[str], alpha: float) -> Check:
    """Chi-square test of homogeneity (scipy.stats.chi2_contingency) of a categorical
    value (an image's mode); a value only one side has is drift by itself."""
    from scipy.stats import chi2_contingency

    categories = sorted(set(reference) | set(current))
    table = np.array(
        [
            [list(reference).count(v) for v in categories],
            [list(current).count(v) for v in categories],
        ]
    )
    if len(categories) == 1:
        statistic, p = 0.0, 1.0
    else:
        result = chi2_contingency(table)
        statistic, p = float(result.statistic), float(result.pvalue)
    shares = {
        side: {v: float(n / max(row.sum(), 1)) for v, n in zip(categories, row, strict=True)}
        for side, row in zip(("reference", "current"), table, strict=True)
    }
    return Check.judged(
        name,
        "chi2",
        statistic,
        p,
        alpha,
        (len(reference), len(current)),
        reference_summary=shares["reference"],
        current_summary=shares["current"],
    )


def mmd_permutation_test(
    reference: np.ndarray,
    current: np.ndarray,
    permutations: int = 500,
    seed: int = 0,
    max_samples: int = 500,
) -> tuple[float, float]:
    """The kernel two-sample test (Gretton et al., 2012): the squared maximum mean
    discrepancy between the samples with a Gaussian kernel (bandwidth: the median
    pairwise distance of the pooled sample), and its p-value by permuting the pooled
    sample's labels. Each side is subsampled to ``max_samples`` (the kernel matrix is
    square in the pooled size)."""
    rng = np.random.default_rng(seed)
    x = np.asarray(reference, dtype=np.float64)
    y = np.asarray(current, dtype=np.float64)
    if len(x) > max_samples:
        x = x[rng.choice(len(x), max_samples, replace=False)]
    if len(y) > max_samples:
        y = y[rng.choice(len(y), max_samples, replace=False)]
    pooled = np.concatenate([x, y]).reshape(len(x) + len(y), -1)
    sq = np.sum(pooled**2, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * pooled @ pooled.T, 0.0)
    upper = d2[np.triu_indices(len(pooled), k=1)]
    bandwidth2 = float(np.median(upper[upper > 0])) if np.any(upper > 0) else 1.0
    kernel = np.exp(-d2 / bandwidth2)
    n, m = len(x), len(y)
    diagonal = np.diag(kernel)

    def mmd2(labels: np.ndarray) -> np.ndarray:
        """MMD² (unbiased: a point's kernel with itself left out) for each column of
        ``labels`` (1: reference, 0: current), in one matrix product."""
        a = labels.astype(np.float64)
        b = 1.0 - a
        ka = kernel @ a
        xx = (np.sum(a * ka, axis=0) - diagonal @ a) / (n * (n - 1))
        yy = (np.sum(b * (kernel @ b), axis=0) - diagonal @ b) / (m * (m - 1))
        xy = np.sum(b * ka, axis=0) / (n * m)
        return xx + yy - 2 * xy

    labels = np.zeros(n + m, dtype=bool)
    labels[:n] = True
    observed = float(mmd2(labels[:, None])[0])
    shuffled = np.stack([rng.permutation(labels) for _ in range(permutations)], axis=1)
    exceed = int(np.sum(mmd2(shuffled) >= observed))
    return observed, (exceed + 1) / (permutations + 1)


def mmd_check(
    name: str,
    reference: np.ndarray,
    current: np.ndarray,
    alpha: float,
    permutations: int = 500,
    seed: int = 0,
) -> Check:
    statistic, p = mmd_permutation_test(reference, current, permutations, seed)
    return Check.judged(
        name,
        "mmd",
        statistic,
        p,
        alpha,
        (len(reference), len(current)),
        note=f"Gaussian-kernel MMD², {permutations} permutations, at most 500 rows a side",
    )
