"""What the audit of the forecasting workflow (tests/test_audit_forecast_user.py) left: a freq given to load that
differs from the one of fit was refused as if the data were wrong, the commands refused their options in Python's
names (n_windows, h), --series was refused for a wide file though plot(series=...) draws one, and fit printed the
trainer's progress with no way to quiet it from Python."""
import re

import numpy as np
import pandas as pd
import pytest

from xformer.cli import main
from xformer.config import ConfigError
from xformer.forecast import Forecaster

pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py

TINY = dict(input_len=16, horizon=4, patch_len=4, stride=4, d_model=8, n_layers=1, n_heads=2, epochs=1,
            max_steps=2, batch_size=16, device="cpu", seed=0)


def hourly(n: int = 60) -> pd.DataFrame:
    return pd.concat([pd.DataFrame({"unique_id": key, "ds": pd.date_range("2020-01-01", periods=n, freq="h"),
                                    "y": np.sin(np.arange(n) / 3) + i}) for i, key in enumerate("ab")],
                     ignore_index=True)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A saved forecaster fitted on hourly series, and those series as a long and as a wide CSV."""
    root = tmp_path_factory.mktemp("leftovers")
    frame = hourly()
    run = Forecaster(**TINY).fit(frame).save(root / "run")
    frame.to_csv(root / "long.csv", index=False)
    wide = frame.pivot(index="ds", columns="unique_id", values="y").rename_axis("date").rename_axis(None, axis=1)
    wide.reset_index().to_csv(root / "wide.csv", index=False)
    return root, run


# ---- 1. a freq given to load other than the one of fit ----------------------------------------------------------
def test_a_freq_at_load_other_than_the_fitted_one_names_both_and_the_fix(files):
    root, run = files
    with pytest.raises(ConfigError, match=r"freq D does not fit series 'a'.*suggest freq 'h'.*fitted on freq h and "
                                          r"loaded with freq D.*leave freq out of load.*to forecast at h, or give "
                                          r"data at freq D"):
        Forecaster.load(run, freq="D").predict(hourly())
    daily = hourly().assign(ds=lambda d: d.groupby("unique_id").cumcount().map(
        lambda k: pd.Timestamp("2020-01-01") + pd.Timedelta(days=k)))
    assert len(Forecaster.load(run, freq="D").predict(daily)) == 8  # the other fix named: data at freq D
    assert len(Forecaster.load(run, freq="h").predict(hourly())) == 8


@pytest.mark.parametrize("command", [["forecast"], ["backtest", "--windows", "1"]])
def test_the_commands_name_freq_as_their_option(files, cli_error, command):
    root, run = files
    cli_error([command[0], run, "--data", root / "long.csv", *command[1:], "--freq", "D"],
              "fitted on freq h", "--freq D", "drop --freq", "data at freq D")


# ---- 2. the commands' options in their own names -----------------------------------------------------------------
@pytest.mark.parametrize("options, words", [
    (["forecast", "--h", "0"], ["--h 0", "1 to", "horizon 4"]),
    (["forecast", "--h", "5"], ["--h 5", "horizon 4"]),
    (["backtest", "--windows", "0"], ["--windows 0", ">= 1"]),
    (["backtest", "--windows", "1", "--step", "0"], ["--step 0", ">= 1"]),
    (["backtest", "--windows", "1", "--h", "0"], ["--h 0", "horizon 4"]),
    (["forecast", "--freq", "xyz"], ["--freq 'xyz'", "pandas frequency"]),
    (["backtest", "--windows", "1", "--freq", "0"], ["--freq '0'", "at least 1"]),
    (["forecast", "--freq", "15T"], ["--freq '15T'", "pass --freq 15min"]),
])
def test_the_commands_refuse_their_options_in_their_own_names(files, cli_error, options, words):
    root, run = files
    line = cli_error([options[0], run, "--data", root / "long.csv", *options[1:]], *words)
    assert not re.search(r"n_windows|\bh must|\bstep must be a whole|(?<!-)\bfreq[= ]", line), line  # Python's


# ---- 3. --series with a wide file -----------------------------------------------------------------------------------
def test_series_chooses_the_columns_a_wide_file_plots(files, cli_error, capsys):
    root, run = files
    plot = root / "wide_b.png"
    assert main(["forecast", str(run), "--data", str(root / "wide.csv"), "--plot", str(plot), "--series", "b",
                 "--out", str(root / "wide_b.csv")]) == 0
    assert plot.stat().st_size > 0 and (root / "wide_b.csv").exists()
    cli_error(["forecast", run, "--data", root / "wide.csv", "--plot", root / "wide_z.png", "--series", "z",
               "--out", root / "wide_z.csv"], "--series z", "'a', 'b'")
    assert not (root / "wide_z.csv").exists() and not (root / "wide_z.png").exists()  # refused before any work


# ---- 4. fit's progress ----------------------------------------------------------------------------------------------
def test_fit_prints_its_progress_unless_progress_is_false(capsys):
    frame = hourly()
    capsys.readouterr()
    Forecaster(**TINY).fit(frame, val_size=4)
    assert "train step 2/2" in capsys.readouterr().err  # the default, as before
    quiet = Forecaster(**TINY, progress=False)
    quiet.fit(frame, val_size=4)
    quiet.cross_validation(frame, n_windows=2)
    assert capsys.readouterr() == ("", "")
    assert "progress=False" in repr(quiet)
    with pytest.raises(ConfigError, match="progress=1: give True or False"):
        Forecaster(**TINY, progress=1)
    with pytest.raises(ConfigError, match=r"enable_progress_bar -> progress"):
        Forecaster(**TINY, enable_progress_bar=False)
