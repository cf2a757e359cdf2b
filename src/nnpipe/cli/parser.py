"""The argument parser: each command's subparser, added by the command's own module, with
the options most commands share (:mod:`nnpipe.cli.options`)."""

from __future__ import annotations

import argparse

from nnpipe.cli import (
    dvc_yaml,
    monitor,
    predict,
    prefect_yaml,
    run,
    schedule,
    serve,
    stage,
    ui,
)
from nnpipe.cli import params as params_command
from nnpipe.cli.options import shared_options
from nnpipe.domains.registry import DOMAINS

# in the order `nnpipe --help` lists them
COMMANDS = (
    run,
    stage,
    params_command,
    dvc_yaml,
    prefect_yaml,
    schedule,
    serve,
    predict,
    monitor,
    ui,
)


def description() -> str:
    """``nnpipe --help``'s synopsis, with the registered domains."""
    domains = "|".join(DOMAINS)
    return (
        "The ``nnpipe`` command: run the pipeline, one stage, or inspect the params.\n\n"
        f"nnpipe run [--domain {domains}] [-S key=value ...] [--profile NAME]\n"
        f"nnpipe stage STEP --domain {domains} [-S key=value ...]\n"
        "nnpipe params show [-S key=value ...]\n"
        "nnpipe dvc-yaml [--check]\n"
        "nnpipe prefect-yaml [--check]\n"
        f'nnpipe schedule [--domain {domains}] [--cron "0 2 * * *"]\n'
        f"nnpipe monitor [--domain {domains}] [--batch PATH] [--labels CSV]\n"
        "nnpipe ui\n"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnpipe",
        description=description(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    common, overrides = shared_options()
    for command in COMMANDS:
        command.add_parser(sub, common, overrides)
    return parser
