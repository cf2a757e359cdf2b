"""A crash in one variant's child process costs that variant only."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from nnpipe.compression.runner import run_variants
from nnpipe.compression.table import add_ratios, markdown

FAKE_WORKER = textwrap.dedent("""
    import json, os, signal, sys
    from pathlib import Path
    job_dir = Path(sys.argv[1])
    job = json.loads((job_dir / "job.json").read_text())
    for name in job["variants"]:
        if (job_dir / f"{name}.json").exists():
            continue
        (job_dir / f"{name}.started").touch()
        if name == "tflite_int8":
            os.kill(os.getpid(), signal.SIGSEGV)  # what a crashing converter does
        (job_dir / f"{name}.json").write_text(json.dumps(
            {"variant": name, "status": "ok", "size_bytes": 100, "gzip_bytes": 50,
             "latency_ms_median": 1.0, "latency_ms_p99": 2.0, "throughput_per_s": 10.0}))
""")


def test_a_crashing_variant_is_recorded_and_the_others_are_built(tmp_path, monkeypatch):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "fake_worker.py").write_text(FAKE_WORKER)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "pkg"))
    variants = ["keras_float32", "tflite_float32", "tflite_int8", "pruned", "pruned_int8"]
    rows = run_variants(
        tmp_path / "job",
        {"variants": variants},
        {"x": np.zeros(3)},
        timeout=60,
        worker_module="fake_worker",
    )
    assert list(rows) == variants
    assert rows["tflite_int8"]["status"] == "unsupported"
    assert "SIGSEGV" in rows["tflite_int8"]["reason"]
    assert all(rows[v]["status"] == "ok" for v in variants if v != "tflite_int8")


def test_ratios_and_report_against_the_reference():
    rows = {
        "keras_float32": {
            "status": "ok",
            "size_bytes": 1000,
            "gzip_bytes": 900,
            "latency_ms_median": 2.0,
            "latency_ms_p99": 3.0,
            "throughput_per_s": 100.0,
            "roc_auc": 0.90,
        },
        "tflite_int8": {
            "status": "ok",
            "size_bytes": 250,
            "gzip_bytes": 180,
            "latency_ms_median": 1.0,
            "latency_ms_p99": 1.5,
            "throughput_per_s": 300.0,
            "roc_auc": 0.895,
            "build_seconds": 2.54,
        },
        "pruned": {"status": "unsupported", "reason": "boom"},
    }
    add_ratios(rows, "roc_auc")
    assert rows["tflite_int8"]["size_ratio"] == 0.25
    assert rows["tflite_int8"]["gzip_ratio"] == 0.2
    assert (
        rows["tflite_int8"]["roc_auc_delta"] == -0.005
        or abs(rows["tflite_int8"]["roc_auc_delta"] + 0.005) < 1e-12
    )
    text = markdown(rows, "roc_auc", "decision_agreement", "t")
    assert "unsupported: boom" in text and "| tflite_int8 | 0.2 |" in text
    lines = text.splitlines()
    assert lines[2].count("|") == lines[4].count("|") == lines[5].count("|")  # columns
    assert lines[5].endswith("| 2.5 |")  # the time it took to build and measure it


def test_the_workers_progress_lines_are_logged_here_and_a_hung_worker_is_stopped(
    tmp_path, monkeypatch, caplog
):
    """The variants' progress ("variant 2/3 ...") reaches the stage's own log (and so
    Prefect's); other output (TensorFlow's) is kept only as the crash tail."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "chatty_worker.py").write_text(
        textwrap.dedent("""
        import json, sys, time
        from pathlib import Path
        from nnpipe.compression.worker import LOG_MARK
        job_dir = Path(sys.argv[1])
        job = json.loads((job_dir / "job.json").read_text())
        for number, name in enumerate(job["variants"], start=1):
            if (job_dir / f"{name}.json").exists():
                continue
            (job_dir / f"{name}.started").touch()
            print(f"{LOG_MARK}INFO|variant {number}/3 {name}: building", file=sys.stderr,
                  flush=True)
            print("I0000 some_op.cc:12] TensorFlow chatter", file=sys.stderr, flush=True)
            if name == "pruned":
                time.sleep(60)  # hangs: the runner's time-out must end it
            (job_dir / f"{name}.json").write_text(json.dumps(
                {"variant": name, "status": "ok"}))
    """)
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "pkg"))
    caplog.set_level("INFO", logger="nnpipe.compression.runner")
    rows = run_variants(
        tmp_path / "job",
        {"variants": ["keras_float32", "pruned", "x"]},
        {"x": np.zeros(3)},
        timeout=5,
        worker_module="chatty_worker",
    )
    logged = [r.getMessage() for r in caplog.records if r.name == "nnpipe.compression.runner"]
    assert "variant 1/3 keras_float32: building" in logged
    assert "variant 3/3 x: building" in logged
    assert not any("TensorFlow chatter" in line for line in logged)
    assert rows["pruned"]["status"] == "unsupported"
    assert "timed out" in rows["pruned"]["reason"]
    assert "TensorFlow chatter" in rows["pruned"]["stderr_tail"]
    assert rows["x"]["status"] == "ok"


def keras_only_job(model_path) -> dict:
    return {"model": str(model_path), "variants": ["keras_float32"], "latency_runs": 3}


def test_a_job_of_the_keras_reference_alone_is_measured_in_this_process(tmp_path):
    """No worker process (the unit tier's guard fails a test that starts one importing
    TensorFlow): the row and the predictions are the worker's."""
    from toy_models import image_model, images

    from nnpipe.compression.runner import predictions

    x, _ = images(8)
    model = image_model("small_cnn")
    model.save(tmp_path / "model.keras")
    rows = run_variants(
        tmp_path / "job", keras_only_job(tmp_path / "model.keras"), {"x_test": x}, timeout=60
    )
    assert rows["keras_float32"]["status"] == "ok", rows
    assert rows["keras_float32"]["size_bytes"] > 0
    got = predictions(tmp_path / "job", "keras_float32")
    assert np.allclose(got, model.predict(x, verbose=0).reshape(len(x), -1), atol=1e-6)


def test_a_reference_that_does_not_load_here_is_a_row_saying_why_not_a_crash(tmp_path):
    from nnpipe.compression.runner import ReferenceFailedError, reference_predictions

    job_dir = tmp_path / "job"
    missing = tmp_path / "model.keras"
    rows = run_variants(job_dir, keras_only_job(missing), {"x_test": np.zeros((2, 4))}, 60)
    row = rows["keras_float32"]
    assert row["status"] == "unsupported"
    assert (
        row["reason"].startswith("measuring it here raised ")
        and "while building it" in row["reason"]
    )
    with pytest.raises(ReferenceFailedError, match="could not be run on the test split"):
        reference_predictions(job_dir, rows)
