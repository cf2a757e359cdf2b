"""The X-ray part of the promote stage (:mod:`nnpipe.stages.promote`): the rule in
``xray.promote`` and what ``deploy.json`` records of featurize's preprocessing.

The rule: among the variants compress built, the smallest whose test ROC-AUC is within
``metric_tolerance`` of the Keras reference's and whose class decisions agree with the
reference's on at least ``min_decision_agreement`` of the test images (each variant at its
own threshold, chosen on validation); near-equal sizes go to the faster.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from nnpipe.artifacts import CompressionTable, TrainRun, UnitVariants
from nnpipe.compression.selection import SelectionRule, rule_from_params
from nnpipe.config import Params
from nnpipe.domains.contract import Unit
from nnpipe.domains.xray.artifacts import XrayFeatures
from nnpipe.domains.xray.domain import XRAY
from nnpipe.domains.xray.scoring import VARIANT_METRIC as METRIC
from nnpipe.domains.xray.scoring import VARIANT_PARITY as PARITY
from nnpipe.layout import domain_layout
from nnpipe.monitoring.frame import MonitorFrame
from nnpipe.serving.predictor import Predictor
from nnpipe.stages import require


class XrayPromotion:
    def selection_rule(self, params: Params) -> SelectionRule:
        p = XRAY.section(params).promote
        return rule_from_params(
            p,
            metric=METRIC,
            higher_is_better=True,
            parity=PARITY,
            parity_bound=p.min_decision_agreement,
            parity_higher_is_better=True,
        )

    def deploy_spec(
        self, params: Params, unit: Unit, run: TrainRun, table: UnitVariants, variant: str | None
    ) -> dict[str, Any]:
        cfg = XRAY.section(params)
        layout = domain_layout(params, XRAY.name)
        meta = XrayFeatures.read(
            require(layout.features / "meta.json", "featurize", XRAY.name), XRAY.name
        )
        # the variant's own threshold (chosen on validation by compress), else the reference's
        threshold = table.variants.get(variant or "", {}).get("threshold")
        if threshold is None:
            threshold = CompressionTable.read(layout.compression, XRAY.name).threshold
        return {
            "classes": cfg.classes,
            "image_size": meta.image_size,
            "resize": cfg.featurize.resize,
            "max_side": cfg.ingest.folder.max_side if cfg.ingest.source == "folder" else None,
            "metric": METRIC,
            "parity": PARITY,
            "threshold": threshold,
        }

    def monitor_reference(self, params: Params, unit: Unit, predictor: Predictor) -> MonitorFrame:
        """The training split's images (a seeded sample), described as serving describes
        a request's: their size as ingest stored them, their pixels as featurize resized
        them, and the deployed model's probability and embedding of each."""
        from nnpipe.domains.xray.features import read_arrays
        from nnpipe.domains.xray.monitoring import ImageSource, image_features
        from nnpipe.domains.xray.predictor import XrayPredictor

        assert isinstance(predictor, XrayPredictor)  # the domain's predictor hook
        cfg = XRAY.section(params)
        layout = domain_layout(params, XRAY.name)
        splits = pd.read_csv(
            require(layout.features / "splits.csv", "featurize", XRAY.name), dtype={"id": str}
        )
        index = pd.read_csv(
            require(layout.raw / "index.csv", "ingest", XRAY.name), dtype={"id": str}
        )
        train = splits[splits["split"] == "train"].reset_index(drop=True)
        sizes = {
            i: (int(w), int(h))
            for i, w, h in zip(index["id"], index["width"], index["height"], strict=True)
        }
        pixels, _ = read_arrays([layout.features / "train.tfrecord"], predictor.image_size)
        rng = np.random.default_rng(params.seed)
        keep = np.sort(rng.permutation(len(pixels))[: cfg.monitor.reference_rows])
        pixels = pixels[keep]
        # ingest stores every image as 8-bit grayscale PNG: that is the mode it trained on
        sources = [ImageSource(*sizes[i], "L") for i in train["id"].iloc[keep]]
        assert predictor.run_with_embedding is not None  # promote loads it with embeddings
        probability, embedding = predictor.run_with_embedding(pixels.astype(np.float32))
        return MonitorFrame.from_records(
            image_features(pixels, sources),
            [{"probability": float(p)} for p in probability.reshape(-1)],
            None if embedding is None else list(embedding),
        )
