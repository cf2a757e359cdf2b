"""``nnpipe monitor``: drift and live performance of the deployed models (see
:mod:`nnpipe.stages.monitor`), from the prediction log's last window or a batch."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from nnpipe.config import load_params
from nnpipe.domains.registry import DOMAINS
from nnpipe.errors import NnpipeError

if TYPE_CHECKING:
    from nnpipe.cli.options import Subparsers

log = logging.getLogger("nnpipe")


def add_parser(
    sub: Subparsers, common: argparse.ArgumentParser, overrides: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "monitor",
        parents=[common, overrides],
        help="compare the served inputs (the prediction log, or --batch) with the deployed "
        "model's training data; score logged predictions once their truth is known",
    )
    p.add_argument(
        "--batch",
        help="compare this batch instead of the log: "
        + "; ".join(f"{d.predict_input} (--domain {name})" for name, d in DOMAINS.items()),
    )
    p.add_argument(
        "--labels",
        help="the truth of logged predictions: "
        + "; ".join(f"{d.labels_input} (--domain {name})" for name, d in DOMAINS.items()),
    )
    p.add_argument(
        "--hours", type=float, help="the log's window (default: <domain>.monitor.window_hours)"
    )
    p.add_argument("--alias", default="champion", help="the registered version to monitor")
    p.add_argument("--deploy", help="monitor a deploy folder instead of the registered version")
    p.add_argument("--series", help="one series of a domain with several")
    p.add_argument(
        "--no-event",
        action="store_true",
        help="report an alarm without emitting the retraining event",
    )
    p.add_argument(
        "--fail-on-alarm", action="store_true", help="exit with status 3 when an alarm is raised"
    )
    p.set_defaults(func=cmd_monitor)


def cmd_monitor(args: argparse.Namespace) -> int:
    from nnpipe.stages.monitor import MonitorRequest, run

    params = load_params(args.params, args.overrides)
    domains = list(args.domain or DOMAINS)
    if (args.batch or args.labels or args.deploy) and len(domains) != 1:
        raise NnpipeError("--batch, --labels and --deploy are one domain's: give --domain")
    request = MonitorRequest(
        batch=Path(args.batch) if args.batch else None,
        labels=Path(args.labels) if args.labels else None,
        hours=args.hours,
        alias=args.alias,
        deploy=Path(args.deploy) if args.deploy else None,
        series=args.series,
        emit=not args.no_event,
    )
    alarm = False
    for domain in domains:
        alarm |= bool(run(params, domain, request)["alarm"])
    return 3 if alarm and args.fail_on_alarm else 0
