"""The one registry of pipeline stages, used by ``dvc.yaml`` (generated from it) and the
Prefect flows alike, gathered from the domains' declarations (``nnpipe.domains.registry``).

Each domain has its own pipeline of steps (``ingest``, ``featurize``, ``tune``, ``train``,
``evaluate``, ``compress``, ``promote``, ``register``); a step's code is the module
``nnpipe.domains.<domain>.stages.<step>``, its ``dvc.yaml`` stage and its Prefect task are
both named ``<domain>-<step>`` (``dvc repro xray-train``). Each module has
``run(params, domain)``, which does the step's file I/O around core calls, and a small
``main()`` for the command line (through :func:`cli_main`). Stages are written out per
domain, not as one ``foreach``, so each stage depends on its own domain's code only:
editing the OHLCV code never re-runs the X-ray training. Nothing here imports a stage
module until it is asked for.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from nnpipe.config import PARAMS_FILE, Params, load_params
from nnpipe.domains.contract import Output, Stage
from nnpipe.domains.registry import DOMAINS
from nnpipe.errors import NnpipeError, report_errors
from nnpipe.logs import configure_logging
from nnpipe.prefect_env import prefect_defaults
from nnpipe.project_lock import clean_after_killed_runs, hold_project

log = logging.getLogger(__name__)

__all__ = ["PIPELINES", "STAGES", "STEPS", "Output", "Stage", "cli_main", "get_stage", "require"]


PIPELINES: dict[str, tuple[Stage, ...]] = {name: d.stages() for name, d in DOMAINS.items()}
STAGES: dict[str, Stage] = {s.name: s for stages in PIPELINES.values() for s in stages}
STEPS: tuple[str, ...] = tuple(dict.fromkeys(s.step for s in STAGES.values()))


def get_stage(step: str, domain: str) -> Stage:
    """The stage of one step in one domain, or a clear error naming what exists."""
    for stage in PIPELINES.get(domain, ()):
        if stage.step == step:
            return stage
    known = ", ".join(s.step for s in PIPELINES.get(domain, ()))
    raise NnpipeError(f"domain {domain!r} has no stage {step!r}; its stages: {known}")


class MissingInputError(NnpipeError, FileNotFoundError):
    """A stage's input is absent: the stage before it has not run (or failed)."""


def require(path: Path, producer: str, domain: str) -> Path:
    """Return ``path`` if it exists, else say which stage makes it and how to run it."""
    if not path.exists():
        raise MissingInputError(
            f"{path} does not exist; it is made by the {producer!r} stage. Run "
            f"`nnpipe stage {producer} --domain {domain}` or `dvc repro {domain}-{producer}`."
        )
    return path


@contextlib.contextmanager
def tracking_errors_reported() -> Iterator[None]:
    """A tracking server that does not answer is an outage, not a bug: its one plain
    line (naming the server and what to do), not MLflow's traceback."""
    try:
        yield
    except Exception as exc:
        if "mlflow" in sys.modules:  # only a stage that tracks can meet one
            from nnpipe.tracking_http import unavailable_error

            found = unavailable_error(exc)
            if found is not None:
                raise found from None
        raise


def cli_main(module_name: str, run: Callable[[Params, str], dict], argv: list[str] | None) -> int:
    """The ``main()`` of every stage module: parse --params/-S, run, report errors plainly.

    Modules pass ``__spec__.name``, their dotted name also under ``python -m``. A generic
    stage's module runs the step of any domain that has it: ``--domain`` picks one."""
    stages = {s.domain: s for s in STAGES.values() if s.module_name == module_name}
    first = next(iter(stages.values()))
    one = len(stages) == 1
    parser = argparse.ArgumentParser(
        prog=f"nnpipe stage {first.step}" + (f" --domain {first.domain}" if one else ""),
        description=first.description,
    )
    parser.add_argument(
        "--domain", default=first.domain if one else None, required=not one, choices=list(stages)
    )
    parser.add_argument("--params", default=PARAMS_FILE)
    parser.add_argument(
        "-S", "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE"
    )
    args = parser.parse_args(argv)
    configure_logging()
    prefect_defaults()  # a stage may run a flow of its own (tuning trials on Dask)
    stage = stages[args.domain]
    with report_errors(), hold_project(f"stage {stage.name}"):
        params = load_params(args.params, args.overrides)
        clean_after_killed_runs([params.paths.data, params.paths.models, params.paths.reports])
        log.info("stage %s", stage.name)
        with tracking_errors_reported():
            run(params, stage.domain)
    return 0
