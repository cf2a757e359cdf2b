"""promote: choose each unit's variant to deploy by the rule in ``<domain>.promote``.

Among the variants compress built, the smallest that keeps the domain's metric within the
rule's tolerance of the Keras reference's and stays close to the reference's outputs (the
domain's parity: decision agreement for X-ray, forecast difference for OHLCV); near-equal
sizes go to the faster. None qualifies: the reference, or nothing (``fallback``). Output:
``models/<domain>-deploy/[<unit>/]`` (the chosen variant, the reference, the table and
``deploy.json``, which register publishes as an MLflow pyfunc) and
``reports/<domain>/promotion.json`` (DVC metrics). The domain says the rule and what
``deploy.json`` records of its preprocessing (:class:`nnpipe.domains.contract.PromotionPart`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from nnpipe import tracking
from nnpipe.artifacts import (
    Promotion,
    PromotionRow,
    SeriesPromotion,
    UnitVariants,
    read_compression,
)
from nnpipe.compression.selection import select_variant
from nnpipe.config import Params
from nnpipe.domains.contract import Domain, Unit
from nnpipe.domains.registry import get_domain
from nnpipe.io import atomic_directory
from nnpipe.layout import domain_layout
from nnpipe.serving.deploy import (
    add_monitor_reference,
    promotion_summary,
    write_deploy_folder,
)
from nnpipe.serving.predictor import load_predictor
from nnpipe.stages import cli_main, require
from nnpipe.stages.registration import check_same_run

log = logging.getLogger(__name__)


def promote_unit(
    params: Params, domain: Domain[Any], unit: Unit, table: UnitVariants | None, staging: Path
) -> PromotionRow:
    """Choose the unit's variant and fill its deploy folder under ``staging``."""
    layout = domain_layout(params, domain.name)
    part = domain.promotion()
    run = domain.train_run_model().read(
        require(layout.model / unit.key / "run.json", "train", domain.name), domain.name
    )
    where = f"{layout.compression}" + (f" ({domain.unit_key} {unit.key})" if unit.key else "")
    check_same_run(table.run_id if table else None, run.run_id, where, domain.name, "compress")
    assert table is not None  # check_same_run refused a missing one
    selection = select_variant(table.variants, part.selection_rule(params))
    spec = {
        "domain": domain.name,
        **part.deploy_spec(params, unit, run, table, selection.variant),
        "run_id": run.run_id,
    }
    written = write_deploy_folder(
        staging / unit.key, layout.variants / unit.key, selection, table.variants, spec
    )
    if written["file"] is not None:  # what the monitor compares the served inputs with
        predictor = load_predictor(staging / unit.key, embedding=domain.logs_embedding)
        frame = part.monitor_reference(params, unit, predictor)
        written = add_monitor_reference(staging / unit.key, written, frame)
        log.info(
            "promote: %smonitoring reference of %d training rows%s",
            f"{unit.key}: " if unit.key else "",
            len(frame),
            f" with {frame.embedding.shape[1]}-wide embeddings"
            if frame.embedding is not None
            else "",
        )
    record = domain.deploy_spec_model().model_validate(written)
    with tracking.start_run(params, domain.name, "promote", run_id=run.run_id):
        tracking.set_tags(
            {
                "promote.variant": selection.variant or "none",
                "promote.reason": selection.reason[:5000],
            }
        )
    log.info("promote: %s%s", f"{unit.key}: " if unit.key else "", selection.reason)
    return promotion_summary(record)


def run(params: Params, domain: str) -> dict:
    d = get_domain(domain)
    layout = domain_layout(params, domain)
    tables = read_compression(require(layout.compression, "compress", domain), domain).units()
    with atomic_directory(layout.deploy) as staging:
        rows = {
            unit.key: promote_unit(params, d, unit, tables.get(unit.key), staging)
            for unit in d.units(params)
        }
    if d.unit_key is None:
        (row,) = rows.values()
        Promotion.model_validate(row.dump()).write(layout.promotion)
        return {"stage": "promote", "variant": row.variant, "reason": row.reason}
    SeriesPromotion(series=rows).write(layout.promotion)
    return {
        "stage": "promote",
        d.unit_key: {k: {"variant": r.variant, "reason": r.reason} for k, r in rows.items()},
    }


def main(argv: list[str] | None = None) -> int:
    return cli_main(__spec__.name, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
