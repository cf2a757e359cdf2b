"""The typed files between stages: written with the same keys as before plus
``schema_version``; a file from before versioning, of another version or of another
shape is refused with a message naming the file, what is wrong and the stage to re-run."""

import json

import pytest

from nnpipe.artifacts import (
    SCHEMA_VERSION,
    ArtifactError,
    CompressionTable,
    Promotion,
    Registration,
    RegistrationRecord,
    SeriesCompressionTable,
    SeriesRegistration,
    read_compression,
    read_registration,
)
from nnpipe.champion_gate import gate_metrics
from nnpipe.compression.selection import Selection
from nnpipe.domains.ohlcv.artifacts import OhlcvFeatures, OhlcvTrainRun
from nnpipe.domains.xray.artifacts import XrayDeploySpec, XrayFeatures, XrayTrainRun
from nnpipe.errors import NnpipeError, RefusedModelError
from nnpipe.serving.deploy import promotion_summary, write_deploy_folder
from nnpipe.serving.predictor import check_deploy_spec, file_sha256

XRAY_META = {
    "domain": "xray",
    "classes": ["normal", "pneumonia"],
    "image_size": 64,
    "resize": "pad",
    "normalization": "standardize",
    "pixel_mean": 115.8,
    "pixel_std": 51.7,
    "counts": {"train": {"normal": 5, "pneumonia": 7}, "val": {"normal": 1, "pneumonia": 2}},
    "official_splits": False,
    "raw_content_sha256": "ab" * 32,
}
RUN = {
    "run_id": "r1",
    "experiment_id": "1",
    "model_uri": "models:/m-1",
    "model_id": "m-1",
    "tracking_uri": "sqlite:///mlflow.db",
    "data_hash": "d41d8cd98f00b204e9800998ecf8427e.dir",
    "best_epoch": 3,
    "hyperparameters": {"learning_rate": 0.001},
}
OHLCV_META = {
    "look_back": 5,
    "horizon": 1,
    "target": "close",
    "derived": [],
    "val_fraction": 0.15,
    "test_fraction": 0.15,
    "series": {
        "SYNTH": {
            "features": ["Open", "High", "Low", "Close", "Volume"],
            "rows": 100,
            "splits": {
                "train": {
                    "rows": [0, 60],
                    "first": "2020-01-01",
                    "last": "2020-03-01",
                    "windows": 55,
                }
            },
            "input_scaler": {"kind": "minmax", "data_min": [0.0], "data_max": [1.0]},
            "target_scaler": {"kind": "minmax", "data_min": [0.0], "data_max": [1.0]},
        }
    },
}
NOT_REGISTERED = {
    "model_name": "xray-classifier",
    "registered": False,
    "version": None,
    "aliases": [],
    "promoted": False,
    "reason": "nothing registered: no candidate qualifies",
    "champion_now": None,
    "run_id": "r1",
}


@pytest.mark.parametrize(
    "model, record",
    [
        (XrayFeatures, XRAY_META),
        (OhlcvFeatures, OHLCV_META),
        (XrayTrainRun, RUN | {"best_val_auc": 0.93}),
        (XrayTrainRun, RUN | {"best_val_auc": None}),
        (
            OhlcvTrainRun,
            RUN
            | {
                "series": "SYNTH",
                "best_val_loss": 0.01,
                "look_back": 5,
                "horizon": 1,
                "target": "close",
                "features": ["Close"],
            },
        ),
        (Registration, NOT_REGISTERED),
        (SeriesRegistration, {"series": {"SYNTH": NOT_REGISTERED}}),
        (
            SeriesCompressionTable,
            {
                "metric": "relative_mae",
                "parity": "max_abs_diff",
                "series": {"SYNTH": {"run_id": "r1", "variants": {"keras_float32": {}}}},
            },
        ),
        (
            Promotion,
            {"variant": "tflite_int8", "reason": "smallest", "verdicts": {}, "roc_auc": 0.9},
        ),
    ],
)
def test_files_keep_their_keys_and_gain_a_schema_version(tmp_path, model, record):
    path = model.model_validate(record).write(tmp_path / "file.json")
    assert json.loads(path.read_text()) == record | {"schema_version": SCHEMA_VERSION}
    assert model.read(path, "xray").dump() == record | {"schema_version": SCHEMA_VERSION}
    assert [p.name for p in tmp_path.iterdir()] == ["file.json"]  # written atomically


def test_a_file_from_before_versioning_names_the_stage_to_re_run(tmp_path):
    path = tmp_path / "meta.json"
    path.write_text(json.dumps(XRAY_META))
    with pytest.raises(ArtifactError) as found:
        XrayFeatures.read(path, "xray")
    message = str(found.value)
    assert str(path) in message and "no schema_version" in message
    assert "`nnpipe stage featurize --domain xray`" in message
    assert "`dvc repro xray-featurize`" in message
    assert isinstance(found.value, NnpipeError)


