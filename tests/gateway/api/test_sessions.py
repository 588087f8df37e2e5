"""Login limits under concurrency, proxies, server-side portal sessions, password change and reset."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network

import httpx
import pytest
from sqlalchemy import create_engine, delete, select
from sqlalchemy.orm import sessionmaker
from typer.testing import CliRunner

from crm_bridge.registry import make_engine
from gateway.auth import AuditEvent, AuthError, AuthService, LoginRateLimited
from gateway.auth.models import LoginCounter
from gateway.auth.sessions import SessionEnded, SessionStore
from gateway.cli import app as cli
from tests.gateway.api.world import PASSWORD, RunningApi, token_for


class CountingHasher:
    """The real argon2 hasher, counting how many password checks it is asked for."""

    def __init__(self, inner):
        self.inner, self.checks, self._lock = inner, 0, threading.Lock()

    def verify(self, hashed, password):
        with self._lock:
            self.checks += 1
        return self.inner.verify(hashed, password)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.mark.parametrize("processes", [1, 2])
def test_forty_concurrent_wrong_logins_get_at_most_five_password_checks(db_url, processes):
    # One engine each, made as the gateway makes it: separate API processes.
    engines = [make_engine(db_url) for _ in range(processes)]
    AuthService.create_tables(engines[0])
    services = [AuthService(sessionmaker(e, expire_on_commit=False), f"key-of-process-{i}-0123456789")
                for i, e in enumerate(engines)]
    services[0].add_user("target", PASSWORD, "engineer")
    hashers = []
    for svc in services:
        svc.hasher = CountingHasher(svc.hasher)
        hashers.append(svc.hasher)
    start = threading.Barrier(40)

    def attempt(i: int) -> str:
        svc = services[i % processes]
        start.wait()
        try:
            svc.authenticate("target", f"wrong-guess-{i:04d}", client=f"198.51.100.{i}")
        except LoginRateLimited:
            return "limited"
        except AuthError:
            return "failed"
        return "ok"

    with ThreadPoolExecutor(40) as pool:
        outcomes = list(pool.map(attempt, range(40)))
    checks = sum(h.checks for h in hashers)
    assert outcomes.count("failed") == checks
    assert checks <= 5, f"{checks} password checks for one user under 40 concurrent guesses"
    assert outcomes.count("limited") == 40 - checks
    with pytest.raises(LoginRateLimited):
        services[-1].authenticate("target", PASSWORD, client="198.51.100.200")
    assert sum(h.checks for h in hashers) == checks, "the right password is refused without hashing"
    for e in engines:
        e.dispose()


def test_thirty_colleagues_logging_in_at_once_to_one_account_are_not_refused(db_url):
    """Checks in flight fill the window only for a moment: a correct login waits for them instead of a 429.

    Two API processes (one engine each) sharing the account: the harder case, which also covers one process's window.
    """
    processes = 2
    engines = [make_engine(db_url) for _ in range(processes)]
    AuthService.create_tables(engines[0])
    services = [AuthService(sessionmaker(e, expire_on_commit=False), f"key-of-process-{i}-0123456789")
                for i, e in enumerate(engines)]
    services[0].add_user("shared-login", PASSWORD, "engineer")
    start = threading.Barrier(30)

    def attempt(i: int) -> str:
        start.wait()
        try:
            return services[i % processes].authenticate("shared-login", PASSWORD, client=f"198.51.100.{i}").username
        except LoginRateLimited:
            return "limited"

    with ThreadPoolExecutor(30) as pool:
        outcomes = list(pool.map(attempt, range(30)))
    assert outcomes == ["shared-login"] * 30
    for e in engines:
        e.dispose()


def test_a_good_login_restarts_the_users_window_and_returns_the_clients_attempt(world):
    auth: AuthService = world.gw.auth
    auth.add_user("forgetful", PASSWORD, "engineer")
    for _ in range(4):
        with pytest.raises(AuthError):
            auth.authenticate("forgetful", "not-it-not-it", client="192.0.2.10")
    auth.authenticate("forgetful", PASSWORD, client="192.0.2.10")
    with world.gw.db() as s:
        assert s.get(LoginCounter, "user:forgetful").failed == 0, "a good login forgives the user's failures"
        assert s.get(LoginCounter, "client:192.0.2.10").taken == 4
    for _ in range(5):
        with pytest.raises(AuthError):
            auth.authenticate("forgetful", "not-it-not-it", client="192.0.2.10")
    with pytest.raises(LoginRateLimited):
        auth.authenticate("forgetful", PASSWORD, client="192.0.2.10")


def test_a_client_over_its_limit_does_not_eat_the_users_attempts(world):
    auth = AuthService(world.gw.db, "another-key-0123456789abcdef", per_client=3)
    for i in range(3):
        with pytest.raises(AuthError):
            auth.authenticate(f"nobody-{i}", "guess-guess-guess", client="192.0.2.77")
    with pytest.raises(LoginRateLimited):
        auth.authenticate("cust-gamma", PASSWORD, client="192.0.2.77")
    with world.gw.db() as s:
        assert s.get(LoginCounter, "user:cust-gamma") is None
    assert auth.authenticate("cust-gamma", PASSWORD, client="192.0.2.78").username == "cust-gamma"


def _audited_clients(world, username: str) -> list[str]:
    with world.gw.db() as s:
        return list(s.scalars(select(AuditEvent.client).where(AuditEvent.target == username)
                              .order_by(AuditEvent.id)))


def _clear_counter(world, key: str) -> None:
    with world.gw.db() as s:
        s.execute(delete(LoginCounter).where(LoginCounter.key == key))
        s.commit()


def test_a_forged_forwarded_for_header_is_not_trusted_by_default(world):
    _clear_counter(world, "client:127.0.0.1")
    with RunningApi(world.gw) as api:  # uvicorn with proxy headers off, as the gateway runs it
        app = api.server.config.app
        app.state.auth = AuthService(world.gw.db, "forged-header-key-0123456789", per_client=3)
        try:
            with httpx.Client(base_url=api.url) as c:
                codes = [c.post("/api/v1/auth/token", headers={"X-Forwarded-For": f"203.0.113.{i}"},
                                data={"username": f"spray-{i}", "password": "guess-guess-guess"}).status_code
                         for i in range(6)]
            assert codes == [401, 401, 401, 429, 429, 429], "a new forged address each time buys no new attempts"
            assert _audited_clients(world, "spray-0") == ["127.0.0.1"]
        finally:
            _clear_counter(world, "client:127.0.0.1")


def test_a_trusted_proxy_passes_on_the_nearest_untrusted_address(world):
    with RunningApi(world.gw) as api:
        app = api.server.config.app
        app.state.trusted_proxies = (ip_network("127.0.0.0/8"), ip_network("10.9.0.0/16"))
        with httpx.Client(base_url=api.url) as c:
            # the client may put anything on the left; the proxies append what they saw
            r = c.post("/api/v1/auth/token", headers={"X-Forwarded-For": "192.0.2.1, 203.0.113.50, 10.9.0.3"},
                       data={"username": "behind-proxy", "password": "guess-guess-guess"})
            assert r.status_code == 401
            r = c.post("/api/v1/auth/token", headers={"X-Forwarded-For": "not-an-address"},
                       data={"username": "behind-proxy", "password": "guess-guess-guess"})
            assert r.status_code == 401
    assert _audited_clients(world, "behind-proxy") == ["203.0.113.50", "127.0.0.1"]


def _portal_login(c, username: str, password: str = PASSWORD) -> str:
    token = c.get("/login").text.split('name="csrf_token" value="')[1].split('"')[0]
    r = c.post("/login", data={"username": username, "password": password, "csrf_token": token},
               follow_redirects=False)
    assert r.status_code == 303, r.text
    return c.cookies["eg_session"]


def _csrf(c, path: str) -> str:
    return c.get(path).text.split('name="csrf_token" value="')[1].split('"')[0]


def _replay(client, cookie: str, path: str = "/portal/c/beta/requests") -> int:
    client.cookies.clear()
    client.cookies.set("eg_session", cookie)
    r = client.get(path, follow_redirects=False)
    client.cookies.clear()
    return r.status_code


def test_a_session_cookie_copied_before_logout_is_worthless_after(client, world):
    cookie = _portal_login(client, "cust-beta")
    assert _replay(client, cookie) == 200
    client.cookies.set("eg_session", cookie)
    csrf = _csrf(client, "/portal/c/beta/requests")
    assert client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    assert _replay(client, cookie) == 303, "the copy leads to the login page"
    client.cookies.set("eg_session", cookie)
    r = client.post("/portal/c/beta/requests", data={"kind": "request", "category": "other", "title": "replayed",
                                                     "csrf_token": csrf}, follow_redirects=False)
    client.cookies.clear()
    assert r.status_code in (303, 401, 403)
    with world.gw.db() as s:
        from crm_bridge.registry.models import Ticket

        assert s.scalar(select(Ticket).where(Ticket.title == "replayed")) is None


def test_password_change_ends_every_session_and_token(client, world):
    auth: AuthService = world.gw.auth
    auth.add_user("changer", PASSWORD, "engineer")
    cookie = _portal_login(client, "changer")
    client.cookies.clear()
    headers = token_for_user(client, "changer", PASSWORD)
    assert client.get("/api/v1/devices", headers=headers).status_code == 200
    r = client.post("/api/v1/auth/password", headers=headers,
                    json={"current_password": "not-the-current", "new_password": "a-new-password-42"})
    assert r.status_code == 422
    assert r.json()["error"]["detail"] == {"field": "current_password"}
    r = client.post("/api/v1/auth/password", headers=headers,
                    json={"current_password": PASSWORD, "new_password": "short"})
    assert r.status_code == 422
    r = client.post("/api/v1/auth/password", headers=headers,
                    json={"current_password": PASSWORD, "new_password": PASSWORD})
    assert r.status_code == 422
    assert "differ" in r.json()["error"]["message"]
    r = client.post("/api/v1/auth/password", headers=headers,
                    json={"current_password": PASSWORD, "new_password": "a-new-password-42"})
    assert r.status_code == 200, r.text
    assert client.get("/api/v1/devices", headers=headers).status_code == 401
    assert _replay(client, cookie, "/portal/accounts") == 303
    assert client.post("/api/v1/auth/token", data={"username": "changer", "password": PASSWORD}).status_code == 401
    token_for_user(client, "changer", "a-new-password-42")
    actions = [a["action"] for a in client.get("/api/v1/audit?limit=50", headers=token_for(client, "admin"))
               .json()["items"] if a["target"] == "changer"]
    assert "user.password" in actions
    assert "password.check.failed" in actions


def token_for_user(client, username: str, password: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_disabling_and_an_admin_reset_end_sessions_at_once(client, world):
    auth: AuthService = world.gw.auth
    for name in ("to-disable", "to-reset"):
        auth.add_user(name, PASSWORD, "engineer")
    gone = _portal_login(client, "to-disable")
    client.cookies.clear()
    reset = _portal_login(client, "to-reset")
    client.cookies.clear()
    assert _replay(client, gone, "/portal/accounts") == 200
    admin = token_for(client, "admin")
    assert client.post("/api/v1/users/to-disable/disable", headers=admin).status_code == 200
    assert _replay(client, gone, "/portal/accounts") == 303
    r = client.post("/api/v1/users/to-reset/reset-password", headers=admin, json={"password": "handed-over-123"})
    assert r.status_code == 200, r.text
    assert _replay(client, reset, "/portal/accounts") == 303
    token_for_user(client, "to-reset", "handed-over-123")
    r = client.post("/api/v1/users/nobody-here/reset-password", headers=admin, json={"password": "handed-over-123"})
    assert r.status_code == 404
    r = client.post("/api/v1/users/to-reset/reset-password", headers=token_for(client, "eng"),
                    json={"password": "handed-over-123"})
    assert r.status_code == 403


def test_sessions_end_after_the_idle_and_the_absolute_timeout(world):
    store = SessionStore(world.gw.db, idle_s=600, absolute_s=3600)
    t0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    idle_id, _ = store.issue(1, t0)
    assert store.resolve(idle_id, t0 + timedelta(seconds=599)).user_id == 1
    with pytest.raises(SessionEnded, match="expired"):
        store.resolve(idle_id, t0 + timedelta(seconds=599 + 601))
    busy_id, _ = store.issue(1, t0)
    t = t0
    while t < t0 + timedelta(seconds=3500):  # kept busy: never idle, but the absolute limit still holds
        t += timedelta(seconds=300)
        store.resolve(busy_id, t)
    with pytest.raises(SessionEnded):
        store.resolve(busy_id, t0 + timedelta(seconds=3601))
    with pytest.raises(SessionEnded, match="invalid"):
        store.resolve("made-up-session-id", t0)


def test_users_cli_reset_password(tmp_path, monkeypatch):
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(f'[gateway]\ndata_dir = "{tmp_path}"\nenvironment = "development"\n[[customers]]\nid = "acme"\n')
    monkeypatch.setenv("PW1", "first-password-1")
    monkeypatch.setenv("PW2", "second-password-2")
    runner = CliRunner()
    assert runner.invoke(cli, ["users", "add", "--config", str(cfg), "ops", "--role", "engineer",
                               "--password-env", "PW1"]).exit_code == 0
    r = runner.invoke(cli, ["users", "reset-password", "--config", str(cfg), "ops", "--password-env", "PW2"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == {"username": "ops", "reset": True}
    r = runner.invoke(cli, ["users", "reset-password", "--config", str(cfg), "ops"])
    assert r.exit_code == 0
    generated = json.loads(r.output)["password"]
    r = runner.invoke(cli, ["users", "reset-password", "--config", str(cfg), "ghost", "--password-env", "PW2"])
    assert r.exit_code == 2
    assert "no user 'ghost'" in r.output
    engine = create_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    auth = AuthService(sessionmaker(engine, expire_on_commit=False), "k" * 32)
    assert auth.authenticate("ops", generated).username == "ops"
    with pytest.raises(AuthError):
        auth.authenticate("ops", "second-password-2")
    with sessionmaker(engine)() as s:
        assert s.scalar(select(AuditEvent.actor).where(AuditEvent.action == "user.reset_password")) == "cli"
    engine.dispose()


def test_the_portal_password_page_changes_it_and_keeps_only_this_browser_logged_in(client, world):
    auth: AuthService = world.gw.auth
    auth.add_user("portal-changer", PASSWORD, "engineer", language="zh")
    other = _portal_login(client, "portal-changer")
    client.cookies.clear()
    mine = _portal_login(client, "portal-changer")
    page = client.get("/portal/password")
    assert page.status_code == 200
    assert "修改密码" in page.text
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    form = {"csrf_token": csrf, "current_password": PASSWORD, "new_password": "new-portal-pass-1",
            "repeat_password": "new-portal-pass-2"}
    r = client.post("/portal/password", data=form)
    assert r.status_code == 422
    assert "两次输入的新密码不一致" in r.text
    r = client.post("/portal/password", data={**form, "current_password": "wrong-wrong-wrong",
                                              "repeat_password": "new-portal-pass-1"})
    assert r.status_code == 422
    assert "当前密码不正确" in r.text
    r = client.post("/portal/password?lang=en", data={**form, "repeat_password": "new-portal-pass-1"})
    assert r.status_code == 200, r.text
    assert "Your password has been changed" in r.text
    fresh = client.cookies["eg_session"]
    assert fresh != mine
    client.cookies.clear()
    assert _replay(client, other, "/portal/accounts") == 303
    assert _replay(client, mine, "/portal/accounts") == 303
    assert _replay(client, fresh, "/portal/accounts") == 200
    token_for_user(client, "portal-changer", "new-portal-pass-1")


def test_the_login_page_says_when_to_try_again_in_the_readers_language(client, world):
    auth: AuthService = world.gw.auth
    auth.add_user("page-victim", PASSWORD, "engineer")
    for _ in range(5):
        assert client.post("/api/v1/auth/token", data={"username": "page-victim", "password": "guess-guess-1"}
                           ).status_code == 401
    client.cookies.clear()
    token = client.get("/login?lang=zh").text.split('name="csrf_token" value="')[1].split('"')[0]
    r = client.post("/login", data={"username": "page-victim", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) > 0
    assert f"尝试次数过多，请在 {r.headers['Retry-After']} 秒后重试" in r.text
    client.cookies.clear()
