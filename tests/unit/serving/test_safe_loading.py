"""Serving loads a deploy folder as data, never as code: only TFLite flatbuffers and Keras
zips (safe mode, nnpipe's own layers), only files inside the folder, only the bytes whose
sha256 promote recorded. Malicious models are real ones: a tf-keras model whose Lambda
layer calls ``os.system`` (which tf-keras' own ``load_model`` runs), planted as
``model.keras``; deploy.json and MLmodel files that point outside their folder."""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from nnpipe.compression.selection import Selection
from nnpipe.compression.variants import to_tflite
from nnpipe.domains.xray.models import build_model
from nnpipe.domains.xray.params import XrayTrain
from nnpipe.errors import RefusedModelError
from nnpipe.keras_env import keras, make_deterministic
from nnpipe.saved_models import load_served_keras
from nnpipe.serving.deploy import write_deploy_folder
from nnpipe.serving.predictor import file_sha256, load_predictor
from nnpipe.serving.registry import check_lineage, deploy_artifact_dir

SIZE = 16


def write_deploy(folder: Path, name: str, fmt: str, **changes) -> Path:
    """A deploy.json as promote writes it, for ``folder/name`` (its sha256 included)."""
    spec = {
        "domain": "xray",
        "variant": "tflite_float32" if fmt == "tflite" else "keras_float32",
        "format": fmt,
        "file": name,
        "classes": ["normal", "pneumonia"],
        "threshold": 0.5,
        "image_size": SIZE,
        "resize": "pad",
        "max_side": None,
        "sha256": file_sha256(folder / name) if (folder / name).is_file() else None,
        "schema_version": 1,
    }
    (folder / "deploy.json").write_text(json.dumps({**spec, **changes}))
    return folder


@pytest.fixture(scope="module")
def model():
    make_deterministic(0)
    return build_model(
        XrayTrain(model="small_cnn", filters=[4, 8], dense_units=8), SIZE, 100.0, 50.0
    )


@pytest.fixture(scope="module")
def tflite_bytes(model):
    """The model converted once (seconds each time); every test gets its own copy."""
    return to_tflite(model, "tflite_float32")


@pytest.fixture
def tflite_deploy(tflite_bytes, tmp_path):
    folder = tmp_path / "deploy"
    folder.mkdir()
    (folder / "model.tflite").write_bytes(tflite_bytes)
    return write_deploy(folder, "model.tflite", "tflite")


def touching(marker: Path):
    """A lambda that runs ``touch marker`` (the path a constant in its own bytecode)."""
    return eval(f'lambda x: (__import__("os").system("touch {marker}"), x)[1]')


