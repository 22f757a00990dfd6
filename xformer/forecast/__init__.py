"""Forecasting in three lines: ``Forecaster(...).fit(df)``, ``.predict(df)``, ``.plot(df, "forecast.png")``.

    from xformer.forecast import Forecaster, evaluate
    f = Forecaster(input_len=96, horizon=24, epochs=5).fit(df, val_size=24, early_stopping=3)
    future = f.predict(df)             # the next 24 steps of every series
    f.save("runs/my_forecaster")       # a run folder; Forecaster.load("runs/my_forecaster")
    cv = f.cross_validation(df, n_windows=4, step=24)     # rolling-origin backtest
    evaluate(cv, train_df=df)          # MSE, MAE, MASE, sMAPE (pinball, CRPS with quantiles) per series and overall
    f = Forecaster.from_run("runs/patchtst_etth1_96")   # a run folder of `xformer train`

``df`` is long (``unique_id, ds, y``: many series, any lengths and start dates; frames.py) or wide (a
date column and one value column per series). Either way every series is a channel of its own and
one model is trained across all of them (channel independence): each series is scaled by a
StandardScaler fitted on its own training part, cut into windows (stride 1), and the windows of all
series train one network with the project's :class:`~xformer.train.trainer.Trainer` (AdamW,
constant ``lr``, gradients clipped at ``clip``) for ``epochs`` passes. Series too short for one
window are named in a warning (an error when none is long enough).

``model="patchtst"`` (default) is the shared transformer core fed by the ``series_patches``
tokenizer; ``"steps"`` the same core with one token per time step (here one series at a time);
``"dlinear"``, ``"rlinear"`` and ``"sparsetsf"`` the linear baselines (RLinear takes ``dropout`` and ``affine``,
SparseTSF the season's length ``period``). With
``quantiles=[0.1, 0.5, 0.9]`` the model is trained with the pinball loss; a long result has ``y_hat``
(the median) and ``y_hat_q{q}`` for the other levels, a wide result ``{name}`` (the median) and
``{name}_q{q}`` for the other levels.

Modules: estimator.py (Forecaster, fit, predict), frames.py (long / wide input), folder.py (save,
load, runs of xformer train), backtest.py (cross_validation), covariates.py (past / future-known), statics.py
(static_df: per-series static covariates), plot.py, wide.py (a wide input's forecast as a wide table), scoring.py
(evaluate: metrics_forecast.evaluate with train_df put on each series' time grid first).
"""
from .config import ForecasterConfig
from .estimator import Forecaster
from .frames import POINT
from .scoring import evaluate

__all__ = ["Forecaster", "ForecasterConfig", "POINT", "evaluate"]
