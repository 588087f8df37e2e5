"""One error body for every failure of the API: {"error": {"code", "message", "detail"}}."""

from __future__ import annotations

import html
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.usecases.errors import (
    BadInput,
    BeforeTariff,
    Conflict,
    Forbidden,
    NoContract,
    NoData,
    NotFound,
    UseCaseError,
)

log = logging.getLogger(__name__)

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
          409: "conflict", 413: "too_large", 422: "invalid_request", 429: "too_many_requests",
          503: "unavailable"}


class ApiError(Exception):
    """An error the API answers with: HTTP status, a stable code, a message naming what was wrong."""

    def __init__(self, status: int, message: str, code: str | None = None, detail: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.detail, self.headers = status, message, detail, headers
        self.code = code or _CODES.get(status, "error")


def not_found(kind: str, ident: object) -> ApiError:
    return ApiError(404, f"{kind} {ident!r} not found")


def forbidden(message: str = "your role may not do this") -> ApiError:
    return ApiError(403, message)


class ErrorInfo(BaseModel):
    code: str = Field(description="Stable machine-readable code: not_found, invalid_request, device_unreachable ...")
    message: str = Field(description="What was wrong and where, for a person")
    detail: Any = Field(None, description="More about the error (the fields that failed, the device asked ...)")


class ErrorBody(BaseModel):
    """The body of every error response of the API."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"error": {"code": "not_found", "message": "customer 'acme' not found", "detail": None}}]})

    error: ErrorInfo


def error_response(description: str) -> dict[str, Any]:
    """An entry of an operation's `responses=`: the description and the one error body."""
    return {"model": ErrorBody, "description": description}


# Documented on every operation (the app's `responses=`); 424 and 429 on the routes that give them.
ERRORS: dict[int | str, dict[str, Any]] = {
    401: error_response("Not authenticated"), 403: error_response("Role not allowed"),
    404: error_response("Not found, or not yours"), 422: error_response("Invalid request"),
}
RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: error_response("Too many login attempts: wait for Retry-After seconds")}


def device_failed(description: str) -> dict[int | str, dict[str, Any]]:
    return {424: error_response(description)}


def body(status: int, message: str, code: str | None = None, detail: Any = None,
         headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code or _CODES.get(status, "error"), "message": message,
                                   "detail": detail}}, status_code=status, headers=headers)


def _where(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(x) for x in loc)


def _is_page(request: Request) -> bool:
    path = request.url.path
    return path == "/" or path.startswith(("/portal/", "/login", "/logout"))


def _respond(request: Request, status: int, message: str, code: str | None = None, detail: Any = None,
             headers: dict[str, str] | None = None) -> Response:
    """JSON for the API; for portal pages an HTML page, or the login page when the session is missing."""
    if not _is_page(request):
        return body(status, message, code, detail, headers)
    if status == 401:
        return RedirectResponse("/login", status_code=303)
    return HTMLResponse(_error_page(request, status, message, code, detail), status_code=status, headers=headers)


def _error_page(request: Request, status: int, message: str, code: str | None, detail: Any) -> str:
    """The portal's error page in the reader's language (the `lang` query, the portal's cookie, Accept-Language).

    The use cases' messages are English, so a Chinese page says what happened in Chinese and names only the field
    (for 422); the English page adds the message itself.
    """
    from gateway.portal.i18n import messages, negotiate, text

    chosen = request.query_params.get("lang") or request.cookies.get("eg_lang")
    lang = chosen if chosen in ("zh", "en") else negotiate(request.headers.get("accept-language"))
    key = "error_csrf" if code == "csrf" else f"error_{status}" if f"error_{status}" in messages() else "error_other"
    where = ""
    if status == 422 and isinstance(detail, list) and detail and isinstance(detail[0], dict):
        where = str(detail[0].get("where", ""))
    elif isinstance(detail, dict) and detail.get("where"):
        where = str(detail["where"])
    said = message if lang == "en" else where
    extra = f"<p id='error-detail'>{html.escape(text('error_detail', lang))}: {html.escape(said)}</p>" if said else ""
    return (f"<!doctype html><html lang='{lang}'><head><meta charset='utf-8'><title>{status} · "
            f"{html.escape(text('error_title', lang))}</title><link rel='stylesheet' href='/static/portal.css'></head>"
            f"<body><main><h1>{status}</h1><p id='error-message'>{html.escape(text(key, lang))}</p>{extra}"
            f"<p><a href='/'>{html.escape(text('back_home', lang))}</a></p></main></body></html>")


# How each use-case error is answered: HTTP status and the error body's code.
USECASE_STATUS: dict[type[UseCaseError], tuple[int, str]] = {
    BadInput: (422, "invalid_request"),
    NotFound: (404, "not_found"),
    Forbidden: (403, "forbidden"),
    Conflict: (409, "conflict"),
    NoData: (404, "no_data"),
    NoContract: (404, "no_contract"),
    BeforeTariff: (422, "before_tariff"),
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> Response:
        return _respond(request, exc.status, exc.message, exc.code, exc.detail, exc.headers)

    @app.exception_handler(UseCaseError)
    async def _usecase(request: Request, exc: UseCaseError) -> Response:
        status, code = USECASE_STATUS.get(type(exc), (422, "invalid_request"))
        code = exc.code or code
        detail: Any = {"where": exc.where} if exc.where else None
        if isinstance(exc, BeforeTariff):
            detail = {"where": exc.where, "tariff": exc.tariff_id, "first_date": exc.first_date.isoformat()}
        return _respond(request, status, str(exc), code, detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else _CODES.get(exc.status_code, "error")
        return _respond(request, exc.status_code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = [{"where": _where(e.get("loc", ())), "reason": e.get("msg", "")} for e in exc.errors()]
        first = problems[0] if problems else {"where": "request", "reason": "invalid"}
        return _respond(request, 422, f"{first['where']}: {first['reason']}", detail=problems)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return body(500, f"internal error ({type(exc).__name__}); the gateway log has the details", code="internal")
