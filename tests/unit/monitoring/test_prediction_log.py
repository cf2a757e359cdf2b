"""The prediction log: what is recorded is read back as it was; recording never waits
for the store and never raises, and a broken store is counted and reported, then
written again once it is back."""

from __future__ import annotations

import sqlite3
import time

import numpy as np
import pytest

from nnpipe.monitoring.prediction_log import (
    LoggedPrediction,
    PredictionLog,
    PredictionLogError,
    backend_for,
    request_id,
)


def entry(i: int, slot: str = "xray", version: str = "3", **extra) -> LoggedPrediction:
    return LoggedPrediction(
        request_id=f"r{i // 2}",
        item=i % 2,
        domain=slot.split("/")[0],
        slot=slot,
        model="xray-classifier",
        version=version,
        variant="tflite_int8",
        output={"probability": i / 10, "label": "normal"},
        features={"mean": 100.0 + i, "histogram": [0.5, 0.5]},
        embedding=np.arange(4, dtype=np.float32) + i,
        **extra,
    )


def test_recorded_predictions_read_back_with_their_features_and_embeddings(tmp_path):
    log = PredictionLog("logs/p.sqlite", root=tmp_path)
    log.record([entry(i) for i in range(6)])
    assert log.flush()
    frame = log.read("xray")
    assert list(frame["request_id"]) == ["r0", "r0", "r1", "r1", "r2", "r2"]
    assert frame["features"][3] == {"mean": 103.0, "histogram": [0.5, 0.5]}
    assert frame["output"][1]["probability"] == pytest.approx(0.1)
    np.testing.assert_array_equal(frame["embedding"][5], np.arange(4) + 5)
    assert log.status() | {"store": ""} == {
        "ok": True,
        "store": "",
        "written": 6,
        "dropped": 0,
        "waiting": 0,
        "error": None,
    }
    log.close()


def test_reading_filters_by_slot_time_and_version(tmp_path):
    log = PredictionLog(str(tmp_path / "p.sqlite"))
    now = time.time()
    log.write([entry(0, time=now - 7200), entry(1, time=now - 60), entry(2, version="4")])
    log.write([entry(3, slot="ohlcv/GOOG")])
    assert len(log.read("xray")) == 3
    assert len(log.read("xray", since=now - 3600)) == 2
    assert len(log.read("xray", version="3")) == 2
    assert len(log.read("ohlcv/GOOG")) == 1


def test_a_broken_store_never_fails_a_record_and_is_reported_until_it_is_back(tmp_path):
    path = tmp_path / "p.sqlite"
    log = PredictionLog(str(path))
    log.record([entry(0)])
    assert log.flush()
    with sqlite3.connect(path) as conn:  # the store breaks: its table is gone
        conn.execute("DROP TABLE predictions")
    log.record([entry(2), entry(3)])  # does not raise
    assert log.flush()
    status = log.status()
    assert status["ok"] is False and status["dropped"] == 2
    assert "predictions" in status["error"]
    log._conn = None  # the next batch reconnects and makes the table again, as after a restart
    log.record([entry(4)])
    assert log.flush()
    assert log.status()["ok"] is True and log.status()["written"] == 2


def test_an_unwritable_store_drops_and_counts(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the log's folder would be")
    log = PredictionLog(str(blocker / "p.sqlite"))
    log.record([entry(0)])
    assert log.flush()
    assert log.status()["ok"] is False and log.status()["dropped"] == 1
    with pytest.raises(PredictionLogError, match="cannot write 1 rows"):
        log.write([entry(1)])


def test_reading_a_log_that_was_never_written_says_so(tmp_path):
    with pytest.raises(PredictionLogError, match="there is no prediction log at"):
        PredictionLog(str(tmp_path / "none.sqlite")).read("xray")


def test_the_callers_request_id_is_kept_only_when_it_is_a_plain_token():
    assert request_id("order-17.a:b") == "order-17.a:b"
    for bad in (None, "", "x" * 65, "a b", "<script>", "../etc"):
        assert request_id(bad) != bad and len(request_id(bad)) == 32


def test_alarms_are_kept_per_slot_for_the_cooldown(tmp_path):
    log = PredictionLog(str(tmp_path / "p.sqlite"))
    log.write([entry(0)])
    assert log.last_alarm("xray") is None
    log.add_alarm("xray", "embedding drifted", at=1000.0)
    log.add_alarm("xray", "embedding drifted", at=2000.0)
    assert log.last_alarm("xray") == 2000.0
    assert log.last_alarm("ohlcv/GOOG") is None


def test_locations_a_log_can_be_at():
    assert backend_for("postgresql://u:secret@db:5432/nnpipe").description == (
        "postgresql://***@db:5432/nnpipe"
    )
    assert str(backend_for("sqlite:////var/log/p.sqlite").description) == "/var/log/p.sqlite"
    with pytest.raises(PredictionLogError, match="neither a file path nor"):
        backend_for("s3://bucket/log")


def test_a_retried_request_id_is_logged_again_not_lost(tmp_path):
    log = PredictionLog(str(tmp_path / "p.sqlite"))
    log.record([entry(0), entry(1)])
    log.record([entry(0), entry(1)])  # the client retried with the same X-Request-ID
    assert log.flush()
    assert log.status()["written"] == 4 and log.status()["dropped"] == 0
    assert list(log.read("xray")["request_id"]) == ["r0"] * 4
