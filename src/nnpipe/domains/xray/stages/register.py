"""register: publish the deploy folder promote wrote (the chosen variant behind its
preprocessing) as an MLflow pyfunc version, make it ``challenger``, gate ``champion`` on
the deployed variant's gate metric (see :mod:`nnpipe.stages.registration` for the rule every
domain shares). Nothing is registered when promote chose nothing to deploy.

The champion's own deployed variant is re-scored on today's test split with evaluate's
code; one with another input size cannot be, and blocks promotion unless
``xray.register.allow_incomparable``. Output: ``reports/xray/registration.json``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from nnpipe.artifacts import Registration
from nnpipe.champion_gate import gate_metrics
from nnpipe.config import Params
from nnpipe.domains.xray.artifacts import XrayDeploySpec, XrayEvaluation, XrayFeatures, XrayTrainRun
from nnpipe.domains.xray.domain import XRAY
from nnpipe.domains.xray.features import read_arrays
from nnpipe.domains.xray.predictor import XrayPredictor
from nnpipe.domains.xray.scoring import score_model
from nnpipe.io import atomic_write_json
from nnpipe.layout import domain_layout
from nnpipe.serving.predictor import DEPLOY_FILE
from nnpipe.stages import cli_main, require
from nnpipe.stages.gating import GateRule, load_champion
from nnpipe.stages.registration import check_same_run, not_registered, register_and_gate

log = logging.getLogger(__name__)

DESCRIPTION = (
    "Chest X-ray pneumonia classifier (nnpipe's `xray` pipeline): a grayscale "
    "radiograph in (an array of 0..255 pixels of any size, or PNG/JPEG bytes), "
    "P(pneumonia) and the class at the version's decision threshold out. "
    "`champion` is the version the gate accepted, `challenger` the latest one."
)


def headline(measured: dict, y_test: np.ndarray) -> dict[str, float | None]:
    """The deployed variant's test metrics beside what no skill would score."""
    positive = float(np.mean(y_test))
    return {
        "test ROC-AUC": measured.get("roc_auc"),
        "chance ROC-AUC": 0.5,
        "test accuracy": measured.get("accuracy"),
        "majority-class accuracy": max(positive, 1 - positive),
        "test sensitivity at the target specificity": measured.get("sensitivity_at_specificity"),
        "test F1 (pneumonia)": measured.get("f1_positive"),
        "decision threshold": measured.get("threshold"),
    }


def score_champion(
    name: str,
    features_dir: Path,
    image_size: int,
    classes: list[str],
    metric: str,
    threshold_rule: str,
    target_specificity: float,
) -> tuple[float | None, str]:
    """The champion's gate metric on the current test split, from ITS deployed variant
    (thresholds from the current validation split, as for the candidate), or None with
    the reason it is not comparable."""
    predictor, why = load_champion(name)  # its deploy folder, never its pyfunc's code
    if not isinstance(predictor, XrayPredictor):
        return None, why or "the champion is not a deployable version nnpipe can re-score"
    if predictor.image_size != image_size:
        return None, (
            f"the champion takes {predictor.image_size}px images, today's test "
            f"split is {image_size}px"
        )
    scored = score_model(
        lambda x: predictor.run(x.astype(np.float32)),
        features_dir,
        image_size,
        classes,
        threshold_rule,
        target_specificity,
    )
    return float(scored["metrics"][metric]), (
        f"its deployed variant ({predictor.variant}) re-scored on the current test split"
    )


def run(params: Params, domain: str) -> dict:
    cfg = XRAY.section(params)
    reg = cfg.register
    layout = domain_layout(params, domain)
    run_info = XrayTrainRun.read(require(layout.model / "run.json", "train", domain), domain)
    evaluation = XrayEvaluation.read(require(layout.evaluation, "evaluate", domain), domain)
    meta = XrayFeatures.read(require(layout.features / "meta.json", "featurize", domain), domain)
    deploy = XrayDeploySpec.read(require(layout.deploy / DEPLOY_FILE, "promote", domain), domain)
    check_same_run(evaluation.run_id, run_info.run_id, str(layout.evaluation), domain)
    check_same_run(deploy.run_id, run_info.run_id, str(layout.deploy), domain, "promote")
    if deploy.variant is None:
        record = not_registered(reg.model_name, run_info.run_id, deploy.reason)
    else:
        x_test, y_test = read_arrays([layout.features / "test.tfrecord"], meta.image_size)
        measured = deploy.measured or {}
        rule = GateRule(
            reg.gate_metric,
            reg.min_value,
            reg.max_drop,
            higher_is_better=True,
            allow_incomparable=reg.allow_incomparable,
            allow_incomparable_key=f"{domain}.register.allow_incomparable",
        )
        record = register_and_gate(
            params,
            domain,
            model_name=reg.model_name,
            run_info=run_info,
            deploy_dir=layout.deploy,
            deploy=deploy,
            candidate=float(measured[reg.gate_metric]),
            rule=rule,
            version_tags={"threshold": deploy.threshold},
            input_example=x_test[:2, ..., 0],
            model_description=DESCRIPTION,
            headline=headline(measured, y_test),
            rescore_champion=lambda: score_champion(
                reg.model_name,
                layout.features,
                meta.image_size,
                cfg.classes,
                reg.gate_metric,
                cfg.evaluate.threshold,
                cfg.evaluate.target_specificity,
            ),
        )
    Registration.model_validate(record.dump()).write(layout.registration)
    atomic_write_json(layout.gate, gate_metrics(record))
    return {"stage": "register", **record.dump()}


def main(argv: list[str] | None = None) -> int:
    return cli_main(__spec__.name, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
