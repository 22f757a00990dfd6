"""neuralforecast's helpers for future-known covariates: ``make_future_dataframe`` gives the unique_id / ds rows a
``futr_df`` must fill (the horizon after each series' own last row, on its frequency), ``get_missing_future`` the rows
a futr_df lacks; a futr_df built from the first predicts, one lacking rows is named by the second."""
import numpy as np
import pandas as pd
import pytest

from xformer.config import ConfigError
from xformer.forecast import Forecaster

TINY = dict(input_len=24, horizon=6, patch_len=8, stride=4, d_model=8, n_layers=1, n_heads=2, epochs=1,
            batch_size=32, device="cpu")


def frame(ends=(96, 90), freq="h") -> pd.DataFrame:
    """Two series of different lengths (so different ends), y driven by a future-known price."""
    rng = np.random.default_rng(0)
    parts = []
    for key, n in zip(("a", "b"), ends):
        price = rng.choice([0.0, 1.0], size=n)
        parts.append(pd.DataFrame({"unique_id": key, "ds": pd.date_range("2024-01-01", periods=n, freq=freq),
                                   "y": 3 * price + 0.1 * rng.normal(size=n), "price": price}))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def fitted():
    df = frame()
    return Forecaster(futr_exog=["price"], **TINY).fit(df), df


def test_the_future_frame_is_the_horizon_after_each_series(fitted):
    forecaster, df = fitted
    future = forecaster.make_future_dataframe()  # after the data of fit
    assert list(future.columns) == ["unique_id", "ds"] and len(future) == 2 * 6
    for key, n in (("a", 96), ("b", 90)):
        last = pd.Timestamp("2024-01-01") + pd.Timedelta(hours=n - 1)
        assert list(future.loc[future.unique_id == key, "ds"]) == list(pd.date_range(last, periods=7, freq="h")[1:])
    later = df.assign(ds=df.ds + pd.Timedelta(days=30))  # other data: the steps after its own ends
    assert (forecaster.make_future_dataframe(later).ds == future.ds + pd.Timedelta(days=30)).all()
    daily = frame(freq="D")  # the fitted hourly model's dates would be wrong for it: refused, as predict refuses it
    with pytest.raises(ConfigError) as refused:
        forecaster.make_future_dataframe(daily)
    with pytest.raises(ConfigError) as by_predict:
        forecaster.predict(daily, futr_df=future.assign(price=1.0))
    assert str(refused.value) == str(by_predict.value) and "\n" not in str(refused.value)


def test_a_filled_future_frame_predicts_and_a_short_one_is_named(fitted):
    forecaster, df = fitted
    future = forecaster.make_future_dataframe().assign(price=1.0)
    assert forecaster.get_missing_future(future).empty
    forecast = forecaster.predict(futr_df=future)
    assert list(forecast[["unique_id", "ds"]].itertuples(index=False)) == \
        list(future[["unique_id", "ds"]].itertuples(index=False))
    short = future.drop(index=[3, 11])  # a's 4th step and b's last
    missing = forecaster.get_missing_future(short)
    assert missing.equals(future.loc[[3, 11], ["unique_id", "ds"]].reset_index(drop=True))
    with pytest.raises(ConfigError, match="futr_df"):  # what predict refuses is what get_missing_future names
        forecaster.predict(futr_df=short)
    with pytest.raises(ConfigError, match="unique_id and ds"):
        forecaster.get_missing_future(future.drop(columns="ds"))


def test_a_forecaster_without_data_asks_for_the_series(tmp_path, fitted):
    forecaster, df = fitted
    forecaster.save(tmp_path / "run")
    loaded = Forecaster.load(tmp_path / "run")
    with pytest.raises(ConfigError, match="pass the series"):
        loaded.make_future_dataframe()
    assert loaded.make_future_dataframe(df).equals(forecaster.make_future_dataframe())
