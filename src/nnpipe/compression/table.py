"""The variant table: rows measured by the worker, scored by the domain, compared with the
Keras float32 reference, and written as JSON (DVC metrics) and markdown."""

from __future__ import annotations

from collections.abc import Sequence

REFERENCE = "keras_float32"


def add_ratios(rows: dict[str, dict], metric: str) -> dict[str, dict]:
    """Each ok row gains its size, gzip size, latency and metric relative to the reference."""
    ref = rows.get(REFERENCE)
    if not ref or ref.get("status") != "ok":
        return rows
    for row in rows.values():
        if row.get("status") != "ok":
            continue
        row["size_ratio"] = row["size_bytes"] / ref["size_bytes"]
        row["gzip_ratio"] = row["gzip_bytes"] / ref["gzip_bytes"]
        row["latency_ratio"] = row["latency_ms_median"] / ref["latency_ms_median"]
        if row.get(metric) is not None and ref.get(metric) is not None:
            row[f"{metric}_delta"] = row[metric] - ref[metric]
    return rows


def _fmt(value: object, spec: str) -> str:
    return "" if value is None else format(value, spec)


def markdown(
    rows: dict[str, dict], metric: str, parity: str, title: str, columns: Sequence[str] = ()
) -> str:
    """A short report: one line per variant, unsupported ones with their reason."""
    lines = [
        f"# {title}",
        "",
        f"| variant | size KiB | gzip KiB | size x | gzip x | {metric} | "
        f"{parity} | latency ms (median / p99) | inputs/s | sparsity | build s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        if r.get("status") != "ok":
            lines.append(f"| {name} | unsupported: {r.get('reason')} |||||||||| ")
            continue
        lines.append(
            f"| {name} | {r['size_bytes'] / 1024:.1f} | {r['gzip_bytes'] / 1024:.1f} | "
            f"{_fmt(r.get('size_ratio'), '.3f')} | {_fmt(r.get('gzip_ratio'), '.3f')} | "
            f"{_fmt(r.get(metric), '.4f')} | {_fmt(r.get(parity), '.4g')} | "
            f"{r['latency_ms_median']:.3f} / {r['latency_ms_p99']:.3f} | "
            f"{r['throughput_per_s']:.0f} | {_fmt(r.get('sparsity'), '.2f')} | "
            f"{_fmt(r.get('build_seconds'), '.1f')} |"
        )
    lines += ["", *columns]
    return "\n".join(lines) + "\n"
