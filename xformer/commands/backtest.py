"""`xformer backtest RUN_DIR [RUN_DIR ...] --data FILE --windows N [--step S] [--h H] [--out cv.csv] [--metrics m.csv]`.

A rolling-origin backtest of a trained model (``Forecaster.cross_validation`` with ``fit=False``): for
every series of FILE (CSV or Parquet; long ``unique_id, ds, y`` or the run's wide table) the last N windows of h steps,
S steps apart, are forecast from the rows before each window's cutoff only. The model is used as it
is, so FILE's backtest period should lie after the data the run was trained on: a warning counts the
windows that forecast steps at or before a series' end of training (validation included; recorded by
Forecaster.save, and for an ``xformer train`` run in its series_scaler.json). Writes the forecasts
with the truth and the cutoff (CSV: unique_id, ds, cutoff, y, y_hat, quantile columns) and prints the
overall errors as one JSON line (MSE, MAE, sMAPE, MASE against the seasonal naive forecast of period
--season on each series' rows before its first cutoff, pinball and CRPS for quantiles; ``mase_series``: the
series whose MASE is defined, which the overall MASE averages, the others named in a warning); --metrics
writes them per series (CSV, or Parquet for a .parquet name, as --out). --static FILE gives static covariates
(default: those the model was fitted with).
Several RUN_DIRs of one task and data are backtested as their ensemble (forecasts averaged; their lookbacks
may differ, each reading its own last steps of the longest window).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from ..config import ConfigError


def _run(args: argparse.Namespace) -> None:
    from ..data.tables import require_engine_for_output, table_data
    from ..folders import output_file, write_atomically
    from ..forecast import Forecaster
    from ..forecast.backtest import command_words, cross_validation
    from ..forecast.folder import load_for_command
    from ..forecast.statics import static_for_command
    from ..metrics_forecast import evaluate, overall_json, refuse_overall_id

    inputs = [path for path in (args.data, args.static) if path is not None]
    for option, path in (("--out", args.out), ("--metrics", args.metrics)):
        if path is not None:
            output_file(path, option, args.overwrite, inputs, runs=args.run_dir)
            require_engine_for_output(path, option)
    if args.out is not None and args.metrics is not None and Path(args.out).resolve() == Path(args.metrics).resolve():
        raise ConfigError(f"--out and --metrics are both {args.out}; give two file names")
    if args.season < 1:
        raise ConfigError(f"--season must be a whole number >= 1, got {args.season}")
    forecaster = load_for_command(Forecaster, args.run_dir, args.freq, args.h, windows=args.windows, step=args.step)
    if args.static is not None and not forecaster.config.stat_exog:
        raise ConfigError(f"--static {args.static} gives static covariates, but the run in {' '.join(args.run_dir)} "
                          "was fitted without any; drop --static, or backtest a run fitted with them")
    if args.missing is not None:  # the policy for this data's gaps, in place of the one the run was fitted with
        forecaster.config = dataclasses.replace(forecaster.config, missing=args.missing)
    panel = forecaster.read(args.data)
    refuse_overall_id(panel.ids, f"in {args.data}")  # the errors are scored per series and overall: before any work
    static = static_for_command(args.static, forecaster.config.stat_exog)  # in the option's words
    cv = cross_validation(forecaster, panel, n_windows=args.windows, step=args.step, h=args.h, fit=False,
                          static_df=static, say=command_words)  # its warnings (windows in the data of fit, series left
    # out) are printed by run() as "xformer: warning:" lines
    table = table_data(cv, args.out, "%.8g")
    if args.out:
        write_atomically(args.out, table)
        if not args.quiet:
            print(f"wrote {cv['unique_id'].nunique()} series x {args.windows} windows to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(table)
    metrics = evaluate(cv, train_df=panel.to_long(), season=args.season)  # read on its grid: a row at every step
    if args.metrics:
        write_atomically(args.metrics, table_data(metrics, args.metrics, "%.6g", index=True))
        if not args.quiet:
            print(f"wrote {args.metrics}", file=sys.stderr)
    print(json.dumps({"series": int(cv["unique_id"].nunique()), "windows": args.windows, **overall_json(metrics)}),
          file=sys.stderr if not args.out else sys.stdout)


def run(args: argparse.Namespace) -> None:
    """``_run``, with its warnings (e.g. the series left out) printed as plain lines, each once."""
    from ..forecast.frames import printing_short_series

    printing_short_series(_run, args)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "backtest", help="rolling-origin backtest of a forecasting run on series (CSV or Parquet, long or wide)",
        description="Forecast the last --windows windows of every series of --data with the model of RUN_DIR (a run "
                    "trained on series data, or a Forecaster.save folder), each from the rows before its cutoff, and "
                    "score them: CSV of forecasts with the truth and cutoff, and the errors (MSE, MAE, sMAPE, MASE, "
                    "pinball and CRPS for quantiles) overall as JSON (per series with --metrics).",
        epilog="example: xformer backtest runs/my_forecaster --data long.csv --windows 4 --step 24 --out cv.csv "
               "--metrics per_series.csv")
    p.add_argument("run_dir", nargs="+", metavar="RUN_DIR",
                   help="a run, or several runs of one recipe and data (seeds): their forecasts are averaged")
    p.add_argument("--data", required=True, metavar="FILE",
                   help="a CSV or Parquet file, long (unique_id, ds, y) or the run's wide table")
    p.add_argument("--windows", type=int, required=True, metavar="N", help="number of windows per series")
    p.add_argument("--step", type=int, metavar="S", help="steps between window starts (default: h)")
    p.add_argument("--h", type=int, metavar="H", help="steps per window (1 to the run's horizon; default: the horizon; "
                   "a model with future-known covariates reads them up to the horizon's end, so H is the horizon)")
    p.add_argument("--season", type=int, default=1, metavar="M", help="MASE's seasonal naive period (default 1)")
    p.add_argument("--static", metavar="FILE", help="static covariates (unique_id and the model's stat_exog "
                                                        "columns; default: those of its fit)")
    p.add_argument("--missing", choices=("error", "ffill", "interpolate"),
                   help="how to fill missing values and timestamps of --data (default: the policy the run was fitted "
                   "with; a gap is only ever filled from rows up to its forecast origin)")
    p.add_argument("--freq", help="pandas frequency of the dates (e.g. h, 15min), or the step of an integer ds "
                   "(e.g. 1), when it cannot be inferred")
    p.add_argument("--out", metavar="FILE.csv", help="where to write the forecasts: CSV, or Parquet for a .parquet "
                   "name (default: CSV on standard output; the errors then go to standard error)")
    p.add_argument("--metrics", metavar="FILE.csv", help="also write the errors per series (and overall)")
    p.add_argument("--overwrite", action="store_true", help="replace --out / --metrics if they exist (never an "
                   "input or a file of the run folder)")
    p.add_argument("--quiet", action="store_true", help="no 'wrote ...' lines on stderr")
    p.set_defaults(func=run)
