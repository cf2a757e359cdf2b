"""Promotion's fallbacks through the stages, the registry and the pyfunc (real DVC and
MLflow), on copies of the flow project."""

from __future__ import annotations

import pytest
from conftest import nnpipe, working_directory
from mlflow import MlflowClient

from nnpipe.config import load_params
from nnpipe.io import read_json
from nnpipe.stages import get_stage

pytestmark = pytest.mark.integration


def client(project) -> MlflowClient:
    uri = f"sqlite:///{project / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def run_stage(project, step: str, *overrides: str) -> dict:
    """One X-ray stage in this process (the command line's path is `nnpipe stage`)."""
    with working_directory(project):
        return get_stage(step, "xray").run(load_params("params.yaml", list(overrides)))


def test_no_qualifying_variant_and_fallback_none_registers_nothing(flow_copy):
    before = client(flow_copy).search_model_versions("name='xray-classifier'")
    run_stage(flow_copy, "promote", "xray.promote.candidates=[]", "xray.promote.fallback=none")
    spec = read_json(flow_copy / "models/xray-deploy/deploy.json")
    assert spec["variant"] is None and spec["file"] is None
    assert "nothing is deployed (promote.fallback=none)" in spec["reason"]
    assert (flow_copy / "models/xray-deploy/reference.keras").is_file()  # kept for the record
    done = nnpipe(flow_copy, "stage", "register", "--domain", "xray")
    record = read_json(flow_copy / "reports/xray/registration.json")
    assert record["registered"] is False and "nothing registered" in record["reason"]
    assert record["champion_now"] == str(before[0].version)  # the champion stays
    assert "nothing registered" in done.stderr
    assert len(client(flow_copy).search_model_versions("name='xray-classifier'")) == len(before)


def test_fallback_reference_deploys_the_keras_model_behind_the_same_pyfunc(flow_copy, monkeypatch):
    run_stage(flow_copy, "promote", "xray.promote.candidates=[]")
    spec = read_json(flow_copy / "models/xray-deploy/deploy.json")
    assert spec["variant"] == "keras_float32" and spec["format"] == "keras"
    assert "the Keras reference is deployed" in spec["reason"]
    run_stage(flow_copy, "register")
    record = read_json(flow_copy / "reports/xray/registration.json")
    assert record["registered"] and record["variant"] == "keras_float32"
    # the champion (the TFLite variant of the flow run) was re-scored through its pyfunc
    assert "re-scored" in record["champion_before_scored"]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{flow_copy / 'mlflow.db'}")
    import mlflow.pyfunc
    import numpy as np

    model = mlflow.pyfunc.load_model(f"models:/xray-classifier/{record['version']}")
    out = model.predict(np.full((2, 50, 40), 120.0))
    assert list(out.columns) == ["probability", "label", "threshold"] and len(out) == 2
