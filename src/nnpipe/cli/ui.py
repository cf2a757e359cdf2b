"""``nnpipe ui``: the MLflow UI on the project's store."""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

from nnpipe.config import load_params

if TYPE_CHECKING:
    from nnpipe.cli.options import Subparsers

log = logging.getLogger("nnpipe")


def add_parser(
    sub: Subparsers, common: argparse.ArgumentParser, overrides: argparse.ArgumentParser
) -> None:
    p = sub.add_parser("ui", parents=[common], help="open the MLflow UI on the project's store")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5000)
    p.set_defaults(func=cmd_ui)


def cmd_ui(args: argparse.Namespace) -> int:
    from nnpipe import store
    from nnpipe.mlflow_ui import serve_ui

    params = load_params(args.params)
    uri = store.tracking_uri(params)
    log.info(
        "MLflow UI on http://%s:%d/#/experiments?workflowType=machine_learning (each "
        'experiment\'s Views menu has "Headline metrics"; Ctrl-C stops)',
        args.host,
        args.port,
    )
    serve_ui(
        uri,
        store.artifact_root().as_uri() if uri.startswith("sqlite:") else None,
        args.host,
        args.port,
    )
    return 0
