"""Prefect on Dask: tuning trials as Prefect tasks on a Dask cluster, a local one by
default or a running scheduler named in params (``<domain>.tune.dask.address``).

The whole search runs inside one small flow (``<domain>-tune-trials``) whose task runner
is a ``DaskTaskRunner``, so the cluster starts once per search; each batch of trials the
oracle proposes becomes concurrent tasks. Called from the pipeline's flow it is a nested
flow run; from ``dvc repro`` a flow run of its own. Local workers are told the API of the
Prefect server this process uses, so they do not each start a temporary one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from nnpipe.config import DaskCluster
from nnpipe.tuning.search import SearchResult, TrialResult, TrialSpec

log = logging.getLogger(__name__)

Executor = Callable[[list[TrialSpec]], list[TrialResult]]


@task(name="tune-trial", cache_policy=NO_CACHE)
def run_trial(call: Callable[[TrialSpec], TrialResult], spec: TrialSpec) -> TrialResult:
    """One trial on a Dask worker (``call`` is a picklable partial of
    :func:`nnpipe.tuning.trials.execute_trial`)."""
    return call(spec)


def _api_url() -> str | None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return str(client.api_url)


def task_runner(settings: DaskCluster):
    from prefect_dask import DaskTaskRunner

    if settings.address:
        return DaskTaskRunner(address=settings.address)
    env: dict[str, Any] = {"TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")}
    api = _api_url()
    if api:
        env["PREFECT_API_URL"] = api
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": settings.workers,
            "threads_per_worker": settings.threads_per_worker,
            "processes": True,
            "dashboard_address": None,
            "silence_logs": logging.WARNING,
            "env": env,
        }
    )


def search_on_dask(
    name: str,
    settings: DaskCluster,
    call: Callable[[TrialSpec], TrialResult],
    search: Callable[[Executor], SearchResult],
) -> SearchResult:
    """Run ``search`` (given an executor) inside a flow on Dask; trials run through ``call``."""

    def run_batch(specs: list[TrialSpec]) -> list[TrialResult]:
        futures = [
            run_trial.with_options(task_run_name=f"trial-{s.trial_id}").submit(call, s)
            for s in specs
        ]
        return [f.result() for f in futures]

    @flow(name=name, task_runner=task_runner(settings), log_prints=False)
    def tune_trials() -> SearchResult:
        return search(run_batch)

    log.info(
        "tuning on Dask: %s",
        settings.address or f"a local cluster of {settings.workers} worker process(es)",
    )
    return tune_trials()
