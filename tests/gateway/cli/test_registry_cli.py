"""`registry import|export` on a real SQLite registry: onboarding, dry runs, every error named, idempotence, the
round trip; and `users add` creating the account manager it names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select
from typer.testing import CliRunner

from crm_bridge.registry.models import AccountManager, Contract, Customer, Equipment, Meter, MeterAssignment
from gateway.cli import app as cli
from gateway.cli.registry import app as registry_cli
from gateway.usecases.registry_import import COLUMNS

runner = CliRunner()


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(f'[gateway]\ndata_dir = "{tmp_path / "state"}"\nenvironment = "development"\n'
                    '[[customers]]\nid = "plant"\nname = "Plant"\n')
    return path


def _db(cfg: Path) -> Any:
    import os

    from gateway.config import load_config
    from gateway.runtime import open_registry

    return open_registry(load_config(cfg, secrets={"database"}), os.environ)


def _book(path: Path, sheets: dict[str, list[list[Any]]]) -> Path:
    book = Workbook()
    book.remove(book.active)
    for kind, rows in sheets.items():
        sheet = book.create_sheet(kind)
        sheet.append(list(COLUMNS[kind]))
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


GOOD = {
    "managers": [["am-zhao", "赵敏 Zhao Min", "zhao@example.com"]],
    "customers": [["gd-paper", "广东纸业 GD Paper", "Asia/Shanghai", "paper", 2.4e8, "am-zhao"],
                  ["gd-glass", "GD Glass", "Asia/Shanghai", None, None, "am-zhao"]],
    "sites": [["gd-paper-1", "gd-paper", "Mill 1", "Dongguan"], ["gd-glass-1", "gd-glass", None, None]],
    "meters": [["gd-paper-m1", "gd-paper-1", "incomer", "2026-01-01"],
               ["gd-glass-m1", "gd-glass-1", None, "2026-01-01"]],
    "contracts": [["gd-paper", "2025-01-01", 4000, 0, 2500, "contract", 0.9, None, "guangdong-1-10kv"],
                  ["gd-paper", "2026-07-01", 5000, 0, 3000, "demand", 0.9, 1.2e6, "guangdong-1-10kv"],
                  ["gd-glass", "2026-01-01", 2000, 0, 1000, "capacity", 0.85, None, "guangdong-1-10kv"]],
    "equipment": [["gd-paper", "T1", "transformer", "gd-paper-1", 2500, "kVA"],
                  ["gd-paper", "C1", "capacitor_bank", None, 600, "kvar"]],
    "contacts": [["gd-paper", "李工 Li", "li@gdpaper.example", "+86 769 1234", "chief electrician"]],
}


def _import(cfg: Path, *files: Path, dry_run: bool = False) -> tuple[int, list[str], dict[str, Any]]:
    args = ["import", "--config", str(cfg), *map(str, files), *(["--dry-run"] if dry_run else [])]
    r = runner.invoke(registry_cli, args)
    lines = r.output.strip().splitlines()
    return r.exit_code, lines[:-1], json.loads(lines[-1])


def test_a_workbook_onboards_accounts_and_a_second_import_changes_nothing(cfg: Path, tmp_path: Path) -> None:
    book = _book(tmp_path / "accounts.xlsx", GOOD)
    code, errors, dry = _import(cfg, book, dry_run=True)
    assert (code, errors, dry["applied"]) == (0, [], False)
    assert dry["created"]["customers"] == 2
    with _db(cfg)() as s:
        assert s.scalar(select(func.count(Customer.id))) == 1  # the dry run changed nothing: only the config's

    code, errors, first = _import(cfg, book)
    assert (code, errors, first["applied"]) == (0, [], True)
    assert first["created"] == {"managers": 1, "customers": 2, "sites": 2, "meters": 2, "contracts": 3,
                                "equipment": 2, "contacts": 1}
    with _db(cfg)() as s:
        paper = s.scalar(select(Customer).where(Customer.code == "gd-paper"))
        versions = [(k.valid_from.isoformat(), k.valid_to and k.valid_to.isoformat(), k.basic_charge_mode)
                    for k in paper.contracts]
        assert versions == [("2025-01-01", "2026-07-01", "contract"), ("2026-07-01", None, "demand")]
        assert s.scalar(select(AccountManager.name).where(AccountManager.code == "am-zhao")) == "赵敏 Zhao Min"
        assert {e.name for e in s.scalars(select(Equipment))} == {"T1", "C1"}

    code, errors, second = _import(cfg, book)
    assert (code, errors) == (0, [])
    assert sum(second["created"].values()) == sum(second["updated"].values()) == 0
    assert sum(second["unchanged"].values()) == 13

    # A change in the sheet is an update of that row only.
    changed = {**GOOD, "sites": [["gd-paper-1", "gd-paper", "Mill No. 1", "Dongguan"], GOOD["sites"][1]]}
    code, _, third = _import(cfg, _book(tmp_path / "changed.xlsx", changed))
    assert code == 0
    assert third["updated"]["sites"] == 1
    assert sum(third["updated"].values()) == 1


def test_export_round_trips_through_xlsx_and_csv(cfg: Path, tmp_path: Path) -> None:
    assert _import(cfg, _book(tmp_path / "accounts.xlsx", GOOD))[0] == 0
    r = runner.invoke(registry_cli, ["export", "--config", str(cfg), "--out", str(tmp_path / "out.xlsx")])
    assert r.exit_code == 0, r.output
    exported = load_workbook(tmp_path / "out.xlsx")
    assert exported.sheetnames == list(COLUMNS)
    assert [c.value for c in exported["contracts"][1]] == list(COLUMNS["contracts"])
    assert exported["customers"].max_row == 4  # header, the config's customer, the two imported
    code, errors, again = _import(cfg, tmp_path / "out.xlsx")
    assert (code, errors) == (0, [])
    assert sum(again["created"].values()) == sum(again["updated"].values()) == 0

    r = runner.invoke(registry_cli, ["export", "--config", str(cfg), "--out", str(tmp_path / "csv")])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "csv").iterdir()) == sorted(f"{k}.csv" for k in COLUMNS)
    code, errors, from_csv = _import(cfg, tmp_path / "csv")
    assert (code, errors) == (0, [])
    assert sum(from_csv["created"].values()) == sum(from_csv["updated"].values()) == 0


BROKEN = {
    "managers": [["am-zhao", "Zhao", "not-an-email"]],
    "customers": [["gd-paper", "GD Paper", "Asia/Shanghai", "paper", "lots", None],
                  ["gd-glass", "GD Glass", "Mars/Olympus", None, None, None],
                  ["gd-paper", "GD Paper again", "Asia/Shanghai", None, None, None]],
    "sites": [["gd-glass-1", "gd-nobody", None, None]],
    "meters": [],
    "contracts": [["plant", "2026-01-01", 4000, 0, 1000, "contract", 0.9, None, "guangdong-1-10kv"],
                  ["plant", "2026-02-01", 4000, 0, 2500, "contract", 0.9, None, "atlantis-2099"],
                  ["plant", "2026-03-01", "big", 0, 2500, "contract", 0.9, None, "guangdong-1-10kv"],
                  ["plant", "2026-04-01", 4000, 0, 2500, "sometimes", 0.9, None, "guangdong-1-10kv"]],
    "equipment": [["plant", "T1", "transformer", None, -5, "kVA"]],
    "contacts": [["plant", None, None, None, None]],
}


def test_a_broken_workbook_lists_every_error_by_sheet_row_and_column_and_changes_nothing(
        cfg: Path, tmp_path: Path) -> None:
    book = _book(tmp_path / "broken.xlsx", BROKEN)
    for dry_run in (True, False):
        code, errors, summary = _import(cfg, book, dry_run=dry_run)
        assert code == 1
        assert summary["applied"] is False
        assert summary["errors"] == len(errors) == 11, "\n".join(errors)
        expected = [
            ("managers!C2 (email): ", "pattern"),
            ("customers!E2 (annual_revenue): ", "'lots'"),
            ("customers!C3 (timezone): ", "'Mars/Olympus' is not an IANA time zone"),
            ("customers!A4 (code): ", "duplicate gd-paper: row 2 has it already"),
            ("sites!B2 (customer): ", "unknown customer 'gd-nobody'"),
            ("contracts!E2 (contract_demand_kw): ", "1000 kW is below the floor of 1600 kW"),
            ("contracts!I3 (tariff_id): ", "unknown tariff 'atlantis-2099'"),
            ("contracts!C4 (transformer_kva): ", "'big'"),
            ("contracts!F5 (basic_charge_mode): ", "sometimes"),
            ("equipment!E2 (rating): ", "greater than or equal to 0"),
            ("contacts!B2 (name): ", "Field required"),
        ]
        for (where, what), line in zip(expected, errors, strict=True):
            assert line.startswith(where), (where, line)
            assert what in line, (what, line)
        with _db(cfg)() as s:
            assert [c.code for c in s.scalars(select(Customer))] == ["plant"]
            assert s.scalar(select(func.count(Contract.id))) == 0
            assert s.scalar(select(func.count(AccountManager.id))) == 0


def test_a_meter_moved_in_the_sheet_closes_its_assignment(cfg: Path, tmp_path: Path) -> None:
    assert _import(cfg, _book(tmp_path / "a.xlsx", GOOD))[0] == 0
    moved = {**GOOD, "sites": [*GOOD["sites"], ["gd-paper-2", "gd-paper", "Mill 2", None]],
             "meters": [["gd-paper-m1", "gd-paper-2", "incomer", "2026-09-01"], GOOD["meters"][1]]}
    code, errors, out = _import(cfg, _book(tmp_path / "b.xlsx", moved))
    assert (code, errors, out["updated"]["meters"]) == (0, [], 1)
    with _db(cfg)() as s:
        m1 = s.scalar(select(Meter).where(Meter.code == "gd-paper-m1"))
        spans = [(a.site.code, str(a.valid_from), a.valid_to and str(a.valid_to)) for a in s.scalars(
            select(MeterAssignment).where(MeterAssignment.meter_id == m1.id).order_by(MeterAssignment.valid_from))]
        assert spans == [("gd-paper-1", "2026-01-01", "2026-09-01"), ("gd-paper-2", "2026-09-01", None)]
    backwards = {**moved, "meters": [["gd-paper-m1", "gd-paper-1", "incomer", "2026-05-01"]]}
    code, errors, _ = _import(cfg, _book(tmp_path / "c.xlsx", backwards))
    assert code == 1
    assert errors[0].startswith("meters!D2 (valid_from): ")


def test_a_bad_file_is_one_line_and_exit_2(cfg: Path, tmp_path: Path) -> None:
    (tmp_path / "people.csv").write_text("code,name\n")
    r = runner.invoke(registry_cli, ["import", "--config", str(cfg), str(tmp_path / "people.csv")])
    assert r.exit_code == 2
    assert "named after its kind" in r.output
    (tmp_path / "customers.csv").write_text("code,name,colour\nx,X,red\n")
    r = runner.invoke(registry_cli, ["import", "--config", str(cfg), str(tmp_path / "customers.csv")])
    assert r.exit_code == 2
    assert "unknown column(s) colour" in r.output


def test_users_add_creates_the_account_manager_it_names(cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEW_PW", "a-long-enough-password")
    r = runner.invoke(cli, ["users", "add", "--config", str(cfg), "am-zhao", "--role", "account_manager",
                            "--manager", "am-zhao", "--name", "赵敏 Zhao Min", "--email", "zhao@example.com",
                            "--password-env", "NEW_PW"])
    assert r.exit_code == 0, r.output
    with _db(cfg)() as s:
        m = s.scalar(select(AccountManager).where(AccountManager.code == "am-zhao"))
        assert (m.name, m.email) == ("赵敏 Zhao Min", "zhao@example.com")
    # A second login for the same manager links to it; nothing new is made.
    r = runner.invoke(cli, ["users", "add", "--config", str(cfg), "zhao2", "--role", "account_manager",
                            "--manager", "am-zhao", "--password-env", "NEW_PW"])
    assert r.exit_code == 0, r.output
    with _db(cfg)() as s:
        assert s.scalar(select(func.count(AccountManager.id))) == 1
    # Without a name the code is the name; --name is refused for other roles.
    r = runner.invoke(cli, ["users", "add", "--config", str(cfg), "am-qian", "--role", "account_manager",
                            "--manager", "am-qian", "--password-env", "NEW_PW"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["users", "add", "--config", str(cfg), "ops", "--role", "engineer", "--name", "Ops",
                            "--password-env", "NEW_PW"])
    assert r.exit_code == 2
    assert "--name and --email describe a new account manager" in r.output
