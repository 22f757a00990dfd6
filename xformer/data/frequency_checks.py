"""Reading the ``freq`` a user gives, and the refusals of a freq that cannot apply to the data at all.

- An alias pandas no longer reads ("H", "15T", "M", "Y", ...) is refused with pandas' own hint kept ("did you
  mean h?", "use 'ME' instead") and the freq to pass (``15T`` -> ``15min``), so month-end data is not steered to
  month starts.
- A freq of the other kind than ``ds``: a pandas offset for whole-number steps, or a whole-number step for dates.
  Forecast dates are last + k * freq, which cannot be computed across kinds, so such a freq is refused where it
  is first given (fit, or the data a fitted forecaster is given), naming both kinds and the fix.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..config import ConfigError

EXAMPLES = "e.g. h, 15min, D, W, ME for month ends, MS for month starts"
NO_PANDAS_FREQ = "which no pandas freq holds"  # month_days' words, which evaluate's fixes replace (scoring.py)
_HINTS = (re.compile(r"Invalid frequency: (\S+?)\. (Did you mean (\S+?)\?)"),
          re.compile(r"'(\S+?)' (is no longer supported for offsets)\. Please use '(\S+?)' instead"))


def parse_freq(freq, option: str = "freq") -> pd.DateOffset | int:
    """A pandas offset ("h", "15min", ...) or, for an integer ``ds``, the whole-number step between rows (an int,
    or a string of digits as the command line gives it). ``option``: its name in the messages, "--freq" for the
    command line's (then the fix reads ``--freq 15min``, not ``freq='15min'``)."""
    if isinstance(freq, (int, np.integer)) and not isinstance(freq, bool) or isinstance(freq, str) and freq.isdigit():
        if int(freq) < 1:
            raise ConfigError(f"{option} {freq!r}: an integer step must be at least 1")
        return int(freq)
    if isinstance(freq, pd.offsets.BaseOffset):  # a fitted one (pd.DateOffset itself: deprecated in isinstance)
        return freq
    try:
        return pd.tseries.frequencies.to_offset(freq)
    except (ValueError, TypeError):
        hints, fixed = _pandas_hints(freq) if isinstance(freq, str) else ([], None)
        if fixed is not None:
            fix = f"{option} {fixed}" if option.startswith("--") else f"{option}={fixed!r}"
            raise ConfigError(f"{option} {freq!r} is not a pandas frequency (pandas: {'; '.join(hints)}); pass "
                              f"{fix}") from None
        raise ConfigError(f"{option} {freq!r} is not a pandas frequency ({EXAMPLES}) nor, for an integer ds, a "
                          "whole-number step (e.g. 1)") from None


def offset_text(offset: pd.offsets.BaseOffset) -> str:
    """The frequency string of a pandas offset object (MonthEnd() -> "ME", Week(weekday=2) -> "W-WED"), which
    ``to_offset`` reads back as the same offset, so that save writes it and load gives the same forecasts. An
    offset no string holds (a CustomBusinessDay with holidays or a calendar: its "C" drops them; a DateOffset of
    months and days) is refused in one line."""
    text = offset.freqstr
    try:
        same = pd.tseries.frequencies.to_offset(text) == offset
        lost = f" (its {text!r} leaves part of it out: holidays, a calendar)"
    except (ValueError, TypeError):
        same, lost = False, ""
    if not same:
        raise ConfigError(f"freq {offset!r} has no pandas frequency string{lost}, so a fitted forecaster could not "
                          f"save it; pass a string freq ({EXAMPLES}, B for business days)")
    return text


def _pandas_hints(text: str) -> tuple[list[str], str | None]:
    """(pandas' hints for an alias it no longer reads, the freq they lead to): 'A' -> 'Y' -> 'YE', '15T' ->
    '15min'; ([], None) when pandas names no replacement that it reads itself."""
    hints = []
    for _ in range(3):  # pandas may hint at an alias it refuses in turn ('A': did you mean Y? 'Y': use 'YE')
        try:
            pd.tseries.frequencies.to_offset(text)
            return hints, text
        except (ValueError, TypeError) as e:
            found = [m for pattern in _HINTS for m in pattern.finditer(str(e))]
            if not found:
                return [], None
            old, words, new = max(found, key=lambda m: m.start()).groups()  # the innermost: the alias itself
            hints.append(words.replace("Did you", "did you") if words.startswith("Did") else
                         f"'{old}' {words}, use '{new}' instead")
            if old not in text:
                return [], None
            text = text.replace(old, new, 1)
    return [], None


