"""Inputs that real forecasting users hold and that are valid but unusual: dates written day first in a monthly
file, CSVs exported by a spreadsheet in a European locale (';' separators, decimal commas, Excel's 'sep=;' line),
numbers held as text, a long frame indexed by its dates, a Series or dict in place of a frame. Each is read right
or refused in one line naming the fix that works."""
import numpy as np
import pandas as pd
import pytest

from xformer.cli import main
from xformer.config import ConfigError
from xformer.forecast import Forecaster
from xformer.forecast.frames import read_panel

TINY = dict(input_len=8, horizon=4, patch_len=4, stride=4, d_model=8, n_layers=1, n_heads=1, epochs=1,
            progress=False, device="cpu")


def long_frame(n: int = 30, freq: str = "D") -> pd.DataFrame:
    ds = pd.date_range("2020-01-01", periods=n, freq=freq)
    return pd.concat([pd.DataFrame({"unique_id": k, "ds": ds, "y": np.sin(np.arange(n) / 3) + j + 1.5})
                      for j, k in enumerate("ab")], ignore_index=True)


@pytest.mark.parametrize("written", ["%d.%m.%Y", "%d/%m/%Y"])
def test_monthly_dates_written_day_first_are_refused_not_misread(written):
    # every day is 01, so pandas reads them month first without complaint: 01.02.2020 as 2 January
    frame = long_frame(freq="MS").assign(ds=lambda d: d["ds"].dt.strftime(written))
    with pytest.raises(ConfigError, match=r"read day first .*freq MS.*dayfirst=True") as e:
        read_panel(frame)
    assert "\n" not in str(e.value) and "freq='D'" not in str(e.value)
    # month first (US) monthly dates, and day-first ones pandas was given as dates, stay as they are
    us = read_panel(long_frame(freq="MS").assign(ds=lambda d: d["ds"].dt.strftime("%m/%d/%Y")))
    assert us.series["a"].index[1] == pd.Timestamp("2020-02-01")
    parsed = frame.assign(ds=pd.to_datetime(frame["ds"], dayfirst=True))
    assert read_panel(parsed).series["a"].index[1] == pd.Timestamp("2020-02-01")


def test_a_semicolon_csv_with_decimal_commas_is_refused_with_a_fix_that_works(tmp_path, capsys):
    path = tmp_path / "excel.csv"
    long_frame().to_csv(path, index=False, sep=";", decimal=",", encoding="utf-8-sig", lineterminator="\r\n")
    with pytest.raises(ConfigError, match=r"separated by ';'.*decimal commas.*pandas\.read_csv\(path, sep=';', "
                                          r"decimal=','\)") as e:
        Forecaster(**TINY).fit(path)
    fixed = tmp_path / "fixed.csv"
    pd.read_csv(path, sep=";", decimal=",").to_csv(fixed, index=False)  # the fix the message names
    run = Forecaster(**TINY).fit(fixed).save(tmp_path / "run")
    capsys.readouterr()
    assert main(["forecast", str(run), "--data", str(path)]) == 2
    assert "decimal=','" in capsys.readouterr().err
    assert main(["forecast", str(run), "--data", str(fixed), "--quiet"]) == 0
    # without decimal commas the fix needs no decimal=
    plain = tmp_path / "plain.csv"
    long_frame().to_csv(plain, index=False, sep=";")
    with pytest.raises(ConfigError, match=r"pandas\.read_csv\(path, sep=';'\)\.to_csv") as e:
        Forecaster(**TINY).fit(plain)
    assert "decimal" not in str(e.value)


def test_a_german_excel_export_is_refused_with_one_call_that_reads_it(tmp_path):
    # ';', decimal commas and dates written day first with dots, as Excel writes CSV in a German locale
    path = tmp_path / "excel_de.csv"
    long_frame().assign(ds=lambda d: d["ds"].dt.strftime("%d.%m.%Y")).to_csv(
        path, index=False, sep=";", decimal=",", encoding="utf-8-sig", lineterminator="\r\n")
    with pytest.raises(ConfigError, match=r"pandas\.read_csv\(path, sep=';', decimal=',', parse_dates=\['ds'\], "
                                          r"dayfirst=True\)") as e:
        Forecaster(**TINY).fit(path)
    fixed = tmp_path / "fixed.csv"
    pd.read_csv(path, sep=";", decimal=",", parse_dates=["ds"], dayfirst=True).to_csv(fixed, index=False)
    assert read_panel(fixed).series["a"].index[12] == pd.Timestamp("2020-01-13")
    assert "'1,5'" not in str(e.value)


