"""Forecasting in three lines: ``Forecaster(...).fit(df)``, ``.predict(df)``, ``.plot(df, "forecast.png")``.

    from xformer.forecast import Forecaster
    f = Forecaster(input_len=96, horizon=24, epochs=5).fit(train_df)      # a date column + value columns
    future = f.predict(train_df)       # the next 24 timestamps, one column per series
    f.plot(train_df, "forecast.png", truth=test_df)
    f = Forecaster.from_run("runs/patchtst_etth1_96")                    # a run folder of `xformer train`

``model="patchtst"`` (default) is the shared transformer core fed by the
``series_patches`` tokenizer; ``"steps"`` the same core with one token per time
step; ``"dlinear"`` the DLinear baseline. With ``quantiles=[0.1, 0.5, 0.9]`` the
model is trained with the pinball loss and ``predict`` adds a column
``{name}_q{q}`` per quantile; the plain column is the median.

``fit`` scales every column with a StandardScaler fitted on the frame it is
given, cuts it into windows (stride 1) and trains with the project's
:class:`~xformer.train.trainer.Trainer` (AdamW, constant ``lr``, gradients
clipped at ``clip``) for ``epochs`` passes over them; hold out your own
validation/test rows before calling it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.preprocessing import StandardScaler

from .baselines import build_baseline
from .batch import INPUTS
from .config import ConfigError
from .core import CoreConfig
from .data.series import WindowDataset, read_series
from .data.registry import DataBundle
from .models import ModelConfig, PartConfig, build_model
from .train.config import TrainConfig
from .train.distributed import init_world
from .train.trainer import Trainer

MODELS = ("patchtst", "steps", "dlinear")


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
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    clip: float | None = 1.0
    seed: int = 0
    device: str = "auto"  # "cpu", "cuda", or "auto" (a GPU when there is one)
    date_column: str = "date"
    columns: list[str] | None = field(default=None)
    missing: str = "error"
    freq: str | None = None  # a pandas frequency such as "h"; None: inferred from the date column

    def __post_init__(self):
        if self.freq is not None:
            try:
                pd.tseries.frequencies.to_offset(self.freq)
            except ValueError:
                raise ConfigError(f"freq {self.freq!r} is not a pandas frequency; e.g. h, 15min, D, W, MS") from None


def _build(cfg: ForecasterConfig, n_channels: int) -> torch.nn.Module:
    if cfg.model not in MODELS:
        raise ConfigError(f"unknown model '{cfg.model}'; choose one of {', '.join(MODELS)}")
    if cfg.model == "dlinear":
        if cfg.quantiles:
            raise ConfigError("dlinear gives point forecasts only; drop quantiles or use model='patchtst'")
        return build_baseline("dlinear", n_channels=n_channels, input_len=cfg.input_len, horizon=cfg.horizon)
    common = {"n_channels": n_channels, "input_len": cfg.input_len, "dropout": cfg.dropout, "revin": cfg.revin,
              "affine": cfg.affine}
    tokenizer = (PartConfig("series_patches", {**common, "patch_len": cfg.patch_len, "stride": cfg.stride})
                 if cfg.model == "patchtst" else PartConfig("series_steps", common))
    core = CoreConfig(d_model=cfg.d_model, n_layers=cfg.n_layers, n_heads=cfg.n_heads, d_ff=cfg.d_ff,
                      dropout=cfg.dropout, init="torch")
    head = PartConfig("forecast", {"horizon": cfg.horizon, "dropout": cfg.head_dropout, "quantiles": cfg.quantiles})
    return build_model(ModelConfig("encoder", core, tokenizer, head))


class Forecaster:
    """Estimator-style forecaster; see the module docstring. Keyword arguments override ``config``."""

    def __init__(self, config: ForecasterConfig | None = None, **overrides):
        valid = {f.name for f in fields(ForecasterConfig)}
        unknown = sorted(set(overrides) - valid)
        if unknown:
            raise ConfigError(f"unknown Forecaster option(s) {unknown}; valid: {', '.join(sorted(valid))}")
        self.config = replace(config or ForecasterConfig(), **overrides)
        self.model: torch.nn.Module | None = None

    @classmethod
    def from_run(cls, run_dir: str | Path, freq: str | None = None) -> "Forecaster":
        """The forecaster of a run folder written by ``xformer train`` on series data (``ett``,
        ``csv_series``): its model (best checkpoint), columns, input length, horizon, quantiles and the
        StandardScaler of its training rows (``series_scaler.json``). ``freq``: as in ForecasterConfig."""
        import json

        from .train.run import load_run_model

        run_dir = Path(run_dir)
        stats_file = run_dir / "series_scaler.json"
        if (run_dir / "config.yaml").is_file() and not stats_file.is_file():
            raise ConfigError(f"{run_dir} is not a forecasting run (no series_scaler.json); give the folder of "
                              "a run trained on series data (data ett or csv_series)")
        config, model = load_run_model(run_dir)
        stats = json.loads(stats_file.read_text())
        head = config.model.head.args if config.model.baseline is None else {}
        forecaster = cls(input_len=stats["input_len"], horizon=stats["horizon"], quantiles=head.get("quantiles"),
                         date_column=stats["date_column"] or "date", columns=stats["columns"],
                         missing=config.data.args.get("missing", "error"), freq=freq)
        n = len(stats["columns"])
        scaler = StandardScaler()  # fitted state written back: x_scaled = (x - mean_) / scale_
        scaler.mean_ = np.asarray(stats["mean"] if stats["mean"] is not None else np.zeros(n), dtype=np.float64)
        scaler.scale_ = np.asarray(stats["scale"] if stats["scale"] is not None else np.ones(n), dtype=np.float64)
        scaler.var_, scaler.n_features_in_, scaler.n_samples_seen_ = scaler.scale_ ** 2, n, 1
        forecaster.model, forecaster.scaler, forecaster.columns = model, scaler, list(stats["columns"])
        forecaster.freq = freq
        return forecaster

    def _frame(self, df: pd.DataFrame | str | Path, columns: list[str] | None) -> pd.DataFrame:
        cfg = self.config
        return read_series(df, cfg.date_column, columns, cfg.missing)

    def fit(self, df: pd.DataFrame | str | Path) -> "Forecaster":
        """Train on every window of ``df`` (a DataFrame or CSV path with a date column); returns self."""
        cfg = self.config
        frame = self._frame(df, cfg.columns)
        self.columns, self.freq = list(frame.columns), cfg.freq or self._infer_freq(frame)
        self.scaler = StandardScaler().fit(frame.to_numpy())
        data = WindowDataset(self.scaler.transform(frame.to_numpy()), cfg.input_len, cfg.horizon)
        torch.manual_seed(cfg.seed)
        self.model = _build(cfg, len(self.columns))
        train = TrainConfig(epochs=cfg.epochs, batch_size=min(cfg.batch_size, len(data)), lr=cfg.lr,
                            weight_decay=cfg.weight_decay, schedule="constant", clip=cfg.clip,
                            eval_every=10**9, log_every=10**9, seed=cfg.seed, device=cfg.device)
        Trainer(self.model, DataBundle(train=data), train, None, init_world(cfg.device)).fit()
        self.model.eval()
        return self

    @torch.no_grad()
    def predict(self, df: pd.DataFrame | str | Path) -> pd.DataFrame:
        """Forecast the ``horizon`` steps after the last row of ``df``, indexed by their timestamps."""
        if self.model is None:
            raise ConfigError("call fit(df) before predict(df)")
        cfg = self.config
        frame = self._frame(df, self.columns)
        if len(frame) < cfg.input_len:
            raise ConfigError(f"predict needs at least input_len={cfg.input_len} rows, got {len(frame)}")
        x = torch.as_tensor(self.scaler.transform(frame.to_numpy()[-cfg.input_len:]), dtype=torch.float32)
        self.model.eval()
        x = x.to(next(self.model.parameters()).device)
        out = self.model({INPUTS: x[None]})
        freq = self.freq if self.freq is not None else self._infer_freq(frame)
        index = pd.date_range(frame.index[-1], periods=cfg.horizon + 1, freq=freq)[1:]
        index.name = frame.index.name
        result = pd.DataFrame(self._unscale(out["prediction"][0]), index=index, columns=self.columns)
        if "quantiles" in out:
            qs = sorted(cfg.quantiles)
            for j, q in enumerate(qs):
                values = self._unscale(out["quantiles"][0, :, :, j])
                for c, name in enumerate(self.columns):
                    result[f"{name}_q{q:g}"] = values[:, c]
        return result

    def plot(self, df: pd.DataFrame | str | Path, path: str | Path, truth: pd.DataFrame | None = None,
             history: int | None = None) -> Path:
        """PNG of the last ``history`` rows (default 2 * input_len), the forecast (and quantile band) and ``truth``."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        frame, forecast = self._frame(df, self.columns), self.predict(df)
        past = frame.iloc[-(history or 2 * self.config.input_len):]
        true = self._frame(truth, self.columns).loc[forecast.index[0]:forecast.index[-1]] if truth is not None else None
        fig, axes = plt.subplots(len(self.columns), 1, figsize=(10, 2.2 * len(self.columns)), sharex=True,
                                 squeeze=False)
        qs = sorted(self.config.quantiles or [])
        for ax, name in zip(axes[:, 0], self.columns):
            ax.plot(past.index, past[name], color="0.4", lw=1, label="history")
            if true is not None:
                ax.plot(true.index, true[name], color="black", lw=1, label="truth")
            ax.plot(forecast.index, forecast[name], color="tab:blue", lw=1.5, label="forecast")
            if len(qs) >= 2:
                ax.fill_between(forecast.index, forecast[f"{name}_q{qs[0]:g}"], forecast[f"{name}_q{qs[-1]:g}"],
                                color="tab:blue", alpha=0.2, label=f"q{qs[0]:g}-q{qs[-1]:g}")
            ax.set_ylabel(name)
        axes[0, 0].legend(loc="upper left", fontsize="small")
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path

    def _unscale(self, y: torch.Tensor) -> np.ndarray:
        return self.scaler.inverse_transform(y.double().cpu().numpy())

    def _infer_freq(self, frame: pd.DataFrame) -> pd.DateOffset:
        freq = pd.DatetimeIndex(frame.index, freq="infer").freq if len(frame) >= 3 else None
        if freq is None:
            raise ConfigError(f"cannot infer a regular frequency from column '{self.config.date_column}'; "
                              "pass freq (e.g. freq='h' to Forecaster, --freq h to xformer forecast)")
        return freq


__all__ = ["Forecaster", "ForecasterConfig"]
