"""Helpers for tests that run `energy-gateway` as a real process: wait for what it says, never for a fixed time."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence


class Proc:
    """A process whose stdout and stderr are read line by line in threads, so a test can wait for a line."""

    def __init__(self, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.popen = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(s, lines), daemon=True)
                         for s, lines in ((self.popen.stdout, self.out), (self.popen.stderr, self.err))]
        for t in self._readers:
            t.start()

    @staticmethod
    def _read(stream, lines: list[str]) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            lines.append(line)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait_for(self, pred: Callable[[], bool], what: str, timeout: float = 120) -> None:
        """Poll `pred` until it holds; fail (with what the process said) if it exits or time runs out first."""
        deadline = time.monotonic() + timeout
        while not pred():
            if self.popen.poll() is not None:
                raise AssertionError(f"exited {self.popen.returncode} before {what}:\n{''.join(self.err)}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}:\n{''.join(self.err)}")
            time.sleep(0.005)

    def wait_for_line(self, text: str, stream: str = "err", timeout: float = 120) -> None:
        lines = self.err if stream == "err" else self.out
        self.wait_for(lambda: any(text in line for line in lines), f"{text!r} on std{stream}", timeout)

    def finish(self, sig: int | None = None, timeout: float = 120) -> tuple[int, str, str]:
        """Send `sig` (if any), wait for the exit; (return code, stdout, stderr)."""
        if sig is not None:
            self.popen.send_signal(sig)
        code = self.popen.wait(timeout)
        for t in self._readers:
            t.join(10)
        return code, "".join(self.out), "".join(self.err)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)


def handles_sigterm(pid: int) -> bool:
    """True once the process has its own SIGTERM handler (Linux: the SigCgt mask in /proc/PID/status)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    except FileNotFoundError:
        pass
    return False
