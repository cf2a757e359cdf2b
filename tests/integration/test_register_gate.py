"""Alias moves and gate refusals against a real MLflow registry (SQLite)."""

import json
import shutil

import pytest
from conftest import working_directory
from mlflow import MlflowClient

from nnpipe.config import load_params
from nnpipe.domains.xray.stages import register, train
from nnpipe.stages.registration import StaleMetricsError

pytestmark = pytest.mark.integration


@pytest.fixture
def project(tmp_path, flow_project):
    """A copy of the flow project, so its registry can change without affecting others."""
    dest = tmp_path / "project"
    shutil.copytree(flow_project, dest, symlinks=True)
    return dest


@pytest.fixture(scope="module")
def retrained_once(tmp_path_factory, flow_project):
    """The flow project with a second model trained, evaluated, compressed and promoted,
    not yet registered: made once, copied by each test that registers such a model."""
    dest = tmp_path_factory.mktemp("retrained") / "project"
    shutil.copytree(flow_project, dest, symlinks=True)
    with working_directory(dest):
        train_again(dest, "seed=7")
    return dest


@pytest.fixture
def retrained(tmp_path, retrained_once):
    dest = tmp_path / "project"
    shutil.copytree(retrained_once, dest, symlinks=True)
    return dest


def registry(project) -> MlflowClient:
    uri = f"sqlite:///{project / 'mlflow.db'}"
    return MlflowClient(uri, uri)


def aliases(project) -> dict[str, str]:
    model = registry(project).get_registered_model("xray-classifier")
    return {k: str(v) for k, v in model.aliases.items()}


# two variants are enough to promote from here (every variant is the flow tests' business)
QUICK_COMPRESS = "xray.compress.variants=[keras_float32,tflite_dynamic]"


def train_again(project, *overrides: str) -> None:
    """A new training run (a new model), evaluated, compressed and promoted, as the
    pipeline would produce it."""
    from nnpipe.stages import get_stage

    params = load_params("params.yaml", [*overrides, QUICK_COMPRESS])
    for step in ("train", "evaluate", "compress", "promote"):
        get_stage(step, "xray").run(params)


def deployed(project) -> dict:
    return json.loads((project / "models/xray-deploy/deploy.json").read_text())


def test_rerunning_register_does_not_duplicate_the_version(project):
    with working_directory(project):
        record = register.run(load_params("params.yaml"), "xray")
    assert record["version"] == "1" and record["promoted"] is True
    assert len(registry(project).search_model_versions("name='xray-classifier'")) == 1


def test_gate_refusal_keeps_the_champion_and_moves_challenger(retrained):
    project = retrained
    assert aliases(project) == {"champion": "1", "challenger": "1"}
    with working_directory(project):
        record = register.run(load_params("params.yaml", ["xray.register.min_value=1.0"]), "xray")
    assert record["promoted"] is False and "below the floor" in record["reason"]
    assert aliases(project) == {"champion": "1", "challenger": "2"}
    assert (
        json.loads((project / "reports/xray/registration.json").read_text())["reason"]
        == record["reason"]
    )
    tags = registry(project).get_model_version("xray-classifier", "2").tags
    assert tags["gate.promoted"] == "False"


def test_champion_is_rescored_on_the_same_test_data(retrained, flow_project):
    project = retrained
    v1 = deployed(flow_project)
    with working_directory(project):
        record = register.run(load_params("params.yaml"), "xray")
    assert record["champion_before"] == "1"
    assert record["champion_before_scored"] == (
        f"its deployed variant ({v1['variant']}) re-scored on the current test split"
    )
    # v1's deployed variant, scored through its pyfunc on the same test split, gives the
    # AUC compress measured for it
    assert record["champion_before_value"] == pytest.approx(v1["measured"]["roc_auc"], abs=1e-6)
    v1_auc = v1["measured"]["roc_auc"]
    promoted = record["candidate_value"] >= v1_auc
    assert record["promoted"] is promoted
    assert aliases(project)["champion"] == ("2" if promoted else "1")


def test_worse_than_champion_is_refused(retrained):
    project = retrained
    with working_directory(project):
        deploy_file = project / "models/xray-deploy/deploy.json"
        deploy = json.loads(deploy_file.read_text())
        deploy["measured"]["roc_auc"] -= 0.2  # as if the new deployed variant were worse
        deploy_file.write_text(json.dumps(deploy))
        record = register.run(load_params("params.yaml", ["xray.register.min_value=0.0"]), "xray")
    assert record["promoted"] is False and "worse than champion v1" in record["reason"]
    assert aliases(project) == {"champion": "1", "challenger": "2"}


def test_a_champion_serving_refuses_does_not_block_a_new_version(retrained):
    """A champion registered before sha256 lineage (no `model_sha256` tag) is refused by
    serving and by register's re-scoring: the candidate is judged by the bound alone, and
    the reason says why v1 was not compared."""
    project = retrained
    registry(project).delete_model_version_tag("xray-classifier", "1", "model_sha256")
    with working_directory(project):
        record = register.run(load_params("params.yaml", ["xray.register.min_value=0.0"]), "xray")
    assert record["promoted"] is True, record["reason"]
    assert "not compared with v1" in record["reason"] and "sha256" in record["reason"]
    assert aliases(project) == {"champion": "2", "challenger": "2"}


def test_champion_of_another_input_size_blocks_promotion_unless_allowed(project):
    with working_directory(project):
        from nnpipe.domains.xray.stages import featurize

        params = load_params("params.yaml", ["xray.featurize.image_size=24"])
        featurize.run(params, "xray")
        train_again(project, "xray.featurize.image_size=24")
        record = register.run(params, "xray")
        assert record["promoted"] is False and "cannot be compared" in record["reason"]
        allowed = load_params(
            "params.yaml", ["xray.featurize.image_size=24", "xray.register.allow_incomparable=true"]
        )
        assert register.run(allowed, "xray")["promoted"] is True


def test_metrics_of_another_model_are_refused(project):
    with working_directory(project):
        train.run(load_params("params.yaml", ["xray.train.epochs=1"]), "xray")
        with pytest.raises(StaleMetricsError, match="run the evaluate stage first"):
            register.run(load_params("params.yaml"), "xray")
