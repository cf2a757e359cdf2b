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


def ui_command(uri: str, root: Path | None = None) -> str:
    """How a user opens the MLflow UI on this store."""
    if uri.startswith(("http://", "https://")):
        return f"open {uri}"
    artifacts = artifact_root(root).as_uri()
    return (f"mlflow ui --backend-store-uri {uri} --default-artifact-root {artifacts}"
            "   # then open http://127.0.0.1:5000")
