"""Forecasting defects found by a third audit, each pinned: the Forecaster's own training windows read nothing
after their origin (targets' inputs and past covariates carried forward over a gap that reaches it, future-known
covariates over one that reaches the horizon's end), and a series whose last rows have no y is refused instead of
forecast after values the missing policy made up."""
import numpy as np
import pandas as pd
import pytest
import torch

from xformer.cli import main
from xformer.config import ConfigError
from xformer.data.series import fill_gaps
from xformer.forecast import Forecaster, ForecasterConfig
from xformer.forecast.covariates import series_windows

pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py

TINY = dict(input_len=24, horizon=6, patch_len=8, stride=4, d_model=8, n_layers=1, n_heads=2, epochs=1,
            batch_size=32, device="cpu")
L, H, N = 24, 6, 120
DATES = pd.date_range("2022-01-01", periods=N, freq="h")


def values(k: int, n: int = N) -> np.ndarray:
    t = np.arange(n)
    return (k + 1) * np.sin(2 * np.pi * t / 12 + k) + 5 * k + 0.1 * np.random.default_rng(k).standard_normal(n)


def gap_then_change(x: np.ndarray, last: int) -> tuple[np.ndarray, np.ndarray]:
    """``x`` missing at rows last - 3 .. last (a gap that reaches row ``last``), and the same with 50 added to every
    value after ``last``: what a window may read up to row ``last`` is the same in both."""
    gap = x.copy()
    gap[last - 3:last + 1] = np.nan
    later = gap.copy()
    later[last + 1:] += 50.0
    return gap, later


# ---- 1. the windows fit trains and validates on: inputs carried forward over a gap reaching the origin ----------
@pytest.mark.parametrize("split, lo, hi, origin", [("training", 0, 90, 50), ("validation", 90 - L, N, 100)])
def test_fit_windows_read_no_target_after_their_origin(split, lo, hi, origin):
    """fit(val_size=30) trains on rows [0, 90) and validates on [90 - L, 120) of each series: ``series_windows``
    builds both. The window whose origin (last input row) is ``origin`` ends its inputs in a gap."""
    cfg = ForecasterConfig(**TINY, missing="interpolate")
    gap, later = (pd.Series(v, index=DATES) for v in gap_then_change(values(0), origin))
    stats = (5.0, 2.0)
    first, second = (series_windows(cfg, "s", s, None, stats, None, lo, hi) for s in (gap, later))
    i = origin + 1 - L - lo  # the window's index in its dataset
    torch.testing.assert_close(first[i]["inputs"], second[i]["inputs"], rtol=0, atol=0)
    cut = fill_gaps(gap.iloc[:origin + 1], "interpolate").to_numpy()[-L:]  # the history filled after its cut
    np.testing.assert_allclose(first[i]["inputs"][:, 0].numpy(), (cut - 5.0) / 2.0, atol=1e-5)
    assert not torch.equal(first[i]["targets"], second[i]["targets"])  # the targets did change
    # a window whose inputs end after the gap interpolates across it, as before
    inside = first[i + 2]["inputs"][-6:-2, 0].numpy() * 2.0 + 5.0
    filled = fill_gaps(gap.iloc[:origin + 3], "interpolate").to_numpy()[-6:-2]
    np.testing.assert_allclose(inside, filled, atol=1e-5)


def test_fit_trains_on_those_windows(monkeypatch):
    """fit builds its training and validation windows with ``series_windows`` (the function tested above)."""
    import xformer.forecast.estimator as estimator

    calls = []
    monkeypatch.setattr(estimator, "series_windows",
                        lambda *a: calls.append(a[6:8]) or series_windows(*a))
    df = pd.DataFrame({"unique_id": "s", "ds": DATES, "y": values(0)})
    f = Forecaster(**TINY, missing="interpolate").fit(df.assign(y=gap_then_change(values(0), 50)[0]), val_size=30)
    assert calls == [(0, 90), (90 - L, N)]
    assert f.fit_report["windows"] == 90 - L - H + 1 and f.fit_report["val_windows"] == 30 - H + 1