def month_days(index: pd.Index, column: str = "ds") -> str | None:
    """The fix for dates a whole number k of months apart on one day of the month other than the first (the 15th
    of each month): no pandas freq holds them (``MS`` and ``ME`` are anchored at the month's first and last day),
    so they are dated by their months' first days, ``to_period`` then ``to_timestamp``, at freq ``MS`` (``kMS``;
    ``QS`` for quarters, ``YS`` for years). None for other dates."""
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 3 or (index.day != index.day[0]).any() \
            or not 1 < index.day[0] <= 28:
        return None
    steps = np.diff(index.year * 12 + index.month)
    k = int(steps.min())
    if k < 1 or (steps % k).any():
        return None
    period, freq = {3: ("Q", "QS"), 12: ("Y", "YS")}.get(k, ("M", "MS" if k == 1 else f"{k}MS"))
    return (f"its rows are dated on day {index.day[0]} of {'each month' if k == 1 else f'every {k} months'}, "
            f"{NO_PANDAS_FREQ}; date them by their months' first days, df['{column}'] = df['{column}'].dt."
            f"to_period('{period}').dt.to_timestamp(), and pass freq='{freq}'")


def no_freq_fix(panel, column: str) -> str:
    """How a frame from which no freq was inferred is fixed: months dated on another day than the first named
    (``month_days``), else the freq to pass."""
    fix = next(((key, text) for key, s in panel.series.items() if (text := month_days(s.index, column))), None)
    if fix is not None:
        return f": series '{fix[0]}': {fix[1]}"
    return "; pass freq (e.g. freq='h' to Forecaster, --freq h to xformer forecast)"


def freq_label(freq: pd.DateOffset | int | None) -> str | int | None:
    """What ``parse_freq`` reads back (forecaster.json)."""
    return freq if freq is None or isinstance(freq, int) else freq.freqstr


def kind_of(value) -> str:
    """'integers' for a whole-number ``ds`` (a value, an index, or a freq), 'dates' for dates and pandas offsets."""
    if isinstance(value, pd.Index):
        return "dates" if isinstance(value, pd.DatetimeIndex) else "integers"
    return "integers" if isinstance(value, (int, np.integer)) else "dates"


def wrong_kind(key: str, index: pd.Index, freq, suggested, held: bool, fitted=None) -> str:
    """The one-line refusal of ``freq`` for series ``key`` whose ``ds`` (``index``) is of the other kind.
    ``held``: the freq of a fitted (or loaded) forecaster, ``fitted`` a ds of the data of its fit (None when
    unknown), which tells a forecaster fitted on the other kind of ds from one loaded with a freq of the other
    kind; ``suggested``: the freq the series' rows suggest, named as the fix."""
    have, want, label = kind_of(index), kind_of(freq), freq_label(freq)
    holds = {"dates": "dates", "integers": "whole-number steps"}[have]
    example = f"e.g. {index[0]}"
    fix = (f"the pandas frequency of its dates (freq={freq_label(suggested)!r})" if suggested is not None else
           "a pandas frequency of its dates (e.g. freq='D')") if have == "dates" else \
        f"the whole-number step between its rows (freq={suggested if suggested is not None else 1})"
    if held and fitted is not None and kind_of(fitted) == want:  # fitted on the other kind of ds
        return (f"ds holds {have} ({example}), but the forecaster was fitted on {want} (freq {label}); give ds "
                f"as in fit ({want})")
    what = f"freq {label} is " + ("a whole-number step for integer ds" if want == "integers" else
                                   "a pandas frequency of dates")
    if held and fitted is not None:  # loaded with a freq of the other kind than the data of its fit
        return (f"{what}, given to this forecaster (Forecaster.load(path, freq=...); xformer forecast/backtest: "
                f"--freq), but series '{key}' has {holds} in ds ({example}), as the data it was fitted on; pass "
                f"{fix}, or leave freq out to use the one of its fit")
    if held:
        return (f"{what} (this forecaster's), but series '{key}' has {holds} in ds ({example}); give ds as in "
                f"fit, or load the forecaster with {fix} (Forecaster.load(path, freq=...))")
    return (f"{what}, but series '{key}' has {holds} in ds ({example}); pass {fix}, or leave freq out to "
            "infer it")


__all__ = ["parse_freq", "offset_text", "month_days", "no_freq_fix", "NO_PANDAS_FREQ",
           "freq_label", "kind_of", "wrong_kind", "EXAMPLES"]
