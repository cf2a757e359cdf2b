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
import subprocess
import sys
from pathlib import Path

from nnpipe.config import DOMAINS, PARAMS_FILE, ParamsError, dump_params, load_params
from nnpipe.errors import NnpipeError, configure_logging, report_errors
from nnpipe.prefect_env import prefect_defaults

log = logging.getLogger("nnpipe")

FLOW_FILES = {"xray": "flows/xray_training.py:xray_training",
              "ohlcv": "flows/ohlcv_training.py:ohlcv_training"}
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


def cmd_run(args: argparse.Namespace) -> int:
    from nnpipe.config import write_overrides

    overrides = [*(read_profile(args.profile) if args.profile else []), *args.overrides]
    if overrides:
        write_overrides(args.params, overrides)  # like `dvc exp run -S`: params.yaml records it
        log.info("params.yaml updated: %s", ", ".join(overrides))
    params = load_params(args.params)
    prefect_defaults()
    from prefect.flows import load_flow_from_entrypoint

    results = {}
    for domain in args.domain or DOMAINS:
        flow = load_flow_from_entrypoint(FLOW_FILES[domain])
        state = flow(params_file=args.params, force=args.force, return_state=True)
        if not state.is_completed():
            raise PipelineFailed(f"flow {flow.name} ended {state.name}: {state.message}")
        results[domain] = state.result()
    print_summary(params, results)
    return 0


def print_summary(params, results: dict) -> None:
    """Where the results are: each domain's headline numbers, model versions and aliases,
    the gate's reason, and the MLflow UI."""
    from nnpipe import store
    from nnpipe.stages import get_stage

    lines = ["", "=" * 72, "nnpipe: pipeline finished", "=" * 72]
    for domain in results:
        register = get_stage("register", domain).module()
        lines += [f"[{domain}] {line}" for line in register.summary_lines(params, domain)]
    uri = store.tracking_uri(params)
    lines += [f"MLflow store: {uri}", f"Open the UI:  {store.ui_command(uri)}",
              "Compare runs: dvc metrics diff / dvc plots diff", "=" * 72]
    print("\n".join(lines))


def cmd_stage(args: argparse.Namespace) -> int:
    from nnpipe.stages import get_stage

    if args.domain and len(args.domain) > 1:
        raise ParamsError("`nnpipe stage` runs one stage of one domain: give --domain once")
    domain = args.domain[0] if args.domain else "xray"
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
    """Each domain's schedule (cron, timezone) from prefect.yaml, where schedules are kept."""
    import yaml

    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    found = {}
    for domain, entrypoint in FLOW_FILES.items():
        deployment = next((d for d in spec["deployments"] if d["entrypoint"] == entrypoint),
                          None)
        if deployment and deployment.get("schedules"):
            first = deployment["schedules"][0]
            found[domain] = {"cron": first["cron"], "timezone": first.get("timezone", "UTC")}
    return found


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
        schedule = schedules[domain] | ({"cron": args.cron} if args.cron else {})
        flow = load_flow_from_entrypoint(FLOW_FILES[domain])
        log.info("serving %s on cron %r (%s)", flow.name, schedule["cron"],
                 schedule["timezone"])
        deployments.append(flow.to_deployment(
            name=f"{flow.name}-scheduled", concurrency_limit=1,
            schedule=Cron(schedule["cron"], timezone=schedule["timezone"]),
            parameters={"params_file": args.params}))
    serve(*deployments)
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    from nnpipe import store

    params = load_params(args.params)
    uri = store.tracking_uri(params)
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
           "--host", args.host, "--port", str(args.port)]
    if uri.startswith("sqlite:"):
        cmd += ["--default-artifact-root", store.artifact_root().as_uri()]
    log.info("MLflow UI on http://%s:%d (Ctrl-C stops)", args.host, args.port)
    return subprocess.call(cmd)


def served_models(params, domains: list[str]) -> dict[str, str]:
    """Registered model names per served slot: ``xray``, ``ohlcv/<series>``."""
    from nnpipe.config import series_names

    models = {}
    if "xray" in domains:
        models["xray"] = params.xray.register.model_name
    if "ohlcv" in domains:
        for series in series_names(params.ohlcv.ingest):
            models[f"ohlcv/{series}"] = params.ohlcv.model_name(series)
    return models


