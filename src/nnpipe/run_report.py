"""What a flow run shows in the Prefect UI: a markdown summary and the compression table,
built from the files the stages already wrote (``reports/<domain>/registration.json``,
``metrics.json``, ``compression.json``, ``promotion.json``).

Pure builders: no Prefect or MLflow import here; :mod:`nnpipe.flow_tasks` publishes them
as artifacts under :func:`artifact_key`, so the UI keeps their history across runs. Both
domains' files are read through their typed models (:mod:`nnpipe.artifacts`), of the
shape the domain declares (one record, or one per unit: its ``unit_key``), never by the
domain's name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from nnpipe.artifacts import (
    CompressionTable,
    Promotion,
    PromotionRow,
    RegistrationRecord,
    SeriesCompressionTable,
    SeriesPromotion,
    read_registration,
)
from nnpipe.io import read_json
from nnpipe.layout import DomainLayout

LOCAL_UI = "http://127.0.0.1:5000"  # where `make ui` / `nnpipe ui` serves the MLflow UI
_KEY = re.compile(r"^[a-z0-9-]+$")


def artifact_key(domain: str, kind: str) -> str:
    """A stable artifact key (``xray-summary``): Prefect accepts lowercase letters, digits
    and dashes only, and groups an artifact's versions in the UI by it."""
    key = f"{domain}-{kind}".lower().replace("_", "-")
    if not _KEY.match(key):
        raise ValueError(f"artifact key {key!r} must be lowercase letters, digits and dashes")
    return key


def _number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def headline_metrics(metrics_file: Path) -> dict[str, dict[str, dict[str, float]]]:
    """The headline numbers per unit and group: ``{unit: {"test": {metric: value},
    "baseline": {...}, "val": {...}}}``, loose numbers under ``""``. The one reader of
    ``metrics.json`` for the reports (it holds ``{"test": ..., "baseline": ...}`` for one
    model, or that per series); adapt here when the file's shape changes."""
    data = read_json(metrics_file)
    units = {"": data} if isinstance(data.get("test"), Mapping) else data
    found = {}
    for unit, record in units.items():
        groups = {
            g: {k: float(v) for k, v in values.items() if _number(v)}
            for g, values in record.items()
            if isinstance(values, Mapping)
        }
        loose = {k: float(v) for k, v in record.items() if _number(v)}
        found[unit] = groups | ({"": loose} if loose else {})
    return found


def metrics_beside_baselines(
    groups: Mapping[str, Mapping[str, float]],
) -> dict[str, dict[str, float]]:
    """Table rows ``{metric: {column: value}}``: the model's test numbers in ``model``,
    each baseline beside the metric it is a baseline of (``accuracy`` in ``baseline``;
    ``persistence_rmse`` in ``persistence``, row ``rmse``), other groups' numbers as rows
    of their own (``val roc_auc``)."""
    test = groups.get("test", {})
    rows: dict[str, dict[str, float]] = {m: {"model": v} for m, v in test.items()}
    for key, value in groups.get("baseline", {}).items():
        if key in test:
            rows[key]["baseline"] = value
            continue
        metric = next((m for m in test if key.endswith(f"_{m}")), None)
        if metric is None:
            rows[key] = {"baseline": value}
        else:
            rows[metric][key.removesuffix(f"_{metric}")] = value
    for group, values in groups.items():
        if group in ("test", "baseline"):
            continue
        for key, value in values.items():
            rows[f"{group} {key}".strip()] = {"model": value}
    return rows


@dataclass(frozen=True)
class MlflowLinks:
    """Where a unit's training run and registered version are in the MLflow UI."""

    run: str  # a URL, or the run id where the run's experiment is unknown
    version: str | None  # a URL, or None when nothing was registered
    note: str  # how to open them (a local store needs `make ui`)


