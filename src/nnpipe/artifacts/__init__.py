"""The files stages pass to each other, as typed models with a schema version.

Every file one stage writes and another (or the server, or the flow report) reads is a
pydantic model here or in ``nnpipe.domains.<name>.artifacts``: written by
:meth:`Artifact.write` (atomically, the same JSON keys as before plus ``schema_version``)
and read by :meth:`Artifact.read`, which refuses a file from before the schema was
versioned, of another version or of another shape with an :class:`ArtifactError` naming
the file, what is wrong and the stage to re-run. (The key is ``schema_version``, not
``version``: ``registration.json`` already uses ``version`` for the registered model's.)

Files that hold one record for one model, or one per series under ``"series"``, have one
model per shape (``CompressionTable`` / ``SeriesCompressionTable``...), never per domain
name; ``read_compression`` (and the like) read the shape the domain's ``unit_key`` says.
"""

from nnpipe.artifacts.base import SCHEMA_VERSION, Artifact, ArtifactError, Record, rerun_hint
from nnpipe.artifacts.shared import (
    DEPLOY_FILE,
    CompressionTable,
    DeploySpec,
    PromotedSpec,
    Promotion,
    PromotionRow,
    Registration,
    RegistrationRecord,
    SeriesCompressionTable,
    SeriesPromotion,
    SeriesRegistration,
    TrainHistory,
    TrainRun,
    UnitVariants,
    VariantRows,
    read_compression,
    read_promotion,
    read_registration,
)
from nnpipe.artifacts.tuning import Hyperparameters, SearchOutcome, TuningSummary

__all__ = [
    "DEPLOY_FILE",
    "SCHEMA_VERSION",
    "Artifact",
    "ArtifactError",
    "CompressionTable",
    "DeploySpec",
    "Hyperparameters",
    "PromotedSpec",
    "Promotion",
    "PromotionRow",
    "Record",
    "Registration",
    "RegistrationRecord",
    "SearchOutcome",
    "SeriesCompressionTable",
    "SeriesPromotion",
    "SeriesRegistration",
    "TrainHistory",
    "TrainRun",
    "TuningSummary",
    "UnitVariants",
    "VariantRows",
    "read_compression",
    "read_promotion",
    "read_registration",
    "rerun_hint",
]
