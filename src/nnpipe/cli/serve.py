"""``nnpipe serve``: the prediction API on the registered versions (see
:mod:`nnpipe.serving.api`): the domains and alias from the flags, else params.yaml's
``serve`` section."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from nnpipe.config import PARAMS_FILE, load_params
from nnpipe.errors import NnpipeError

if TYPE_CHECKING:
    from nnpipe.cli.options import Subparsers
    from nnpipe.config import Params
    from nnpipe.serving.api import ServeSettings

log = logging.getLogger("nnpipe")

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def add_parser(
    sub: Subparsers, common: argparse.ArgumentParser, overrides: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "serve",
        parents=[common],
        help="serve the registered champions over HTTP (domains: --domain "
        "or params.yaml's serve.domains; API key: set NNPIPE_API_KEY)",
    )
    p.add_argument("--host", default="127.0.0.1", help="default: loopback only")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--alias", help="the registry alias to serve (default: params.yaml's serve.alias, champion)"
    )
    p.add_argument(
        "--wait",
        action="store_true",
        help="start even if a model has no version under the alias yet: /ready "
        "answers 503 (naming it) until one appears (e.g. in a container started "
        "before the pipeline ran)",
    )
    p.add_argument(
        "--poll-seconds", type=float, default=30.0, help="how often to look for a moved alias"
    )
    p.add_argument(
        "--max-request-mb",
        type=float,
        help="the body size limit (default: params.yaml's serve.max_request_mb, 10)",
    )
    p.add_argument(
        "--public",
        action="append",
        choices=["models", "metrics", "docs"],
        help="with NNPIPE_API_KEY set, also serve this route without the key "
        "(repeatable; /health and /ready always are; also serve.public_routes)",
    )
    p.add_argument(
        "--allow-no-api-key",
        action="store_true",
        help="serve on a non-loopback --host with no NNPIPE_API_KEY (refused otherwise)",
    )
    p.add_argument("--threads", type=int, default=1, help="interpreter threads per model")
    p.set_defaults(func=cmd_serve)


def served_models(params: Params, domains: list[str]) -> dict[str, str]:
    """Registered model names per served slot: ``<domain>`` or ``<domain>/<unit>``."""
    from nnpipe.serving.serve_plan import served_models as models_of

    return models_of(params, domains)


def serve_settings(args: argparse.Namespace, params: Params, domains: list[str]) -> ServeSettings:
    """The server's settings: the flags where given, else params.yaml's ``serve``."""
    from nnpipe import store
    from nnpipe.monitoring.prediction_log import configured_log
    from nnpipe.serving.api import ServeSettings

    if args.max_request_mb is not None and not 0 < args.max_request_mb <= 1024:
        raise NnpipeError(
            f"--max-request-mb {args.max_request_mb:g} is not a size limit: "
            "give a number of MiB above 0, at most 1024"
        )
    limits = params.serve
    return ServeSettings(
        tracking_uri=store.tracking_uri(params),
        models=served_models(params, domains),
        alias=args.alias or limits.alias,
        poll_seconds=args.poll_seconds,
        api_key=os.environ.get("NNPIPE_API_KEY") or None,
        public_routes=tuple(dict.fromkeys([*limits.public_routes, *(args.public or [])])),
        max_request_bytes=int((args.max_request_mb or limits.max_request_mb) * 2**20),
        max_batch=limits.max_batch,
        max_pixels=limits.max_pixels,
        max_side=limits.max_side,
        max_batch_pixels=limits.max_batch_pixels,
        max_bars=limits.max_bars,
        decode_threads=limits.decode_threads,
        threads=args.threads,
        prediction_log=_absolute(configured_log(params), Path.cwd()),
        log_images=limits.log_images,
    )


def _absolute(location: str | None, root: Path) -> str | None:
    """A log file's path made absolute here (the server may change folder); a URL as is."""
    if location is None or "://" in location:
        return location
    path = Path(location)
    return str(path if path.is_absolute() else root / path)


def refuse_unready(
    args: argparse.Namespace, params: Params, domains: list[str], settings: ServeSettings
) -> None:
    """Unless ``--wait``: refuse to start a server that would never be ready, saying what
    would make it ready."""
    from mlflow.exceptions import MlflowException

    from nnpipe.serving.serve_plan import not_ready_message, serve_plan

    uri = settings.tracking_uri
    try:
        plan = serve_plan(params, domains, settings.alias, uri)
    except MlflowException as exc:
        raise NnpipeError(
            f"cannot read the model registry at {uri}: {exc.message}; "
            "start it, or pass --wait to start and keep trying"
        ) from None
    if plan.missing:
        extra = [
            *([f"--params {args.params}"] if args.params != PARAMS_FILE else []),
            *([f"--host {args.host}"] if args.host != "127.0.0.1" else []),
            *([f"--port {args.port}"] if args.port != 8000 else []),
        ]
        raise NnpipeError(not_ready_message(params, plan, bool(args.domain), extra))


def cmd_serve(args: argparse.Namespace) -> int:
    """The prediction API; it refuses an open non-loopback server (without
    ``--allow-no-api-key``) and, unless ``--wait``, one that would never be ready."""
    import uvicorn

    from nnpipe.serving.api import create_app

    params = load_params(args.params)
    domains = list(args.domain or params.serve.domains)
    settings = serve_settings(args, params, domains)
    loopback = args.host in LOOPBACK
    if not loopback and settings.api_key is None and not args.allow_no_api_key:
        raise NnpipeError(
            f"refusing to serve on {args.host} (reachable from other machines) "
            "without an API key: set NNPIPE_API_KEY, or pass "
            "--allow-no-api-key to serve it open on purpose"
        )
    if not args.wait:
        refuse_unready(args, params, domains, settings)
    if not loopback and settings.api_key is None:
        log.warning(
            "serving on %s without an API key (--allow-no-api-key): set "
            "NNPIPE_API_KEY to require one",
            args.host,
        )
    log.info(
        "serving %s (alias %s) from %s on http://%s:%d (API docs: /docs)",
        ", ".join(f"{name} as {key}" for key, name in settings.models.items()),
        settings.alias,
        settings.tracking_uri,
        args.host,
        args.port,
    )
    # no `server: uvicorn` header: a response need not say what answers it
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level="info",
        access_log=False,
        server_header=False,
    )
    return 0
