"""compress: the deployable variants of each unit's model, each measured by running it.

The variants (``<domain>.compress.variants``): the Keras reference, TFLite float32,
dynamic-range, float16 and full-integer quantization, and pruned versions; each is built
and measured in a child process (a converter crash costs one variant, an "unsupported"
row). Every variant runs on the test (and validation) inputs; the domain scores its
outputs by its own metric and its parity with the reference
(:class:`nnpipe.domains.contract.CompressionPart`); sizes and latencies are put as ratios
to the reference's. Output: ``models/<domain>-variants/[<unit>/]``,
``reports/<domain>/compression.json`` (the table, read by promote) and ``compression.md``.
"""

from __future__ import annotations

import logging
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

from nnpipe import tracking
from nnpipe.artifacts import CompressionTable, SeriesCompressionTable, UnitVariants
from nnpipe.compression.runner import (
    clean_job_dir,
    predictions,
    reference_predictions,
    run_variants,
)
from nnpipe.compression.table import add_ratios, markdown
from nnpipe.config import Params
from nnpipe.domains.contract import Domain, Unit
from nnpipe.domains.parts import CompressionPart
from nnpipe.domains.registry import get_domain
from nnpipe.io import atomic_directory, atomic_write_text
from nnpipe.layout import domain_layout
from nnpipe.stages import cli_main, require

log = logging.getLogger(__name__)


def measure_unit(
    params: Params, domain: Domain[Any], part: CompressionPart, unit: Unit, out: Path
) -> UnitVariants:
    """Build, run and score one unit's variants in ``out``."""
    layout = domain_layout(params, domain.name)
    c = domain.section(params).compress
    model_path = require(layout.model / unit.key / "model.keras", "train", domain.name)
    run = domain.train_run_model().read(
        require(layout.model / unit.key / "run.json", "train", domain.name), domain.name
    )
    inputs = part.inputs(params, unit)
    job = {
        "model": str(model_path.resolve()),
        "variants": c.variants,
        "threads": c.threads,
        "latency_runs": c.latency_runs,
        "seed": params.seed,
        "loss": inputs.loss,
        "prune": c.prune.model_dump(),
    }
    rows = run_variants(out, job, inputs.data, timeout=c.timeout_seconds)
    inputs.score(rows, partial(predictions, out), reference_predictions(out, rows))
    clean_job_dir(out, rows)
    return UnitVariants(run_id=run.run_id, variants=add_ratios(rows, part.metric))


def write_table(
    params: Params, domain: Domain[Any], part: CompressionPart, tables: dict[str, UnitVariants]
) -> CompressionTable | SeriesCompressionTable:
    if domain.unit_key is None:
        (table,) = tables.values()
        return CompressionTable(
            metric=part.metric,
            parity=part.parity,
            run_id=table.run_id,
            variants=table.variants,
            **part.table_fields(params),
        )
    return SeriesCompressionTable(metric=part.metric, parity=part.parity, series=tables)


def log_rows(part: CompressionPart, tables: dict[str, UnitVariants]) -> None:
    for key, table in tables.items():
        for variant, row in table.variants.items():
            name = f"{key} {variant}" if key else variant
            if row["status"] == "ok":
                log.info(
                    "compress: %-20s %8.1f KiB (x%.3f), %s %.4f, %s %.4g, %.3f ms",
                    name,
                    row["size_bytes"] / 1024,
                    row.get("size_ratio", 1.0),
                    part.metric,
                    row[part.metric],
                    part.parity,
                    row[part.parity],
                    row["latency_ms_median"],
                )
            else:
                log.warning("compress: %-20s unsupported: %s", name, row["reason"])


def run(params: Params, domain: str) -> dict:
    d = get_domain(domain)
    part = d.compression()
    layout = domain_layout(params, domain)
    units = d.units(params)
    layout.reports.mkdir(parents=True, exist_ok=True)
    with (
        atomic_directory(layout.variants) as out,
        tempfile.TemporaryDirectory(dir=layout.reports, prefix=".compress.") as staging,
    ):
        tables = {u.key: measure_unit(params, d, part, u, out / u.key) for u in units}
        reports = [
            markdown(t.variants, part.metric, part.parity, *part.report(params, u))
            for u, t in zip(units, tables.values(), strict=True)
        ]
        json_tmp = write_table(params, d, part, tables).write(Path(staging) / "compression.json")
        md_tmp = atomic_write_text(Path(staging) / "compression.md", "\n".join(reports))
        for t in tables.values():
            with tracking.start_run(params, domain, "compress", run_id=t.run_id):
                # the table is the artifact; one summary number on the run (register adds
                # the deployed variant's size and metric)
                built = sum(r["status"] == "ok" for r in t.variants.values())
                tracking.log_metrics({"compression.variants_built": built})
                tracking.log_artifacts(json_tmp, "compression")
                tracking.log_artifacts(md_tmp, "compression")
        json_tmp.replace(layout.compression)
        md_tmp.replace(layout.compression_report)
    log_rows(part, tables)
    status = {k: {v: r["status"] for v, r in t.variants.items()} for k, t in tables.items()}
    if d.unit_key is None:
        return {"stage": "compress", "variants": status[""]}
    return {"stage": "compress", d.unit_key: status}


def main(argv: list[str] | None = None) -> int:
    return cli_main(__spec__.name, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
