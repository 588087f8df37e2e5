"""Test-only InfluxDB v2 write front for an InfluxDB 1.x server: /api/v2/write -> /write, /query and /ping passed on.

It lets `influxdb-client` (API v2) write to the real Debian influxd 1.6.7, which has no /api/v2. The gzip body and
its Content-Encoding go through untouched; the token is checked here (influxd runs without auth) and stripped.
"""

from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

# influxdb-client precision -> InfluxDB 1.x /write precision
PRECISION = {"ns": "n", "us": "u", "ms": "ms", "s": "s"}
_PASS_HEADERS = ("content-type", "content-encoding", "accept")


class InfluxV2Proxy:
    def __init__(self, upstream_url: str, token: str = "test-token", org: str = "test-org") -> None:  # noqa: S107
        up = urlsplit(upstream_url)
        self.upstream = (up.hostname or "127.0.0.1", up.port or 8086)
        self.token = token
        self.org = org
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # (method, path, headers) seen, for assertions
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="influx-v2-proxy", daemon=True)

    def start(self) -> InfluxV2Proxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = bytearray()
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            return bytes(out)
                        out += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body and self.command != "HEAD":
                    self.wfile.write(body)

            def _v2_error(self, status: int, code: str, message: str) -> None:
                body = json.dumps({"code": code, "message": message}).encode()
                self._reply(status, body, {"Content-Type": "application/json; charset=utf-8"})

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") == f"Token {proxy.token}":
                    return True
                self._v2_error(401, "unauthorized", "unauthorized access")
                return False

            def _forward(self, method: str, path: str, body: bytes | None) -> None:
                headers = {k: v for k, v in self.headers.items() if k.lower() in _PASS_HEADERS}
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=30)
                try:
                    conn.request(method, path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                except OSError as exc:
                    self._v2_error(503, "unavailable", f"upstream influxd unreachable: {exc}")
                    return
                finally:
                    conn.close()
                out_headers = {k: v for k, v in resp.getheaders()
                               if k.lower() in ("content-type", "x-influxdb-version", "x-influxdb-build")}
                if path.startswith("/write") and resp.status >= 400:
                    # Speak v2's error shape, as influxdb-client expects: {"code", "message"}.
                    try:
                        message = json.loads(data).get("error", data.decode(errors="replace"))
                    except ValueError:
                        message = data.decode(errors="replace")
                    code = {400: "invalid", 404: "not found", 413: "request too large"}.get(resp.status, "internal")
                    self._v2_error(resp.status, code, message)
                    return
                self._reply(resp.status, data, out_headers)

            def _dispatch(self) -> None:
                url = urlsplit(self.path)
                proxy.requests.append((self.command, url.path, dict(self.headers.items())))
                body = self._body() if self.command in ("POST", "PUT") else None
                if url.path == "/ping" or url.path == "/health":
                    self._forward(self.command if self.command != "HEAD" else "GET", "/ping", None)
                    return
                if not self._authorized():
                    return
                if url.path == "/api/v2/write" and self.command == "POST":
                    qs = {k: v[-1] for k, v in parse_qs(url.query).items()}
                    bucket, org = qs.get("bucket"), qs.get("org") or qs.get("orgID")
                    if not bucket or not org:
                        self._v2_error(400, "invalid", "bucket and org are required")
                        return
                    if org != proxy.org:
                        self._v2_error(404, "not found", f'organization name "{org}" not found')
                        return
                    precision = PRECISION.get(qs.get("precision", "ns"))
                    if precision is None:
                        self._v2_error(400, "invalid", f"invalid precision {qs.get('precision')!r}")
                        return
                    self._forward("POST", "/write?" + urlencode({"db": bucket, "precision": precision}), body)
                    return
                if url.path == "/query" and self.command in ("GET", "POST"):
                    self._forward(self.command, self.path, body)
                    return
                self._v2_error(404, "not found", f"path {url.path} not found")

            def do_GET(self) -> None:  # noqa: N802 - stdlib naming
                self._dispatch()

            def do_POST(self) -> None:  # noqa: N802
                self._dispatch()

            def do_HEAD(self) -> None:  # noqa: N802
                self._dispatch()

        return Handler
