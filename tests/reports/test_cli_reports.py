"""`energy-gateway report customer|brief|portfolio` on a real gateway's data directory."""

from __future__ import annotations

import io
import os

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

import tests.gateway.api.world as world_mod
from gateway.cli import app
from tests.reports.pdf import pdf_pages, pdf_text


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    os.environ.setdefault("GATEWAY_SECRET_KEY", "test-secret-key-0123456789abcdef")
    tmp = tmp_path_factory.mktemp("reportcli")
    return tmp / "gateway.toml", world_mod.build_world(tmp)


def _run(*args: str):
    return CliRunner().invoke(app, ["report", *args])


def test_help_names_the_three_reports():
    r = _run("--help")
    assert r.exit_code == 0
    for command in ("customer", "brief", "portfolio"):
        assert command in r.output


def test_every_customers_report_into_a_folder(world, tmp_path):
    cfg, w = world
    month = w.today["acme"][:7]
    r = _run("customer", "-c", str(cfg), "--all", "--month", month, "--out-dir", str(tmp_path), "--format", "xlsx")
    assert r.exit_code == 0, r.output
    assert "3 reports, 0 without data" in r.output
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [f"acme_{month}.xlsx", f"beta_{month}.xlsx", f"gamma_{month}.xlsx"]
    beta = load_workbook(io.BytesIO((tmp_path / f"beta_{month}.xlsx").read_bytes()))
    assert beta.worksheets[0].title == "Summary", "beta reads English"
    acme = load_workbook(io.BytesIO((tmp_path / f"acme_{month}.xlsx").read_bytes()))
    assert acme.worksheets[0].title == "概况", "acme reads Chinese"


def test_the_daily_brief_and_its_hidden_alias(world, tmp_path):
    cfg, w = world
    out = tmp_path / "brief.pdf"
    r = _run("brief", "-c", str(cfg), "--customer", "acme", "--day", w.today["acme"], "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "energy cost" in r.output
    assert len(pdf_pages(out.read_bytes())) == 1
    assert "每日用电简报" in pdf_text(out.read_bytes())
    r = _run("daily", "-c", str(cfg), "--customer", "acme", "--out", str(tmp_path / "b.html"), "--lang", "en")
    assert r.exit_code == 0, r.output
    assert "Daily energy brief" in (tmp_path / "b.html").read_text("utf-8")


def test_the_portfolio_of_a_manager(world, tmp_path):
    cfg, w = world
    out = tmp_path / "p.xlsx"
    r = _run("portfolio", "-c", str(cfg), "--manager", "am-a", "--month", w.today["acme"][:7], "--out", str(out),
             "--lang", "en")
    assert r.exit_code == 0, r.output
    assert "2 accounts" in r.output
    names = [row[0].value for row in load_workbook(io.BytesIO(out.read_bytes()))["Accounts"].iter_rows(min_row=2)]
    assert names == ["Acme Works", "Gamma Works"]


@pytest.mark.parametrize(("args", "message"), [
    (["customer", "--customer", "acme", "--out", "r.doc"], "use --format pdf, html or xlsx"),
    (["customer", "--all", "--out", "r.pdf"], "give --out-dir"),
    (["customer", "--customer", "acme", "--lang", "fr"], "use zh or en"),
    (["customer", "--customer", "nobody"], "unknown customer 'nobody'"),
    (["customer", "--customer", "acme", "--month", "2026-13"], "is not YYYY-MM"),
    (["brief", "--customer", "acme", "--day", "yesterday"], "is not a date"),
    (["portfolio", "--manager", "nobody"], "no account manager 'nobody'"),
])
def test_bad_input_is_one_line_and_exit_2(world, tmp_path, monkeypatch, args, message):
    cfg, _ = world
    monkeypatch.chdir(tmp_path)  # no file is written into the source tree
    r = _run(*args[:1], "-c", str(cfg), *args[1:])
    assert r.exit_code == 2, r.output
    assert message in r.stderr
    assert "Traceback" not in r.output
