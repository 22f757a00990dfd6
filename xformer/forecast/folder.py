"""A fitted Forecaster as a run folder, in the format of ``xformer train`` (no pickle anywhere):

    PATH/config.yaml                            the network (model section, as a training run writes it)
                                                and the training settings
    PATH/forecaster.json                        ForecasterConfig, the frequency, and the per-series scaling
                                                statistics (or, for a multivariate run, its columns and scaler),
                                                and ``trained_until``: each series' last ds in the data of fit
                                                (training and validation rows), for the backtest's warning
    PATH/static_df.csv                          the static covariates of fit (with stat_exog): unique_id and
                                                the stat_exog columns (floats written exactly, as repr)
    PATH/checkpoints/latest.json                {"latest": "step_N", "best": "step_N"}
    PATH/checkpoints/step_N/model.safetensors   the weights
    PATH/checkpoints/step_N/state.json          step and file sizes (checked when read)

``load_run_model`` (xformer/train/run.py) rebuilds the network from config.yaml and reads the weights,
so ``xformer forecast PATH`` and ``xformer backtest PATH`` take such a folder like a training run.
An existing folder that holds files is never written into unless ``overwrite`` is asked for
(xformer/folders.py: the old one is moved aside and restored if the save fails).
"""
from __future__ import annotations

import json
import warnings
from dataclasses import asdict, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from safetensors.torch import save_file
from sklearn.preprocessing import StandardScaler

from ..config import ConfigError, read_json
from ..data.csv_files import read_ids_as_text
from ..folders import OutputFolder, check_distinct_runs, write_atomically
from ..train.checkpoint import MODEL_FILE, POINTER, tied_aliases
from ..train.config import DataConfig, ExperimentConfig, TrainConfig, recipe_dict
from ..train.same_data import RESTORE
from .config import ForecasterConfig, float32_default, model_config
from .frames import DS, ID, freq_label, parse_freq

STATE_FILE = "forecaster.json"
STATIC_FILE = "static_df.csv"
STEP = "step_00000000"


def save(forecaster, path: str | Path, overwrite: bool = False) -> Path:
    from ..ensemble import Ensemble

    if forecaster.model is None:
        raise ConfigError("call fit(df) before save(path)")
    if isinstance(forecaster.model, Ensemble):
        raise ConfigError("an ensemble is kept as its members' folders: load them together again with "
                          "Forecaster.load([PATH, PATH, ...])")
    cfg = forecaster.config
    if not overwrite and Path(path).is_dir() and any(Path(path).iterdir()):
        raise ConfigError(f"{path} already holds files; give a new folder, or pass overwrite=True to replace it")
    if Path(path).is_dir() and any(Path(path).iterdir()) and not (Path(path) / "config.yaml").exists():
        raise ConfigError(f"{path} holds files but no config.yaml, so it is not the folder of a forecaster, and "
                          "overwrite=True replaces only that; give a new folder")
    folder = OutputFolder(path, overwrite, what="forecaster", marker="config.yaml")
    n_channels = 1 if forecaster.columns is None else len(forecaster.columns)
    train = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay,
                        schedule="constant", clip=cfg.clip, seed=cfg.seed)
    network = forecaster.network or model_config(cfg, n_channels)  # a run's own network (from_run), else cfg's
    experiment = ExperimentConfig(model=network, train=train,
                                  data=DataConfig("forecaster", {"input_len": cfg.input_len, "horizon": cfg.horizon}))
    fitted = forecaster.fitted_freq if forecaster.fitted_freq is not None else forecaster.freq
    # the freq of fit; the config's freq, one given to load in its place, is the one the folder forecasts at
    state = {"config": asdict(cfg), "freq": freq_label(fitted),
             "series": {k: list(v) for k, v in forecaster.stats.items()}, "columns": forecaster.columns,
             "covariate_series": forecaster.cov_stats, "static_stats": forecaster.static_stats,
             "fit_report": forecaster.fit_report,
             "trained_until": {k: _stamp(v) for k, v in (fitted_until(forecaster) or {}).items()}}
    if forecaster.scaler is not None:
        state["scaler"] = {"mean": forecaster.scaler.mean_.tolist(), "scale": forecaster.scaler.scale_.tolist()}
    folder.replace()
    try:
        root = folder.path
        write_atomically(root / "config.yaml", yaml.safe_dump(recipe_dict(experiment), sort_keys=False))
        write_atomically(root / STATE_FILE, json.dumps(state, indent=1, default=_plain))
        if forecaster.static is not None:
            write_atomically(root / STATIC_FILE, forecaster.static.to_csv())
        step = root / "checkpoints" / STEP
        step.mkdir(parents=True)
        aliases = tied_aliases(forecaster.model)
        weights = {k: v.detach().cpu().contiguous() for k, v in forecaster.model.state_dict().items()
                   if k not in aliases}
        save_file(weights, step / MODEL_FILE, metadata={"step": "0"})
        files = {MODEL_FILE: (step / MODEL_FILE).stat().st_size}
        write_atomically(step / "state.json", json.dumps({"step": 0, "files": files, "config": recipe_dict(experiment)},
                                                         indent=1))
        write_atomically(root / "checkpoints" / POINTER, json.dumps({"latest": STEP, "best": STEP}, indent=1))
    except BaseException:
        folder.failed()
        raise
    folder.started()
    return folder.path


