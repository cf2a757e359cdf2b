"""promote: choose each series' forecaster variant to deploy by the rule in
``ohlcv.promote``.

Among the variants compress built, the smallest whose test MAE relative to persistence is
at most ``metric_tolerance`` above the Keras reference's and whose forecasts stay within
``max_relative_diff`` (a share of the last Close) of the reference's on every test day;
near-equal sizes go to the faster. None qualifies: the reference, or nothing
(``fallback``). Output: ``models/ohlcv-deploy/<series>/`` (the chosen variant, the
reference, the table and ``deploy.json``, which register publishes as an MLflow pyfunc)
and ``reports/ohlcv/promotion.json`` (DVC metrics).
"""

from __future__ import annotations

import logging

from nnpipe import tracking
from nnpipe.artifacts import PromotionRow, SeriesCompressionTable, SeriesPromotion
from nnpipe.compression.selection import SelectionRule, rule_from_params, select_variant
from nnpipe.config import Params
from nnpipe.domains.ohlcv.artifacts import OhlcvDeploySpec, OhlcvFeatures, OhlcvTrainRun
from nnpipe.domains.ohlcv.domain import OHLCV
from nnpipe.domains.ohlcv.scoring import VARIANT_METRIC as METRIC
from nnpipe.io import atomic_directory
from nnpipe.layout import domain_layout
from nnpipe.serving.deploy import promotion_summary, write_deploy_folder
from nnpipe.stages import cli_main, require
from nnpipe.stages.registration import check_same_run

log = logging.getLogger(__name__)

PARITY = "max_relative_diff"


def selection_rule(params: Params, domain: str) -> SelectionRule:
    p = OHLCV.section(params).promote
    return rule_from_params(
        p,
        metric=METRIC,
        higher_is_better=False,
        parity=PARITY,
        parity_bound=p.max_relative_diff,
        parity_higher_is_better=False,
    )


def run(params: Params, domain: str) -> dict:
    cfg = OHLCV.section(params)
    layout = domain_layout(params, domain)
    table = SeriesCompressionTable.read(require(layout.compression, "compress", domain), domain)
    meta = OhlcvFeatures.read(require(layout.features / "meta.json", "featurize", domain), domain)
    rule = selection_rule(params, domain)
    summaries: dict[str, PromotionRow] = {}
    with atomic_directory(layout.deploy) as tmp:
        for name in meta.series:
            run_info = OhlcvTrainRun.read(
                require(layout.model / name / "run.json", "train", domain), domain
            )
            series_table = table.series.get(name)
            check_same_run(
                series_table.run_id if series_table else None,
                run_info.run_id,
                f"{layout.compression} (series {name})",
                domain,
                "compress",
            )
            assert series_table is not None  # check_same_run refused a missing one
            selection = select_variant(series_table.variants, rule)
            spec = {
                "domain": domain,
                "series": name,
                "look_back": meta.look_back,
                "horizon": meta.horizon,
                "target": meta.target,
                "features": run_info.features,
                "derived": list(cfg.featurize.derived),
                "run_id": run_info.run_id,
                "metric": METRIC,
                "parity": PARITY,
            }
            record = OhlcvDeploySpec.model_validate(
                write_deploy_folder(
                    tmp / name, layout.variants / name, selection, series_table.variants, spec
                )
            )
            summaries[name] = promotion_summary(record)
            with tracking.start_run(params, domain, "promote", run_id=run_info.run_id):
                tracking.set_tags(
                    {
                        "promote.variant": selection.variant or "none",
                        "promote.reason": selection.reason[:5000],
                    }
                )
            log.info("promote: %s: %s", name, selection.reason)
    SeriesPromotion(series=summaries).write(layout.promotion)
    return {
        "stage": "promote",
        "series": {n: {"variant": s.variant, "reason": s.reason} for n, s in summaries.items()},
    }


def main(argv: list[str] | None = None) -> int:
    return cli_main(__spec__.name, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
