"""`energy-gateway export`: Green Button, CSV and XLSX files from the embedded store through the query layer."""

from __future__ import annotations

import pandas as pd
from greenbutton_objects.parse import parse_feed
from typer.testing import CliRunner

from collectors.sim.load import LoadModel
from gateway.cli import app
from gateway.demo.backfill import history_readings
from gateway.store.sqlite import SqliteStore
from tests.reports.espi import validate

CFG = """
[gateway]
data_dir = "state"
environment = "development"

[[customers]]
id = "acme"
name = "Acme Steel"
timezone = "Asia/Shanghai"

[[sites]]
id = "s1"
customer = "acme"

[[meters]]
id = "m1"
site = "s1"
device = "d1"

[[devices]]
type = "modbus"
name = "d1"
host = "127.0.0.1"
profile = "generic"
"""


def _setup(tmp_path):
    (tmp_path / "gateway.toml").write_text(CFG)
    store = SqliteStore(tmp_path / "state" / "timeseries.db")
    start = pd.Timestamp("2026-11-01", tz="Asia/Shanghai")
    store.write(history_readings(LoadModel(), "d1", ("acme", "s1", "m1"), int(start.value),
                                 int((start + pd.Timedelta(days=3)).value), 0))
    store.close()
    return tmp_path / "gateway.toml"


def test_export_greenbutton_and_tables(tmp_path):
    cfg = _setup(tmp_path)
    runner = CliRunner()
    out = tmp_path / "gb.xml"
    r = runner.invoke(app, ["export", "greenbutton", "-c", str(cfg), "--customer", "acme", "--from", "2026-11-01",
                            "--to", "2026-11-03", "--out", str(out), "--currency", "USD"])  # the parser lacks CNY
    assert r.exit_code == 0, r.output
    # the last interval needs the next day's register
    assert "287 measured and 0 estimated intervals; 1 missing and 0 pending left out" in r.stdout
    validate(out.read_bytes())
    (up,) = parse_feed(str(out))
    (mr,) = up.meterReadings
    assert len(list(mr.intervalReadings)) == 287
    r = runner.invoke(app, ["export", "table", "-c", str(cfg), "--customer", "acme", "--from", "2026-11-01",
                            "--to", "2026-11-01", "--out", str(tmp_path / "d.csv")])
    assert r.exit_code == 0, r.output
    lines = (tmp_path / "d.csv").read_text().splitlines()
    assert len(lines) == 97
    assert lines[1].startswith("2026-11-01T00:00:00+08:00,")


def test_export_bad_input_is_a_clear_error(tmp_path):
    cfg = _setup(tmp_path)
    runner = CliRunner()
    r = runner.invoke(app, ["export", "greenbutton", "-c", str(cfg), "--customer", "nobody", "--out",
                            str(tmp_path / "x.xml")])
    assert r.exit_code == 2
    assert "unknown customer 'nobody'; known: acme" in r.stderr
    r = runner.invoke(app, ["export", "table", "-c", str(cfg), "--customer", "acme", "--from", "01/11/2026",
                            "--out", str(tmp_path / "x.csv")])
    assert r.exit_code == 2
    assert "--from '01/11/2026' is not a date" in r.stderr
    r = runner.invoke(app, ["export", "table", "-c", str(cfg), "--customer", "acme", "--out", str(tmp_path / "x.pdf")])
    assert r.exit_code == 2
    assert "use a .csv or .xlsx" in r.stderr


def test_report_customer_html_and_xlsx(tmp_path):
    cfg = _setup(tmp_path)
    runner = CliRunner()
    r = runner.invoke(app, ["report", "customer", "-c", str(cfg), "--customer", "acme", "--month", "2026-11",
                            "--out", str(tmp_path / "r.html"), "--lang", "en"])
    assert r.exit_code == 0, r.output
    assert "2026-11" in r.stdout
    html = (tmp_path / "r.html").read_text()
    assert "Acme Steel" in html
    assert "of 2,880 15-minute intervals have no data" in html  # 3 of 30 days were measured: the rest is missing
    r = runner.invoke(app, ["report", "customer", "-c", str(cfg), "--customer", "acme", "--month", "2026-13",
                            "--out", str(tmp_path / "r.html")])
    assert r.exit_code == 2
    assert "is not YYYY-MM" in r.stderr
