"""The ``nnpipe`` command: run the pipeline, one stage, or inspect the params.

nnpipe run [--domain xray|ohlcv] [-S key=value ...] [--profile NAME]
nnpipe stage STEP --domain xray|ohlcv [-S key=value ...]
nnpipe params show [-S key=value ...]
nnpipe dvc-yaml [--check]
nnpipe schedule [--domain xray|ohlcv] [--cron "0 2 * * *"]
nnpipe ui
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from nnpipe.config import PARAMS_FILE, ParamsError, dump_params, load_params
from nnpipe.domains.registry import DOMAINS, get_domain
from nnpipe.errors import NnpipeError, configure_logging, report_errors
from nnpipe.prefect_env import prefect_defaults, start_temporary_server

log = logging.getLogger("nnpipe")

PROFILES_DIR = Path("profiles")


class PipelineFailed(NnpipeError):
    """A flow run did not complete; its message is the failing stage's."""


def read_profile(name: str, folder: Path = PROFILES_DIR) -> list[str]:
    """A profile: a YAML file of dotted overrides in ``folder`` (the project's
    ``profiles/``; see its comments)."""
    import yaml

    path = folder / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.yaml"))
        raise ParamsError(f"profile {name!r} not found in {folder}/; known: {known}")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ParamsError(f"{path} must map dotted keys to values")
    return [f"{key}={_yaml_value(value)}" for key, value in data.items()]


def _yaml_value(value: object) -> str:
    """A value as one line of YAML, the form ``-S key=value`` takes."""
    import yaml

    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def ensure_plots_template() -> None:
    """The DVC project's offline `dvc plots` page (``make setup`` writes it; a project set
    up otherwise gets it here)."""
    from nnpipe.dvc_plots import ensure_template
    from nnpipe.dvc_repo import find_root

    root = find_root()
    if root is not None:
        ensure_template(root)


def cmd_run(args: argparse.Namespace) -> int:
    """The pipeline's flows, holding the project's lock from before ``-S`` overrides are
    written (a run still going must not see its params.yaml change) to the summary."""
    from nnpipe.project_lock import hold_project

    with hold_project("`nnpipe run`"):
        return _run_flows(args)


def _run_flows(args: argparse.Namespace) -> int:
    from nnpipe.config import write_overrides

    overrides = [*(read_profile(args.profile) if args.profile else []), *args.overrides]
    if overrides:
        write_overrides(args.params, overrides)  # like `dvc exp run -S`: params.yaml records it
        log.info("params.yaml updated: %s", ", ".join(overrides))
    params = load_params(args.params)
    ensure_plots_template()
    prefect_defaults()
    start_temporary_server()
    from prefect.flows import load_flow_from_entrypoint

    results, seconds = {}, {}
    for domain in args.domain or DOMAINS:
        flow = load_flow_from_entrypoint(get_domain(domain).flow_entrypoint)
        started = time.monotonic()
        state = flow(params_file=args.params, force=args.force, return_state=True)
        if not state.is_completed():
            raise PipelineFailed(f"flow {flow.name} ended {state.name}: {state.message}")
        results[domain], seconds[domain] = state.result(), time.monotonic() - started
    print_summary(params, results, seconds)
    return 0


def duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"


