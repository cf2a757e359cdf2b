"""Registering a trained model and gating ``champion``: what every domain's register
stage shares (the stages supply the metric and how to re-score the champion).

What is registered is the deploy folder promote wrote (the chosen variant behind its
preprocessing, an MLflow pyfunc), so ``models:/<name>@champion`` serves what was judged.
The new version always gets ``challenger``. ``champion`` moves to it only if its gate
metric clears the bound in params and is no worse than the current champion's on the
same test data: the champion is re-scored on today's test split, not trusted from its
own, possibly different, test set. A champion that cannot be re-scored blocks promotion
unless ``allow_incomparable`` says otherwise. A refusal is a normal outcome: it is
logged, tagged on the version and returned. Registering again for the same training run
reuses its version instead of registering a duplicate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnpipe import tracking
from nnpipe.artifacts import (
    PromotedSpec,
    RegistrationRecord,
    TrainRun,
    read_compression,
)
from nnpipe.champion_gate import GateDecision, decide_promotion
from nnpipe.config import Params
from nnpipe.dvc.folder_hash import directory_md5
from nnpipe.errors import NnpipeError, RefusedModelError
from nnpipe.layout import DomainLayout
from nnpipe.serving.deployable import log_deployable
from nnpipe.serving.registry import MODEL_SHA256_TAG

log = logging.getLogger(__name__)


class StaleMetricsError(NnpipeError):
    """The metrics describe another model than the one train produced."""


def check_same_run(
    metrics_run_id: str | None, run_id: str, where: str, domain: str, producer: str = "evaluate"
) -> None:
    """Refuse an input made for another training run than the current model's."""
    if metrics_run_id != run_id:
        raise StaleMetricsError(
            f"{where} was computed for run {metrics_run_id}, but the trained model is from "
            f"run {run_id}: run the {producer} stage first (`dvc repro {domain}-register` "
            "runs every stage it needs)"
        )


@dataclass(frozen=True)
class GateRule:
    metric: str
    bound: float  # floor (higher is better) or ceiling (lower is better)
    tolerance: float  # allowed shortfall against the current champion
    higher_is_better: bool
    allow_incomparable: bool
    allow_incomparable_key: str  # the params key, for the message


# How load_champion says the champion was refused: serving refuses it as well (a version
# registered before sha256 lineage, or tampered), so it cannot hold its place against a
# candidate; the candidate is judged by the bound alone.
REFUSED_CHAMPION = "the champion was refused by the safe loader"


def judge(
    rule: GateRule,
    candidate: float,
    champion: tracking.ModelVersionInfo | None,
    champion_value: float | None,
    how: str,
) -> GateDecision:
    if champion is not None and champion_value is None:
        if how.startswith(REFUSED_CHAMPION):
            bound_only = decide_promotion(
                rule.metric,
                candidate,
                rule.bound,
                None,
                rule.tolerance,
                higher_is_better=rule.higher_is_better,
            )
            return GateDecision(
                bound_only.promote,
                f"{bound_only.reason}; not compared with v{champion.version}: "
                f"{how}, and serving refuses it too",
            )
        if not rule.allow_incomparable:
            return GateDecision(
                False,
                f"the current champion v{champion.version} cannot be "
                f"compared on the same test data ({how}); set "
                f"{rule.allow_incomparable_key}=true to judge by the bound only",
            )
        return decide_promotion(
            rule.metric,
            candidate,
            rule.bound,
            None,
            rule.tolerance,
            higher_is_better=rule.higher_is_better,
        )
    return decide_promotion(
        rule.metric,
        candidate,
        rule.bound,
        champion_value,
        rule.tolerance,
        champion.version if champion else None,
        higher_is_better=rule.higher_is_better,
    )


def deploy_tags(deploy: PromotedSpec) -> dict[str, Any]:
    """Version tags that say what a registered deployable is and why that variant, and
    the sha256 of its model file (serving refuses a file that does not have it)."""
    if not deploy.sha256:
        raise NnpipeError(
            "the deploy folder's deploy.json records no sha256 of its model "
            "file (written by an older promote): re-run promote "
            "(`nnpipe run`, or `dvc repro -f <domain>-promote`)"
        )
    measured = deploy.measured or {}
    return {
        "variant": deploy.variant,
        "format": deploy.format,
        MODEL_SHA256_TAG: deploy.sha256,
        "promotion_reason": deploy.reason[:4000],
        **{
            k: measured[k]
            for k in ("size_bytes", "gzip_bytes", "size_ratio", "latency_ms_median")
            if measured.get(k) is not None
        },
    }


