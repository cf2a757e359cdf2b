"""The OHLCV part of the promote stage (:mod:`nnpipe.stages.promote`): the rule in
``ohlcv.promote`` and what each series' ``deploy.json`` records of its windows.

The rule: among the variants compress built, the smallest whose test MAE relative to
persistence is at most ``metric_tolerance`` above the Keras reference's and whose forecasts
stay within ``max_relative_diff`` (a share of the last Close) of the reference's on every
test day; near-equal sizes go to the faster.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from nnpipe.artifacts import TrainRun, UnitVariants
from nnpipe.compression.selection import SelectionRule, rule_from_params
from nnpipe.config import Params
from nnpipe.domains.contract import Unit
from nnpipe.domains.ohlcv.artifacts import OhlcvFeatures, OhlcvTrainRun
from nnpipe.domains.ohlcv.domain import OHLCV
from nnpipe.domains.ohlcv.scoring import VARIANT_METRIC as METRIC
from nnpipe.layout import domain_layout
from nnpipe.monitoring.frame import MonitorFrame
from nnpipe.serving.predictor import Predictor
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

    def monitor_reference(self, params: Params, unit: Unit, predictor: Predictor) -> MonitorFrame:
        """The series' latest training windows, described as serving
        describes a forecast request's window, with the deployed model's forecasts."""
        from nnpipe.domains.ohlcv.monitoring import forecast_output, window_features
        from nnpipe.domains.ohlcv.predictor import OhlcvPredictor

        assert isinstance(predictor, OhlcvPredictor)  # the domain's predictor hook
        cfg = OHLCV.section(params)
        layout = domain_layout(params, OHLCV.name)
        meta = OhlcvFeatures.read(
            require(layout.features / "meta.json", "featurize", OHLCV.name), OHLCV.name
        )
        start, end = meta.series[unit.key].splits["train"].rows
        table = pd.read_csv(
            require(layout.features / f"{unit.key}.csv", "featurize", OHLCV.name), index_col=0
        )
        features = list(predictor.spec.features)
        values = table[features].to_numpy(np.float64)[start:end]
        look_back = predictor.spec.look_back
        windows = np.lib.stride_tricks.sliding_window_view(values, (look_back, len(features)))
        windows = windows[:, 0]
        # the latest training windows, consecutive: the monitor compares a window of days
        # with the reference's own stretches of that length
        windows = windows[-cfg.monitor.reference_rows :]
        out = predictor.predict_windows(windows)
        close = features.index("Close")
        return MonitorFrame.from_records(
            [window_features(w, features) for w in windows],
            [
                forecast_output(f, p, w[-1, close])
                for f, p, w in zip(out["forecast"], out["price"], windows, strict=True)
            ],
        )