# ---- 2. covariates inside training windows: past ones up to the origin, future ones up to the horizon's end ----
def test_fit_windows_read_no_past_covariate_after_the_origin_nor_future_one_after_the_horizon():
    cfg = ForecasterConfig(**TINY, missing="interpolate", hist_exog=["x"], futr_exog=["p"], calendar=["hour"])
    y = pd.Series(values(0), index=DATES)
    origin = 60
    end = origin + H  # the last row of that window's horizon
    x_gap, x_later = gap_then_change(values(1), origin)
    p_gap, p_later = gap_then_change(values(2), end)
    stats = ([0.0, 0.0], [1.0, 1.0])
    i = origin + 1 - L

    def window(x, p):
        cov = pd.DataFrame({"x": x, "p": p}, index=DATES)
        return series_windows(cfg, "s", y, cov, (0.0, 1.0), stats, 0, N)[i]

    first, second = window(x_gap, p_gap), window(x_later, p_later)
    torch.testing.assert_close(first["past_covariates"], second["past_covariates"], rtol=0, atol=0)
    torch.testing.assert_close(first["future_covariates"], second["future_covariates"], rtol=0, atol=0)
    past = fill_gaps(pd.Series(x_gap[:origin + 1], index=DATES[:origin + 1]), "interpolate").to_numpy()[-L:]
    np.testing.assert_allclose(first["past_covariates"][:, 0].numpy(), past, atol=1e-5)
    future = fill_gaps(pd.Series(p_gap[:end + 1], index=DATES[:end + 1]), "interpolate").to_numpy()[-(L + H):]
    np.testing.assert_allclose(first["future_covariates"][:, 0].numpy(), future, atol=1e-5)
    hours = DATES[i:end + 1].hour / 23.0 - 0.5  # the calendar column is untouched
    np.testing.assert_allclose(first["future_covariates"][:, 1].numpy(), hours, atol=1e-6)


# ---- 3. a series whose last rows have no y ------------------------------------------------------------------
@pytest.fixture(scope="module")
def futr_model():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    df = pd.concat([pd.DataFrame({"unique_id": f"s{k}", "ds": DATES, "y": values(k), "price": values(k + 2)})
                    for k in range(2)], ignore_index=True)
    history = df.groupby("unique_id").head(N - H).reset_index(drop=True)
    future = df.groupby("unique_id").tail(H).reset_index(drop=True)
    f = Forecaster(**TINY, futr_exog=["price"], missing="interpolate").fit(history)
    return f, history, future


MESSAGE = ("series 's0' has no y in its last 6 rows (from 2022-01-05 18:00:00) but covariate values; the forecast "
           "starts after the last "
           "observed value: drop those rows (future-known covariates go in futr_df / --futr)")


def test_future_rows_appended_to_df_with_empty_y_are_refused(futr_model, tmp_path, capsys):
    f, history, future = futr_model
    appended = pd.concat([history, future.assign(y=np.nan)]).sort_values(["unique_id", "ds"], kind="stable")
    for attempt in (lambda: f.predict(appended), lambda: f.plot(appended, tmp_path / "p.png"),
                    lambda: f.cross_validation(appended, n_windows=1, fit=False)):
        with pytest.raises(ConfigError) as e:
            attempt()
        assert str(e.value) == MESSAGE
    assert not (tmp_path / "p.png").exists()
    # the fix the message names: the rows dropped, their covariates given as futr_df
    forecast = f.predict(history, futr_df=future.drop(columns="y"))
    assert list(forecast.groupby("unique_id")["ds"].min()) == [DATES[N - H]] * 2
    # xformer forecast: exit 2, one line
    run = f.save(tmp_path / "run")
    appended.to_csv(tmp_path / "appended.csv", index=False)
    capsys.readouterr()
    assert main(["forecast", str(run), "--data", str(tmp_path / "appended.csv")]) == 2
    assert capsys.readouterr().err == f"xformer: error: {MESSAGE}\n"
    assert main(["backtest", str(run), "--data", str(tmp_path / "appended.csv"), "--windows", "1"]) == 2
    assert capsys.readouterr().err == f"xformer: error: {MESSAGE}\n"


def test_a_wide_column_ending_before_the_others_ends_its_series_there(tmp_path, capsys):
    """A wide column's empty cells after its last value are outside its series, as the same data in long format
    (each series its own span): its forecast starts after its own last value, nothing is carried forward."""
    wide = pd.DataFrame({"date": DATES, "a": values(0), "b": values(1)})
    f = Forecaster(**TINY, missing="ffill").fit(wide)
    ragged = wide.assign(b=wide["b"].where(wide.index < N - 3))
    out = f.predict(ragged)
    b = out["b"].dropna()
    assert list(b.index) == list(pd.date_range(DATES[N - 4], periods=7, freq="h")[1:])
    long = pd.DataFrame({"unique_id": "b", "ds": DATES[: N - 3], "y": values(1)[: N - 3]})
    np.testing.assert_allclose(b.to_numpy(), f.predict(long)["y_hat"].to_numpy(), rtol=1e-6)
    assert np.isfinite(out["a"].dropna().to_numpy()).all() and out["a"].notna().sum() == 6
    # gaps inside a series stay allowed by the policy
    inside = wide.assign(b=wide["b"].where(~wide.index.isin([N - 5, N - 4])))
    assert np.isfinite(f.predict(inside)[["a", "b"]].to_numpy()).all()


def test_evaluate_names_the_commands_that_score_a_saved_forecaster(tmp_path, capsys):
    """A Forecaster.save folder holds no data to evaluate on (its data section is the estimator's own): one line
    naming backtest, not the registry's 'unknown data'."""
    wide = pd.DataFrame({"date": DATES, "a": values(0)})
    folder = Forecaster(**TINY).fit(wide).save(tmp_path / "saved")
    capsys.readouterr()
    assert main(["evaluate", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is a Forecaster.save folder" in err and "xformer backtest" in err
