"""``nnpipe stage STEP --domain NAME``: one stage of one domain (what ``dvc.yaml``'s
stages run, as ``python -m nnpipe stage ...``)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from nnpipe.config import ParamsError
from nnpipe.domains.registry import DOMAINS

if TYPE_CHECKING:
    from nnpipe.cli.options import Subparsers


def add_parser(
    sub: Subparsers, common: argparse.ArgumentParser, overrides: argparse.ArgumentParser
) -> None:
    from nnpipe.stages import STEPS

    p = sub.add_parser("stage", parents=[common, overrides], help="run one stage")
    p.add_argument("name", choices=STEPS, metavar="STEP", help=f"one of {', '.join(STEPS)}")
    p.set_defaults(func=cmd_stage)


def cmd_stage(args: argparse.Namespace) -> int:
    from nnpipe.stages import get_stage

    if args.domain and len(args.domain) > 1:
        raise ParamsError("`nnpipe stage` runs one stage of one domain: give --domain once")
    domain = args.domain[0] if args.domain else next(iter(DOMAINS))
    module = get_stage(args.name, domain).module()
    rest = ["--domain", domain, "--params", args.params]
    for item in args.overrides:
        rest += ["-S", item]
    return module.main(rest)
