"""`tariffs import|list` on a real SQLite registry: new versions join the shipped ones, a second import changes
nothing, a file that does not validate names each key path, and overlaps, gaps and rewrites are refused by date.
The joined history bills a month that spans a price change by version."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from crm_bridge.registry.models import TariffVersion
from crm_bridge.services import ContractInputs
from crm_bridge.tariffs import load_tariff, month_bill
from gateway.auth.models import AuditEvent
from gateway.cli import app as cli

runner = CliRunner()
BANDS = '''bands = [
  { band = "valley", months = [1,2,3,4,5,6,7,8,9,10,11,12], start = "00:00", end = "08:00" },
  { band = "flat", months = [1,2,3,4,5,6,7,8,9,10,11,12], start = "08:00", end = "24:00" },
]'''


def _version(valid_from: str, flat: float, valid_to: str | None = None) -> str:
    end = f'valid_to = "{valid_to}"\n' if valid_to else ""
    return (f'[[versions]]\nvalid_from = "{valid_from}"\n{end}basic_per_kw_month = 36.1\nbasic_per_kva_month = 22.6\n'
            f'energy_prices = {{ flat = {flat}, valley = 0.3 }}\n{BANDS}\n')


def _file(tmp_path: Path, name: str, tariff_id: str, *versions: str) -> Path:
    path = tmp_path / name
    path.write_text(f'id = "{tariff_id}"\ncurrency = "CNY"\ntimezone = "Asia/Shanghai"\n' + "".join(versions),
                    "utf-8")
    return path


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


def _run(*args: str) -> tuple[int, str, str]:
    r = runner.invoke(cli, list(args))
    return r.exit_code, r.stdout, r.stderr


def _list(cfg: Path, tariff: str) -> dict[str, Any]:
    code, out, err = _run("tariffs", "list", "--config", str(cfg), "--tariff", tariff)
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


def test_a_new_version_joins_the_shipped_ones_and_a_second_import_changes_nothing(cfg: Path, tmp_path: Path) -> None:
    shipped = _list(cfg, "guangdong-1-10kv")
    assert [(v["valid_from"], v["origin"]) for v in shipped["versions"]] == [
        ("2021-10-01", "shipped"), ("2023-01-01", "shipped")], "the 331号 version ships before the 2023 one"
    f = _file(tmp_path, "gd-2027.toml", "guangdong-1-10kv", _version("2027-01-01", 0.7))
    code, out, err = _run("tariffs", "import", "--config", str(cfg), str(f), "--dry-run")
    assert code == 0, err
    assert json.loads(out) == {"tariff": "guangdong-1-10kv", "added": ["2027-01-01"], "unchanged": [],
                               "dry_run": True}
    with _db(cfg)() as s:
        assert s.scalar(select(func.count(TariffVersion.id))) == 0, "a dry run stores nothing"
    code, out, err = _run("tariffs", "import", "--config", str(cfg), str(f))
    assert code == 0, err
    assert json.loads(out)["added"] == ["2027-01-01"]
    versions = _list(cfg, "guangdong-1-10kv")["versions"]
    assert [(v["valid_from"], v["valid_to"], v["origin"]) for v in versions] == [
        ("2021-10-01", "2023-01-01", "shipped"), ("2023-01-01", "2027-01-01", "shipped"),
        ("2027-01-01", None, "registry")]
    code, out, err = _run("tariffs", "import", "--config", str(cfg), str(f))
    assert code == 0, err
    assert json.loads(out) == {"tariff": "guangdong-1-10kv", "added": [], "unchanged": ["2027-01-01"],
                               "dry_run": False}
    with _db(cfg)() as s:
        assert s.scalar(select(func.count(TariffVersion.id))) == 1
        audits = list(s.scalars(select(AuditEvent).where(AuditEvent.action == "tariff.import")))
    assert len(audits) == 1, "only the import that added a version is audited"
    assert audits[0].target == "tariff:guangdong-1-10kv"


def test_a_new_tariff_with_history_is_listed_and_bills_a_month_by_version(cfg: Path, tmp_path: Path) -> None:
    f = _file(tmp_path, "plant.toml", "plant-tou", _version("2026-01-01", 0.5),
              _version("2026-03-16", 0.8))
    code, out, err = _run("tariffs", "import", "--config", str(cfg), str(f))
    assert code == 0, err
    code, out, err = _run("tariffs", "list", "--config", str(cfg))
    assert code == 0, err
    ids = [json.loads(line)["id"] for line in out.splitlines()]
    assert ids == sorted(ids)
    assert {"guangdong-1-10kv", "sichuan-2023", "plant-tou"} <= set(ids)
    from gateway.usecases.tariffs import Tariffs

    with _db(cfg)() as s:
        tariff = Tariffs(s, lambda *a: None).effective("plant-tou")
    assert tariff is not None
    # March 2026 at 100 kWh every flat quarter-hour: 15 days at 0.5, 16 days at 0.8 (one price change mid-month)
    idx = pd.date_range("2026-03-01", "2026-04-01", freq="15min", inclusive="left", tz="Asia/Shanghai")
    flat = (idx.hour >= 8)
    frame = pd.DataFrame({"kwh": [100.0 if x else 0.0 for x in flat]}, index=idx)
    terms = ContractInputs(transformer_kva=1000.0, contract_demand_kw=500.0, basic_charge_mode="capacity",
                           tariff_id="plant-tou")
    bill = month_bill(frame, terms, tariff, "2026-03", now=pd.Timestamp("2026-04-02", tz="Asia/Shanghai"))
    per_day = 64 * 100.0
    assert bill.energy_charge == pytest.approx(15 * per_day * 0.5 + 16 * per_day * 0.8)
    assert [(v.valid_from, v.days) for v in bill.versions] == [(date(2026, 1, 1), 15), (date(2026, 3, 16), 16)]


def test_a_file_that_does_not_validate_names_each_key_path(cfg: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('id = "x"\ntimezone = "Mars/Olympus"\n[[versions]]\nvalid_from = "2026-13-01"\n'
                   'basic_per_kw_month = -1\nbasic_per_kva_month = 1\nenergy_prices = { flat = 1 }\n'
                   'bands = [{ band = "flat", months = [1], start = "00:00", end = "24:00" }]\n', "utf-8")
    code, out, err = _run("tariffs", "import", "--config", str(cfg), str(bad))
    assert code == 2
    assert "bad.toml" in err
    assert "timezone" in err
    assert "Mars/Olympus" in err
    assert "versions.0.basic_per_kw_month" in err
    code, _, err = _run("tariffs", "import", "--config", str(cfg), str(tmp_path / "missing.toml"))
    assert code == 2
    assert "missing.toml" in err
    broken = tmp_path / "broken.toml"
    broken.write_text('id = "x"\nversions = [', "utf-8")
    code, _, err = _run("tariffs", "import", "--config", str(cfg), str(broken))
    assert code == 2
    assert "not valid TOML" in err


@pytest.mark.parametrize(("versions", "message"), [
    # a gap: the first version ends on 1 March, the next starts 1 April
    ((("2026-01-01", 0.5, "2026-03-01"), ("2026-04-01", 0.6, None)), "a gap from 2026-03-01 to 2026-03-31"),
    # an overlap inside the file
    ((("2026-01-01", 0.5, "2026-05-01"), ("2026-04-01", 0.6, None)), "overlaps the one from 2026-04-01"),
    # a version starting inside a shipped one that is followed by another: history is never shortened
    ((("2022-06-01", 0.5, None),), "overlaps the one from 2021-10-01, which holds until 2022-12-31"),
    # the shipped version from 2023-01-01 again, with other prices
    ((("2023-01-01", 0.9, None),), "a version from 2023-01-01 exists already (shipped)"),
    # the newest version says when it ends
    ((("2027-01-01", 0.7, "2028-01-01"),), "leave valid_to out"),
    # history before the shipped first version, ending too early
    ((("2020-01-01", 0.4, "2021-09-01"),), "a gap from 2021-09-01 to 2021-09-30"),
])
def test_overlaps_gaps_and_rewrites_are_refused_with_their_dates(cfg: Path, tmp_path: Path, versions: Any,
                                                                 message: str) -> None:
    f = _file(tmp_path, "v.toml", "guangdong-1-10kv", *(_version(a, p, e) for a, p, e in versions))
    code, out, err = _run("tariffs", "import", "--config", str(cfg), str(f))
    assert code == 1, out
    assert message in err
    with _db(cfg)() as s:
        assert s.scalar(select(func.count(TariffVersion.id))) == 0


def test_history_before_the_first_version_is_added_when_it_ends_where_that_starts(cfg: Path, tmp_path: Path) -> None:
    f = _file(tmp_path, "old.toml", "guangdong-1-10kv", _version("2020-01-01", 0.4, "2021-10-01"))
    code, out, err = _run("tariffs", "import", "--config", str(cfg), str(f))
    assert code == 0, err
    assert json.loads(out)["added"] == ["2020-01-01"]
    from gateway.usecases.tariffs import Tariffs

    with _db(cfg)() as s:
        tariff = Tariffs(s, lambda *a: None).effective("guangdong-1-10kv")
    assert tariff is not None
    assert [v.valid_from for v in tariff.versions] == [date(2020, 1, 1), date(2021, 10, 1), date(2023, 1, 1)]
    assert tariff.version_at(date(2021, 3, 1)).energy_prices["flat"] == 0.4
    assert load_tariff("guangdong-1-10kv").first_date == date(2021, 10, 1), "the shipped file is left as it is"


def _version_json(valid_from: str, flat: float, valid_to: str | None = None) -> dict[str, Any]:
    return {"valid_from": valid_from, **({"valid_to": valid_to} if valid_to else {}), "basic_per_kw_month": 36.1,
            "basic_per_kva_month": 22.6, "energy_prices": {"flat": flat, "valley": 0.3},
            "bands": [{"band": "valley", "months": list(range(1, 13)), "start": "00:00", "end": "08:00"},
                      {"band": "flat", "months": list(range(1, 13)), "start": "08:00", "end": "24:00"}]}


def test_the_api_lists_versions_and_only_an_admin_imports(cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same use case behind the API: GET lists, POST (admin) imports; 403, 422 and 409 say why not."""
    from fastapi.testclient import TestClient

    from gateway.config import load_config
    from gateway.runtime import Gateway
    from gateway.web import auth_service, create_app

    monkeypatch.setenv("GATEWAY_SECRET_KEY", "test-secret-key-0123456789abcdef")
    gw = Gateway.from_config(load_config(cfg))
    auth = auth_service(gw)
    for name, role in (("root", "admin"), ("fixer", "engineer")):
        auth.add_user(name, "tariff-test-password", role)
    client = TestClient(create_app(gw))

    def headers(user: str) -> dict[str, str]:
        r = client.post("/api/v1/auth/token", data={"username": user, "password": "tariff-test-password"})
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    admin, engineer = headers("root"), headers("fixer")
    body = {"id": "plant-tou", "timezone": "Asia/Shanghai", "versions": [_version_json("2026-01-01", 0.5)]}
    r = client.post("/api/v1/tariffs/plant-tou/versions", json=body, headers=engineer)
    assert r.status_code == 403, r.text
    r = client.post("/api/v1/tariffs/other/versions", json=body, headers=admin)
    assert r.status_code == 422, r.text
    assert "not 'other'" in r.json()["error"]["message"]
    bad = {**body, "versions": [{**_version_json("2026-01-01", 0.5), "energy_prices": {"flat": 0.5}}]}
    r = client.post("/api/v1/tariffs/plant-tou/versions", json=bad, headers=admin)
    assert r.status_code == 422, r.text
    assert "versions.0" in r.json()["error"]["message"]
    assert "valley" in r.json()["error"]["message"]
    r = client.post("/api/v1/tariffs/plant-tou/versions?dry_run=true", json=body, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json() == {"tariff": "plant-tou", "added": ["2026-01-01"], "unchanged": [], "dry_run": True}
    assert client.get("/api/v1/tariffs/plant-tou/versions", headers=engineer).status_code == 404
    r = client.post("/api/v1/tariffs/plant-tou/versions", json=body, headers=admin)
    assert r.status_code == 201, r.text
    later = {**body, "versions": [_version_json("2026-02-01", 0.6, "2026-04-01"),
                                  _version_json("2026-05-01", 0.7)]}
    r = client.post("/api/v1/tariffs/plant-tou/versions", json=later, headers=admin)
    assert r.status_code == 409, r.text
    assert "a gap from 2026-04-01 to 2026-04-30" in r.json()["error"]["message"]
    r = client.get("/api/v1/tariffs/plant-tou/versions", headers=engineer)
    assert r.status_code == 200, r.text
    assert [(v["valid_from"], v["valid_to"], v["origin"]) for v in r.json()["versions"]] == [
        ("2026-01-01", None, "registry")]
    listed = {t["id"]: t for t in client.get("/api/v1/tariffs", headers=engineer).json()}
    assert {"guangdong-1-10kv", "sichuan-2023", "plant-tou"} <= set(listed)
    assert [v["valid_from"] for v in listed["guangdong-1-10kv"]["versions"]] == ["2021-10-01", "2023-01-01"]
    whole = client.get("/api/v1/tariffs/plant-tou", headers=engineer).json()
    assert whole["versions"][0]["energy_prices"] == {"flat": 0.5, "valley": 0.3}


def test_billing_and_contracts_use_the_imported_versions(cfg: Path, tmp_path: Path) -> None:
    """What `tariffs import` adds is what the figures price with (`gateway.usecases.figures.tariff_of`, which every
    bill, month view and service goes through), and a contract may name a tariff kept only in the registry."""
    from crm_bridge.registry.models import Contract
    from gateway.api.schemas.registry import ContractTerms
    from gateway.config import load_config
    from gateway.runtime import Gateway
    from gateway.usecases.figures import tariff_of
    from gateway.usecases.registry_core import contract_problems

    gw = Gateway.from_config(load_config(cfg))
    contract = Contract(tariff_id="plant-tou")
    assert tariff_of(gw, contract) is None  # nothing prices it yet
    terms = ContractTerms(tariff_id="plant-tou", transformer_kva=1000, contract_demand_kw=600)
    assert contract_problems(terms)[0][0] == "body.tariff_id"
    code, _, err = _run("tariffs", "import", "--config", str(cfg),
                        str(_file(tmp_path, "t.toml", "plant-tou", _version("2026-01-01", 0.5),
                                  _version("2026-06-01", 0.8))))
    assert code == 0, err
    tariff = tariff_of(gw, contract)
    assert tariff is not None
    assert [(v.valid_from, v.energy_prices["flat"]) for v in tariff.versions] == [
        (date(2026, 1, 1), 0.5), (date(2026, 6, 1), 0.8)]
    with gw.db() as s:
        from gateway.usecases.tariffs import Tariffs

        assert contract_problems(terms, tariffs=Tariffs(s, lambda *_: None).ids()) == []
    shipped = tariff_of(gw, Contract(tariff_id="guangdong-1-10kv"))
    assert shipped is not None
    assert shipped.versions == load_tariff("guangdong-1-10kv").versions
