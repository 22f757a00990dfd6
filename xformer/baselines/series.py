"""Forecasting baselines: last value, seasonal naive, DLinear (Zeng et al. 2023, LTSF-Linear), RLinear
(Li et al. 2023, RevIN + one linear map) and SparseTSF (Lin et al. 2024, one linear map across periods).

Each is a small ``nn.Module`` with the forward contract of :class:`xformer.models.Model`:
``forward(batch) -> {"prediction": (B, H, C), "loss", "loss_weight"}`` (the loss
only when the batch has ``targets``), reading ``inputs`` (B, L, C). So the
trainer trains DLinear like any model, and ``DataBundle.evaluate`` scores all
three next to the transformer. Build one by name:

    model = build_baseline("dlinear", n_channels=7, input_len=336, horizon=96)

The arguments ``n_channels``, ``input_len`` and ``horizon`` are the ones a
series ``DataBundle.model_args`` provides (a recipe names one as ``model: {baseline: {name: dlinear}}``
and the data fills them in). ``last_value`` and ``seasonal_naive``
have no parameters: evaluate them, there is nothing to train.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..batch import INPUTS, batch_input
from ..errors import ConfigError
from ..heads.forecasting import forecast_output
from ..registry import check_sizes, register_baseline
from ..tokenizers.series import RevIN


def moving_average(x: Tensor, kernel_size: int = 25) -> Tensor:
    """Trend of x (B, L, C) as LTSF-Linear's ``moving_avg``: replicate-pad (k-1)/2 steps at both ends, then

        trend_t = 1/k * sum_{j=-(k-1)/2}^{(k-1)/2} x_pad[t + j]

    (an ``AvgPool1d(k, stride=1)``), so the trend has the input's length L.
    """
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd so the trend keeps the input length, got {kernel_size}")
    half = (kernel_size - 1) // 2
    padded = torch.cat([x[:, :1].expand(-1, half, -1), x, x[:, -1:].expand(-1, half, -1)], dim=1)
    return nn.functional.avg_pool1d(padded.transpose(1, 2), kernel_size, stride=1).transpose(1, 2)


class DLinear(nn.Module):
    """y_hat = W_s seasonal + W_t trend, with trend = moving_average(x), seasonal = x - trend.

    W_s, W_t: (L -> H) linear maps along time, shared by all channels
    (``individual=False``, the paper's default) or one pair per channel.
    """

    def __init__(self, n_channels: int, input_len: int, horizon: int, kernel_size: int = 25,
                 individual: bool = False):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.kernel_size, self.individual = kernel_size, individual
        n = n_channels if individual else 1
        self.seasonal = nn.ModuleList(nn.Linear(input_len, horizon) for _ in range(n))
        self.trend = nn.ModuleList(nn.Linear(input_len, horizon) for _ in range(n))

    def forward(self, batch: dict) -> dict:
        x = batch_input(batch, INPUTS)
        trend = moving_average(x, self.kernel_size)
        seasonal, trend = (x - trend).transpose(1, 2), trend.transpose(1, 2)  # (B, C, L)
        if self.individual:
            y = torch.stack([self.seasonal[c](seasonal[:, c]) + self.trend[c](trend[:, c])
                             for c in range(x.shape[2])], dim=1)
        else:
            y = self.seasonal[0](seasonal) + self.trend[0](trend)
        return forecast_output(y.transpose(1, 2), batch)


class RLinear(nn.Module):
    """RevIN, dropout, then one linear map along time (Li et al. 2023, "Revisiting long-term time series
    forecasting: an investigation on linear mapping"; plumprc/RTSF ``models/RLinear.py``):

        x' = RevIN(x)  (per window and channel; learnable gamma, beta with ``affine``)
        y_hat = RevIN^-1( W Dropout(x') + b ),   W: (L -> H) along time

    W shared by all channels (``individual=False``) or one per channel. Unlike DLinear it has no
    trend / seasonal split: the instance normalisation removes each window's level and scale, which
    is what lets one map serve windows whose statistics drift (the paper's argument).
    """

    def __init__(self, n_channels: int, input_len: int, horizon: int, dropout: float = 0.1, affine: bool = True,
                 individual: bool = False):
        super().__init__()
        self.individual = individual
        self.revin = RevIN(n_channels, affine=affine)
        self.drop = nn.Dropout(dropout)
        self.linear = nn.ModuleList(nn.Linear(input_len, horizon) for _ in range(n_channels if individual else 1))

    def forward(self, batch: dict) -> dict:
        x = batch_input(batch, INPUTS)
        stats = self.revin.statistics(x)
        z = self.drop(self.revin.normalize(x, stats)).transpose(1, 2)  # (B, C, L)
        if self.individual:
            y = torch.stack([self.linear[c](z[:, c]) for c in range(z.shape[1])], dim=1)
        else:
            y = self.linear[0](z)
        return forecast_output(self.revin.denormalize(y.transpose(1, 2), stats), batch)


class SparseTSF(nn.Module):
    """Cross-period sparse forecasting (Lin et al. 2024, "SparseTSF: Modeling Long-term Time Series
    Forecasting with 1k Parameters"; lss-1138/SparseTSF ``models/SparseTSF.py``, the linear variant).
    With period w (24 for hourly data), n = L / w input periods and m = ceil(H / w) output periods:

        x' = x - mean_t(x)                                   (per window and channel)
        z  = x' + conv_k(x'),  k = 2 floor(w / 2) + 1        (one kernel for all channels, zero padding)
        z_{p, j} = z_{j w + p}                               (phase p < w, period j < n)
        y_{p, i} = sum_j W_{i j} z_{p, j}                    (one (n -> m) map, no bias, for every phase)
        y_hat_{i w + p} = y_{p, i} + mean_t(x)               (the first H steps)

    Each phase of the period is forecast from the same phase of the past periods only, so the one map
    learns the trend across periods and the period's shape comes from the input: n m + k weights
    (445 for L=720, H=336, w=24). ``L`` need not be a multiple of w: the window's oldest L mod w steps are
    left out (the reference requires a multiple); nor ``H``: the last period is cut.
    """

    def __init__(self, n_channels: int, input_len: int, horizon: int, period: int | None = None):
        super().__init__()
        if period is None:  # no default: 24 would silently ignore a weekly cycle of daily data
            raise ConfigError("sparsetsf needs model.baseline.args.period, the season's length in steps (24 for "
                              "hourly data with a daily cycle, 7 for daily data with a weekly one)")
        check_sizes("model.baseline.args", period=period)
        if period > input_len:
            raise ConfigError(f"sparsetsf's period={period} is longer than input_len={input_len}; give an input_len of "
                              f"at least one season (data.args.input_len={period} or more)")
        self.period, self.horizon, self.used = period, horizon, input_len - input_len % period
        self.conv = nn.Conv1d(1, 1, kernel_size=1 + 2 * (period // 2), padding=period // 2, bias=False)
        self.linear = nn.Linear(input_len // period, -(-horizon // period), bias=False)

    def forward(self, batch: dict) -> dict:
        x = batch_input(batch, INPUTS)[:, -self.used:]
        (b, length, c), w = x.shape, self.period
        mean = x.mean(1, keepdim=True)
        z = (x - mean).transpose(1, 2).reshape(b * c, 1, length)
        z = (z + self.conv(z)).reshape(b * c, length // w, w).transpose(1, 2)  # (BC, w, n)
        y = self.linear(z).transpose(1, 2).reshape(b, c, -1)[:, :, :self.horizon]  # (B, C, m w) -> first H
        return forecast_output(y.transpose(1, 2) + mean, batch)


class LastValue(nn.Module):
    """y_hat_{L+h} = x_L for every step h of the horizon."""

    def __init__(self, n_channels: int, input_len: int, horizon: int):
        super().__init__()
        self.horizon = horizon

    def forward(self, batch: dict) -> dict:
        x = batch_input(batch, INPUTS)
        return forecast_output(x[:, -1:].expand(-1, self.horizon, -1), batch)


class SeasonalNaive(nn.Module):
    """y_hat_{L+h} = x_{L+h-m*ceil(h/m)}: the last observed season of period m, repeated."""

    def __init__(self, n_channels: int, input_len: int, horizon: int, period: int = 24):
        super().__init__()
        if not 0 < period <= input_len:
            raise ValueError(f"period={period} must be between 1 and input_len={input_len}")
        self.horizon, self.period = horizon, period
        self.register_buffer("index", input_len - period + torch.arange(horizon) % period, persistent=False)

    def forward(self, batch: dict) -> dict:
        return forecast_output(batch_input(batch, INPUTS)[:, self.index], batch)


register_baseline("dlinear")(DLinear)
register_baseline("rlinear")(RLinear)
register_baseline("sparsetsf")(SparseTSF)
register_baseline("last_value")(LastValue)
register_baseline("seasonal_naive")(SeasonalNaive)

__all__ = ["moving_average", "DLinear", "RLinear", "SparseTSF", "LastValue", "SeasonalNaive"]