def _plain(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _stamp(value):
    """A ds for JSON: an integer step as it is, a date as ISO text (with its UTC offset, if it has a zone)."""
    return int(value) if isinstance(value, (int, np.integer)) else pd.Timestamp(value).isoformat()


def fitted_until(forecaster) -> dict | None:
    """{series: the last ds of the data its model was fitted on}, training and validation rows both (the
    validation rows chose the weights): from the panel of the last ``fit`` (``history``), else as recorded
    by ``load`` (forecaster.json's ``trained_until``) or ``from_train_run`` (the run's validation end);
    None when unknown (a folder saved before this was recorded)."""
    history = getattr(forecaster, "history", None)
    if history is not None and forecaster.stats:
        return {k: history.series[k].index[-1] for k in forecaster.stats if k in history.series}
    return getattr(forecaster, "trained_until", None)


def warn_trained_windows(forecaster, cv: pd.DataFrame) -> int:
    """Warn in one line when windows of the backtest ``cv`` (``cross_validation(fit=False)``'s result) forecast
    a step at or before the end of the data the model was fitted on for their series (``fitted_until``): their
    errors are in-sample. Returns how many windows do; series the model was not fitted on never count."""
    until = fitted_until(forecaster)
    if not until or cv.empty:
        return 0
    starts = cv.groupby([ID, "cutoff"], sort=False)[DS].min()  # a window's first forecast step
    seen = []
    for (key, _), first in starts.items():
        end = until.get(str(key))
        try:
            if end is not None and first <= end:
                seen.append((key, end))
        except TypeError:  # integer steps against dates, or a time zone against none: not the data of fit
            continue
    if seen:
        key, end = seen[0]
        warnings.warn(f"{len(seen)} of {len(starts)} backtest windows forecast steps the model was fitted on "
                      f"(e.g. series '{key}', fitted up to {end}), so their errors are in-sample; backtest on rows "
                      "after the data the model was fitted on", stacklevel=4)  # the caller of Forecaster.cross_validation
    return len(seen)


# what decides how a forecaster reads its data and what it outputs: members of an ensemble must agree on all of it
# (but input_len: a member reads its own last steps of the longest window)
READING = ("horizon", "quantiles", "date_column", "missing", "freq", "hist_exog", "futr_exog", "calendar",
           "stat_exog")


def ensemble(members: list, names: list[str] | None = None):
    """One forecaster whose model is the ``Ensemble`` of the fitted forecasters ``members``: their forecasts,
    each quantile too, averaged. They must read data alike: the same horizon, quantiles, columns, covariates
    and scaling statistics, as forecasters fitted on one frame are (seeds, or models of different kinds).
    Their windows (input_len) may differ: the ensemble reads the longest and each member its own last steps
    (``TrailingWindow``), so a series needs the longest window's rows to be forecast.
    ``names`` (their folders) name the one that differs; the result is a new forecaster, the members stay."""
    import copy
    import dataclasses

    from ..ensemble import ensemble_of_windows

    names = names or [f"forecaster {i}" for i in range(len(members))]
    first, *others = members
    if any(member.model is None for member in members):
        raise ConfigError("call fit(df) on every forecaster before combining them")
    for name, other in zip(names[1:], others):
        differ = [key for key in READING if getattr(first.config, key) != getattr(other.config, key)]
        differ += [key for key in ("freq", "stats", "columns", "cov_stats", "static_stats")
                   if getattr(first, key) != getattr(other, key)]
        if (first.scaler is None) != (other.scaler is None) or first.scaler is not None and not (
                np.array_equal(first.scaler.mean_, other.scaler.mean_)
                and np.array_equal(first.scaler.scale_, other.scaler.scale_)):
            differ.append("scaler")
        fitted = list(first.stats)  # the series both were fitted on (equal stats): rows for others do not matter
        if (first.static is None) != (other.static is None) or first.static is not None and \
                not first.static.reindex(fitted).equals(other.static.reindex(fitted)):
            differ.append("static_df")
        if differ:
            raise ConfigError(f"{name} reads its data differently from {names[0]} ({', '.join(differ)} differ); "
                              "ensemble forecasters fitted on the same frame with the same horizon and covariates")
    combined = copy.copy(first)  # the first's fitted_until holds for all: equal statistics, so the same rows of fit
    windows = [member.config.input_len for member in members]
    combined.config = dataclasses.replace(first.config, input_len=max(windows))
    combined.model = ensemble_of_windows([member.model for member in members], windows)
    return combined


@float32_default()
def load(cls, path: str | Path | list[str | Path], freq: str | None = None):
    from ..train.run import load_run_model

    if isinstance(path, (list, tuple)):
        if not path:
            raise ConfigError("Forecaster.load got an empty list; give a folder written by Forecaster.save or "
                              "xformer train, or a list of them (an ensemble)")
        members = [load(cls, member, freq) for member in path]
        return ensemble(members, [str(member) for member in path]) if len(members) > 1 else members[0]
    path = Path(path)
    if not (path / STATE_FILE).is_file():
        if (path / "series_scaler.json").is_file() or (path / "config.yaml").is_file():
            return from_train_run(cls, path, freq)
        problem = f"{path} does not exist" if not path.exists() else \
            f"{path} is not a saved forecaster (no {STATE_FILE})"
        raise ConfigError(f"{problem}; give a folder written by "
                          "Forecaster.save or xformer train")
    try:
        state = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
        known = {f.name for f in fields(ForecasterConfig)}
        config = ForecasterConfig(**{k: v for k, v in state["config"].items() if k in known})
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{path / STATE_FILE} is corrupt ({e}); save the forecaster again") from None
    if freq is not None:
        config = replace(config, freq=freq)  # checked as the Forecaster's own (an offset held as its string)
    forecaster = cls(config)
    network, forecaster.model = load_run_model(path)
    given = config.freq if config.freq is not None else state["freq"]
    forecaster.freq = None if given is None else parse_freq(given)
    if state["freq"] is not None and parse_freq(state["freq"]) != forecaster.freq:  # given to this load, or saved
        forecaster.fitted_freq = parse_freq(state["freq"])  # in the config by a save after a load given it
        saved = state["config"].get("freq")
        forecaster.saved_freq = None if saved is None or parse_freq(saved) == forecaster.fitted_freq else \
            parse_freq(saved)
    forecaster.stats = {k: (float(m), float(s)) for k, (m, s) in state.get("series", {}).items()}
    forecaster.columns = state.get("columns")
    forecaster.network = network.model if forecaster.columns is not None else None  # saved from a run (from_run)
    forecaster.cov_stats = {k: (list(m), list(s)) for k, (m, s) in state.get("covariate_series", {}).items()}
    forecaster.fit_report = state.get("fit_report", {})
    forecaster.trained_until = {k: v if isinstance(v, int) else pd.Timestamp(v)
                                for k, v in state.get("trained_until", {}).items()} or None  # older folders: none
    if state.get("static_stats") is not None:
        if not (path / STATIC_FILE).is_file():
            raise ConfigError(f"{path} lacks {STATIC_FILE}, the static covariates of its fit; save the forecaster "
                              "again")
        forecaster.static = read_ids_as_text(path / STATIC_FILE).set_index(ID).astype("float64")
        forecaster.static_stats = tuple(list(v) for v in state["static_stats"])
    if "scaler" in state:
        forecaster.scaler = _scaler(state["scaler"]["mean"], state["scaler"]["scale"])
    return forecaster


def load_for_command(cls, run_dirs: list[str], freq: str | None, h: int | None, **counts):
    """``cls.load(run_dirs, freq)`` (a Forecaster) for ``xformer forecast`` / ``backtest``, with the options they
    pass on to Python's arguments (``--freq``, ``--h``, and ``counts`` such as ``windows=``, ``step=``) refused in
    the command's own words rather than in those of the arguments (``n_windows must ...``)."""
    for option, value in counts.items():
        if value is not None and value < 1:
            raise ConfigError(f"--{option} {value}: give a whole number >= 1")
    if freq is not None:
        parse_freq(freq, "--freq")
    check_distinct_runs(run_dirs)
    forecaster = cls.load(run_dirs, freq=freq)
    H = forecaster.config.horizon
    if h is not None and not 1 <= h <= H:
        raise ConfigError(f"--h {h}: give 1 to the run's horizon {H} (or leave --h out for all {H} steps)")
    return forecaster


def _scaler(mean, scale) -> StandardScaler:
    """A fitted StandardScaler from its statistics: x_scaled = (x - mean_) / scale_."""
    scaler = StandardScaler()
    scaler.mean_, scaler.scale_ = np.asarray(mean, dtype=np.float64), np.asarray(scale, dtype=np.float64)
    scaler.var_, scaler.n_features_in_, scaler.n_samples_seen_ = scaler.scale_ ** 2, len(scaler.mean_), 1
    return scaler


def _check_scaler_record(path: Path, stats) -> None:
    """A forecasting run's series_scaler.json as ``xformer train`` writes it (``data.series``'s ``save``); a hand edit
    that left a key out or gave it another type is one line naming the file and the key, not a KeyError mid-forecast."""
    if not isinstance(stats, dict):
        raise ConfigError(f'{path} does not hold {{"columns": [...], "input_len": ..., ...}}; {RESTORE}')

    def whole(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v > 0

    def numbers(v, n: int) -> bool:
        return v is None or isinstance(v, list) and len(v) == n and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)

    columns = stats.get("columns")
    n = len(columns) if isinstance(columns, list) else 0
    wanted = {"columns": ("a list of column names", isinstance(columns, list) and columns and all(
                  isinstance(c, str) for c in columns)),
              "date_column": ("a column name or null", stats.get("date_column") is None
                              or isinstance(stats.get("date_column"), str)),
              "input_len": ("a whole number >= 1", whole(stats.get("input_len"))),
              "horizon": ("a whole number >= 1", whole(stats.get("horizon"))),
              "mean": (f"null or {n} number(s), one per column", numbers(stats.get("mean"), n)),
              "scale": (f"null or {n} number(s), one per column", numbers(stats.get("scale"), n))}
    for key, (kind, fits) in wanted.items():
        if key not in stats:
            raise ConfigError(f'{path} lacks "{key}" ({kind}); {RESTORE}')
        if not fits:
            raise ConfigError(f'{path}: "{key}" must be {kind}, got {json.dumps(stats[key])[:60]}; {RESTORE}')
    end = stats.get("validation_end")  # absent from runs older than the record
    try:
        if isinstance(end, str):
            pd.Timestamp(end)
        elif not (end is None or isinstance(end, int) and not isinstance(end, bool)):
            raise TypeError
    except (TypeError, ValueError):
        raise ConfigError(f'{path}: "validation_end" must be a date or a row number, got '
                          f"{json.dumps(end)[:60]}; {RESTORE}") from None


@float32_default()
def from_train_run(cls, run_dir: str | Path, freq: str | None = None):
    """The forecaster of a run folder written by ``xformer train`` on series data (``ett``, ``csv_series``):
    its model (best checkpoint), columns, input length, horizon, quantiles and the StandardScaler of its
    training rows (``series_scaler.json``). It forecasts those columns together (a multivariate model)."""
    from ..train.run import load_run_model

    run_dir = Path(run_dir)
    stats_file = run_dir / "series_scaler.json"
    if (run_dir / "config.yaml").is_file() and not stats_file.is_file():
        raise ConfigError(f"{run_dir} is not a forecasting run (no series_scaler.json); give the folder of "
                          "a run trained on series data (data ett or csv_series)")
    config, model = load_run_model(run_dir)
    stats = read_json(stats_file, RESTORE)
    freq = freq if freq is not None else config.data.args.get("freq")  # the grid the run's data was read on
    # a series classifier writes series_scaler.json too, without a horizon
    if isinstance(stats, dict) and "horizon" not in stats:
        part = config.model.baseline or config.model.head
        raise ConfigError(f"{run_dir} is not a forecasting run (its head is {part.name if part else 'none'}); "
                          "give the run folder of a forecaster")
    _check_scaler_record(stats_file, stats)
    head = config.model.head.args if config.model.baseline is None else {}
    forecaster = cls(input_len=stats["input_len"], horizon=stats["horizon"], quantiles=head.get("quantiles"),
                     date_column=stats["date_column"], columns=stats["columns"],
                     missing=config.data.args.get("missing", "error"), freq=freq)
    n = len(stats["columns"])
    forecaster.scaler = _scaler(stats["mean"] if stats["mean"] is not None else np.zeros(n),
                                stats["scale"] if stats["scale"] is not None else np.ones(n))
    forecaster.model, forecaster.columns, forecaster.network = model, list(stats["columns"]), config.model
    forecaster.freq = None if freq is None else parse_freq(freq)
    recorded = stats.get("freq")  # the run's data's freq (runs older than the record have none)
    if forecaster.freq is not None and recorded is not None and parse_freq(recorded) != forecaster.freq:
        forecaster.fitted_freq = parse_freq(recorded)
    end = stats.get("validation_end")  # recorded by the run's data; runs older than the record have none
    if end is not None:
        end = end if isinstance(end, int) else pd.Timestamp(end)
        forecaster.trained_until = {str(column): end for column in stats["columns"]}
    return forecaster
