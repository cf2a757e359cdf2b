"""Where each domain's files live, derived once from ``params.paths``.

``dvc.yaml`` is generated from the stage registry with the same templates, and a test
checks that DVC resolves them to these paths, so the two never drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nnpipe.config import Params


@dataclass(frozen=True)
class DomainLayout:
    raw: Path  # ingest: decoded images, index.csv, manifest.json
    features: Path  # featurize: TFRecord splits, meta.json, splits.csv
    model: Path  # train: model.keras, run.json, history.json
    reports: Path
    variants: Path  # compress: .tflite files and the pruned model
    hyperparameters: Path  # tune: the values train uses
    deploy: Path  # promote: the chosen variant and what serving it needs

    @property
    def promotion(self) -> Path:
        return self.reports / "promotion.json"

    @property
    def tuning(self) -> Path:
        return self.reports / "tuning.json"

    @property
    def tuning_trials(self) -> Path:
        return self.reports / "tuning.csv"

    @property
    def metrics(self) -> Path:
        """Headline numbers only: what ``dvc metrics show/diff`` and ``dvc exp show`` list."""
        return self.reports / "metrics.json"

    @property
    def evaluation(self) -> Path:
        """Every number evaluate measured (per class, baselines, walk-forward folds)."""
        return self.reports / "evaluation.json"

    @property
    def gate(self) -> Path:
        """The registry gate's verdict as numbers (1 promoted, 0 refused)."""
        return self.reports / "gate.json"

    @property
    def plots(self) -> Path:
        return self.reports / "plots"

    @property
    def history_plot(self) -> Path:
        return self.reports / "history.csv"

    @property
    def figures(self) -> Path:
        return self.reports / "figures"

    @property
    def compression(self) -> Path:
        return self.reports / "compression.json"

    @property
    def compression_report(self) -> Path:
        return self.reports / "compression.md"

    @property
    def registration(self) -> Path:
        return self.reports / "registration.json"


def domain_layout(params: Params, domain: str) -> DomainLayout:
    p = params.paths
    return DomainLayout(
        raw=p.data / domain / "raw",
        features=p.data / domain / "features",
        model=p.models / domain,
        reports=p.reports / domain,
        variants=p.models / f"{domain}-variants",
        hyperparameters=p.models / f"{domain}-hyperparameters.json",
        deploy=p.models / f"{domain}-deploy",
    )