def test_excels_sep_line_is_named(tmp_path):
    path = tmp_path / "hinted.csv"
    path.write_text("sep=;\n" + long_frame().to_csv(index=False, sep=";"))
    with pytest.raises(ConfigError, match="first line 'sep=;'.*read_csv\\(.*sep=';', skiprows=1\\)") as e:
        Forecaster(**TINY).fit(path)
    assert "\n" not in str(e.value)


def test_excels_sep_comma_line_is_skipped(tmp_path):
    path, plain = tmp_path / "hinted.csv", tmp_path / "plain.csv"
    long_frame().to_csv(plain, index=False)
    path.write_text("sep=,\n" + plain.read_text())
    assert read_panel(path).series["a"].equals(read_panel(plain).series["a"])


@pytest.mark.parametrize("text, said", [("1,5", "decimal comma"), ("1,500.25", "thousands separator")])
def test_numbers_written_with_commas_are_named(text, said, tmp_path):
    frame = long_frame()
    frame["y"] = frame["y"].map(lambda v: f"{v:.3f}").astype(object)
    frame.loc[3, "y"] = text
    with pytest.raises(ConfigError, match=f"'{text}'.*{said}") as e:
        read_panel(frame)
    assert "\n" not in str(e.value)
    path = tmp_path / "commas.csv"  # a comma-separated file quoting its decimal commas: the same error
    frame.to_csv(path, index=False)
    with pytest.raises(ConfigError, match=f"{said}.*pandas.read_csv"):
        read_panel(path)


def test_blank_text_in_y_is_a_missing_value():
    frame = long_frame()
    frame["y"] = frame["y"].map(lambda v: f"{v:.3f}").astype(object)
    frame.loc[[3, 4], "y"] = ["", "  "]  # as a spreadsheet or read_csv(dtype=str, keep_default_na=False) gives them
    with pytest.raises(ConfigError, match=r"missing values in series 'a' \(2 of 30 rows\); pass missing='ffill'"):
        read_panel(frame)
    filled = read_panel(frame, missing="ffill").series["a"]
    assert filled.isna().sum() == 2 and filled.iloc[5] == pytest.approx(float(frame.loc[5, "y"]))


def test_a_long_frame_indexed_by_its_dates_is_read():
    frame = long_frame()
    got = read_panel(frame.set_index("ds"))
    want = read_panel(frame)
    assert got.ids == want.ids
    for key in want.ids:
        pd.testing.assert_series_equal(got.series[key], want.series[key])


@pytest.mark.parametrize("data, fix", [
    (pd.Series([1.0, 2.0], index=pd.date_range("2020", periods=2), name="load"), r"series\.to_frame\(\)"),
    ({"unique_id": ["a"], "ds": ["2020-01-01"], "y": [1.0]}, r"pd\.DataFrame\(data\)"),
    ([{"unique_id": "a", "ds": "2020-01-01", "y": 1.0}], r"pd\.DataFrame\(data\)"),
])
def test_a_series_or_plain_data_is_refused_naming_the_frame_to_make(data, fix):
    with pytest.raises(ConfigError, match=fix):
        Forecaster(**TINY).fit(data)


def test_a_wide_frame_of_one_series_forecasts_under_its_name():
    series = pd.Series(np.sin(np.arange(30) / 3), index=pd.date_range("2020-01-01", periods=30), name="load")
    forecast = Forecaster(**TINY).fit(series.to_frame()).predict()
    assert list(forecast.columns) == ["load"] and forecast.index[0] == pd.Timestamp("2020-01-31")


