"""The MLflow model registry: versions, aliases, tags and descriptions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient


@dataclass(frozen=True)
class ModelVersionInfo:
    name: str
    version: str
    run_id: str | None
    tags: dict[str, str]


def register_model(model_uri: str, name: str, tags: Mapping[str, object]) -> ModelVersionInfo:
    return _info(mlflow.register_model(model_uri, name, tags={k: str(v) for k, v in tags.items()}))


def _info(mv: Any) -> ModelVersionInfo:
    return ModelVersionInfo(mv.name, str(mv.version), mv.run_id, dict(mv.tags or {}))


def version_by_alias(name: str, alias: str) -> ModelVersionInfo | None:
    """The version an alias points to, or None where the model or alias does not exist.

    Any other failure (the server is down, access denied) raises: reading it as "no
    champion" would let a model past the gate unjudged.
    """
    try:
        return _info(MlflowClient().get_model_version_by_alias(name, alias))
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def find_version(
    name: str,
    run_id: str,
    tags: Mapping[str, str] | None = None,
) -> ModelVersionInfo | None:
    """The registered version made from ``run_id`` (and carrying ``tags``), if any, so a
    re-run does not register a duplicate."""
    try:
        found = MlflowClient().search_model_versions(f"name='{name}' and run_id='{run_id}'")
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    matching = [
        mv for mv in found if all((mv.tags or {}).get(k) == str(v) for k, v in (tags or {}).items())
    ]
    return _info(max(matching, key=lambda mv: int(mv.version))) if matching else None


def set_alias(name: str, alias: str, version: str) -> None:
    MlflowClient().set_registered_model_alias(name, alias, version)


def tag_version(name: str, version: str, tags: Mapping[str, Any]) -> None:
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, str(value))


def describe_model(name: str, description: str, version: str | None = None) -> None:
    """Set the description the registry's pages show, of a model or of one version."""
    client = MlflowClient()
    if version is None:
        client.update_registered_model(name, description=description)
    else:
        client.update_model_version(name, version, description=description)
