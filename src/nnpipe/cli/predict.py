"""``nnpipe predict``: batch predictions from files to a CSV, with a registered version or
a deploy folder (each domain reads its own kind of input: its ``predict_files`` hook)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnpipe.config import ParamsError, load_params
from nnpipe.domains.registry import DOMAINS, get_domain

if TYPE_CHECKING:
    from nnpipe.cli.options import Subparsers
    from nnpipe.config import Params
    from nnpipe.serving.predictor import Predictor

log = logging.getLogger("nnpipe")


def add_parser(
    sub: Subparsers, common: argparse.ArgumentParser, overrides: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "predict",
        parents=[common],
        help="batch predictions from images (folder, .npz) or a CSV of bars",
    )
    inputs = "; ".join(f"{d.predict_input} (--domain {name})" for name, d in DOMAINS.items())
    p.add_argument("input", help=inputs)
    p.add_argument("-o", "--output", default="predictions.csv")
    p.add_argument("--alias", default="champion", help="the registered version to use")
    p.add_argument(
        "--series",
        help="where a domain has one model per series: which series' model (default: the only one)",
    )
    p.add_argument(
        "--deploy", help="use a deploy folder (models/<domain>-deploy) instead of the registry"
    )
    p.set_defaults(func=cmd_predict)


def registered_predictor(
    params: Params, domain: str, alias: str, series: str | None, embedding: bool = False
) -> tuple[Predictor, dict[str, Any]]:
    """The predictor of the version under ``alias`` of the domain's model (of ``series``,
    for a domain with one model per series), and what it is."""
    from nnpipe import store
    from nnpipe.serving.predictor import load_predictor
    from nnpipe.serving.registry import resolve

    units = get_domain(domain).units(params)
    unit = units[0]
    if series and len(units) > 1:  # one model per series
        found_unit = next((u for u in units if u.key == series), None)
        if found_unit is None:
            raise ParamsError(
                f"series {series!r} is not in this project's params; "
                f"known: {', '.join(u.key for u in units)}"
            )
        unit = found_unit
    found = resolve(store.tracking_uri(params), unit.model_name, alias)
    predictor = load_predictor(found.deploy_dir, embedding=embedding)
    model = {"name": found.name, "version": found.version, "variant": predictor.variant}
    return predictor, model | {"slot": unit.slot}


def cmd_predict(args: argparse.Namespace) -> int:
    """Batch predictions from files to a CSV, with a registered version or a deploy folder."""
    from nnpipe.monitoring.prediction_log import PredictionLog, PredictionLogError, configured_log
    from nnpipe.serving.batch import LOGGED, log_batch, write_predictions
    from nnpipe.serving.predictor import load_predictor

    params = load_params(args.params)
    domain = (args.domain or [next(iter(DOMAINS))])[0]
    location = configured_log(params)
    embedding = location is not None and get_domain(domain).logs_embedding
    if args.deploy:
        predictor = load_predictor(args.deploy, embedding=embedding)
        model = {
            "name": "(deploy folder)",
            "version": str(args.deploy),
            "variant": predictor.variant,
        }
        slot = get_domain(domain).units(params)[0].slot
    else:
        predictor, model = registered_predictor(params, domain, args.alias, args.series, embedding)
        slot = model.pop("slot")
    source = Path(args.input)
    table = get_domain(domain).predict_files(predictor, source)
    logged = table.attrs.get(LOGGED)
    out = write_predictions(table, model, Path(args.output))
    if location is not None and logged is not None and logged.outputs:
        try:
            rid = log_batch(PredictionLog(location), logged, domain, slot, model)
            log.info("predict: %d predictions logged as request %s", len(logged.outputs), rid)
        except PredictionLogError as exc:  # the predictions are written: say so, go on
            log.warning("predict: %s; the predictions are in %s all the same", exc, out)
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