def version_description(
    params: Params,
    domain: str,
    *,
    model_description: str,
    run_info: TrainRun,
    deploy: PromotedSpec,
    headline: Mapping[str, float | None],
    decision: GateDecision,
) -> str:
    """What a registered version is, the data it was trained on, its headline test
    metrics and the gate's decision: the text the version's page shows."""
    numbers = "\n".join(f"- {k}: {v:.4g}" for k, v in headline.items() if v is not None)
    verdict = "promoted to `champion`" if decision.promote else "NOT promoted to `champion`"
    return (
        f"{model_description}\n\n"
        f"This version deploys the `{deploy.variant}` variant ({deploy.format}) of "
        f"training run `{run_info.run_id}`, trained on "
        f"{tracking.data_note(params, domain)} Features: DVC hash "
        f"`{run_info.data_hash}`.\n\nTest metrics:\n{numbers}\n\n"
        f"Gate: {verdict}: {decision.reason}\n\nWhy this variant: {deploy.reason}"
    )


def load_champion(model_name: str) -> tuple[Any | None, str]:
    """The current champion's predictor, loaded from its deploy folder by serving's safe
    loader (never through its MLflow pyfunc, whose bundled code would run), or None and
    why it cannot be: it is not a deployable nnpipe version, or it was refused."""
    from nnpipe.serving.predictor import load_predictor
    from nnpipe.serving.registry import ModelNotFoundError, resolve_here

    try:
        found = resolve_here(model_name, "champion")
        return load_predictor(found.deploy_dir), ""
    except ModelNotFoundError as exc:
        return None, f"the champion is not a deployable version nnpipe can re-score ({exc})"
    except RefusedModelError as exc:
        log.warning("register: %s@champion refused, not re-scored: %s", model_name, exc)
        return None, f"{REFUSED_CHAMPION} ({exc})"


def not_registered(model_name: str, run_id: str, reason: str) -> RegistrationRecord:
    """The record when promote chose nothing to deploy: no version, the champion stays."""
    now = tracking.version_by_alias(model_name, "champion")
    log.warning("register: %s: nothing registered: %s", model_name, reason)
    return RegistrationRecord(
        model_name=model_name,
        registered=False,
        version=None,
        aliases=[],
        promoted=False,
        reason=f"nothing registered: {reason}",
        champion_now=now.version if now else None,
        run_id=run_id,
    )


def recorded_decision(
    version: tracking.ModelVersionInfo,
    champion: tracking.ModelVersionInfo | None,
) -> tuple[GateDecision, tracking.ModelVersionInfo | None, float | None, str] | None:
    """The gate decision recorded on ``version`` when it is the champion already (a run
    killed after moving the alias, then run again), with the champion it was judged
    against; None when it must be judged (anew)."""
    tags = version.tags
    if champion is None or champion.version != version.version or "gate.reason" not in tags:
        return None
    before = tags.get("gate.champion_before") or None
    value = tags.get("gate.champion_before_value") or None
    previous = tracking.ModelVersionInfo(version.name, before, None, {}) if before else None
    return (
        GateDecision(tags.get("gate.promoted") == "True", tags["gate.reason"]),
        previous,
        float(value) if value is not None else None,
        tags.get("gate.champion_before_scored", "recorded when it was registered"),
    )


