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
from nnpipe.compression.selection import SelectionRule, rule_from_params, select_variant
from nnpipe.config import Params
from nnpipe.domains.ohlcv.stages.compress import METRIC
from nnpipe.io import atomic_directory, atomic_write_json, read_json
from nnpipe.layout import domain_layout
from nnpipe.registration import check_same_run
from nnpipe.serving.deploy import promotion_summary, write_deploy_folder
from nnpipe.stages import cli_main, require

log = logging.getLogger(__name__)

PARITY = "max_relative_diff"


def selection_rule(params: Params, domain: str) -> SelectionRule:
    p = params.domain(domain).promote
    return rule_from_params(
        p,
        metric=METRIC,
        higher_is_better=False,
        parity=PARITY,
        parity_bound=p.max_relative_diff,
        parity_higher_is_better=False,
    )


def run(params: Params, domain: str) -> dict:
    cfg = params.domain(domain)
    layout = domain_layout(params, domain)
    table = read_json(require(layout.compression, "compress", domain))
    meta = read_json(require(layout.features / "meta.json", "featurize", domain))
    rule = selection_rule(params, domain)
    summaries = {}
    with atomic_directory(layout.deploy) as tmp:
        for name in meta["series"]:
            run_info = read_json(require(layout.model / name / "run.json", "train", domain))
            series_table = table["series"].get(name, {})
            check_same_run(
                series_table.get("run_id"),
                run_info["run_id"],
                f"{layout.compression} (series {name})",
                domain,
                "compress",
            )
            selection = select_variant(series_table["variants"], rule)
            spec = {
                "domain": domain,
                "series": name,
                "look_back": meta["look_back"],
                "horizon": meta["horizon"],
                "target": meta["target"],
                "features": run_info["features"],
                "derived": list(cfg.featurize.derived),
                "run_id": run_info["run_id"],
                "metric": METRIC,
                "parity": PARITY,
            }
            record = write_deploy_folder(
                tmp / name, layout.variants / name, selection, series_table["variants"], spec
            )
            summaries[name] = promotion_summary(record)
            with tracking.start_run(params, domain, "promote", run_id=run_info["run_id"]):
                tracking.set_tags(
                    {
                        "promote.variant": selection.variant or "none",
                        "promote.reason": selection.reason[:5000],
                    }
                )
            log.info("promote: %s: %s", name, selection.reason)
    atomic_write_json(layout.promotion, {"series": summaries})
    return {
        "stage": "promote",
        "series": {
            n: {"variant": s["variant"], "reason": s["reason"]} for n, s in summaries.items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    return cli_main(__spec__.name, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
