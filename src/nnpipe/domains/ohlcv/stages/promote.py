"""The OHLCV part of the promote stage (:mod:`nnpipe.stages.promote`): the rule in
``ohlcv.promote`` and what each series' ``deploy.json`` records of its windows.

The rule: among the variants compress built, the smallest whose test MAE relative to
persistence is at most ``metric_tolerance`` above the Keras reference's and whose forecasts
stay within ``max_relative_diff`` (a share of the last Close) of the reference's on every
test day; near-equal sizes go to the faster.
"""

from __future__ import annotations

from typing import Any

from nnpipe.artifacts import TrainRun, UnitVariants
from nnpipe.compression.selection import SelectionRule, rule_from_params
from nnpipe.config import Params
from nnpipe.domains.contract import Unit
from nnpipe.domains.ohlcv.artifacts import OhlcvFeatures, OhlcvTrainRun
from nnpipe.domains.ohlcv.domain import OHLCV
from nnpipe.domains.ohlcv.scoring import VARIANT_METRIC as METRIC
from nnpipe.layout import domain_layout
from nnpipe.stages import require

PARITY = "max_relative_diff"


class OhlcvPromotion:
    def selection_rule(self, params: Params) -> SelectionRule:
        p = OHLCV.section(params).promote
        return rule_from_params(
            p,
            metric=METRIC,
            higher_is_better=False,
            parity=PARITY,
            parity_bound=p.max_relative_diff,
            parity_higher_is_better=False,
        )

    def deploy_spec(
        self, params: Params, unit: Unit, run: TrainRun, table: UnitVariants, variant: str | None
    ) -> dict[str, Any]:
        layout = domain_layout(params, OHLCV.name)
        meta = OhlcvFeatures.read(
            require(layout.features / "meta.json", "featurize", OHLCV.name), OHLCV.name
        )
        assert isinstance(run, OhlcvTrainRun)  # the domain's train_run_model
        return {
            "series": unit.key,
            "look_back": meta.look_back,
            "horizon": meta.horizon,
            "target": meta.target,
            "features": run.features,
            "derived": list(OHLCV.section(params).featurize.derived),
            "metric": METRIC,
            "parity": PARITY,
        }
