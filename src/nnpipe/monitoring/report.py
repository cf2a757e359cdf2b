"""The monitor's report: one per model, as JSON (``reports/<domain>/monitor.json``, which
``dvc metrics show`` reads), as a self-contained HTML page (inline CSS and SVG: it opens
offline, from the file or from MLflow's artifact view) and as the markdown of a Prefect
artifact."""

from __future__ import annotations

import html
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from nnpipe.monitoring.drift import Check

SCHEMA_VERSION = 1


class MonitoredModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    version: str
    alias: str
    variant: str


class MonitorWindow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: Literal["log", "batch"]
    location: str  # the log's store, or the batch's path
    since: str | None = None  # ISO times of the log window
    until: str | None = None


class MonitorReport(BaseModel):
    """One model's monitoring result."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    domain: str
    unit: str  # "" for a domain's one model, else the series
    generated_at: str
    model: MonitoredModel
    window: MonitorWindow
    rows: int
    reference_rows: int
    checks: list[Check]
    drifted: bool  # any check drifted
    drifted_checks: list[str]
    quality: dict[str, int] = {}
    performance: dict[str, Any] | None = None
    alarm: bool  # drift or live performance past its threshold: retraining is asked for
    alarm_reasons: list[str]
    event: str | None = None  # what became of the alarm: emitted, in cooldown, no server

    def metrics(self) -> dict[str, float]:
        """The numbers MLflow records of it: each check's statistic and p-value, the
        counts, and live performance."""
        out: dict[str, float] = {
            "rows": float(self.rows),
            "drifted_checks": float(len(self.drifted_checks)),
            "alarm": float(self.alarm),
        }
        for check in self.checks:
            out[f"{check.name}.statistic"] = check.statistic
            if check.p_value is not None:
                out[f"{check.name}.p_value"] = check.p_value
        for key, value in (self.performance or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[f"live.{key}"] = float(value)
        return out


def _fmt(value: float | None) -> str:
    if value is None:
        return "–"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.2e}"
    return f"{value:.4g}"


def verdict(report: MonitorReport) -> str:
    what = f"{report.model.name} v{report.model.version} ({report.model.variant})"
    if report.alarm:
        return f"ALARM for {what}: " + "; ".join(report.alarm_reasons)
    return f"no drift for {what}: {len(report.checks)} checks passed on {report.rows} rows"


def markdown(reports: list[MonitorReport]) -> str:
    """The Prefect artifact: each model's verdict and its checks as a table."""
    parts = []
    for r in reports:
        title = f"{r.domain}" + (f" / {r.unit}" if r.unit else "")
        parts += [
            f"## {title}: {'**ALARM**' if r.alarm else 'ok'}",
            "",
            verdict(r),
            "",
            f"{r.rows} rows from the {r.window.source} ({r.window.location}"
            + (f", {r.window.since} to {r.window.until}" if r.window.since else "")
            + f") against {r.reference_rows} training rows.",
            "",
            "| check | method | statistic | p-value | threshold | drifted |",
            "|---|---|---|---|---|---|",
            *(
                f"| {c.name} | {c.method} | {_fmt(c.statistic)} | {_fmt(c.p_value)} | "
                f"{'p <' if c.kind == 'p_value' else '>'} {c.threshold:g} | "
                f"{'**yes**' if c.drifted else 'no'} |"
                for c in r.checks
            ),
            "",
        ]
        if r.performance:
            shown = {k: v for k, v in r.performance.items() if not isinstance(v, (dict, list))}
            parts += [
                "Live performance: "
                + ", ".join(
                    f"{k} {_fmt(v) if isinstance(v, float) else v}" for k, v in shown.items()
                ),
                "",
            ]
        if r.event:
            parts += [f"Retraining: {r.event}", ""]
    return "\n".join(parts)


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222;max-width:70em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.25em .7em;border-bottom:1px solid #ddd;
text-align:left}th{background:#f4f4f4}.num{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#b00020;font-weight:600}.ok{color:#1b6e20}.box{padding:.6em 1em;border-radius:6px;
background:#f6f8fa}.alarm{background:#fdecea}
"""


def _bars(ref: dict[str, float], cur: dict[str, float]) -> str:
    """A small inline SVG of two binned distributions (a histogram's shares)."""
    keys = list(ref)
    if not keys:
        return ""
    top = max([*ref.values(), *cur.values(), 1e-9])
    w, h, bw = 8 * len(keys) * 2 + 10, 60, 7
    rects = []
    for i, k in enumerate(keys):
        for j, (side, colour) in enumerate(((ref, "#8aa"), (cur, "#d62"))):
            value = side.get(k, 0.0)
            bh = h * value / top
            x = 5 + i * 2 * (bw + 1) + j * (bw + 1)
            rects.append(
                f'<rect x="{x}" y="{h - bh:.1f}" width="{bw}" height="{bh:.1f}" fill="{colour}"/>'
            )
    return (
        f'<svg width="{w}" height="{h}" role="img" aria-label="reference (grey) and current '
        f'(orange) shares">{"".join(rects)}</svg>'
    )


def _checks_table(report: MonitorReport) -> str:
    e = html.escape
    rows = []
    for c in report.checks:
        ref_mean = c.reference_summary.get("mean")
        cur_mean = c.current_summary.get("mean")
        shown = (
            _bars(c.reference_summary, c.current_summary)
            if c.method in ("psi", "chi2") and ref_mean is None
            else f"{_fmt(ref_mean)} → {_fmt(cur_mean)}"
        )
        rows.append(
            f"<tr><td>{e(c.name)}</td><td>{e(c.method)}</td>"
            f'<td class="num">{_fmt(c.statistic)}</td><td class="num">{_fmt(c.p_value)}</td>'
            f"<td>{'p &lt;' if c.kind == 'p_value' else '&gt;'} {c.threshold:g}</td>"
            f'<td class="{"bad" if c.drifted else "ok"}">{"drifted" if c.drifted else "ok"}'
            f"</td><td>{shown}</td><td>{c.reference_n} / {c.current_n}</td></tr>"
        )
    return (
        "<table><tr><th>check</th><th>method</th><th>statistic</th><th>p-value</th>"
        "<th>threshold</th><th>result</th><th>reference → current</th>"
        "<th>rows (ref / cur)</th></tr>" + "".join(rows) + "</table>"
    )


def _section(r: MonitorReport) -> list[str]:
    e = html.escape
    window = f", {e(r.window.since or '')} to {e(r.window.until or '')}" if r.window.since else ""
    body = [
        f"<h2>{e(r.model.name)} v{e(r.model.version)} "
        f"({e(r.model.variant)}, alias {e(r.model.alias)})</h2>",
        f'<p class="box{" alarm" if r.alarm else ""}"><b>{e(verdict(r))}</b><br>'
        f"{r.rows} rows from the {e(r.window.source)} ({e(r.window.location)}{window}) "
        f"against {r.reference_rows} training rows; made {e(r.generated_at)}"
        + (f"<br>Retraining: {e(r.event)}" if r.event else "")
        + "</p>",
        _checks_table(r),
    ]
    if r.quality:
        found = ", ".join(f"{e(k)} {v}" for k, v in sorted(r.quality.items()))
        body.append(f"<p>Data quality: {found}</p>")
    if r.performance:
        perf = "".join(
            f"<tr><td>{e(k)}</td><td>{e(_fmt(v) if isinstance(v, float) else str(v))}</td></tr>"
            for k, v in r.performance.items()
        )
        body.append(f"<h3>Live performance</h3><table>{perf}</table>")
    return body


def to_html(reports: list[MonitorReport]) -> str:
    """A page that needs nothing but itself: no script, no font, no stylesheet to fetch."""
    e = html.escape
    body = [f"<h1>nnpipe monitoring: {e(reports[0].domain)}</h1>"]
    for r in reports:
        body += _section(r)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>nnpipe monitoring: {e(reports[0].domain)}</title><style>{_CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>"
    )
