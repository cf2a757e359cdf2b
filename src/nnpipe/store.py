"""Where MLflow's store is, without importing MLflow: the environment, params, or the
project's own SQLite file and artifact folder."""

from __future__ import annotations

import os
from pathlib import Path

from nnpipe.config import Params

DEFAULT_DB = "mlflow.db"
DEFAULT_ARTIFACTS = "mlartifacts"


def tracking_uri(params: Params, root: Path | None = None) -> str:
    """The environment wins, then params, then the project's own SQLite store."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    if params.mlflow.tracking_uri:
        return params.mlflow.tracking_uri
    root = (root or Path.cwd()).resolve()
    return f"sqlite:///{root / DEFAULT_DB}"


def artifact_root(root: Path | None = None) -> Path:
    """The project's local artifact folder, used with the default SQLite store."""
    return (root or Path.cwd()).resolve() / DEFAULT_ARTIFACTS
