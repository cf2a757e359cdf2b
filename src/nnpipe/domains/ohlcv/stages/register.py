"""register: publish each series' deploy folder (the variant promote chose, behind its
preprocessing) as an MLflow pyfunc version, make it ``challenger``, gate ``champion`` on
the deployed variant's metric. Nothing is registered for a series promote deployed
nothing for.

By default the gate refuses ``champion`` to a model that does not beat persistence
(tomorrow = today) on the test period: its MAE over persistence's (``relative_mae``)
must stay below 1. That refusal is a normal outcome, common on daily prices; it is
logged, tagged on the version and shown in the run summary. The champion is re-scored on
today's test period with evaluate's own code (see :mod:`nnpipe.stages.registration`). Output:
``reports/ohlcv/registration.json``, one record per series.
"""

from __future__ import annotations

import logging
from functools import partial

import numpy as np

from nnpipe.artifacts import RegistrationRecord, SeriesRegistration
from nnpipe.champion_gate import gate_metrics
from nnpipe.config import Params
from nnpipe.domains.ohlcv.artifacts import (
    OhlcvDeploySpec,
    OhlcvEvaluation,
    OhlcvFeatures,
    OhlcvTrainRun,
    SeriesEvaluation,
)
from nnpipe.domains.ohlcv.domain import OHLCV
from nnpipe.domains.ohlcv.forecasting import Prepared, read_prepared
from nnpipe.domains.ohlcv.predictor import OhlcvPredictor
from nnpipe.domains.ohlcv.scoring import score_model
from nnpipe.io import atomic_write_json
from nnpipe.layout import domain_layout
from nnpipe.serving.predictor import DEPLOY_FILE
from nnpipe.stages import cli_main, require
from nnpipe.stages.gating import GateRule, load_champion
from nnpipe.stages.registration import check_same_run, not_registered, register_and_gate

log = logging.getLogger(__name__)

DESCRIPTION = (
    "Next-bar price forecaster for the series `{series}` (nnpipe's `ohlcv` "
    "pipeline): the last `look_back` daily bars (Open, High, Low, Close, Volume; "
    "oldest first) in, the forecast price `horizon` bars ahead out. `champion` is "
    "the version the gate accepted (it must beat persistence, tomorrow = today), "
    "`challenger` the latest one."
)


def headline(measured: dict, series_metrics: SeriesEvaluation) -> dict[str, float | None]:
    """The deployed variant's test errors beside the baselines' (price units)."""
    base = {
        f"{label} {k.upper()}": getattr(getattr(series_metrics, b), k)
        for b, label in (("persistence", "persistence"), ("moving_average", "moving average"))
        for k in ("rmse", "mae")
    }
    return {
        "test RMSE": measured.get("rmse"),
        "test MAE": measured.get("mae"),
        **base,
        "MAE / persistence MAE": measured.get("relative_mae"),
        "test MASE": measured.get("mase"),
    }


def gate_value(series_metrics: dict, metric: str) -> float:
    """A gate metric from a series' metrics: relative ones are top-level, others the model's."""
    if metric.startswith("relative_"):
        return float(series_metrics[metric])
    return float(series_metrics["model"][metric])


def version_tags(
    name: str, meta: OhlcvFeatures, measured: dict, series_metrics: SeriesEvaluation
) -> dict[str, object]:
    """What a series' version is: its series, windows, and test RMSE beside persistence's."""
    return {
        "series": name,
        "target": meta.target,
        "look_back": meta.look_back,
        "horizon": meta.horizon,
        "test_rmse": measured["rmse"],
        "test_persistence_rmse": series_metrics.persistence.rmse,
    }


def score_champion(
    model_name: str,
    prep: Prepared,
    metric: str,
    ma_window: int,
) -> tuple[float | None, str]:
    """The champion's gate metric on today's test period, from ITS deployed variant, or
    None with the reason."""
    predictor, why = load_champion(model_name)  # its deploy folder, never its pyfunc's code
    if not isinstance(predictor, OhlcvPredictor):
        return None, why or "the champion is not a deployable version nnpipe can re-score"
    try:
        scored = score_model(
            lambda x: predictor.run(x.astype(np.float32)), predictor.window_shape, prep, ma_window
        )
    except ValueError as exc:
        return None, f"the champion cannot forecast today's test windows: {exc}"
    return gate_value(scored, metric), (
        f"its deployed variant ({predictor.variant}) re-scored on the current test period"
    )


def run(params: Params, domain: str) -> dict:
    layout = domain_layout(params, domain)
    evaluation = OhlcvEvaluation.read(require(layout.evaluation, "evaluate", domain), domain)
    meta = OhlcvFeatures.read(require(layout.features / "meta.json", "featurize", domain), domain)
    records = {
        name: register_series(params, domain, name, meta, evaluation.series.get(name))
        for name in meta.series
    }
    SeriesRegistration(series=records).write(layout.registration)
    atomic_write_json(layout.gate, {name: gate_metrics(r) for name, r in records.items()})
    return {"stage": "register", "series": {n: r.dump() for n, r in records.items()}}


def gate_rule(params: Params, domain: str) -> GateRule:
    """The gate from params: an error (``relative_mae`` by default) below a ceiling."""
    reg = OHLCV.section(params).register
    return GateRule(
        reg.gate_metric,
        reg.max_value,
        reg.max_increase,
        higher_is_better=False,
        allow_incomparable=reg.allow_incomparable,
        allow_incomparable_key=f"{domain}.register.allow_incomparable",
    )


def register_series(
    params: Params,
    domain: str,
    name: str,
    meta: OhlcvFeatures,
    series_metrics: SeriesEvaluation | None,
) -> RegistrationRecord:
    """Register one series' deploy folder and gate its champion (or record that promote
    deployed nothing for it)."""
    cfg = OHLCV.section(params)
    reg = cfg.register
    layout = domain_layout(params, domain)
    run_info = OhlcvTrainRun.read(
        require(layout.model / name / "run.json", "train", domain), domain
    )
    check_same_run(
        series_metrics.run_id if series_metrics else None,
        run_info.run_id,
        f"{layout.evaluation} (series {name})",
        domain,
    )
    deploy_dir = layout.deploy / name
    deploy = OhlcvDeploySpec.read(require(deploy_dir / DEPLOY_FILE, "promote", domain), domain)
    check_same_run(deploy.run_id, run_info.run_id, str(deploy_dir), domain, "promote")
    assert series_metrics is not None  # check_same_run refused a missing one
    model_name = cfg.model_name(name)
    if deploy.variant is None:
        return not_registered(model_name, run_info.run_id, deploy.reason)
    prep = read_prepared(layout.features, name, meta)
    measured = deploy.measured or {}
    return register_and_gate(
        params,
        domain,
        model_name=model_name,
        run_info=run_info,
        deploy_dir=deploy_dir,
        deploy=deploy,
        candidate=float(measured[reg.gate_metric]),
        rule=gate_rule(params, domain),
        version_tags=version_tags(name, meta, measured, series_metrics),
        rescore_champion=partial(
            score_champion, model_name, prep, reg.gate_metric, cfg.evaluate.moving_average_window
        ),
        input_example=prep.windows["test"].x[:1],
        model_description=DESCRIPTION.format(series=name),
        headline=headline(measured, series_metrics),
    )


def main(argv: list[str] | None = None) -> int:
    return cli_main(__spec__.name, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
