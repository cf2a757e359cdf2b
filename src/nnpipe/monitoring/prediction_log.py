"""The prediction log: every prediction ``nnpipe serve`` and ``nnpipe predict`` make, with
what the drift checks need of its input (never the input itself, unless asked), kept in
the project's SQLite file by default or in PostgreSQL (the deployment stack's database;
records and stores: :mod:`.log_store`).

A request never waits for the log and never fails because of it: :meth:`PredictionLog.record`
puts the rows on a bounded queue and returns; one writer thread commits them in batches.
A store that cannot be written is counted and reported (:meth:`PredictionLog.status`, which
``/ready`` and ``/metrics`` show), and the writer tries it again at the next batch.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from nnpipe.monitoring.log_store import (
    COLUMNS,
    LoggedPrediction,
    PredictionLogError,
    SqliteStore,
    backend_for,
    configured_log,
    reason_of,
    request_id,
    transaction,
)

__all__ = [
    "LoggedPrediction",
    "PredictionLog",
    "PredictionLogError",
    "backend_for",
    "configured_log",
    "request_id",
]

log = logging.getLogger(__name__)

QUEUE_ROWS = 20_000  # rows waiting for the writer before new ones are dropped (and counted)
BATCH_ROWS = 500  # rows per transaction, at most
BATCH_SECONDS = 0.5  # how long the writer gathers rows before it commits them
YIELD_ROWS = 16  # rows the writer prepares between two hand-overs of the GIL


class PredictionLog:
    """A prediction log at one store, written by a background thread."""

    def __init__(self, location: str, root: Path | None = None) -> None:
        self.backend = backend_for(location, root)
        # a deque, not a queue.Queue: appending wakes no thread, so a request hands the
        # writer no GIL switch; the writer wakes every BATCH_SECONDS (or when asked)
        self._pending: collections.deque[LoggedPrediction] = collections.deque()
        self._in_flight = 0  # rows the writer took and has not committed (or dropped) yet
        self._wake = threading.Event()
        self._stopping = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._conn: Any = None
        self.written = 0
        self.dropped = 0  # rows lost: queue full, or a batch the store refused
        self.error: str | None = None  # the last failure, until a batch is written again
        self.error_at: float | None = None

    # -- writing -------------------------------------------------------------------------

    def record(self, rows: Sequence[LoggedPrediction]) -> None:
        """Queue ``rows`` for the writer; never blocks, never raises."""
        self._start()
        room = QUEUE_ROWS - len(self._pending)
        self._pending.extend(rows[: max(room, 0)])
        if len(rows) > room:
            self.count_dropped(
                len(rows) - max(room, 0), f"the log's queue is full ({QUEUE_ROWS:,} rows waiting)"
            )

    def count_dropped(self, rows: int, reason: str) -> None:
        """Rows lost before they reached the queue (a record that could not be made)."""
        with self._lock:
            self.dropped += rows
            self.error, self.error_at = reason, time.time()

    def write(self, rows: Sequence[LoggedPrediction]) -> None:
        """Write ``rows`` now (``nnpipe predict``); raises PredictionLogError on failure."""
        try:
            self._commit(list(rows))
        except Exception as exc:
            raise PredictionLogError(
                f"cannot write {len(rows)} rows to the prediction log at "
                f"{self.backend.description}: {reason_of(exc)}"
            ) from None

    def _start(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._drain, name="nnpipe-prediction-log", daemon=True
                    )
                    self._thread.start()

    def _drain(self) -> None:
        """Every BATCH_SECONDS (sooner when flushed or closed), commit what is pending, in
        transactions of at most BATCH_ROWS: one transaction per request would cost the
        serving threads more CPU (and GIL) than the rows are worth."""
        while True:
            self._wake.wait(BATCH_SECONDS)
            self._wake.clear()
            while self._pending:
                batch: list[LoggedPrediction] = []
                with self._lock:
                    while self._pending and len(batch) < BATCH_ROWS:
                        batch.append(self._pending.popleft())
                    self._in_flight = len(batch)
                self._write_batch(batch)
                with self._lock:
                    self._in_flight = 0
            if self._stopping:
                return

    def _write_batch(self, batch: list[LoggedPrediction]) -> None:
        try:
            self._commit(batch)
        except Exception as exc:  # the log never takes a request or the server down
            self._conn = None  # reconnect at the next batch
            reason = reason_of(exc)
            with self._lock:
                self.dropped += len(batch)
                if self.error is None:
                    log.warning(
                        "prediction log: cannot write to %s: %s",
                        self.backend.description,
                        reason,
                    )
                self.error, self.error_at = reason, time.time()

    def _commit(self, batch: list[LoggedPrediction]) -> None:
        if not batch:
            return
        conn = self._connection()
        marks = ", ".join([self.backend.placeholder] * len(COLUMNS))
        sql = f"INSERT INTO predictions ({', '.join(COLUMNS)}) VALUES ({marks})"
        with transaction(conn):
            cursor = conn.cursor()
            for start in range(0, len(batch), YIELD_ROWS):
                cursor.executemany(sql, [r.row() for r in batch[start : start + YIELD_ROWS]])
                # hand the GIL back between chunks: a serving thread waits at most one
                # chunk's work (a fraction of a millisecond), not a whole batch's
                time.sleep(0)
        with self._lock:
            self.written += len(batch)
            self.error = self.error_at = None

    def _connection(self) -> Any:
        if self._conn is None:
            conn = self.backend.connect()
            with transaction(conn):
                cursor = conn.cursor()
                for statement in self.backend.schema():
                    cursor.execute(statement)
            self._conn = conn
        return self._conn

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every recorded row is written or dropped; whether that happened
        within ``timeout``."""
        deadline = time.monotonic() + timeout
        while self._busy() and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.005)
        return not self._busy()

    def _busy(self) -> bool:
        with self._lock:
            return bool(self._pending) or self._in_flight > 0

    def close(self, timeout: float = 10.0) -> None:
        """Write what is pending, then stop the writer."""
        if self._thread is not None:
            self._stopping = True
            self._wake.set()
            self._thread.join(timeout)
            self._thread = None
            self._stopping = False
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    # -- health --------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What ``/ready`` and ``/metrics`` say of the log."""
        with self._lock:
            return {
                "ok": self.error is None,
                "store": self.backend.description,
                "written": self.written,
                "dropped": self.dropped,
                "waiting": len(self._pending) + self._in_flight,
                "error": self.error,
            }

    # -- reading -------------------------------------------------------------------------

    def read(
        self,
        slot: str,
        since: float | None = None,
        until: float | None = None,
        version: str | None = None,
    ) -> pd.DataFrame:
        """The logged predictions of ``slot`` (of one model version, if given), oldest
        first, with ``output`` and ``features`` parsed and ``embedding`` as an array."""
        p = self.backend.placeholder
        where, args = [f"slot = {p}"], list[Any]([slot])
        for column, op, value in (("time", ">=", since), ("time", "<", until)):
            if value is not None:
                where.append(f"{column} {op} {p}")
                args.append(value)
        if version is not None:
            where.append(f"version = {p}")
            args.append(version)
        sql = (
            f"SELECT {', '.join(COLUMNS[:-1])} FROM predictions WHERE {' AND '.join(where)} "
            "ORDER BY time, request_id, item"
        )
        try:
            with self._reader() as conn:
                cursor = conn.cursor()
                cursor.execute(sql, args)
                rows = cursor.fetchall()
        except PredictionLogError:
            raise
        except Exception as exc:
            raise PredictionLogError(
                f"cannot read the prediction log at {self.backend.description}: {reason_of(exc)}"
            ) from None
        frame = pd.DataFrame(rows, columns=list(COLUMNS[:-1]))
        frame["output"] = [orjson.loads(v) for v in frame["output"]]
        frame["features"] = [orjson.loads(v) for v in frame["features"]]
        frame["embedding"] = pd.Series(
            [
                None if v is None else np.frombuffer(bytes(v), dtype="<f4")
                for v in frame["embedding"]
            ],
            index=frame.index,
            dtype=object,
        )
        return frame

    def last_alarm(self, slot: str) -> float | None:
        """When the monitor last raised an alarm for ``slot`` (None: never)."""
        p = self.backend.placeholder
        if isinstance(self.backend, SqliteStore) and not self.backend.path.is_file():
            return None  # no log yet (a batch monitored before anything was served)
        with self._reader() as conn:
            cursor = conn.cursor()
            cursor.execute(f"SELECT MAX(time) FROM monitor_alarms WHERE slot = {p}", [slot])
            (found,) = cursor.fetchone()
        return None if found is None else float(found)

    def add_alarm(self, slot: str, reason: str, at: float | None = None) -> None:
        p = self.backend.placeholder
        with self._reader(must_exist=False) as conn, transaction(conn):
            conn.cursor().execute(
                f"INSERT INTO monitor_alarms (slot, time, reason) VALUES ({p}, {p}, {p})",
                [slot, at if at is not None else time.time(), reason[:2000]],
            )

    @contextlib.contextmanager
    def _reader(self, must_exist: bool = True) -> Iterator[Any]:
        exists = not isinstance(self.backend, SqliteStore) or self.backend.path.is_file()
        if must_exist and not exists:
            raise PredictionLogError(
                f"there is no prediction log at {self.backend.description}: nothing has been "
                "served or predicted with this project's settings yet (`nnpipe serve`, "
                "`nnpipe predict`), or serve.prediction_log points elsewhere"
            )
        conn = self.backend.connect()
        try:
            with transaction(conn):
                cursor = conn.cursor()
                for statement in self.backend.schema():
                    cursor.execute(statement)
            yield conn
        finally:
            conn.close()