def test_a_file_of_another_version_or_shape_or_not_json_is_refused(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps(RUN | {"best_val_auc": 0.9, "schema_version": 7}))
    with pytest.raises(ArtifactError, match=r"run\.json has schema_version 7, this nnpipe reads 1"):
        XrayTrainRun.read(path, "xray")
    path.write_text(json.dumps(XRAY_META | {"schema_version": 1}))  # another stage's file
    with pytest.raises(
        ArtifactError,
        match=r"is not the training run record \(run\.json\) the train stage writes "
        r"\(.*run_id: Field required.*\); re-run the train stage: `nnpipe stage train",
    ):
        XrayTrainRun.read(path, "xray")
    path.write_text("{truncated")
    with pytest.raises(ArtifactError, match=r"run\.json is not valid JSON .*dvc repro xray-train"):
        XrayTrainRun.read(path, "xray")
    path.write_text("[1, 2]")
    with pytest.raises(ArtifactError, match="is not a JSON object but a list"):
        XrayTrainRun.read(path, "xray")
    with pytest.raises(ArtifactError, match=r"missing\.json does not exist; re-run the train"):
        XrayTrainRun.read(tmp_path / "missing.json", "xray")


def test_files_of_either_shape_are_read_by_their_shape(tmp_path):
    one = CompressionTable(
        metric="roc_auc", parity="decision_agreement", threshold=0.5, run_id="r1", variants={}
    ).write(tmp_path / "one.json")
    per_series = SeriesRegistration(
        series={"A": RegistrationRecord.model_validate(NOT_REGISTERED)}
    ).write(tmp_path / "series.json")
    assert list(read_compression(one).units()) == [""]
    assert list(read_registration(per_series).units()) == ["A"]
    assert read_registration(per_series).units()["A"].reason.startswith("nothing registered")


def test_the_gate_verdict_stays_flat_numbers_for_dvc():
    record = RegistrationRecord.model_validate(
        NOT_REGISTERED | {"registered": True, "candidate_value": 0.9, "promoted": True}
    )
    assert gate_metrics(record) == {"promoted": 1.0, "registered": 1.0, "candidate": 0.9}


def write_variants(tmp_path):
    variants = tmp_path / "variants"
    variants.mkdir()
    (variants / "tflite_int8.tflite").write_bytes(b"\0\0\0\0TFL3" + bytes(64))
    return variants


SPEC = {
    "domain": "xray",
    "classes": ["normal", "pneumonia"],
    "image_size": 16,
    "resize": "pad",
    "max_side": None,
    "run_id": "r1",
    "metric": "roc_auc",
    "parity": "decision_agreement",
    "threshold": 0.5,
}


def test_promote_writes_a_deploy_json_its_domain_model_reads_back(tmp_path):
    record = write_deploy_folder(
        tmp_path / "deploy",
        write_variants(tmp_path),
        Selection("tflite_int8", "the smallest", {"tflite_int8": "chosen"}),
        {"tflite_int8": {"status": "ok", "size_bytes": 68}},
        SPEC,
    )
    spec = XrayDeploySpec.read(tmp_path / "deploy" / "deploy.json", "xray")
    assert spec.record() == record and spec.schema_version == SCHEMA_VERSION
    assert spec.sha256 == file_sha256(tmp_path / "deploy" / "model.tflite")
    written = json.loads((tmp_path / "deploy" / "deploy.json").read_text())
    assert check_deploy_spec(tmp_path / "deploy", written).name == "model.tflite"
    assert promotion_summary(spec).dump() == {  # promotion.json: the choice and its numbers
        "variant": "tflite_int8",
        "reason": "the smallest",
        "verdicts": {"tflite_int8": "chosen"},
        "size_bytes": 68,
    }


def test_serving_reads_a_deploy_json_from_before_versioning_and_refuses_others(tmp_path):
    """A registered version's deploy.json from before versioning (same keys, its sha256)
    is still served, and so still judged by the register gate as the champion; a newer
    version or a wrong shape is refused, saying re-run promote."""
    write_deploy_folder(
        tmp_path / "deploy",
        write_variants(tmp_path),
        Selection("tflite_int8", "the smallest", {}),
        {"tflite_int8": {"status": "ok"}},
        SPEC,
    )
    old = json.loads((tmp_path / "deploy" / "deploy.json").read_text())
    del old["schema_version"]
    assert check_deploy_spec(tmp_path / "deploy", old) == tmp_path / "deploy" / old["file"]
    with pytest.raises(RefusedModelError, match=r"schema_version 2, this nnpipe reads 1"):
        check_deploy_spec(tmp_path / "deploy", old | {"schema_version": 2})
    with pytest.raises(RefusedModelError, match=r"variant: Field required.*re-run promote"):
        check_deploy_spec(
            tmp_path / "deploy",
            {k: v for k, v in old.items() if k != "variant"} | {"schema_version": 1},
        )
