"""The Forecaster's settings and the network they describe (a ModelConfig, as config.yaml holds it)."""
from __future__ import annotations

import numbers
from contextlib import contextmanager
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd
import torch

from ..config import ConfigError
from ..core import CoreConfig
from ..errors import a_or_an
from ..models import ModelConfig, PartConfig
from ..registry import is_whole_number

MODELS = ("patchtst", "steps", "dlinear", "rlinear", "sparsetsf")
# neuralforecast's names for our options (its models', its Lightning trainer's, its cross_validation's), so that
# a user coming from it is told the name here rather than only the list of every valid one
NEURALFORECAST_NAMES = {
    "h": "horizon", "input_size": "input_len", "learning_rate": "lr", "random_seed": "seed", "max_epochs": "epochs",
    "hist_exog_list": "hist_exog", "futr_exog_list": "futr_exog", "stat_exog_list": "stat_exog",
    "hidden_size": "d_model", "encoder_layers": "n_layers", "linear_hidden_size": "d_ff", "fc_dropout": "head_dropout",
    "revin_affine": "affine", "windows_batch_size": "batch_size", "gradient_clip_val": "clip",
    "early_stop_patience_steps": "early_stopping (of fit, in epochs)", "val_size": "val_size (of fit)",
    "step_size": "step", "test_size": "n_windows (test_size = h + step * (n_windows - 1))",
    "level": "quantiles (level=[80, 90] is quantiles=[0.05, 0.1, 0.5, 0.9, 0.95])",
    "enable_progress_bar": "progress",
}
# the options that take a whole number, with the least one; given another type (1.5, 24.0, "3", True), fit would
# fail inside torch or save a config.yaml that load refuses, so each is refused when given
WHOLE = {"input_len": 1, "horizon": 1, "period": 1, "patch_len": 1, "stride": 1, "d_model": 1, "n_layers": 1,
         "n_heads": 1, "d_ff": 1, "epochs": 1, "max_steps": 1, "batch_size": 1, "seed": 0}
OPTIONAL = ("period", "d_ff", "clip", "max_steps")  # None: left out


@dataclass
class ForecasterConfig:
    input_len: int = 96
    horizon: int = 24
    model: str = "patchtst"
    patch_len: int = 16
    stride: int = 8
    d_model: int = 32
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int | None = None
    dropout: float = 0.1
    head_dropout: float = 0.0
    revin: bool = True
    affine: bool = False
    quantiles: list[float] | None = None
    epochs: int = 10
    # a cap on the optimizer steps (neuralforecast's name): fit ends after min(epochs x steps per epoch, max_steps)
    # steps, so that a panel of millions of windows trains in bounded time; None: every epoch runs
    max_steps: int | None = None
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    clip: float | None = 1.0
    seed: int = 0
    device: str = "auto"  # "cpu", "cuda", or "auto" (a GPU when there is one)
    date_column: str | None = "date"  # of a wide table; None: rows numbered 0, 1, 2, ...
    columns: list[str] | None = field(default=None)
    missing: str = "error"
    # a pandas frequency such as "h" (an offset object is kept as its string), or the step of an integer ds
    freq: str | int | None = None  # None: inferred
    hist_exog: list[str] | None = None  # past-observed covariate columns (long format)
    futr_exog: list[str] | None = None  # future-known covariate columns (long format; futr_df at predict)
    calendar: list[str] | None = None  # calendar features from ds: hour, weekday, day, dayofyear, month
    stat_exog: list[str] | None = None  # static (per-series) columns of static_df, one row per unique_id
    period: int | None = None  # sparsetsf only: the season's length in steps (24 for hourly data with a daily cycle)
    progress: bool = True  # False: fit (and cross_validation's fits) print no training progress on stderr

    @property
    def exog(self) -> list[str]:
        """The covariate columns read from the frame (past-observed, then future-known)."""
        return [*(self.hist_exog or []), *(self.futr_exog or [])]

    @property
    def has_covariates(self) -> bool:
        return bool(self.exog or self.calendar or self.stat_exog)

    def __post_init__(self):
        from .covariates import check_calendar

        for name in ("hist_exog", "futr_exog", "calendar", "stat_exog"):
            setattr(self, name, name_list(name, getattr(self, name)))
        check_calendar(self.calendar)
        clash = set(self.hist_exog or []) & set(self.futr_exog or []) | {"unique_id", "ds", "y"} & set(self.exog)
        clash |= {"unique_id"} & set(self.stat_exog or []) | {c for c in self.stat_exog or []
                                                             if (self.stat_exog or []).count(c) > 1}
        if clash:
            raise ConfigError(f"covariate column(s) {sorted(clash)} named twice, or named unique_id / ds / y")
        check_types(self)
        if self.quantiles is not None and len(set(self.quantiles)) != len(self.quantiles):
            # a level twice is trained twice and gives two columns of one name (y_hat_q{q}), one overwriting the other
            raise ConfigError(f"quantiles {self.quantiles} name a level more than once; give each level once, e.g. "
                              "[0.1, 0.5, 0.9]")
        if self.has_covariates and self.model != "patchtst":
            raise ConfigError(f"covariates need model='patchtst' (its tokenizer turns them into tokens), not "
                              f"'{self.model}'")
        if self.period is not None and self.period > self.input_len:
            raise ConfigError(f"period={self.period} is longer than input_len={self.input_len}; give an input_len of at "
                              "least one season")
        if (self.model == "sparsetsf") != (self.period is not None):
            raise ConfigError("model='sparsetsf' needs period=, the season's length in steps (24 for hourly data with "
                              "a daily cycle, 7 for daily data with a weekly one)" if self.model == "sparsetsf" else
                              f"period applies to model='sparsetsf' only, not '{self.model}'; drop it")
        if isinstance(self.freq, pd.offsets.BaseOffset):  # held as its string, which save writes as JSON
            from ..data.frequency_checks import offset_text
            self.freq = offset_text(self.freq)
        if self.freq is not None:
            from .frames import parse_freq
            parse_freq(self.freq)  # the form only: a one-line error here rather than at the first predict


