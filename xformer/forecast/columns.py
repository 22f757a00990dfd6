"""The column names of a frame handed to the Forecaster, as users' frames hold them: a name twice (as a merge or
``concat(axis=1)`` leaves it, where pandas gives a frame for what should be one column), the long format's names
spelt otherwise (``Unique_ID``, ``DS``, or ``' ds'`` from a header written ``unique_id, ds, y``), and a long frame
of one series without ``unique_id``. Each is one line naming the pandas call that fixes it (neuralforecast's names
are ``unique_id``, ``ds`` and ``y``, spelt so)."""
from __future__ import annotations

from collections import Counter

import pandas as pd

from ..config import ConfigError

LONG = ("unique_id", "ds", "y")


def check_names(frame: pd.DataFrame) -> None:
    """Refuse a column name given twice, and the long format's names spelt otherwise when the frame is one (it
    has ``unique_id``, spelt so or not: a wide table may have a series named ``Y``)."""
    twice = [(name, n) for name, n in Counter(frame.columns).items() if n > 1]
    if twice:
        raise ConfigError(f"the frame has {twice[0][1]} columns named {twice[0][0]!r}; keep one, e.g. "
                          "df = df.loc[:, ~df.columns.duplicated()]")
    spelt = {c: str(c).strip().lower() for c in frame.columns if c not in LONG}
    wrong = {c: name for c, name in spelt.items() if name in LONG and name not in frame.columns}
    if wrong and ("unique_id" in frame.columns or "unique_id" in wrong.values()):
        raise ConfigError(f"column{'s' * (len(wrong) > 1)} {', '.join(map(repr, wrong))} of the long format must be "
                          f"spelt {', '.join(map(repr, wrong.values()))}; rename the columns (in a file: its header): "
                          f"df = df.rename(columns={wrong!r})")


def check_long(frame: pd.DataFrame, what: str) -> None:
    """``unique_id``, ``ds`` and ``y`` present; a frame of one series without ids is told to add one."""
    absent = [c for c in LONG if c not in frame.columns]
    if absent:
        one = "; for one series add its id: df['unique_id'] = 'series'" if absent == ["unique_id"] else ""
        raise ConfigError(f"{what} has no column {', '.join(repr(c) for c in absent)}; it needs "
                          f"unique_id, ds and y (it has {[str(c) for c in frame.columns]}){one}")


__all__ = ["check_names", "check_long"]
