"""Tuning trials on a real local Dask cluster through Prefect, and promotion's fallbacks
through the stages, the registry and the pyfunc (real Prefect, DVC, MLflow)."""

from __future__ import annotations

import os

import pytest
from conftest import make_project, nnpipe, working_directory
from mlflow import MlflowClient

from nnpipe.config import load_params
from nnpipe.io import read_json
from nnpipe.stages import get_stage

pytestmark = pytest.mark.integration


def client(project) -> MlflowClient:
    uri = f"sqlite:///{project / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_trials_run_in_parallel_on_a_local_two_worker_dask_cluster(tmp_path):
    project = make_project(tmp_path / "project", {"xray": {"tune": {
        "executor": "dask", "max_trials": 2, "dask": {"workers": 2}}}})
    with working_directory(project):  # data stages in-process; tuning as a user runs it
        params = load_params("params.yaml")
        for step in ("ingest", "featurize"):
            get_stage(step, "xray").run(params)
    done = nnpipe(project, "stage", "tune", "--domain", "xray")
    assert "a local cluster of 2 worker process(es)" in done.stderr
    record = read_json(project / "models/xray-hyperparameters.json")
    assert record["tuned"] and record["trials"] == 2 and record["completed"] == 2
    rows = (project / "reports/xray/tuning.csv").read_text().splitlines()[1:]
    workers = {row.split(",")[-2] for row in rows}
    assert len(workers) == 2  # two worker processes, neither of them this one
    assert not any(w.endswith(f":{os.getpid()}") for w in workers)
    c = client(project)
    exp = c.get_experiment_by_name("nnpipe-xray")
    (parent,) = c.search_runs([exp.experiment_id], "tags.`nnpipe.stage` = 'tune'")
    trials = c.search_runs([exp.experiment_id],
                           f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert len(trials) == 2 and {t.data.tags["nnpipe.trial_worker"] for t in trials} == workers


def test_no_qualifying_variant_and_fallback_none_registers_nothing(flow_copy):
    before = client(flow_copy).search_model_versions("name='xray-classifier'")
    nnpipe(flow_copy, "stage", "promote", "--domain", "xray", "-S", "xray.promote.candidates=[]",
           "-S", "xray.promote.fallback=none")
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


def test_fallback_reference_deploys_the_keras_model_behind_the_same_pyfunc(flow_copy,
                                                                          monkeypatch):
    nnpipe(flow_copy, "stage", "promote", "--domain", "xray", "-S", "xray.promote.candidates=[]")
    spec = read_json(flow_copy / "models/xray-deploy/deploy.json")
    assert spec["variant"] == "keras_float32" and spec["format"] == "keras"
    assert "the Keras reference is deployed" in spec["reason"]
    nnpipe(flow_copy, "stage", "register", "--domain", "xray")
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
