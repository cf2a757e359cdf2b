from pathlib import Path

import pytest
import yaml

from nnpipe.config import (
    Params,
    ParamsError,
    apply_overrides,
    dump_params,
    load_params,
    parse_override,
    validate_params,
    write_overrides,
)
from nnpipe.domains.ohlcv.domain import OHLCV
from nnpipe.domains.ohlcv.params import (
    OhlcvIngest,
    OhlcvParams,
    OhlcvRegister,
    OhlcvYfinanceSource,
    series_names,
)
from nnpipe.domains.registry import DOMAINS
from nnpipe.domains.xray.domain import XRAY
from nnpipe.domains.xray.params import XrayParams

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
    raw = apply_overrides(
        {"xray": {"train": {"epochs": 5}}}, ["xray.train.epochs=7", "xray.ingest.source=folder"]
    )
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


# --------------------------------------------------------------------------- ohlcv section


def test_ohlcv_defaults_validate():
    params = validate_params({})
    assert params.ohlcv.ingest.source == "synthetic"
    assert series_names(params.ohlcv.ingest) == ["SYNTH"]
    assert params.ohlcv.model_name("SYNTH") == "ohlcv-forecaster"
    assert OHLCV.section(params) is params.ohlcv


def test_params_has_one_section_per_registered_domain_between_the_common_ones():
    assert list(Params.model_fields) == ["seed", "paths", "mlflow", *DOMAINS, "serve"]
    for name, domain in DOMAINS.items():
        assert Params.model_fields[name].annotation is domain.params_model
    assert validate_params({}).serve.domains == list(DOMAINS)


def test_a_domain_section_is_read_typed_through_its_declaration():
    params = validate_params({"xray": {"train": {"epochs": 2}}})
    section = XRAY.section(params)
    assert isinstance(section, XrayParams) and section.train.epochs == 2
    with pytest.raises(TypeError, match="no 'xray' section"):
        XRAY.section(OhlcvParams())  # type: ignore[arg-type]


@pytest.mark.parametrize("first", ["nnpipe.domains.xray.params", "nnpipe.config"])
def test_config_and_a_domain_params_module_import_in_either_order(first):
    import subprocess
    import sys

    code = f"import {first}\nfrom nnpipe.config import load_params, Params\nParams()"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_ohlcv_csv_source_without_files_fails_naming_csv_files():
    with pytest.raises(ParamsError, match=r"ohlcv\.ingest.*csv\.files is empty"):
        validate_params({"ohlcv": {"ingest": {"source": "csv"}}})
    ok = validate_params(
        {"ohlcv": {"ingest": {"source": "csv", "csv": {"files": {"GOOG": "GOOG.csv"}}}}}
    )
    assert series_names(ok.ohlcv.ingest) == ["GOOG"]


def test_ohlcv_yfinance_source_without_tickers_fails():
    with pytest.raises(ParamsError, match=r"yfinance\.tickers is empty"):
        validate_params({"ohlcv": {"ingest": {"source": "yfinance"}}})


def test_several_series_need_a_series_placeholder_in_the_model_name():
    two = {"ingest": {"synthetic": {"names": ["A", "B"]}}}
    with pytest.raises(
        ParamsError, match=r"no \{series\} placeholder.*ohlcv-forecaster-\{series\}"
    ):
        validate_params({"ohlcv": two})
    params = validate_params({"ohlcv": {**two, "register": {"model_name": "fc-{series}"}}})
    assert [params.ohlcv.model_name(n) for n in ("A", "B")] == ["fc-A", "fc-B"]


def test_ohlcv_model_name_substitutes_the_series():
    ohlcv = OhlcvParams(register=OhlcvRegister(model_name="price-{series}-lstm"))
    assert ohlcv.model_name("GOOG") == "price-GOOG-lstm"
    assert OhlcvParams().model_name("GOOG") == "ohlcv-forecaster"  # one series: the name as is


def test_yfinance_tickers_become_safe_series_names():
    ingest = OhlcvIngest(
        source="yfinance",
        yfinance=OhlcvYfinanceSource(tickers=["^GSPC", "BRK/B", "MSFT", "EURUSD=X"]),
    )
    assert series_names(ingest) == ["GSPC", "BRK_B", "MSFT", "EURUSD_X"]
    params = validate_params(
        {
            "ohlcv": {
                "ingest": {"source": "yfinance", "yfinance": {"tickers": ["^GSPC", "BRK/B"]}},
                "register": {"model_name": "fc-{series}"},
            }
        }
    )
    assert [params.ohlcv.model_name(n) for n in series_names(params.ohlcv.ingest)] == [
        "fc-GSPC",
        "fc-BRK_B",
    ]
    with pytest.raises(ValueError, match="must be distinct"):
        series_names(
            OhlcvIngest(source="yfinance", yfinance=OhlcvYfinanceSource(tickers=["^GSPC", "GSPC"]))
        )


def test_duplicate_derived_features_are_refused():
    with pytest.raises(ParamsError, match="derived lists a feature twice"):
        validate_params({"ohlcv": {"featurize": {"derived": ["log_return", "log_return"]}}})
    with pytest.raises(ParamsError, match=r"ohlcv\.featurize\.derived"):
        validate_params({"ohlcv": {"featurize": {"derived": ["rsi"]}}})