def plant_lambda_h5(path: Path, marker: Path) -> Path:
    """A real tf-keras model whose Lambda layer runs ``touch marker``, saved as HDF5 under
    ``path`` (named ``model.keras``): the legacy loader rebuilds it from its bytecode."""
    evil = touching(marker)
    model = keras.Sequential(
        [
            keras.layers.Lambda(evil, input_shape=(SIZE, SIZE, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(1),
        ]
    )
    marker.unlink(missing_ok=True)  # building the model above ran it once
    h5 = path.with_name("planted.h5")
    model.save(h5, save_format="h5")
    h5.rename(path)
    return path


def test_a_lambda_model_saved_as_hdf5_named_model_keras_is_refused_unrun(tmp_path):
    marker = tmp_path / "pwned"
    folder = tmp_path / "deploy"
    folder.mkdir()
    plant_lambda_h5(folder / "model.keras", marker)
    # the deploy.json is consistent (right format, right sha256): only the file is wrong
    write_deploy(folder, "model.keras", "keras")
    with pytest.raises(RefusedModelError, match="is an HDF5 file, not a Keras zip"):
        load_predictor(folder)
    assert not marker.exists()
    # the plant is real: tf-keras' own load_model (what serving called before) runs it,
    # here in this process (all it does is touch the marker)
    control = tmp_path / "control" / "model.keras"
    control.parent.mkdir()
    shutil.copy(folder / "model.keras", control)
    keras.models.load_model(str(control), compile=False)
    assert marker.exists()


def zip_with_config(source: Path, dest: Path, edit) -> Path:
    """A copy of a Keras zip with its config.json changed by ``edit``."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(dest, "w") as out:
        for name in src.namelist():
            data = src.read(name)
            if name == "config.json":
                config = json.loads(data)
                edit(config)
                data = json.dumps(config).encode()
            out.writestr(name, data)
    return dest


def first_dense(config: dict) -> dict:
    return next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense")


def set_activation(value):
    return lambda config: first_dense(config)["config"].update(activation=value)


def set_class(module: str, name: str, registered: str | None = None):
    return lambda config: first_dense(config).update(
        module=module, class_name=name, registered_name=registered
    )


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            set_activation(
                {
                    "module": "os",
                    "class_name": "function",
                    "config": "system",
                    "registered_name": "function",
                }
            ),
            "would run code",
        ),
        (
            set_activation(
                {
                    "module": "builtins",
                    "class_name": "function",
                    "config": "exec",
                    "registered_name": "function",
                }
            ),
            "would run code",
        ),
        (set_class("subprocess", "Popen"), "comes from the module 'subprocess', not from Keras"),
        (set_class("keras.layers", "Lambda"), "would run code"),
        (set_class("keras.utils", "get_file"), "is not a Keras layer"),
        (set_class("keras.layers", "Dense", "Foreign>Dense"), "custom object 'Foreign>Dense'"),
    ],
)
def test_a_keras_zip_naming_code_or_foreign_objects_is_refused(model, tmp_path, edit, message):
    model.save(tmp_path / "good.keras")
    folder = tmp_path / "deploy"
    folder.mkdir()
    zip_with_config(tmp_path / "good.keras", folder / "model.keras", edit)
    write_deploy(folder, "model.keras", "keras")
    with pytest.raises(RefusedModelError, match=message):
        load_predictor(folder)


def test_a_keras_zip_with_a_lambda_layer_is_refused_unrun(tmp_path):
    marker = tmp_path / "pwned"
    evil = touching(marker)
    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Lambda(evil)(inputs)).save(tmp_path / "lambda.keras")
    marker.unlink()  # building it ran it once
    with pytest.raises(RefusedModelError, match=r"\(Lambda\) would run code"):
        load_served_keras((tmp_path / "lambda.keras").read_bytes(), "lambda.keras")
    assert not marker.exists()


def test_a_keras_zip_with_extra_files_is_refused(model, tmp_path):
    model.save(tmp_path / "good.keras")
    shutil.copy(tmp_path / "good.keras", tmp_path / "extra.keras")
    with zipfile.ZipFile(tmp_path / "extra.keras", "a") as archive:
        archive.writestr("assets/payload.py", "print('hi')")
    with pytest.raises(RefusedModelError, match="a Keras model nnpipe wrote holds exactly"):
        load_served_keras((tmp_path / "extra.keras").read_bytes(), "extra.keras")


def test_nnpipe_layers_load_from_a_keras_zip(tmp_path):
    make_deterministic(0)
    vit = build_model(XrayTrain(model="vit"), SIZE, 100.0, 50.0)  # PositionEmbedding
    vit.save(tmp_path / "vit.keras")
    again = load_served_keras((tmp_path / "vit.keras").read_bytes(), "vit.keras")
    x = np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 1)).astype("float32")
    np.testing.assert_allclose(again(x).numpy(), vit(x).numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "file", ["/etc/passwd", "../x.tflite", "sub/../../x.tflite", "C:/x.tflite", "..\\x.tflite", 7]
)
def test_a_deploy_json_naming_a_file_outside_its_folder_is_refused(tflite_deploy, file):
    outside = tflite_deploy.parent / "x.tflite"
    shutil.copy(tflite_deploy / "model.tflite", outside)
    write_deploy(tflite_deploy, "model.tflite", "tflite", file=file)
    with pytest.raises(RefusedModelError, match="file") as refused:
        load_predictor(tflite_deploy)
    assert "re-run promote" in str(refused.value)


def test_a_symlink_out_of_the_folder_is_refused(tflite_deploy, tmp_path):
    outside = tmp_path / "elsewhere.tflite"
    (tflite_deploy / "model.tflite").rename(outside)
    os.symlink(outside, tflite_deploy / "model.tflite")
    with pytest.raises(RefusedModelError, match="leads outside"):
        load_predictor(tflite_deploy)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"format": "pickle"}, "format 'pickle' is not one nnpipe serves"),
        ({"format": "keras"}, "a keras model is a .keras file"),
        ({"domain": "os"}, "domain 'os' is not one of"),
        ({"sha256": None}, "records no sha256"),
        ({"file": "missing.tflite"}, "not a file in"),
    ],
)
def test_a_deploy_json_promote_would_not_write_is_refused(tflite_deploy, changes, message):
    write_deploy(tflite_deploy, "model.tflite", "tflite", **changes)
    with pytest.raises(RefusedModelError, match=message):
        load_predictor(tflite_deploy)


def test_a_tampered_model_file_is_refused(tflite_deploy):
    load_predictor(tflite_deploy)  # as promote left it: loads
    path = tflite_deploy / "model.tflite"
    content = bytearray(path.read_bytes())
    content[-100] ^= 0xFF
    path.write_bytes(bytes(content))
    with pytest.raises(RefusedModelError, match="has changed since promote wrote it"):
        load_predictor(tflite_deploy)


def test_a_file_that_is_no_tflite_flatbuffer_is_refused(tmp_path):
    (tmp_path / "model.tflite").write_bytes(b"\x00" * 64)
    write_deploy(tmp_path, "model.tflite", "tflite")
    with pytest.raises(RefusedModelError, match="not a TFLite flatbuffer"):
        load_predictor(tmp_path)


def mlmodel(root: Path, path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "MLmodel").write_text(
        json.dumps(  # JSON is YAML
            {"flavors": {"python_function": {"artifacts": {"deploy": {"path": path}}}}}
        )
    )
    return root


@pytest.mark.parametrize("path", ["/etc", "../outside", "artifacts/../../outside", None])
def test_an_mlmodel_artifact_path_outside_the_model_is_refused(tmp_path, path):
    (tmp_path / "outside").mkdir()
    with pytest.raises(RefusedModelError, match="artifact path"):
        deploy_artifact_dir(mlmodel(tmp_path / "model", path), "m v1")


def test_an_mlmodel_artifact_path_inside_the_model_is_the_deploy_folder(tmp_path):
    root = mlmodel(tmp_path / "model", "artifacts/xray-deploy")
    (root / "artifacts/xray-deploy").mkdir(parents=True)
    assert deploy_artifact_dir(root, "m v1") == (root / "artifacts/xray-deploy").resolve()
    os.symlink(tmp_path, root / "artifacts/link")
    with pytest.raises(RefusedModelError, match="leads outside"):
        deploy_artifact_dir(mlmodel(root, "artifacts/link"), "m v1")


def test_the_registered_sha256_must_match_the_deploy_folder(tflite_deploy):
    recorded = json.loads((tflite_deploy / "deploy.json").read_text())["sha256"]
    check_lineage(tflite_deploy, {"model_sha256": recorded}, "m v1")
    with pytest.raises(RefusedModelError, match="changed after registration"):
        check_lineage(tflite_deploy, {"model_sha256": "0" * 64}, "m v1")
    with pytest.raises(RefusedModelError, match="no model_sha256 tag"):
        check_lineage(tflite_deploy, {}, "m v1")


@pytest.mark.parametrize("variant", ["tflite_float32", "keras_float32"])
def test_a_deploy_folder_as_promote_writes_it_records_its_sha256_and_loads(
    model, tflite_bytes, tmp_path, variant
):
    variants = tmp_path / "variants"
    variants.mkdir()
    model.save(variants / "keras_float32.keras")
    (variants / "tflite_float32.tflite").write_bytes(tflite_bytes)
    spec = {
        "domain": "xray",
        "classes": ["normal", "pneumonia"],
        "threshold": 0.5,
        "image_size": SIZE,
        "resize": "pad",
        "max_side": None,
        "run_id": "r1",
        "metric": "roc_auc",
        "parity": "decision_agreement",
    }
    record = write_deploy_folder(
        tmp_path / "deploy",
        variants,
        Selection(variant, "test"),
        {variant: {"size_bytes": 1}},
        spec,
    )
    assert record["sha256"] == file_sha256(tmp_path / "deploy" / record["file"])
    x = np.random.default_rng(2).integers(0, 256, (3, SIZE, SIZE)).astype(np.float64)
    assert len(load_predictor(tmp_path / "deploy").predict(x)["probability"]) == 3
