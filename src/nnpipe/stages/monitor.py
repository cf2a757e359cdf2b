"""monitor: compare what a deployed model was asked with what it was trained on, and score
it once the truth arrives.

For each of the domain's models: the version under the alias (or a deploy folder), its
reference (the training split promote described beside it), and the current window (the
prediction log's last ``<domain>.monitor.window_hours`` for that version, or a batch given
on the command line) described alike; the domain's drift checks, each at its threshold;
live performance where the truth is known (the next bars; a labels CSV). Output, written
only once every model's report is made: ``reports/<domain>/monitor.json`` (the headline
numbers, DVC metrics), ``monitor_report.json`` (every number),
``reports/<domain>/monitor.html`` (offline), one MLflow run per model in the domain's
monitoring experiment, tagged with the version; an alarm (drift, or performance past its
threshold) emits the retraining event unless one was emitted within the cooldown.

Not a ``dvc.yaml`` stage: its input is the live log, which no lock can pin. Nor are its
files declared as ``dvc.yaml``'s top-level metrics: until a project's first monitor run,
every ``dvc metrics show`` would warn that it "failed to load some metrics". DVC reads
them by path: ``dvc metrics show reports/xray/monitor.json``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pandas as pd

from nnpipe.config import Params, ParamsError
from nnpipe.domains.contract import Domain, Unit
from nnpipe.domains.registry import get_domain
from nnpipe.io import atomic_write_json, atomic_write_text
from nnpipe.layout import domain_layout
from nnpipe.monitoring.frame import MonitorFrame, MonitorInputError
from nnpipe.monitoring.prediction_log import PredictionLog, configured_log
from nnpipe.monitoring.report import (
    MonitorReport,
    MonitorWindow,
    to_html,
    verdict,
)
from nnpipe.serving.predictor import load_predictor
from nnpipe.stages.monitor_inputs import (
    Monitored,
    MonitorRequest,
    iso,
    logged_window,
    read_reference,
    resolve_model,
)
from nnpipe.tracking.monitoring import log_monitor_run

log = logging.getLogger(__name__)

METRICS_JSON = "monitor.json"  # headline numbers: what `dvc metrics show` compares
REPORT_JSON = "monitor_report.json"  # the whole report: every check's numbers and summaries
REPORT_HTML = "monitor.html"


def current_frame(
    params: Params,
    domain: Domain[Any],
    monitored: Monitored,
    request: MonitorRequest,
    prediction_log: PredictionLog | None,
    now: float,
) -> tuple[MonitorFrame, MonitorWindow, pd.DataFrame | None]:
    """What is compared with the reference: the batch, or the log's window (also
    returned: live performance scores it)."""
    cfg = domain.monitoring().settings(params)
    if request.batch is not None:
        predictor = load_predictor(monitored.deploy_dir, embedding=domain.logs_embedding)
        current = domain.monitor_batch(params, predictor, request.batch)
        if len(current) < cfg.min_rows:
            raise MonitorInputError(
                f"{request.batch} gives {len(current)} predictions, fewer than "
                f"monitor.min_rows ({cfg.min_rows}): too few to test"
            )
        return current, MonitorWindow(source="batch", location=str(request.batch)), None
    hours = request.hours if request.hours is not None else cfg.window_hours
    since = now - hours * 3600
    logged = logged_window(prediction_log, monitored, since, now, cfg.min_rows)
    assert prediction_log is not None  # logged_window refused a missing log
    current = MonitorFrame.from_records(
        list(logged["features"]), list(logged["output"]), list(logged["embedding"])
    )
    window = MonitorWindow(
        source="log",
        location=prediction_log.backend.description,
        since=iso(since),
        until=iso(now),
    )
    return current, window, logged


def monitor_unit(
    params: Params,
    domain: Domain[Any],
    unit: Unit,
    request: MonitorRequest,
    prediction_log: PredictionLog | None,
    now: float,
) -> tuple[MonitorReport, Monitored]:
    """One model's report (nothing written)."""
    part = domain.monitoring()
    monitored = resolve_model(params, unit, request, domain.unit_key)
    reference = read_reference(monitored)
    current, window, logged = current_frame(params, domain, monitored, request, prediction_log, now)
    checks = part.checks(params, reference, current)
    if request.labels is not None and logged is None:
        raise MonitorInputError(
            "--labels scores logged predictions; it cannot be used with --batch"
        )
    performance = None if logged is None else part.performance(params, unit, logged, request.labels)
    drifted = [c.name for c in checks if c.drifted]
    reasons = [f"{name} drifted" for name in drifted]
    if performance and performance.get("alarm"):
        reasons.append(str(performance.get("reason") or "live performance past its threshold"))
    report = MonitorReport(
        domain=domain.name,
        unit=unit.key,
        generated_at=iso(now),
        model=monitored.model,
        window=window,
        rows=len(current),
        reference_rows=len(reference),
        checks=checks,
        drifted=bool(drifted),
        drifted_checks=drifted,
        quality=current.quality,
        performance=performance,
        alarm=bool(reasons),
        alarm_reasons=reasons,
    )
    return report, monitored


