"""The model arguments the data implies: filled into a recipe's model (``with_implied_args``), and checked
against a recipe's own values of what the data fixes (``check_fixed_by_data``)."""
from __future__ import annotations

import copy
import inspect
from typing import Any

from ..config import ConfigError
from ..models import ModelConfig


def with_implied_args(config: ModelConfig, implied: dict[str, dict[str, Any]]) -> ModelConfig:
    """A new model config whose tokenizer/head arguments are completed with those the data implies
    (``DataBundle.model_args``: vocab_size, n_classes, horizon...); the recipe's own values win and
    ``config`` is left as it was. A baseline gets those of them its constructor takes (e.g. DLinear:
    n_channels, input_len, horizon)."""
    resolved = copy.deepcopy(config)
    if resolved.baseline is not None:
        from ..models import BASELINES, import_parts

        import_parts()
        accepted = inspect.signature(BASELINES.lookup(resolved.baseline.name)).parameters
        targets = {"tokenizer": resolved.baseline.args, "head": resolved.baseline.args}
    else:
        accepted = None
        targets = {"tokenizer": resolved.tokenizer.args, "head": resolved.head.args}
    if accepted is not None:
        check_baseline_fits(resolved.baseline.name, accepted, implied)
    for part, args in targets.items():
        for key, value in implied.get(part, {}).items():
            if accepted is None or key in accepted:
                args.setdefault(key, value)
    return resolved


def check_baseline_fits(name: str, accepted, implied: dict[str, dict[str, Any]]) -> None:
    """A baseline reads one kind of data: it must take every argument the data gives a head (the task: n_classes
    of a classifier, horizon of a forecaster) and one of those it gives a tokenizer (the input: an image's size,
    a series window's length, a vocabulary), else it would meet batches it cannot read (a forecaster given
    labelled windows, a CNN given series). One line naming what does not fit."""
    head = [key for key in implied.get("head", {}) if key not in accepted]
    tokens = implied.get("tokenizer", {})
    if head or (tokens and not any(key in accepted for key in tokens)):
        given = ", ".join(f"{key}={value}" for part in ("tokenizer", "head") for key, value in
                          implied.get(part, {}).items())
        raise ConfigError(f"baseline {name!r} is not made for this data, which gives the model {given}; choose a "
                          "baseline of the data's domain (README, xformer/baselines/: text LMs ngram_lm, rnn_lm, "
                          "lstm_lm, lstm_seq2seq; images mlp, cnn; series forecasting dlinear, rlinear, sparsetsf, "
                          "lstm_forecaster, last_value, seasonal_naive; series classification fcn, resnet1d) or a "
                          "transformer model")


def check_fixed_by_data(config: ModelConfig, implied: dict[str, dict[str, Any]]) -> None:
    """A recipe's own value of what its data fixes (the classes, the images' channels and size) must be the
    data's, and of what it needs at least (positions, vocabulary ids) no smaller: a model built for other values
    cannot read the data. One line naming the key and the fix."""
    for part, values in implied.items():
        if part not in ("tokenizer", "head"):
            continue
        where = "baseline" if config.baseline is not None else part
        args = (config.baseline if config.baseline is not None else getattr(config, part)).args
        for key, value in values.items():
            _check_fixed_by_data(f"model.{where}.args.{key}", args.get(key), value)


# what the data fixes: a model given other values cannot read it (vocab_size may be larger, as nanoGPT pads it;
# a forecaster's horizon and lookback come from the data's windows already)
_FIXED_BY_DATA = {"n_classes": "the data has {value} classes: remove {key} from the recipe (the data sets it)",
                  "channels": "the images are read with {value} channels: set data.args.channels={mine} to read "
                              "them that way, or remove {key} from the recipe",
                  "image_size": "the images are resized to {value}: set data.args.image_size to change that, or "
                                "remove {key} from the recipe"}


def height_width(size) -> list[int]:
    """An image or patch size as [height, width]: one number (square) or a pair."""
    return [int(size)] * 2 if isinstance(size, (int, float)) else [int(v) for v in size]


# what the data needs at least: a smaller table would be indexed past its end (a traceback mid-training)
_AT_LEAST = {"max_positions": "the data's sequences are up to {value} tokens long: raise {key} to {value} or more, "
                              "or shorten them (data.args.max_length / block_size), or remove {key} (the data sets it)",
             "vocab_size": "the data's vocabulary has {value} ids: raise {key} to {value} or more, or remove it "
                           "(the data sets it)"}


def _check_fixed_by_data(key: str, mine, value) -> None:
    name = key.rsplit(".", 1)[-1]
    if name in _AT_LEAST and isinstance(mine, int) and isinstance(value, int) and 0 < mine < value:
        raise ConfigError(f"{key} is {mine}, but {_AT_LEAST[name].format(value=value, key=key)}")
    if mine is None or name not in _FIXED_BY_DATA:
        return
    if name == "image_size":
        try:
            mine_hw, value_hw = height_width(mine), height_width(value)
        except (TypeError, ValueError):
            return  # not a size at all: the tokenizer's own check says so
        if min(mine_hw) < 1:
            return  # out of range: likewise
        same = mine_hw == value_hw
    else:
        same = mine == value
    if not same:
        shown = value[0] if name == "image_size" and len(set(height_width(value))) == 1 else value
        raise ConfigError(f"{key} is {mine}, but {_FIXED_BY_DATA[name].format(value=shown, key=key, mine=mine)}")


__all__ = ["check_fixed_by_data", "height_width", "with_implied_args"]
