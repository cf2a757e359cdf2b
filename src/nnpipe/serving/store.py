"""The served models: each a registered version found by alias in the configured registry
(:mod:`nnpipe.serving.registry`), kept on the version its alias points to.

A poller moves a model to the version its alias points to now: the new one is loaded
beside the old, then swapped in one assignment; a request holds the model it started
with. A version the safe loader refuses (:class:`~nnpipe.errors.RefusedModelError`) is
logged, shown in ``/ready`` and ``/models`` and not tried again until the alias moves; the
previous one serves on."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlflow.tracking import MlflowClient

from nnpipe.domains.registry import get_domain
from nnpipe.errors import NnpipeError, RefusedModelError
from nnpipe.monitoring.prediction_log import PredictionLog
from nnpipe.serving.predictor import Predictor, load_predictor
from nnpipe.serving.registry import (
    ModelNotFoundError,
    RegisteredDeployable,
    alias_version,
    client_for,
    resolve,
)
from nnpipe.serving.settings import ServeSettings
from nnpipe.serving.workers import Workers

log = logging.getLogger(__name__)


class NotServedError(NnpipeError, LookupError):
    """A model (domain or series) this server was not asked to serve."""


@dataclass
class Slot:
    """One served model: the version its alias pointed to when loaded, and its predictor."""

    key: str
    deployable: RegisteredDeployable
    predictor: Predictor
    loaded_at: float = field(default_factory=time.time)
    lock: threading.Lock = field(default_factory=threading.Lock)  # one model run at a time

    def describe(self) -> dict[str, Any]:
        d, spec = self.deployable, self.predictor.spec.record()
        return {
            "name": d.name,
            "version": d.version,
            "alias": d.alias,
            "run_id": d.run_id,
            "variant": spec.get("variant"),
            "format": spec.get("format"),
            "data_hash": d.tags.get("data_hash"),
            "threshold": spec.get("threshold"),
            "metrics": {
                k: v
                for k, v in (spec.get("measured") or {}).items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)
            },
            "promotion_reason": spec.get("reason"),
            "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.loaded_at)),
        }

    def info(self) -> dict[str, Any]:
        """What every prediction names: the model's name, version, alias and variant."""
        d = self.deployable
        return {
            "name": d.name,
            "version": d.version,
            "alias": d.alias,
            "variant": self.predictor.variant,
        }


class ModelStore:
    """The served models, kept on the version their alias points to, and the worker
    threads every route runs its costly work in."""

    def __init__(
        self,
        settings: ServeSettings,
        loader: Callable[[str, str], RegisteredDeployable] | None = None,
    ) -> None:
        self.settings = settings
        self.slots: dict[str, Slot] = {}
        self.problems: dict[str, str] = {}
        self.refused: dict[str, dict[str, str]] = {}  # slot -> the version refused, why
        self.workers = Workers(settings.decode_threads)
        # every prediction's record, written off the request path (None: no log kept)
        self.prediction_log = (
            PredictionLog(settings.prediction_log) if settings.prediction_log else None
        )
        self._resolve = loader or (lambda name, alias: resolve(settings.tracking_uri, name, alias))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: MlflowClient | None = None

    def refresh(self) -> list[str]:
        """Load every model whose alias moved (or that is not loaded yet); what changed."""
        if self._client is None:
            self._client = client_for(self.settings.tracking_uri)
        client = self._client
        return [
            key for key, name in self.settings.models.items() if self._refresh(client, key, name)
        ]

    def _refresh(self, client: MlflowClient, key: str, name: str) -> bool:
        """Move one slot to its alias's version; whether it moved. A failure is kept (and
        logged once), never raised: a registry hiccup must never take the server down."""
        alias, current, version = self.settings.alias, self.slots.get(key), None
        try:
            version = alias_version(client, name, alias)
            if version is None:
                raise ModelNotFoundError(f"{name} has no version under the alias {alias!r} yet")
            if current is not None and current.deployable.version == version:
                self.problems.pop(key, None)
                self.refused.pop(key, None)
                return False
            if self.refused.get(key, {}).get("version") == version:
                return False  # refused once (and said so); the previous version serves on
            deployable = self._resolve(name, alias)
            # the model's embedding of each input is logged where the domain monitors it
            embedding = (
                self.prediction_log is not None and get_domain(key.split("/", 1)[0]).logs_embedding
            )
            predictor = load_predictor(deployable.deploy_dir, self.settings.threads, embedding)
            slot = Slot(key, deployable, predictor)
        except Exception as exc:
            self._failed(key, name, version, current, exc)
            return False
        self.slots[key] = slot  # one assignment: requests in flight keep the old one
        self.problems.pop(key, None)
        self.refused.pop(key, None)
        before = f"v{current.deployable.version}" if current else "nothing"
        log.info(
            "serve: %s: %s@%s moved from %s to v%s (%s)",
            key,
            name,
            alias,
            before,
            deployable.version,
            slot.predictor.variant,
        )
        return True

    def _failed(
        self, key: str, name: str, version: str | None, current: Slot | None, exc: Exception
    ) -> None:
        problem = str(exc) if isinstance(exc, NnpipeError) else f"{type(exc).__name__}: {exc}"
        if isinstance(exc, RefusedModelError):  # not retried until the alias moves
            problem = f"v{version} refused: {problem}; " + (
                f"still serving v{current.deployable.version}" if current else "nothing served"
            )
            self.refused[key] = {"version": str(version), "reason": problem}
        if self.problems.get(key) != problem:  # once, not at every poll
            log.warning("serve: %s: cannot load %s@%s: %s", key, name, self.settings.alias, problem)
        self.problems[key] = problem

    def start_polling(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self.settings.poll_seconds):
                try:
                    self.refresh()
                except Exception:  # the poller outlives any registry failure
                    log.exception("serve: polling the registry failed; trying again")

        self._thread = threading.Thread(target=loop, name="nnpipe-alias-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self.prediction_log is not None:
            self.prediction_log.close()  # what is queued is written before the server ends

    def get(self, key: str) -> Slot:
        if key not in self.settings.models:
            served = ", ".join(self.settings.models) or "nothing"
            raise NotServedError(
                f"this server does not serve {key!r} (it serves {served}; "
                "choose with `nnpipe serve --domain`)"
            )
        slot = self.slots.get(key)
        if slot is None:
            raise ModelNotFoundError(
                f"{key} is not loaded yet: {self.problems.get(key, 'loading')}"
            )
        return slot
