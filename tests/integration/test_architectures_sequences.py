"""Each sequence architecture the flow project does not already run (it runs the LSTM)
goes through the same stages with no special case, and its deployed variant forecasts from
bars; gradient accumulation, clipping and L1 ride along."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from stage_runs import check_outputs, run_pipeline

from nnpipe.serving.predictor import load_predictor

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "model, switches",
    [
        ("transformer", ["ohlcv.train.gradient_accumulation_steps=2"]),
        ("gru", ["ohlcv.train.clip_norm=1.0"]),
        ("simple_rnn", ["ohlcv.train.l1=1e-5", "ohlcv.train.units=[8, 4]"]),
    ],
)
def test_sequence_architecture_runs_every_stage_and_serves(flow_copy, model, switches):
    params = run_pipeline(
        flow_copy,
        "ohlcv",
        [f"ohlcv.train.model={model}", "ohlcv.evaluate.walk_forward_folds=0", *switches],
    )
    assert check_outputs(flow_copy, params, "ohlcv", "SYNTH")["variant"]
    predictor = load_predictor(flow_copy / "models" / "ohlcv-deploy" / "SYNTH")
    bars = [
        {"Open": 100 + i, "High": 101 + i, "Low": 99 + i, "Close": 100.5 + i, "Volume": 1e6}
        for i in range(40)
    ]
    assert np.isfinite(predictor.predict_input(pd.DataFrame(bars))["price"][0])
