"""Logging of the long-running commands: one stderr handler, our loggers at `log_level`, chatty libraries quieter."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from gateway.config import GatewayConfig

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# `[gateway] log_level` sets these: the gateway's own packages.
OUR_LOGGERS = ("gateway", "collectors", "forecasting", "crm_bridge", "reports")
# At their default INFO these write per message: asyncua every OPC UA Publish response in full, pymodbus every
# retry, uvicorn every request, APScheduler every job run, alembic its plugins at each start. `[gateway]
# log_levels` turns any of them back up.
QUIET_LIBRARIES: Mapping[str, str] = {"asyncua": "WARNING", "pymodbus": "WARNING", "uvicorn": "WARNING",
                                      "apscheduler": "WARNING", "alembic": "WARNING"}
_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING, "ERROR": logging.ERROR,
           "CRITICAL": logging.CRITICAL}
_applied: set[str] = set()  # loggers whose level the last call set, so that a new call starts from clean


class _OurHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The one handler setup_logging installs (and replaces when called again)."""


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


def setup_logging(cfg: GatewayConfig | None = None, *, level: str | None = None, stream: TextIO | None = None) -> None:
    """Configure logging for `run`, `demo` and `collect` from `[gateway] log_level` and `log_levels`.

    Our loggers get `log_level` (or `level`); asyncua, pymodbus, uvicorn and apscheduler get WARNING; every other
    library logs INFO and up (or `log_level` when that is higher); `log_levels` then sets any logger by name.
    Records go to `stream` (stderr). Calling it again replaces what the previous call set.
    """
    ours = _LEVELS[level or (cfg.gateway.log_level if cfg is not None else "INFO")]
    overrides = dict(cfg.gateway.log_levels) if cfg is not None else {}
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _OurHandler)]:
        root.removeHandler(old)
        old.close()
    handler = _OurHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
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
