"""`nnpipe schedule` without a server. With one: prefect.yaml's deployments (through the
stack's worker) and `nnpipe schedule` run against the Prefect server of
tests/integration/test_stack.py, which starts one anyway."""


import pytest
from conftest import make_project, nnpipe

pytestmark = pytest.mark.integration


def test_schedule_without_a_server_says_how_to_start_one(tmp_path):
    project = make_project(tmp_path / "project")
    done = nnpipe(project, "schedule", check=False)
    assert done.returncode == 2
    assert "prefect server start" in done.stderr and "PREFECT_API_URL" in done.stderr
