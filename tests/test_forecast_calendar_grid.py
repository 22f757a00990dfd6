"""The calendar grid a series is put on, reused across series (``frequency._calendar_positions``): the same
positions as a range generated from each series' own first date, whatever series came before."""
import numpy as np
import pandas as pd
import pytest

from xformer.data import frequency
from xformer.data.frequency import _grid_steps


def reference_steps(index: pd.DatetimeIndex, freq):
    if not freq.is_on_offset(index[0]):
        return None, index[0]
    positions = pd.date_range(index[0], index[-1], freq=freq).get_indexer(index)
    return (positions, None) if (positions >= 0).all() else (None, index[int(np.argmax(positions < 0))])


FREQS = ["MS", "ME", "W-SUN", "B", "QS", "2MS", "SMS", "D"]


@pytest.mark.parametrize("freq, tz", [(f, None) for f in FREQS] + [("D", "Europe/Berlin"), ("MS", "America/New_York"),
                                                                  ("W-SUN", "Europe/Berlin")])
def test_calendar_steps_equal_a_range_from_each_series_start(freq, tz):
    offset = pd.tseries.frequencies.to_offset(freq)
    rng = np.random.default_rng(0)
    frequency._CALENDARS.clear()
    universe = pd.date_range("1995-01-01", periods=400, freq=offset, tz=tz)
    checked = {"on grid": 0, "off grid": 0}
    for trial in range(300):  # series of random spans, gaps and off-grid rows, in an order that keeps and drops grids
        start = int(rng.integers(0, 300))
        rows = universe[start:start + int(rng.integers(3, 100))]
        keep = np.sort(rng.choice(len(rows), size=max(2, int(len(rows) * rng.uniform(0.6, 1.0))), replace=False))
        index = rows[keep]
        if trial % 7 == 0:  # a row off the grid: a day after one of its dates (its hour for a zoned series)
            moved = index[int(rng.integers(1, len(index)))] + pd.Timedelta(hours=5)
            index = index.union(pd.DatetimeIndex([moved]))
        if trial % 11 == 0:  # a series that starts between two dates of the others (2MS: the other phase)
            index = pd.date_range(universe[start] + pd.Timedelta(days=1), periods=20, freq=offset, tz=tz)
        ours, theirs = _grid_steps(index, offset), reference_steps(index, offset)
        assert (ours[0] is None) == (theirs[0] is None), (trial, index)
        if theirs[0] is None:
            assert ours[1] == theirs[1]
            checked["off grid"] += 1
        else:
            np.testing.assert_array_equal(ours[0], theirs[0])
            checked["on grid"] += 1
    assert checked["on grid"] > 100 and checked["off grid"] > 5


def test_read_panel_inserts_the_same_rows_in_any_series_order():
    from xformer.forecast.frames import read_panel
    rng = np.random.default_rng(1)
    frames = []
    for i in range(40):
        ds = pd.date_range(pd.Timestamp("2000-01-01") + pd.offsets.MonthBegin(int(rng.integers(0, 60))),
                           periods=int(rng.integers(30, 80)), freq="MS")
        ds = ds.delete(int(rng.integers(1, len(ds) - 1)))  # one missing month each
        frames.append(pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": rng.normal(size=len(ds))}))
    df = pd.concat(frames, ignore_index=True)
    frequency._CALENDARS.clear()
    forward = read_panel(df, missing="interpolate", freq="MS")
    frequency._CALENDARS.clear()
    backward = read_panel(pd.concat(frames[::-1], ignore_index=True), missing="interpolate", freq="MS")
    assert set(forward.series) == set(backward.series)
    for key, values in forward.series.items():
        pd.testing.assert_series_equal(values, backward.series[key])
        assert len(values) == len(frames[int(key[1:])]) + 1
