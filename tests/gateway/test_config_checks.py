"""Config checks beyond the golden files: secrets against an explicit environment, paths, ranges, normalisation."""

from __future__ import annotations

import math

import pytest

from collectors.base import host_key
from gateway.config import ConfigError, database_url_problem, load_config, parse_config

KEY = {"GATEWAY_SECRET_KEY": "k" * 32}


def _load(tmp_path, text: str, environ: dict[str, str] | None = None, **kw):
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return load_config(path, environ=KEY if environ is None else environ, **kw)


def _problems(tmp_path, text: str, environ: dict[str, str] | None = None, **kw) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text, environ, **kw)
    assert str(tmp_path / "gateway.toml") in str(info.value)
    return info.value.problems


INFLUX_V1 = ('[store]\ntype = "influxdb"\nurl = "http://db:8086"\napi = "v1"\ndatabase = "e"\nusername = "gw"\n'
             'password_env = "T_INFLUX_PW"\n')
INFLUX_V2 = ('[store]\ntype = "influxdb"\nurl = "http://db:8086"\napi = "v2"\norg = "o"\nbucket = "b"\n'
             'token_env = "T_INFLUX_TOKEN"\n')
OPCUA = ('[[devices]]\ntype = "opcua"\nname = "ua"\nurl = "opc.tcp://10.0.0.9:4840"\nusername = "reader"\n'
         'password_env = "T_UA_PW"\nnodes = [{ point = "p", node_id = "ns=2;s=P" }]\n')
DB_ENV = '[database]\nurl_env = "T_DB_URL"\n'
NOTIFY = ('[notify.channels.ops]\ntype = "dingtalk"\naccess_token_env = "T_DING_TOKEN"\n')


@pytest.mark.parametrize(("text", "where", "variable"), [
    (INFLUX_V1, "store.password_env", "T_INFLUX_PW"),
    (INFLUX_V2, "store.token_env", "T_INFLUX_TOKEN"),
    (OPCUA, "devices[0] ('ua').password_env", "T_UA_PW"),
    (DB_ENV, "database.url_env", "T_DB_URL"),
    (NOTIFY, "notify.channels.ops.access_token_env", "T_DING_TOKEN"),
])
def test_every_named_secret_must_be_in_the_given_environment(tmp_path, text, where, variable):
    assert _problems(tmp_path, text) == [(where, f"environment variable {variable} is not set")]
    assert _problems(tmp_path, text, KEY | {variable: ""}) == [(where, f"environment variable {variable} is not set")]
    value = "postgresql+psycopg://gw:pw@db/gw" if variable == "T_DB_URL" else "s3cret-value"
    _load(tmp_path, text, KEY | {variable: value})  # set: accepted


def test_a_command_checks_only_the_secrets_it_uses(tmp_path):
    text = INFLUX_V2 + DB_ENV + OPCUA
    everything = _problems(tmp_path, text, {})
    assert [w for w, _ in everything] == ["api.secret_key_env", "store.token_env", "database.url_env",
                                          "devices[0] ('ua').password_env"]
    assert [w for w, _ in _problems(tmp_path, text, {}, secrets={"store"})] == ["store.token_env"]
    assert [w for w, _ in _problems(tmp_path, text, {}, secrets={"devices"})] == ["devices[0] ('ua').password_env"]
    _load(tmp_path, text, {}, secrets=())


def test_development_still_allows_a_missing_api_secret_but_no_other(tmp_path):
    dev = '[gateway]\nenvironment = "development"\n'
    _load(tmp_path, dev, {})
    assert _problems(tmp_path, dev + INFLUX_V2, {}) == [("store.token_env",
                                                          "environment variable T_INFLUX_TOKEN is not set")]


def test_a_database_url_from_the_environment_is_checked_and_never_echoed(tmp_path):
    problems = _problems(tmp_path, DB_ENV, KEY | {"T_DB_URL": "mysql://gw:hunter2@db/gw"})
    assert problems == [("database.url_env", "T_DB_URL holds no usable database URL: unknown database 'mysql' "
                                             "(use sqlite or postgresql)")]
    assert "hunter2" not in str(problems)


@pytest.mark.parametrize(("url", "problem"), [
    ("sqlite:///{data_dir}/gateway.db", None),
    ("sqlite:////var/lib/gw/gateway.db", None),
    ("postgresql+psycopg://gw:pw@db:5432/gw", None),
    ("gateway.db", "not a database URL"),
    ("postgresql+psycopg3://db/gw", "unknown driver 'psycopg3'"),
    ("oracle://db/gw", "unknown database 'oracle'"),
    ("sqlite://gateway.db", "a SQLite URL is"),
    ("postgresql+psycopg://db:99999/gw", "the port is not a number"),
])
def test_database_urls(url, problem):
    found = database_url_problem(url)
    assert (found is None) if problem is None else (found is not None and problem in found), found


