"""The monitor names the model it compares: a deployed model trained for another series
than the one the project's params name is refused, not reported under the wrong name."""

from __future__ import annotations

import pytest

from nnpipe.domains.contract import Unit
from nnpipe.monitoring.frame import MonitorInputError
from nnpipe.stages.monitor_inputs import check_unit

SYNTH = Unit("SYNTH", "ohlcv/SYNTH", "ohlcv-forecaster")


def test_a_model_of_another_series_is_refused_naming_both():
    with pytest.raises(MonitorInputError, match="is the model of series GOOG, not of SYNTH"):
        check_unit({"series": "GOOG"}, SYNTH, "series", "ohlcv-forecaster@champion (v3)")


@pytest.mark.parametrize(
    ("spec", "unit_key"),
    [({"series": "SYNTH"}, "series"), ({}, "series"), ({"series": "GOOG"}, None)],
)
def test_the_model_of_the_named_series_or_of_a_domain_without_units_passes(spec, unit_key):
    check_unit(spec, SYNTH, unit_key, "the deploy folder models/ohlcv-deploy/SYNTH")
