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

The gate's wiring (the rule, the judgement, the champion loaded to re-score it) is
:mod:`nnpipe.stages.gating`; a version's tags and description,
:mod:`nnpipe.stages.version_metadata`; the run summary's lines,
:mod:`nnpipe.stages.registration_summary`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from nnpipe import tracking
from nnpipe.artifacts import PromotedSpec, RegistrationRecord, TrainRun
from nnpipe.champion_gate import GateDecision
from nnpipe.config import Params
from nnpipe.dvc.folder_hash import directory_md5
from nnpipe.errors import NnpipeError
from nnpipe.serving.deployable import log_deployable
from nnpipe.stages.gating import GateRule, Verdict, judge, recorded_verdict, verdict_tags
from nnpipe.stages.version_metadata import deploy_tags, version_description

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
    with tracking.start_run(params, domain, "register", run_id=run_info.run_id):
        champion = tracking.version_by_alias(model_name, "champion")
        version = publish_version(
            domain,
            model_name,
            run_info,
            deploy_dir,
            deploy,
            tags={f"test_{rule.metric}": candidate, **version_tags},
            deployed_metrics=("size_bytes", "size_ratio", rule.metric, "latency_ms_median"),
            input_example=input_example,
        )
        tracking.set_alias(model_name, "challenger", version.version)
        # a re-run after this version was promoted (kill -9) keeps the recorded verdict
        verdict = recorded_verdict(version, champion) or gate_version(
            model_name, version, champion, candidate, rule, rescore_champion
        )
        if verdict.decision.promote:
            tracking.set_alias(model_name, "champion", version.version)
        describe_version(
            params,
            domain,
            version,
            verdict.decision,
            model_description=model_description,
            run_info=run_info,
            deploy=deploy,
            headline=headline,
        )
    return registration_record(model_name, version, deploy, run_info, rule, candidate, verdict)


def publish_version(
    domain: str,
    model_name: str,
    run_info: TrainRun,
    deploy_dir: Path,
    deploy: PromotedSpec,
    *,
    tags: Mapping[str, Any],
    deployed_metrics: tuple[str, ...],
    input_example: Any,
) -> tracking.ModelVersionInfo:
    """The version of ``model_name`` holding this training run's deploy folder: the one
    registered already (same run, same folder hash), or a new one logged as a pyfunc with
    the deployed variant's ``deployed_metrics`` on the run."""
    deploy_hash = directory_md5(deploy_dir)
    version = tracking.find_version(model_name, run_info.run_id, {"deploy_hash": deploy_hash})
    if version is not None:
        return version
    logged = log_deployable(deploy_dir, deploy.format == "keras", input_example)
    measured = deploy.measured or {}
    # the compression summary on the run: the deployed variant's size and metric
    tracking.log_model_metrics(
        {k: measured.get(k) for k in deployed_metrics},
        logged.model_id,
        None,
        prefix="deployed.",
    )
    return tracking.register_model(
        logged.uri,
        model_name,
        tags={
            "data_hash": run_info.data_hash,
            "domain": domain,
            "deploy_hash": deploy_hash,
            **deploy_tags(deploy),
            **tags,
        },
    )


def describe_version(
    params: Params,
    domain: str,
    version: tracking.ModelVersionInfo,
    decision: GateDecision,
    *,
    model_description: str,
    run_info: TrainRun,
    deploy: PromotedSpec,
    headline: Mapping[str, float | None],
) -> None:
    """Describe the model and this version in the registry; tag the run with the verdict."""
    tracking.describe_model(version.name, model_description)
    description = version_description(
        params,
        domain,
        model_description=model_description,
        run_info=run_info,
        deploy=deploy,
        headline=headline,
        decision=decision,
    )
    tracking.describe_model(version.name, description, version.version)
    tracking.set_tags(
        {
            "registered.version": version.version,
            "gate.promoted": decision.promote,
            "gate.reason": decision.reason,
        }
    )


def gate_version(
    model_name: str,
    version: tracking.ModelVersionInfo,
    champion: tracking.ModelVersionInfo | None,
    candidate: float,
    rule: GateRule,
    rescore_champion: Callable[[], tuple[float | None, str]],
) -> Verdict:
    """Judge ``version`` against the champion re-scored on today's test data, and record
    the verdict on the version before any alias moves: a re-run that finds this version
    champion keeps this comparison instead of judging the version against itself."""
    champion_value: float | None
    champion_value, how = None, "no champion yet"
    if champion is not None and champion.version == version.version:
        champion_value, how = candidate, "the champion is this very version"
    elif champion is not None:
        champion_value, how = rescore_champion()
    decision = judge(rule, candidate, champion, champion_value, how)
    verdict = Verdict(decision, champion, champion_value, how)
    tracking.tag_version(model_name, version.version, verdict_tags(verdict))
    return verdict


def registration_record(
    model_name: str,
    version: tracking.ModelVersionInfo,
    deploy: PromotedSpec,
    run_info: TrainRun,
    rule: GateRule,
    candidate: float,
    verdict: Verdict,
) -> RegistrationRecord:
    """What register did, with the champion now (read after the alias moved), logged."""
    now = tracking.version_by_alias(model_name, "champion")
    champion, decision = verdict.champion, verdict.decision
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
        champion_before_value=verdict.champion_value,
        champion_before_scored=verdict.how,
        champion_now=now.version if now else None,
        run_id=run_info.run_id,
        model_uri=f"models:/{model_name}/{version.version}",
    )
    verdict_text = "promoted to champion" if decision.promote else "NOT promoted (gate refused)"
    log.info(
        "register: %s v%s is challenger, %s: %s",
        model_name,
        version.version,
        verdict_text,
        decision.reason,
    )
    return record