def register_and_gate(
    params: Params,
    domain: str,
    *,
    model_name: str,
    run_info: TrainRun,
    deploy_dir: Path,
    deploy: PromotedSpec,
    candidate: float,
    rule: GateRule,
    version_tags: Mapping[str, Any],
    rescore_champion: Callable[[], tuple[float | None, str]],
    input_example: Any,
    headline: Mapping[str, float | None],
    model_description: str,
) -> RegistrationRecord:
    """Publish the deploy folder as a pyfunc version (once per training run and deploy
    folder; ``input_example``: raw model input, for its signature), make it challenger,
    decide champion, describe model and version (``headline``: test metrics with their
    baselines, for the description); the record."""
    deploy_hash = directory_md5(deploy_dir)
    with tracking.start_run(params, domain, "register", run_id=run_info.run_id):
        champion = tracking.version_by_alias(model_name, "champion")
        version = tracking.find_version(model_name, run_info.run_id, {"deploy_hash": deploy_hash})
        if version is None:
            logged = log_deployable(deploy_dir, deploy.format == "keras", input_example)
            measured = deploy.measured or {}
            # the compression summary on the run: the deployed variant's size and metric
            tracking.log_model_metrics(
                {
                    k: measured.get(k)
                    for k in ("size_bytes", "size_ratio", rule.metric, "latency_ms_median")
                },
                logged.model_id,
                None,
                prefix="deployed.",
            )
            version = tracking.register_model(
                logged.uri,
                model_name,
                tags={
                    "data_hash": run_info.data_hash,
                    f"test_{rule.metric}": candidate,
                    "domain": domain,
                    "deploy_hash": deploy_hash,
                    **deploy_tags(deploy),
                    **version_tags,
                },
            )
        tracking.set_alias(model_name, "challenger", version.version)
        recorded = recorded_decision(version, champion)
        if recorded is not None:  # a re-run after this version was promoted (kill -9)
            decision, champion, champion_value, how = recorded
        else:
            champion_value, how = None, "no champion yet"
            if champion is not None and champion.version == version.version:
                champion_value, how = candidate, "the champion is this very version"
            elif champion is not None:
                champion_value, how = rescore_champion()
            decision = judge(rule, candidate, champion, champion_value, how)
            # recorded before the alias moves: a re-run that finds this version champion
            # keeps this comparison instead of judging the version against itself
            tracking.tag_version(
                model_name,
                version.version,
                {
                    "gate.promoted": decision.promote,
                    "gate.reason": decision.reason,
                    "gate.champion_before": champion.version if champion else "",
                    "gate.champion_before_value": "" if champion_value is None else champion_value,
                    "gate.champion_before_scored": how,
                },
            )
        if decision.promote:
            tracking.set_alias(model_name, "champion", version.version)
        tracking.describe_model(model_name, model_description)
        tracking.describe_model(
            model_name,
            version_description(
                params,
                domain,
                model_description=model_description,
                run_info=run_info,
                deploy=deploy,
                headline=headline,
                decision=decision,
            ),
            version.version,
        )
        tracking.set_tags(
            {
                "registered.version": version.version,
                "gate.promoted": decision.promote,
                "gate.reason": decision.reason,
            }
        )
    now = tracking.version_by_alias(model_name, "champion")
    record = RegistrationRecord(
        model_name=model_name,
        registered=True,
        variant=deploy.variant,
        version=version.version,
        aliases=["challenger", *(["champion"] if now and now.version == version.version else [])],
        promoted=decision.promote,
        reason=decision.reason,
        gate_metric=rule.metric,
        candidate_value=candidate,
        champion_before=champion.version if champion else None,
        champion_before_value=champion_value,
        champion_before_scored=how,
        champion_now=now.version if now else None,
        run_id=run_info.run_id,
        model_uri=f"models:/{model_name}/{version.version}",
    )
    verdict = "promoted to champion" if decision.promote else "NOT promoted (gate refused)"
    log.info(
        "register: %s v%s is challenger, %s: %s",
        model_name,
        version.version,
        verdict,
        decision.reason,
    )
    return record


def variant_lines(layout: DomainLayout) -> list[str]:
    """The run summary's line on the compress stage's table, where there is one."""
    if not layout.compression.is_file():
        return []
    units = read_compression(layout.compression).units()
    rows = [r for t in units.values() for r in t.variants.values()]
    ok = sum(r.get("status") == "ok" for r in rows)
    return [
        f"variants: {ok} of {len(rows)} built and measured ({len(rows) - ok} unsupported); "
        f"table {layout.compression_report}"
    ]


def deployed_lines(record: RegistrationRecord, deploy: PromotedSpec) -> list[str]:
    """The run summary's lines on what was deployed and registered."""
    lines = [f"deployed variant: {deploy.variant or 'none'} ({deploy.reason})"]
    if not record.registered:
        return [
            *lines,
            f"model {record.model_name}: {record.reason}; {champion_text(record.champion_now)}",
        ]
    return [
        *lines,
        f"model {record.model_name} v{record.version} -> aliases "
        f"{record.aliases}; {champion_text(record.champion_now)}",
        f"gate: {record.reason}",
    ]


def champion_text(version: str | None) -> str:
    """``champion is v3``, or that there is none (never ``vNone``)."""
    return f"champion is v{version}" if version else "no champion yet (nothing to serve)"