def test_static_values_written_with_a_decimal_comma_or_left_blank():
    from xformer.forecast.statics import read_static
    static = pd.DataFrame({"unique_id": ["a", "b"], "size": ["1,5", "2"], "big": [True, False]})
    with pytest.raises(ConfigError, match=r"'1,5' is a number written with a decimal comma") as e:
        read_static(static, ["size", "big"])
    assert "get_dummies" not in str(e.value)
    with pytest.raises(ConfigError, match=r"static column 'size' has no value for series 'b'"):
        read_static(static.assign(size=["1.5", " "]), ["size"])
    assert read_static(static.assign(size=["1.5", "2"]), ["size", "big"]).to_numpy().tolist() == [[1.5, 1], [2, 0]]


@pytest.mark.parametrize("twice", ["y", "ds", "unique_id"])
def test_a_frame_with_a_column_name_twice_is_refused_in_one_line(twice):
    frame = long_frame()
    frame = pd.concat([frame, frame[[twice]]], axis=1)  # as a merge or concat(axis=1) leaves it
    with pytest.raises(ConfigError, match=f"2 columns named '{twice}'.*df.columns.duplicated"):
        read_panel(frame)
    with pytest.raises(ConfigError, match=f"2 columns named '{twice}'"):
        read_panel(frame.assign(x=1.0), exog=["x"])


@pytest.mark.parametrize("names", [{"unique_id": "Unique_ID", "ds": "DS", "y": "Y"},
                                   {"ds": " ds", "y": " y"}])  # a header written 'unique_id, ds, y'
def test_long_columns_spelt_otherwise_are_named_with_the_rename(names):
    with pytest.raises(ConfigError, match=r"rename the columns.*: df = df\.rename\(columns=\{") as e:
        read_panel(long_frame().rename(columns=names))
    assert all(repr(k) in str(e.value) for k in names.values())
    wide = pd.DataFrame({"date": pd.date_range("2020", periods=30), "X": 1.0, "Y": 2.0})  # a series named Y
    assert read_panel(wide).ids == ["X", "Y"]


def test_a_long_frame_without_ids_names_the_column_to_add():
    with pytest.raises(ConfigError, match=r"no column 'unique_id'.*df\['unique_id'\] = "):
        read_panel(long_frame().query("unique_id == 'a'")[["ds", "y"]])


def test_a_static_row_without_an_id_is_refused_not_read_as_series_nan():
    from xformer.forecast.statics import read_static
    static = pd.DataFrame({"unique_id": ["a", np.nan], "size": [1.0, 2.0]})
    with pytest.raises(ConfigError, match=r"static_df: column 'unique_id' has no value at row 2; give every row"):
        read_static(static, ["size"])
    categories = pd.Categorical(["a", "b"], categories=["a", "b", "unused"])
    assert read_static(static.assign(unique_id=categories), ["size"]).index.tolist() == ["a", "b"]


@pytest.mark.parametrize("name, start", [("sales.xlsx", b"PK\x03\x04\x14\x00\x06\x00"),
                                         ("sales.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00")])
def test_an_excel_workbook_given_as_data_is_named(name, start, tmp_path, capsys):
    path = tmp_path / name
    path.write_bytes(start + b"\x00" * 64)
    with pytest.raises(ConfigError, match=r"is an Excel workbook, not a CSV; save it as CSV UTF-8 .*read_excel"):
        Forecaster(**TINY).fit(path)


def test_numbers_with_dots_for_thousands_and_a_decimal_comma(tmp_path):
    frame = long_frame().assign(y=lambda d: d["y"].map(lambda v: f"{v:.3f}".replace(".", ",")))
    frame.loc[0, "y"] = "1.234,5"  # German: 1234.5, the first value named
    with pytest.raises(ConfigError, match=r"'1\.234,5' is a number written with a decimal comma and '\.' between "
                                          r"thousands: .*decimal=',', thousands='\.'"):
        read_panel(frame)
    path = tmp_path / "de.csv"
    frame.to_csv(path, index=False, sep=";")
    with pytest.raises(ConfigError, match=r"read_csv\(path, sep=';', decimal=',', thousands='\.'\)"):
        read_panel(path)
    assert pd.read_csv(path, sep=";", decimal=",", thousands=".")["y"].iloc[0] == 1234.5  # the fix reads it