def check_types(cfg: ForecasterConfig) -> None:
    """Each number, flag and the quantiles of the type it takes, so that what is accepted here trains, saves and
    loads back; numpy scalars (np.int64(24) from a frame) become Python numbers, so that save writes JSON."""
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(value, np.generic):
            setattr(cfg, f.name, value.item())
    for name, least in WHOLE.items():
        value = getattr(cfg, name)
        if not (value is None and name in OPTIONAL) and (not is_whole_number(value) or value < least):
            raise ConfigError(f"{name}={value!r}: give a whole number >= {least}"
                              f"{' (or None)' if name in OPTIONAL else ''}")
    for name in ("dropout", "head_dropout", "lr", "weight_decay", "clip"):
        value = getattr(cfg, name)
        if not (value is None and name in OPTIONAL or isinstance(value, numbers.Real) and not isinstance(value, bool)):
            raise ConfigError(f"{name}={value!r}: give a number{' (or None)' if name in OPTIONAL else ''}")
    for name in ("revin", "affine", "progress"):
        if not isinstance(getattr(cfg, name), bool):
            raise ConfigError(f"{name}={getattr(cfg, name)!r}: give True or False")
    if cfg.quantiles is not None:
        levels = cfg.quantiles
        if not isinstance(levels, (list, tuple, np.ndarray, pd.Index, pd.Series)) or getattr(levels, "ndim", 1) != 1 \
                or not all(isinstance(q, numbers.Real) and not isinstance(q, bool) for q in levels):
            shown = repr(levels) if len(repr(levels)) <= 60 else a_or_an(type(levels).__name__)
            raise ConfigError(f"quantiles={shown}: give a list of levels in (0, 1), e.g. quantiles=[0.1, 0.5, 0.9]")
        cfg.quantiles = [float(q) for q in levels]
        if 0.5 not in cfg.quantiles or not all(0 < q < 1 for q in cfg.quantiles):
            # the median is the point forecast (y_hat); neuralforecast's MQLoss levels may leave it out, ours not
            example = sorted({q for q in cfg.quantiles if 0 < q < 1} | {0.5})
            raise ConfigError(f"quantiles={cfg.quantiles}: give levels in (0, 1) that include 0.5, the median the "
                              f"point forecast is, e.g. quantiles={example}")


def given_options(cfg: ForecasterConfig, network: ModelConfig | None = None) -> list[str]:
    """``model`` and each option set to other than its default, as ``name=value`` (a Forecaster's repr); for the
    network of an ``xformer train`` run (``network``), which the model options do not describe, its name instead."""
    defaults = ForecasterConfig()
    first = f"model={cfg.model!r}" if network is None else "network=" + repr(
        network.baseline.name if network.baseline is not None else
        f"{network.tokenizer.name} -> {network.architecture} -> {network.head.name}")
    return [first] + [f"{f.name}={getattr(cfg, f.name)!r}" for f in fields(cfg)
                      if f.name != "model" and getattr(cfg, f.name) != getattr(defaults, f.name)]


def name_list(option: str, value) -> list[str] | None:
    """A covariate option as a list of names: one name (a str) or a sequence of them (list, tuple, pandas Index
    or Series, 1-d numpy array) as plain str, so that save writes it as JSON; None stays None. An item that is no
    text, a name given twice, or a value of another type is refused in one line."""
    what = "calendar feature" if option == "calendar" else "column name"
    example = "['hour']" if option == "calendar" else "['load']"
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if not isinstance(value, (list, tuple, pd.Index, pd.Series, np.ndarray)) or getattr(value, "ndim", 1) != 1:
        shown = repr(value) if "\n" not in repr(value) and len(repr(value)) <= 60 else a_or_an(type(value).__name__)
        raise ConfigError(f"{option} must be a {what} or a list of them, e.g. {option}={example}, got {shown}")
    names = list(value)
    for name in names:
        if not isinstance(name, str):
            raise ConfigError(f"{option} holds {name!r} ({type(name).__name__}), not a {what}; give the names as "
                              f"text, e.g. {option}={example}")
    twice = [name for i, name in enumerate(names) if name in names[:i]]
    if twice:
        raise ConfigError(f"{option} names '{twice[0]}' twice; give each {what} once")
    return [str(name) for name in names]


