"""register: version the X-ray model, make it ``challenger``, gate ``champion`` on the
gate metric (see :mod:`nnpipe.registration` for the rule every domain shares).

The champion is re-scored on today's test split with evaluate's own code; one with
another input size cannot be, and blocks promotion unless
``xray.register.allow_incomparable``. Output: ``reports/xray/registration.json``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from nnpipe import tracking
from nnpipe.config import Params
from nnpipe.io import atomic_write_json, read_json
from nnpipe.layout import domain_layout
from nnpipe.registration import GateRule, check_same_run, register_and_gate, variant_lines
from nnpipe.stages import cli_main, require
from nnpipe.stages.xray.evaluate import score_model

log = logging.getLogger(__name__)


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


def run(params: Params, domain: str) -> dict:
    cfg = params.domain(domain)
    reg = cfg.register
    layout = domain_layout(params, domain)
    run_info = read_json(require(layout.model / "run.json", "train", domain))
    metrics = read_json(require(layout.metrics, "evaluate", domain))
    meta = read_json(require(layout.features / "meta.json", "featurize", domain))
    check_same_run(metrics.get("run_id"), run_info["run_id"], str(layout.metrics), domain)
    rule = GateRule(reg.gate_metric, reg.min_value, reg.max_drop, higher_is_better=True,
                    allow_incomparable=reg.allow_incomparable,
                    allow_incomparable_key=f"{domain}.register.allow_incomparable")
    record = register_and_gate(
        params, domain, model_name=reg.model_name, run_info=run_info,
        candidate=float(metrics[reg.gate_metric]), rule=rule,
        version_tags={"threshold": metrics["threshold"]},
        rescore_champion=lambda: score_champion(
            reg.model_name, layout.features, meta["image_size"], cfg.classes, reg.gate_metric,
            cfg.evaluate.threshold, cfg.evaluate.target_specificity))
    atomic_write_json(layout.registration, record)
    return {"stage": "register", **record}


def summary_lines(params: Params, domain: str) -> list[str]:
    """The run summary's lines for this domain (printed by ``nnpipe run``)."""
    layout = domain_layout(params, domain)
    m, r = read_json(layout.metrics), read_json(layout.registration)
    return [
        f"test ROC-AUC {m['roc_auc']:.4f}  accuracy {m['accuracy']:.4f} "
        f"(threshold {m['threshold']:.3f}, chosen on val)",
        f"test sensitivity {m['sensitivity_at_specificity']:.3f} at the val threshold for "
        f"specificity {m['target_specificity']:.2f} (test specificity "
        f"{m['specificity_at_specificity_threshold']:.3f})",
        f"model {r['model_name']} v{r['version']} -> aliases {r['aliases']}; "
        f"champion is v{r['champion_now']}",
        f"gate: {r['reason']}",
        f"metrics {layout.metrics}, figures {layout.figures}/, registration {layout.registration}",
        *variant_lines(layout),
    ]


def main(argv: list[str] | None = None) -> int:
    return cli_main(__spec__.name, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
