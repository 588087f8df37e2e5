"""`energy-gateway forecast backtest` end to end on CSV files."""

from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

from gateway.cli import app
from tests.forecasting.conftest import synth


def _files(tmp_path):
    history, plan = synth(days=35, start="2026-03-02")
    h = tmp_path / "h.csv"
    pd.DataFrame({"timestamp": [t.isoformat() for t in history.index], "value": history.round(3)}).to_csv(
        h, index=False)
    p = tmp_path / "p.csv"
    pd.DataFrame({"start": [t.isoformat() for t in plan.index], "operating": plan["operating"]}).to_csv(p, index=False)
    return h, p


def test_backtest_json_and_forecast_rows(tmp_path):
    h, p = _files(tmp_path)
    out = tmp_path / "fc.csv"
    r = CliRunner().invoke(app, ["forecast", "backtest", "--history", str(h), "--plan", str(p), "--horizon", "96",
                                 "--start", "2026-03-30", "--country", "CN", "--forecasts-out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["model"] in report["selection_mae"]
    assert report["overall"]["origins"] == 7 == len(report["per_origin"])
    for key in ("mae", "rmse", "wape", "mase", "mape", "coverage80", "coverage95", "mape_floor"):
        assert report["overall"][key] is not None
    assert {"fit_s", "predict_s", "origin"} <= report["per_origin"][0].keys()
    rows = pd.read_csv(out)
    assert list(rows.columns) == ["origin", "timestamp", "forecast", "lower80", "upper80", "lower95", "upper95",
                                  "actual"]
    assert len(rows) == 7 * 96
    assert (rows["lower95"] <= rows["forecast"]).all()
    assert (rows["forecast"] <= rows["upper95"]).all()


def test_backtest_bad_input(tmp_path):
    h, p = _files(tmp_path)
    text = h.read_text().splitlines()
    text[5] = text[5].split(",")[0] + ",n/a"
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(text))
    r = CliRunner().invoke(app, ["forecast", "backtest", "--history", str(bad), "--horizon", "96"])
    assert r.exit_code == 2
    assert f"{bad}: row 6, column 'value': 'n/a' is not a number" in r.stderr
    r = CliRunner().invoke(app, ["forecast", "backtest", "--history", str(h), "--horizon", "96", "--freq", "1h"])
    assert r.exit_code == 2
    assert "but --freq is 1h" in r.stderr
    r = CliRunner().invoke(app, ["forecast", "backtest", "--history", str(tmp_path / "none.csv"), "--horizon", "96"])
    assert r.exit_code == 2
    assert "file not found" in r.stderr
