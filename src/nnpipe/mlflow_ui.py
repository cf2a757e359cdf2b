"""``nnpipe ui``: the MLflow UI on the project's store, in one process.

``mlflow ui`` imports MLflow and opens the store in a launcher process, then starts web
workers that import MLflow and open the store again: on a busy 2-core machine the first
page took 25 to 30 s (and two minutes with the default four workers). This sets the
server's configuration as ``mlflow server`` would and runs MLflow's own ASGI app
(``mlflow.server.fastapi_app``) under uvicorn in this process, so MLflow is imported and
the store opened once. The names it sets are MLflow's (``mlflow.server.constants``), read
from the installed version, not copied.
"""

from __future__ import annotations

import os
import uuid


def serve_ui(tracking_uri: str, artifact_root: str | None, host: str, port: int) -> None:
    """Run the UI until interrupted. ``artifact_root``: where new experiments' artifacts
    go with a local store (the project's ``mlartifacts/``)."""
    import uvicorn
    from mlflow.environment_variables import (
        _MLFLOW_IN_JOB_EXECUTOR,
        _MLFLOW_SERVER_BOOT_ID,
        _MLFLOW_SGI_NAME,
    )
    from mlflow.server import constants
    from mlflow.server.handlers import initialize_backend_stores

    settings = {
        constants.BACKEND_STORE_URI_ENV_VAR: tracking_uri,
        constants.REGISTRY_STORE_URI_ENV_VAR: tracking_uri,
        _MLFLOW_SERVER_BOOT_ID.name: uuid.uuid4().hex,
        _MLFLOW_IN_JOB_EXECUTOR.name: "false",
        _MLFLOW_SGI_NAME.name: "uvicorn",
        # no job runner: it serves GenAI jobs (judges, trace roll-ups) nnpipe does not use
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    if artifact_root:
        settings[constants.ARTIFACT_ROOT_ENV_VAR] = artifact_root
    os.environ.update(settings)
    initialize_backend_stores(tracking_uri, tracking_uri, artifact_root)
    from mlflow.server.fastapi_app import app

    uvicorn.run(app, host=host, port=port, log_level="warning")