def stage_time_lines(
    results: dict[str, dict[str, dict]],
    flow_seconds: dict[str, float],
) -> list[str]:
    """A table of each stage's wall time per domain ("current" where DVC skipped it), and
    each flow's whole time (Prefect and DVC included)."""
    domains = list(results)
    steps = list(dict.fromkeys(step for d in domains for step in results[d]))

    def cell(result: dict | None) -> str:
        if result is None:
            return "-"
        if result.get("skipped"):
            return "current"
        return duration(result["seconds"]) if "seconds" in result else "ran"

    rows = [["stage", *domains]]
    rows += [[step, *(cell(results[d].get(step)) for d in domains)] for step in steps]
    rows.append(["whole flow", *(duration(flow_seconds[d]) for d in domains)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]


def ui_hint(uri: str) -> str:
    """How to open the MLflow UI on this store, on the model-training view of the runs."""
    if uri.startswith(("http://", "https://")):
        return f"{uri.rstrip('/')}/#/experiments?workflowType=machine_learning"
    return (
        "make ui, then http://127.0.0.1:5000/#/experiments?workflowType=machine_learning"
        ' (each experiment\'s Views menu has "Headline metrics")'
    )


def print_summary(params, results: dict, flow_seconds: dict[str, float]) -> None:
    """Where the results are: each domain's headline numbers, model versions and aliases,
    the gate's reason, each stage's time, and what to do next (UI, serving, DVC)."""
    from nnpipe import store
    from nnpipe.serving.registry import serve_hint

    lines = ["", "=" * 72, "nnpipe: pipeline finished", "=" * 72]
    for domain in results:
        lines += [f"[{domain}] {line}" for line in get_domain(domain).summary_lines(params)]
    lines += [
        "",
        "Stage times (wall clock):",
        *(f"  {line}" for line in stage_time_lines(results, flow_seconds)),
        "",
    ]
    uri = store.tracking_uri(params)
    serve = serve_hint(params, uri)
    lines += [
        f"MLflow store: {uri}",
        f"Open the UI:  {ui_hint(uri)}",
        f"Serve:        {serve}" if serve else "Serve:        nothing is registered yet",
        "Compare with DVC: commit this run, then run an experiment (in the venv:",
        "  source .venv/bin/activate, since dvc.yaml's stages run `python -m nnpipe`):",
        "  git add dvc.lock params.yaml reports && git commit -m 'pipeline run'",
        "  dvc exp run -S xray.train.epochs=20 && dvc exp show",
        "=" * 72,
    ]
    print("\n".join(lines))


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


def cmd_params(args: argparse.Namespace) -> int:
    params = load_params(args.params, args.overrides)
    sys.stdout.write(dump_params(params))
    return 0


def cmd_dvc_yaml(args: argparse.Namespace) -> int:
    from nnpipe.dvcfile import render_dvc_yaml

    text = render_dvc_yaml()
    path = Path("dvc.yaml")
    if args.check:
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            log.error("dvc.yaml is out of date with the stage registry; run `nnpipe dvc-yaml`")
            return 1
        log.info("dvc.yaml agrees with the stage registry")
        return 0
    from nnpipe.io import atomic_write_text

    atomic_write_text(path, text)
    log.info("wrote dvc.yaml from the stage registry")
    return 0


def schedules_from_prefect_yaml(path: Path = Path("prefect.yaml")) -> dict[str, dict]:
    """Each domain's deployment (name, cron, timezone) from prefect.yaml, where they are
    kept: `nnpipe schedule` serves the deployments `prefect deploy --all` would create."""
    import yaml

    if not path.is_file():
        raise ParamsError(f"{path} not found: run `nnpipe schedule` in the project's root")
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    found = {}
    for domain, entrypoint in ((n, d.flow_entrypoint) for n, d in DOMAINS.items()):
        deployment = next((d for d in spec["deployments"] if d["entrypoint"] == entrypoint), None)
        if deployment and deployment.get("schedules"):
            first = deployment["schedules"][0]
            found[domain] = {
                "name": deployment["name"],
                "cron": first["cron"],
                "timezone": first.get("timezone", "UTC"),
                "tags": deployment.get("tags", []),
            }
    return found


def refuse_worker_deployments(names: list[str]) -> None:
    """`nnpipe schedule` serves prefect.yaml's deployments under their own names, so it
    must not take over the ones `prefect deploy` gave a work pool: a worker runs those,
    and serving would leave them paused when it stops."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        for name in names:
            try:
                deployment = client.read_deployment_by_name(name)
            except ObjectNotFound:
                continue
            if deployment.work_pool_name:
                raise ParamsError(
                    f"deployment {name} is deployed to work pool {deployment.work_pool_name!r} "
                    f"(prefect deploy): its worker runs it. Use the worker, or delete the "
                    f"deployment (`prefect deployment delete {name}`) to serve it from here"
                )


def cmd_schedule(args: argparse.Namespace) -> int:
    """Serve the domains' flows on their cron schedules (a long-running process, like a
    worker); Ctrl-C stops it."""
    prefect_defaults()
    if not os.environ.get("PREFECT_API_URL"):
        raise ParamsError(
            "scheduled runs need a Prefect server (a temporary one cannot schedule): start "
            "`prefect server start` and set PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    from prefect import serve
    from prefect.flows import load_flow_from_entrypoint
    from prefect.schedules import Cron

    schedules = schedules_from_prefect_yaml()
    deployments = []
    for domain in args.domain or DOMAINS:
        if domain not in schedules:
            raise ParamsError(
                f"prefect.yaml has no scheduled deployment of "
                f"{get_domain(domain).flow_entrypoint}: add one (see its other deployments)"
            )
        schedule = schedules[domain] | ({"cron": args.cron} if args.cron else {})
        flow = load_flow_from_entrypoint(get_domain(domain).flow_entrypoint)
        log.info(
            "serving %s/%s on cron %r (%s)",
            flow.name,
            schedule["name"],
            schedule["cron"],
            schedule["timezone"],
        )
        deployments.append(
            flow.to_deployment(
                name=schedule["name"],
                concurrency_limit=1,
                tags=schedule["tags"],
                schedule=Cron(schedule["cron"], timezone=schedule["timezone"]),
                parameters={"params_file": args.params},
            )
        )
    refuse_worker_deployments([f"{d.flow_name}/{d.name}" for d in deployments])
    serve(*deployments)
    return 0


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


def served_models(params, domains: list[str]) -> dict[str, str]:
    """Registered model names per served slot: ``xray``, ``ohlcv/<series>``."""
    from nnpipe.serving.registry import served_models as models_of

    return models_of(params, domains)


def cmd_serve(args: argparse.Namespace) -> int:
    """The prediction API on the registered versions (see nnpipe.serving.api): the domains
    and alias from the flags, else params.yaml's ``serve`` section. Unless ``--wait``, it
    refuses to start a server that would never be ready, and says what would be."""
    import uvicorn
    from mlflow.exceptions import MlflowException

    from nnpipe import store
    from nnpipe.serving.api import ServeSettings, create_app
    from nnpipe.serving.registry import not_ready_message, serve_plan

    params = load_params(args.params)
    domains = list(args.domain or params.serve.domains)
    alias = args.alias or params.serve.alias
    uri = store.tracking_uri(params)
    limits = params.serve
    if args.max_request_mb is not None and not 0 < args.max_request_mb <= 1024:
        raise NnpipeError(
            f"--max-request-mb {args.max_request_mb:g} is not a size limit: "
            "give a number of MiB above 0, at most 1024"
        )
    settings = ServeSettings(
        tracking_uri=uri,
        models=served_models(params, domains),
        alias=alias,
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
    )
    loopback = args.host in ("127.0.0.1", "localhost", "::1")
    if not loopback and settings.api_key is None and not args.allow_no_api_key:
        raise NnpipeError(
            f"refusing to serve on {args.host} (reachable from other machines) "
            "without an API key: set NNPIPE_API_KEY, or pass "
            "--allow-no-api-key to serve it open on purpose"
        )
    if not args.wait:
        try:
            plan = serve_plan(params, domains, alias, uri)
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


def cmd_predict(args: argparse.Namespace) -> int:
    """Batch predictions from files to a CSV, with a registered version or a deploy folder."""
    from pathlib import Path

    from nnpipe import store
    from nnpipe.serving.batch import write_predictions
    from nnpipe.serving.predictor import load_predictor

    params = load_params(args.params)
    domain = (args.domain or [next(iter(DOMAINS))])[0]
    if args.deploy:
        predictor = load_predictor(args.deploy)
        model = {
            "name": "(deploy folder)",
            "version": str(args.deploy),
            "variant": predictor.variant,
        }
    else:
        from nnpipe.serving.registry import resolve

        units = get_domain(domain).units(params)
        unit = units[0]
        if args.series and len(units) > 1:  # one model per series
            unit = next((u for u in units if u.key == args.series), None)
            if unit is None:
                raise ParamsError(
                    f"series {args.series!r} is not in this project's params; "
                    f"known: {', '.join(u.key for u in units)}"
                )
        found = resolve(store.tracking_uri(params), unit.model_name, args.alias)
        predictor = load_predictor(found.deploy_dir)
        model = {"name": found.name, "version": found.version, "variant": predictor.variant}
    source = Path(args.input)
    table = get_domain(domain).predict_files(predictor, source)
    out = write_predictions(table, model, Path(args.output))
    failed = int((table["error"] != "").sum()) if "error" in table else 0
    log.info(
        "predict: %d rows (%d unreadable) from %s with %s v%s (%s) -> %s",
        len(table),
        failed,
        source,
        model["name"],
        model["version"],
        model["variant"],
        out,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    from nnpipe.stages import STEPS

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
    parser = argparse.ArgumentParser(
        prog="nnpipe", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "run",
        parents=[common, overrides],
        help="run the pipeline as a Prefect flow (overrides are written to "
        "params.yaml, as `dvc exp run -S` does)",
    )
    p.add_argument("--profile", help="apply a named profile from profiles/ first")
    p.add_argument("--force", action="store_true", help="re-run stages DVC considers current")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("stage", parents=[common, overrides], help="run one stage")
    p.add_argument("name", choices=STEPS, metavar="STEP", help=f"one of {', '.join(STEPS)}")
    p.set_defaults(func=cmd_stage)

    p = sub.add_parser("params", parents=[common, overrides], help="show the resolved params")
    p.add_argument("action", choices=["show"])
    p.set_defaults(func=cmd_params)

    p = sub.add_parser("dvc-yaml", help="write dvc.yaml from the stage registry")
    p.add_argument("--check", action="store_true", help="only check it is up to date")
    p.set_defaults(func=cmd_dvc_yaml)

    p = sub.add_parser(
        "schedule", parents=[common], help="serve the flow on its cron schedule from prefect.yaml"
    )
    p.add_argument("--cron", help="override the schedule, e.g. '0 2 * * *'")
    p.set_defaults(func=cmd_schedule)

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

    p = sub.add_parser(
        "predict",
        parents=[common],
        help="batch predictions from images (folder, .npz) or a CSV of bars",
    )
    p.add_argument(
        "input",
        help="a folder of PNG/JPEG, an .npz of images, an image, or a "
        "CSV of daily bars (--domain ohlcv)",
    )
    p.add_argument("-o", "--output", default="predictions.csv")
    p.add_argument("--alias", default="champion", help="the registered version to use")
    p.add_argument("--series", help="OHLCV: which series' model (default: the only one)")
    p.add_argument(
        "--deploy", help="use a deploy folder (models/<domain>-deploy) instead of the registry"
    )
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("ui", parents=[common], help="open the MLflow UI on the project's store")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5000)
    p.set_defaults(func=cmd_ui)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging()
    with report_errors():
        return args.func(args)
