"""Logging of the long-running commands: one stderr handler, our loggers at `log_level`, chatty libraries quieter."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from gateway.config import GatewayConfig

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# `[gateway] log_level` sets these: the gateway's own packages.
OUR_LOGGERS = ("gateway", "collectors", "forecasting", "crm_bridge", "reports")
# At their default INFO these write per message: asyncua every OPC UA Publish response in full, pymodbus every
# retry, uvicorn every request, APScheduler every job run, alembic its plugins at each start. `[gateway]
# log_levels` turns any of them back up.
QUIET_LIBRARIES: Mapping[str, str] = {"asyncua": "WARNING", "pymodbus": "WARNING", "uvicorn": "WARNING",
                                      "apscheduler": "WARNING", "alembic": "WARNING", "gateway.access": "WARNING"}
_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING, "ERROR": logging.ERROR,
           "CRITICAL": logging.CRITICAL}
_applied: set[str] = set()  # loggers whose level the last call set, so that a new call starts from clean

# The id of the API request being served (gateway.web sets it); every record logged while serving it carries it.
request_id: ContextVar[str] = ContextVar("request_id", default="")
# Attributes every LogRecord has: what is left on a record are the structured fields a caller gave with `extra=`.
_RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime",
                                                                                       "request_id"}


class _OurHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The one handler setup_logging installs (and replaces when called again)."""


class RequestIdFilter(logging.Filter):
    """Puts the current API request's id on each record (`record.request_id`, "" outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = request_id.get()
        return True


class TextFormatter(logging.Formatter):
    """`FORMAT`, then the request id and any structured fields (`extra=`) as key=value, when there are any."""

    def __init__(self) -> None:
        super().__init__(FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = _fields(record)
        if not fields:
            return text
        first, newline, rest = text.partition("\n")  # after the message, before a traceback
        return first + "".join(f" {k}={v}" for k, v in fields.items()) + newline + rest


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, request id, `extra=` fields, traceback.

    For log shippers (journald with a JSON parser, Docker's json-file, Loki, Elasticsearch): nothing to parse by
    pattern, and a traceback stays inside its record instead of becoming lines of its own.
    """

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update(_fields(record))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's request id (when it has one) and the structured fields a caller passed with `extra=`."""
    fields: dict[str, Any] = {}
    if rid := getattr(record, "request_id", ""):
        fields["request_id"] = rid
    fields.update((k, v) for k, v in record.__dict__.items() if k not in _RECORD_ATTRS and not k.startswith("_"))
    return fields


class PymodbusFrameFilter(logging.Filter):
    """Strips the raw frames pymodbus appends in hex to each of its errors (e.g. every timeout).

    pymodbus keeps the last 20 frames and, unless its logger is at DEBUG, adds them to the text of every error it
    logs (`pymodbus.logging.Log.error`), one `>>>>> send: 0x.. 0x..` line each. The collector already says which
    device and which registers failed; at DEBUG pymodbus logs each frame as it goes anyway.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "\n>>>>> " in record.msg:
            record.msg = record.msg.split("\n>>>>> ", 1)[0]
        return True


_FRAME_FILTER = PymodbusFrameFilter()
_REQUEST_ID_FILTER = RequestIdFilter()


def setup_logging(cfg: GatewayConfig | None = None, *, level: str | None = None, stream: TextIO | None = None,
                  log_format: str | None = None) -> None:
    """Configure logging for `run`, `demo` and `collect` from `[gateway] log_level`, `log_levels` and `log_format`.

    Our loggers get `log_level` (or `level`); asyncua, pymodbus, uvicorn, apscheduler and the API's access lines
    (`gateway.access`) get WARNING; every other library logs INFO and up (or `log_level` when that is higher);
    `log_levels` then sets any logger by name. Records go to `stream` (stderr) as text lines or, with
    `log_format = "json"`, one JSON object per line; both carry the API request id. Calling it again replaces what
    the previous call set.
    """
    ours = _LEVELS[level or (cfg.gateway.log_level if cfg is not None else "INFO")]
    overrides = dict(cfg.gateway.log_levels) if cfg is not None else {}
    fmt = log_format or (cfg.gateway.log_format if cfg is not None else "text")
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _OurHandler)]:
        root.removeHandler(old)
        old.close()
    handler = _OurHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_REQUEST_ID_FILTER)
    root.addHandler(handler)
    root.setLevel(max(ours, logging.INFO))

    levels = {name: ours for name in OUR_LOGGERS}
    levels.update({name: _LEVELS[lvl] for name, lvl in QUIET_LIBRARIES.items()})
    levels.update({name: _LEVELS[lvl] for name, lvl in overrides.items()})
    for name in _applied - set(levels):
        logging.getLogger(name).setLevel(logging.NOTSET)
    for name, lvl in levels.items():
        logging.getLogger(name).setLevel(lvl)
    _applied.clear()
    _applied.update(levels)

    frames = logging.getLogger("pymodbus.logging")  # the logger of pymodbus's Log class, made here if not yet
    if _FRAME_FILTER not in frames.filters:
        frames.addFilter(_FRAME_FILTER)
