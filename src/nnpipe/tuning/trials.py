"""Running one trial, wherever it runs (this process or a Dask worker): the domain's
``tune`` stage supplies its ``fit_trial`` (a module-level function, so Dask sends it by
reference); any failure becomes a failed result.

Everything a trial needs travels in its arguments (params as plain data, the project
folder), so a worker process imports nothing from the caller. A remote Dask worker must
see the project folder at the same path (a shared filesystem) to read the features.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnpipe.tuning.search import Objective, TrialResult, TrialSpec, best_of_history

if TYPE_CHECKING:
    from nnpipe.config import Params

log = logging.getLogger(__name__)

# (params, domain, the trial's values, epochs) -> the per-epoch history
FitTrial = Callable[["Params", str, dict[str, Any], int], list[dict[str, Any]]]


def execute_trial(
    fit_trial: FitTrial,
    domain: str,
    raw_params: dict[str, Any],
    root: str,
    spec: TrialSpec,
    objective: Objective,
) -> TrialResult:
    """Fit one configuration for ``spec.epochs`` epochs and score it on validation.

    Never raises for the trial's own failure: a NaN loss or any error is the result's
    ``reason``, so the search can go on.
    """
    from nnpipe.config import validate_params

    started, clock = time.time(), time.monotonic()
    result = TrialResult(
        spec.trial_id,
        spec.values,
        spec.epochs,
        "failed",
        started=started,
        worker=f"{socket.gethostname()}:{os.getpid()}",
    )
    if not Path(root).is_dir():
        result.reason = (
            f"the project folder {root} is not visible on this worker; remote "
            "Dask workers need the project on a shared filesystem at the same path"
        )
        return result
    old = Path.cwd()
    os.chdir(root)  # params' paths are relative to the project
    try:
        params = validate_params(raw_params)
        history = fit_trial(params, domain, spec.values, spec.epochs)
        result.history = history
        result.objective, result.best_epoch = best_of_history(history, objective)
        if result.objective is None:
            result.reason = f"no epoch has a finite {objective.name} (the loss diverged)"
        else:
            result.status = "completed"
    except Exception as exc:  # a trial's failure is its result, the search goes on
        log.warning("trial %s failed: %s: %s", spec.trial_id, type(exc).__name__, exc)
        result.reason = f"{type(exc).__name__}: {exc}"[:500]
    finally:
        os.chdir(old)
        result.seconds = time.monotonic() - clock
    return result
