"""What `nnpipe serve` is asked to serve (params.yaml's `serve` section or flags) and the
commands that would be ready: from the aliases each model has and the register stage's
records (no registry needed: the plan is data)."""

from __future__ import annotations

import json

import pytest

from nnpipe.config import ParamsError, validate_params
from nnpipe.serving.serve_plan import (
    ServePlan,
    gate_reason,
    not_ready_message,
    serve_command,
    served_models,
)

MODELS = {"xray": "xray-classifier", "ohlcv/SYNTH": "ohlcv-forecaster"}


def plan(
    versions, challengers, domains=("xray", "ohlcv"), alias="champion", default_alias="champion"
) -> ServePlan:
    return ServePlan(list(domains), alias, MODELS, versions, challengers, default_alias)


def test_the_serve_section_is_typed_and_rejects_unknown_keys():
    params = validate_params({})
    assert params.serve.domains == ["xray", "ohlcv"] and params.serve.alias == "champion"
    assert validate_params({"serve": {"domains": ["xray"]}}).serve.domains == ["xray"]
    for bad, key in [
        ({"domain": ["xray"]}, "serve.domain: unknown key"),
        ({"domains": ["xrays"]}, "serve.domains.0"),
        ({"domains": []}, "serve.domains"),
        ({"domains": ["xray", "xray"]}, "distinct"),
    ]:
        with pytest.raises(ParamsError, match=key):
            validate_params({"serve": bad})


def test_served_models_name_one_slot_per_model():
    params = validate_params({})
    assert served_models(params, ["xray", "ohlcv"]) == MODELS
    assert served_models(params, ["ohlcv"]) == {"ohlcv/SYNTH": "ohlcv-forecaster"}


def test_the_ready_commands_serve_what_has_the_alias_then_the_newest_versions():
    refused = plan({"xray": "1", "ohlcv/SYNTH": None}, {"xray": "1", "ohlcv/SYNTH": "1"})
    assert refused.missing == ["ohlcv/SYNTH"]
    commands = [c for c, _ in refused.ready_commands(asked_domains=False)]
    assert commands == ["nnpipe serve --domain xray", "nnpipe serve --alias challenger"]
    asked = [c for c, _ in refused.ready_commands(True, ["--port 9000"])]
    assert asked == [
        "nnpipe serve --domain xray --port 9000",
        "nnpipe serve --domain xray --domain ohlcv --alias challenger --port 9000",
    ]
    nothing = plan({"xray": None, "ohlcv/SYNTH": None}, {"xray": None, "ohlcv/SYNTH": None})
    assert nothing.ready_commands(False) == []
    # params say challenger: a command need not repeat it
    newest = plan(
        {"xray": "2", "ohlcv/SYNTH": None},
        {"xray": "2", "ohlcv/SYNTH": None},
        alias="challenger",
        default_alias="challenger",
    )
    assert [c for c, _ in newest.ready_commands(False)] == ["nnpipe serve --domain xray"]
    assert (
        serve_command(["xray"], "challenger", ["--wait"])
        == "nnpipe serve --domain xray --alias challenger --wait"
    )


def test_the_gate_reason_comes_from_the_register_stages_record(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = validate_params({})
    assert gate_reason(params, "ohlcv/SYNTH") is None  # no record: nothing said
    (tmp_path / "reports/ohlcv").mkdir(parents=True)
    (tmp_path / "reports/xray").mkdir(parents=True)
    record = {
        "registered": True,
        "aliases": ["challenger"],
        "champion_now": None,
        "run_id": "r1",
    }
    (tmp_path / "reports/ohlcv/registration.json").write_text(
        json.dumps(
            {
                "series": {
                    "SYNTH": {
                        **record,
                        "model_name": "ohlcv-forecaster",
                        "promoted": False,
                        "version": "3",
                        "reason": "relative_mae 1.2 >= 1",
                    }
                },
                "schema_version": 1,
            }
        )
    )
    (tmp_path / "reports/xray/registration.json").write_text(
        json.dumps(
            {
                **record,
                "model_name": "xray-classifier",
                "promoted": True,
                "version": "1",
                "reason": "roc_auc 0.9 >= 0.7",
                "schema_version": 1,
            }
        )
    )
    reason = gate_reason(params, "ohlcv/SYNTH")
    assert reason.startswith("the register gate did not promote v3: relative_mae 1.2 >= 1")
    assert "reports/ohlcv/registration.json" in reason
    assert gate_reason(params, "xray") is None  # promoted: not a reason for a missing alias
    message = not_ready_message(
        params, plan({"xray": "1", "ohlcv/SYNTH": None}, {"xray": "1", "ohlcv/SYNTH": "3"}), False
    )
    assert "ohlcv-forecaster (ohlcv/SYNTH): the register gate did not promote v3" in message
    assert "nnpipe serve --domain xray " in message and "nnpipe serve --wait" in message
    assert "serve.domains" in message
