"""What a flow run leaves in the Prefect API, read back as the UI reads it: its stored logs
and its artifacts (used by test_prefect_deploy.py and test_stack.py)."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

from nnpipe.io import read_json
from nnpipe.stages import PIPELINES

# TensorFlow's C++ logging (absl's prefixes and the notes seen before it was silenced)
TF_NOISE = (
    "cuInit",
    "use_unbounded_threadpool",
    "cuda_platform.cc",
    "node_def_util.cc",
    "E0000 ",
    "W0000 ",
)


def api(url: str, path: str, body: dict | None = None, attempts: int = 6) -> dict | list:
    """One call to the Prefect API. A 503 is the server's "retry this" (on SQLite, a busy
    database, as the server says for retryable errors): retried with backoff, as
    Prefect's own client does."""
    for attempt in range(attempts):
        req = urllib.request.Request(
            f"{url}{path}",
            method="POST" if body is not None else "GET",
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as exc:
            if exc.code != 503 or attempt == attempts - 1:
                raise
            time.sleep(2**attempt)
    raise AssertionError("unreachable")


def wait_for_run(prefect_api: str, run_id: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = api(prefect_api, f"/flow_runs/{run_id}")
        if run["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return run
        time.sleep(2)
    raise AssertionError(f"flow run {run_id} did not finish in {timeout:.0f} s")


def stored_logs(prefect_api: str, run_id: str) -> list[dict]:
    """The flow run's logs as the API stores them (the UI's Logs tab), oldest first."""
    found: list[dict] = []
    while True:
        page = api(
            prefect_api,
            "/logs/filter",
            {
                "logs": {"flow_run_id": {"any_": [run_id]}},
                "sort": "TIMESTAMP_ASC",
                "limit": 200,
                "offset": len(found),
            },
        )
        found += page
        if len(page) < 200:
            return found


def finished_run_logs(prefect_api: str, run_id: str, timeout: float = 60) -> list[dict]:
    """The stored logs once the flow's last line is in: a run's handler sends its lines
    in batches, so the run may be Completed before its last lines are stored."""
    deadline = time.monotonic() + timeout
    while True:
        logs = stored_logs(prefect_api, run_id)
        if (
            any(
                e["name"] == "prefect.flow_runs" and e["message"].startswith("Finished in state")
                for e in logs
            )
            or time.monotonic() > deadline
        ):
            return logs
        time.sleep(1)


def run_artifacts(prefect_api: str, run_id: str) -> dict[str, dict]:
    artifacts = api(
        prefect_api, "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run_id]}}}
    )
    return {a["key"]: a for a in artifacts}


def check_xray_run_reported(
    prefect_api: str, run_id: str, project: Path, *, trained: bool, mlflow_ui: str
) -> str:
    """The run's stored logs hold nnpipe's lines (every stage, the epochs when it trained,
    the summary) and no TensorFlow C++ line; its artifacts are the summary and the
    compression table under their keys, made from the project's reports. The logs' text."""
    logs = finished_run_logs(prefect_api, run_id)
    text = "\n".join(entry["message"] for entry in logs)
    names = {entry["name"] for entry in logs}
    for stage in PIPELINES["xray"]:
        assert f"running {stage.name}" in text or f"{stage.name} is up to date" in text, (
            stage.name,
            text[-3000:],
        )
    if trained:
        assert re.search(r"^epoch 1/\d+ .*val_auc=", text, re.M), text[-3000:]
        assert "xray-train finished in" in text
        assert {"nnpipe.fitting", "nnpipe.domains.xray.stages.train"} <= names, names
    assert "[xray] gate:" in text and "[xray] test ROC-AUC" in text, text[-3000:]
    assert "nnpipe.flow_tasks" in names
    noise = [line for line in text.splitlines() if any(n in line for n in TF_NOISE)]
    assert not noise, noise[:5]

    artifacts = run_artifacts(prefect_api, run_id)
    assert set(artifacts) == {"xray-summary", "xray-compression"}, set(artifacts)
    assert artifacts["xray-summary"]["type"] == "markdown"
    record = read_json(project / "reports/xray/registration.json")
    summary = artifacts["xray-summary"]["data"]
    for part in (
        "| metric | model | baseline |",
        "| roc_auc |",
        "gate on roc_auc",
        record["reason"],
        f"`{record['variant']}`",
        f"{mlflow_ui}/#/experiments/",
        f"/runs/{record['run_id']})",
        f"{mlflow_ui}/#/models/xray-classifier/versions/{record['version']})",
    ):
        assert part in summary, (part, summary)
    assert artifacts["xray-compression"]["type"] == "table"
    table = artifacts["xray-compression"]["data"]
    rows = json.loads(table) if isinstance(table, str) else table
    compression = read_json(project / "reports/xray/compression.json")
    assert [r["variant"] for r in rows] == list(compression["variants"])
    chosen = read_json(project / "reports/xray/promotion.json")["variant"]
    assert [r["variant"] for r in rows if r["promote"] == "chosen"] == [chosen]
    assert all(r["size_bytes"] > 0 for r in rows if r["status"] == "ok")
    return text


def artifact_versions(prefect_api: str, key: str) -> list[dict]:
    """Every version of an artifact key (the UI's history of it), newest first."""
    return api(
        prefect_api,
        "/artifacts/filter",
        {"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC"},
    )
