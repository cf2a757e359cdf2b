"""The server's Prometheus metrics (``/metrics``): requests by endpoint and status, refusals
by endpoint and reason, latency by endpoint; endpoints are route templates, so an unknown
path adds no label."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from starlette.responses import JSONResponse

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

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