def raise_alarm(
    report: MonitorReport,
    monitored: Monitored,
    prediction_log: PredictionLog | None,
    cooldown_hours: float,
    now: float,
    emit: bool,
) -> str:
    """What became of an alarm: the retraining event emitted, or why not."""
    from nnpipe import monitor_events

    slot = monitored.unit.slot
    last = prediction_log.last_alarm(slot) if prediction_log is not None else None
    if last is not None and now - last < cooldown_hours * 3600:
        return (
            f"not asked for: in cooldown (the last alarm for {slot} was at {iso(last)}; "
            f"monitor.retrain_cooldown_hours is {cooldown_hours:g})"
        )
    if not emit:
        return "not asked for: --no-event"
    sent = monitor_events.emit_alarm(report, slot)
    if sent is None:
        return (
            "not asked for: no Prefect server is configured (PREFECT_API_URL), so no "
            "retraining deployment can hear it"
        )
    if prediction_log is not None:
        prediction_log.add_alarm(slot, "; ".join(report.alarm_reasons), now)
    return f"asked for: event {monitor_events.ALARM_EVENT} {sent} emitted"


def run(params: Params, domain: str, request: MonitorRequest | None = None) -> dict:
    request = request or MonitorRequest()
    d = get_domain(domain)
    now = request.now if request.now is not None else time.time()
    units = d.units(params)
    if request.series is not None:
        units = [u for u in units if u.key == request.series]
        if not units:
            raise ParamsError(
                f"series {request.series!r} is not in this project's params; known: "
                f"{', '.join(u.key for u in d.units(params))}"
            )
    location = configured_log(params)
    prediction_log = PredictionLog(location) if location else None
    made = [monitor_unit(params, d, u, request, prediction_log, now) for u in units]
    cfg = d.monitoring().settings(params)
    reports = []
    for report, monitored in made:
        if report.alarm:
            event = raise_alarm(
                report, monitored, prediction_log, cfg.retrain_cooldown_hours, now, request.emit
            )
            report = report.model_copy(update={"event": event})
        reports.append((report, monitored))
    write_reports(params, d, [r for r, _ in reports])
    for report, monitored in reports:
        log_monitor_run(
            params,
            domain,
            model_name=monitored.model.name,
            version=monitored.model.version,
            model_id=monitored.model_id,
            metrics=report.metrics(),
            tags={
                "monitor.alarm": str(report.alarm).lower(),
                "monitor.drifted": ",".join(report.drifted_checks) or "none",
                "monitor.window": report.window.source,
            },
            files=[domain_layout(params, domain).reports / REPORT_HTML],
            description=verdict(report),
        )
        log.info("monitor: %s%s", f"{report.unit}: " if report.unit else "", verdict(report))
        if report.event:
            log.info("monitor: retraining %s", report.event)
    return {
        "stage": "monitor",
        "alarm": any(r.alarm for r, _ in reports),
        "reports": [r.model_dump(mode="json") for r, _ in reports],
    }


def write_reports(params: Params, domain: Domain[Any], reports: list[MonitorReport]) -> None:
    """The domain's reports, each written whole (temp file, then rename), all after every
    model's report was made: a monitor that fails writes nothing."""
    reports_dir = domain_layout(params, domain.name).reports

    def shaped(make: Any) -> dict[str, Any]:
        if domain.unit_key is None:
            (one,) = reports
            return {"schema_version": 1, **make(one)}
        return {"schema_version": 1, domain.unit_key: {r.unit: make(r) for r in reports}}

    atomic_write_text(reports_dir / REPORT_HTML, to_html(reports))
    atomic_write_json(reports_dir / REPORT_JSON, shaped(lambda r: r.model_dump(mode="json")))
    atomic_write_json(reports_dir / METRICS_JSON, shaped(headline))


def headline(report: MonitorReport) -> dict[str, Any]:
    """What ``dvc metrics show`` shows of a report: numbers and verdicts, no text."""
    live = report.performance or {}
    return {
        "alarm": report.alarm,
        "drifted_checks": len(report.drifted_checks),
        "rows": report.rows,
        "model_version": int(report.model.version) if report.model.version.isdigit() else None,
        "checks": {
            c.name: {
                "statistic": c.statistic,
                **({"p_value": c.p_value} if c.p_value is not None else {}),
                "drifted": c.drifted,
            }
            for c in report.checks
        },
        **(
            {
                "live": {
                    k: v
                    for k, v in live.items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool)
                }
            }
            if live
            else {}
        ),
    }
