"""Where served models come from: a registered version, by alias, in the configured MLflow
registry (and nowhere else), resolved to its deploy folder on local disk."""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import yaml
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from nnpipe.config import Params
from nnpipe.domains.registry import get_domain
from nnpipe.errors import NnpipeError, RefusedModelError
from nnpipe.layout import domain_layout
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
    return RegisteredDeployable(name, alias, version, mv.run_id, tags, deploy_dir)


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


# What `nnpipe serve` is asked to serve, and what it can serve now -----------------------


def served_models(params: Params, domains: list[str]) -> dict[str, str]:
    """Registered model names per served slot: ``xray``, ``ohlcv/<series>``."""
    return {
        slot: name for d in domains for slot, name in get_domain(d).served_models(params).items()
    }


def alias_versions(
    tracking_uri: str,
    models: dict[str, str],
    alias: str,
) -> dict[str, str | None]:
    """The version each slot's model has under ``alias`` now (None: none)."""
    client = client_for(tracking_uri)
    return {key: alias_version(client, name, alias) for key, name in models.items()}


def gate_reason(params: Params, key: str) -> str | None:
    """Why the register stage left a slot's model without a champion, from the stage's
    record (``reports/<domain>/registration.json``) where this project has one."""
    domain, _, series = key.partition("/")
    path = domain_layout(params, domain).registration
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if series:
        record = (record.get("series") or {}).get(series) or {}
    if not isinstance(record, dict) or not record.get("reason") or record.get("promoted"):
        return None
    if record.get("registered") is False:  # promote chose nothing to deploy
        return f"{record['reason']} (see {path})"
    version = f" v{record['version']}" if record.get("version") else ""
    return f"the register gate did not promote{version}: {record['reason']} (see {path})"


def serve_command(
    domains: list[str] | None = None, alias: str | None = None, extra: list[str] | None = None
) -> str:
    """An ``nnpipe serve`` command line."""
    parts = ["nnpipe", "serve", *[f"--domain {d}" for d in domains or []]]
    parts += [f"--alias {alias}"] if alias else []
    return " ".join(parts + list(extra or []))


@dataclass(frozen=True)
class ServePlan:
    """For the domains asked for: which slots have a version under the alias, which under
    ``challenger``, and so which ``nnpipe serve`` commands would be ready now."""

    domains: list[str]
    alias: str
    models: dict[str, str]
    versions: dict[str, str | None]
    challengers: dict[str, str | None]
    default_alias: str = "champion"  # params.serve.alias: what a command need not say

    @property
    def missing(self) -> list[str]:
        return [k for k, v in self.versions.items() if v is None]

    def ready_domains(self, versions: dict[str, str | None]) -> list[str]:
        return [
            d
            for d in self.domains
            if all(v is not None for k, v in versions.items() if k.split("/")[0] == d)
        ]

    def ready_commands(
        self,
        asked_domains: bool,
        extra: list[str] | None = None,
    ) -> list[tuple[str, str]]:
        """(command, what it serves) that would be ready now, best first: the domains
        whose every model has the alias, then the same domains' newest versions."""
        found = []
        alias = None if self.alias == self.default_alias else self.alias
        challenger = None if self.default_alias == "challenger" else "challenger"
        ready = self.ready_domains(self.versions)
        if ready and ready != self.domains:
            found.append(
                (
                    serve_command(ready, alias, extra),
                    "only "
                    + ", ".join(
                        f"{self.models[k]} v{v}"
                        for k, v in self.versions.items()
                        if v and k.split("/")[0] in ready
                    ),
                )
            )
        if self.alias != "challenger" and all(self.challengers.values()):
            found.append(
                (
                    serve_command(self.domains if asked_domains else None, challenger, extra),
                    "the newest registered versions, promoted or not",
                )
            )
        elif self.alias != "challenger":
            partial = [d for d in self.ready_domains(self.challengers) if d not in ready]
            if partial:
                found.append(
                    (
                        serve_command(partial, challenger, extra),
                        "the newest registered versions of " + ", ".join(partial),
                    )
                )
        return found


def serve_plan(
    params: Params,
    domains: list[str] | None = None,
    alias: str | None = None,
    tracking_uri: str | None = None,
) -> ServePlan:
    """What can be served now of ``domains`` under ``alias`` (params.serve by default)."""
    from nnpipe import store

    domains = list(domains or params.serve.domains)
    alias = alias or params.serve.alias
    uri = tracking_uri or store.tracking_uri(params)
    models = served_models(params, domains)
    versions = alias_versions(uri, models, alias)
    challengers = versions if alias == "challenger" else alias_versions(uri, models, "challenger")
    return ServePlan(domains, alias, models, versions, challengers, params.serve.alias)


def serve_hint(params: Params, tracking_uri: str | None = None) -> str:
    """The ``nnpipe serve`` command that is ready for this project's registry now
    (params.serve's domains and alias; a subset, or ``challenger``, where the gate left a
    model without a champion), or "" where nothing is registered yet."""
    try:
        plan = serve_plan(params, tracking_uri=tracking_uri)
    except MlflowException as exc:  # a summary line is not worth failing a finished run
        log.warning("serve: cannot read the registry for the serving hint: %s", exc.message)
        return ""
    if not plan.missing:
        return serve_command()
    commands = plan.ready_commands(asked_domains=False)
    return commands[0][0] if commands else ""


def not_ready_message(
    params: Params, plan: ServePlan, asked_domains: bool, extra: list[str] | None = None
) -> str:
    """Why ``nnpipe serve`` would never be ready, and the exact commands that would be."""
    count = len(plan.missing)
    lines = [
        f"nnpipe serve would never be ready: {count} of the {len(plan.models)} models "
        f"asked for {'has' if count == 1 else 'have'} no version under the alias "
        f"{plan.alias!r}:"
    ]
    for key in plan.missing:
        reason = gate_reason(params, key) if plan.alias == "champion" else None
        newest = plan.challengers.get(key)
        lines.append(
            f"  {plan.models[key]} ({key}): "
            + (
                reason
                or (
                    f"its newest version is v{newest} (challenger)"
                    if newest
                    else "no version is registered: run the pipeline (`nnpipe run`)"
                )
            )
        )
    lines.append(
        "Commands that are ready now:"
        if (commands := plan.ready_commands(asked_domains, extra))
        else "Nothing asked for is servable yet."
    )
    width = max((len(c) for c, _ in commands), default=0)
    lines += [f"  {command.ljust(width)}   # {what}" for command, what in commands]
    wait = serve_command(
        plan.domains if asked_domains else None,
        None if plan.alias == plan.default_alias else plan.alias,
        [*(extra or []), "--wait"],
    )
    lines.append(
        f"Or start anyway and wait for the alias: {wait} (/ready answers 503, "
        "naming the missing model, until then)."
    )
    if not asked_domains:
        lines.append(
            "The domains and alias `nnpipe serve` uses by default are "
            "params.yaml's serve.domains and serve.alias."
        )
    return "\n".join(lines)
