"""The store writer in a process of its own: outbox -> time-series store, with a CPU share collection cannot take.

Collectors and the store writer in one process share one GIL: under a heavy collection load the drain thread gets
the interpreter too seldom and the store falls behind (58,200 readings/s collected, 6,200/s stored, issue 16). Run
as `python -m gateway.store_writer` (started by `StoreWriterProcess`, used by `Pipeline(..., store_writer=...)`),
the drain has a process, and a core, of its own. Both processes open the same SQLite outbox (WAL): the gateway
appends, the writer reads the oldest rows, writes them to the store and deletes them only after the store confirmed.

The protocol is three pipes. stdin: the config as one JSON line, then commands: `stop S` (finish the write in
flight within S seconds, leave the rest in the outbox, exit); end of stdin (the gateway died) stops the writer the
same way. stdout: one JSON object per line, the first `{"ready": true}` or `{"failed": reason}`, then the drain's
counters every 0.1 s. stderr: the log, as the gateway's. SIGTERM and SIGINT are ignored: the gateway owns the stop,
so the writer keeps delivering while the gateway flushes, and a terminal's Ctrl-C reaches only the gateway.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.config import GatewayConfig

log = logging.getLogger(__name__)

STATS_EVERY_S = 0.1
# How long the writer may take to open the store (it imports the store's libraries first).
START_TIMEOUT_S = 120.0


class StoreWriterError(Exception):
    """The store writer process could not start; the message says why (the store's own words when it said)."""


class StoreWriterProcess:
    """The gateway's handle on its store writer process: start, read its counters, stop it within a deadline."""

    def __init__(self, cfg: GatewayConfig) -> None:
        self.cfg = cfg
        self.restarts = 0
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._latest: dict[str, Any] = {}
        self._carried: dict[str, int] = {"stored": 0, "errors": 0, "rejected": 0}  # of writers that ended
        self._lock = threading.Lock()
        self._first = threading.Event()

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Start the writer and wait until it has opened the outbox and the store (StoreWriterError if it cannot)."""
        self._first.clear()
        self._proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "gateway.store_writer"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, args=(self._proc.stdout,), name="store-writer-stats",
                                        daemon=True)
        self._reader.start()
        assert self._proc.stdin is not None
        self._proc.stdin.write(self.cfg.model_dump_json() + "\n")
        self._proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while not self._first.wait(0.05):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self._proc.kill()
                self._proc.wait(10)
                raise StoreWriterError(f"the store writer process did not start (exit code {self._proc.returncode})")
        with self._lock:
            failed = self._latest.get("failed")
        if failed:
            self._proc.wait(10)
            raise StoreWriterError(str(failed))

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            with self._lock:
                self._latest.update(msg)
            self._first.set()

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def restart(self) -> None:
        """Start a new writer after one ended; its counters carry on from the last ones the old one said."""
        with self._lock:
            for key in self._carried:
                self._carried[key] += int(self._latest.get(key, 0))
            self._latest = {}
        self.restarts += 1
        self.start()

    def stats(self) -> dict[str, Any]:
        """stored, errors, rejected (since the gateway started), store_down_s, last_error."""
        with self._lock:
            out: dict[str, Any] = {key: base + int(self._latest.get(key, 0)) for key, base in self._carried.items()}
            out["store_down_s"] = float(self._latest.get("store_down_s", 0.0))
            out["last_error"] = str(self._latest.get("last_error", ""))
        return out

    def stop(self, deadline: float) -> None:
        """Ask the writer to end its write in flight by `deadline` (time.monotonic()), then wait; kill it after."""
        proc = self._proc
        if proc is None:
            return
        budget = max(0.0, deadline - time.monotonic())
        if proc.poll() is None and proc.stdin is not None:
            try:
                proc.stdin.write(f"stop {budget:.3f}\n")
                proc.stdin.close()
            except OSError:  # it ended meanwhile
                pass
        try:
            proc.wait(budget + 2.0)  # 2 s to close the store and the outbox
        except subprocess.TimeoutExpired:
            log.error("the store writer did not stop within %.1f s; killed (its write in flight stays in the "
                      "outbox)", budget + 2.0)
            proc.kill()
            proc.wait(10)
        if self._reader is not None:
            self._reader.join(5)


def _say(out: IO[str], msg: dict[str, Any]) -> None:
    out.write(json.dumps(msg) + "\n")
    out.flush()


def main() -> int:
    """The writer process: see the module docstring."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything a library prints goes to the log, not into the counters
    from gateway.config import GatewayConfig
    from gateway.logs import setup_logging
    from gateway.outbox import Outbox
    from gateway.pipeline import Pipeline
    from gateway.runtime import build_store

    cfg = GatewayConfig.model_validate_json(sys.stdin.readline())
    setup_logging(cfg)
    ob = cfg.outbox
    try:
        store = build_store(cfg)
        outbox = Outbox(cfg.data_path(ob.path), max_rows=ob.max_rows, max_age_s=ob.max_age_s, policy=ob.policy,
                        shared=True)
    except Exception as exc:  # noqa: BLE001 - said to the gateway, which refuses to start with it
        _say(out, {"failed": f"cannot open the store or the outbox: {type(exc).__name__}: {exc}"})
        return 1
    pipe = Pipeline(outbox, store, batch_size=ob.batch_size)
    pipe.start(writer=False)
    _say(out, {"ready": True})
    budget: list[float] = []
    stop = threading.Event()

    def commands() -> None:
        for line in sys.stdin:
            if line.startswith("stop"):
                budget.append(float(line.split()[1]))
                break
        stop.set()  # a stop command or the end of stdin (the gateway is gone)

    threading.Thread(target=commands, name="store-writer-commands", daemon=True).start()

    def counters() -> dict[str, Any]:
        st = pipe.stats()
        return {k: st[k] for k in ("stored", "errors", "rejected", "store_down_s", "last_error")}

    while not stop.wait(STATS_EVERY_S):
        try:
            _say(out, counters())
        except OSError:  # the gateway is gone (killed): stop as at the end of stdin
            break
    pipe.stop(flush=False, timeout=budget[0] if budget else 5.0)
    with contextlib.suppress(OSError):
        _say(out, counters())
    store.close()
    outbox.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
