from pathlib import Path

import pytest
import yaml

from nnpipe.config import (
    ParamsError,
    apply_overrides,
    dump_params,
    load_params,
    parse_override,
    validate_params,
    write_overrides,
)

ROOT = Path(__file__).resolve().parents[2]


def test_project_params_are_valid_and_match_the_defaults():
    params = load_params(ROOT / "params.yaml")
    assert params.xray.ingest.source == "synthetic"
    assert params.xray.register.model_name == "xray-classifier"
    assert params.xray.augment.horizontal_flip is False


def test_unknown_key_fails_naming_the_dotted_key():
    with pytest.raises(ParamsError, match=r"xray\.train\.epoch: unknown key"):
        validate_params({"xray": {"train": {"epoch": 3}}})


def test_wrong_type_fails_naming_the_key_and_value():
    with pytest.raises(ParamsError, match=r"xray\.train\.batch_size.*'many'"):
        validate_params({"xray": {"train": {"batch_size": "many"}}})


def test_out_of_range_and_cross_field_rules():
    with pytest.raises(ParamsError, match="val_fraction"):
        validate_params({"xray": {"featurize": {"val_fraction": 1.5}}})
    with pytest.raises(ParamsError, match="leaves almost nothing to train on"):
        validate_params({"xray": {"featurize": {"val_fraction": 0.5, "test_fraction": 0.45}}})
    with pytest.raises(ParamsError, match="class_dirs has keys"):
        validate_params({"xray": {"classes": ["normal", "covid"]}})


def test_overrides_use_dvc_dotted_keys_and_yaml_values():
    assert parse_override("xray.train.filters=[8, 16]") == (["xray", "train", "filters"], [8, 16])
    raw = apply_overrides({"xray": {"train": {"epochs": 5}}},
                          ["xray.train.epochs=7", "xray.ingest.source=folder"])
    assert raw["xray"]["train"]["epochs"] == 7
    assert raw["xray"]["ingest"]["source"] == "folder"
    with pytest.raises(ParamsError, match="not of the form"):
        parse_override("xray.train.epochs")
    with pytest.raises(ParamsError, match="is a value, not a section"):
        apply_overrides({"seed": 1}, ["seed.x=2"])


def test_load_with_override_validates_it(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("xray:\n  train:\n    epochs: 5\n")
    assert load_params(path, ["xray.train.epochs=9"]).xray.train.epochs == 9
    with pytest.raises(ParamsError, match=r"xray\.train\.epochz: unknown key"):
        load_params(path, ["xray.train.epochz=9"])


def test_write_overrides_keeps_comments_and_refuses_bad_values(tmp_path):
    path = tmp_path / "params.yaml"
    text = "# top comment\nseed: 1  # the seed\nxray:\n  train:\n    epochs: 5  # few\n"
    path.write_text(text)
    write_overrides(path, ["xray.train.epochs=8"])
    new = path.read_text()
    assert "# top comment" in new and "# few" in new
    assert yaml.safe_load(new)["xray"]["train"]["epochs"] == 8
    before = path.read_text()
    with pytest.raises(ParamsError):
        write_overrides(path, ["xray.train.epochs=-1"])
    assert path.read_text() == before  # nothing half-written


def test_missing_or_broken_file_is_a_clear_error(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("xray: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)


def test_dump_round_trips():
    params = load_params(ROOT / "params.yaml")
    assert validate_params(yaml.safe_load(dump_params(params))) == params
