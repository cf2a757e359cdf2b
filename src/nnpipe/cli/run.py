"""``nnpipe run``: the pipeline's flows, one per domain, as Prefect runs them; overrides
(``-S``, ``--profile``) are written to params.yaml first, as ``dvc exp run -S`` does."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from nnpipe.config import ParamsError, load_params
from nnpipe.domains.registry import DOMAINS, get_domain
from nnpipe.errors import NnpipeError

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.client.schemas.objects import State

    from nnpipe.cli.options import Subparsers

log = logging.getLogger("nnpipe")  # the command's own lines: "nnpipe: ..."

PROFILES_DIR = Path("profiles")


class PipelineFailed(NnpipeError):
    """A flow run did not complete; its message is the failing stage's."""


def add_parser(
    sub: Subparsers, common: argparse.ArgumentParser, overrides: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "run",
        parents=[common, overrides],
        help="run the pipeline as a Prefect flow (overrides are written to "
        "params.yaml, as `dvc exp run -S` does)",
    )
    p.add_argument("--profile", help="apply a named profile from profiles/ first")
    p.add_argument("--force", action="store_true", help="re-run stages DVC considers current")
    p.set_defaults(func=cmd_run)


def read_profile(name: str, folder: Path = PROFILES_DIR) -> list[str]:
    """A profile: a YAML file of dotted overrides in ``folder`` (the project's
    ``profiles/``; see its comments)."""
    import yaml

    path = folder / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.yaml"))
        raise ParamsError(f"profile {name!r} not found in {folder}/; known: {known}")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ParamsError(f"{path} must map dotted keys to values")
    return [f"{key}={_yaml_value(value)}" for key, value in data.items()]


def _yaml_value(value: object) -> str:
    """A value as one line of YAML, the form ``-S key=value`` takes."""
    import yaml

    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def ensure_plots_template() -> None:
    """The DVC project's offline `dvc plots` page (``make setup`` writes it; a project set
    up otherwise gets it here)."""
    from nnpipe.dvc.plots import ensure_template
    from nnpipe.dvc.repo import find_root

    root = find_root()
    if root is not None:
        ensure_template(root)


def cmd_run(args: argparse.Namespace) -> int:
    """The pipeline's flows, holding the project's lock from before ``-S`` overrides are
    written (a run still going must not see its params.yaml change) to the summary."""
    from nnpipe.project_lock import hold_project

    with hold_project("`nnpipe run`"):
        return _run_flows(args)


def _run_flows(args: argparse.Namespace) -> int:
    from nnpipe.cli.summary import print_summary
    from nnpipe.config import write_overrides
    from nnpipe.prefect_env import prefect_defaults, start_temporary_server

    overrides = [*(read_profile(args.profile) if args.profile else []), *args.overrides]
    if overrides:
        write_overrides(args.params, overrides)  # like `dvc exp run -S`: params.yaml records it
        log.info("params.yaml updated: %s", ", ".join(overrides))
    params = load_params(args.params)
    ensure_plots_template()
    prefect_defaults()
    start_temporary_server()
    from prefect.flows import load_flow_from_entrypoint

    results: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for domain in args.domain or DOMAINS:
        flow: Flow[..., Any] = load_flow_from_entrypoint(get_domain(domain).flow_entrypoint)
        started = time.monotonic()
        state = cast(
            "State[Any]", flow(params_file=args.params, force=args.force, return_state=True)
        )
        if not state.is_completed():
            raise PipelineFailed(f"flow {flow.name} ended {state.name}: {state.message}")
        results[domain], seconds[domain] = state.result(), time.monotonic() - started
    print_summary(params, results, seconds)
    return 0
