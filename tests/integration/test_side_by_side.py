"""`nnpipe run` runs the domains' flows side by side, each in its own process: one
domain's failure does not stop the other, and a kill -9 of `nnpipe run` stops both flows
and frees the project. (That both give the results of one stage after another is
test_dvc_repro's: the flow project is built side by side, `dvc repro` runs stage by stage.)
Real processes throughout."""

import os
import re
import signal
import subprocess

import pytest
from conftest import BIN, make_project, nnpipe
from processes import running, wait_for

from nnpipe.io import read_json
from nnpipe.project_lock import hold_project

pytestmark = pytest.mark.integration


def test_one_domains_failure_leaves_the_other_to_finish_and_is_named(tmp_path):
    project = make_project(
        tmp_path / "project",
        {
            "ohlcv": {"ingest": {"source": "csv", "csv": {"files": {"SYNTH": "missing.csv"}}}},
            "xray": {"tune": {"enabled": False}, "compress": {"variants": ["keras_float32"]}},
        },
    )
    done = nnpipe(project, "run", check=False)
    assert done.returncode == 2, done.stderr[-4000:]
    errors = [line for line in done.stderr.splitlines() if " ERROR " in line]
    assert errors, done.stderr[-4000:]
    error = errors[-1]  # the run's last word: which flow failed, and why
    assert "the ohlcv flow failed: flow ohlcv-training ended Failed" in error, error
    assert "missing.csv" in error and "the xray flow failed" not in done.stderr
    # the X-ray flow ran to its end meanwhile, and nothing of it is half done
    assert read_json(project / "reports/xray/registration.json")["registered"]
    status = subprocess.run(
        [str(BIN / "dvc"), "status", "xray-register"],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
        check=True,
    )
    assert "up to date" in status.stdout, status.stdout


def test_kill_9_of_nnpipe_run_stops_both_flows_and_frees_the_project(tmp_path):
    project = make_project(tmp_path / "project")
    log = tmp_path / "run.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(BIN / "nnpipe"), "run"], cwd=project, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        flows = wait_for(
            lambda: (
                dict(re.findall(r"(\w+) flow started \(pid (\d+)\)", log.read_text()))
                if log.read_text().count("flow started") == 2
                else None
            ),
            300,
            "two flow processes",
            log,
        )
        pids = [int(pid) for pid in flows.values()]
        assert set(flows) == {"xray", "ohlcv"}
        for domain in flows:  # each is into its stages
            wait_for(lambda d=domain: f"running {d}-" in log.read_text(), 300, domain, log)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        wait_for(lambda: not any(running(p) for p in pids), 30, "end of both flows", log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # nobody holds it any more (the flows' watchdogs kill what a TERM does not end in 5 s)
    with hold_project("the next run", project, wait_seconds=15):
        pass
