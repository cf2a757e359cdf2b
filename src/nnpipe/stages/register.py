"""register: version the model in the registry, make it ``challenger``, gate ``champion``.

The new version always gets ``challenger``. ``champion`` moves to it only if its gate
metric clears the absolute floor in params and is no worse than the current champion's on
the same test data: the champion is re-scored on today's test split, not trusted from its
own, possibly different, test set. A champion that cannot be re-scored (another input
size) blocks promotion unless ``register.allow_incomparable`` says otherwise. A refusal is
a normal outcome: it is logged, tagged on the version and written to
``reports/<domain>/registration.json``. Running the stage again for the same training run
reuses its version instead of registering a duplicate.
"""

from __future__ import annotations

import logging
from pathlib import Path

from nnpipe import tracking
from nnpipe.config import Params, Register
from nnpipe.errors import NnpipeError
from nnpipe.io import atomic_write_json, read_json
from nnpipe.layout import domain_layout
from nnpipe.promotion import GateDecision, decide_promotion
from nnpipe.stages import cli_main, require
from nnpipe.stages.evaluate import score_model

log = logging.getLogger(__name__)


class StaleMetricsError(NnpipeError):
    """metrics.json describes another model than the one train produced."""


def score_champion(name: str, features_dir: Path, image_size: int, classes: list[str],
                   metric: str, threshold_rule: str, target_specificity: float,
                   ) -> tuple[float | None, str]:
    """The champion's gate metric on the current test split (thresholds from the current
    validation split, as for the candidate), or None with the reason it is not comparable."""
    model = tracking.load_registered_keras(name, "champion")
    want = tuple(model.input_shape[1:])
    if want != (image_size, image_size, 1):
        return None, f"champion takes input {want}, today's test split is {image_size}px"
    scored = score_model(model, features_dir, image_size, classes, threshold_rule,
                         target_specificity)
    return float(scored["metrics"][metric]), "re-scored on the current test split"


def judge(reg: Register, candidate: float, champion: tracking.ModelVersionInfo | None,
          champion_value: float | None, how: str) -> GateDecision:
    if champion is not None and champion_value is None:
        if not reg.allow_incomparable:
            return GateDecision(False, f"the current champion v{champion.version} cannot be "
                                f"compared on the same test data ({how}); set "
                                "xray.register.allow_incomparable=true to judge by the floor only")
        return decide_promotion(reg.gate_metric, candidate, reg.min_value, None, reg.max_drop)
    return decide_promotion(reg.gate_metric, candidate, reg.min_value, champion_value,
                            reg.max_drop, champion.version if champion else None)


def run(params: Params, domain: str) -> dict:
    cfg = params.domain(domain)
    reg = cfg.register
    layout = domain_layout(params, domain)
    run_info = read_json(require(layout.model / "run.json", "train", domain))
    metrics = read_json(require(layout.metrics, "evaluate", domain))
    meta = read_json(require(layout.features / "meta.json", "featurize", domain))
    if metrics.get("run_id") != run_info["run_id"]:
        raise StaleMetricsError(
            f"{layout.metrics} was computed for run {metrics.get('run_id')}, but the trained "
            f"model is from run {run_info['run_id']}: run the evaluate stage first "
            f"(`dvc repro register@{domain}` runs both)")
    candidate = float(metrics[reg.gate_metric])

    with tracking.start_run(params, domain, "register", run_id=run_info["run_id"]):
        champion = tracking.version_by_alias(reg.model_name, "champion")
        version = tracking.find_version(reg.model_name, run_info["run_id"]) or \
            tracking.register_model(run_info["model_uri"], reg.model_name, tags={
                "data_hash": run_info["data_hash"], "threshold": metrics["threshold"],
                f"test_{reg.gate_metric}": candidate, "domain": domain})
        tracking.set_alias(reg.model_name, "challenger", version.version)
        champion_value, how = None, "no champion yet"
        if champion is not None and champion.version == version.version:
            champion_value, how = candidate, "the champion is this very version"
        elif champion is not None:
            champion_value, how = score_champion(
                reg.model_name, layout.features, meta["image_size"], cfg.classes,
                reg.gate_metric, cfg.evaluate.threshold, cfg.evaluate.target_specificity)
        decision = judge(reg, candidate, champion, champion_value, how)
        if decision.promote:
            tracking.set_alias(reg.model_name, "champion", version.version)
        tracking.tag_version(reg.model_name, version.version,
                             {"gate.promoted": decision.promote, "gate.reason": decision.reason})
        tracking.set_tags({"registered.version": version.version,
                           "gate.promoted": decision.promote, "gate.reason": decision.reason})
    now = tracking.version_by_alias(reg.model_name, "champion")
    record = {
        "model_name": reg.model_name,
        "version": version.version,
        "aliases": ["challenger", *(["champion"] if now and now.version == version.version
                                    else [])],
        "promoted": decision.promote,
        "reason": decision.reason,
        "gate_metric": reg.gate_metric,
        "candidate_value": candidate,
        "champion_before": champion.version if champion else None,
        "champion_before_value": champion_value,
        "champion_before_scored": how,
        "champion_now": now.version if now else None,
        "run_id": run_info["run_id"],
        "model_uri": f"models:/{reg.model_name}/{version.version}",
    }
    atomic_write_json(layout.registration, record)
    verdict = "promoted to champion" if decision.promote else "NOT promoted (gate refused)"
    log.info("register: %s v%s is challenger, %s: %s", reg.model_name, version.version, verdict,
             decision.reason)
    return {"stage": "register", **record}


def main(argv: list[str] | None = None) -> int:
    return cli_main("register", run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
