"""Tuning trials on a real local Dask cluster through Prefect (its own project: it runs
while the flow project builds)."""

from __future__ import annotations

import os

import pytest
from conftest import make_project, nnpipe, working_directory
from mlflow import MlflowClient

from nnpipe.config import load_params
from nnpipe.io import read_json
from nnpipe.stages import get_stage

pytestmark = pytest.mark.integration


def test_trials_run_in_parallel_on_a_local_two_worker_dask_cluster(tmp_path):
    project = make_project(
        tmp_path / "project",
        {"xray": {"tune": {"executor": "dask", "max_trials": 2, "dask": {"workers": 2}}}},
    )
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
    uri = f"sqlite:///{project / 'mlflow.db'}"
    c = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = c.get_experiment_by_name("nnpipe-xray")
    (parent,) = c.search_runs([exp.experiment_id], "tags.`nnpipe.stage` = 'tune'")
    trials = c.search_runs(
        [exp.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    assert len(trials) == 2 and {t.data.tags["nnpipe.trial_worker"] for t in trials} == workers
