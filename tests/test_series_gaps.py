"""Missing timestamps on the train path (``csv_series``, ``ett``), as the Forecaster reads them (docs/series.md,
"Missing timestamps"): a timestamp of the series' grid (inferred, or ``data.args.freq``) without a row becomes a
row with missing values, which ``data.args.missing`` then refuses (the default) or fills; windows never treat two
rows hours apart as one step. Dates no grid holds are refused in one line; files without gaps read as before."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from xformer.cli import main
from xformer.config import ConfigError
from xformer.data.series import csv_series, ett, read_raw_series, series_bundle

TASKS = Path(__file__).resolve().parents[1] / "tasks"
ETTH1 = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ETTh1.csv"
L, H = 24, 8
N, GAP = 400, range(100, 130)  # 30 of 370 rows: few enough for an inferred freq to insert (at most 10%)


def table(n: int = N, start=None) -> pd.DataFrame:
    dates = pd.date_range("2020-01-01", periods=n, freq="h") if start is None else start + np.arange(n)
    t = np.arange(n)
    return pd.DataFrame({"date": dates, "a": np.sin(t / 5), "b": np.cos(t / 7) + t / n})


def write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def files(tmp_path) -> tuple[Path, Path]:
    """(the table without the rows GAP, the table with those rows present but their values empty)."""
    full = table()
    gapped = write(full.drop(index=GAP), tmp_path / "gap.csv")
    empty = write(full.assign(**{c: full[c].where(~full.index.isin(GAP)) for c in ("a", "b")}),
                  tmp_path / "empty.csv")
    return gapped, empty


def refused(call, pattern: str) -> str:
    with pytest.raises(ConfigError, match=pattern) as e:
        call()
    assert "\n" not in str(e.value)
    return str(e.value)


def windows(bundle) -> list[torch.Tensor]:
    return [torch.stack([torch.cat([item["inputs"], item["targets"]]) for item in split])
            for split in (bundle.train, bundle.val, bundle.test)]


def assert_same_bundle(a, b) -> None:
    for x, y in zip(windows(a), windows(b)):
        assert x.shape == y.shape and torch.equal(x, y)
    if a.scaler is not None or b.scaler is not None:
        assert np.array_equal(a.scaler.mean_, b.scaler.mean_) and np.array_equal(a.scaler.scale_, b.scaler.scale_)


# ---- the defect: rows hours apart read as one step -------------------------------------------------------------
def test_the_repro_is_refused_in_one_line_naming_the_count_the_first_and_the_fix(tmp_path):
    d = pd.date_range("2020-01-01", periods=400, freq="h")
    df = pd.DataFrame({"date": d, "a": np.sin(np.arange(400) / 5)}).drop(index=range(100, 150))
    path = write(df, tmp_path / "gap.csv")
    line = refused(lambda: csv_series(str(path), input_len=24, horizon=8), "lacks 50 timestamps")
    assert "of freq h" in line and f"(the first {d[100]}" in line
    assert "data.args.missing=ffill" in line and "interpolate" in line and "add those rows" in line
    # 50 of 350 rows: more than an inferred freq inserts (as the Forecaster), so the grid is confirmed by freq
    assert "data.args.freq=h" in line
    rows = write(df.reindex(range(400)).assign(date=d), tmp_path / "rows.csv")  # the rows present, values empty
    assert_same_bundle(csv_series(str(path), input_len=24, horizon=8, missing="ffill", freq="h"),
                       csv_series(str(rows), input_len=24, horizon=8, missing="ffill"))


def test_few_missing_timestamps_are_refused_naming_missing_not_freq(files):
    line = refused(lambda: csv_series(str(files[0]), input_len=L, horizon=H), "lacks 30 timestamps of freq h")
    assert f"(the first {pd.Timestamp('2020-01-01') + pd.Timedelta(hours=100)})" in line
    assert "data.args.missing=ffill" in line and "data.args.freq" not in line


def test_xformer_train_refuses_the_gapped_file_with_exit_2_and_no_traceback(files, tmp_path, capsys):
    capsys.readouterr()
    args = ["train", str(TASKS / "dlinear_etth1.yaml"), "data.name=csv_series", f"data.args.path={files[0]}",
            f"data.args.input_len={L}", f"data.args.horizon={H}", "train.steps=1", "train.epochs=null",
            "train.device=cpu", "--out", str(tmp_path / "run")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("xformer: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert "lacks 30 timestamps of freq h" in err and not (tmp_path / "run").exists()


@pytest.mark.parametrize("missing", ["interpolate", "ffill"])
def test_filled_the_gapped_file_is_the_file_with_its_missing_rows_present_and_empty(files, missing):
    gapped, empty = files
    a = csv_series(str(gapped), input_len=L, horizon=H, missing=missing)
    b = csv_series(str(empty), input_len=L, horizon=H, missing=missing)
    assert_same_bundle(a, b)
    # on the grid: 400 rows, so the windows of 400 rows, none from row 99 straight to the row 50 hours later
    full = csv_series(str(write(table(), gapped.with_name("full.csv"))), input_len=L, horizon=H)
    assert [len(s) for s in windows(a)] == [len(s) for s in windows(full)]


def test_the_run_records_the_grid_of_its_rows(files, tmp_path):
    bundle = csv_series(str(files[0]), input_len=L, horizon=H, missing="ffill")
    bundle.save(tmp_path)
    stats = json.loads((tmp_path / "series_scaler.json").read_text())
    assert stats["freq"] == "h"  # the rows are on an hourly grid now, not unevenly spaced


# ---- what is not a grid with some rows missing -----------------------------------------------------------------
def test_too_many_missing_for_an_inferred_freq_asks_for_data_args_freq_which_confirms_the_grid(tmp_path):
    full = table()
    path = write(full.drop(index=range(100, 200)), tmp_path / "many.csv")  # 100 of 300 rows: a third
    line = refused(lambda: csv_series(str(path), input_len=L, horizon=H, missing="ffill"), "lacks 100 timestamps")
    assert "data.args.freq=h" in line
    confirmed = csv_series(str(path), input_len=L, horizon=H, missing="interpolate", freq="h")
    blank = full.assign(a=full["a"].where(~full.index.isin(range(100, 200))),
                        b=full["b"].where(~full.index.isin(range(100, 200))))
    same = csv_series(str(write(blank, tmp_path / "blank.csv")), input_len=L, horizon=H, missing="interpolate")
    assert_same_bundle(confirmed, same)


def test_irregular_dates_no_grid_holds_are_refused_naming_the_ways_out(tmp_path):
    rng = np.random.default_rng(0)
    dates = pd.Timestamp("2020-01-01") + pd.to_timedelta(np.cumsum(rng.integers(1, 300, N)), unit="min")
    path = write(table().assign(date=dates), tmp_path / "events.csv")
    line = refused(lambda: csv_series(str(path), input_len=L, horizon=H), "not evenly spaced")
    assert "data.args.freq" in line and "data.args.date_column=null" in line
    # the rows taken as steps, as the message says
    rows = csv_series(str(path), input_len=L, horizon=H, date_column=None, columns=["a", "b"])
    assert len(rows.train) == int(0.7 * N) - L - H + 1


def test_a_given_freq_the_rows_are_not_on_is_refused(files, tmp_path):
    refused(lambda: csv_series(str(files[0]), input_len=L, horizon=H, freq="D"), "data.args.freq")
    refused(lambda: csv_series(str(files[0]), input_len=L, horizon=H, freq=1), "whole-number step")
    far = table().assign(date=lambda f: f["date"].where(f.index < 399, pd.Timestamp("2030-01-01")))
    refused(lambda: csv_series(str(write(far, tmp_path / "far.csv")), input_len=L, horizon=H, freq="h",
                               missing="ffill"), "too long to fill")


# ---- integer steps and numbered rows ---------------------------------------------------------------------------
def test_integer_steps_with_gaps_follow_the_same_rule(tmp_path):
    steps = table(start=0)
    gapped = write(steps.drop(index=GAP), tmp_path / "steps.csv")
    line = refused(lambda: csv_series(str(gapped), input_len=L, horizon=H), "lacks 30 timestamps of freq 1")
    assert "(the first 100)" in line
    blank = steps.assign(a=steps["a"].where(~steps.index.isin(GAP)), b=steps["b"].where(~steps.index.isin(GAP)))
    assert_same_bundle(csv_series(str(gapped), input_len=L, horizon=H, missing="interpolate"),
                       csv_series(str(write(blank, tmp_path / "blank.csv")), input_len=L, horizon=H,
                                  missing="interpolate"))
    # steps of 5: a grid of 5, nothing missing, read as before
    fives = write(table(start=0).assign(date=lambda f: f["date"] * 5), tmp_path / "fives.csv")
    assert_same_bundle(csv_series(str(fives), input_len=L, horizon=H),
                       series_bundle(read_raw_series(str(fives)), L, H))


# ---- files without gaps: the same bundle as before -------------------------------------------------------------
@pytest.mark.parametrize("kind", ["dates", "steps", "numbered"])
def test_a_file_without_gaps_gives_the_bundle_it_gave_before(tmp_path, kind):
    frame = table(start=0 if kind == "steps" else None)
    frame = frame.drop(columns="date") if kind == "numbered" else frame
    path = write(frame, tmp_path / "x.csv")
    column = None if kind == "numbered" else "date"
    before = series_bundle(read_raw_series(str(path), column), L, H)  # read without any grid
    assert_same_bundle(csv_series(str(path), column, input_len=L, horizon=H), before)


@pytest.mark.skipif(not ETTH1.is_file(), reason=f"ETTh1.csv not found at {ETTH1} (reference data)")
def test_etth1_reads_as_before():
    before = series_bundle(read_raw_series(str(ETTH1), columns=["OT"]), 96, 24, "ett")
    now = ett(str(ETTH1), columns=["OT"], input_len=96, horizon=24)
    assert_same_bundle(now, before)


def test_ett_follows_the_same_rule(tmp_path):
    full = table(n=20 * 30 * 24 + 10)  # 20 months of 30 days of hours: what split="ett" reads
    drop = range(9000, 9020)  # in the validation months
    gapped = write(full.drop(index=drop), tmp_path / "ett_gap.csv")
    refused(lambda: ett(str(gapped), input_len=L, horizon=H), "lacks 20 timestamps of freq h")
    blank = full.assign(a=full["a"].where(~full.index.isin(drop)), b=full["b"].where(~full.index.isin(drop)))
    assert_same_bundle(ett(str(gapped), input_len=L, horizon=H, missing="interpolate"),
                       ett(str(write(blank, tmp_path / "ett_blank.csv")), input_len=L, horizon=H,
                           missing="interpolate"))


# ---- a run trained on a gapped file, and its forecasts ---------------------------------------------------------
def _train(csv: Path, run: Path, *overrides: str) -> dict:
    args = ["train", str(TASKS / "dlinear_etth1.yaml"), "data.name=csv_series", f"data.args.path={csv}",
            f"data.args.input_len={L}", f"data.args.horizon={H}", "data.args.missing=ffill", *overrides,
            "train.steps=4", "train.epochs=null", "train.batch_size=32", "train.device=cpu", "--out", str(run)]
    assert main(args) == 0
    return json.loads((run / "metrics.json").read_text())


def test_a_run_on_a_gapped_file_trains_and_forecasts_as_on_the_file_with_its_rows_present(files, tmp_path):
    gapped, empty = files
    a, b = _train(gapped, tmp_path / "gap_run"), _train(empty, tmp_path / "empty_run")
    assert a["test_mse"] == b["test_mse"] and a["val_mse"] == b["val_mse"]
    outs = []
    for run, data in (("gap_run", gapped), ("gap_run", empty), ("empty_run", gapped)):
        out = tmp_path / f"{run}_{data.stem}.csv"
        assert main(["forecast", str(tmp_path / run), "--data", str(data), "--out", str(out)]) == 0
        outs.append(pd.read_csv(out))
    for other in outs[1:]:
        pd.testing.assert_frame_equal(outs[0], other)
    assert main(["evaluate", str(tmp_path / "gap_run")]) == 0


def test_a_run_given_data_args_freq_forecasts_at_it(tmp_path, capsys):
    path = write(table().drop(index=range(100, 200)), tmp_path / "many.csv")  # too many for an inferred freq
    _train(path, tmp_path / "run", "data.args.freq=h")
    out = tmp_path / "f.csv"
    assert main(["forecast", str(tmp_path / "run"), "--data", str(path), "--out", str(out)]) == 0
    assert len(pd.read_csv(out)) == H
