"""`xformer forecast RUN_DIR --data FILE.csv [--out forecast.csv] [--plot forecast.png] [--at DATE]`.

Forecasts the run's horizon after the last row of FILE (or after row DATE with --at, so the
rows after it are the truth: the plot shows them and the errors are printed). The file needs the
run's date column and value columns; they are scaled with the StandardScaler of the run's
training rows (RUN_DIR/series_scaler.json) and the forecast is written on the data's scale, one
column per series, plus ``{name}_q{q}`` columns for a run trained with quantiles.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..config import ConfigError


def run(args: argparse.Namespace) -> None:
    import numpy as np
    import pandas as pd

    from ..data.series import read_series
    from ..folders import write_atomically
    from ..forecast import Forecaster

    for option, path in (("--out", args.out), ("--plot", args.plot)):
        if path is not None and Path(path).is_dir():
            raise ConfigError(f"{option} {path} is a folder; give a file name, e.g. {Path(path) / 'forecast'}"
                              f"{'.csv' if option == '--out' else '.png'}")
    forecaster = Forecaster.from_run(args.run_dir, freq=args.freq)
    cfg = forecaster.config
    frame = read_series(args.data, cfg.date_column, forecaster.columns, cfg.missing)
    history = frame
    if args.at is not None:
        try:
            at = pd.Timestamp(args.at)
        except ValueError:
            raise ConfigError(f"--at {args.at!r} is not a date; give one of the file's dates, e.g. "
                              f"--at '{frame.index[len(frame) // 2]}'") from None
        history = frame.loc[:at]
        if len(history) == 0 or at > frame.index[-1]:
            raise ConfigError(f"--at {args.at} is outside {args.data} ({frame.index[0]} to {frame.index[-1]}); "
                              "give one of its dates")
    if len(history) < cfg.input_len:
        raise ConfigError(f"the run reads {cfg.input_len} rows before the forecast but {args.data} has "
                          f"{len(history)}{' up to --at' if args.at else ''}; give a longer history")
    forecast = forecaster.predict(history)
    table = forecast.to_csv(index_label=cfg.date_column)
    if args.out:
        write_atomically(args.out, table)
        if not args.quiet:
            print(f"wrote {len(forecast)} steps x {len(forecaster.columns)} series to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(table)
    truth = frame.loc[frame.index > history.index[-1]].reindex(forecast.index).dropna()
    if len(truth):
        y, y_hat = truth.to_numpy(), forecast.loc[truth.index, forecaster.columns].to_numpy()
        scale = forecaster.scaler.scale_
        errors = {"steps_with_truth": len(truth), "mse": float(np.mean(((y - y_hat) / scale) ** 2)),
                  "mae": float(np.mean(np.abs(y - y_hat) / scale)), "mse_original": float(np.mean((y - y_hat) ** 2)),
                  "mae_original": float(np.mean(np.abs(y - y_hat)))}
        print(json.dumps({k: round(v, 6) if isinstance(v, float) else v for k, v in errors.items()}), file=sys.stderr)
    if args.plot:
        forecaster.plot(history, args.plot, truth=frame if len(truth) else None)
        if not args.quiet:
            print(f"wrote {args.plot}", file=sys.stderr)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "forecast", help="forecast the steps after a CSV series with a trained forecasting run",
        description="Load the model and scaler of RUN_DIR (a run trained on series data) and forecast its horizon "
                    "after the last row of --data (or after --at DATE, printing the errors against the rows that "
                    "follow). Writes CSV: the date column, one column per series, quantile columns if trained.",
        epilog="example: xformer forecast runs/patchtst_etth1_96 --data ../shared/data/ETTh1.csv "
               "--at '2018-02-20 23:00' --out forecast.csv --plot forecast.png")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--data", required=True, metavar="FILE.csv", help="the run's date column and value columns")
    p.add_argument("--out", metavar="FILE.csv", help="where to write the forecast (default: standard output)")
    p.add_argument("--plot", metavar="FILE.png", help="also plot history, forecast (quantile band) and truth")
    p.add_argument("--at", metavar="DATE", help="forecast after this date of the file instead of after its end")
    p.add_argument("--freq", help="pandas frequency of the dates (e.g. h, 15min) when it cannot be inferred")
    p.add_argument("--quiet", action="store_true",
                   help="no 'wrote ...' lines on stderr; the forecast, its errors against the truth and any "
                        "error message stay")
    p.set_defaults(func=run)
