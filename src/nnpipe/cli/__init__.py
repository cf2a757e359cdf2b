"""The ``nnpipe`` command: one module per command, each adding its own subparser
(:mod:`nnpipe.cli.parser` puts them together); ``main`` is the console script and
``python -m nnpipe`` (what ``dvc.yaml``'s stages call)."""

from __future__ import annotations

from nnpipe.errors import report_errors
from nnpipe.logs import configure_logging


def main(argv: list[str] | None = None) -> int:
    from nnpipe.cli.parser import build_parser

    args = build_parser().parse_args(argv)
    configure_logging()
    with report_errors():
        return int(args.func(args))
