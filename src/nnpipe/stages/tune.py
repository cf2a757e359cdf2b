"""tune: search the domain's hyper-parameters (``<domain>.tune``); train then applies the
best values over ``<domain>.train``.

Each trial is fitted by the domain's own training code for the epochs its round gives
(:class:`nnpipe.domains.contract.TuningPart`: X-ray scores validation ROC-AUC, OHLCV the
validation loss averaged over its series). See :mod:`nnpipe.stages.tuning` for the search
and its outputs.
"""

from __future__ import annotations

from typing import Any

from nnpipe.config import Params
from nnpipe.domains.registry import get_domain
from nnpipe.stages import cli_main
from nnpipe.stages.tuning import run_tuning


def fit_trial(
    params: Params, domain: str, values: dict[str, Any], epochs: int
) -> list[dict[str, Any]]:
    """One trial, by the domain's part (a module-level function: Dask sends it to its
    workers by reference)."""
    return get_domain(domain).tuning().fit_trial(params, values, epochs)


def run(params: Params, domain: str) -> dict:
    return run_tuning(params, domain, fit_trial, get_domain(domain).tuning().objective)


def main(argv: list[str] | None = None) -> int:
    return cli_main(__spec__.name, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
