"""``nnpipe params show``: the resolved params, every default explicit."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from nnpipe.config import dump_params, load_params

if TYPE_CHECKING:
    from nnpipe.cli.options import Subparsers


def add_parser(
    sub: Subparsers, common: argparse.ArgumentParser, overrides: argparse.ArgumentParser
) -> None:
    p = sub.add_parser("params", parents=[common, overrides], help="show the resolved params")
    p.add_argument("action", choices=["show"])
    p.set_defaults(func=cmd_params)


def cmd_params(args: argparse.Namespace) -> int:
    params = load_params(args.params, args.overrides)
    sys.stdout.write(dump_params(params))
    return 0
