"""Static (per-series) covariates of the long-format Forecaster (issue 17): ``fit(df, static_df=...)``,
one extra token, statics that decide the forecast lower the error, save/load, one-line errors; and CRPS."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from xformer.batch import INPUTS, STATIC_COVARIATES
from xformer.cli import main
from xformer.config import ConfigError
from xformer.core import CoreConfig
from xformer.forecast import Forecaster, evaluate
from xformer.metrics_forecast import crps, pinball
from xformer.tokenizers.series_covariates import series_patches_covariates

LAG = 12
TINY = dict(input_len=LAG, horizon=6, patch_len=6, stride=6, d_model=16, n_layers=1, n_heads=2, epochs=1,
            batch_size=32, device="cpu", lr=3e-3)


def lag_frame(n=240, k_series=8, c=0.9, seed=0):
    """y_t = sign_k * c * y_{t-12} + e_t. Within any 12 steps the values are uncorrelated (gamma(j) = c gamma(12-j)
    = c^2 gamma(j) for 0 < j < 12), so an input window of 12 cannot tell the sign; the next 6 steps are
    sign_k * c times its first 6. The static column ``sign`` says it; ``other`` is noise."""
    rng = np.random.default_rng(seed)
    parts, rows = [], []
    for k in range(k_series):
        sign = 1.0 if k % 2 == 0 else -1.0
        e = rng.standard_normal(n + 10 * LAG)  # a burn-in of 10 lags, then n rows
        y = e.copy()
        for t in range(LAG, len(e)):
            y[t] += sign * c * y[t - LAG]
        parts.append(pd.DataFrame({"unique_id": f"s{k}", "ds": pd.date_range("2022-01-01", periods=n, freq="h"),
                                   "y": y[-n:]}))
        rows.append({"unique_id": f"s{k}", "sign": sign, "other": rng.standard_normal()})
    return pd.concat(parts, ignore_index=True), pd.DataFrame(rows)


@pytest.fixture(scope="module")
def data():
    return lag_frame()


@pytest.fixture(scope="module")
def fitted(data):
    df, static = data
    return Forecaster(**TINY, quantiles=[0.1, 0.5, 0.9], stat_exog=["sign", "other"]).fit(df, static_df=static)


def test_statics_that_decide_the_forecast_lower_the_error(data):
    df, static = data
    options = {**TINY, "epochs": 10}
    plain = evaluate(Forecaster(**options).cross_validation(df, n_windows=4, step=6)).loc["overall", "mse"]
    f = Forecaster(**options, stat_exog=["sign", "other"])
    with_static = evaluate(f.cross_validation(df, n_windows=4, step=6, static_df=static)).loc["overall", "mse"]
    # unconditional variance 1 / (1 - 0.81) = 5.3 without the sign; the noise variance 1 is the floor with it
    assert plain > 4.0 and with_static < 0.5 * plain, (plain, with_static)
    # standardised with the training series' statistics (one mean and scale per column, over the series)
    f = Forecaster(**TINY, stat_exog=["sign", "other"]).fit(df, static_df=static)  # cross_validation left f unfitted
    np.testing.assert_allclose(f.static_stats[0], static[["sign", "other"]].mean().to_numpy())
    np.testing.assert_allclose(f.static_stats[1], static[["sign", "other"]].std(ddof=0).to_numpy())


def test_static_token_shape_and_parameters():
    core = CoreConfig(d_model=8, n_layers=1, n_heads=2)
    plain = series_patches_covariates(core, input_len=12, horizon=6, n_future=1, patch_len=6, stride=6)
    static = series_patches_covariates(core, input_len=12, horizon=6, n_future=1, patch_len=6, stride=6, n_static=3)
    assert static.n_tokens == plain.n_tokens + 1
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(static) - count(plain) == 3 * 8 + 8 + 8  # W_s (d x S), b_s, the static token's embedding
    batch = {INPUTS: torch.randn(5, 12, 1), "future_covariates": torch.randn(5, 18, 1),
             STATIC_COVARIATES: torch.randn(5, 3)}
    static.eval()
    tokens = static(batch).x
    assert tokens.shape == (5, plain.n_tokens + 1, 8)
    expected = static.static_proj(batch[STATIC_COVARIATES]) + static.static_position(1)
    torch.testing.assert_close(tokens[:, -1], expected)  # appended last
    with pytest.raises(ValueError, match=r"static_covariates must be \(batch, 3\), got \(5, 2\)"):
        static({**batch, STATIC_COVARIATES: torch.randn(5, 2)})


def test_save_and_load_round_trip_forecasts_with_statics(data, fitted, tmp_path):
    df, static = data
    out = fitted.predict(df)
    pd.testing.assert_frame_equal(fitted.predict(df, static_df=static), out)  # the remembered one is the same
    flipped = fitted.predict(df, static_df=static.assign(sign=-static["sign"]))
    assert np.abs(flipped["y_hat"] - out["y_hat"]).max() > 0  # the statics are read
    run = fitted.save(tmp_path / "run")
    assert (run / "static_df.csv").is_file() and json.loads((run / "forecaster.json").read_text())["static_stats"]
    loaded = Forecaster.load(run)
    pd.testing.assert_frame_equal(loaded.static, fitted.static)
    pd.testing.assert_frame_equal(loaded.predict(df), out)
    cv = loaded.cross_validation(df, n_windows=2, fit=False)
    pd.testing.assert_frame_equal(cv, fitted.cross_validation(df, n_windows=2, fit=False, static_df=static))
    # a series not seen in fit: its static row comes in static_df
    new = df[df["unique_id"] == "s0"].assign(unique_id="new")
    extra = pd.concat([static, static.iloc[[0]].assign(unique_id="new")], ignore_index=True)
    np.testing.assert_allclose(loaded.predict(new, static_df=extra)["y_hat"], out["y_hat"][:6], atol=1e-5)
    # the commands: the run folder's statics, or --static FILE
    df.to_csv(tmp_path / "long.csv", index=False)
    static.to_csv(tmp_path / "static.csv", index=False)
    for name, extra_args in (("f.csv", []), ("f_static.csv", ["--static", str(tmp_path / "static.csv")])):
        assert main(["forecast", str(run), "--data", str(tmp_path / "long.csv"), "--out", str(tmp_path / name),
                     "--quiet", *extra_args]) == 0
        np.testing.assert_allclose(pd.read_csv(tmp_path / name)["y_hat"], out["y_hat"], rtol=1e-6)
    assert main(["backtest", str(run), "--data", str(tmp_path / "long.csv"), "--windows", "2", "--out",
                 str(tmp_path / "cv.csv"), "--static", str(tmp_path / "static.csv"), "--quiet"]) == 0
    np.testing.assert_allclose(pd.read_csv(tmp_path / "cv.csv")["y_hat"], cv["y_hat"], rtol=1e-6)


@pytest.mark.parametrize("change, message", [
    (lambda s: s.drop(columns="unique_id"), r"static_df has no column 'unique_id' .*one row per series"),
    (lambda s: s.iloc[1:], r"series 's0' has no row in static_df \(1 of the 8 series lack one\)"),
    (lambda s: pd.concat([s, s.iloc[[2]]]), r"static_df has 2 rows for series 's2'; keep one row per unique_id"),
    (lambda s: s.assign(other=s["other"].astype(object).where(s.index != 3, "north")),
     r"static column 'other' holds non-numeric value 'north' \(series 's3'\); encode it .*pandas.get_dummies"),
    (lambda s: s.drop(columns="other"), r"static_df has no static column 'other' .*give every column of stat_exog"),
    (lambda s: s.assign(sign=s["sign"].where(s.index != 1)), r"static column 'sign' has no value for series 's1'"),
    (lambda s: None, r"stat_exog \['sign', 'other'\] needs static_df"),
])
def test_one_line_errors(data, fitted, change, message):
    df, static = data
    with pytest.raises(ConfigError, match=message) as e:
        Forecaster(**TINY, stat_exog=["sign", "other"]).fit(df, static_df=change(static))
    assert "\n" not in str(e.value)
    if change(static) is not None:  # predict checks the static_df it is given alike
        with pytest.raises(ConfigError, match=message):
            fitted.predict(df, static_df=change(static))


def test_statics_need_stat_exog_and_patchtst(data):
    df, static = data
    plain = Forecaster(**TINY)
    with pytest.raises(ConfigError, match="the forecaster has none; name its columns in stat_exog"):
        plain.fit(df, static_df=static)
    with pytest.raises(ConfigError, match="the forecaster has none; name its columns in stat_exog"):
        plain.fit(df).predict(df, static_df=static)  # never silently ignored
    with pytest.raises(ConfigError, match="covariates need model='patchtst'"):
        Forecaster(**TINY, model="dlinear", stat_exog=["sign"])
    with pytest.raises(ConfigError, match=r"\['unique_id'\] named twice, or named unique_id"):
        Forecaster(**TINY, stat_exog=["unique_id"])


def test_crps_is_twice_the_mean_pinball_and_zero_for_a_perfect_forecast():
    y = [1.0, 3.0]
    q = [0.1, 0.5, 0.9]
    forecasts = np.array([[0.0, 1.0, 2.0], [2.0, 4.0, 5.0]])
    # rho_q(u) = max(q u, (q - 1) u), u = y - yhat_q:
    # y=1: u = 1, 0, -1 -> 0.1, 0, 0.1;  y=3: u = 1, -1, -2 -> 0.1, 0.5, 0.2
    by_hand = (2 / 3) * ((0.1 + 0 + 0.1) + (0.1 + 0.5 + 0.2)) / 2
    assert crps(y, forecasts, q) == pytest.approx(by_hand) == pytest.approx(1 / 3)
    assert crps(y, forecasts, q) == pytest.approx(2 * pinball(y, forecasts, q))
    assert crps(y, np.repeat(np.array(y)[:, None], 3, axis=1), q) == 0.0
    frame = pd.DataFrame({"unique_id": ["a", "b"], "y": y, "y_hat_q0.1": forecasts[:, 0], "y_hat": forecasts[:, 1],
                          "y_hat_q0.9": forecasts[:, 2]})
    table = evaluate(frame)
    assert table.loc["a", "crps"] == pytest.approx((2 / 3) * 0.2)
    assert table.loc["b", "crps"] == pytest.approx((2 / 3) * 0.8)
    assert table.loc["overall", "crps"] == pytest.approx(by_hand)
    assert "crps" not in evaluate(frame[["unique_id", "y", "y_hat"]]).columns  # point forecasts: none


def test_a_wide_table_takes_statics_by_column_name_and_forecasts_as_the_long_one(data):
    df, static = data
    df = df[df["unique_id"].isin(["s0", "s1", "s2"])]
    static = static[static["unique_id"].isin(["s0", "s1", "s2"])]
    wide = df.pivot(index="ds", columns="unique_id", values="y").rename_axis(columns=None).reset_index()
    wide = wide.rename(columns={"ds": "date"})
    options = {**TINY, "stat_exog": ["sign", "other"]}
    from_long = Forecaster(**options).fit(df, static_df=static).predict(df)
    from_wide = Forecaster(**options).fit(wide, static_df=static).predict(wide)
    for name, one in from_long.groupby("unique_id"):
        np.testing.assert_array_equal(one["y_hat"], from_wide[name])
    # the statics reach the wide model: other values give other forecasts
    flipped = static.assign(sign=-static["sign"])
    fitted = Forecaster(**options).fit(wide, static_df=static)
    assert not np.allclose(fitted.predict(wide).to_numpy(float), fitted.predict(wide, static_df=flipped).to_numpy(float))


def test_static_ids_written_as_floats_are_named_as_the_cause(data):
    """Integer ids in the data, the same ids as floats in static_df (a column with a gap, read by pandas): every
    series was said to lack a row, without the cause."""
    df, static = data
    as_ints = df.assign(unique_id=df["unique_id"].str[1:].astype(int))
    as_floats = static.assign(unique_id=static["unique_id"].str[1:].astype(float))
    with pytest.raises(ConfigError, match=r"series '0' has no row in static_df \(8 of the 8 series lack one\): "
                                          r"static_df writes its id '0.0' .*the data's, '0'"):
        Forecaster(**TINY, stat_exog=["sign", "other"]).fit(as_ints, static_df=as_floats)