# the network options each model reads; any other given a value besides its default is refused, not ignored
NETWORK = ("patch_len", "stride", "d_model", "n_layers", "n_heads", "d_ff", "dropout", "head_dropout", "revin", "affine")
READS = {"patchtst": NETWORK, "steps": NETWORK[2:], "dlinear": (), "rlinear": ("dropout", "affine", "revin"),
         "sparsetsf": ()}


def model_config(cfg: ForecasterConfig, n_channels: int) -> ModelConfig:
    """The ModelConfig (as config.yaml holds it) of the forecaster's network."""
    if cfg.model not in MODELS:
        raise ConfigError(f"unknown model '{cfg.model}'; choose one of {', '.join(MODELS)}")
    defaults = ForecasterConfig()
    unread = [f"{name}={getattr(cfg, name)!r}" for name in NETWORK
              if name not in READS.get(cfg.model, NETWORK) and getattr(cfg, name) != getattr(defaults, name)]
    if unread:
        raise ConfigError(f"model='{cfg.model}' does not read {', '.join(unread)} (options of "
                          f"{'the transformer' if cfg.model != 'steps' else 'patch tokens'}); drop them")
    if cfg.model in ("dlinear", "rlinear", "sparsetsf"):
        if cfg.quantiles:
            raise ConfigError(f"{cfg.model} gives point forecasts only; drop quantiles or use model='patchtst'")
        sizes = {"n_channels": n_channels, "input_len": cfg.input_len, "horizon": cfg.horizon}
        if cfg.model == "rlinear":  # the Forecaster's dropout and RevIN affine apply to it as to PatchTST
            if not cfg.revin:
                raise ConfigError("rlinear is RevIN followed by a linear map, so revin=False does not apply; "
                                  "drop it, or use model='dlinear' for a linear model without RevIN")
            sizes.update(dropout=cfg.dropout, affine=cfg.affine)
        if cfg.model == "sparsetsf":
            sizes.update(period=cfg.period)
        return ModelConfig(baseline=PartConfig(cfg.model, sizes))
    common = {"n_channels": n_channels, "input_len": cfg.input_len, "dropout": cfg.dropout, "revin": cfg.revin,
              "affine": cfg.affine}
    tokenizer = (PartConfig("series_patches", {**common, "patch_len": cfg.patch_len, "stride": cfg.stride})
                 if cfg.model == "patchtst" else PartConfig("series_steps", common))
    if cfg.has_covariates:
        tokenizer = PartConfig("series_patches_covariates", {
            **tokenizer.args, "horizon": cfg.horizon, "n_past": len(cfg.hist_exog or []),
            "n_future": len(cfg.futr_exog or []) + len(cfg.calendar or [])})
        if cfg.stat_exog:  # only then, so that the configs of runs without statics stay as they were
            tokenizer.args["n_static"] = len(cfg.stat_exog)
    core = CoreConfig(d_model=cfg.d_model, n_layers=cfg.n_layers, n_heads=cfg.n_heads, d_ff=cfg.d_ff,
                      dropout=cfg.dropout, init="torch")
    head = PartConfig("forecast", {"horizon": cfg.horizon, "dropout": cfg.head_dropout, "quantiles": cfg.quantiles})
    return ModelConfig("encoder", core, tokenizer, head)


@contextmanager
def float32_default():
    """Networks built (and trained) inside are float32, as the windows fed to them are, whatever default dtype
    the process has set (a notebook's torch.set_default_dtype(torch.float64)); that default is restored after."""
    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        yield
    finally:
        torch.set_default_dtype(dtype)


def refuse_unknown(given, valid, what: str) -> None:
    """A one-line error for options of ``what`` not among ``valid``, naming our name for a neuralforecast one."""
    unknown = sorted(set(given) - set(valid))
    if unknown:
        ours = [f"{k} -> {NEURALFORECAST_NAMES[k]}" for k in unknown if k in NEURALFORECAST_NAMES]
        hint = f" (neuralforecast's names; here {', '.join(ours)})" if ours else ""
        raise ConfigError(f"unknown {what} option(s) {unknown}{hint}; valid: {', '.join(sorted(valid))}")


__all__ = ["ForecasterConfig", "model_config", "name_list", "given_options", "float32_default", "MODELS",
           "NEURALFORECAST_NAMES", "refuse_unknown"]
