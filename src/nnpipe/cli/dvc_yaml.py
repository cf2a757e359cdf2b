"""``nnpipe dvc-yaml [--check]``: write (or check) ``dvc.yaml`` from the stage registry."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from nnpipe.cli.generated import write_or_check

if TYPE_CHECKING:
    from nnpipe.cli.options import Subparsers


def add_parser(
    sub: Subparsers, common: argparse.ArgumentParser, overrides: argparse.ArgumentParser
) -> None:
    p = sub.add_parser("dvc-yaml", help="write dvc.yaml from the stage registry")
    p.add_argument("--check", action="store_true", help="only check it is up to date")
    p.set_defaults(func=cmd_dvc_yaml)


def cmd_dvc_yaml(args: argparse.Namespace) -> int:
    from nnpipe.dvc.pipeline_file import render_dvc_yaml

    files = {Path("dvc.yaml"): render_dvc_yaml()}
    return write_or_check(files, "stage registry", "nnpipe dvc-yaml", args.check)
