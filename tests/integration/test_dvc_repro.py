"""`dvc repro`: the same stages as the flow, the same metrics, and a no-op second run."""

import subprocess

import pytest
import yaml
from conftest import make_project

from nnpipe.io import read_json

# it compares with the flow project at its end: scheduled with the tests that need it
pytestmark = [pytest.mark.integration, pytest.mark.flow_project]


# X-ray: the stages through evaluate, each a process of its own as DVC runs it; the
# metrics must be the flow's. compress/promote/register have the same generated command
# shape and run in the flow, which commits each to dvc.lock through DVC (`dvc status` is
# clean after it: test_flow) and through the stack's worker (test_stack). OHLCV: its data
# stages, which must be byte-identical to the flow's.
TARGETS = ("xray-evaluate", "ohlcv-featurize")


def repro(project) -> str:
    done = subprocess.run(["dvc", "repro", *TARGETS], cwd=project, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_dvc_repro_matches_the_flow_and_second_run_is_a_no_op(tmp_path, request):
    project = make_project(tmp_path / "project")
    out = repro(project)
    for step in ("ingest", "featurize", "tune", "train", "evaluate"):
        assert f"Running stage 'xray-{step}'" in out
    for step in ("ingest", "featurize"):
        assert f"Running stage 'ohlcv-{step}'" in out
    again = repro(project)
    assert "Running stage" not in again and "up to date" in again
    flow_project = request.getfixturevalue("flow_project")  # only now: it may be building
    ours = read_json(project / "reports/xray/evaluation.json")
    flows = read_json(flow_project / "reports/xray/evaluation.json")
    # same params, same seed, deterministic ops: the README promises agreement within 1e-6
    assert ours["roc_auc"] == pytest.approx(flows["roc_auc"], abs=1e-6)
    assert ours["accuracy"] == pytest.approx(flows["accuracy"], abs=1e-6)
    assert ours["data_hash"] == flows["data_hash"]
    # the OHLCV data, made by separate processes here and in the flow's one process, is
    # byte-identical (DVC's hash of the features folder)
    ours_lock = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    flow_lock = yaml.safe_load((flow_project / "dvc.lock").read_text())["stages"]
    for stage in ("ohlcv-ingest", "ohlcv-featurize"):
        assert ours_lock[stage]["outs"] == flow_lock[stage]["outs"], stage
    # the tuned values, chosen by separate processes here, are the flow's
    for domain in ("xray",):
        ours = read_json(project / f"models/{domain}-hyperparameters.json")["values"]
        flows = read_json(flow_project / f"models/{domain}-hyperparameters.json")["values"]
        assert ours.keys() == flows.keys()
        for key, value in ours.items():
            assert value == (
                pytest.approx(flows[key]) if isinstance(value, float) else flows[key]
            ), key
