"""Small helpers: class weights, history CSV, profiles, the store URI, DVC's folder hash."""

import subprocess
from pathlib import Path

import pytest
import yaml

from nnpipe.cli.summary import ui_hint
from nnpipe.config import ParamsError, validate_params
from nnpipe.dvc.folder_hash import directory_md5
from nnpipe.store import tracking_uri


def test_balanced_class_weight_matches_sklearn():
    from nnpipe.domains.xray.training import balanced_class_weight

    weights = balanced_class_weight([100, 300])
    assert weights == {0: 2.0, 1: pytest.approx(2 / 3)}
    with pytest.raises(ValueError, match="every class needs training images"):
        balanced_class_weight([10, 0])


def test_history_csv_has_one_row_per_epoch():
    from nnpipe.domains.xray.stages.train import history_csv

    text = history_csv(
        [{"epoch": 1, "loss": 0.5, "val_loss": 0.6}, {"epoch": 2, "loss": 0.4, "val_loss": None}]
    )
    assert text.splitlines() == ["epoch,loss,val_loss", "1,0.5,0.6", "2,0.4,"]


def test_profiles_become_dotted_overrides(tmp_path, monkeypatch):
    from nnpipe.cli.run import read_profile

    monkeypatch.chdir(tmp_path)
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "p.yaml").write_text(
        "xray.train.filters: [8, 16]\nxray.ingest.medmnist.path: null\nseed: 3\n"
    )
    assert read_profile("p") == [
        "xray.train.filters=[8, 16]",
        "xray.ingest.medmnist.path=null",
        "seed=3",
    ]
    with pytest.raises(ParamsError, match=r"profile 'nope' not found.*\['p'\]"):
        read_profile("nope")


def test_shipped_profile_is_valid():
    from nnpipe.config import apply_overrides

    root = Path(__file__).resolve().parents[2]
    profile = yaml.safe_load((root / "profiles" / "pneumoniamnist.yaml").read_text())
    raw = yaml.safe_load((root / "params.yaml").read_text())
    overrides = [
        f"{k}={yaml.safe_dump(v, default_flow_style=True).strip()}" for k, v in profile.items()
    ]
    params = validate_params(apply_overrides(raw, [o.removesuffix("\n...") for o in overrides]))
    assert params.xray.ingest.source == "medmnist" and params.xray.featurize.image_size == 28


def test_tracking_uri_prefers_environment_then_params(tmp_path, monkeypatch):
    params = validate_params({})
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri(params, tmp_path) == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    custom = validate_params({"mlflow": {"tracking_uri": "http://mlflow:5000"}})
    assert tracking_uri(custom, tmp_path) == "http://mlflow:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5001")
    assert tracking_uri(custom, tmp_path) == "http://127.0.0.1:5001"
    assert ui_hint("http://x:5000/") == "http://x:5000/#/experiments?workflowType=machine_learning"
    assert ui_hint("sqlite:///a.db").startswith("make ui, then http://127.0.0.1:5000/#/")


def test_directory_md5_is_what_dvc_records(tmp_path):
    data = tmp_path / "d"
    (data / "sub").mkdir(parents=True)
    (data / "a.txt").write_text("alpha\n")
    (data / "sub" / "b.bin").write_bytes(bytes(range(256)))
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["dvc", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["dvc", "add", "-q", "d"], cwd=tmp_path, check=True)
    recorded = yaml.safe_load((tmp_path / "d.dvc").read_text())["outs"][0]["md5"]
    assert directory_md5(data) == recorded
    with pytest.raises(NotADirectoryError):
        directory_md5(tmp_path / "d.dvc")


def test_relative_imports_are_followed(tmp_path):
    from nnpipe.dvc.pipeline_file import code_dependencies

    deps = code_dependencies("nnpipe.domains.xray.stages.register")
    assert "src/nnpipe/domains/xray/scoring.py" in deps  # register re-scores with it
    assert "src/nnpipe/domains/xray/stages/evaluate.py" not in deps  # no stage imports another
    assert "src/nnpipe/champion_gate.py" in deps
    assert not [d for d in deps if d.startswith("src/nnpipe/cli/")]  # entry points: no staleness
