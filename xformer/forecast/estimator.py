"""The estimator: ``Forecaster(...).fit(df)``, ``.predict(df)``, ``.plot(...)``; see the package docstring."""
from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.preprocessing import StandardScaler

from ..batch import INPUTS
from ..config import ConfigError
from ..data.registry import DataBundle
from ..data.series import fill_gaps
from ..models import build_model
from ..registry import is_whole_number
from ..train.config import EarlyStopping, TrainConfig
from ..train.distributed import init_world
from ..train.progress import Progress
from ..train.trainer import Trainer
from .checks import (check_data_freq, check_future_horizon, check_patches, ensemble_members, refuse_all_short,
                     too_short, usable)
from .config import ForecasterConfig, float32_default, given_options, model_config, refuse_unknown
from .covariates import (FUTURE, PAST, STATIC, check_training_covariates, covariate_stats, series_windows,
                         standard_stats, window_covariates)
from .frames import (Panel, check_freq, fill_series, forecast_frame, future_dates, infer_freq,
                     read_panel, report_short)
from .future import future_frame, missing_future, with_future
from .statics import check_static, read_static, static_stats, static_vector
from .wide import to_wide
from .windows import PanelWindows, pass_batches

class _KeepBest(Trainer):
    """A trainer without a run folder that keeps, in memory, the weights of its best validation loss."""

    best_state: dict | None = None

    def save(self) -> None:
        if self.data.val is not None and self.best_step == self.step:
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}


def _scale_stats(values: np.ndarray) -> tuple[float, float]:
    """StandardScaler's mean and scale of one series: x_scaled = (x - mean) / scale (scale 1 for a constant)."""
    mean, scale = standard_stats(values.reshape(-1, 1))
    return float(mean[0]), float(scale[0])


