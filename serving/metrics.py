"""Prometheus metrics: request latency by route template, cache hits, fallbacks, errors.

With ``--workers > 1`` each worker has its own registry unless ``PROMETHEUS_MULTIPROC_DIR`` is set
(``centric serve`` sets it to a fresh directory for multi-worker runs); ``/metrics`` then aggregates
every worker's files with ``MultiProcessCollector``.
"""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Buckets around our 10 ms p99 target; the tail buckets catch pauses.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """The service's metric objects, registered on one registry per app (tests build many apps)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.multiprocess = "PROMETHEUS_MULTIPROC_DIR" in os.environ or "prometheus_multiproc_dir" in os.environ
        # In multiprocess mode metrics must live on the default registry so the files are written.
        self.registry = registry if registry is not None else (None if self.multiprocess else CollectorRegistry())
        kw: dict[str, Any] = {"registry": self.registry} if self.registry is not None else {}
        self.latency = Histogram(
            "centric_request_seconds",
            "Request latency by route template",
            ("method", "route", "status"),
            buckets=LATENCY_BUCKETS,
            **kw,
        )
        self.cache = Counter("centric_cache_total", "In-process cache lookups", ("cache", "result"), **kw)
        self.fallbacks = Counter("centric_fallbacks_total", "Answers served from a fallback list", ("reason",), **kw)
        self.errors = Counter("centric_errors_total", "Error responses by code", ("code",), **kw)
        self.foldins = Counter("centric_foldin_total", "Customers folded in from fresh purchases", **kw)
        gauge_kw = {**kw, "multiprocess_mode": "max"} if self.multiprocess else kw
        self.events_backlog = Gauge(
            "centric_events_backlog",
            "Events in the stream not yet in the event store (centric events sync)",
            **gauge_kw,
        )
        self.events_backlog_over = Gauge(
            "centric_events_backlog_over_bound", "1 while the events backlog is above events_backlog_max", **gauge_kw
        )

    def render(self) -> Response:
        """Return the exposition for ``/metrics`` (aggregated over workers in multiprocess mode)."""
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
        assert self.registry is not None
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware): times each request, labelled by route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            # Unmatched paths share one label so random URLs cannot explode the label set.
            template = getattr(route, "path", None) or "<unmatched>"
            self.metrics.latency.labels(scope["method"], template, str(status)).observe(time.perf_counter() - start)
