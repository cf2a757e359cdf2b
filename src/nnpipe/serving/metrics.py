"""The server's Prometheus metrics (``/metrics``): requests by endpoint and status, refusals
by endpoint and reason, latency by endpoint; endpoints are route templates, so an unknown
path adds no label."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.responses import JSONResponse

from nnpipe.monitoring.prediction_log import PredictionLog
from nnpipe.serving.errors import error_response

BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class RequestMetrics:
    """One server's counters (a registry of its own: two apps in one process, as in the
    tests, count apart)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "nnpipe_requests",
            "Requests by endpoint and status (499: the client left before the answer)",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.errors = Counter(
            "nnpipe_request_errors",
            "Refused or failed requests by endpoint and reason",
            ["endpoint", "reason"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "nnpipe_request_seconds",
            "Request latency by endpoint",
            ["endpoint"],
            registry=self.registry,
            buckets=BUCKETS,
        )

    def record(self, endpoint: str, status: int, seconds: float, reason: str | None) -> None:
        """One finished request (``reason``: why it failed where no refusal said so)."""
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)
        if reason:
            self.errors.labels(endpoint, reason).inc()

    def refusal(
        self,
        status: int,
        message: str,
        endpoint: str,
        reason: str,
        close: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> JSONResponse:
        """The error answer, counted under ``reason``."""
        self.errors.labels(endpoint, reason).inc()
        return error_response(status, message, close, headers)

    def watch_prediction_log(self, prediction_log: PredictionLog) -> None:
        """Expose the prediction log's health, read when scraped."""
        self.registry.register(_LogCollector(prediction_log))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _LogCollector(Collector):
    """``nnpipe_prediction_log_up`` (1: the last write succeeded), and the rows written,
    dropped and waiting."""

    def __init__(self, prediction_log: PredictionLog) -> None:
        self.prediction_log = prediction_log

    def collect(self) -> Iterator[Metric]:
        status = self.prediction_log.status()
        yield GaugeMetricFamily(
            "nnpipe_prediction_log_up",
            "1 while the prediction log is written, 0 after a failed write",
            value=1.0 if status["ok"] else 0.0,
        )
        for outcome in ("written", "dropped"):
            yield CounterMetricFamily(
                f"nnpipe_prediction_log_{outcome}_rows",
                f"Predictions {outcome} by the prediction log",
                value=float(status[outcome]),
            )
        yield GaugeMetricFamily(
            "nnpipe_prediction_log_waiting_rows",
            "Predictions queued for the log's writer",
            value=float(status["waiting"]),
        )

    def describe(self) -> Iterator[Metric]:
        return iter(())
