"""The X-ray lines of the run summary (``nnpipe run`` prints them, the flow publishes
them), read from the reports the stages wrote: no model is loaded, so a run with every
stage current never imports TensorFlow for them."""

from __future__ import annotations

from nnpipe.artifacts import DEPLOY_FILE, Registration
from nnpipe.config import Params
from nnpipe.domains.xray.artifacts import XrayDeploySpec, XrayEvaluation
from nnpipe.layout import domain_layout
from nnpipe.registration_summary import deployed_lines, variant_lines


def summary_lines(params: Params, domain: str) -> list[str]:
    """The run summary's lines for this domain (printed by ``nnpipe run``)."""
    layout = domain_layout(params, domain)
    m = XrayEvaluation.read(layout.evaluation, domain)
    r = Registration.read(layout.registration, domain)
    return [
        f"test ROC-AUC {m.roc_auc:.4f}  accuracy {m.accuracy:.4f} "
        f"(threshold {m.threshold:.3f}, chosen on val)",
        f"test sensitivity {m.sensitivity_at_specificity:.3f} at the val threshold for "
        f"specificity {m.target_specificity:.2f} (test specificity "
        f"{m.specificity_at_specificity_threshold:.3f})",
        *deployed_lines(r, XrayDeploySpec.read(layout.deploy / DEPLOY_FILE, domain)),
        f"metrics {layout.metrics}, figures {layout.figures}/, registration {layout.registration}",
        *variant_lines(layout, domain),
    ]
