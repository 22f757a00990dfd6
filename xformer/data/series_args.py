"""What a series dataset fixes in the model it feeds: the windows' length, their channels and the horizon.

A series ``DataBundle.model_args`` gives ``tokenizer.input_len``, ``tokenizer.n_channels`` and (forecasting)
``head.horizon``, which fill a recipe that leaves them out (a baseline takes them as ``baseline.args``). A
recipe that sets one to another value builds a model that cannot read the data's windows: it would fail at
the first batch. ``check_window_args`` refuses it before anything is written, naming the data argument to
set instead (``data.args.input_len`` / ``horizon`` / ``columns`` for csv_series and ett).
"""
from __future__ import annotations

from typing import Any

from ..config import ConfigError
from ..models import ModelConfig

# part -> argument -> (what the data says of it, the data argument that sets it)
_WINDOW_ARGS = {"tokenizer": {"input_len": ("its windows are {value} steps long", "data.args.input_len={mine}"),
                              "n_channels": ("its windows have {value} channel(s)", "data.args.columns to choose them")},
                "head": {"horizon": ("its windows forecast {value} steps", "data.args.horizon={mine}")}}
WINDOW_DATA = ("csv_series", "ett")  # the datasets whose windows those data.args set


def check_window_args(model: ModelConfig, implied: dict[str, dict[str, Any]], data_name: str) -> None:
    """Refuse (one line) a recipe's own ``input_len``, ``n_channels`` or ``horizon`` that differs from the one
    the data implies (``implied``: ``DataBundle.model_args``); ``model``: the recipe's model section, before the
    data's values are filled in (``with_implied_args``)."""
    for part, checked in _WINDOW_ARGS.items():
        where = "baseline" if model.baseline is not None else part
        args = (model.baseline if model.baseline is not None else getattr(model, part)).args
        for name, (said, setting) in checked.items():
            mine, value = args.get(name), implied.get(part, {}).get(name)
            if mine is None or value is None or mine == value:
                continue
            instead = (f"set {setting.format(mine=mine)} instead, or remove model.{where}.args.{name}"
                       if data_name in WINDOW_DATA else f"remove model.{where}.args.{name} from the recipe (the data "
                       "sets it)")
            raise ConfigError(f"model.{where}.args.{name} is {mine}, but the data sets it: {said.format(value=value)}; "
                              f"{instead}")


def split_ratios(split: str, train_ratio: float | None, test_ratio: float | None,
                 rows_per_day: int | None) -> tuple[float, float]:
    """csv_series' ``train_ratio`` and ``test_ratio`` (defaults 0.7 and 0.2), checked. The ratios given with
    split="ett", or rows_per_day with "ratio", are refused: that split never reads them."""
    unread = {"ett": {"train_ratio": train_ratio, "test_ratio": test_ratio}, "ratio": {"rows_per_day": rows_per_day}}
    for key, value in unread.get(split, {}).items():
        if value is not None:
            why = {"ett": "it cuts 12/4/4 months of 30 days", "ratio": "it cuts by train_ratio / test_ratio"}[split]
            raise ConfigError(f"data.args.{key}={value} but split={split!r} never reads it ({why}); leave {key} out, "
                              f"or give split={'ratio' if split == 'ett' else 'ett'}, which reads it")
    ratios = train_ratio, test_ratio = tuple(d if r is None else r for r, d in ((train_ratio, 0.7), (test_ratio, 0.2)))
    if not all(isinstance(r, (int, float)) and not isinstance(r, bool) for r in ratios) \
            or not (0 < train_ratio < 1 and 0 < test_ratio < 1 and train_ratio + test_ratio < 1):
        raise ConfigError(f"data.args.train_ratio ({train_ratio}) and test_ratio ({test_ratio}) must lie in (0, 1) "
                          "and leave rows for validation; e.g. 0.7 and 0.2")
    return train_ratio, test_ratio


__all__ = ["check_window_args", "WINDOW_DATA", "split_ratios"]
