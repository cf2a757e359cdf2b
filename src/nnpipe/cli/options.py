"""The options most commands share: ``--params``, ``--domain`` (the registered domains
are its choices) and ``-S key=value``."""

from __future__ import annotations

import argparse
from typing import TypeAlias

from nnpipe.config import PARAMS_FILE
from nnpipe.domains.registry import DOMAINS

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def shared_options() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The parents of the subparsers: ``--params``/``--domain``, and ``-S``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--params", default=PARAMS_FILE, help="params file (default: %(default)s)")
    common.add_argument(
        "--domain",
        action="append",
        choices=list(DOMAINS),
        help="domain(s) to act on (default: all)",
    )
    overrides = argparse.ArgumentParser(add_help=False)
    overrides.add_argument(
        "-S",
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a param by its dotted key (as `dvc exp run -S`); repeatable",
    )
    return common, overrides