def mlflow_links(
    tracking_uri: str,
    experiment_id: str | None,
    run_id: str,
    model_name: str | None,
    version: str | None,
) -> MlflowLinks:
    """Links into the MLflow UI: the tracking server's own address when the store is an
    HTTP server, else the address ``make ui`` serves the project's local store on."""
    remote = tracking_uri.startswith(("http://", "https://"))
    base = tracking_uri.rstrip("/") if remote else LOCAL_UI
    note = "" if remote else f" (local store: `make ui`, then open {LOCAL_UI})"
    run = (
        f"{base}/#/experiments/{experiment_id}/runs/{run_id}"
        if experiment_id
        else f"run id {run_id}"
    )
    link = f"{base}/#/models/{model_name}/versions/{version}" if model_name and version else None
    return MlflowLinks(run, link, note)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _metrics_table(rows: Mapping[str, Mapping[str, float]]) -> list[str]:
    names = list(dict.fromkeys(c for row in rows.values() for c in row))
    out = [
        "| metric | " + " | ".join(n.replace("_", " ") for n in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for metric, row in rows.items():
        out.append(f"| {metric} | " + " | ".join(_fmt(row.get(n)) for n in names) + " |")
    return out


def _link(text: str, target: str) -> str:
    return f"[{text}]({target})" if target.startswith("http") else f"{text} ({target})"


def _gate_lines(record: RegistrationRecord, links: MlflowLinks | None) -> list[str]:
    name = record.model_name
    champion_now = f"v{record.champion_now}" if record.champion_now else "none"
    if not record.registered:
        lines = [
            f"- **{name}**: nothing registered; champion stays {champion_now}",
            f"- reason: {record.reason}",
        ]
    else:
        verdict = "promoted to champion" if record.promoted else "not promoted"
        lines = [
            f"- **{name} v{record.version}**, deployed variant "
            f"`{record.variant}`, aliases {', '.join(record.aliases)}",
            f"- gate on {record.gate_metric}: **{verdict}**: {record.reason}",
            f"- {record.gate_metric}: this model {_fmt(record.candidate_value)}"
            f", the champion before it "
            + (
                f"v{record.champion_before} {_fmt(record.champion_before_value)} "
                f"({record.champion_before_scored})"
                if record.champion_before
                else "none"
            ),
            f"- champion now: {champion_now}",
        ]
    if links is not None:
        text = f"{name} v{record.version}"
        version = f", {_link(text, links.version)}" if links.version else ""
        lines.append(f"- MLflow: {_link('training run', links.run)}{version}{links.note}")
    return lines


def summary_markdown(
    domain: str,
    layout: DomainLayout,
    summary_lines: Sequence[str],
    links: Mapping[str, MlflowLinks],
    promotion: Promotion | SeriesPromotion | None = None,
) -> str:
    """The run's summary: per unit, the test metrics beside the baselines, the deployed
    variant and the gate's decision with links to MLflow; then the register stage's
    summary lines (what ``nnpipe run`` prints)."""
    registrations = read_registration(layout.registration, domain).units()
    metrics = headline_metrics(layout.metrics) if layout.metrics.is_file() else {}
    promoted: Mapping[str, PromotionRow] = promotion.units() if promotion else {}
    out = [f"# {domain}: pipeline summary", ""]
    for unit, record in registrations.items():
        title = unit or record.model_name
        out += [f"## {title}", ""]
        if unit in metrics:
            table = _metrics_table(metrics_beside_baselines(metrics[unit]))
            out += ["Test metrics beside the baselines:", "", *table, ""]
        if unit in promoted and promoted[unit].reason:
            out += [f"Deployed variant: {promoted[unit].reason}", ""]
        out += ["Registry:", "", *_gate_lines(record, links.get(unit)), ""]
    if summary_lines:
        out += ["## Summary", "", "```", *summary_lines, "```", ""]
    return "\n".join(out)


COMPRESSION_COLUMNS = (
    "size_bytes",
    "size_ratio",
    "latency_ms_median",
    "latency_ratio",
    "build_seconds",
)


def compression_rows(
    compression: CompressionTable | SeriesCompressionTable,
    promotion: Promotion | SeriesPromotion | None,
) -> list[dict[str, Any]]:
    """The compression variants as table rows: status, size, the gate metric and its change
    from the reference, parity, latency, and promote's verdict (``chosen`` for the one
    deployed). Numbers rounded for reading; the full table is compression.json."""
    metric, parity = compression.metric, compression.parity
    promoted: Mapping[str, PromotionRow] = promotion.units() if promotion else {}
    rows = []
    for unit, table in compression.units().items():
        verdicts = promoted[unit].verdicts if unit in promoted else {}
        for name, variant in table.variants.items():
            row: dict[str, Any] = {"series": unit} if unit else {}
            row |= {"variant": name, "status": variant.get("status")}
            for key in (metric, f"{metric}_delta", parity, *COMPRESSION_COLUMNS):
                value = variant.get(key)
                row[key] = round(value, 4) if _number(value) else value
            row["promote"] = verdicts.get(name, "")
            row["note"] = variant.get("reason") or ""
            rows.append(row)
    return rows
