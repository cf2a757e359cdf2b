"""``nnpipe schedule``: serve each domain's flow on its cron from prefect.yaml (a
long-running process, like a worker; Ctrl-C stops it)."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from nnpipe.config import ParamsError
from nnpipe.domains.registry import DOMAINS, get_domain

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.deployments.runner import RunnerDeployment

    from nnpipe.cli.options import Subparsers

log = logging.getLogger("nnpipe")


def add_parser(
    sub: Subparsers, common: argparse.ArgumentParser, overrides: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "schedule", parents=[common], help="serve the flow on its cron schedule from prefect.yaml"
    )
    p.add_argument("--cron", help="override the schedule, e.g. '0 2 * * *'")
    p.set_defaults(func=cmd_schedule)


def schedules_from_prefect_yaml(path: Path = Path("prefect.yaml")) -> dict[str, dict[str, Any]]:
    """Each domain's deployment (name, cron, timezone, tags, triggers) from prefect.yaml,
    where they are kept: `nnpipe schedule` serves the deployments `prefect deploy --all`
    would create. Keys: the domain (its training flow), ``<domain>-monitor`` (its
    monitor)."""
    import yaml

    if not path.is_file():
        raise ParamsError(f"{path} not found: run `nnpipe schedule` in the project's root")
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    found = {}
    for name, d in DOMAINS.items():
        for key, entrypoint in (
            (name, d.flow_entrypoint),
            (f"{name}-monitor", d.monitor_entrypoint),
        ):
            deployment = next(
                (x for x in spec["deployments"] if x["entrypoint"] == entrypoint), None
            )
            if deployment and deployment.get("schedules"):
                first = deployment["schedules"][0]
                found[key] = {
                    "name": deployment["name"],
                    "entrypoint": entrypoint,
                    "cron": first["cron"],
                    "timezone": first.get("timezone", "UTC"),
                    "tags": deployment.get("tags", []),
                    "triggers": deployment.get("triggers", []),
                }
    return found


def deployment_triggers(specs: list[dict[str, Any]]) -> list[Any]:
    """prefect.yaml's trigger entries as Prefect's deployment triggers."""
    from prefect.events import DeploymentEventTrigger

    triggers = []
    for spec in specs:
        fields = {k: v for k, v in spec.items() if k != "type"}
        if spec.get("type", "event") != "event":
            raise ParamsError(
                f"prefect.yaml: a trigger of type {spec.get('type')!r}; `nnpipe schedule` "
                "serves event triggers only (use `prefect deploy` for others)"
            )
        triggers.append(DeploymentEventTrigger(**fields))
    return triggers


def refuse_worker_deployments(names: list[str]) -> None:
    """`nnpipe schedule` serves prefect.yaml's deployments under their own names, so it
    must not take over the ones `prefect deploy` gave a work pool: a worker runs those,
    and serving would leave them paused when it stops."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        for name in names:
            try:
                deployment = client.read_deployment_by_name(name)
            except ObjectNotFound:
                continue
            if deployment.work_pool_name:
                raise ParamsError(
                    f"deployment {name} is deployed to work pool {deployment.work_pool_name!r} "
                    f"(prefect deploy): its worker runs it. Use the worker, or delete the "
                    f"deployment (`prefect deployment delete {name}`) to serve it from here"
                )


def cmd_schedule(args: argparse.Namespace) -> int:
    """Serve the domains' flows on their cron schedules (a long-running process, like a
    worker); Ctrl-C stops it."""
    from nnpipe.prefect_env import prefect_defaults

    prefect_defaults()
    if not os.environ.get("PREFECT_API_URL"):
        raise ParamsError(
            "scheduled runs need a Prefect server (a temporary one cannot schedule): start "
            "`prefect server start` and set PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    from prefect import serve
    from prefect.flows import load_flow_from_entrypoint
    from prefect.schedules import Cron

    schedules = schedules_from_prefect_yaml()
    deployments: list[RunnerDeployment] = []
    for domain in args.domain or DOMAINS:
        if domain not in schedules:
            raise ParamsError(
                f"prefect.yaml has no scheduled deployment of "
                f"{get_domain(domain).flow_entrypoint}: run `nnpipe prefect-yaml` (it writes "
                "one for each domain that declares a schedule)"
            )
        for key in (domain, f"{domain}-monitor"):
            if key not in schedules:
                continue
            schedule = schedules[key] | ({"cron": args.cron} if args.cron else {})
            flow: Flow[..., Any] = load_flow_from_entrypoint(schedule["entrypoint"])
            log.info(
                "serving %s/%s on cron %r (%s)%s",
                flow.name,
                schedule["name"],
                schedule["cron"],
                schedule["timezone"],
                ", and on the monitor's alarm" if schedule["triggers"] else "",
            )
            deployment = flow.to_deployment(  # called from sync code: not a coroutine
                name=schedule["name"],
                concurrency_limit=1,
                tags=schedule["tags"],
                schedule=Cron(schedule["cron"], timezone=schedule["timezone"]),
                parameters={"params_file": args.params},
                triggers=deployment_triggers(schedule["triggers"]),
            )
            deployments.append(cast("RunnerDeployment", deployment))
    refuse_worker_deployments([f"{d.flow_name}/{d.name}" for d in deployments])
    serve(*deployments)
    return 0
