"""``nnpipe run``: the pipeline's flows, one per domain, as Prefect runs them; overrides
(``-S``, ``--profile``) are written to params.yaml first, as ``dvc exp run -S`` does."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnpipe.config import ParamsError, load_params
from nnpipe.domains.registry import DOMAINS

if TYPE_CHECKING:
    from nnpipe.cli.options import Subparsers

log = logging.getLogger("nnpipe")  # the command's own lines: "nnpipe: ..."

PROFILES_DIR = Path("profiles")


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
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="run up to N domains' flows side by side, each in its own process "
        "(default: one per CPU core; 1: one after the other, in this process)",
    )
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
    from nnpipe.cli.flow_processes import prepare_tracking_store, run_flow, run_side_by_side
    from nnpipe.cli.summary import print_summary
    from nnpipe.config import write_overrides
    from nnpipe.prefect_env import prefect_api_url, prefect_defaults, start_temporary_server

    if args.jobs is not None and args.jobs < 1:
        raise ParamsError(f"--jobs must be 1 or more, not {args.jobs}")
    overrides = [*(read_profile(args.profile) if args.profile else []), *args.overrides]
    if overrides:
        write_overrides(args.params, overrides)  # like `dvc exp run -S`: params.yaml records it
        log.info("params.yaml updated: %s", ", ".join(overrides))
    params = load_params(args.params)
    ensure_plots_template()
    prefect_defaults()
    start_temporary_server()
    domains = list(args.domain or DOMAINS)
    jobs = min(len(domains), args.jobs or os.cpu_count() or 1)
    if jobs == 1:
        results: dict[str, Any] = {}
        seconds: dict[str, float] = {}
        for domain in domains:
            results[domain], seconds[domain] = run_flow(domain, args.params, args.force)
        print_summary(params, results, seconds)
    else:
        from nnpipe.store import tracking_uri

        prepare_tracking_store(tracking_uri(params))
        done = run_side_by_side(domains, args.params, args.force, jobs, prefect_api_url())
        print_summary(params, done.results, done.seconds, done.headlines)
    return 0
