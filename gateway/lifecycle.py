"""SIGTERM and SIGINT of the long-running commands (`run`, `demo`), handled from the first line of main() to exit.

A process's life has three phases, and a stop signal means something different in each:

1. start-up (imports, config, opening the store, outbox and registry, seeding the demo): nothing is collected yet,
   so the process leaves at once with exit code 0 (`StopRequested`, a SystemExit, unwinds the start-up);
2. running (an asyncio.Event is attached): the event is set, and the gateway stops its collectors, flushes the
   outbox and exits cleanly as it always does;
3. stopping or exiting: further signals are ignored, so a second SIGTERM cannot cut a flush short.

SIGHUP reloads the config while running (gateway.reload). Before the reload is attached it is remembered, not
fatal (its default action would end the process), and the reload runs once attached; after detach it is ignored.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from contextlib import suppress
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
RELOAD_SIGNAL = signal.SIGHUP


class StopRequested(SystemExit):
    """A stop signal during start-up: unwind and exit with code 0 (SystemExit, so no traceback is printed)."""

    def __init__(self, signum: int) -> None:
        super().__init__(0)
        self.signum = signum

    def __str__(self) -> str:
        return f"{signal.Signals(self.signum).name} during start-up: stopped before collecting anything"


class StopSignals:
    """The process-wide handler for SIGTERM and SIGINT; see the module docstring for what a signal does when."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.installed = False
        self._target: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None
        self._stopping = False
        self._reload: tuple[asyncio.AbstractEventLoop, Callable[[], None]] | None = None
        self.reload_pending = False

    def install(self) -> None:
        """Handle the stop signals and SIGHUP from now on (main thread only). Idempotent."""
        if not self.installed:
            for sig in STOP_SIGNALS:
                signal.signal(sig, self._on_signal)
            signal.signal(RELOAD_SIGNAL, self._on_reload_signal)
            self.installed = True

    def on_reload(self, callback: Callable[[], None] | None) -> None:
        """From now on SIGHUP calls `callback` in the running loop; None: SIGHUP is ignored again.

        Only the main thread can own signals: elsewhere (a gateway run in a test's thread) this does nothing.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        if callback is None:
            self._reload = None
            return
        self.install()
        self._reload = (asyncio.get_running_loop(), callback)
        if self.reload_pending:
            self.reload_pending = False
            callback()

    def attach(self, stop: asyncio.Event) -> None:
        """From now on a stop signal sets `stop` (call from the running loop that waits on it)."""
        self.install()
        self._target = (asyncio.get_running_loop(), stop)
        if self.received is not None:
            stop.set()

    def detach(self) -> None:
        """The gateway has stopped: any later signal is ignored while the process finishes and exits."""
        self._target = None
        self._stopping = True

    def _on_reload_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._reload is None:
            self.reload_pending = not self._stopping
            return
        loop, callback = self._reload
        with suppress(RuntimeError):  # the loop has just closed
            loop.call_soon_threadsafe(callback)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        first = self.received is None
        self.received = signum
        if self._target is not None:
            loop, stop = self._target
            with suppress(RuntimeError):  # the loop has just closed: the process is on its way out already
                loop.call_soon_threadsafe(stop.set)
        elif first and not self._stopping:
            raise StopRequested(signum)  # nothing printed here: the signal may have interrupted a write to stderr


stop_signals = StopSignals()
