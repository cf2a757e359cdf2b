"""Where served models come from: a registered version, by alias, in the configured MLflow
registry (and nowhere else), resolved to its deploy folder on local disk."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import yaml
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from nnpipe.errors import NnpipeError
from nnpipe.serving.pyfunc import ARTIFACT

log = logging.getLogger(__name__)


class ModelNotFoundError(NnpipeError, LookupError):
    """The alias points nowhere (yet), or the version is not a deployable one."""


@dataclass(frozen=True)
class RegisteredDeployable:
    name: str
    alias: str
    version: str
    run_id: str | None
    tags: dict[str, str]
    deploy_dir: Path


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    """The version ``alias`` points to now, or None where there is none."""
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def client_for(tracking_uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def resolve(tracking_uri: str, name: str, alias: str) -> RegisteredDeployable:
    """Download (or find locally) the deploy folder of ``models:/<name>@<alias>``."""
    import mlflow.artifacts

    client = client_for(tracking_uri)
    version = alias_version(client, name, alias)
    if version is None:
        raise ModelNotFoundError(f"no version of {name!r} has the alias {alias!r} in the "
                                 f"registry at {tracking_uri}; run the pipeline "
                                 "(`nnpipe run`) until one passes the gate")
    mv = client.get_model_version(name, version)
    # through the logged model's own location (a `models:/` URI would be resolved against
    # the process-wide registry, which may be another store)
    model_id = mv.model_id or (mv.source.removeprefix("models:/")
                               if mv.source.startswith("models:/m-") else None)
    location = client.get_logged_model(model_id).artifact_location if model_id else mv.source
    root = Path(mlflow.artifacts.download_artifacts(artifact_uri=location,
                                                    tracking_uri=tracking_uri))
    spec = yaml.safe_load((root / "MLmodel").read_text())
    artifacts = spec.get("flavors", {}).get("python_function", {}).get("artifacts", {})
    if ARTIFACT not in artifacts:
        raise ModelNotFoundError(f"{name} v{version} is not a deployable nnpipe version (no "
                                 f"'{ARTIFACT}' artifact); re-run promote and register")
    return RegisteredDeployable(name, alias, version, mv.run_id, dict(mv.tags or {}),
                                root / artifacts[ARTIFACT]["path"])
