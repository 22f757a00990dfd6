"""Forecasting baselines: last value, seasonal naive, DLinear (Zeng et al. 2023, LTSF-Linear) and RLinear
(Li et al. 2023, RevIN + one linear map).

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

from ..batch import INPUTS
from ..heads.forecasting import forecast_output
from ..registry import register_baseline
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
        x = batch[INPUTS]
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
        x = batch[INPUTS]
        stats = self.revin.statistics(x)
        z = self.drop(self.revin.normalize(x, stats)).transpose(1, 2)  # (B, C, L)
        if self.individual:
            y = torch.stack([self.linear[c](z[:, c]) for c in range(z.shape[1])], dim=1)
        else:
            y = self.linear[0](z)
        return forecast_output(self.revin.denormalize(y.transpose(1, 2), stats), batch)


class LastValue(nn.Module):
    """y_hat_{L+h} = x_L for every step h of the horizon."""

    def __init__(self, n_channels: int, input_len: int, horizon: int):
        super().__init__()
        self.horizon = horizon

    def forward(self, batch: dict) -> dict:
        x = batch[INPUTS]
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
        return forecast_output(batch[INPUTS][:, self.index], batch)


register_baseline("dlinear")(DLinear)
register_baseline("rlinear")(RLinear)
register_baseline("last_value")(LastValue)
register_baseline("seasonal_naive")(SeasonalNaive)

__all__ = ["moving_average", "DLinear", "RLinear", "LastValue", "SeasonalNaive"]