def cmd_serve(args: argparse.Namespace) -> int:
    """The prediction API on the registered champions (see nnpipe.serving.api)."""
    import uvicorn

    from nnpipe import store
    from nnpipe.serving.api import ServeSettings, create_app

    params = load_params(args.params)
    settings = ServeSettings(
        tracking_uri=store.tracking_uri(params), models=served_models(params, args.domain
                                                                      or list(DOMAINS)),
        alias=args.alias, poll_seconds=args.poll_seconds,
        api_key=os.environ.get("NNPIPE_API_KEY") or None,
        max_request_bytes=int(args.max_request_mb * 2**20), threads=args.threads)
    if args.host not in ("127.0.0.1", "localhost", "::1") and settings.api_key is None:
        log.warning("serving on %s without an API key: set NNPIPE_API_KEY to require one",
                    args.host)
    log.info("serving %s (alias %s) from %s on http://%s:%d", ", ".join(settings.models),
             settings.alias, settings.tracking_uri, args.host, args.port)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="info",
                access_log=False)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Batch predictions from files to a CSV, with a registered version or a deploy folder."""
    from pathlib import Path

    from nnpipe import store
    from nnpipe.serving.batch import predict_ohlcv, predict_xray, write_predictions
    from nnpipe.serving.predictor import load_predictor

    params = load_params(args.params)
    domain = (args.domain or ["xray"])[0]
    if args.deploy:
        predictor = load_predictor(args.deploy)
        model = {"name": "(deploy folder)", "version": str(args.deploy),
                 "variant": predictor.variant}
    else:
        from nnpipe.serving.registry import resolve

        models = served_models(params, [domain])
        key = domain if domain == "xray" else (
            f"ohlcv/{args.series}" if args.series else next(iter(models)))
        if key not in models:
            raise ParamsError(f"series {args.series!r} is not in this project's params; "
                              f"known: {', '.join(k.split('/', 1)[1] for k in models)}")
        found = resolve(store.tracking_uri(params), models[key], args.alias)
        predictor = load_predictor(found.deploy_dir)
        model = {"name": found.name, "version": found.version, "variant": predictor.variant}
    source = Path(args.input)
    table = predict_xray(predictor, source) if domain == "xray" else \
        predict_ohlcv(predictor, source)
    out = write_predictions(table, model, Path(args.output))
    failed = int((table["error"] != "").sum()) if "error" in table else 0
    log.info("predict: %d rows (%d unreadable) from %s with %s v%s (%s) -> %s", len(table),
             failed, source, model["name"], model["version"], model["variant"], out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from nnpipe.stages import STEPS

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--params", default=PARAMS_FILE, help="params file (default: %(default)s)")
    common.add_argument("--domain", action="append", choices=DOMAINS,
                        help="domain(s) to act on (default: all)")
    overrides = argparse.ArgumentParser(add_help=False)
    overrides.add_argument("-S", "--set", dest="overrides", action="append", default=[],
                           metavar="KEY=VALUE", help="override a param by its dotted key "
                           "(as `dvc exp run -S`); repeatable")
    parser = argparse.ArgumentParser(prog="nnpipe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", parents=[common, overrides],
                       help="run the pipeline as a Prefect flow (overrides are written to "
                       "params.yaml, as `dvc exp run -S` does)")
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

    p = sub.add_parser("schedule", parents=[common],
                       help="serve the flow on its cron schedule from prefect.yaml")
    p.add_argument("--cron", help="override the schedule, e.g. '0 2 * * *'")
    p.set_defaults(func=cmd_schedule)

    p = sub.add_parser("serve", parents=[common],
                       help="serve the registered champions over HTTP (API key: set "
                       "NNPIPE_API_KEY)")
    p.add_argument("--host", default="127.0.0.1", help="default: loopback only")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--alias", default="champion")
    p.add_argument("--poll-seconds", type=float, default=30.0,
                   help="how often to look for a moved alias")
    p.add_argument("--max-request-mb", type=float, default=10.0)
    p.add_argument("--threads", type=int, default=1, help="interpreter threads per model")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("predict", parents=[common],
                       help="batch predictions from images (folder, .npz) or a CSV of bars")
    p.add_argument("input", help="a folder of PNG/JPEG, an .npz of images, an image, or a "
                   "CSV of daily bars (--domain ohlcv)")
    p.add_argument("-o", "--output", default="predictions.csv")
    p.add_argument("--alias", default="champion", help="the registered version to use")
    p.add_argument("--series", help="OHLCV: which series' model (default: the only one)")
    p.add_argument("--deploy", help="use a deploy folder (models/<domain>-deploy) instead "
                   "of the registry")
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
