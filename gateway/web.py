"""The web application of a running gateway: the API and portal, their auth service, health, readiness and metrics.

Around every request: an id (`X-Request-ID`, taken from the caller when it is sane, else made) that every log
record written while serving it carries; gzip for responses worth compressing; 304 for portal files the browser
already holds; and cache headers on the offline API documentation's files. Swagger UI (/docs) and ReDoc (/redoc)
come from files installed with `fastapi-offline`, so they work without internet.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import threading
import time
import uuid
from ipaddress import ip_network
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from sqlalchemy import text
from starlette.datastructures import MutableHeaders
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.errors import ERRORS, install_error_handlers
from gateway.api.metrics import install_metrics
from gateway.api.routers import (
    accounts,
    alert_rules,
    alerts,
    allocation,
    auth,
    customers,
    devices,
    forecast_accuracy,
    meters,
    notifications,
    performance,
    planning,
    portfolio,
    registry,
    registry_file,
    report_schedule,
    reports,
    sites,
    tariffs,
    tickets,
    users,
)
from gateway.auth import AuthService
from gateway.logs import request_id
from gateway.portal import mount_portal
from gateway.usecases import UseCases

if TYPE_CHECKING:
    from gateway.runtime import Gateway

log = logging.getLogger(__name__)
access_log = logging.getLogger("gateway.access")  # one line per request; WARNING by default (gateway.logs)

API_VERSION = "1.0.0"

DEVICE_ONLINE = Gauge("gateway_device_online", "1 when the device answered its last poll", ["device", "protocol"])
DEVICE_FAILURES = Gauge("gateway_device_consecutive_failures", "Failed polls in a row", ["device", "protocol"])
DEVICE_LATENCY = Gauge("gateway_device_poll_latency_seconds", "Duration of the last poll", ["device", "protocol"])
DEVICE_OVERRUNS = Gauge("gateway_device_cycle_overruns", "Poll cycles missed because a poll ran late",
                        ["device", "protocol"])
DEVICE_AGE = Gauge("gateway_device_last_success_age_seconds", "Seconds since the last good poll",
                   ["device", "protocol"])
STORE_DOWN = Gauge("gateway_store_down_seconds", "Seconds the store has refused writes (0 while it takes them)")
OUTBOX_OLDEST = Gauge("gateway_outbox_oldest_age_seconds", "Age of the oldest reading waiting in the outbox")

# An incoming X-Request-ID is kept when it looks like an id (a proxy's or a client's); anything else is replaced, so
# that no caller can put line breaks, markup or a megabyte into the logs.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
# Where fastapi-offline serves Swagger UI's and ReDoc's files; they change only with the package.
DOCS_STATIC = "/static-offline-docs"
# ReDoc's own policy (the portal's is not for it: ReDoc runs a blob: worker): everything from this server only, so
# that the browser does not even try the Redocly logo ReDoc always shows from cdn.redoc.ly.
REDOC_PAGE = "/redoc"
REDOC_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' blob:; worker-src 'self' blob:; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
            "connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'")


def secret_key(gw: Gateway) -> str:
    """The signing key from the environment; development falls back to a per-process key (sessions end at restart)."""
    key = os.environ.get(gw.config.api.secret_key_env, "")
    if len(key) >= 16:
        return key
    if gw.config.gateway.environment == "production":
        raise RuntimeError(f"{gw.config.api.secret_key_env} is not set or shorter than 16 characters")
    log.warning("%s not set: using a random key, logins end when the gateway restarts", gw.config.api.secret_key_env)
    return secrets.token_urlsafe(32)


def auth_service(gw: Gateway) -> AuthService:
    """The gateway's AuthService (`gw.auth`), made on first use with its tables created in the registry database."""
    if gw.auth is None:
        AuthService.create_tables(gw.db.kw["bind"])
        api = gw.config.api
        gw.auth = AuthService(gw.db, secret_key(gw), session_idle_s=api.session_idle_timeout_s,
                              session_absolute_s=api.session_absolute_timeout_s)
    return gw.auth