def test_paths_the_gateway_cannot_use(tmp_path):
    (tmp_path / "state").write_text("a file")
    assert _problems(tmp_path, '[gateway]\ndata_dir = "state/sub"\n') == [
        ("gateway.data_dir", "'state/sub' cannot be made: 'state' on its way is a file")]
    (tmp_path / "var" / "outbox.db").mkdir(parents=True)
    (tmp_path / "var" / "plans").write_text("a file")
    assert _problems(tmp_path, "") == [
        ("outbox.path", "'outbox.db' is a folder; it must name a database file"),
        ("forecast.plans_dir", "'plans' is a file, not a folder")]
    assert not (tmp_path / "var" / "timeseries.db").exists()  # checking creates nothing


def test_register_ranges_count_every_register_of_a_point():
    def device(*points: str) -> dict:
        return {"devices": [{"type": "modbus", "name": "d", "host": "10.0.0.1",
                             "points": [dict(p) for p in points]}]}

    ok = [{"name": "f64", "address": 65532, "type": "float64"}, {"name": "u32", "address": 65534, "type": "uint32"},
          {"name": "u16", "address": 65535}, {"name": "s", "address": 65526, "type": "string", "length": 10},
          {"name": "coil", "address": 65535, "kind": "coil", "type": "bit"}]
    parse_config(device(*ok))
    bad = [{"name": "f64", "address": 65533, "type": "float64"}, {"name": "u32", "address": 65535, "type": "uint32"},
           {"name": "s", "address": 65527, "type": "string", "length": 10}]
    with pytest.raises(ConfigError) as info:
        parse_config(device(*bad))
    assert [w for w, _ in info.value.problems] == [f"devices[0] ('d').points[{i}] ('{p['name']}').address"
                                                   for i, p in enumerate(bad)]


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "localhost.", "127.0.0.1", "127.1.2.3", "::1", "[::1]",
                                  "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "plant.localhost"])
def test_loopback_spellings_are_one_host(host):
    assert host_key(host) == "loopback"


def test_other_hosts_are_compared_as_written_and_never_resolved():
    assert host_key("10.1.2.3") == "10.1.2.3"
    assert host_key("Meter-GW.plant.local") == "meter-gw.plant.local"
    assert host_key("fd00::0001") == host_key("fd00::1")
    cfg = {"devices": [{"type": "modbus", "name": n, "host": h, "unit": 1, "profile": "generic"}
                       for n, h in (("a", "localhost"), ("b", "10.1.2.3"), ("c", "127.0.0.1"))]}
    with pytest.raises(ConfigError) as info:
        parse_config(cfg)
    assert info.value.problems == [("devices[2]", "same address modbus tcp 127.0.0.1:502 unit 1 as devices[0] "
                                                  "('localhost' is this machine too)")]


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_non_finite_numbers_are_refused_wherever_they_are(value):
    with pytest.raises(ConfigError) as info:
        parse_config({"outbox": {"max_age_s": value}, "api": {"session_idle_timeout_s": value}})
    assert info.value.problems == [("outbox.max_age_s", f"must be a finite number, not {value}"),
                                   ("api.session_idle_timeout_s", f"must be a finite number, not {value}")]


def test_api_trusted_proxies_and_session_timeouts():
    api = parse_config({"api": {"trusted_proxies": ["10.1.2.3", "10.9.8.7/16", "fd00::1/8"]}}).api
    assert api.trusted_proxies == ["10.1.2.3/32", "10.9.0.0/16", "fd00::/8"]
    assert (api.session_idle_timeout_s, api.session_absolute_timeout_s) == (1800.0, 43200.0)
    assert parse_config({}).api.trusted_proxies == []
    for bad in ({"session_idle_timeout_s": 0}, {"session_absolute_timeout_s": -1},
                {"session_idle_timeout_s": 100, "session_absolute_timeout_s": 99}):
        with pytest.raises(ConfigError):
            parse_config({"api": bad})
    parse_config({"api": {"session_idle_timeout_s": 100, "session_absolute_timeout_s": 100}})


def test_log_levels_name_loggers_and_levels():
    gw = parse_config({"gateway": {"log_levels": {"asyncua": "INFO", "uvicorn.access": "DEBUG"}}}).gateway
    assert gw.log_levels == {"asyncua": "INFO", "uvicorn.access": "DEBUG"}
    for bad in ({"asyncua": "info"}, {"asyncua": "TRACE"}, {"uvicorn access": "INFO"}, {"": "INFO"}):
        with pytest.raises(ConfigError) as info:
            parse_config({"gateway": {"log_levels": bad}})
        assert info.value.problems[0][0].startswith("gateway.log_levels")