class Forecaster:
    """Estimator-style forecaster; see the package docstring. Keyword arguments override ``config``.

    Fitted state: ``model``, ``freq``, and either ``stats`` (per-series mean and scale, one model for
    every series) or, for a run of ``xformer train`` on a wide table (``from_run``), ``columns`` and
    ``scaler`` (a multivariate model of those columns)."""

    def __init__(self, config: ForecasterConfig | None = None, **overrides):
        refuse_unknown(overrides, [f.name for f in fields(ForecasterConfig)], "Forecaster")
        self.config = replace(config or ForecasterConfig(), **overrides)
        check_patches(self.config)
        self.model: torch.nn.Module | None = None
        self.freq: pd.DateOffset | None = None
        self.stats: dict[str, tuple[float, float]] = {}
        self.cov_stats: dict[str, tuple[list[float], list[float]]] = {}  # per series: covariate means, scales
        self.static: pd.DataFrame | None = None  # static_df of fit (stat_exog columns by unique_id), remembered
        self.static_stats: tuple[list[float], list[float]] | None = None  # its means, scales over training series
        self.columns: list[str] | None = None
        self.scaler: StandardScaler | None = None
        self.fit_report: dict = {}
        self.history: Panel | None = None  # the series of the last fit (not a backtest's), for predict() without df
        self.trained_until: dict | None = None  # a loaded one's: each series' last ds in the data of fit
        self.fitted_freq = None  # a loaded one's freq of fit, when it forecasts at another (its messages name both)
        self.saved_freq = None  # the other, when its folder's config holds it (saved after a load given it)
        self.network = None  # from_run: the run's ModelConfig, which the config's model options do not describe

    def __repr__(self) -> str:
        fitted = f" fitted on {len(self.stats or self.columns or [])} series" if self.model is not None else ""
        return f"Forecaster({', '.join(given_options(self.config, self.network))}){fitted}"

    # ---- persistence (xformer/forecast/folder.py) -------------------------------------------------------
    @classmethod
    def from_run(cls, run_dir: str | Path, freq: str | None = None) -> "Forecaster":
        """The forecaster of a run folder of ``xformer train`` on series data (``ett``, ``csv_series``)."""
        from .folder import from_train_run

        return from_train_run(cls, run_dir, freq)

    @classmethod
    def load(cls, path: str | Path | list[str | Path], freq: str | None = None) -> "Forecaster":
        """A forecaster saved with :meth:`save`, or the run folder of ``xformer train`` on series data; a list of
        them gives one forecaster that averages their forecasts (a seed ensemble, ``xformer.ensemble``)."""
        from .folder import load

        return load(cls, path, freq)

    @classmethod
    def ensemble(cls, members: list["Forecaster | str | Path"]) -> "Forecaster":
        """A forecaster that averages the forecasts (each quantile too) of two or more fitted forecasters of one
        frame (seeds): ``Forecaster.ensemble([f1, f2, f3])``; an item may be a saved folder (``load``)."""
        from .folder import ensemble

        return ensemble(*ensemble_members(members, cls))

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write a run folder (config.yaml, forecaster.json, checkpoints/ with safetensors weights); a folder
        that holds files is refused unless ``overwrite``."""
        from .folder import save

        return save(self, path, overwrite)

    def cross_validation(self, df, n_windows: int = 1, step: int | None = None, h: int | None = None,
                         fit: bool = True, val_size: int = 0, early_stopping: int | None = None,
                         static_df=None, refit: bool | int = False, **unknown) -> pd.DataFrame:
        """Rolling-origin backtest; see :func:`xformer.forecast.backtest.cross_validation`. With ``fit=True`` the
        windows' models are trained on a fresh forecaster of this config: this one is never changed."""
        from .backtest import cross_validation

        refuse_unknown(unknown, ["n_windows", "step", "h", "fit", "val_size", "early_stopping", "static_df", "refit"],
                       "cross_validation")

        return cross_validation(self, df, n_windows, step, h, fit, val_size, early_stopping, static_df, refit)

    # ---- training -----------------------------------------------------------------------------------------
    def read(self, df, fitting: bool = False) -> Panel:
        """The series of ``df`` (long or wide frame, CSV path, or a Panel already read) on the grid of the freq
        given, else fitted (unless ``fitting``), else inferred; a run's ``columns`` read as one aligned table."""
        if isinstance(df, Panel):
            return df
        cfg, freq = self.config, self.config.freq if fitting or self.freq is None else self.freq
        return read_panel(df, cfg.date_column, self.columns or cfg.columns, cfg.missing, cfg.exog, freq=freq,
                          aligned=self.columns is not None, least=cfg.input_len + cfg.horizon * fitting)

    def fit(self, df, val_size: int = 0, early_stopping: int | None = None, static_df=None) -> "Forecaster":
        """Train one model on every window of every series of ``df`` (long or wide), ``epochs`` times or for
        ``max_steps`` batches if fewer; returns self. The fitted state is replaced only once training has
        finished: a fit refused or interrupted leaves it as it was.

        ``val_size``: the last ``val_size`` steps of each series are held out (0, or at least ``horizon``);
        the model is evaluated on their windows after every epoch and the weights of the best validation
        loss are kept. ``early_stopping``: stop after that many epochs without a better validation loss.
        ``static_df``: ``unique_id`` and the ``stat_exog`` columns, one row per series (statics.py);
        remembered for predict, cross_validation and save."""
        self.check_fittable()  # before reading: a run's columns may not be in df at all
        return self.fit_panel(self.read(df, fitting=True), val_size, early_stopping, static_df)

    @float32_default()
    def fit_panel(self, panel: Panel, val_size: int = 0, early_stopping: int | None = None,
                  static_df=None) -> "Forecaster":
        cfg = self.config
        L, H = cfg.input_len, cfg.horizon
        if not isinstance(val_size, (int, np.integer)) or val_size < 0 or 0 < val_size < H:
            raise ConfigError(f"val_size must be 0 or a whole number of steps >= horizon={H}, got {val_size!r}")
        if early_stopping is not None and (not is_whole_number(early_stopping) or early_stopping < 1):
            raise ConfigError(f"early_stopping must be a patience of at least 1 epoch, got {early_stopping!r}")
        if early_stopping is not None and not val_size:
            raise ConfigError("early_stopping needs a validation split; pass val_size (e.g. val_size=horizon)")
        self.check_fittable()
        check_patches(cfg)
        need, raw = L + H + val_size, panel
        short = [k for k, s in panel.series.items() if len(s) < need]  # left out before the frequency checks
        freq = infer_freq(usable(panel, short), cfg.freq)
        short = too_short(panel, short, need, freq, lambda p: check_freq(p, freq, inferred=cfg.freq is None))
        panel = fill_series(panel, cfg.missing)  # the panel is all history: each series filled from its own rows
        refuse_all_short(panel, short, need, val_size, cfg)
        static = read_static(static_df, cfg.stat_exog) if static_df is not None or not cfg.stat_exog else self.static
        trained = [k for k in panel.ids if k not in short]
        check_static(static, trained, cfg.stat_exog)
        static_scaling = static_stats(static, trained) if cfg.stat_exog else None
        report_short(short, need, "training")
        stats, cov_stats, train_sets, val_sets = {}, {}, [], []
        for key, s in panel.series.items():
            if key in short:
                continue
            n_train = len(s) - val_size
            part = fill_gaps(raw.series[key].iloc[:n_train], cfg.missing).to_numpy()  # from its own rows only
            if np.isnan(part).all():
                raise ConfigError(f"series '{key}' holds no value before its last val_size={val_size} steps; give "
                                  "it values there, or leave it out")
            stats[key] = _scale_stats(part)  # the training part only
            cov = (raw.covariates or {}).get(key) if cfg.has_covariates else None
            if cfg.exog and cov is not None:  # the training part's rows, filled from its own rows
                part = fill_gaps(cov.loc[:s.index[n_train - 1]], cfg.missing).reindex(s.index[:n_train])
                check_training_covariates(key, part, val_size)
                cov_stats[key] = tuple(v.tolist() for v in standard_stats(part.to_numpy()))  # as covariate_stats
            vector = static_vector(static, key, static_scaling) if cfg.stat_exog else None
            # each split's windows filled from the rows up to its end: training [0, n_train), validation to the end
            windows = lambda lo, hi: series_windows(cfg, key, raw.series[key], cov, stats[key],  # noqa: E731
                                                    cov_stats.get(key), lo, hi, vector)
            train_sets.append(windows(0, n_train))
            if val_size:
                val_sets.append(windows(n_train - L, len(s)))
        data = PanelWindows(train_sets)  # batches gathered at once (windows.py), as ConcatDataset numbers them
        val = PanelWindows(val_sets) if val_sets else None
        torch.manual_seed(cfg.seed)
        model = build_model(model_config(cfg, 1))
        batch_size = min(cfg.batch_size, len(data))
        epoch_steps = len(data) // batch_size  # the trainer's: full batches only
        steps = min(cfg.epochs * epoch_steps, cfg.max_steps or cfg.epochs * epoch_steps)
        train = TrainConfig(steps=steps, batch_size=batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay,
                            schedule="constant", clip=cfg.clip, log_every=10**9, seed=cfg.seed, device=cfg.device,
                            eval_every=epoch_steps if val is not None else 10**9,
                            early_stopping=EarlyStopping(patience=early_stopping))
        bundle = DataBundle(train=data, val=val, collate=pass_batches)
        trainer = _KeepBest(model, bundle, train, None, init_world(cfg.device))
        trainer.fit(progress=None if cfg.progress else Progress(quiet=True))
        if trainer.best_state is not None:
            model.load_state_dict(trainer.best_state)
        report = {"series": len(stats), "windows": len(data), "steps": trainer.step,
                  "epochs": trainer.step / trainer.steps_per_epoch, "max_steps": cfg.max_steps, "left_out": short}
        if val is not None:
            report.update(val_windows=len(val), best_val_loss=trainer.best,
                          best_epoch=trainer.best_step / trainer.steps_per_epoch)
        # committed only now: a fit refused or interrupted above leaves the forecaster as it was
        self.model, self.freq, self.history, self.fit_report = model.eval(), freq, raw, report
        self.stats, self.cov_stats, self.static, self.static_stats = stats, cov_stats, static, static_scaling
        return self

    def check_fittable(self) -> None:
        """A forecaster holding the model of an ``xformer train`` run (``from_run``: a model of ``columns``
        together, with the run's own architecture and training settings) is refused by ``fit``: the Forecaster
        can only train its own models, so fitting would backtest or forecast a different model under the run's
        name."""
        if self.columns is not None:
            raise ConfigError(f"this forecaster holds the trained model of an xformer train run (series {self.columns} "
                              "together); fit would replace it with a different model: pass fit=False to backtest "
                              "the run as it is (cross_validation(df, fit=False), xformer backtest), or retrain it "
                              "with xformer train")

    # ---- forecasting --------------------------------------------------------------------------------------
    def predict(self, df=None, h: int | None = None, futr_df=None, static_df=None) -> pd.DataFrame:
        """Forecast the ``h`` (default ``horizon``) steps after the end of every series of ``df``; without
        ``df``, after the end of the series ``fit`` trained on (as neuralforecast's ``predict()``).

        Long input gives a long result: ``unique_id, ds, y_hat`` (the median with quantiles) and a
        ``y_hat_q{q}`` column per other quantile. A wide table gives a wide result: indexed by the dates, one
        column per series (the median) and ``{name}_q{q}`` per other quantile. ``futr_df``: the future-known
        covariates (``unique_id, ds`` and the ``futr_exog`` columns) for the horizon after each series.
        ``static_df``: the static covariates (as in ``fit``); default the ones remembered from fit."""
        panel = self.with_future(self.read(self._data_or_history(df)), futr_df)
        result = self.predict_panel(panel, h, static_df)
        if not panel.wide_date_column:
            return result
        freq = self.freq if self.freq is not None else infer_freq(panel, self.config.freq)
        return to_wide(result, panel.wide_date_column, self.config.quantiles, freq)

    def make_future_dataframe(self, df=None) -> pd.DataFrame:
        """``unique_id, ds`` of the ``horizon`` steps after each series of ``df`` (default: the data of fit), the frame
        to give the ``futr_exog`` values and pass as ``predict``'s ``futr_df`` (neuralforecast's)."""
        panel = fill_series(self.read(self._data_or_history(df)), self.config.missing)  # as predict reads it
        return future_frame(panel, self._freq_and_short(panel)[0], self.config.horizon)

    def get_missing_future(self, futr_df, df=None) -> pd.DataFrame:
        """The rows of ``make_future_dataframe(df)`` that ``futr_df`` lacks (neuralforecast's); empty: none."""
        return missing_future(self.make_future_dataframe(df), futr_df)

    def predict_panel(self, panel: Panel, h: int | None = None, static_df=None) -> pd.DataFrame:
        """``predict`` on series read already; each forecast starts after its series' last row (its origin),
        and the gaps of its history are filled from the rows up to that origin only."""
        h = self._check_h(h)
        cfg = self.config
        panel = fill_series(panel, cfg.missing)
        freq, short = self._freq_and_short(panel)
        table = self.static if static_df is None else read_static(static_df, cfg.stat_exog)  # checked first
        if self.columns is not None:
            keys, (points, quantiles) = self.columns, self._forecast_multivariate(panel)
        else:
            if len(short) == len(panel.series):
                raise ConfigError(f"predict needs at least input_len={cfg.input_len} rows of a series, the longest "
                                  f"has {max(len(s) for s in panel.series.values())}")
            report_short(short, cfg.input_len, "the forecast")
            keys = [k for k in panel.ids if k not in short]
            covariates = None
            if cfg.has_covariates:
                check_static(table, keys, cfg.stat_exog)
                check_future_horizon(cfg, panel, keys, freq, h)
                covariates = {k: (*window_covariates(cfg, k, (panel.covariates or {}).get(k), self._cov_stats(panel, k),
                                                     panel.series[k].index,
                                                     future_dates(panel.series[k].index[-1], freq, cfg.horizon)),
                                  static_vector(table, k, self.static_stats) if cfg.stat_exog else np.zeros(0))
                              for k in keys}
            points, quantiles = self.forecast_histories({k: panel.series[k].to_numpy() for k in keys}, covariates)
        ends = [panel.series[k].index[-1] for k in keys]
        ahead = {end: future_dates(end, freq, h) for end in dict.fromkeys(ends)}  # series mostly end together
        return forecast_frame(keys, [ahead[end] for end in ends], points[:, :h],
                              None if quantiles is None else quantiles[:, :h], cfg.quantiles)

    def _freq_and_short(self, panel: Panel) -> tuple:
        """The step of ``panel``'s dates, checked against the fitted one, and the series shorter than input_len."""
        cfg = self.config
        short = [k for k, s in panel.series.items() if len(s) < cfg.input_len] if self.columns is None else []
        if self.freq is None:  # a run of xformer train loaded without freq: the data's own
            freq = infer_freq(panel, cfg.freq)
            check_freq(panel, freq)  # every series' dates, also those pandas inferred no freq from
            return freq, short
        # the fitted (or given) freq must fit these dates too (short series aside), or forecasts are misdated
        from .folder import fitted_until

        until = fitted_until(self) or {}  # a ds of fit: which kind of ds it was fitted on
        check = lambda p: check_data_freq(p, self.freq, given=cfg.freq is not None,  # noqa: E731
                                          fitted=next(iter(until.values()), None), loaded_over=self.fitted_freq,
                                          saved_with=self.saved_freq)
        check(usable(panel, short))
        return self.freq, too_short(panel, short, cfg.input_len, self.freq, check)

    @torch.no_grad()
    def forecast_histories(self, histories: dict[str, np.ndarray], covariates: dict | None = None
                           ) -> tuple[np.ndarray, np.ndarray | None]:
        """Point forecasts (S, H) and quantiles (S, H, Q) from the last input_len values of each history,
        each scaled with its series' training statistics (a series not seen in fit: its history's own);
        ``covariates``: {id: (past (L, P), future (L + H, F), static (S,))}, as ``window_covariates`` and
        ``static_vector`` give them."""
        if self.model is None:
            raise ConfigError("call fit(df) before predict(df)")
        L = self.config.input_len
        stats = np.array([self.stats.get(k) or _scale_stats(v) for k, v in histories.items()])  # (S, 2)
        x = np.stack([v[-L:] for v in histories.values()])
        z = torch.as_tensor((x - stats[:, :1]) / stats[:, 1:], dtype=torch.float32)[..., None]
        device = next(iter(self.model.parameters()), torch.empty(0)).device
        self.model.eval()
        points, quantiles = [], []
        extra = {}
        if covariates is not None:
            for j, key in enumerate((PAST, FUTURE, STATIC)):
                extra[key] = torch.as_tensor(np.stack([covariates[k][j] for k in histories]), dtype=torch.float32)
        for i, chunk in enumerate(torch.split(z, 512)):
            batch = {k: v[i * 512:(i + 1) * 512].to(device) for k, v in extra.items() if v.shape[-1]}
            out = self.model({INPUTS: chunk.to(device), **batch})
            points.append(out["prediction"][..., 0].double().cpu())
            if "quantiles" in out:
                quantiles.append(out["quantiles"][:, :, 0].double().cpu())
        mean, scale = stats[:, 0, None], stats[:, 1, None]
        point = torch.cat(points).numpy() * scale + mean
        q = torch.cat(quantiles).numpy() * scale[..., None] + mean[..., None] if quantiles else None
        return point, q

    @torch.no_grad()
    def _forecast_multivariate(self, panel: Panel) -> tuple[np.ndarray, np.ndarray | None]:
        """A run trained on a wide table: its columns, aligned in time, through its C-channel model."""
        L = self.config.input_len
        absent = [c for c in self.columns if c not in panel.series]
        if absent:
            raise ConfigError(f"the model forecasts series {self.columns} together; the data lacks {absent}")
        frame = pd.DataFrame({c: panel.series[c] for c in self.columns})
        if frame.isna().any().any():
            raise ConfigError(f"series {self.columns} must share their timestamps for this model (it reads them "
                              "together); align them or give them as one wide table")
        if len(frame) < L:
            raise ConfigError(f"predict needs at least input_len={L} rows, got {len(frame)}")
        x = torch.as_tensor(self.scaler.transform(frame.to_numpy()[-L:]), dtype=torch.float32)
        self.model.eval()
        out = self.model({INPUTS: x[None].to(next(iter(self.model.parameters()), torch.empty(0)).device)})
        unscale = lambda y: self.scaler.inverse_transform(y.double().cpu().numpy())  # noqa: E731
        point = unscale(out["prediction"][0]).T  # (C, H)
        if "quantiles" not in out:
            return point, None
        q = np.stack([unscale(out["quantiles"][0, :, :, j]) for j in range(out["quantiles"].shape[-1])], -1)
        return point, q.transpose(1, 0, 2)  # (C, H, Q)

    def _cov_stats(self, panel: Panel, key: str):
        """A series' covariate statistics from fit; for a series not seen there, its own history's."""
        if not self.config.exog or key in self.cov_stats:
            return self.cov_stats.get(key)
        return covariate_stats(panel.covariates[key], panel.series[key].index)

    def with_future(self, panel: Panel, futr_df, origins: dict | None = None) -> Panel:
        """``panel`` with the future-known covariates of ``futr_df`` added after each series' rows, or after its
        ``origins`` (``xformer forecast --at``); see :func:`xformer.forecast.future.with_future`."""
        return with_future(self.config, panel, futr_df, origins)

    def _data_or_history(self, df):
        if df is None and self.history is None:
            raise ConfigError("without df the forecast starts after the data of fit, and this forecaster holds none "
                              "(it was loaded or not fitted); pass the series as df")
        return self.history if df is None else df

    def _check_h(self, h: int | None) -> int:
        H = self.config.horizon
        if h is None:
            return H
        if not isinstance(h, (int, np.integer)) or not 1 <= h <= H:
            raise ConfigError(f"h must be a whole number from 1 to the trained horizon {H}, got {h!r}")
        return int(h)

    def plot(self, df, path: str | Path, truth=None, history: int | None = None,
             series=None, futr_df=None, static_df=None, overwrite: bool = False) -> Path:
        """A figure (PNG, SVG, PDF or JPG, from ``path``'s suffix) of the last ``history`` steps (default
        2 * input_len), the forecast, its quantile band and ``truth`` (a frame holding the later values) for
        ``series`` (one id or a list; ids are compared as text, as they are read: ``series=1`` is id "1";
        default: all of a wide table, the first four of a long frame); ``futr_df`` and ``static_df`` as in
        ``predict``. An existing file at ``path`` is replaced only with ``overwrite=True``, as ``save``'s folder."""
        from .plot import figure_path, plot_forecast

        return plot_forecast(self, df, figure_path(path, overwrite), truth, history, series, futr_df, static_df)


__all__ = ["Forecaster"]
