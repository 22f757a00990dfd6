"""Missing timestamps, from a fifth audit: a freq inferred from the dates inserts a series' missing rows only when
most of its rows are one step apart and they are at most 10% of its rows (irregular dates get no made-up freq), each
series' own freq is found before any row is inserted (business days beside days are refused, in either order), a
given freq inserts any number but refuses a gap far longer than the series, fit checks every series as predict
does with a message that says why rows were not inserted, and a run modelling a wide table's columns together reads
it as one aligned table (leading and trailing empty cells follow the missing policy)."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xformer.cli import main
from xformer.config import ConfigError
from xformer.data.series import synthetic_frame
from xformer.forecast import Forecaster
from xformer.forecast.frames import read_panel

pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py

TINY = dict(input_len=24, horizon=6, patch_len=8, stride=4, d_model=8, n_layers=1, n_heads=2, epochs=1,
            batch_size=32, device="cpu")
TASKS = Path(__file__).resolve().parents[1] / "tasks"


def frame(ds, uid: str = "a", seed: int = 0) -> pd.DataFrame:
    return pd.DataFrame({"unique_id": uid, "ds": ds, "y": np.random.default_rng(seed).standard_normal(len(ds))})


def refused(call, pattern: str) -> str:
    with pytest.raises(ConfigError, match=pattern) as e:
        call()
    assert "\n" not in str(e.value)
    return str(e.value)


# ---- 1. an inferred freq: most rows one step apart, at most 10% inserted ---------------------------------------
def test_irregular_dates_get_no_made_up_frequency_unless_freq_is_given():
    """Gaps of 1, 2, ..., 60 hours, no two alike: the smallest gap is no grid (1770 rows, 97%, would be made up)."""
    ds = pd.Timestamp("2021-01-01") + pd.to_timedelta(np.r_[0, np.cumsum(np.arange(1, 61))], unit="h")
    for missing in ("error", "ffill"):
        refused(lambda: Forecaster(**TINY, missing=missing).fit(frame(ds)),
                r"^cannot infer a regular frequency from column 'ds'; pass freq")
    given = Forecaster(**TINY, missing="ffill", freq="h").fit(frame(ds))  # the user confirms the grid
    assert len(given.history.series["a"]) == 1831 and int(given.history.series["a"].isna().sum()) == 1770


def test_an_inferred_freq_inserts_at_most_ten_percent_of_a_series_rows():
    hours = pd.date_range("2021-01-01", periods=120, freq="h")
    few, many = hours.delete(np.arange(40, 50)), hours.delete(np.arange(40, 60))  # 10 of 110 rows, 20 of 100
    assert len(Forecaster(**TINY, missing="ffill").fit(frame(few)).history.series["a"]) == 120
    refused(lambda: Forecaster(**TINY, missing="ffill").fit(frame(many)),
            r"cannot infer a regular frequency from column 'ds': series 'a' would need 20 inserted timestamps of "
            r"freq h \(20% of its 100 rows\), more than the 10% .*; pass freq='h' to confirm that grid")
    assert len(Forecaster(**TINY, missing="ffill", freq="h").fit(frame(many)).history.series["a"]) == 120
    # beside a regular series the freq is known, but not confirmed for the gapped one: refused saying why
    both = pd.concat([frame(hours, "r"), frame(many, "a", 1)], ignore_index=True)
    refused(lambda: Forecaster(**TINY, missing="ffill").fit(both),
            r"series 'a' lacks 20 timestamps of freq h \(the first after 2021-01-02 15:00:00; 20% of its 100 rows, "
            r"more than the 10%\), too many to insert .* pass freq='h' to confirm that grid")
    fitted = Forecaster(**TINY, missing="ffill", freq="h").fit(both)
    assert len(fitted.history.series["a"]) == 120


def test_a_refit_infers_the_freq_of_its_own_data_not_the_one_fitted_before():
    hours = pd.date_range("2021-01-01", periods=120, freq="h")
    f = Forecaster(**TINY, missing="ffill").fit(frame(hours))
    irregular = hours[np.r_[0, np.cumsum(np.arange(1, 15))]]
    refused(lambda: f.fit(frame(irregular)), r"^cannot infer a regular frequency from column 'ds'; pass freq")
    assert len(f.history.series["a"]) == 120  # the refused fit changed nothing


# ---- 2. each series' own freq first ---------------------------------------------------------------------------
@pytest.mark.parametrize("daily_first", [True, False])
def test_business_day_and_daily_series_are_refused_whatever_their_order(daily_first):
    daily = frame(pd.date_range("2021-01-01", periods=80, freq="D"), "daily")
    bday = frame(pd.bdate_range("2021-01-04", periods=80), "bday", 1)
    df = pd.concat([daily, bday] if daily_first else [bday, daily], ignore_index=True)
    pair = r"series 'bday' has frequency B but 'daily' has D"  # series sorted by id, whatever the rows' order
    for missing in ("error", "ffill"):
        refused(lambda: Forecaster(**TINY, missing=missing).fit(df), pair + "; forecast them separately or pass freq")
        assert len(read_panel(df, missing=missing).series["bday"]) == 80  # no weekend row inserted


def test_business_days_with_holidays_and_a_saturday_are_not_read_as_days():
    bdays = pd.bdate_range("2021-01-04", periods=120)
    holidays = bdays.delete([10, 50])
    f = Forecaster(**TINY, missing="ffill").fit(frame(holidays))  # two holidays: business days, two rows inserted
    assert f.freq.freqstr == "B" and len(f.history.series["a"]) == 120
    assert set(f.predict(frame(holidays))["ds"].dt.day_of_week) <= set(range(5))
    saturday = holidays.append(pd.DatetimeIndex(["2021-02-06"])).sort_values()
    for missing in ("error", "ffill"):
        refused(lambda: Forecaster(**TINY, missing=missing).fit(frame(saturday)),
                r"^cannot infer a regular frequency from column 'ds'.*pass freq")


# ---- 3. a multichannel run reads a wide table as one aligned table ----------------------------------------------
@pytest.fixture(scope="module")
def joint_run(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("joint")
    table = synthetic_frame(n_rows=400, n_channels=2)
    table.to_csv(folder / "train.csv", index=False)
    args = ["train", str(TASKS / "dlinear_etth1.yaml"), "data.name=csv_series",
            f"data.args.path={folder / 'train.csv'}", "data.args.input_len=48", "data.args.horizon=12", "data.args.missing=ffill", "train.steps=4",
            "train.epochs=null", "train.batch_size=32", "train.device=cpu", "--out", str(folder / "run")]
    assert main(args) == 0
    return folder / "run", table


@pytest.mark.parametrize("where", ["trailing", "leading"])
def test_a_joint_run_forecasts_a_wide_csv_whose_column_has_empty_cells_at_its_end(joint_run, tmp_path, where):
    run, table = joint_run
    rows = table.index[-10:] if where == "trailing" else table.index[:10]
    blank = table.assign(x1=table["x1"].where(~table.index.isin(rows)))
    blank.to_csv(tmp_path / "blank.csv", index=False)
    filled = blank.assign(x1=blank["x1"].ffill().bfill())  # what missing=ffill makes of those cells
    filled.to_csv(tmp_path / "filled.csv", index=False)
    f = Forecaster.load(run)
    assert f.columns == ["x0", "x1"] and f.config.missing == "ffill"
    pd.testing.assert_frame_equal(f.predict(tmp_path / "blank.csv"), f.predict(tmp_path / "filled.csv"))
    for name in ("blank", "filled"):
        assert main(["backtest", str(run), "--data", str(tmp_path / f"{name}.csv"), "--windows", "1", "--out",
                     str(tmp_path / f"{name}_cv.csv"), "--quiet"]) == 0
    cv = pd.read_csv(tmp_path / "blank_cv.csv")
    pd.testing.assert_frame_equal(cv.drop(columns="y"), pd.read_csv(tmp_path / "filled_cv.csv").drop(columns="y"))
    one = Forecaster(**TINY).fit(table)  # one model for all columns: each still spans its own values
    assert len(one.read(tmp_path / "blank.csv").series["x1"]) == 390


# ---- 4. fit checks every series, and says why rows were not inserted ---------------------------------------------
def test_a_gap_far_longer_than_the_series_is_refused_at_fit_with_the_fix_whatever_the_freq_and_policy():
    """Three years between two stretches of 50 hourly rows: no fill should bridge them, and windows across the gap
    must not train either (before, fit trained on them and only predict refused, advising a policy already set)."""
    a = pd.date_range("2021-01-01", periods=200, freq="h")
    first = pd.date_range("2018-01-01", periods=50, freq="h")
    b = first.append(pd.date_range(first[-1] + pd.Timedelta(days=3 * 365), periods=50, freq="h"))
    df = pd.concat([frame(a, "a"), frame(b, "b", 1)], ignore_index=True)
    gap = (r"series 'b' has a gap from 2018-01-03 01:00:00 to 2021-01-02 01:00:00 \(26279 missing timestamps of "
           r"freq h\) .*; cut the series at the gap .*, or split it there into two unique_ids")
    for options in (dict(missing="ffill"), dict(missing="error"), dict(missing="ffill", freq="h")):
        message = refused(lambda: Forecaster(**TINY, **options).fit(df), gap)
        assert "pass missing" not in message
    refused(lambda: read_panel(df, missing="ffill", freq="h"), gap)  # a given freq: refused when read, never skipped
    f = Forecaster(**TINY, missing="ffill").fit(frame(a, "a"))
    for call in (lambda: f.predict(df), lambda: f.cross_validation(df, fit=False)):
        refused(call, gap)
