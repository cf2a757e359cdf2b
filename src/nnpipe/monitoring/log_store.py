"""What the prediction log keeps and where: one record per prediction
(:class:`LoggedPrediction`), its table, and the stores it can be kept in (a SQLite file,
PostgreSQL), each with its SQL dialect's placeholder and types."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import orjson

from nnpipe.errors import NnpipeError

COLUMNS = (
    "request_id",
    "item",
    "time",
    "domain",
    "slot",
    "model",
    "version",
    "variant",
    "source",
    "output",
    "features",
    "embedding",
    "image",
)
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


class PredictionLogError(NnpipeError):
    """The prediction log cannot be opened or read: the message says which and why."""


@dataclass(frozen=True)
class LoggedPrediction:
    """One prediction (one image, one window) as the log keeps it."""

    request_id: str
    item: int  # its place in the request's batch
    domain: str
    slot: str  # where the server serves the model: "xray", "ohlcv/GOOG"
    model: str
    version: str
    variant: str
    output: dict[str, Any]  # what the caller got: probability and label, forecast and price
    features: dict[str, Any]  # the input's statistics the drift checks compare
    source: str = "serve"  # serve | predict
    embedding: np.ndarray | None = None  # the model's penultimate layer (images)
    image: bytes | None = None  # the input as PNG, only with serve.log_images
    time: float = field(default_factory=time.time)

    def row(self) -> tuple[Any, ...]:
        embedding = (
            None
            if self.embedding is None
            else np.asarray(self.embedding, dtype="<f4").reshape(-1).tobytes()
        )
        return (
            self.request_id,
            self.item,
            self.time,
            self.domain,
            self.slot,
            self.model,
            self.version,
            self.variant,
            self.source,
            encode(self.output),
            encode(self.features),
            embedding,
            self.image,
        )


def encode(value: dict[str, Any]) -> str:
    """A record's output or features as JSON text: orjson, a tenth of the standard
    library's time (the writer shares the serving process's cores), numpy numbers as
    numbers; NaN and infinities become null."""
    return orjson.dumps(value, default=float, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def request_id(sent: str | None) -> str:
    """The id a request's predictions are logged under: the caller's ``X-Request-ID``
    when it is a plain token (letters, digits, ``._:-``, at most 64), else a new one."""
    import uuid

    if sent and _REQUEST_ID.fullmatch(sent):
        return sent
    return uuid.uuid4().hex


class LogStore(Protocol):
    @property
    def placeholder(self) -> str: ...

    @property
    def description(self) -> str: ...

    def connect(self) -> Any: ...

    def schema(self) -> list[str]: ...


@dataclass(frozen=True)
class SqliteStore:
    path: Path
    placeholder: str = "?"

    @property
    def description(self) -> str:
        return str(self.path)

    def connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
        # WAL: the monitor reads while the server writes, and neither waits for the other
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def schema(self) -> list[str]:
        return schema_statements("REAL", "BLOB")


@dataclass(frozen=True)
class PostgresStore:
    url: str
    placeholder: str = "%s"

    @property
    def description(self) -> str:
        return re.sub(r"//[^@/]*@", "//***@", self.url)  # never the password

    def connect(self) -> Any:
        try:
            import psycopg
        except ImportError as exc:
            raise PredictionLogError(
                f"the prediction log is in PostgreSQL ({self.description}) and psycopg is "
                f"not installed ({exc}): install nnpipe[serve]"
            ) from None
        return psycopg.connect(self.url, connect_timeout=5)

    def schema(self) -> list[str]:
        return schema_statements("DOUBLE PRECISION", "BYTEA")


def schema_statements(real: str, blob: str) -> list[str]:
    return [
        "CREATE TABLE IF NOT EXISTS predictions ("
        "request_id TEXT NOT NULL, item INTEGER NOT NULL, "
        f"time {real} NOT NULL, domain TEXT NOT NULL, slot TEXT NOT NULL, "
        "model TEXT NOT NULL, version TEXT NOT NULL, variant TEXT NOT NULL, "
        "source TEXT NOT NULL, output TEXT NOT NULL, features TEXT NOT NULL, "
        f"embedding {blob}, image {blob})",
        # the one index: the monitor reads a slot's window. A request id is the caller's
        # (X-Request-ID), so a retried request logs again; its labels match its latest row
        "CREATE INDEX IF NOT EXISTS predictions_by_slot_time ON predictions (slot, time)",
        # when the monitor last raised an alarm for a slot: the retraining cooldown
        "CREATE TABLE IF NOT EXISTS monitor_alarms ("
        f"slot TEXT NOT NULL, time {real} NOT NULL, reason TEXT NOT NULL)",
    ]


def backend_for(location: str, root: Path | None = None) -> LogStore:
    """The store at ``location``: a ``postgresql://`` URL, a ``sqlite:///`` URL, or a file
    path (relative to the project root)."""
    if location.startswith(("postgresql://", "postgres://")):
        return PostgresStore(location)
    if location.startswith("sqlite:///"):
        location = location.removeprefix("sqlite:///")
    elif "://" in location:
        raise PredictionLogError(
            f"the prediction log {location!r} is neither a file path nor a "
            "postgresql:// or sqlite:/// URL: set serve.prediction_log (or "
            "NNPIPE_PREDICTION_LOG) to one of those"
        )
    path = Path(location)
    return SqliteStore(path if path.is_absolute() else (root or Path.cwd()) / path)


def configured_log(params: Any) -> str | None:
    """Where this project's predictions are logged: NNPIPE_PREDICTION_LOG, else
    ``serve.prediction_log``; None when it is empty (no log is kept)."""
    import os

    location = os.environ.get("NNPIPE_PREDICTION_LOG", params.serve.prediction_log)
    return location.strip() or None


@contextlib.contextmanager
def transaction(conn: Any) -> Iterator[None]:
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            conn.rollback()
        raise
    conn.commit()


def reason_of(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}".strip()
