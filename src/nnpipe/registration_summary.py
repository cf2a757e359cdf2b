"""The run summary's lines on what was built, deployed and registered (every domain's
``summary_lines`` hook prints them: ``nnpipe.domains.<name>.summary``)."""

from __future__ import annotations

from nnpipe.artifacts import PromotedSpec, RegistrationRecord, read_compression
from nnpipe.layout import DomainLayout


def variant_lines(layout: DomainLayout, domain: str) -> list[str]:
    """The run summary's line on the compress stage's table, where there is one."""
    if not layout.compression.is_file():
        return []
    units = read_compression(layout.compression, domain).units()
    rows = [r for t in units.values() for r in t.variants.values()]
    ok = sum(r.get("status") == "ok" for r in rows)
    return [
        f"variants: {ok} of {len(rows)} built and measured ({len(rows) - ok} unsupported); "
        f"table {layout.compression_report}"
    ]


def deployed_lines(record: RegistrationRecord, deploy: PromotedSpec) -> list[str]:
    """The run summary's lines on what was deployed and registered."""
    lines = [f"deployed variant: {deploy.variant or 'none'} ({deploy.reason})"]
    if not record.registered:
        return [
            *lines,
            f"model {record.model_name}: {record.reason}; {champion_text(record.champion_now)}",
        ]
    return [
        *lines,
        f"model {record.model_name} v{record.version} -> aliases "
        f"{record.aliases}; {champion_text(record.champion_now)}",
        f"gate: {record.reason}",
    ]


def champion_text(version: str | None) -> str:
    """``champion is v3``, or that there is none (never ``vNone``)."""
    return f"champion is v{version}" if version else "no champion yet (nothing to serve)"
