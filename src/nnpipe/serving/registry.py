"""Where served models come from: a registered version, by alias, in the configured MLflow
registry (and nowhere else), resolved to its deploy folder on local disk. What `nnpipe
serve` can serve of a project now is :mod:`nnpipe.serving.serve_plan`."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import yaml
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from nnpipe.errors import NnpipeError, RefusedModelError
from nnpipe.serving.predictor import REPROMOTE, confined_path, read_deploy_spec

log = logging.getLogger(__name__)

MODEL_SHA256_TAG = "model_sha256"  # the version's lineage: its model file's sha256


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
    model_id: str | None = None  # the logged model the version was made from


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

    # the pyfunc has no type hints on purpose (see there); MLflow's advice to add them is
    # shown under a filter of its own, so only recording it keeps it off the server's log
    with warnings.catch_warnings(record=True) as caught:
        from nnpipe.serving.pyfunc import ARTIFACT
    for w in caught:
        if "type hints to the `predict` method" not in str(w.message):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    client = client_for(tracking_uri)
    version = alias_version(client, name, alias)
    if version is None:
        raise ModelNotFoundError(
            f"no version of {name!r} has the alias {alias!r} in the "
            f"registry at {tracking_uri}; run the pipeline "
            "(`nnpipe run`) until one passes the gate"
        )
    mv = client.get_model_version(name, version)
    # through the logged model's own location (a `models:/` URI would be resolved against
    # the process-wide registry, which may be another store)
    source = cast(str, mv.source)  # a registered version always has its source
    model_id = mv.model_id or (
        source.removeprefix("models:/") if source.startswith("models:/m-") else None
    )
    location = client.get_logged_model(model_id).artifact_location if model_id else mv.source
    root = Path(
        mlflow.artifacts.download_artifacts(artifact_uri=location, tracking_uri=tracking_uri)
    )
    tags = dict(mv.tags or {})
    deploy_dir = deploy_artifact_dir(root, f"{name} v{version}", ARTIFACT)
    check_lineage(deploy_dir, tags, f"{name} v{version}")
    return RegisteredDeployable(name, alias, version, mv.run_id, tags, deploy_dir, model_id)


def resolve_here(name: str, alias: str) -> RegisteredDeployable:
    """:func:`resolve` in the registry this process uses now (a stage's, which
    :func:`nnpipe.tracking.start_run` configures)."""
    import mlflow

    return resolve(mlflow.get_registry_uri(), name, alias)


def deploy_artifact_dir(root: Path, what: str, artifact: str = "deploy") -> Path:
    """The deploy folder (the ``artifact``) a downloaded pyfunc's ``MLmodel`` names, which
    must be a relative path inside ``root`` (the MLmodel is data from the registry)."""
    try:
        spec = yaml.safe_load((root / "MLmodel").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ModelNotFoundError(f"{what} has no readable MLmodel ({exc}); {REPROMOTE}") from None
    flavors = spec.get("flavors") if isinstance(spec, dict) else None
    pyfunc = flavors.get("python_function") if isinstance(flavors, dict) else None
    artifacts = pyfunc.get("artifacts") if isinstance(pyfunc, dict) else None
    if not isinstance(artifacts, dict) or artifact not in artifacts:
        raise ModelNotFoundError(
            f"{what} is not a deployable nnpipe version (no "
            f"'{artifact}' artifact); re-run promote and register"
        )
    entry = artifacts[artifact]
    path = confined_path(
        root,
        entry.get("path") if isinstance(entry, dict) else None,
        f"{what}: the MLmodel's '{artifact}' artifact path",
    )
    if not path.is_dir():
        raise RefusedModelError(
            f"{what}: the MLmodel's '{artifact}' artifact {path} is not a folder; {REPROMOTE}"
        )
    return path


def check_lineage(deploy_dir: Path, tags: dict[str, str], what: str) -> None:
    """Refuse a version whose deploy folder's model sha256 is not the one register recorded
    on the version (its ``model_sha256`` tag); the file itself is checked against the
    same sha256 when it is loaded (:func:`nnpipe.serving.predictor.load_predictor`)."""
    recorded = tags.get(MODEL_SHA256_TAG)
    if not recorded:
        raise RefusedModelError(
            f"{what} has no {MODEL_SHA256_TAG} tag (registered before "
            f"nnpipe recorded model hashes, or its tags were edited); "
            f"{REPROMOTE}"
        )
    spec = read_deploy_spec(deploy_dir)
    found = spec.get("sha256") if isinstance(spec, dict) else None
    if found != recorded:
        raise RefusedModelError(
            f"{what}: its deploy.json records the model sha256 {found}, "
            f"but register recorded {recorded} on the version: the "
            f"artifacts were changed after registration; {REPROMOTE}"
        )
