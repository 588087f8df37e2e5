"""`energy-gateway forecast`: rolling-origin backtest of a history CSV, and backfill of past day-ahead issues."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    import pandas as pd

app = typer.Typer(no_args_is_help=True, add_completion=False)
SELECTION_ORIGINS = 14  # the last 14 days before the first origin choose the model (select_model's default)


@app.callback()
def _forecast() -> None:
    """Load forecasting."""


def _read_csv(path: Path, what: str) -> pd.DataFrame:
    import pandas as pd

    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        typer.echo(f"{what} {path}: file not found", err=True)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        typer.echo(f"{what} {path}: cannot read as CSV: {exc}", err=True)
    raise typer.Exit(2)


@app.command()
def backtest(
    history: Annotated[Path, typer.Option(help="history CSV: timestamp,value (interval start, ISO 8601)")],
    horizon: Annotated[int, typer.Option(help="intervals per forecast (96 for a day of 15 min)")],
    plan: Annotated[Path | None, typer.Option(help="production plan CSV: start[,end],operating,...")] = None,
    freq: Annotated[str, typer.Option(help="15min or 1h")] = "15min",
    start: Annotated[str | None, typer.Option(help="first origin day (YYYY-MM-DD, local)")] = None,
    end: Annotated[str | None, typer.Option(help="last day (exclusive)")] = None,
    model: Annotated[str, typer.Option(help="a model name, or auto (chosen by backtest before --start)")] = "auto",
    tz: Annotated[str, typer.Option(help="the customer's time zone")] = "Asia/Shanghai",
    country: Annotated[str, typer.Option(help="holiday calendar (ISO country code)")] = "CN",
    forecasts_out: Annotated[Path | None, typer.Option(help="write every forecast row to this CSV")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the metrics as JSON")] = False,
) -> None:
    """Refit at every local midnight on the data before it, forecast the next `horizon` intervals, score."""
    import pandas as pd

    from forecasting import (
        ForecastError,
        history_from_frame,
        model_factories,
        origins_between,
        plan_from_frame,
        select_model,
    )
    from forecasting import backtest as run_backtest
    from gateway.progress import progress

    step = {"15min": pd.Timedelta(minutes=15), "1h": pd.Timedelta(hours=1)}.get(freq)
    if step is None:
        typer.echo(f"--freq {freq!r}: use 15min or 1h", err=True)
        raise typer.Exit(2)
    factories = model_factories(country)
    if model != "auto" and model not in factories:
        typer.echo(f"--model {model!r}: use auto or one of {', '.join(factories)}", err=True)
        raise typer.Exit(2)
    try:
        hist = history_from_frame(_read_csv(history, "history"), str(history), tz)
        plan_frame = plan_from_frame(_read_csv(plan, "plan"), str(plan), tz) if plan else None
        steps = pd.Series(hist.index[1:] - hist.index[:-1]).mode()
        if len(steps) and steps.iloc[0] != step:
            raise ForecastError(f"{history}: intervals are {steps.iloc[0]}, but --freq is {freq}")
        lo = pd.Timestamp(start, tz=tz) if start else None
        hi = pd.Timestamp(end, tz=tz) if end else None
        origins = origins_between(hist, lo, hi)
        selection: dict[str, float | None] = {}
        chosen = model
        before = hist[hist.index < origins[0]] if origins else hist
        # One step per fit: each origin of the backtest, and (auto) each candidate on its selection origins.
        choosing = len(factories) * len(origins_between(before, None, None)[-SELECTION_ORIGINS:]) \
            if model == "auto" else 0
        with progress("backtest", choosing + len(origins), as_json=as_json) as bar:
            if model == "auto":
                chosen, selection = select_model(before, plan_frame, {name: bar.counting(make)
                                                                      for name, make in factories.items()},
                                                 horizon, n_origins=SELECTION_ORIGINS)
            result = run_backtest(hist, plan_frame, bar.counting(factories[chosen]), origins, horizon)
    except ForecastError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    if forecasts_out is not None:
        rows = result.forecasts.reset_index(names="timestamp")
        rows["origin"] = [pd.Timestamp(o).isoformat() for o in rows["origin"]]
        rows["timestamp"] = [pd.Timestamp(t).isoformat() for t in rows["timestamp"]]
        rows[["origin", "timestamp", "forecast", "lower80", "upper80", "lower95", "upper95", "actual"]].to_csv(
            forecasts_out, index=False, float_format="%.4f")
    report = {"model": chosen, "selection_mae": selection, "overall": result.overall, "per_origin": result.per_origin}
    if as_json:
        typer.echo(json.dumps(report, default=str))
        return
    o = result.overall
    typer.echo(f"model {chosen}: {o['origins']} origins, MAE {o['mae']:.3f}, RMSE {o['rmse']:.3f}, "
               f"WAPE {o['wape']:.3f}, MASE {o['mase']:.3f}, coverage 80 % {o['coverage80']:.3f}, "
               f"95 % {o['coverage95']:.3f}")


@app.command()
def backfill(
    config: Annotated[Path, typer.Option("--config", "-c", help="gateway.toml")],
    first: Annotated[str, typer.Option("--from", help="first local day to backfill (YYYY-MM-DD)")],
    last: Annotated[str, typer.Option("--to", help="last local day to backfill, inclusive (YYYY-MM-DD)")],
    customer: Annotated[list[str] | None, typer.Option(help="only this customer (repeatable); default all")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the outcome as JSON")] = False,
) -> None:
    """Issue the day-ahead forecasts past days would have had, from the data known the evening before each.

    Each is dated when the nightly job would have issued it and marked backfilled wherever it is shown; a day that
    already has a day-ahead forecast is skipped.
    """
    from datetime import date

    from gateway.config import ConfigError, load_config
    from gateway.jobs import backfill_forecasts
    from gateway.runtime import StartupError, offline_sources

    days = []
    for option, value in (("--from", first), ("--to", last)):
        try:
            days.append(date.fromisoformat(value))
        except ValueError:
            typer.echo(f"{option} {value!r} is not a date (YYYY-MM-DD)", err=True)
            raise typer.Exit(2) from None
    try:
        cfg = load_config(config, secrets={"store", "database"})
        sources = offline_sources(cfg)
    except (ConfigError, StartupError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    try:
        outcome = backfill_forecasts(sources, days[0], days[1], customer or None)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(outcome))
        return
    for cid, per_day in outcome.items():
        for day, what in per_day.items():
            typer.echo(f"{cid} {day} {what}")
