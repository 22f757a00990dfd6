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


__all__ = ["check_window_args", "WINDOW_DATA"]
