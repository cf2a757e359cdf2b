"""`dvc repro`: the same stages as the flow, the same metrics, and a no-op second run."""

import subprocess

import pytest
from conftest import make_project

from nnpipe.io import read_json

pytestmark = pytest.mark.integration


def repro(project) -> str:
    done = subprocess.run(["dvc", "repro"], cwd=project, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_dvc_repro_matches_the_flow_and_second_run_is_a_no_op(tmp_path, flow_project):
    project = make_project(tmp_path / "project")
    out = repro(project)
    for stage in ("ingest@xray", "featurize@xray", "train@xray", "evaluate@xray",
                  "register@xray"):
        assert f"Running stage '{stage}'" in out
    again = repro(project)
    assert "Running stage" not in again and "up to date" in again
    ours = read_json(project / "reports/xray/metrics.json")
    flows = read_json(flow_project / "reports/xray/metrics.json")
    # same params, same seed, deterministic ops: the README promises agreement within 1e-6
    assert ours["roc_auc"] == pytest.approx(flows["roc_auc"], abs=1e-6)
    assert ours["accuracy"] == pytest.approx(flows["accuracy"], abs=1e-6)
    assert ours["data_hash"] == flows["data_hash"]
