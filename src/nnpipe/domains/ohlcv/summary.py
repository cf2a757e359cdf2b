"""The OHLCV lines of the run summary, per series (``nnpipe run`` prints them, the flow
publishes them), read from the reports the stages wrote: no model is loaded, so a run with
every stage current never imports TensorFlow for them."""

from __future__ import annotations

from nnpipe.artifacts import DEPLOY_FILE, SeriesRegistration
from nnpipe.config import Params
from nnpipe.domains.ohlcv.artifacts import OhlcvDeploySpec, OhlcvEvaluation
from nnpipe.layout import domain_layout
from nnpipe.registration_summary import champion_text, variant_lines


def summary_lines(params: Params, domain: str) -> list[str]:
    """The run summary's lines for this domain (printed by ``nnpipe run``)."""
    layout = domain_layout(params, domain)
    evaluation = OhlcvEvaluation.read(layout.evaluation, domain)
    regs = SeriesRegistration.read(layout.registration, domain).series
    lines = []
    for name, m in evaluation.series.items():
        r = regs[name]
        wf = m.walk_forward
        lines += [
            f"{name}: test RMSE model {m.model.rmse:.4g} | persistence "
            f"{m.persistence.rmse:.4g} | moving average {m.moving_average.rmse:.4g}"
            f"; MASE {m.model.mase:.3f}; MAE vs persistence {m.relative_mae:.3f}",
            f"{name}: direction right {m.model.directional_accuracy:.1%}; "
            f"Diebold-Mariano vs persistence p={m.dm_p_value:.3g}",
        ]
        if wf:
            lines.append(
                f"{name}: walk-forward ({wf.folds} folds) mean RMSE model "
                f"{wf.model.rmse:.4g} vs persistence {wf.persistence.rmse:.4g}"
                f"; beats persistence in {wf.folds_model_beats_persistence}/"
                f"{wf.folds} folds"
            )
        deploy = OhlcvDeploySpec.read(layout.deploy / name / DEPLOY_FILE, domain)
        lines.append(f"{name}: deployed variant: {deploy.variant or 'none'} ({deploy.reason})")
        champion = champion_text(r.champion_now)
        if not r.registered:
            lines.append(f"{name}: model {r.model_name}: {r.reason}; {champion}")
            continue
        verdict = "promoted to champion" if r.promoted else "not promoted"
        if (
            not r.promoted
            and (r.gate_metric or "").startswith("relative_")
            and (r.candidate_value or 0) >= 1
        ):
            verdict += ": it does not beat persistence (tomorrow = today)"
        lines += [
            f"{name}: model {r.model_name} v{r.version} -> aliases {r.aliases}; {champion}",
            f"{name}: gate: {verdict}; {r.reason}",
        ]
    lines.append(
        f"metrics {layout.metrics}, figures {layout.figures}/, registration {layout.registration}"
    )
    return lines + variant_lines(layout, domain)
