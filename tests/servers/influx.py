"""Start a real, throwaway InfluxDB 1.x server (Debian's influxd) on free loopback ports for the tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

INFLUXD = os.environ.get("INFLUXD", "/usr/bin/influxd")

_CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{root}/meta"
  retention-autocreate = true
  logging-enabled = false

[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  wal-fsync-delay = "0s"
  query-log-enabled = false
  index-version = "inmem"

[monitor]
  store-enabled = false

[continuous_queries]
  enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{port}"
  auth-enabled = {auth}
  log-enabled = false
  pprof-enabled = false
  max-row-limit = 0

[logging]
  level = "warn"
  suppress-logo = true

[[graphite]]
  enabled = false

[[collectd]]
  enabled = false

[[opentsdb]]
  enabled = false

[[udp]]
  enabled = false
"""


class InfluxdError(RuntimeError):
    """influxd could not be found or did not come up."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class InfluxServer:
    """One influxd process; `stop()` and `start()` keep the data dir and the port (for outage tests)."""

    def __init__(self, root: Path, auth: bool = False, start_timeout_s: float = 60.0, binary: str = INFLUXD) -> None:
        if not (Path(binary).is_file() and os.access(binary, os.X_OK)):
            raise InfluxdError(
                f"influxd not found at {binary}: install Debian's 'influxdb' package (apt-get install influxdb) "
                "or point the INFLUXD environment variable at the binary"
            )
        self.binary = binary
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.auth = auth
        self.start_timeout_s = start_timeout_s
        self.config_path = root / "influxd.conf"
        self.log_path = root / "influxd.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_once = False
        self._pick_ports()

    def _pick_ports(self) -> None:
        self.port = free_port()
        self.rpc_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path.write_text(
            _CONFIG.format(root=self.root, port=self.port, rpc_port=self.rpc_port,
                           auth="true" if self.auth else "false")
        )

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start and wait for /ping. The first start moves to other free ports if another process took them."""
        for attempt in range(3):
            if self._start_once():
                self._started_once = True
                return
            if self._started_once or attempt == 2:
                break
            self._pick_ports()  # a port was taken between free_port() and influxd binding it: try others
        raise InfluxdError(f"influxd could not bind {self.url} (rpc port {self.rpc_port}):\n{self.log_tail()}")

    def _start_once(self) -> bool:
        """True when up; False when a port was in use; InfluxdError for anything else."""
        if self.running:
            return True
        log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [self.binary, "run", "-config", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                with self.log_path.open("rb") as f:
                    f.seek(log_start)
                    this_run = f.read().decode(errors="replace")
                self._proc = None
                if "address already in use" in this_run:
                    return False
                raise InfluxdError(f"influxd exited on start:\n{self.log_tail()}")
            try:
                r = httpx.get(f"{self.url}/ping", timeout=1.0)
                # the version header tells our influxd from whatever else might answer on a recycled port
                if r.status_code == 204 and "x-influxdb-version" in r.headers:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise InfluxdError(f"influxd did not answer /ping on {self.url} within {self.start_timeout_s} s:\n"
                           f"{self.log_tail()}")

    def stop(self, timeout_s: float = 20.0) -> None:
        """Graceful stop (SIGTERM); SIGKILL only if it hangs."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def kill(self) -> None:
        """Crash it (SIGKILL): no shutdown, no flush beyond what influxd already made durable."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def query(self, q: str, db: str | None = None, auth: tuple[str, str] | None = None) -> dict[str, object]:
        """Run InfluxQL directly against the server (test set-up and cross-checks)."""
        data = {"q": q, "epoch": "ns"}
        if db:
            data["db"] = db
        r = httpx.post(f"{self.url}/query", data=data, auth=auth, timeout=30)
        r.raise_for_status()
        body: dict[str, object] = r.json()
        return body

    def create_database(self, name: str) -> None:
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        self.query(f'CREATE DATABASE "{escaped}"')

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def run_influxd(tmp_path: Path, auth: bool = False) -> Iterator[InfluxServer]:
    """A started influxd with its data under `tmp_path/influxd`; stopped (not deleted) on exit."""
    server = InfluxServer(tmp_path / "influxd", auth=auth)
    server.start()
    try:
        yield server
    finally:
        server.stop()
