"""promote: choose the X-ray variant to deploy by the rule in ``xray.promote``.

Among the variants compress built, the smallest whose test ROC-AUC is within
``metric_tolerance`` of the Keras reference's and whose class decisions agree with the
reference's on at least ``min_decision_agreement`` of the test images (each variant at its
own threshold, chosen on validation); near-equal sizes go to the faster. None qualifies:
the reference, or nothing (``fallback``). Output: ``models/xray-deploy/`` (the chosen
variant, the reference, the table and ``deploy.json``, which register publishes as an
MLflow pyfunc) and ``reports/xray/promotion.json`` (DVC metrics).
"""

from __future__ import annotations

import logging

from nnpipe import tracking
from nnpipe.artifacts import CompressionTable, Promotion
from nnpipe.compression.selection import SelectionRule, rule_from_params, select_variant
from nnpipe.config import Params
from nnpipe.domains.xray.artifacts import XrayDeploySpec, XrayFeatures, XrayTrainRun
from nnpipe.domains.xray.domain import XRAY
from nnpipe.domains.xray.scoring import VARIANT_METRIC as METRIC
from nnpipe.domains.xray.scoring import VARIANT_PARITY as PARITY
from nnpipe.io import atomic_directory
from nnpipe.layout import domain_layout
from nnpipe.serving.deploy import promotion_summary, write_deploy_folder
from nnpipe.stages import cli_main, require
from nnpipe.stages.registration import check_same_run

log = logging.getLogger(__name__)


def selection_rule(params: Params, domain: str) -> SelectionRule:
    p = XRAY.section(params).promote
    return rule_from_params(
        p,
        metric=METRIC,
        higher_is_better=True,
        parity=PARITY,
        parity_bound=p.min_decision_agreement,
        parity_higher_is_better=True,
    )


def run(params: Params, domain: str) -> dict:
    cfg = XRAY.section(params)
    layout = domain_layout(params, domain)
    table = CompressionTable.read(require(layout.compression, "compress", domain), domain)
    run_info = XrayTrainRun.read(require(layout.model / "run.json", "train", domain), domain)
    meta = XrayFeatures.read(require(layout.features / "meta.json", "featurize", domain), domain)
    check_same_run(table.run_id, run_info.run_id, str(layout.compression), domain, "compress")
    selection = select_variant(table.variants, selection_rule(params, domain))
    row = table.variants.get(selection.variant or "", {})
    spec = {
        "domain": domain,
        "classes": cfg.classes,
        "image_size": meta.image_size,
        "resize": cfg.featurize.resize,
        "max_side": cfg.ingest.folder.max_side if cfg.ingest.source == "folder" else None,
        "run_id": run_info.run_id,
        "metric": METRIC,
        "parity": PARITY,
        "threshold": row.get("threshold", table.threshold),
    }
    with atomic_directory(layout.deploy) as tmp:
        record = XrayDeploySpec.model_validate(
            write_deploy_folder(tmp, layout.variants, selection, table.variants, spec)
        )
        summary = Promotion.model_validate(promotion_summary(record).dump())
        with tracking.start_run(params, domain, "promote", run_id=run_info.run_id):
            tracking.set_tags(
                {
                    "promote.variant": selection.variant or "none",
                    "promote.reason": selection.reason[:5000],
                }
            )
    summary.write(layout.promotion)
    log.info("promote: %s", selection.reason)
    return {"stage": "promote", "variant": selection.variant, "reason": selection.reason}


def main(argv: list[str] | None = None) -> int:
    return cli_main(__spec__.name, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
