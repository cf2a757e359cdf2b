"""The base of every artifact model: a schema version, atomic writing, reading that
says what is wrong with a file and which stage to re-run (see :mod:`nnpipe.artifacts`)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from nnpipe.errors import NnpipeError
from nnpipe.io import atomic_write_json

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1


class ArtifactError(NnpipeError):
    """A stage's output file that this nnpipe cannot read: missing, from an older or
    newer nnpipe, or not the file the stage writes."""


def rerun_hint(stage: str, domain: str | None) -> str:
    """How to remake a stage's output."""
    if domain is None:
        return f"re-run the {stage} stage (`nnpipe run`)"
    return (
        f"re-run the {stage} stage: `nnpipe stage {stage} --domain {domain}` or "
        f"`dvc repro {domain}-{stage}`"
    )


def _errors(exc: ValidationError, limit: int = 5) -> str:
    found = [
        f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
        for e in exc.errors()[:limit]
    ]
    more = f" and {exc.error_count() - limit} more" if exc.error_count() > limit else ""
    return "; ".join(found) + more


class Record(BaseModel):
    """A part of an artifact file (no version of its own)."""

    model_config = ConfigDict(extra="forbid")

    def dump(self) -> dict[str, Any]:
        """The JSON object as written: only the keys the writer set."""
        return self.model_dump(mode="json", exclude_unset=True)


class Artifact(Record):
    """A whole file, with its schema version; ``STAGE`` is the stage that writes it and
    ``WHAT`` says what it is, for the messages."""

    STAGE: ClassVar[str] = ""
    WHAT: ClassVar[str] = ""

    schema_version: int = SCHEMA_VERSION

    def dump(self) -> dict[str, Any]:
        return super().dump() | {"schema_version": self.schema_version}

    def record(self) -> dict[str, Any]:
        """The file's fields without the schema version (one file's record as a part of
        another, or for code that wants the plain object)."""
        return {k: v for k, v in super().dump().items() if k != "schema_version"}

    def write(self, path: str | os.PathLike[str]) -> Path:
        return atomic_write_json(path, self.dump())

    @classmethod
    def problem(cls, data: Any) -> str | None:
        """What keeps ``data`` (a parsed JSON value) from being this file, or None."""
        if not isinstance(data, dict):
            return f"is not a JSON object but a {type(data).__name__}"
        found = data.get("schema_version")
        if found is None:
            return (
                "has no schema_version: it was written by an nnpipe from before its files "
                "were versioned"
            )
        if found != SCHEMA_VERSION:
            return (
                f"has schema_version {found!r}, this nnpipe reads {SCHEMA_VERSION}: it was "
                "written by another version of nnpipe"
            )
        return None

    @classmethod
    def parse(
        cls, data: Any, where: str, fix: str, error: type[NnpipeError] = ArtifactError
    ) -> Self:
        """``data`` as this model, or ``error`` saying why not and ``fix``."""
        problem = cls.problem(data)
        if problem is not None:
            raise error(f"{where} {problem}; {fix}")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise error(
                f"{where} is not the {cls.WHAT} the {cls.STAGE} stage writes "
                f"({_errors(exc)}); {fix}"
            ) from None

    @classmethod
    def read(cls, path: str | os.PathLike[str], domain: str | None = None) -> Self:
        """The file at ``path``; ``domain`` names the stage to re-run in the message."""
        path = Path(path)
        fix = rerun_hint(cls.STAGE, domain)
        if not path.is_file():
            raise ArtifactError(f"{path} does not exist; {fix}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ArtifactError(f"{path} is not valid JSON ({exc}); {fix}") from None
        return cls.parse(data, str(path), fix)

    @classmethod
    def read_if_usable(cls, path: str | os.PathLike[str], domain: str | None = None) -> Self | None:
        """The file, or None (logged, with why) when it is missing or this nnpipe cannot
        read it: for a caller that then remakes it rather than fails."""
        try:
            return cls.read(path, domain)
        except ArtifactError as exc:
            log.info("%s will be remade: %s", path, exc)
            return None


def per_series(path: Path) -> bool:
    """Whether a file holds one record per series (under ``"series"``); a file that cannot
    be parsed is left to the one-record model's reader, which says what is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (UnicodeDecodeError, ValueError):
        return False
    return isinstance(data, dict) and "series" in data
