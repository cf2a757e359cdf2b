"""What ``nnpipe serve`` is asked to serve (params.yaml's ``serve`` section or its flags),
what the registry can serve of it now, and the commands that would be ready (the models
themselves are resolved by :mod:`nnpipe.serving.registry`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mlflow.exceptions import MlflowException

from nnpipe.artifacts import ArtifactError, read_registration
from nnpipe.config import Params
from nnpipe.domains.registry import get_domain
from nnpipe.layout import domain_layout
from nnpipe.serving.registry import alias_version, client_for

log = logging.getLogger(__name__)


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
    domain = get_domain(key.split("/")[0])
    path = domain_layout(params, domain.name).registration
    unit = next((u.key for u in domain.units(params) if u.slot == key), None)
    if unit is None or not path.is_file():
        return None
    try:
        record = read_registration(path, domain.name).units().get(unit)
    except ArtifactError as exc:
        return f"the register stage's record cannot be read: {exc}"
    if record is None or not record.reason or record.promoted:
        return None
    if not record.registered:  # promote chose nothing to deploy
        return f"{record.reason} (see {path})"
    version = f" v{record.version}" if record.version else ""
    return f"the register gate did not promote{version}: {record.reason} (see {path})"


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
