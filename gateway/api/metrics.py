"""Prometheus metrics of the API and portal: request latency per route template and status, logins by outcome."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import Counter, Histogram
from starlette.routing import Match

REQUEST_SECONDS = Histogram("gateway_http_request_duration_seconds", "API and portal request latency",
                            ["method", "route", "status"],
                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5))
LOGINS = Counter("gateway_logins_total", "Login attempts by outcome", ["outcome"])


def _route(request: Request) -> str:
    """The route template (/api/v1/customers/{customer_id}), never the raw path: ids stay out of label values."""
    route = request.scope.get("route")
    if route is not None and hasattr(route, "path"):
        return str(route.path)
    for candidate in request.app.router.routes:
        match, _ = candidate.matches(request.scope)
        if match == Match.FULL and hasattr(candidate, "path"):
            return str(candidate.path)
    return "unmatched"


def install_metrics(app: FastAPI) -> None:
    @app.middleware("http")
    async def timing(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        if request.url.path != "/metrics":
            REQUEST_SECONDS.labels(request.method, _route(request), str(response.status_code)).observe(
                time.perf_counter() - start)
        if request.url.path in ("/login", "/api/v1/auth/token") and request.method == "POST":
            ok = response.status_code in (200, 303)
            LOGINS.labels("success" if ok else "rate_limited" if response.status_code == 429 else "failure").inc()
        return response
