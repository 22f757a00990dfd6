"""pandas 3 keeps text in pyarrow arrays where pyarrow is installed (the dev and parquet extras) and in Python
arrays where it is not (the runtime alone): the long-format path gives the same forecasts, ids and files with
both, so the suite, which runs with pyarrow, speaks for a runtime-only install too."""
import warnings

import numpy as np
import pandas as pd
import pytest

from xformer.cli import main
from xformer.forecast import Forecaster

TINY = dict(input_len=24, horizon=6, patch_len=8, stride=4, d_model=8, n_layers=1, n_heads=2, epochs=1,
            batch_size=32, device="cpu", quantiles=[0.1, 0.5, 0.9])


def long_csv(path):
    """Ids a CSV reader would mangle by default ("001" as 1, "NA" as missing), series of other lengths."""
    parts = []
    for k, (uid, n) in enumerate((("001", 80), ("NA", 64))):
        t = np.arange(n)
        parts.append(pd.DataFrame({"unique_id": uid, "ds": pd.date_range("2023-03-01", periods=n, freq="h"),
                                   "y": (k + 1) * np.sin(t / 3) + 0.1 * np.random.default_rng(k).standard_normal(n)}))
    pd.concat(parts).to_csv(path, index=False)
    return path


def long_path(root):
    """Fit from a CSV path, predict, backtest, save and load, and the CLI's forecast file."""
    root.mkdir()
    data = long_csv(root / "long.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the backtest windows lie in the data of fit
        fitted = Forecaster(**TINY).fit(data)
        forecast, cv = fitted.predict(data), fitted.cross_validation(data, n_windows=2, fit=False)
        run = fitted.save(root / "run")
        reloaded = Forecaster.load(run).predict(data)
    assert main(["forecast", str(run), "--data", str(data), "--out", str(root / "f.csv"), "--quiet"]) == 0
    return forecast, cv, reloaded, (root / "f.csv").read_bytes()


@pytest.mark.skipif(int(pd.__version__.split(".")[0]) < 3, reason="pandas 2 keeps text in object arrays, "
                    "whatever is installed: the suite itself runs that way")
def test_the_long_format_path_is_the_same_with_python_and_pyarrow_strings(tmp_path):
    pytest.importorskip("pyarrow")
    results = {}
    for storage in ("python", "pyarrow"):
        with pd.option_context("mode.string_storage", storage):
            expected = "StringArray" if storage == "python" else "ArrowStringArray"
            assert type(pd.array(["x"], dtype="str")).__name__ == expected  # the option is in force
            results[storage] = long_path(tmp_path / storage)
    (forecast, cv, reloaded, file), (forecast_a, cv_a, reloaded_a, file_a) = results["python"], results["pyarrow"]
    assert list(forecast["unique_id"].unique()) == ["001", "NA"]
    same = dict(check_dtype=False, check_column_type=False, check_index_type=False)  # the same text, other arrays
    for ours, theirs in ((forecast, forecast_a), (cv, cv_a), (reloaded, reloaded_a)):
        pd.testing.assert_frame_equal(ours, theirs, **same)
    pd.testing.assert_frame_equal(reloaded, forecast, **same)
    assert file == file_a
