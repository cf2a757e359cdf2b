"""`nnpipe schedule` without a server. With one, it runs in tests/integration/test_stack.py
(which starts a Prefect server anyway): prefect.yaml's deployments through a worker, then
served by `nnpipe schedule`, a run of each that trains, logged and reported."""

import pytest
from conftest import make_project, nnpipe

pytestmark = pytest.mark.integration


def test_schedule_without_a_server_says_how_to_start_one(tmp_path):
    project = make_project(tmp_path / "project")
    done = nnpipe(project, "schedule", check=False)
    assert done.returncode == 2
    assert "prefect server start" in done.stderr and "PREFECT_API_URL" in done.stderr
