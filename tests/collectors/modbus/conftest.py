"""Fixtures of the Modbus tests: a pseudo-terminal pair standing in for a serial cable."""

from __future__ import annotations

import os
import select
import threading
import tty
from collections.abc import Iterator

import pytest


class PtyPair:
    """Two pseudo-terminals joined by a relay thread: a null-modem cable between two serial port names."""

    def __init__(self) -> None:
        self.fds: list[int] = []
        masters, names = [], []
        for _ in range(2):
            master, slave = os.openpty()
            tty.setraw(slave)
            self.fds += [master, slave]
            masters.append(master)
            names.append(os.ttyname(slave))
        self.server_port, self.client_port = names
        self._masters = masters
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._relay, daemon=True)
        self._thread.start()

    def _relay(self) -> None:
        a, b = self._masters
        while not self._stop.is_set():
            ready, _, _ = select.select([a, b], [], [], 0.05)
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    continue
                os.write(b if fd == a else a, data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for fd in self.fds:
            os.close(fd)


@pytest.fixture
def pty_pair() -> Iterator[PtyPair]:
    pair = PtyPair()
    yield pair
    pair.close()
