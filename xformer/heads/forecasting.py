"""Forecasting head: flatten (or pool) the core's tokens -> linear -> horizon, undo RevIN; MSE or pinball loss.

Batch key ``targets``: (B, H, C) float, the H values after the input window.
Output: ``prediction`` (B, H, C), the point forecast (the median when trained
for quantiles); ``quantiles`` (B, H, C, Q) when trained for them (non-crossing); ``loss``
and ``loss_weight`` (the number of predicted values, B*H*C) when the batch
has targets.
"""
from __future__ import annotations

import numbers

import torch
from torch import Tensor, nn

from ..batch import TARGETS
from ..core import CoreConfig, Dropout
from ..errors import ConfigError
from ..registry import check_sizes, register_head
from ..tokens import Tokens, token_state


def pinball_loss(pred: Tensor, target: Tensor, quantiles: Tensor) -> Tensor:
    """Mean quantile (pinball) loss over every value and quantile.

    pred (..., Q), target (...), quantiles (Q,):
        u = y - y_hat_q,   L_q(u) = max(q u, (q - 1) u)
    so under-forecasts cost q per unit and over-forecasts (1 - q); at q = 0.5 it is |u| / 2.
    """
    u = target.unsqueeze(-1) - pred
    return torch.maximum(quantiles * u, (quantiles - 1) * u).mean()


def forecast_output(prediction: Tensor, batch: dict, quantiles: Tensor | None = None) -> dict:
    """The forecasting contract shared by the head and the baselines.

    prediction: (B, H, C), or (B, H, C, Q) with ``quantiles`` (Q,), ascending; the Q values are
    sorted (monotone rearrangement, Chernozhukov et al. 2010: quantiles never cross, and the
    pinball loss of sorted values is never higher), and the point forecast is the q = 0.5 slice.
    Loss: MSE = mean (y - y_hat)^2, or the mean pinball loss; loss_weight = B*H*C.
    """
    out = {}
    if quantiles is not None:
        prediction = prediction.sort(dim=-1).values
        out["quantiles"] = prediction
        median = torch.argmin((quantiles - 0.5).abs()).view(1)  # a tensor index: no host sync, ONNX-exportable
        out["prediction"] = prediction.index_select(-1, median).squeeze(-1)
    else:
        out["prediction"] = prediction
    target = batch.get(TARGETS)
    if target is not None:
        if target.shape != out["prediction"].shape:  # the data sets the horizon when a recipe leaves it out
            raise ConfigError(f"targets must be {tuple(out['prediction'].shape)} (batch, horizon, channels), got "
                              f"{tuple(target.shape)}: the model forecasts another horizon or number of series "
                              "than the data's windows hold; set the horizon with data.args.horizon and leave it "
                              "out of model.head.args (model.baseline.args)")
        if quantiles is not None:
            out["loss"] = pinball_loss(prediction, target, quantiles)
        else:
            out["loss"] = nn.functional.mse_loss(prediction, target)
        out["loss_weight"] = torch.full((), target.numel(), dtype=torch.long, device=target.device)  # no host copy
    return out


POOLS = ("flatten", "mean", "max")


class ForecastHead(nn.Module):
    """PatchTST's ``Flatten_Head``: y_hat = Dropout(W flatten(z) + b), then RevIN undone.

    Channel-independent tokens (B*C, N, d) give H values per channel (one W
    shared by all channels, PatchTST's ``individual=False``); mixed tokens
    (B, N, d) give all H*C values at once. With Q quantiles every output is Q wide.

    ``pool``: "flatten" (W is H x N*d: a weight per token and feature), or "mean" / "max" over the N tokens
    first, z_j = mean_n z_nj or max_n z_nj (W is H x d, N times fewer weights; Hugging Face's
    ``PatchTSTConfig.pooling_type``, "mean" by default there).
    """

    def __init__(self, dim: int, n_tokens: int, n_channels: int, horizon: int, channel_independent: bool,
                 dropout: float = 0.0, quantiles: list[float] | None = None, pool: str = "flatten"):
        super().__init__()
        if pool not in POOLS:
            raise ConfigError(f"model.head.args.pool must be one of {', '.join(POOLS)}, got {pool!r}")
        self.horizon, self.n_channels, self.channel_independent = horizon, n_channels, channel_independent
        self.pool = pool
        if quantiles is not None:
            if not isinstance(quantiles, (list, tuple)) or not all(
                    isinstance(q, numbers.Real) and not isinstance(q, bool) for q in quantiles):
                raise ConfigError(f"model.head.args.quantiles must be a list of numbers in (0, 1) that includes 0.5, "
                                  f"e.g. [0.1, 0.5, 0.9], got {quantiles!r}")
            if not quantiles or any(not 0.0 < q < 1.0 for q in quantiles) or 0.5 not in quantiles:
                raise ValueError(f"quantiles must lie in (0, 1) and include 0.5 (the point forecast), got {quantiles}")
            self.register_buffer("quantiles", torch.tensor(sorted(quantiles)), persistent=False)
        else:
            self.quantiles = None
        self.n_q = 1 if quantiles is None else len(quantiles)
        per_sequence = horizon * self.n_q * (1 if channel_independent else n_channels)
        self.proj = nn.Linear((n_tokens if pool == "flatten" else 1) * dim, per_sequence)
        self.drop = Dropout(dropout)

    def pooled(self, hidden: Tensor) -> Tensor:
        """(B', N, d) -> (B', N*d) flattened, or (B', d) pooled over the tokens."""
        if self.pool == "mean":
            return hidden.mean(1)
        if self.pool == "max":
            return hidden.max(1).values
        return hidden.flatten(1)

    def forward(self, hidden: Tensor, tokens: Tokens, batch: dict) -> dict:
        y = self.drop(self.proj(self.pooled(hidden)))
        h, c, q = self.horizon, self.n_channels, self.n_q
        if self.channel_independent:
            y = y.reshape(-1, c, h, q).permute(0, 2, 1, 3)  # (B, C, H, Q) -> (B, H, C, Q)
        else:
            y = y.reshape(-1, h, c, q)
        if tokens.state.denormalize is not None:
            y = tokens.state.denormalize(y.movedim(-1, 0)).movedim(0, -1)  # each quantile back to the data's scale
        return forecast_output(y if self.quantiles is not None else y[..., 0], batch, self.quantiles)


@register_head("forecast")
def forecast_head(core: CoreConfig, tokenizer: nn.Module, horizon: int, dropout: float = 0.0,
                  quantiles: list[float] | None = None, pool: str = "flatten") -> ForecastHead:
    """Sized from the tokenizer's ``TokenState``: n_tokens, n_channels and the channel layout."""
    layout = token_state(tokenizer)
    if layout.channel_independent is None:
        raise ValueError("the forecast head needs a series tokenizer (series_patches or series_steps)")
    check_sizes("model.head.args", horizon=horizon)
    return ForecastHead(core.d_model, layout.n_tokens, layout.n_channels, horizon, layout.channel_independent,
                        dropout, quantiles, pool)


__all__ = ["pinball_loss", "forecast_output", "ForecastHead"]
