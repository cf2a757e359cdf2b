"""``nnpipe prefect-yaml [--check]``: write (or check) ``prefect.yaml``'s deployments and
the flow files they run (``flows/<domain>_training.py``) from the domain registry."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from nnpipe.cli.generated import write_or_check

if TYPE_CHECKING:
    from nnpipe.cli.options import Subparsers


def add_parser(
    sub: Subparsers, common: argparse.ArgumentParser, overrides: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "prefect-yaml", help="write prefect.yaml and the flows/ it deploys from the domain registry"
    )
    p.add_argument("--check", action="store_true", help="only check they are up to date")
    p.set_defaults(func=cmd_prefect_yaml)


def cmd_prefect_yaml(args: argparse.Namespace) -> int:
    from nnpipe.deployments import deployment_files

    return write_or_check(deployment_files(), "domain registry", "nnpipe prefect-yaml", args.check)
