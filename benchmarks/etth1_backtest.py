"""ETTh1 as seven long-format series: a rolling-origin backtest of the Forecaster (issue 17).

    OMP_NUM_THREADS=1 python benchmarks/etth1_backtest.py [--data ../shared/data/ETTh1.csv]
        [--input-len 336] [--horizon 96] [--epochs 20] [--patience 3] [--n-windows 117] [--step 24]
        [--d-model 16] [--n-layers 3] [--d-ff 128] [--dropout 0.3] [--batch-size 128] [--lr 1e-4]
        [--out benchmarks/results/etth1_backtest.json] [--overwrite]

The defaults are the run recorded in benchmarks/README.md (about 5 min on one CPU thread). 117 windows a
day apart tile the 4 test months exactly.

The seven columns of ETTh1 (HUFL, HULL, MUFL, MULL, LUFL, LULL, OT) are melted into one long frame
(``unique_id, ds, y``). One Forecaster (PatchTST-like, channel independence: one network for all
seven series) is fitted on the published 12/4 months: rows [0, 8640) train, rows [8640, 11520) the
validation part (``fit(val_size=2880, early_stopping=P)``, the weights of the best validation loss
kept); each series is scaled by its own training rows, as the papers' StandardScaler. Then
``cross_validation(fit=False)`` on rows [0, 14400) (the test months end at row 14400; later rows are
unused, as in the papers) scores ``n_windows`` origins ``step`` hours apart whose horizons all lie
in the test months [11520, 14400), without refitting. The seasonal naive (24 h: the last day
repeated) and last-value forecasts are computed here on the same windows.

Errors, per series and overall (pooled over series, windows and steps): MSE and MAE on the
standardised scale (each series' training mean and scale, the papers' scale); MASE (season 24, the
in-sample history being each series' rows up to its first cutoff) and sMAPE (percent) on the
original scale, from ``xformer.metrics_forecast.evaluate``. This is not the papers' protocol (they
score all 2785 test windows with a model trained for 100 epochs), so the numbers are not comparable
to the published table. Writes benchmarks/results/etth1_backtest.json (``--out``); an existing file is
replaced only with ``--overwrite`` (the recorded run is not lost to a trial run), as the CLI's outputs.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks/results/etth1_backtest.json"
COLUMNS = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
MONTH = 30 * 24
TRAIN, VAL, TEST = 12 * MONTH, 4 * MONTH, 4 * MONTH  # 8640, 2880, 2880 hours


def long_frame(path: Path) -> pd.DataFrame:
    wide = pd.read_csv(path, parse_dates=["date"])
    wide = wide.iloc[:TRAIN + VAL + TEST]  # rows after 14400 are unused, as in the papers
    long = wide.melt(id_vars="date", value_vars=COLUMNS, var_name="unique_id", value_name="y")
    return long.rename(columns={"date": "ds"})[["unique_id", "ds", "y"]].reset_index(drop=True)


def first_rows(df: pd.DataFrame, n: int) -> pd.DataFrame:
    return df.groupby("unique_id", sort=False).head(n).reset_index(drop=True)


def baselines(cv: pd.DataFrame, df: pd.DataFrame, h: int) -> dict[str, pd.DataFrame]:
    """Seasonal naive (24 h) and last-value forecasts for the windows of ``cv`` (same rows, same order)."""
    out = {"seasonal_naive_24": cv.copy(), "last_value": cv.copy()}
    for name in out:
        out[name]["y_hat"] = np.nan
    for key, series in df.groupby("unique_id", sort=False):
        values = series["y"].to_numpy(float)
        position = {d: i for i, d in enumerate(series["ds"])}
        rows = cv.index[cv["unique_id"] == key]
        for cutoff, idx in cv.loc[rows].groupby("cutoff", sort=False).groups.items():
            end = position[cutoff] + 1  # the history is values[:end]
            assert len(idx) == h
            step = np.arange(h)
            out["seasonal_naive_24"].loc[idx, "y_hat"] = values[end - 24 + step % 24]
            out["last_value"].loc[idx, "y_hat"] = values[end - 1]
    return out


def standardised(frame: pd.DataFrame, stats: dict) -> pd.DataFrame:
    z = frame.copy()
    mean = z["unique_id"].map(lambda k: stats[k][0])
    scale = z["unique_id"].map(lambda k: stats[k][1])
    for column in ("y", "y_hat"):
        z[column] = (z[column] - mean) / scale
    return z


def scores(frame: pd.DataFrame, df: pd.DataFrame, stats: dict) -> pd.DataFrame:
    from xformer.metrics_forecast import evaluate

    original = evaluate(frame[["unique_id", "ds", "cutoff", "y", "y_hat"]], train_df=df, season=24)
    z = evaluate(standardised(frame[["unique_id", "ds", "cutoff", "y", "y_hat"]], stats))
    return pd.DataFrame({"mse_std": z["mse"], "mae_std": z["mae"], "mase_orig": original["mase"],
                         "smape_orig": original["smape"], "mse_orig": original["mse"],
                         "mae_orig": original["mae"]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/ETTh1.csv")
    parser.add_argument("--input-len", type=int, default=336)
    parser.add_argument("--horizon", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--n-windows", type=int, default=117)
    parser.add_argument("--step", type=int, default=24)
    parser.add_argument("--d-model", type=int, default=16)
    parser.add_argument("--n-layers", type=int, default=3)
    parser.add_argument("--d-ff", type=int, default=128)
    parser.add_argument("--dropout", type=float, default=0.3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    args = parser.parse_args()
    from xformer.config import ConfigError
    from xformer.folders import output_file

    try:  # checked before minutes of training, not after
        output_file(args.out, "--out", args.overwrite, inputs=[args.data], suffixes=(".json",))
    except ConfigError as e:
        print(f"etth1_backtest.py: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    torch.set_num_threads(args.threads)
    from xformer.forecast import Forecaster

    H = args.horizon
    span = H + (args.n_windows - 1) * args.step
    if span > TEST:
        raise SystemExit(f"{args.n_windows} windows every {args.step} h of h={H} span {span} h, more than the "
                         f"{TEST} test hours")
    started = time.time()
    df = long_frame(args.data)
    settings = dict(input_len=args.input_len, horizon=H, model="patchtst", patch_len=16, stride=8,
                    d_model=args.d_model, n_layers=args.n_layers, n_heads=4, d_ff=args.d_ff, dropout=args.dropout,
                    epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=0, device="cpu")
    f = Forecaster(**settings)
    t0 = time.time()
    f.fit(first_rows(df, TRAIN + VAL), val_size=VAL, early_stopping=args.patience)
    fit_s = time.time() - t0
    t0 = time.time()
    cv = f.cross_validation(df, n_windows=args.n_windows, step=args.step, h=H, fit=False)
    cv_s = time.time() - t0
    # every forecast lies in the test months, and every window reads only rows before its cutoff + 1
    ds_min = df.groupby("unique_id")["ds"].apply(lambda s: s.iloc[TRAIN + VAL]).iloc[0]
    assert cv["ds"].min() >= ds_min and cv["cutoff"].min() >= ds_min - pd.Timedelta(hours=1)
    frames = {"forecaster": cv, **baselines(cv, df, H)}
    tables = {name: scores(frame, df, f.stats) for name, frame in frames.items()}
    total_s = time.time() - started

    ids = COLUMNS + ["overall"]
    print(f"ETTh1, 7 long-format series, {args.n_windows} windows every {args.step} h, h={H}, "
          f"first cutoff {cv['cutoff'].min()}, last {cv['cutoff'].max()}")
    print(f"fit: {f.fit_report}")
    header = f"{'series':9s}" + "".join(f" | {n:>31s}" for n in frames)
    print(header + "\n" + f"{'':9s}" + " | MSEz   MAEz   MASE   sMAPE%  " * len(frames))
    for k in ids:
        cells = "".join(f" | {t.loc[k, 'mse_std']:.4f} {t.loc[k, 'mae_std']:.4f} {t.loc[k, 'mase_orig']:.3f} "
                        f"{t.loc[k, 'smape_orig']:7.2f}" for t in tables.values())
        print(f"{k:9s}{cells}")
    print(f"fit {fit_s:.0f} s, cross_validation {cv_s:.1f} s, total {total_s:.0f} s")

    record = {
        "command": "OMP_NUM_THREADS=1 python benchmarks/etth1_backtest.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k not in ("data", "out", "overwrite")),
        "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, torch {torch.__version__}, {args.threads} thread(s), shared 2-core CPU",
        "forecaster": settings, "split_rows": {"train": [0, TRAIN], "val": [TRAIN, TRAIN + VAL],
                                               "test": [TRAIN + VAL, TRAIN + VAL + TEST]},
        "fit_report": {k: (v if not isinstance(v, float) else round(v, 6)) for k, v in f.fit_report.items()},
        "windows": {"n_windows": args.n_windows, "step": args.step, "h": H,
                    "first_cutoff": str(cv["cutoff"].min()), "last_cutoff": str(cv["cutoff"].max()),
                    "forecast_rows": len(cv)},
        "scales": {"mse_std, mae_std": "standardised by each series' training mean and scale (the papers' scale)",
                   "mase_orig": "original units, season 24, in-sample = each series' rows up to its first cutoff; "
                                "overall = mean of the per-series values",
                   "smape_orig, mse_orig, mae_orig": "original units (sMAPE in percent)"},
        "results": {name: {k: {m: round(float(v), 6) for m, v in t.loc[k].items()} for k in ids}
                    for name, t in tables.items()},
        "seconds": {"fit": round(fit_s, 1), "cross_validation": round(cv_s, 1), "total": round(total_s, 1)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
