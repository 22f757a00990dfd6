"""fit's batches are gathered from one dataset of the whole panel (xformer/forecast/windows.py) and predict builds
its result as one frame: the same batches, weights and forecasts, to the bit, as item by item and frame by frame."""
import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import ConcatDataset, default_collate

from xformer.data.series import WindowDataset
from xformer.forecast import Forecaster, estimator
from xformer.forecast.covariates import CovariateWindows
from xformer.forecast.frames import DS, ID, POINT, fill_series, future_dates, quantile_column
from xformer.forecast.windows import PanelWindows, pass_batches

L, H = 5, 3


def _carried(rng, T, C):
    """A (last_observed, forward_filled) pair as ``_carried`` gives one: rows observed at or before each row."""
    last = np.maximum.accumulate(np.minimum(rng.integers(-3, T, (T, C)), np.arange(T)[:, None]), axis=0)
    forward = rng.normal(size=(T, C)).astype(np.float32)
    forward[rng.random((T, C)) < 0.1] = np.nan
    return last, forward


def _series(covariates: bool, gaps: bool, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    sets = []
    for k in range(6):
        T = int(rng.integers(L + H, 30))
        y = rng.normal(size=(T, 1))
        carry_y = _carried(rng, T, 1) if gaps and k % 2 else None
        if not covariates:
            sets.append(WindowDataset(y, L, H, carry_y))
            continue
        carry = (carry_y, _carried(rng, T, 2) if gaps and k % 3 else None, _carried(rng, T, 3) if gaps and k % 3 == 1
                 else None)
        sets.append(CovariateWindows(y, rng.normal(size=(T, 2)), rng.normal(size=(T, 3)), L, H, rng.normal(size=4),
                                     carry))
    return sets


@pytest.mark.parametrize("covariates", [False, True])
@pytest.mark.parametrize("gaps", [False, True])
def test_gathered_batch_is_the_collated_items_to_the_bit(covariates, gaps):
    sets = _series(covariates, gaps)
    items, panel = ConcatDataset(sets), PanelWindows(sets)
    assert len(panel) == len(items)
    indices = np.random.default_rng(1).permutation(len(items))[:40].tolist()
    expected, got = default_collate([items[i] for i in indices]), panel.__getitems__(indices)
    assert list(got) == list(expected)
    for key in expected:
        assert got[key].dtype == expected[key].dtype and got[key].shape == expected[key].shape
        assert got[key].numpy().tobytes() == expected[key].numpy().tobytes(), key  # NaN where NaN too
    one = panel[indices[0]]
    assert all(one[k].numpy().tobytes() == items[indices[0]][k].numpy().tobytes() for k in one)


def test_pass_batches_passes_a_batch_and_collates_items():
    batch = {"inputs": torch.zeros(2, 3)}
    assert pass_batches(batch) is batch
    collated = pass_batches([{"inputs": torch.ones(3)}, {"inputs": torch.zeros(3)}])
    assert collated["inputs"].shape == (2, 3)


def _panel(n: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for k in range(n):
        length = 40 + 3 * k  # the series end on different days
        ds = pd.date_range("2021-01-01", periods=length, freq="D")
        rows.append(pd.DataFrame({ID: f"s{k}", DS: ds, "y": np.sin(np.arange(length) / 3) + rng.normal(size=length)}))
    df = pd.concat(rows, ignore_index=True)
    df.loc[df.index[7::11], "y"] = np.nan  # gaps, interpolated
    return df


def test_fit_trains_as_on_the_windows_one_by_one(monkeypatch):
    options = dict(input_len=8, horizon=4, d_model=8, n_layers=1, n_heads=2, patch_len=4, stride=4, epochs=2,
                   batch_size=16, missing="interpolate", freq="D", quantiles=[0.1, 0.5, 0.9])
    df = _panel()
    gathered = Forecaster(**options).fit(df, val_size=4)
    monkeypatch.setattr(estimator, "PanelWindows", ConcatDataset)  # the windows item by item, collated
    itemwise = Forecaster(**options).fit(df, val_size=4)
    assert gathered.fit_report == itemwise.fit_report
    for (name, a), b in zip(gathered.model.state_dict().items(), itemwise.model.state_dict().values()):
        assert a.numpy().tobytes() == b.numpy().tobytes(), name


def test_predict_is_the_frames_of_each_series_concatenated():
    df = _panel()
    f = Forecaster(input_len=8, horizon=4, d_model=8, n_layers=1, n_heads=2, patch_len=4, stride=4, epochs=1,
                   batch_size=16, missing="interpolate", freq="D", quantiles=[0.1, 0.5, 0.9]).fit(df)
    result = f.predict(df, h=3)
    panel = fill_series(f.read(df), "interpolate")
    points, quantiles = f.forecast_histories({k: s.to_numpy() for k, s in panel.series.items()})
    parts = []
    for i, key in enumerate(panel.ids):
        part = pd.DataFrame({ID: key, DS: future_dates(panel.series[key].index[-1], f.freq, 3),
                             POINT: points[i, :3]})
        for j, q in enumerate([0.1, 0.5, 0.9]):
            if q != 0.5:
                part[quantile_column(q)] = quantiles[i, :3, j]
        parts.append(part)
    pd.testing.assert_frame_equal(result, pd.concat(parts, ignore_index=True), check_exact=True)
