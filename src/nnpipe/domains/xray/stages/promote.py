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
from nnpipe.compression.selection import SelectionRule, rule_from_params, select_variant
from nnpipe.config import Params
from nnpipe.domains.xray.stages.compress import METRIC, PARITY
from nnpipe.io import atomic_directory, atomic_write_json, read_json
from nnpipe.layout import domain_layout
from nnpipe.registration import check_same_run
from nnpipe.serving.deploy import promotion_summary, write_deploy_folder
from nnpipe.stages import cli_main, require

log = logging.getLogger(__name__)


def selection_rule(params: Params, domain: str) -> SelectionRule:
    p = params.domain(domain).promote
    return rule_from_params(
        p,
        metric=METRIC,
        higher_is_better=True,
        parity=PARITY,
        parity_bound=p.min_decision_agreement,
        parity_higher_is_better=True,
    )


def run(params: Params, domain: str) -> dict:
    cfg = params.domain(domain)
    layout = domain_layout(params, domain)
    table = read_json(require(layout.compression, "compress", domain))
    run_info = read_json(require(layout.model / "run.json", "train", domain))
    meta = read_json(require(layout.features / "meta.json", "featurize", domain))
    check_same_run(
        table.get("run_id"), run_info["run_id"], str(layout.compression), domain, "compress"
    )
    selection = select_variant(table["variants"], selection_rule(params, domain))
    spec = {
        "domain": domain,
        "classes": cfg.classes,
        "image_size": meta["image_size"],
        "resize": cfg.featurize.resize,
        "max_side": cfg.ingest.folder.max_side if cfg.ingest.source == "folder" else None,
        "run_id": run_info["run_id"],
        "metric": METRIC,
        "parity": PARITY,
    }
    row = table["variants"].get(selection.variant or "", {})
    spec["threshold"] = row.get("threshold", table["threshold"])
    with atomic_directory(layout.deploy) as tmp:
        record = write_deploy_folder(tmp, layout.variants, selection, table["variants"], spec)
        summary = promotion_summary(record)
        with tracking.start_run(params, domain, "promote", run_id=run_info["run_id"]):
            tracking.set_tags(
                {
                    "promote.variant": selection.variant or "none",
                    "promote.reason": selection.reason[:5000],
                }
            )
    atomic_write_json(layout.promotion, summary)
    log.info("promote: %s", selection.reason)
    return {"stage": "promote", "variant": selection.variant, "reason": selection.reason}


def main(argv: list[str] | None = None) -> int:
    return cli_main(__spec__.name, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