def refresh_device_metrics(gw: Gateway) -> None:
    """Set the per-device gauges (and the store and outbox ones) from the gateway, just before /metrics is scraped."""
    now = time.time_ns()
    STORE_DOWN.set(float(gw.pipeline.stats()["store_down_s"]))  # type: ignore[arg-type]
    OUTBOX_OLDEST.set(gw.outbox.oldest_age_s(now))
    for h in gw.health():
        labels = {"device": h.device, "protocol": h.protocol}
        DEVICE_ONLINE.labels(**labels).set(1 if h.online else 0)
        DEVICE_FAILURES.labels(**labels).set(h.consecutive_failures)
        DEVICE_OVERRUNS.labels(**labels).set(h.overruns)
        if h.last_latency_s is not None:
            DEVICE_LATENCY.labels(**labels).set(h.last_latency_s)
        if h.last_success_ns is not None:
            DEVICE_AGE.labels(**labels).set((now - h.last_success_ns) / 1e9)


class RequestContext:
    """Pure ASGI middleware: a request id for each HTTP request, its access line, and the docs' headers.

    The id is the caller's `X-Request-ID` when it is sane (`_SANE_REQUEST_ID`), else a new UUID; it is set in
    `gateway.logs.request_id` for the request's whole life (threads that FastAPI runs sync routes in copy it), and
    answered in the `X-Request-ID` header.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        rid = sent if _SANE_REQUEST_ID.fullmatch(sent) else uuid.uuid4().hex
        token = request_id.set(rid)
        start = time.perf_counter()
        status = 500  # what the server answers when the app fails before it starts its response
        logged = False

        def log_access() -> None:
            nonlocal logged
            if not logged:
                logged = True
                access_log.log(logging.WARNING if status >= 500 else logging.INFO, "%s %s %d %.1f ms",
                               scope["method"], scope["path"], status, (time.perf_counter() - start) * 1000)

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                log_access()  # before the last byte leaves: a client holding the answer finds its line written
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = rid
                if scope["path"].startswith(DOCS_STATIC + "/") and "cache-control" not in headers:
                    headers["Cache-Control"] = "public, max-age=86400"
                elif scope["path"] == REDOC_PAGE and "content-security-policy" not in headers:
                    headers["Content-Security-Policy"] = REDOC_CSP
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log_access()  # an app that failed, or never finished its body
            request_id.reset(token)


class NotModified:
    """Pure ASGI middleware: 304 to a conditional GET of a portal file whose ETag the browser already holds.

    The portal's files are FileResponses, which send an ETag but always the whole body; with this, the portal's
    `Cache-Control: no-cache` files and plotly.js after its day cost a round trip, not the file again.
    """

    def __init__(self, app: ASGIApp, prefix: str = "/static/") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        held = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"if-none-match"), "")
        if (scope["type"] != "http" or not held or scope["method"] not in ("GET", "HEAD")
                or not scope["path"].startswith(self.prefix)):
            await self.app(scope, receive, send)
            return
        # No gzip for a body that will most likely not be sent (a file changed by an upgrade goes out whole, once).
        scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k != b"accept-encoding"]}
        held_tags = {t.strip().removeprefix("W/") for t in held.split(",")}
        answered = False

        async def send_or_not_modified(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":
                etag = dict(message.get("headers", ())).get(b"etag", b"").decode("latin-1").removeprefix("W/")
                if message["status"] == 200 and etag and (etag in held_tags or "*" in held_tags):
                    answered = True
                    headers = [(k, v) for k, v in message["headers"]
                               if k.lower() not in (b"content-length", b"content-type", b"content-encoding")]
                    await send({"type": "http.response.start", "status": 304, "headers": headers})
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    return
            elif answered:
                return  # the body the browser already has
            await send(message)

        await self.app(scope, receive, send_or_not_modified)


def readiness(gw: Gateway) -> tuple[bool, dict[str, dict[str, Any]]]:
    """Whether `gw` can do its work now, with each check's outcome: store, database, outbox, collectors.

    The store and the registry database answer a query; the outbox answers one; every configured device has been
    polled at least once (answered or not: a dead meter is the collector's news, not a reason to restart the
    gateway). A failed check names why, in one line.
    """
    checks: dict[str, dict[str, Any]] = {}

    def check(name: str, probe: Any) -> None:
        try:
            checks[name] = {"ok": True, **(probe() or {})}
        except Exception as exc:  # noqa: BLE001 - any failure of a probe is the answer, not an error of /ready
            checks[name] = {"ok": False, "error": (str(exc) or type(exc).__name__).strip().splitlines()[0]}

    def store() -> dict[str, Any]:
        now = time.time_ns()
        gw.store.count(now - 1, now)
        return {"down_s": gw.pipeline.stats()["store_down_s"]}

    def database() -> None:
        with gw.db() as session:
            session.execute(text("SELECT 1"))

    def outbox() -> dict[str, Any]:
        return {"depth": gw.outbox.depth, "oldest_age_s": round(gw.outbox.oldest_age_s(), 1)}

    def collectors() -> dict[str, Any]:
        if not gw.config.gateway.collect:
            return {"collect": False}  # an API-only process: the plant gateways poll the devices
        health = gw.health()
        waiting = sorted(h.device for h in health if h.polls == 0)
        if waiting:
            raise RuntimeError(f"not yet polled: {', '.join(waiting[:10])}{' ...' if len(waiting) > 10 else ''}")
        return {"devices": len(health), "online": sum(1 for h in health if h.online)}

    check("store", store)
    check("database", database)
    check("outbox", outbox)
    check("collectors", collectors)
    return all(c["ok"] for c in checks.values()), checks


def create_app(gw: Gateway) -> FastAPI:
    """The API (/api/v1) and portal of `gw`, with /health, /ready, /healthz, /metrics and offline /docs and /redoc.

    Also warms the day-curve cache in a thread.
    """
    # validatorUrl null: Swagger UI would otherwise fetch a badge from validator.swagger.io for a non-local host.
    app = FastAPIOffline(title="energy-gateway", version=API_VERSION, responses=ERRORS,
                         swagger_ui_parameters={"validatorUrl": None},
                         description="Gateway API: engineers (devices, data), account managers (their accounts), "
                                     "customers (their own company). Bearer tokens from POST /api/v1/auth/token.")
    # FastAPIOffline serves its own /docs and /redoc and leaves these None; name them again so that the portal's
    # security headers exempt them (Swagger UI starts with an inline script).
    app.docs_url, app.redoc_url = "/docs", "/redoc"
    app.state.gateway = gw
    app.state.auth = auth_service(gw)
    app.state.trusted_proxies = tuple(ip_network(n, strict=False) for n in gw.config.api.trusted_proxies)
    app.state.usecases = views = UseCases(gw)
    if gw.config.api.warm_days:

        def warm() -> None:
            try:
                views.warm(gw.config.api.warm_days)
            except Exception:  # noqa: BLE001 - warming is an optimisation; a failure must not stop the API
                log.exception("warming the day-curve cache failed")

        threading.Thread(target=warm, name="warm-views", daemon=True).start()
    install_error_handlers(app)
    # Innermost of the middlewares (added first): it must see the route's response as one body to leave a small one
    # alone, and the metrics middleware (BaseHTTPMiddleware) re-sends every body in pieces. Level 6: plotly.js
    # (4.8 MB) becomes 1.47 MB in 0.14 s; Starlette's default 9 takes 30 % longer for 0.2 % less.
    app.add_middleware(GZipMiddleware, minimum_size=1000, compresslevel=6)
    install_metrics(app)
    for module in (auth, customers, accounts, sites, meters, alerts, alert_rules, tickets, portfolio, reports,
                   report_schedule, tariffs, devices, users, notifications, registry, registry_file, allocation,
                   forecast_accuracy, performance, planning,
                   __import__("gateway.api.routers.cost_centre_view", fromlist=["router"])):  # a cost centre's view
        app.include_router(module.router)
    mount_portal(app)
    app.add_middleware(NotModified)
    # Outside even Starlette's ServerErrorMiddleware (which add_middleware cannot reach), so that the handler of
    # unexpected errors logs with the request id and its 500 answer carries it too.
    build_stack = app.build_middleware_stack
    app.build_middleware_stack = lambda: RequestContext(build_stack())  # type: ignore[method-assign]

    @app.get("/health", include_in_schema=False)
    def health() -> dict[str, str]:
        """Alive: the process answers HTTP. For a container's HEALTHCHECK and a supervisor's liveness probe."""
        return {"status": "ok"}

    @app.get("/ready", include_in_schema=False)
    def ready() -> JSONResponse:
        """Ready for work: 200 when store, database and outbox answer and the collectors have started, else 503."""
        ok, checks = readiness(gw)
        return JSONResponse({"status": "ready" if ok else "not_ready", "checks": checks},
                            status_code=200 if ok else 503)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, Any]:
        stats = gw.pipeline.stats()
        return {"status": "ok", "outbox_depth": stats["outbox_depth"], "store_down_s": stats["store_down_s"],
                "backpressure": stats["backpressure"],
                "devices_online": sum(1 for h in gw.health() if h.online), "devices": len(gw.health())}

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        refresh_device_metrics(gw)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
