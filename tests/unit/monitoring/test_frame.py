"""The monitor's tables: a prediction's record flattened the same way for the reference
and the log, and the reference file read back exactly, as data only."""

from __future__ import annotations

import io

import numpy as np
import pytest

from nnpipe.monitoring.frame import MonitorFrame, MonitorInputError, flat_record


def test_a_record_is_flattened_into_columns():
    row = flat_record(
        {"mean": 1.0, "mode": "L", "histogram": [0.25, 0.75]},
        {"probability": 0.9, "label": "pneumonia"},
    )
    assert row == {
        "mean": 1.0,
        "mode": "L",
        "histogram_00": 0.25,
        "histogram_01": 0.75,
        "output_probability": 0.9,
    }


def test_the_reference_file_reads_back_as_written(tmp_path):
    frame = MonitorFrame.from_records(
        [{"mean": float(i), "mode": "L"} for i in range(5)],
        [{"probability": i / 5} for i in range(5)],
        list(np.eye(5, 3, dtype=np.float32)),
    )
    back = MonitorFrame.read(frame.write(tmp_path / "ref.npz"))
    assert back.table.to_dict("list") == frame.table.to_dict("list")
    np.testing.assert_array_equal(back.embedding, frame.embedding)


def test_embeddings_of_two_widths_are_not_stacked():
    frame = MonitorFrame.from_records(
        [{}, {}], [{}, {}], [np.zeros(3, np.float32), np.zeros(4, np.float32)]
    )
    assert frame.embedding is None


def test_a_reference_file_holding_objects_is_refused_unread(tmp_path):
    buf = io.BytesIO()
    np.savez(buf, **{"num/x": np.array([{"code": 1}], dtype=object)})
    path = tmp_path / "planted.npz"
    path.write_bytes(buf.getvalue())
    with pytest.raises(MonitorInputError, match="not a monitoring reference"):
        MonitorFrame.read(path)
