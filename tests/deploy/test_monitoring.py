"""Prometheus (scrape config, alert rules and their unit tests, by promtool) and Grafana (data sources, dashboards):
every metric they name is one the gateway exports, and every registry query runs on the migrated schema."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib

import pytest
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from crm_bridge.registry import migrate
from crm_bridge.registry.models import Contract, Customer
from gateway.store.influx import MEASUREMENT
from tests.deploy.conftest import DEPLOY, REPO, exported_series, metric_names, tool

PROM = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
CJK = re.compile(r"[\u4e00-\u9fff]")


def _promtool(*args: str) -> str:
    result = subprocess.run([tool("promtool", "prometheus"), *args], capture_output=True, text=True, check=False,
                            cwd=PROM)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_promtool_accepts_the_config_and_the_rules():
    assert "SUCCESS" in _promtool("check", "config", "prometheus.yml")
    assert "SUCCESS: 7 rules found" in _promtool("check", "rules", "alerts.yml")


def test_alert_rules_fire_when_they_should():
    # alerts_test.yml feeds series as the gateway exports them: device offline, drops, outbox growth, store down,
    # gateway down and a failed job, each with a moment before it fires and one after.
    assert "SUCCESS" in _promtool("test", "rules", "alerts_test.yml")


def _rules() -> list[dict]:
    return [r for g in yaml.safe_load((PROM / "alerts.yml").read_text())["groups"] for r in g["rules"]]


def test_alerts_cover_what_an_operator_must_hear_about_in_both_languages():
    rules = {r["alert"]: r for r in _rules()}
    assert {"GatewayDown", "GatewayOutboxGrowing", "GatewayReadingsDropped", "GatewayDeviceOffline"} <= set(rules)
    for name, rule in rules.items():
        notes = rule["annotations"]
        assert {"summary", "summary_zh", "description", "description_zh"} <= set(notes), name
        assert CJK.search(notes["summary_zh"]), name
        assert CJK.search(notes["description_zh"]), name
        assert not CJK.search(notes["summary"]), name


def test_rules_and_scrape_config_name_only_exported_metrics():
    exported = exported_series()
    for rule in _rules():
        names = metric_names(rule["expr"])
        assert names, rule["alert"]
        assert names <= exported, f"{rule['alert']}: {names - exported} is not exported by the gateway"
    scrape = yaml.safe_load((PROM / "prometheus.yml").read_text())
    (job,) = [j for j in scrape["scrape_configs"] if j["job_name"] == "energy-gateway"]
    assert job["metrics_path"] == "/metrics"
    targets = {t for sc in job["static_configs"] for t in sc["targets"]}
    assert targets == {"gateway-collector:8080", "gateway-api:8080"}  # the compose services and their API port


def _panels() -> list[tuple[str, dict]]:
    out = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        out += [(path.name, p) for p in board["panels"]]
    return out


def _targets(kind: str) -> list[tuple[str, str, dict]]:
    return [(name, p["title"], t) for name, p in _panels() for t in p["targets"] if t["datasource"]["type"] == kind]


def test_two_provisioned_dashboards_on_provisioned_data_sources():
    assert [p.name for p in DASHBOARDS] == ["customers.json", "gateway-health.json"]
    sources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "datasources.yml").read_text())
    by_uid = {d["uid"]: d for d in sources["datasources"]}
    assert set(by_uid) == {"prometheus", "influxdb", "registry"}
    assert by_uid["influxdb"]["secureJsonData"]["token"] == "$INFLUX_TOKEN"  # from the environment, not the file
    assert by_uid["registry"]["secureJsonData"]["password"] == "$POSTGRES_PASSWORD"
    uids = set()
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        uids.add(board["uid"])
        for p in board["panels"]:
            for t in p["targets"]:
                assert t["datasource"]["uid"] in by_uid, (path.name, p["title"])
                assert t["datasource"]["type"] == by_uid[t["datasource"]["uid"]]["type"]
            assert " / " in p["title"], f"{p['title']}: English / 中文"
            assert CJK.search(p["title"]), p["title"]
    assert len(uids) == len(DASHBOARDS)
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "dashboards.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_health_dashboard_shows_queue_drops_store_and_devices_from_exported_metrics():
    exported = exported_series()
    used: set[str] = set()
    for board, title, target in _targets("prometheus"):
        names = metric_names(target["expr"])
        assert names, (board, title)
        assert names <= exported, f"{board} / {title}: {names - exported} is not exported by the gateway"
        used |= names
    assert {"gateway_outbox_depth", "gateway_readings_dropped_total", "gateway_store_down_seconds",
            "gateway_store_write_errors_total", "gateway_device_online",
            "gateway_device_poll_latency_seconds"} <= used


def _profile_points() -> set[str]:
    points = set()
    for path in (REPO / "collectors" / "modbus" / "profiles").glob("*.toml"):
        points |= {p["name"] for p in tomllib.loads(path.read_text()).get("points", [])}
    return points


def test_customer_dashboard_reads_the_stored_schema():
    queries = [t["query"] for _, _, t in _targets("influxdb")]
    assert queries
    points = _profile_points()
    for q in queries:
        assert f'r._measurement == "{MEASUREMENT}"' in q
        assert 'r._field == "value"' in q
        assert 'r.customer == "${customer}"' in q
        for point in re.findall(r'r\.point == "([^"]+)"', q):
            assert point in points, f"{point} is not a point of any meter profile"


def _registry_sql() -> list[str]:
    board = json.loads((GRAFANA / "dashboards" / "customers.json").read_text())
    sql = [t["rawSql"] for _, _, t in _targets("grafana-postgresql-datasource")]
    sql += [v["query"] for v in board["templating"]["list"] if v.get("datasource", {}).get("uid") == "registry"]
    return sql


def _grafana_macros(sql: str, customer: str) -> str:
    """The query as Grafana sends it: its macros and the dashboard variable replaced."""
    return (sql.replace("$__timeFrom()", "'2026-01-01T00:00:00Z'::timestamptz")
               .replace("$__timeTo()", "'2026-01-02T00:00:00Z'::timestamptz")
               .replace("${customer}", customer))


@pytest.fixture
def registry_url(postgres_server) -> str:
    url = postgres_server.create_database("grafana_registry")
    migrate(url)
    engine = create_engine(url)
    with Session(engine) as s:
        for code, demand in (("acme", 2500.0), ("beta", 800.0)):
            c = Customer(code=code, name=code.title(), timezone="Asia/Shanghai")
            s.add(c)
            s.flush()
            s.add(Contract(customer_id=c.id, transformer_kva=4000.0, contract_demand_kw=demand,
                           basic_charge_mode="contract", pf_standard=0.9, tariff_id="guangdong-1-10kv"))
        s.commit()
    engine.dispose()
    return url


def test_registry_queries_run_on_the_migrated_postgresql_schema(registry_url):
    sql = _registry_sql()
    assert len(sql) == 3  # the contract line, the contract figure, the customer picker
    engine = create_engine(registry_url)
    try:
        with engine.connect() as conn:
            line, figure, picker = (conn.execute(text(_grafana_macros(q, "acme"))).all() for q in sql)
    finally:
        engine.dispose()
    assert [tuple(r[1:]) for r in line] == [(2500.0, 2625.0), (2500.0, 2625.0)]
    assert [r[0].isoformat() for r in line] == ["2026-01-01T00:00:00+00:00", "2026-01-02T00:00:00+00:00"]
    assert figure == [(2500.0,)]
    assert [r[0] for r in picker] == ["acme", "beta"]


def test_dashboards_are_provisioned_read_only_with_unique_panel_ids():
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        assert board["editable"] is False  # provisioned: changes belong in the repository
        assert [p["id"] for p in board["panels"]] == list(range(1, len(board["panels"]) + 1))
