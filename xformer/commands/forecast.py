"""`xformer forecast RUN_DIR [RUN_DIR ...] --data FILE [--out forecast.csv] [--plot forecast.png] [--at DATE] [--h N]`.

FILE (CSV, or Parquet: data/tables.py) is wide (the run's date column and one column per series) or long
(``unique_id, ds, y``: every series in it is forecast; the CSV is long too: unique_id, ds, y_hat and y_hat_q{q}
columns). --out writes CSV, or Parquet for a .parquet name. RUN_DIR
is a run of ``xformer train`` on series data or a folder written by ``Forecaster.save``; several of one
recipe and data (seeds), or of models and lookbacks of one task and data, forecast as their ensemble
(``Forecaster.load([...])``: forecasts averaged).

Forecasts the run's horizon after the last row of FILE (or after row DATE with --at, so the
rows after it are the truth: the plot shows them and the errors are printed; for a long FILE MASE's scale
is the seasonal naive forecast of period --season, default 1, on each series' rows up to DATE, as in
``xformer backtest``). A wide FILE needs the
run's date column and value columns; they are scaled with the StandardScaler of the run's
training rows (RUN_DIR/series_scaler.json, or each series' statistics of a Forecaster.save folder) and the
forecast is written on the data's scale: the date column, one column per series (the median), plus
``{name}_q{q}`` columns for the other levels of a model trained with quantiles. A long FILE gives
``unique_id, ds, y_hat`` and a ``y_hat_q{q}`` column per quantile level other than the median.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from ..config import ConfigError


def _run(args: argparse.Namespace) -> None:
    import numpy as np
    import pandas as pd

    from ..data.series import read_raw_series
    from ..data.tables import require_engine_for_output, table_data
    from ..folders import FIGURE_SUFFIXES, output_file, write_atomically
    from ..forecast import Forecaster
    from ..forecast.folder import load_for_command
    from ..forecast.frames import is_long, load_frame
    from ..forecast.statics import static_for_command

    inputs = [path for path in (args.data, args.futr, args.static) if path is not None]
    outputs = [("--out", args.out, ()), ("--plot", args.plot, FIGURE_SUFFIXES)]
    for option, path, suffixes in outputs:
        if path is not None:
            output_file(path, option, args.overwrite, inputs, runs=args.run_dir, suffixes=suffixes)
    require_engine_for_output(args.out, "--out")
    if args.out is not None and args.plot is not None and Path(args.out).resolve() == Path(args.plot).resolve():
        raise ConfigError(f"--out and --plot are both {args.out}; give two file names")
    if args.series is not None and args.plot is None:
        raise ConfigError("--series chooses the series to plot, and there is no --plot; give --plot FILE.png too "
                          "(the forecast itself covers every series)")
    if args.season < 1:
        raise ConfigError(f"--season must be a whole number >= 1, got {args.season}")
    forecaster = load_for_command(Forecaster, args.run_dir, args.freq, args.h)
    if args.missing is not None:  # the policy for this data's gaps, in place of the one the run was fitted with
        forecaster.config = dataclasses.replace(forecaster.config, missing=args.missing)
    cfg = forecaster.config
    covariates_given(args, cfg)
    raw = load_frame(args.data)
    if is_long(raw, cfg.date_column):
        return run_long(args, forecaster, raw)
    if args.futr is not None:
        raise ConfigError("--futr gives future-known covariates of a long-format file (unique_id, ds, y, ...); this "
                          "file is a wide table")
    # unfilled: the history is cut at --at first and filled then (predict), from the rows up to --at only
    frame = read_raw_series(raw, cfg.date_column, forecaster.columns or cfg.columns, cfg.missing)
    unknown = [k for k in args.series or [] if k not in map(str, frame.columns)]
    if unknown:  # checked before the forecast is written, not by the plot after it
        raise ConfigError(f"--series {', '.join(unknown)}: no such column in {args.data}; choose among "
                          f"{[str(c) for c in frame.columns][:10]}")
    history = frame
    if args.at is not None:
        dated = isinstance(frame.index, pd.DatetimeIndex)
        at = origin(args.at, frame.index, f"one of the file's {'dates' if dated else 'steps'}, "
                                          f"e.g. --at '{frame.index[len(frame) // 2]}'")
        history = frame.loc[:at]
        if len(history) == 0 or at > frame.index[-1]:
            raise ConfigError(f"--at {args.at} is outside {args.data} ({frame.index[0]} to {frame.index[-1]}); "
                              f"give one of its {'dates' if dated else 'steps'}")
    if len(history) < cfg.input_len:
        raise ConfigError(f"the run reads {cfg.input_len} rows before the forecast but {args.data} has "
                          f"{len(history)}{' up to --at' if args.at else ''}; give a longer history")
    static = static_for_command(args.static, cfg.stat_exog)  # by column name; default: those of fit
    forecast = forecaster.predict(history, h=args.h, static_df=static)
    table = table_data(forecast, args.out, "%.8g", index=True, index_label=cfg.date_column)
    if args.out:
        write_atomically(args.out, table)
        if not args.quiet:
            print(f"wrote {len(forecast)} steps x {len(frame.columns)} series to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(table)
    truth = frame.loc[frame.index > history.index[-1]].reindex(forecast.index).dropna()
    if len(truth):
        y, y_hat = truth.to_numpy(), forecast.loc[truth.index, list(frame.columns)].to_numpy()
        scale = (forecaster.scaler.scale_ if forecaster.scaler is not None else  # per-series training scales
                 np.array([forecaster.stats.get(str(c), (0.0, float(history[c].std(ddof=0)) or 1.0))[1]
                           for c in frame.columns]))
        # mse / mae in the data's units, as backtest and a Forecaster folder's forecast print them; the
        # literature's errors, on the run's standardised scale, named as such
        errors = {"steps_with_truth": len(truth), "mse": float(np.mean((y - y_hat) ** 2)),
                  "mae": float(np.mean(np.abs(y - y_hat))),
                  "mse_standardised": float(np.mean(((y - y_hat) / scale) ** 2)),
                  "mae_standardised": float(np.mean(np.abs(y - y_hat) / scale))}
        print(json.dumps({k: round(v, 6) if isinstance(v, float) else v for k, v in errors.items()}), file=sys.stderr)
    if args.plot:
        forecaster.plot(history, args.plot, truth=frame if len(truth) else None, series=args.series,
                        static_df=static, overwrite=True)  # checked above
        if not args.quiet:
            print(f"wrote {args.plot}", file=sys.stderr)


def covariates_given(args: argparse.Namespace, cfg) -> None:
    """--futr and --static name covariates the run was fitted with: refused in one line (in the command's words)
    for a run without them."""
    for option, path, names, kind in (("--futr", args.futr, cfg.futr_exog, "future-known"),
                                      ("--static", args.static, cfg.stat_exog, "static")):
        if path is not None and not names:
            raise ConfigError(f"{option} {path} gives {kind} covariates, but the run in {' '.join(args.run_dir)} "
                              f"was fitted without any; drop {option}, or forecast with a run fitted with them")


def run_long(args: argparse.Namespace, forecaster, raw) -> None:
    """Every series of a long-format file: a long CSV, the errors against later rows with --at. With --at the
    file's rows after it are the forecast's future: the future-known covariates are read from them, and --futr's
    values replace them where it gives some (a scenario), as predict(the file cut at --at, futr_df=...) reads
    them."""
    import pandas as pd

    from ..data.tables import table_data
    from ..folders import write_atomically
    from ..forecast.frames import DS, ID, POINT, Y, Panel, load_frame
    from ..forecast.future import with_future
    from ..forecast.statics import static_for_command
    from ..metrics_forecast import evaluate, overall_json, refuse_overall_id

    panel = forecaster.read(raw)
    series, origins = panel.series, None
    if args.at is not None:
        refuse_overall_id(panel.ids, f"in {args.data}")  # --at scores the forecast per series and overall
        index = next(iter(panel.series.values())).index
        integer_ds = not isinstance(index, pd.DatetimeIndex)
        at = origin(args.at, index, f"one within {args.data}")
        first, last = min(s.index[0] for s in panel.series.values()), max(s.index[-1] for s in panel.series.values())
        if not first <= at <= last:
            raise ConfigError(f"--at {args.at} is outside {args.data} ({first} to {last}); give one of its "
                              f"{'steps' if integer_ds else 'dates'}")
        kept = {k: int((s.index <= at).sum()) for k, s in panel.series.items()}
        series = {k: s.iloc[:kept[k]] for k, s in panel.series.items() if kept[k]}
        origins = {k: s.index[-1] for k, s in series.items()}  # the rows after them are the forecast's future
    futr = load_frame(args.futr) if args.futr else None
    panel = with_future(forecaster.config, panel, futr, origins, f"--futr {args.futr}")  # named as the option
    history = Panel(series, None, panel.covariates) if origins is not None else panel
    later = [k for k in panel.ids if k not in series]
    if later:
        print(f"xformer: warning: {len(later)} series {'starts' if len(later) == 1 else 'start'} after --at, not "
              f"forecast: "
              f"{', '.join(later[:10])}{' ...' if len(later) > 10 else ''}", file=sys.stderr)
    ended = [k for k, s in panel.series.items() if origins is not None and s.index[-1] < at]
    if ended:  # predict(the file cut at --at) does the same; said, since their dates are not --at's
        one = len(ended) == 1
        print(f"xformer: warning: {len(ended)} series {'ends' if one else 'end'} before --at, forecast after "
              f"{'its' if one else 'their'} own last row with no later rows to score: "
              f"{', '.join(ended[:10])}{' ...' if len(ended) > 10 else ''}", file=sys.stderr)
    if args.series is not None:  # checked before the forecast is written, not by the plot after it
        known = forecaster.columns or [k for k, s in history.series.items() if len(s) >= forecaster.config.input_len]
        unknown = [k for k in args.series if k not in known]
        if unknown:
            raise ConfigError(f"--series {', '.join(unknown)}: no such series with the {forecaster.config.input_len} "
                              f"rows a forecast reads{' up to --at' if args.at else ''} in {args.data}; choose among "
                              f"{known[:10]}")
    static = static_for_command(args.static, forecaster.config.stat_exog)  # default: the one remembered from fit
    forecast = forecaster.predict_panel(history, h=args.h, static_df=static)
    table = table_data(forecast, args.out, "%.8g")
    if args.out:
        write_atomically(args.out, table)
        if not args.quiet:
            print(f"wrote {forecast[ID].nunique()} series x {len(forecast) // max(forecast[ID].nunique(), 1)} steps "
                  f"to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(table)
    truth = forecast.merge(panel.to_long(), on=[ID, DS], how="inner")
    if len(truth):
        table = evaluate(truth[[ID, DS, Y] + [c for c in forecast.columns if c.startswith(POINT)]],
                         train_df=history.to_long(), season=args.season)  # read on its grid: a row at every step
        print(json.dumps({"steps_with_truth": len(truth), **overall_json(table)}), file=sys.stderr)
    if args.plot:
        forecaster.plot(history, args.plot, truth=panel if len(truth) else None, series=args.series, static_df=static,
                        overwrite=True)  # output_file checked it before any work
        if not args.quiet:
            print(f"wrote {args.plot}", file=sys.stderr)


def origin(text: str, index, choices: str):
    """``--at`` as a point of ``index``: a whole number for integer steps; a date otherwise, read in the dates'
    time zone when it names none (mixed UTC offsets are read as UTC, docs/series.md) and converted to it when
    it does. A date with a zone for dates without one is refused: which local time it means is unknown."""
    import pandas as pd

    dated = isinstance(index, pd.DatetimeIndex)
    try:
        at = pd.Timestamp(text) if dated else int(text)
    except ValueError:
        what = "a date" if dated else f"a whole number ({index.name or 'the time index'} holds integers)"
        raise ConfigError(f"--at {text!r} is not {what}; give {choices}") from None
    if not dated:
        return at
    if (at.tz is None) == (index.tz is None):
        return at if at.tz is None else at.tz_convert(index.tz)
    if index.tz is None:
        raise ConfigError(f"--at {text!r} names a time zone but the dates hold none; give --at without one")
    return at.tz_localize(index.tz)


def run(args: argparse.Namespace) -> None:
    """``_run``, with its warnings (e.g. the series left out) printed as plain lines, each once."""
    from ..forecast.frames import printing_short_series

    printing_short_series(_run, args)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "forecast", help="forecast the steps after a series (CSV or Parquet) with a trained forecasting run",
        description="Load the model and scaler of RUN_DIR (a run trained on series data, or a Forecaster.save "
                    "folder) and forecast its horizon after the last row of --data (or after --at DATE, printing "
                    "the errors against the rows that follow). Writes CSV (or Parquet): for a wide file the date "
                    "column, one column per series and {name}_q{q} columns if trained with quantiles; for a long "
                    "file (unique_id, ds, y) the columns unique_id, ds, y_hat and y_hat_q{q} per other quantile "
                    "level.",
        epilog="example: xformer forecast runs/patchtst_etth1_96 --data ../shared/data/ETTh1.csv "
               "--at '2018-02-20 23:00' --out forecast.csv --plot forecast.png")
    p.add_argument("run_dir", nargs="+", metavar="RUN_DIR",
                   help="a run, or several runs of one recipe and data (seeds): their forecasts are averaged")
    p.add_argument("--data", required=True, metavar="FILE",
                   help="a CSV or Parquet file, wide (the run's date column and one value column per series) or long "
                        "(unique_id, ds, y: every series in it is forecast)")
    p.add_argument("--out", metavar="FILE.csv", help="where to write the forecast: CSV, or Parquet for a .parquet name "
                   "(default: CSV on standard output)")
    p.add_argument("--plot", metavar="FILE.png", help="also plot history, forecast (quantile band) and truth "
                   "(.png, .svg, .pdf or .jpg)")
    p.add_argument("--overwrite", action="store_true", help="replace --out / --plot if they exist (never an input "
                   "or a file of the run folder)")
    p.add_argument("--at", metavar="DATE", help="forecast after this date of the file instead of after its end")
    p.add_argument("--missing", choices=("error", "ffill", "interpolate"),
                   help="how to fill missing values and timestamps of --data (default: the policy the run was fitted "
                   "with; a gap is only ever filled from rows up to its forecast origin)")
    p.add_argument("--freq", help="pandas frequency of the dates (e.g. h, 15min), or the step of an integer ds "
                   "(e.g. 1), when it cannot be inferred")
    p.add_argument("--h", type=int, metavar="N", help="forecast N steps (1 to the run's horizon; default: the horizon)")
    p.add_argument("--season", type=int, default=1, metavar="M",
                   help="with --at and a long file: MASE's seasonal naive period, as xformer backtest's (default 1; "
                        "24 for hourly data with a daily cycle)")
    p.add_argument("--futr", metavar="FILE", help="future-known covariates for the horizon after each series "
                                                      "(unique_id, ds and the model's futr_exog columns)")
    p.add_argument("--static", metavar="FILE", help="static covariates (unique_id and the model's stat_exog "
                                                        "columns, one row per series; default: those of its fit)")
    p.add_argument("--series", metavar="ID", action="append",
                   help="with --plot: the series to plot (repeat for several; default: the first 4 of a long file, "
                        "every column of a wide one)")
    p.add_argument("--quiet", action="store_true",
                   help="no 'wrote ...' lines on stderr; the forecast, its errors against the truth and any "
                        "error message stay")
    p.set_defaults(func=run)
