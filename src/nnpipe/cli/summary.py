"""The summary ``nnpipe run`` prints at the end: each domain's headline numbers (its
``summary_lines`` hook), each stage's time, and what to do next."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nnpipe.domains.registry import DOMAINS, get_domain

if TYPE_CHECKING:
    from nnpipe.config import Params


def duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"


def stage_time_lines(
    results: dict[str, dict[str, dict[str, Any]]],
    flow_seconds: dict[str, float],
) -> list[str]:
    """A table of each stage's wall time per domain ("current" where DVC skipped it), and
    each flow's whole time (Prefect and DVC included)."""
    domains = list(results)
    steps = list(dict.fromkeys(step for d in domains for step in results[d]))

    def cell(result: dict[str, Any] | None) -> str:
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


def print_summary(
    params: Params,
    results: dict[str, Any],
    flow_seconds: dict[str, float],
    headlines: dict[str, list[str]] | None = None,
) -> None:
    """Where the results are: each domain's headline numbers, model versions and aliases,
    the gate's reason, each stage's time, and what to do next (UI, serving, DVC).
    ``headlines``: each domain's summary lines, when the process that ran its flow wrote
    them (reading them here would import that domain's modules, TensorFlow's among them)."""
    from nnpipe import store
    from nnpipe.serving.serve_plan import serve_hint

    lines = ["", "=" * 72, "nnpipe: pipeline finished", "=" * 72]
    for domain in results:
        found = (headlines or {}).get(domain)
        lines += [
            f"[{domain}] {line}"
            for line in (get_domain(domain).summary_lines(params) if found is None else found)
        ]
    lines += [
        "",
        "Stage times (wall clock):",
        *(f"  {line}" for line in stage_time_lines(results, flow_seconds)),
        "",
    ]
    uri = store.tracking_uri(params)
    serve = serve_hint(params, uri)
    example = next(iter(DOMAINS))  # an experiment to try, on the first domain
    lines += [
        f"MLflow store: {uri}",
        f"Open the UI:  {ui_hint(uri)}",
        f"Serve:        {serve}" if serve else "Serve:        nothing is registered yet",
        "Compare with DVC: commit this run, then run an experiment (in the venv:",
        "  source .venv/bin/activate, since dvc.yaml's stages run `python -m nnpipe`):",
        "  git add dvc.lock params.yaml reports && git commit -m 'pipeline run'",
        f"  dvc exp run -S {example}.train.epochs=20 && dvc exp show",
        "=" * 72,
    ]
    print("\n".join(lines))
